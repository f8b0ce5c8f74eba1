/**
 * A real ServeContext for the metrics and dashboard tests (no serve.ts): a real HTTP server
 * on loopback with a route table answered before socket.io's handler, a real Server.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { type Bus, Server, type ServerOptions } from "@switchyard/server";
import { pino } from "pino";
import type { RouteHandler, RouteMethod, ServeContext } from "../../src/context.js";

export interface TestContext {
  ctx: ServeContext;
  url: string;
  close(): Promise<void>;
}

/** Starts a Server with a route table on a free loopback port. */
export async function startContext(
  opts: { bus?: Bus; server?: ServerOptions; namespaces?: string[] } = {},
): Promise<TestContext> {
  const routes: { method: RouteMethod; prefix: string; handler: RouteHandler }[] = [];
  // Routes are the server's own request listener; io (attached after) answers its path
  // first and hands the rest to it, as serve.ts's routes see everything but socket.io's.
  const httpServer = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const match = routes
      .filter(
        (r) =>
          (r.method === "*" || r.method === req.method) &&
          (path === r.prefix || path.startsWith(`${r.prefix}/`)),
      )
      .sort((a, b) => b.prefix.length - a.prefix.length)[0];
    if (match === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
      return;
    }
    void Promise.resolve(match.handler(req, res)).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const io = new Server(httpServer, opts.server ?? {});
  for (const name of opts.namespaces ?? []) io.of(name);
  const seen = new Set<string>();
  const ctx: ServeContext = {
    io,
    http: httpServer,
    bus: opts.bus,
    log: pino({ level: "silent" }),
    limiter: (key) => {
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    },
    route: (method, prefix, handler) => {
      routes.push({ method, prefix, handler });
    },
    onDrain: () => {},
    config: {
      listen: { host: "127.0.0.1", port: 0, path: "/socket.io" },
      // As serve.ts: declared namespaces exist before the installers run.
      namespaces: { names: opts.namespaces ?? ["/"] },
    },
  };
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    ctx,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await io.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/** Parses a Prometheus exposition into `name{labels}` → value (labels as written). */
export function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Polls `fn` until it returns true, at most `ms` (bounded), every 25 ms. */
export async function until(
  fn: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for ${what}`);
}
