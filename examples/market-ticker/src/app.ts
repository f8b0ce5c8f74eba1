/**
 * The market-ticker demo: one `node:http` server answers a small REST API, serves the
 * page, and carries the realtime namespace `/ws/rt_market`, where a background ticker
 * publishes one tick per symbol per interval to the room `symbol:<SYM>`.
 *
 * Request handlers do no I/O and only O(1) work (quotes live in memory, the page is read
 * once at start-up), so REST traffic cannot stall the ticker and ticks cannot slow REST
 * down: both share one event loop.
 */
import { readFile } from "node:fs/promises";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { Server, type Socket } from "@switchyard/server";
import { PriceWalk, type Quote, type Tick } from "./price-model.js";
import { DEFAULT_SYMBOLS, normalizeSymbol, resolveSymbols, type SymbolInfo } from "./symbols.js";
import { Ticker, type TickerStats } from "./ticker.js";

/** The realtime namespace of the demo. */
export const NAMESPACE = "/ws/rt_market";

/** The room a symbol's ticks go to. */
export function roomOf(symbol: string): string {
  return `symbol:${symbol}`;
}

/** Reply to `subscribe` / `unsubscribe`. */
export type SubscriptionReply =
  | { readonly ok: true; readonly symbol: string; readonly quote: Quote }
  | { readonly ok: false; readonly error: string };

/**
 * Events a client may send. Arguments are `unknown`: they come off the wire and are
 * validated by the handlers.
 */
export interface ClientToServerEvents {
  subscribe: (symbol: unknown, ack?: unknown) => void;
  unsubscribe: (symbol: unknown, ack?: unknown) => void;
}

/** Events the server sends. */
export interface ServerToClientEvents {
  tick: (tick: Tick) => void;
}

/** The typed event map a client uses (see the tests for a socket.io-client example). */
export interface ClientEvents {
  subscribe: (symbol: string, ack: (reply: SubscriptionReply) => void) => void;
  unsubscribe: (symbol: string, ack: (reply: SubscriptionReply) => void) => void;
}

export type MarketServer = Server<ClientToServerEvents, ServerToClientEvents>;
type MarketSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** Options of {@link createMarketApp}. */
export interface MarketAppOptions {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** Interface to listen on. @default "127.0.0.1" */
  host?: string;
  /** Milliseconds between ticks. @default 1000 */
  tickIntervalMs?: number;
  /** Quoted symbols: infos, or bare upper-case symbols. @default DEFAULT_SYMBOLS */
  symbols?: readonly (string | SymbolInfo)[];
  /** Seed of the price walks. @default 1 */
  seed?: number;
}

/** Counters of the demo (also served at `GET /api/stats`). */
export interface MarketStats extends TickerStats {
  /** `tick` events published (one per symbol per slot). */
  ticksSent: number;
  /** Milliseconds between slots. */
  intervalMs: number;
  /** Sockets connected to the namespace. */
  clients: number;
}

/** A running demo. */
export interface MarketApp {
  /** `http://host:port` the app listens on. */
  readonly url: string;
  readonly io: MarketServer;
  readonly httpServer: HttpServer;
  readonly ticker: Ticker;
  readonly symbols: readonly SymbolInfo[];
  /** The latest quote of `symbol` (any case), or undefined if it is not quoted. */
  quote(symbol: string): Quote | undefined;
  stats(): MarketStats;
  /** Stops the ticker, disconnects clients and closes the HTTP server. */
  close(): Promise<void>;
}

const PUBLIC_DIR = new URL("../public/", import.meta.url);

/** The static files, read once at start-up: [URL path, file in public/, content type]. */
const STATIC_FILES: ReadonlyArray<readonly [string, string, string]> = [
  ["/", "index.html", "text/html; charset=utf-8"],
  ["/index.html", "index.html", "text/html; charset=utf-8"],
  ["/app.js", "app.js", "text/javascript; charset=utf-8"],
  ["/style.css", "style.css", "text/css; charset=utf-8"],
];

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Content-Security-Policy":
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "Referrer-Policy": "no-referrer",
} as const;

interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

/** Starts the demo and resolves once it listens. */
export async function createMarketApp(opts: MarketAppOptions = {}): Promise<MarketApp> {
  const port = opts.port ?? 0;
  const host = opts.host ?? "127.0.0.1";
  const intervalMs = opts.tickIntervalMs ?? 1000;
  const seed = opts.seed ?? 1;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
    throw new TypeError(`port: expected an integer 0–65535, got ${port}`);
  const symbols = resolveSymbols(opts.symbols ?? DEFAULT_SYMBOLS);

  const files = new Map<string, StaticFile>();
  await Promise.all(
    STATIC_FILES.map(async ([path, file, type]) => {
      files.set(path, { type, body: await readFile(new URL(file, PUBLIC_DIR)) });
    }),
  );

  const started = Date.now();
  const walks = new Map<string, PriceWalk>();
  for (const info of symbols) walks.set(info.symbol, new PriceWalk(info, seed, started));
  const walkList = [...walks.values()];

  // The REST listener must exist before the Server attaches: like socket.io, attaching
  // takes over the server's `request` listeners and hands them what is not its own.
  const httpServer = createServer({ keepAliveTimeout: 5000 }, (req, res) => route(req, res, ctx));
  const io: MarketServer = new Server(httpServer, { serveClient: true });
  const nsp = io.of(NAMESPACE);
  let ticksSent = 0;

  const ticker = new Ticker({
    intervalMs,
    onSlot: () => {
      const t = Date.now();
      for (const walk of walkList) {
        const tick = walk.step(t);
        nsp.to(roomOf(tick.symbol)).emit("tick", tick);
        ticksSent++;
      }
    },
  });

  const stats = (): MarketStats => ({
    ...ticker.stats,
    ticksSent,
    intervalMs,
    clients: nsp.sockets.size,
  });

  const symbolList = symbols.map(({ symbol, name, open }) => ({ symbol, name, open }));
  const ctx: RouteContext = { files, walks, symbolList, intervalMs, stats };

  nsp.on("connection", (socket: MarketSocket) => {
    socket.on("subscribe", (symbol, ack) => {
      const walk = lookup(walks, symbol);
      if (walk === undefined) reply(ack, rejection(symbol));
      else settle(socket.join(roomOf(walk.info.symbol)), ack, walk);
    });
    socket.on("unsubscribe", (symbol, ack) => {
      const walk = lookup(walks, symbol);
      if (walk === undefined) reply(ack, rejection(symbol));
      else settle(socket.leave(roomOf(walk.info.symbol)), ack, walk);
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(port, host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await io.close();
    throw err;
  }
  ticker.start();

  const address = httpServer.address() as AddressInfo;
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${hostPart}:${address.port}`,
    io,
    httpServer,
    ticker,
    symbols,
    quote: (symbol) => lookup(walks, symbol)?.quote(),
    stats,
    close() {
      closing ??= (async () => {
        ticker.stop();
        // Keep-alive REST clients in the middle of a request get a short grace period.
        const force = setTimeout(() => httpServer.closeAllConnections(), 2000);
        force.unref();
        await io.close();
        clearTimeout(force);
      })();
      return closing;
    },
  };
}

function lookup(walks: ReadonlyMap<string, PriceWalk>, symbol: unknown): PriceWalk | undefined {
  const normalized = normalizeSymbol(symbol);
  return normalized === undefined ? undefined : walks.get(normalized);
}

function rejection(symbol: unknown): SubscriptionReply {
  if (typeof symbol !== "string") return { ok: false, error: "symbol must be a string" };
  return { ok: false, error: `unknown symbol: ${symbol.slice(0, 32)}` };
}

/** Acks once the (possibly asynchronous, with a cluster adapter) join/leave is done. */
function settle(pending: Promise<void> | void, ack: unknown, walk: PriceWalk): void {
  const ok = (): void =>
    reply(ack, { ok: true, symbol: walk.info.symbol, quote: walk.quote() } as const);
  if (pending === undefined) {
    ok();
    return;
  }
  pending.then(ok, () => reply(ack, { ok: false, error: "subscription failed, try again" }));
}

function reply(ack: unknown, value: SubscriptionReply): void {
  if (typeof ack === "function") ack(value);
}

// ——— HTTP ———

interface RouteContext {
  readonly files: ReadonlyMap<string, StaticFile>;
  readonly walks: ReadonlyMap<string, PriceWalk>;
  readonly symbolList: readonly { symbol: string; name: string; open: number }[];
  readonly intervalMs: number;
  readonly stats: () => MarketStats;
}

const QUOTE_PREFIX = "/api/quote/";

function route(req: IncomingMessage, res: ServerResponse, ctx: RouteContext): void {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  const isApi = path.startsWith("/api/");
  const file = isApi ? undefined : ctx.files.get(path);
  if ((file !== undefined || isApi) && req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    sendJson(req, res, 405, { error: "method not allowed" });
  } else if (file !== undefined) {
    res.writeHead(200, {
      "Content-Type": file.type,
      "Content-Length": file.body.length,
      "Cache-Control": "no-cache",
      ...SECURITY_HEADERS,
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
  } else if (isApi) {
    const [status, body] = api(path, ctx);
    sendJson(req, res, status, body);
  } else {
    res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8", ...SECURITY_HEADERS });
    res.end("Not Found");
  }
}

/** Answers an `/api/…` path: [status, JSON body]. */
function api(path: string, ctx: RouteContext): [number, unknown] {
  if (path === "/api/symbols")
    return [200, { symbols: ctx.symbolList, intervalMs: ctx.intervalMs }];
  if (path === "/api/stats") return [200, ctx.stats()];
  if (!path.startsWith(QUOTE_PREFIX)) return [404, { error: "not found" }];
  let symbol: string;
  try {
    symbol = decodeURIComponent(path.slice(QUOTE_PREFIX.length));
  } catch {
    return [400, { error: "malformed symbol" }];
  }
  const quote = lookup(ctx.walks, symbol)?.quote();
  if (quote === undefined) return [404, { error: `unknown symbol: ${symbol.slice(0, 32)}` }];
  return [200, quote];
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(json),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : json);
}
