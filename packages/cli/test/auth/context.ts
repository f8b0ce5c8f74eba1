/**
 * Test helpers of the client-side areas (auth, client events, limits): a real ServeContext
 * (real HTTP server and Server on loopback, no serve.ts), a real HTTP backend for webhooks,
 * real socket.io-client sockets closed after each test.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "@switchyard/server";
import { pino } from "pino";
import {
  type Socket as ClientSocket,
  io as connectClient,
  type ManagerOptions,
  type SocketOptions,
} from "socket.io-client";
import type { ServeContext } from "../../src/context.js";

export interface TestContext {
  ctx: ServeContext;
  url: string;
  /** Keys the once-per-interval limiter was asked about (every call, in order). */
  limited: string[];
  close(): Promise<void>;
}

export async function startContext(): Promise<TestContext> {
  const httpServer = http.createServer();
  const io = new Server(httpServer, {});
  const seen = new Set<string>();
  const limited: string[] = [];
  const ctx: ServeContext = {
    io,
    http: httpServer,
    log: pino({ level: "silent" }),
    limiter: (key) => {
      limited.push(key);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
    route: () => {},
    onDrain: () => {},
    config: { listen: { host: "127.0.0.1", port: 0, path: "/socket.io" } },
  };
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    ctx,
    url: `http://127.0.0.1:${port}`,
    limited,
    close: async () => {
      await io.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

export interface BackendCall {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** What a backend handler returns: a JSON value (200), or a raw status/body, or "hang". */
export type BackendAnswer = { status?: number; json?: unknown; raw?: string } | "hang";

export interface Backend {
  url: string;
  calls: BackendCall[];
  handler: (call: BackendCall) => BackendAnswer | Promise<BackendAnswer>;
  close(): Promise<void>;
}

/** A real HTTP backend on loopback; requests that "hang" are answered never (until close). */
export async function startBackend(
  handler: Backend["handler"] = () => ({ json: {} }),
): Promise<Backend> {
  const calls: BackendCall[] = [];
  const backend: Backend = { url: "", calls, handler, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const call: BackendCall = {
        path: req.url ?? "/",
        headers: req.headers,
        body: text === "" ? undefined : JSON.parse(text),
      };
      calls.push(call);
      void Promise.resolve(backend.handler(call)).then((answer) => {
        if (answer === "hang") return;
        const body = answer.raw ?? JSON.stringify(answer.json ?? {});
        res.writeHead(answer.status ?? 200, { "content-type": "application/json" });
        res.end(body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  backend.url = `http://127.0.0.1:${port}/hook`;
  backend.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return backend;
}

/** Opens a websocket-only client (no reconnection) and registers it for closing. */
export function client(
  url: string,
  opened: ClientSocket[],
  opts: Partial<ManagerOptions & SocketOptions> = {},
  nsp = "/",
): ClientSocket {
  const s = connectClient(url + nsp, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    ...opts,
  });
  opened.push(s);
  return s;
}

/** Resolves on connect, rejects with the connect_error (err.data kept), bounded in time. */
export function connected(s: ClientSocket, ms = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no connect nor connect_error in time")), ms);
    s.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    s.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The `data.code` of the connect_error the socket gets (fails if it connects). */
export async function refusedCode(s: ClientSocket, ms = 3000): Promise<string> {
  try {
    await connected(s, ms);
  } catch (err) {
    return String((err as { data?: { code?: unknown } }).data?.code);
  }
  throw new Error("connected, but a refusal was expected");
}

/** The next `event` on a client socket, bounded in time. */
export function next<T extends unknown[] = unknown[]>(
  s: ClientSocket,
  event: string,
  ms = 3000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
    s.once(event, (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    });
  });
}
