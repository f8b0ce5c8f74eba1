/**
 * Shared helpers of the server's tests: await events with a deadline, start an engine
 * on a free loopback port, open real clients, speak raw HTTP / WebSocket, and check
 * that a healthy session still round-trips a message. Everything that opens a socket
 * registers its cleanup with a {@link Scope} so after-hooks close it even on failure.
 */
import assert from "node:assert/strict";
import {
  createServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
} from "node:http";
import { connect, type Socket as NetSocket } from "node:net";
import { Engine, type EngineOptions, type Session } from "@switchyard/server";
import { Scope, waitFor, within } from "@switchyard/test-harness";
import { Socket as ClientSocket, type SocketOptions } from "engine.io-client";
import { WebSocket } from "ws";

export { Scope, waitFor, within };

export const HOST = "127.0.0.1";

// ——— time-bounded waiting ———

/**
 * Anything with `on`/`off`: Node emitters, `ws` sockets, and engine.io-client sockets
 * (whose typed events accept no plain string, hence the `never` parameters).
 */
export interface Listenable {
  on(event: never, listener: never): unknown;
  off(event: never, listener: never): unknown;
}

type UntypedOn = (event: string, listener: (...args: unknown[]) => void) => unknown;

/** Resolves with the arguments of the next `event`, rejects after `timeoutMs`. */
export function once<T extends unknown[] = unknown[]>(
  emitter: Listenable,
  event: string,
  timeoutMs = 3000,
): Promise<T> {
  const on = emitter.on as UntypedOn;
  const off = emitter.off as UntypedOn;
  return new Promise<T>((resolve, reject) => {
    const onEvent = (...args: unknown[]) => {
      clearTimeout(timer);
      off.call(emitter, event, onEvent);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      off.call(emitter, event, onEvent);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${event}"`));
    }, timeoutMs);
    on.call(emitter, event, onEvent);
  });
}

// ——— cleanup ———

// ——— servers ———

export interface TestServer {
  url: string;
  port: number;
  engine: Engine;
  server: HttpServer;
  close(): Promise<void>;
}

export interface StartOptions {
  /** The HTTP server's own request listener (a "REST app" sharing the port). */
  app?: RequestListener;
  /** Echo every message back to its session (default true). */
  echo?: boolean;
}

/** Starts an HTTP server on 127.0.0.1:0 with an Engine attached. */
export async function startEngine(
  scope: Scope,
  opts: EngineOptions = {},
  start: StartOptions = {},
): Promise<TestServer> {
  const server = start.app === undefined ? createServer() : createServer(start.app);
  const engine = new Engine(opts).attach(server);
  if (start.echo !== false) engine.on("connection", echo);
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = portOf(server);
  const close = () => closeServer(server, engine);
  scope.add(null, close);
  return { url: `http://${HOST}:${port}`, port, engine, server, close };
}

function echo(session: Session): void {
  session.on("message", (data: string | Buffer) => session.send(data));
}

export function portOf(server: HttpServer): number {
  const address = server.address();
  assert.ok(address !== null && typeof address === "object", "server is not listening");
  return address.port;
}

export async function closeServer(server: HttpServer, engine?: Engine): Promise<void> {
  engine?.close();
  server.closeAllConnections();
  if (!server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

// ——— engine.io-client ———

/**
 * Opens an engine.io-client socket and resolves once it is open. `onMessage` is attached
 * before the handshake, so it also sees messages that ride the open packet.
 */
export async function openClient(
  scope: Scope,
  url: string,
  opts: Partial<SocketOptions> = {},
  onMessage?: (data: unknown) => void,
): Promise<ClientSocket> {
  const socket = scope.add(new ClientSocket(url, opts), (s) => s.close());
  if (onMessage !== undefined) socket.on("message", onMessage);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("client did not open within 3000 ms")), 3000);
    socket.once("open", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", (err: unknown) => {
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
  return socket;
}

/** Resolves once an engine.io-client socket runs over WebSocket (upgrades are quick). */
export async function upgraded(socket: ClientSocket, timeoutMs = 3000): Promise<void> {
  await waitFor(() => socket.transport?.name === "websocket", timeoutMs, "the upgrade");
}

let counter = 0;

/**
 * Sends a unique message on a session opened with {@link startEngine}'s echo and waits
 * for it to come back: the proof that a session is still healthy.
 */
export async function roundTrip(socket: ClientSocket, timeoutMs = 3000): Promise<void> {
  assert.equal(socket.readyState, "open", "the healthy session was closed");
  const token = `ping-${process.pid}-${++counter}`;
  const got = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off("message", onMessage);
      reject(new Error(`echo of ${token} did not arrive within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: unknown) => {
      if (data !== token) return;
      clearTimeout(timer);
      socket.off("message", onMessage);
      resolve();
    };
    socket.on("message", onMessage);
  });
  socket.send(token);
  await got;
}

// ——— raw HTTP ———

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number | string[]>;
  body?: string | Buffer;
  timeoutMs?: number;
}

/** One HTTP request without keep-alive; resolves with status, headers and body text. */
export function request(
  port: number,
  path: string,
  opts: RequestOptions = {},
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const req = httpRequest(
      { host: HOST, port, path, method: opts.method ?? "GET", headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          });
        });
        res.on("error", reject);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${opts.method ?? "GET"} ${path} got no answer`));
    }, opts.timeoutMs ?? 3000);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(opts.body);
  });
}

/** Path of the engine endpoint with the given query parameters. */
export function enginePath(params: Record<string, string>, path = "/engine.io/"): string {
  return `${path}?${new URLSearchParams(params).toString()}`;
}

export interface Handshake {
  sid: string;
  upgrades: string[];
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
}

export function isHandshake(v: unknown): v is Handshake {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.sid === "string" &&
    Array.isArray(o.upgrades) &&
    typeof o.pingInterval === "number" &&
    typeof o.pingTimeout === "number" &&
    typeof o.maxPayload === "number"
  );
}

/** Parses the `0{...}` open packet at the start of a payload or frame. */
export function parseOpen(text: string): Handshake {
  assert.equal(text[0], "0", `expected an open packet, got ${JSON.stringify(text.slice(0, 40))}`);
  const end = text.indexOf("\x1e");
  const parsed: unknown = JSON.parse(end === -1 ? text.slice(1) : text.slice(1, end));
  assert.ok(isHandshake(parsed), "malformed handshake");
  return parsed;
}

/** Opens a polling session over raw HTTP; returns the handshake. */
export async function pollingHandshake(port: number, path = "/engine.io/"): Promise<Handshake> {
  const res = await request(port, enginePath({ EIO: "4", transport: "polling" }, path));
  assert.equal(res.status, 200, res.body);
  return parseOpen(res.body);
}

/** `GET` (poll) or `POST` (send) on an existing polling session. */
export function poll(port: number, sid: string, opts: RequestOptions = {}): Promise<RawResponse> {
  return request(port, enginePath({ EIO: "4", transport: "polling", sid }), opts);
}

export function pollPost(port: number, sid: string, body: string): Promise<RawResponse> {
  return poll(port, sid, { method: "POST", body, headers: { "Content-Type": "text/plain" } });
}

export function isEngineError(v: unknown): v is { code: number; message: string } {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return typeof o.code === "number" && typeof o.message === "string";
}

/** Asserts an Engine.IO error answer: status and JSON `{code, message}`. */
export function assertEngineError(res: RawResponse, status: number, code: number): void {
  assert.equal(res.status, status, `status (body ${res.body})`);
  const parsed: unknown = JSON.parse(res.body);
  assert.ok(isEngineError(parsed), `not an engine error: ${res.body}`);
  assert.equal(parsed.code, code);
}

// ——— raw TCP / WebSocket ———

/** A raw TCP connection to the server, registered for cleanup. */
export async function rawConnect(scope: Scope, port: number): Promise<NetSocket> {
  const socket = scope.add(connect(port, HOST), (s) => s.destroy());
  socket.on("error", () => {});
  await once(socket, "connect");
  return socket;
}

/**
 * A raw TCP connection plus the server's end of it (found by port, since other clients
 * may connect at the same time).
 */
export async function rawConnectPair(
  scope: Scope,
  server: HttpServer,
): Promise<{ client: NetSocket; serverSide: NetSocket }> {
  const accepted: NetSocket[] = [];
  const onConnection = (s: NetSocket) => accepted.push(s);
  server.on("connection", onConnection);
  try {
    const client = await rawConnect(scope, portOf(server));
    let serverSide: NetSocket | undefined;
    await waitFor(
      () => {
        serverSide = accepted.find((s) => s.remotePort === client.localPort);
        return serverSide !== undefined;
      },
      1000,
      "the server side of the connection",
    );
    return { client, serverSide: serverSide! };
  } finally {
    server.off("connection", onConnection);
  }
}

/**
 * Writes `data` and collects what the server answers until it closes the connection, or
 * until the head of a `101 Switching Protocols` arrived (that connection stays open), or
 * `timeoutMs` passed.
 */
export async function rawExchange(
  scope: Scope,
  port: number,
  data: string | Buffer,
  timeoutMs = 3000,
): Promise<string> {
  const socket = await rawConnect(scope, port);
  let text = "";
  let closed = false;
  socket.on("data", (c: Buffer) => {
    text += c.toString("latin1");
  });
  socket.once("close", () => {
    closed = true;
  });
  socket.write(data);
  await waitFor(
    () => closed || (text.startsWith("HTTP/1.1 101 ") && text.includes("\r\n\r\n")),
    timeoutMs,
    "the server to answer and close",
  ).catch(() => undefined);
  socket.destroy();
  return text;
}

/** Reads from a raw socket until `predicate(text so far)` holds. */
export async function readUntil(
  socket: NetSocket,
  predicate: (text: string) => boolean,
  timeoutMs = 3000,
): Promise<string> {
  let text = "";
  const onData = (c: Buffer) => {
    text += c.toString("latin1");
  };
  socket.on("data", onData);
  try {
    await waitFor(() => predicate(text), timeoutMs, "raw answer");
  } finally {
    socket.off("data", onData);
  }
  return text;
}

/** A raw `ws` client whose messages are queued from the start (none slips by). */
export interface TestWebSocket {
  ws: WebSocket;
  /** Next message: text as a string, binary frames as Buffers. */
  next(timeoutMs?: number): Promise<string | Buffer>;
  /** Messages received and not yet taken by {@link next}. */
  readonly queued: (string | Buffer)[];
}

/** Opens a raw `ws` WebSocket to the endpoint with the given query. */
export async function openWebSocket(
  scope: Scope,
  port: number,
  params: Record<string, string>,
  opts: ConstructorParameters<typeof WebSocket>[2] = {},
): Promise<TestWebSocket> {
  const query = new URLSearchParams(params).toString();
  const ws = scope.add(new WebSocket(`ws://${HOST}:${port}/engine.io/?${query}`, opts), (w) =>
    w.terminate(),
  );
  ws.on("error", () => {});
  const queued: (string | Buffer)[] = [];
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    queued.push(isBinary ? data : data.toString());
  });
  await once(ws, "open");
  return {
    ws,
    queued,
    async next(timeoutMs = 3000) {
      await waitFor(() => queued.length > 0, timeoutMs, "a WebSocket message");
      return queued.shift()!;
    },
  };
}

/** A 20-character-random-part WebSocket handshake key. */
export function wsKey(): string {
  return Buffer.from(`switchyard-${Math.random()}`).subarray(0, 16).toString("base64");
}

/**
 * Builds one client-to-server WebSocket frame (masked, as RFC 6455 requires).
 * `rsv` sets the RSV1-3 bits (0-7) so tests can craft invalid frames.
 */
export function wsFrame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; rsv?: number } = {},
): Buffer {
  const fin = opts.fin === false ? 0 : 0x80;
  const first = fin | ((opts.rsv ?? 0) << 4) | opcode;
  const mask = Buffer.from([1, 2, 3, 4]);
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([first, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = first;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

/** The raw text of a WebSocket upgrade request to the engine's path. */
export function upgradeRequest(
  query: string,
  extraHeaders: string[] = [],
  path = "/engine.io/",
): string {
  return [
    `GET ${path}?${query} HTTP/1.1`,
    `Host: ${HOST}`,
    "Connection: Upgrade",
    "Upgrade: websocket",
    `Sec-WebSocket-Key: ${wsKey()}`,
    "Sec-WebSocket-Version: 13",
    ...extraHeaders,
    "",
    "",
  ].join("\r\n");
}

/** Completes a WebSocket handshake over a raw socket; resolves once the 101 arrived. */
export async function rawWebSocket(scope: Scope, port: number, query: string): Promise<NetSocket> {
  const socket = await rawConnect(scope, port);
  socket.write(upgradeRequest(query));
  const head = await readUntil(socket, (t) => t.includes("\r\n\r\n"));
  assert.match(head, /^HTTP\/1\.1 101 /);
  return socket;
}

/** A raw polling session of `srv` (handshake over plain HTTP) and its server side. */
export async function pollingSession(srv: TestServer): Promise<{ sid: string; session: Session }> {
  const next = nextSession(srv.engine);
  const hs = await pollingHandshake(srv.port);
  const session = await next;
  assert.equal(session.id, hs.sid);
  return { sid: hs.sid, session };
}

/** A raw WebSocket session of `srv`, its handshake done over a bare TCP socket. */
export async function rawWsSession(
  scope: Scope,
  srv: TestServer,
): Promise<{ socket: NetSocket; session: Session }> {
  const next = nextSession(srv.engine);
  const socket = await rawWebSocket(scope, srv.port, "EIO=4&transport=websocket");
  return { socket, session: await next };
}

/** Resolves with the next session the engine opens. */
export async function nextSession(engine: Engine, timeoutMs = 3000): Promise<Session> {
  const [session] = await once<[Session]>(engine, "connection", timeoutMs);
  return session;
}

/** Resolves with the close reason of `session`. */
export async function closeReason(session: Session, timeoutMs = 3000): Promise<string> {
  if (session.readyState === "closed") throw new Error("session already closed");
  const [reason] = await once<[string, string | undefined]>(session, "close", timeoutMs);
  return reason;
}
