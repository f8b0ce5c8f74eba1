/**
 * Many cores on one host: `runWorkers(options, start)` forks N worker processes with
 * `node:cluster` that share one listening port (the primary distributes connections
 * round-robin), links them with an {@link IpcBus} relayed by the primary (no broker needed
 * on one host; pass `bus` to join a Redis/RabbitMQ cluster of several hosts instead),
 * replaces a worker that dies (capped exponential backoff, a bounded number of restarts
 * per window), and on SIGTERM/SIGINT drains: every worker stops accepting, closes its
 * Engine.IO sessions (clients see a transport close and reconnect, to another worker or
 * host) and exits; the primary exits once they are gone or `shutdownTimeout` passed
 * (stragglers are killed). A second signal exits at once.
 *
 * The same script runs in the primary and in every worker (node:cluster re-executes
 * it); `start` runs in the workers only.
 */
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Server as HttpServer } from "node:http";
import { availableParallelism } from "node:os";
import type { Bus } from "../adapter/bus.js";
import { IpcBus, type IpcEndpoint, IpcRelay } from "../adapter/ipc-bus.js";
import { InvalidOptionError } from "../errors.js";
import { bool, checkOptionKeys, nonNegativeInt, positiveInt } from "../options.js";

/** Options of {@link runWorkers} (pass the same in every process: the script runs in each). */
export interface WorkersOptions {
  /** Worker processes to run. @default os.availableParallelism() */
  workers?: number;
  /** Milliseconds a drain (signal or `close()`) may take before the remaining workers are killed and the primary goes on. @default 10000 */
  shutdownTimeout?: number;
  /** Delay before replacing a worker that died; doubles with each further death within `restartWindow`. @default 100 */
  restartDelay?: number;
  /** Upper bound of the restart delay. @default 5000 */
  maxRestartDelay?: number;
  /** Deaths within `restartWindow` after which the primary stops replacing workers, drains the rest and exits with status 1. @default 10 */
  maxRestarts?: number;
  /** Milliseconds over which `maxRestarts` is counted. @default 60000 */
  restartWindow?: number;
  /** The primary drains on SIGTERM/SIGINT and exits (status 0, or 1 on a second signal); `false` leaves signals and exiting to you. @default true */
  handleSignals?: boolean;
  /** Makes each worker's cluster bus; the default links the workers of this host over IPC. Give e.g. `() => new RedisBus({ url })` to span several hosts. @default () => new IpcBus() */
  bus?: () => Bus;
}

const WORKERS_KEYS = Object.freeze({
  workers: true,
  shutdownTimeout: true,
  restartDelay: true,
  maxRestartDelay: true,
  maxRestarts: true,
  restartWindow: true,
  handleSignals: true,
  bus: true,
} as const satisfies Record<keyof WorkersOptions, true>);

interface ResolvedWorkers {
  readonly workers: number;
  readonly shutdownTimeout: number;
  readonly restartDelay: number;
  readonly maxRestartDelay: number;
  readonly maxRestarts: number;
  readonly restartWindow: number;
  readonly handleSignals: boolean;
  readonly bus: () => Bus;
}

function resolveWorkersOptions(opts: unknown): ResolvedWorkers {
  if (typeof opts !== "object" || opts === null) {
    throw new InvalidOptionError("options", "an object", opts);
  }
  checkOptionKeys(opts, WORKERS_KEYS);
  const o = opts as WorkersOptions;
  const workers = positiveInt("workers", o.workers ?? availableParallelism());
  if (workers > 1024) throw new InvalidOptionError("workers", "at most 1024", workers);
  const bus = o.bus ?? (() => new IpcBus());
  if (typeof bus !== "function") throw new InvalidOptionError("bus", "a function", bus);
  return Object.freeze({
    workers,
    shutdownTimeout: positiveInt("shutdownTimeout", o.shutdownTimeout ?? 10_000),
    restartDelay: nonNegativeInt("restartDelay", o.restartDelay ?? 100),
    maxRestartDelay: nonNegativeInt("maxRestartDelay", o.maxRestartDelay ?? 5000),
    maxRestarts: nonNegativeInt("maxRestarts", o.maxRestarts ?? 10),
    restartWindow: positiveInt("restartWindow", o.restartWindow ?? 60_000),
    handleSignals: bool("handleSignals", o.handleSignals ?? true),
    bus,
  });
}

/** What the helper needs of the server a worker starts (a `Server` of this package). */
export interface DrainableServer {
  readonly engine: { close(): void };
  readonly httpServer: HttpServer | undefined;
  close(): Promise<void>;
}

/** Handed to `start` in each worker. */
export interface WorkerContext {
  /** This worker's cluster bus: give it to `createAdapter(bus)`. */
  readonly bus: Bus;
  /** node:cluster's worker id (1-based; a replacement gets a new one). */
  readonly id: number;
  /**
   * A random secret the primary made for this run, the same in every worker (replacements
   * included): the cluster secret of session forwarding between the workers,
   * `forwarding: { bus, secret }`, so polling and upgrading clients work across workers.
   */
  readonly secret: string;
}

/** Starts the server of one worker; it must listen (on the shared port) before resolving or soon after. */
export type StartWorker = (ctx: WorkerContext) => DrainableServer | Promise<DrainableServer>;

/** Events of the primary's {@link WorkersPrimary}. */
export interface WorkersEvents {
  /** A worker was forked (first start or replacement). */
  fork: [pid: number];
  /** A worker started its server and listens. */
  online: [pid: number];
  /** A worker exited; `replaced` tells whether a replacement is scheduled. */
  exit: [pid: number, code: number | null, signal: string | null, replaced: boolean];
  /** More than `maxRestarts` deaths within `restartWindow`: workers are no longer replaced and the primary drains. */
  "give-up": [];
}

/** Tag of the helper's own IPC messages. */
const TAG = "sy-workers";
/** Environment variable carrying {@link WorkerContext.secret} to the workers (removed from their `process.env`). */
const SECRET_ENV = "SWITCHYARD_WORKERS_SECRET";

/** The primary's handle: the workers, their relay, and the drain. */
export class WorkersPrimary extends EventEmitter<WorkersEvents> {
  /** Always `true` (tells the primary's handle from a worker's). */
  readonly isPrimary = true as const;
  /** The IPC bus relay between the workers. */
  readonly relay = new IpcRelay();
  /** Resolves once `workers` workers listen (the first time). */
  readonly ready: Promise<void>;
  private readonly opts: ResolvedWorkers;
  private readonly live = new Map<number, Worker>();
  private readonly onlinePids = new Set<number>();
  private readonly deaths: number[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private restartCount = 0;
  private stopping: Promise<void> | undefined;
  private markReady!: () => void;
  private isReady = false;
  private readonly secret = randomBytes(32).toString("base64url");

  /** @internal Use {@link runWorkers}. */
  constructor(opts: ResolvedWorkers) {
    super();
    this.opts = opts;
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    cluster.setupPrimary({ serialization: "advanced" });
    for (let i = 0; i < opts.workers; i++) this.fork();
  }

  /** Process ids of the workers alive now. */
  get pids(): number[] {
    return [...this.live.values()].map((w) => w.process.pid!);
  }

  /** Workers replaced so far. */
  get restarts(): number {
    return this.restartCount;
  }

  /**
   * Drains every worker (they stop accepting, close their sessions so clients reconnect
   * elsewhere, and exit), killing those still alive after `shutdownTimeout`. Idempotent.
   */
  close(): Promise<void> {
    this.stopping ??= this.drainAll();
    return this.stopping;
  }

  /** Kills every worker at once (SIGKILL). */
  kill(): void {
    for (const w of this.live.values()) w.process.kill("SIGKILL");
  }

  private fork(): void {
    const w = cluster.fork({ [SECRET_ENV]: this.secret });
    const pid = w.process.pid!;
    this.live.set(pid, w);
    this.relay.attach(w.process as unknown as IpcEndpoint);
    w.on("message", (m: unknown) => {
      if (typeof m !== "object" || m === null || (m as { sy?: unknown }).sy !== TAG) return;
      if ((m as { t?: unknown }).t !== "online" || this.onlinePids.has(pid)) return;
      this.onlinePids.add(pid);
      this.emit("online", pid);
      if (!this.isReady && this.onlinePids.size >= this.opts.workers) {
        this.isReady = true;
        this.markReady();
      }
    });
    w.on("exit", (code, signal) => this.onExit(w, pid, code, signal));
    this.emit("fork", pid);
  }

  private onExit(w: Worker, pid: number, code: number | null, signal: string | null): void {
    this.live.delete(pid);
    this.onlinePids.delete(pid);
    this.relay.detach(w.process as unknown as IpcEndpoint);
    if (this.stopping !== undefined) {
      this.emit("exit", pid, code, signal, false);
      return;
    }
    const now = Date.now();
    this.deaths.push(now);
    while (this.deaths.length > 0 && this.deaths[0]! <= now - this.opts.restartWindow) {
      this.deaths.shift();
    }
    if (this.deaths.length > this.opts.maxRestarts) {
      this.emit("exit", pid, code, signal, false);
      console.error(
        `[switchyard] ${this.deaths.length} workers died within ${this.opts.restartWindow} ms (maxRestarts ${this.opts.maxRestarts}): giving up`,
      );
      this.emit("give-up");
      void this.close().then(() => {
        if (this.opts.handleSignals) process.exit(1);
      });
      return;
    }
    this.emit("exit", pid, code, signal, true);
    const delay = Math.min(
      this.opts.maxRestartDelay,
      this.opts.restartDelay * 2 ** Math.min(this.deaths.length - 1, 20),
    );
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.stopping !== undefined) return;
      this.restartCount++;
      this.fork();
    }, delay);
    this.timers.add(t);
  }

  private async drainAll(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const workers = [...this.live.values()];
    const exited = workers.map(
      (w) =>
        new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once("exit", () => resolve()))),
    );
    for (const w of workers) {
      try {
        if (w.isConnected()) w.send({ sy: TAG, t: "drain" });
        else w.process.kill("SIGTERM");
      } catch {
        w.process.kill("SIGTERM");
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.opts.shutdownTimeout);
    });
    const late = await Promise.race([Promise.all(exited).then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      for (const w of workers) if (!w.isDead()) w.process.kill("SIGKILL");
      // SIGKILL cannot be refused; wait (bounded) for the exits to be reaped.
      await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
  }
}

/** A worker's handle. */
export interface WorkersWorker {
  readonly isPrimary: false;
  /** node:cluster's worker id. */
  readonly id: number;
  /** What `start` returned. */
  readonly server: DrainableServer;
  /** This worker's cluster bus. */
  readonly bus: Bus;
  /** Drains this worker (as the primary's drain does) and exits the process with `code`. */
  drain(code?: number): Promise<void>;
}

/**
 * Runs `start` in `workers` node:cluster workers sharing one port, linked by an
 * {@link IpcBus} (or `options.bus`). In the primary, resolves with a
 * {@link WorkersPrimary} at once (await its `ready` for the workers to listen); in a
 * worker, with a {@link WorkersWorker} once `start` resolved and its server listens.
 *
 * ```ts
 * await runWorkers({ workers: 4 }, ({ bus }) => {
 *   const http = createServer();
 *   const io = new Server(http, { adapter: createAdapter(bus) });
 *   http.listen(3000);
 *   return io;
 * });
 * ```
 */
export async function runWorkers(
  options: WorkersOptions,
  start: StartWorker,
): Promise<WorkersPrimary | WorkersWorker> {
  const opts = resolveWorkersOptions(options);
  if (typeof start !== "function") throw new InvalidOptionError("start", "a function", start);
  if (cluster.isPrimary) {
    const primary = new WorkersPrimary(opts);
    if (opts.handleSignals) installPrimarySignals(primary);
    return primary;
  }
  return startWorker(opts, start);
}

function installPrimarySignals(primary: WorkersPrimary): void {
  let signals = 0;
  const onSignal = (): void => {
    if (++signals > 1) {
      primary.kill();
      process.exit(1);
    }
    void primary.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

async function startWorker(opts: ResolvedWorkers, start: StartWorker): Promise<WorkersWorker> {
  const id = cluster.worker?.id ?? 0;
  const secret = process.env[SECRET_ENV] ?? randomBytes(32).toString("base64url");
  // Not inherited by what the application spawns.
  delete process.env[SECRET_ENV];
  const bus = opts.bus();
  let draining: Promise<void> | undefined;
  let server: DrainableServer | undefined;
  const drain = (code = 0): Promise<void> => {
    draining ??= drainWorker(server, bus, opts.shutdownTimeout, code);
    return draining;
  };
  // Signals reach a worker too (Ctrl-C goes to the whole process group): drain, do not die.
  process.on("SIGTERM", () => void drain());
  process.on("SIGINT", () => void drain());
  // The primary is gone: nobody will restart or route to us any more.
  process.on("disconnect", () => void drain());
  process.on("message", (m: unknown) => {
    if (typeof m !== "object" || m === null || (m as { sy?: unknown }).sy !== TAG) return;
    if ((m as { t?: unknown }).t === "drain") void drain();
  });
  server = await start({ bus, id, secret });
  const http = server.httpServer;
  if (http !== undefined && !http.listening) {
    await new Promise<void>((resolve, reject) => {
      http.once("listening", resolve);
      http.once("error", reject);
    });
  }
  if (process.connected) process.send?.({ sy: TAG, t: "online" });
  return { isPrimary: false, id, server, bus, drain };
}

async function drainWorker(
  server: DrainableServer | undefined,
  bus: Bus,
  timeout: number,
  code: number,
): Promise<void> {
  setTimeout(() => process.exit(code === 0 ? 1 : code), timeout).unref();
  if (server !== undefined) {
    // Stop accepting first (the primary no longer hands us connections), then close the
    // Engine.IO sessions: clients see a transport close and reconnect to a live worker
    // (a Socket.IO "server shutting down" disconnect would keep them from reconnecting).
    server.httpServer?.close();
    server.engine.close();
    await server.close().catch(() => {});
  }
  await bus.close().catch(() => {});
  process.exit(code);
}
