// Test scaffolding for the API area: a real http.Server + Switchyard Server with a
// ServeContext built here (not by serve.ts), an API client whose every answer is checked
// against the served OpenAPI document, and a log capture.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { type Bus, Server, type ServerOptions } from "@switchyard/server";
import pino from "pino";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { type ApiHandle, apiSchema, installApi } from "../../src/api/index.ts";
import type { RouteHandler, ServeContext } from "../../src/context.ts";
import { checkResponse, validate } from "./json-schema.ts";

export interface Node {
  io: Server;
  http: http.Server;
  url: string;
  api: ApiHandle;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export const PUBLISH_KEY = "publish-key-0123456789abcdef";
export const MANAGE_KEY = "manage-key-0123456789abcdef";
export const READ_KEY = "read-key-0123456789abcdef00";
export const ALL_KEY = "all-key-0123456789abcdef000";

export const KEYS = [
  { name: "pub", key: PUBLISH_KEY, scopes: ["publish"] },
  { name: "mgr", key: MANAGE_KEY, scopes: ["manage"] },
  { name: "rd", key: READ_KEY, scopes: ["read"] },
  { name: "all", key: ALL_KEY, scopes: ["publish", "manage", "read"] },
];

/** Starts one node with the API installed. `api` is the raw (unparsed) config section. */
export async function startNode(opts: {
  api?: Record<string, unknown>;
  bus?: Bus;
  server?: ServerOptions;
  setup?: (io: Server) => void;
}): Promise<Node> {
  const routes: { method: string; prefix: string; handler: RouteHandler }[] = [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const match = routes
      .filter(
        (r) =>
          (r.method === "*" || r.method === req.method) &&
          (path === r.prefix || path.startsWith(`${r.prefix}/`)),
      )
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    if (match === undefined) {
      res.writeHead(404).end();
      return;
    }
    void match.handler(req, res);
  });
  const io = new Server(server, opts.server ?? {});
  opts.setup?.(io);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line !== "") logs.push(JSON.parse(line));
      cb();
    },
  });
  const log = pino({ level: "info" }, sink);
  const seen = new Map<string, number>();
  const ctx: ServeContext = {
    io,
    http: server,
    ...(opts.bus === undefined ? {} : { bus: opts.bus }),
    log,
    limiter: (key) => {
      const now = Date.now();
      const last = seen.get(key);
      if (last !== undefined && now - last < 60_000) return false;
      seen.set(key, now);
      return true;
    },
    route: (method, prefix, handler) => routes.push({ method, prefix, handler }),
    onDrain: () => {},
    config: { listen: { host: "127.0.0.1", port, path: "/socket.io" } },
  };
  const api = await installApi(ctx, apiSchema.parse({ keys: KEYS, ...opts.api }));
  return {
    io,
    http: server,
    url: `http://127.0.0.1:${port}`,
    api,
    logs,
    close: async () => {
      await api.close();
      await io.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let openapi: Record<string, unknown> | undefined;

/** The document as the server serves it (fetched once per test file). */
export async function openApi(node: Node): Promise<Record<string, unknown>> {
  if (openapi === undefined) {
    const res = await fetch(`${node.url}/api/v1/openapi.json`);
    openapi = (await res.json()) as Record<string, unknown>;
    checkResponse(openapi, "GET", "/api/v1/openapi.json", res.status, openapi);
  }
  return openapi;
}

export interface Answer {
  status: number;
  body: { error?: { code: string; message: string; path?: string } } & Record<string, unknown>;
  headers: Headers;
}

/**
 * Calls the API and checks the answer against the OpenAPI document. `body` is sent as
 * JSON unless it is a string (sent as is).
 */
export async function call(
  node: Node,
  method: "GET" | "POST" | "PUT" | "DELETE",
  path: string,
  opts: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const doc = await openApi(node);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(node.url + path, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const json = (await res.json()) as Answer["body"];
  const docPath = path.split("?")[0] ?? path;
  const item = (doc.paths as Record<string, Record<string, unknown>>)[docPath];
  if (item?.[method.toLowerCase()] !== undefined) {
    checkResponse(doc, method, docPath, res.status, json);
  } else {
    // An undocumented path or method: the answer must be the documented error body.
    if (item !== undefined && res.status !== 405)
      throw new Error(`${method} ${docPath}: expected 405`);
    const errorSchema = (doc.components as { schemas: Record<string, Record<string, unknown>> })
      .schemas.Error;
    const errors = validate(errorSchema ?? {}, json, doc);
    if (errors.length > 0)
      throw new Error(`OpenAPI: error body does not match: ${errors.join("; ")}`);
  }
  return { status: res.status, body: json, headers: res.headers };
}

/** A connected socket.io-client (websocket only), closed by `clients.closeAll()`. */
export class Clients {
  readonly #all: ClientSocket[] = [];
  async connect(node: Node, nsp = "/", auth?: Record<string, unknown>): Promise<ClientSocket> {
    const c = ioc(node.url + nsp, {
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      ...(auth === undefined ? {} : { auth }),
    });
    this.#all.push(c);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("connect timeout")), 5000);
      c.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      c.once("connect_error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return c;
  }
  closeAll(): void {
    for (const c of this.#all.splice(0)) c.close();
  }
}

/** Resolves with the next `event` on `socket` (its args), or rejects after `ms`. */
export function next(socket: ClientSocket, event: string, ms = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const on = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    socket.once(event, on);
  });
}

/** Collects every `event` on `socket`. */
export function collect(socket: ClientSocket, event: string): unknown[][] {
  const got: unknown[][] = [];
  socket.on(event, (...args: unknown[]) => got.push(args));
  return got;
}
