/**
 * Starts and stops the processes of one scenario run: the server under test (forked with
 * --expose-gc, optionally --cpu-prof) and load-generator workers, each with an IPC
 * channel for requests. Every child is tracked and killed on completion, failure,
 * SIGINT/SIGTERM, or when the orchestrator exits.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ServerStats } from "../apps/control.js";

export type Impl = "switchyard" | "socketio" | "bare-ws" | "socketio-bun";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) {
    try {
      c.kill("SIGKILL");
    } catch {}
  }
  live.clear();
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** A forked child answering `{id, ...}` requests with `{id, ok, result | error}`. */
class Rpc {
  readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  readonly ready: Promise<Record<string, unknown>>;
  private exited = false;

  constructor(child: ChildProcess, what: string) {
    this.child = child;
    live.add(child);
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${what} did not start within 30 s`)),
        30_000,
      );
      child.on(
        "message",
        (m: { id?: number; ok?: boolean; result?: unknown; error?: string; ready?: boolean }) => {
          if (m.ready === true) {
            clearTimeout(timer);
            resolve(m as Record<string, unknown>);
            return;
          }
          const w = m.id === undefined ? undefined : this.waiting.get(m.id);
          if (w === undefined) return;
          this.waiting.delete(m.id!);
          if (m.ok === true) w.resolve(m.result);
          else w.reject(new Error(`${what}: ${m.error}`));
        },
      );
      child.on("exit", (code, signal) => {
        this.exited = true;
        live.delete(child);
        clearTimeout(timer);
        const err = new Error(`${what} exited (code ${code}, signal ${signal})`);
        reject(err);
        for (const w of this.waiting.values()) w.reject(err);
        this.waiting.clear();
      });
    });
    this.ready.catch(() => {});
  }

  call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error("process has exited"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args, gc: (args as { gc?: boolean }).gc });
    });
  }

  /** Asks for a clean exit (so a CPU profile gets written), then kills after a grace period. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    try {
      this.child.send({ id: 0, cmd: "exit" });
    } catch {}
    const t = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await gone;
    clearTimeout(t);
  }

  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}

export interface ServerHandle {
  impl: Impl;
  port: number;
  url: string;
  pid: number;
  stats(gc?: boolean): Promise<ServerStats>;
  /** Full GC, then a heap snapshot written to `path`. */
  heapSnapshot(path: string): Promise<string>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Directory for a --cpu-prof profile of the server. */
  cpuProfDir?: string;
  /** Extra environment of the server process (cluster scenario: BENCH_BUS, BENCH_BUS_URL). */
  env?: Record<string, string>;
}

/**
 * How Switchyard is loaded: from its TypeScript sources through tsx and the "switchyard-source"
 * export condition (default: always the code in the tree), or from the built dist
 * (`BENCH_SWITCHYARD=dist`, after `npm run build` at the root).
 */
function serverExecArgv(o: StartOptions): string[] {
  const args = ["--expose-gc", "--import", "tsx"];
  if (process.env.BENCH_SWITCHYARD !== "dist") args.unshift("--conditions=switchyard-source");
  if (o.cpuProfDir !== undefined) args.push("--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`);
  return args;
}

/**
 * The Bun binary of the npm package `bun` (a devDependency of bench/), which runs
 * `apps/socketio-bun.ts` (TypeScript natively, no tsx; Bun speaks Node's IPC channel).
 */
export function bunPath(): string {
  return here("../node_modules/bun/bin/bun.exe");
}

export async function startServer(impl: Impl, o: StartOptions = {}): Promise<ServerHandle> {
  const file = here(`../apps/${impl}.ts`);
  const onBun = impl === "socketio-bun";
  if (onBun && o.cpuProfDir !== undefined) throw new Error("no --cpu-prof on Bun");
  const child = fork(file, [], {
    ...(onBun ? { execPath: bunPath() } : {}),
    execArgv: onBun ? [] : serverExecArgv(o),
    env: o.env === undefined ? process.env : { ...process.env, ...o.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const rpc = new Rpc(child, `server ${impl}`);
  const ready = await rpc.ready;
  const port = ready.port as number;
  return {
    impl,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stats: (gc = false) => rpc.call<ServerStats>("stats", { gc }, 60_000),
    heapSnapshot: async (path) =>
      (await rpc.call<{ path: string }>("heapsnapshot", { path }, 300_000)).path,
    stop: () => rpc.stop(),
  };
}

export interface Worker {
  // biome-ignore lint/suspicious/noExplicitAny: replies are plain JSON objects whose fields the scenarios read
  call<T = any>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  kill(): void;
}

export async function startWorker(): Promise<Worker> {
  const child = fork(here("../loadgen/worker.ts"), [], {
    execArgv: ["--import", "tsx", "--max-old-space-size=4096"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const rpc = new Rpc(child, "load generator");
  await rpc.ready;
  return { call: (cmd, args, t) => rpc.call(cmd, args, t), kill: () => rpc.kill() };
}

/** Kills whatever is still running (end of a scenario run). */
export function killEverything(): void {
  killAll();
}

/** CPU ms between two server snapshots. */
export function cpuMs(a: ServerStats, b: ServerStats): number {
  return (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system) / 1000;
}
