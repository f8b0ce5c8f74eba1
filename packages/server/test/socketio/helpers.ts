/**
 * Helpers of the Socket.IO-layer tests: a Switchyard `Server` on a free loopback port,
 * real `socket.io-client` sockets over each transport path, raw Engine.IO WebSocket
 * clients for hand-made packets, and bounded waiting. Everything that opens a socket
 * registers its cleanup with a {@link Scope} so after-hooks close it even on failure.
 */
import assert from "node:assert/strict";
import {
  createServer,
  type Server as HttpServer,
  request as nodeRequest,
  type RequestListener,
} from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type ServerOptions, type Socket } from "@switchyard/server";
import {
  type Socket as ClientSocket,
  io as ioClient,
  type ManagerOptions,
  type SocketOptions,
} from "socket.io-client";
import { WebSocket } from "ws";
import { type Listenable, once, Scope, waitFor, within } from "../helpers.js";

export { type Listenable, once, Scope, waitFor, within };

export const HOST = "127.0.0.1";

// ——— time-bounded waiting ———

/** Resolves with the reason (first argument) of the next `disconnect`. */
export async function reason(emitter: Listenable, timeoutMs = 3000): Promise<string> {
  const [r] = await once<[string]>(emitter, "disconnect", timeoutMs);
  return r;
}

/**
 * Resolves after `ms` — only to prove that something does *not* happen (a message that
 * must not arrive), never to wait for something that should.
 */
export function quietPeriod(ms = 100): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ——— cleanup ———

// ——— servers ———

export interface TestServer {
  io: Server;
  httpServer: HttpServer;
  port: number;
  url: string;
}

/** Starts an HTTP server on 127.0.0.1:0 with a Switchyard `Server` attached. */
export async function startServer(
  scope: Scope,
  opts: ServerOptions = {},
  app?: RequestListener,
): Promise<TestServer> {
  const httpServer = app === undefined ? createServer() : createServer(app);
  const io = new Server(httpServer, opts);
  scope.add(io, closeIo);
  await listen(httpServer);
  const port = portOf(httpServer);
  return { io, httpServer, port, url: `http://${HOST}:${port}` };
}

/** Listens on 127.0.0.1 (`port` 0 by default). */
export function listen(httpServer: HttpServer, port = 0): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, HOST, () => {
      httpServer.off("error", reject);
      resolve();
    });
  });
}

export async function closeIo(io: Server): Promise<void> {
  io.httpServer?.closeAllConnections();
  await io.close();
}

export function portOf(server: HttpServer): number {
  const address = server.address() as AddressInfo | null;
  assert.ok(address !== null && typeof address === "object", "server is not listening");
  return address.port;
}

// ——— socket.io-client ———

export type ClientOptions = Partial<ManagerOptions & SocketOptions>;

/** The three ways a client reaches the server. */
export interface TransportMode {
  name: string;
  opts: ClientOptions;
  /** The client starts on polling and must end on WebSocket. */
  upgrade: boolean;
}

export const TRANSPORT_MODES: readonly TransportMode[] = [
  { name: "websocket", opts: { transports: ["websocket"] }, upgrade: false },
  { name: "polling", opts: { transports: ["polling"] }, upgrade: false },
  { name: "polling→websocket", opts: { transports: ["polling", "websocket"] }, upgrade: true },
];

/** A socket.io-client socket (not yet connected), closed by the scope. No reconnection unless asked. */
export function client(scope: Scope, url: string, opts: ClientOptions = {}): ClientSocket {
  const socket = ioClient(url, { forceNew: true, reconnection: false, ...opts });
  scope.add(socket, (s) => {
    s.io.reconnection(false);
    s.disconnect();
    s.io.engine?.close();
  });
  return socket;
}

/** Connects a socket.io-client socket; rejects on `connect_error` or after `timeoutMs`. */
export async function connect(
  scope: Scope,
  url: string,
  opts: ClientOptions = {},
  timeoutMs = 3000,
): Promise<ClientSocket> {
  const socket = client(scope, url, opts);
  await connected(socket, timeoutMs);
  return socket;
}

/** Resolves at the socket's next `connect`, rejects at `connect_error`. */
export function connected(socket: ClientSocket, timeoutMs = 3000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
    };
    const onConnect = () => {
      done();
      resolve();
    };
    const onError = (err: Error) => {
      done();
      reject(err);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`client did not connect within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Resolves with the `connect_error` of a socket whose connection must be refused. */
export function connectError(
  socket: ClientSocket,
  timeoutMs = 3000,
): Promise<Error & { data?: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no connect_error")), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      reject(new Error("connected although it should have been refused"));
    });
    socket.once("connect_error", (err: Error & { data?: unknown }) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

/**
 * Connects over `mode` and resolves with both ends once the client uses its final
 * transport (after the upgrade for the polling → WebSocket mode).
 */
export async function pair(
  scope: Scope,
  srv: TestServer,
  mode: TransportMode,
  opts: ClientOptions = {},
  nsp = "/",
): Promise<{ client: ClientSocket; socket: Socket }> {
  const namespace = srv.io.of(nsp);
  const serverSide = once<[Socket]>(namespace, "connection");
  const c = await connect(scope, srv.url + (nsp === "/" ? "" : nsp), { ...mode.opts, ...opts });
  const [socket] = await serverSide;
  if (mode.upgrade) await upgraded(c, socket);
  assert.equal(c.io.engine.transport.name, mode.upgrade ? "websocket" : mode.opts.transports?.[0]);
  return { client: c, socket };
}

/** Waits until both ends of a connection speak WebSocket. */
export async function upgraded(c: ClientSocket, socket: Socket): Promise<void> {
  await waitFor(
    () => c.io.engine.transport.name === "websocket" && socket.conn.transport.name === "websocket",
    3000,
    "the upgrade to WebSocket",
  );
}

/**
 * Stops the client's engine from answering pings (and sending anything else), and from
 * timing the server out itself, so the server is the one to notice.
 */
export function freeze(c: ClientSocket): void {
  const engine = c.io.engine as unknown as {
    _sendPacket: () => void;
    _resetPingTimeout: () => void;
    _pingTimeoutTimer: NodeJS.Timeout | undefined;
    _pingTimeoutTime: number;
  };
  engine._sendPacket = () => {};
  engine._resetPingTimeout = () => {};
  clearTimeout(engine._pingTimeoutTimer);
  engine._pingTimeoutTime = Number.POSITIVE_INFINITY;
}

// ——— raw Engine.IO over WebSocket ———

/** A raw `ws` Engine.IO client whose messages are queued from the start. */
export interface RawClient {
  ws: WebSocket;
  /** Engine.IO messages received and not yet taken (`"4..."` text, Buffers for binary). */
  readonly queued: (string | Buffer)[];
  /** Next message; with `match`, skips (and drops) messages until one matches. */
  next(match?: (m: string | Buffer) => boolean, timeoutMs?: number): Promise<string | Buffer>;
  /** Sends one Engine.IO text packet (e.g. `"40"`) or a binary message. */
  send(data: string | Buffer): void;
  /** Resolves when the WebSocket closes. */
  closed: Promise<void>;
}

/** Opens a raw WebSocket Engine.IO session to the Socket.IO endpoint and reads its open packet. */
export async function rawClient(
  scope: Scope,
  port: number,
  headers: Record<string, string> = {},
): Promise<RawClient> {
  const ws = scope.add(
    new WebSocket(`ws://${HOST}:${port}/socket.io/?EIO=4&transport=websocket`, { headers }),
    (w) => w.terminate(),
  );
  ws.on("error", () => {});
  const queued: (string | Buffer)[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const m = isBinary ? data : data.toString();
    // Answer pings so long tests do not time out; tests never look at them.
    if (m === "2") ws.send("3");
    else queued.push(m);
  });
  const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()));
  await once(ws as unknown as Listenable, "open");
  const raw: RawClient = {
    ws,
    queued,
    closed,
    async next(match, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await waitFor(
          () => queued.length > 0,
          Math.max(1, deadline - Date.now()),
          "a WebSocket message",
        );
        const m = queued.shift()!;
        if (match === undefined || match(m)) return m;
      }
    },
    send(data) {
      ws.send(data);
    },
  };
  const open = await raw.next();
  assert.match(String(open), /^0\{/);
  return raw;
}

// ——— raw HTTP ———

/** One request without keep-alive; resolves with status and body. */
export function httpRequest(
  port: number,
  path: string,
  opts: { method?: string; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = nodeRequest(
      { host: HOST, port, path, method: opts.method ?? "GET", agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${opts.method ?? "GET"} ${path} got no answer`));
    }, 3000);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(opts.body);
  });
}

/** One GET without keep-alive. */
export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return httpRequest(port, path);
}
