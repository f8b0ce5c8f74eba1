/**
 * Builds and runs the standalone server from a validated configuration: one HTTP server
 * for Socket.IO, the areas' routes (API, metrics, dashboard) and `/healthz` / `/readyz`;
 * the bus; the Flask bridge; then every area's installer. `drain()` is what SIGTERM does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AmqpBus } from "@switchyard/amqp";
import { RedisBus } from "@switchyard/redis";
import {
  type Bus,
  type ConnectionError,
  createAdapter,
  msgpackParser,
  Server,
  type ServerOptions,
  SwitchyardError,
} from "@switchyard/server";
import type { Logger } from "pino";
import { AREAS } from "./areas.js";
import { ConfigError } from "./config/load.js";
import type { Config } from "./config/schema.js";
import type {
  Disposable,
  ResolvedConfig,
  RouteHandler,
  RouteMethod,
  ServeContext,
} from "./context.js";
import { createLimiter, createLogger } from "./log.js";

/** Options of {@link startServer} beyond the configuration. */
export interface StartOptions {
  /** @default a logger made from `config.log` */
  log?: Logger;
  /** A bus made by the caller (`runWorkers` gives each worker one); closed by the caller. @default from `config.bus` */
  bus?: Bus;
  /** Cluster secret for session forwarding when `config.forwarding` has none (`runWorkers`'s). */
  secret?: string;
}

/** A started server. */
export interface RunningServer {
  readonly io: Server;
  readonly http: ReturnType<typeof createServer>;
  readonly bus: Bus | undefined;
  readonly log: Logger;
  /** The bound address (the real port when `listen.port` was 0). */
  readonly address: { host: string; port: number };
  /** The context the areas were installed with (`route`, `onDrain`, `limiter`…), for embedders. */
  readonly context: ServeContext;
  /** Whether `/readyz` answers 200 now. */
  readonly ready: boolean;
  /**
   * Stops accepting, closes every Engine.IO session (clients see a transport close and
   * reconnect elsewhere), runs the drain hooks, disposes the areas and closes the server
   * and the bus (one it made). Bounded by `config.shutdown.timeout` (then the remaining
   * connections are cut): resolves true when it finished in time. Idempotent.
   */
  drain(): Promise<boolean>;
}

interface Route {
  method: RouteMethod;
  prefix: string;
  handler: RouteHandler;
}

/** Whether `path` is `prefix` or below it (`/api/v1` matches `/api/v1/x`, not `/api/v10`). */
function under(path: string, prefix: string): boolean {
  return (
    path === prefix ||
    (path.startsWith(prefix) && (prefix.endsWith("/") || path[prefix.length] === "/"))
  );
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
  });
  res.end(text);
}

function makeBus(url: string): Bus | undefined {
  if (url === "memory") return undefined;
  if (/^rediss?:/i.test(url)) return new RedisBus({ url });
  return new AmqpBus({ url });
}

/** The `bus` factory for `runWorkers` (undefined: its IPC bus). */
export function busFactory(config: Config): (() => Bus) | undefined {
  return config.bus === "memory" ? undefined : () => makeBus(config.bus) as Bus;
}

function serverOptions(config: Config, bus: Bus | undefined, secret: string | undefined) {
  const { parser, ...engine } = config.engine;
  const opts: ServerOptions = { ...engine, path: config.listen.path };
  if (parser === "msgpack") opts.parser = msgpackParser;
  if (config.cors !== undefined) opts.cors = { ...config.cors };
  if (bus !== undefined) {
    opts.adapter = createAdapter(bus);
    const fwSecret = config.forwarding?.secret ?? secret;
    if (fwSecret !== undefined) {
      opts.forwarding = { bus, secret: fwSecret };
      const fw = config.forwarding;
      if (fw?.listen !== undefined) opts.forwarding.listen = { ...fw.listen };
      if (fw?.advertise !== undefined) opts.forwarding.advertise = { ...fw.advertise };
    }
  }
  return opts;
}

interface FlaskBridgeLike {
  close(): Promise<void>;
  on(event: "dropped" | "error", fn: (err: Error) => void): unknown;
}

async function startFlaskBridge(
  io: Server,
  options: Record<string, unknown>,
  log: Logger,
  limiter: (key: string) => boolean,
): Promise<FlaskBridgeLike> {
  // Optional package: not a dependency of the CLI; a variable specifier keeps tsc from
  // requiring it at build time.
  const specifier = "@switchyard/flask-bridge";
  let mod: { createFlaskBridge?: (io: Server, opts: unknown) => FlaskBridgeLike };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch {
    throw new ConfigError(
      'config: "flaskBridge" needs the @switchyard/flask-bridge package (npm install @switchyard/flask-bridge)',
    );
  }
  if (typeof mod.createFlaskBridge !== "function") {
    throw new ConfigError(
      'config: "flaskBridge": @switchyard/flask-bridge has no createFlaskBridge',
    );
  }
  let bridge: FlaskBridgeLike;
  try {
    bridge = mod.createFlaskBridge(io, options);
  } catch (err) {
    throw new ConfigError(
      `config: ${(err as Error).message
        .replace(/unknown option "([^"]+)"/, 'unknown key "flaskBridge.$1"')
        .replace(/did you mean "([^"]+)"/, 'did you mean "flaskBridge.$1"')
        .replace(/^option "([^"]+)"/, '"flaskBridge.$1"')}`,
    );
  }
  const flog = log.child({ area: "flask-bridge" });
  bridge.on("dropped", (err) => {
    if (limiter(`flask-bridge:dropped:${(err as { reason?: string }).reason ?? ""}`))
      flog.warn({ err }, "flask bridge dropped a message");
  });
  bridge.on("error", (err) => {
    if (limiter("flask-bridge:error")) flog.warn({ err }, "flask bridge error");
  });
  return bridge;
}

async function dispose(d: Disposable): Promise<void> {
  if (d === undefined || d === null) return;
  if (typeof d === "function") await d();
  else if ("close" in d) await d.close();
  else if ("dispose" in d) await d.dispose();
}

/** A one-line message for an option the server refused (a configuration error). */
function refusal(err: unknown): ConfigError {
  if (err instanceof SwitchyardError) {
    return new ConfigError(`config: ${err.message}`);
  }
  return new ConfigError(`config: ${(err as Error).message}`);
}

/** Builds everything the configuration describes and listens. */
export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger({ level: config.log.level, format: config.log.format });
  const limiter = createLimiter(config.log.errorInterval);
  const ownBus = opts.bus === undefined;
  let bus: Bus | undefined;
  try {
    bus = opts.bus ?? makeBus(config.bus);
  } catch (err) {
    throw refusal(err);
  }

  const routes: Route[] = [];
  let draining = false;
  let listening = false;
  const httpServer = createServer((req, res) => void dispatch(req, res));

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0] as string;
    const method = req.method ?? "GET";
    const route = routes.find(
      (r) =>
        (r.method === "*" || r.method === method || (method === "HEAD" && r.method === "GET")) &&
        under(path, r.prefix),
    );
    if (route === undefined) {
      sendJson(res, 404, {
        error: { code: "not_found", message: `no route for ${method} ${path}` },
      });
      return;
    }
    try {
      await route.handler(req, res);
    } catch (err) {
      if (limiter(`route:${route.prefix}`)) log.error({ err, path }, "route handler failed");
      if (!res.headersSent)
        sendJson(res, 500, { error: { code: "internal", message: "internal error" } });
      else res.destroy();
    }
  }

  let io: Server;
  try {
    io = new Server(httpServer, serverOptions(config, bus, opts.secret));
  } catch (err) {
    if (ownBus) await bus?.close().catch(() => {});
    throw refusal(err);
  }
  for (const name of config.namespaces.names) io.of(name);
  if (config.namespaces.pattern !== undefined) io.of(new RegExp(config.namespaces.pattern));

  // Refused Engine.IO requests (bad session ids, transports, origins…): one line per error
  // code per interval, however many arrive; the engine counts every one (engine.stats).
  const elog = log.child({ area: "engine" });
  io.engine.on("connection_error", (err: ConnectionError) => {
    const key = `engine:${err.code}`;
    const suppressed = limiter.suppressed(key);
    if (limiter(key)) {
      elog.warn(
        {
          code: err.code,
          reason: err.message,
          address: err.req.socket.remoteAddress,
          ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}),
        },
        "connection refused (further ones with this code this interval are only counted)",
      );
    }
  });

  if (bus !== undefined) {
    const blog = log.child({ area: "bus" });
    bus.on("up", () => blog.info("bus up"));
    bus.on("down", (err) => blog.warn({ err }, "bus down"));
    bus.on("error", (err) => {
      if (limiter("bus:error")) blog.warn({ err }, "bus error");
    });
  }

  const drainHooks: Array<() => void | Promise<void>> = [];
  const disposables: Disposable[] = [];
  const ctx: ServeContext = {
    io,
    http: httpServer,
    ...(bus === undefined ? {} : { bus }),
    log,
    limiter,
    route(method, pathPrefix, handler) {
      if (!pathPrefix.startsWith("/"))
        throw new Error(`route prefix must start with /: ${pathPrefix}`);
      if (routes.some((r) => r.method === method && r.prefix === pathPrefix)) {
        throw new Error(`route ${method} ${pathPrefix} is already registered`);
      }
      routes.push({ method, prefix: pathPrefix, handler });
      routes.sort((a, b) => b.prefix.length - a.prefix.length);
    },
    onDrain(fn) {
      drainHooks.push(fn);
    },
    config: config as unknown as ResolvedConfig,
  };

  ctx.route("GET", "/healthz", (_req, res) => sendJson(res, 200, { status: "ok" }));
  ctx.route("GET", "/readyz", (_req, res) => {
    const reasons: string[] = [];
    if (!listening) reasons.push("not listening");
    if (draining) reasons.push("draining");
    if (bus !== undefined && !bus.healthy) reasons.push("bus disconnected");
    sendJson(res, reasons.length === 0 ? 200 : 503, {
      status: reasons.length === 0 ? "ready" : "not ready",
      ...(reasons.length === 0 ? {} : { reasons }),
    });
  });

  const fail = async (err: unknown): Promise<never> => {
    for (const d of disposables.reverse()) await dispose(d).catch(() => {});
    await io.close().catch(() => {});
    if (ownBus) await bus?.close().catch(() => {});
    throw err;
  };

  try {
    if (config.flaskBridge !== undefined) {
      disposables.push(await startFlaskBridge(io, config.flaskBridge, log, limiter));
    }
    for (const area of AREAS) {
      const section = (config as Record<string, unknown>)[area.key];
      if (section === undefined) continue;
      disposables.push(await area.install(ctx, section as never));
    }
  } catch (err) {
    return fail(err);
  }

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once("error", reject);
      httpServer.listen(config.listen.port, config.listen.host, () => {
        httpServer.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return fail(
      new ConfigError(
        `cannot listen on ${config.listen.host}:${config.listen.port}: ${e.code ?? e.message}`,
      ),
    );
  }
  listening = true;
  const addr = httpServer.address() as AddressInfo;
  const address = { host: addr.address, port: addr.port };
  log.info(
    {
      host: address.host,
      port: address.port,
      path: config.listen.path,
      bus: bus === undefined ? "memory" : config.bus.replace(/\/\/[^@/]*@/, "//***@"),
    },
    `switchyard listening on http://${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`,
  );

  let drained: Promise<boolean> | undefined;
  const drain = (): Promise<boolean> => {
    drained ??= (async () => {
      draining = true;
      log.info("draining");
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), config.shutdown.timeout);
        timer.unref();
      });
      const work = (async () => {
        // Stop accepting, then close the Engine.IO sessions: clients see a transport
        // close and reconnect (elsewhere). A Socket.IO "server shutting down" disconnect
        // would keep them from reconnecting.
        httpServer.close();
        io.engine.close();
        await Promise.allSettled(drainHooks.map(async (fn) => fn()));
        for (const d of disposables.reverse()) {
          await dispose(d).catch((err: unknown) => log.warn({ err }, "dispose failed"));
        }
        await io.close();
        if (ownBus) await bus?.close().catch(() => {});
        return true as const;
      })();
      const inTime = await Promise.race([work, bound]);
      clearTimeout(timer);
      if (!inTime) {
        log.warn({ timeout: config.shutdown.timeout }, "drain timed out: closing what is left");
        httpServer.closeAllConnections();
      }
      return inTime;
    })();
    return drained;
  };

  return {
    io,
    http: httpServer,
    bus,
    log,
    address,
    context: ctx,
    get ready() {
      return listening && !draining && (bus === undefined || bus.healthy);
    },
    drain,
  };
}
