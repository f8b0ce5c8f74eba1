// Managed child processes for tests: spawned in their own process group, output kept in
// a ring buffer for error messages, readiness polled with backoff, stopped with
// SIGTERM → SIGKILL, and killed (group + every process carrying the instance tag) at
// exit of the test process, whatever happened to the test.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { registerExitCleanup } from "./cleanup.js";
import { findProcesses, HARNESS_TAG_ENV, type ProcessInfo, signalAll } from "./proc-scan.js";

/** How a process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * A readiness check, polled with backoff until it returns/resolves `true`. Returning
 * `false` or throwing means "not yet"; the last error is quoted if the wait times out.
 */
export type ReadinessProbe = () => boolean | Promise<boolean>;

/** Options of {@link startProcess}. */
export interface StartProcessOptions {
  /** Executable (absolute path or looked up in PATH). */
  readonly command: string;
  /** Arguments. @default [] */
  readonly args?: readonly string[];
  /** Name used in error messages. @default basename of `command` */
  readonly name?: string;
  /** Working directory. */
  readonly cwd?: string;
  /**
   * A directory owned by this instance alone (its temp dir): any process whose working
   * directory is inside it counts as one of its processes (see `leftovers`). This catches
   * children that rewrite their environment (nginx workers). Never a shared directory.
   */
  readonly instanceDir?: string;
  /** Variables added to (or, when `undefined`, removed from) the inherited environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Start from an empty environment instead of `process.env`. @default false */
  readonly cleanEnv?: boolean;
  /** Run as this user id (requires root). */
  readonly uid?: number;
  /** Run as this group id (requires root). */
  readonly gid?: number;
  /**
   * Instance tag put into `SWITCHYARD_HARNESS_TAG`; processes carrying it are swept on stop.
   * Pass the same tag to successive incarnations of one service. @default a fresh random tag
   */
  readonly tag?: string;
  /** Bytes of stdout/stderr kept for error messages and `waitForOutput`. @default 65536 */
  readonly outputLimit?: number;
  /** Signal sent to the process group by `stop()`. @default "SIGTERM" */
  readonly stopSignal?: NodeJS.Signals;
  /** Time between the stop signal and SIGKILL. @default 5000 */
  readonly killGraceMs?: number;
  /** When given, `startProcess` resolves only once this probe succeeds. */
  readonly ready?: ReadinessProbe;
  /** Bound on the readiness wait. @default 15000 */
  readonly readyTimeoutMs?: number;
}

/** Options of {@link ManagedProcess.waitUntilReady}. */
export interface WaitReadyOptions {
  /** @default 15000 */
  readonly timeoutMs?: number;
}

/** A child process started by {@link startProcess}. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly tag: string;
  /** Settles when the direct child exits. Hold a timer while awaiting it: the child is unref'd. */
  readonly exited: Promise<ExitInfo>;
  /** `undefined` while the direct child runs. */
  readonly exitInfo: ExitInfo | undefined;
  readonly running: boolean;
  /** Retained tail of stdout. */
  stdout(): string;
  /** Retained tail of stderr. */
  stderr(): string;
  /** Retained tail of stdout and stderr, interleaved as received. */
  output(): string;
  /** Resolves with the retained output once it matches `pattern`. */
  waitForOutput(pattern: RegExp | string, options?: { timeoutMs?: number }): Promise<string>;
  /** Polls `probe` with backoff; rejects with the last output on timeout or early exit. */
  waitUntilReady(probe: ReadinessProbe, options?: WaitReadyOptions): Promise<void>;
  /**
   * Sends the stop signal to the process group, SIGKILLs it after the grace period, then
   * terminates any leftover process of the instance (group, tag, cwd) and waits for them.
   */
  stop(options?: { graceMs?: number }): Promise<ExitInfo>;
  /** SIGKILLs the group and every leftover of the instance, and waits for them. */
  kill(): Promise<ExitInfo>;
  /** Live processes of this instance: its process group, its tag, or cwd inside `instanceDir`. */
  leftovers(): ProcessInfo[];
  /** Resolves with exit info, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<ExitInfo>;
}

const live = new Set<ManagedProcessImpl>();
let tagCounter = 0;

/** A fresh tag, unique across concurrently running test processes. */
export function newTag(prefix: string): string {
  tagCounter += 1;
  return `${prefix}-${process.pid}-${tagCounter}-${randomBytes(4).toString("hex")}`;
}

/** Every managed process that has been started and not yet stopped. */
export function liveProcesses(): readonly ManagedProcess[] {
  return [...live];
}

/** Stops every live managed process (useful in a global `after` hook). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

class OutputRing {
  private chunks: string[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
    }
    if (this.size > this.limit) {
      const only = this.chunks[0]!.slice(-this.limit);
      this.chunks = [only];
      this.size = only.length;
    }
  }

  toString(): string {
    if (this.chunks.length > 1) this.chunks = [this.chunks.join("")];
    return this.chunks[0] ?? "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describeExit(info: ExitInfo): string {
  return info.signal !== null ? `signal ${info.signal}` : `code ${info.code}`;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is empty.
  }
}

class ManagedProcessImpl implements ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly tag: string;
  readonly exited: Promise<ExitInfo>;
  exitInfo: ExitInfo | undefined;

  private readonly out: OutputRing;
  private readonly err: OutputRing;
  private readonly all: OutputRing;
  private readonly events = new EventEmitter();
  private readonly instanceDir: string | undefined;
  private readonly stopSignal: NodeJS.Signals;
  private readonly killGraceMs: number;
  private readonly unregister: () => void;
  private stopping: Promise<ExitInfo> | undefined;

  constructor(child: ChildProcess, options: StartProcessOptions, tag: string) {
    this.name = options.name ?? options.command.split("/").pop()!;
    this.pid = child.pid!;
    this.tag = tag;
    this.instanceDir = options.instanceDir;
    this.stopSignal = options.stopSignal ?? "SIGTERM";
    this.killGraceMs = options.killGraceMs ?? 5000;
    const limit = options.outputLimit ?? 65536;
    this.out = new OutputRing(limit);
    this.err = new OutputRing(limit);
    this.all = new OutputRing(limit);
    this.events.setMaxListeners(0);
    // Errors after a successful spawn (e.g. a failed kill) must not crash the test process.
    child.on("error", () => undefined);

    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitInfo = { code, signal };
        this.events.emit("exit");
        resolve(this.exitInfo);
      });
    });
    const onData = (ring: OutputRing) => (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      ring.push(text);
      this.all.push(text);
      this.events.emit("data");
    };
    child.stdout?.on("data", onData(this.out));
    child.stderr?.on("data", onData(this.err));
    // A forgotten service must not keep the test process alive; the exit cleanup kills it.
    child.unref();
    unrefStream(child.stdout);
    unrefStream(child.stderr);

    live.add(this);
    this.unregister = registerExitCleanup(() => this.killSync());
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  stdout(): string {
    return this.out.toString();
  }

  stderr(): string {
    return this.err.toString();
  }

  output(): string {
    return this.all.toString();
  }

  leftovers(): ProcessInfo[] {
    return findProcesses({
      pgid: this.pid,
      tag: this.tag,
      ...(this.instanceDir === undefined ? {} : { cwdPrefix: this.instanceDir }),
    });
  }

  waitForExit(timeoutMs = 10000): Promise<ExitInfo> {
    if (this.exitInfo !== undefined) return Promise.resolve(this.exitInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`));
      }, timeoutMs);
      void this.exited.then((info) => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  }

  waitForOutput(pattern: RegExp | string, options: { timeoutMs?: number } = {}): Promise<string> {
    const timeoutMs = options.timeoutMs ?? 15000;
    const test = (text: string): boolean =>
      typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const text = this.output();
        if (test(text)) {
          finish();
          resolve(text);
        } else if (this.exitInfo !== undefined) {
          finish();
          reject(
            this.failure(`exited (${describeExit(this.exitInfo)}) before printing ${pattern}`),
          );
        }
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.events.off("data", check);
        this.events.off("exit", check);
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.failure(`did not print ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.events.on("data", check);
      this.events.on("exit", check);
      check();
    });
  }

  async waitUntilReady(probe: ReadinessProbe, options: WaitReadyOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 15000;
    const started = Date.now();
    const deadline = started + timeoutMs;
    let delay = 20;
    let lastError: unknown;
    for (;;) {
      if (this.exitInfo !== undefined) {
        throw this.failure(
          `exited (${describeExit(this.exitInfo)}) after ${Date.now() - started} ms, before becoming ready`,
        );
      }
      try {
        if (await probe()) return;
        lastError = undefined;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= deadline) {
        const why = lastError instanceof Error ? ` (last probe error: ${lastError.message})` : "";
        throw this.failure(`not ready after ${timeoutMs} ms${why}`);
      }
      await Promise.race([sleep(Math.min(delay, Math.max(0, deadline - Date.now()))), this.exited]);
      delay = Math.min(delay * 1.5, 500);
    }
  }

  stop(options: { graceMs?: number } = {}): Promise<ExitInfo> {
    this.stopping ??= this.terminate(this.stopSignal, options.graceMs ?? this.killGraceMs);
    return this.stopping;
  }

  kill(): Promise<ExitInfo> {
    this.stopping ??= this.terminate("SIGKILL", 0);
    return this.stopping;
  }

  private async terminate(signal: NodeJS.Signals, graceMs: number): Promise<ExitInfo> {
    if (this.exitInfo === undefined) killGroup(this.pid, signal);
    let info: ExitInfo;
    try {
      info = await this.waitForExit(graceMs > 0 ? graceMs : 2000);
    } catch {
      killGroup(this.pid, "SIGKILL");
      info = await this.waitForExit(10000);
    }
    await this.reapLeftovers(signal === "SIGKILL" ? 0 : Math.min(graceMs, 2000));
    live.delete(this);
    this.unregister();
    return info;
  }

  // Processes outside the group (daemons that setsid) or slow group members: give them
  // `graceMs` to go on their own, then SIGTERM, then SIGKILL, and wait until none is left.
  private async reapLeftovers(graceMs: number): Promise<void> {
    const until = async (ms: number): Promise<ProcessInfo[]> => {
      const deadline = Date.now() + ms;
      for (;;) {
        const left = this.leftovers();
        if (left.length === 0 || Date.now() >= deadline) return left;
        await sleep(25);
      }
    };
    let left = await until(graceMs);
    if (left.length > 0 && graceMs > 0) {
      signalAll(
        left.map((p) => p.pid),
        "SIGTERM",
      );
      left = await until(1000);
    }
    if (left.length > 0) {
      killGroup(this.pid, "SIGKILL");
      signalAll(
        left.map((p) => p.pid),
        "SIGKILL",
      );
      left = await until(5000);
    }
    if (left.length > 0) {
      const list = left.map((p) => `${p.pid} ${p.cmdline}`).join("\n");
      throw new Error(`${this.name}: processes survived SIGKILL:\n${list}`);
    }
  }

  private killSync(): void {
    killGroup(this.pid, "SIGKILL");
    signalAll(
      this.leftovers().map((p) => p.pid),
      "SIGKILL",
    );
    live.delete(this);
  }

  private failure(message: string): Error {
    const output = tail(this.output()).trimEnd();
    return new Error(
      `${this.name} (pid ${this.pid}) ${message}\n--- last output ---\n${output || "(none)"}\n---`,
    );
  }
}

function unrefStream(stream: unknown): void {
  const maybe = stream as { unref?: () => void } | null;
  maybe?.unref?.();
}

/**
 * Spawns a managed process in its own process group (`detached`), stamped with
 * `SWITCHYARD_HARNESS_TAG`, registered for SIGKILL at exit of the test process. If
 * `ready` is given, resolves only once it succeeds; on failure the process is killed and
 * the error quotes its last output.
 */
export async function startProcess(options: StartProcessOptions): Promise<ManagedProcess> {
  if (options.instanceDir !== undefined && !/^\/[^/]+\/./.test(options.instanceDir)) {
    throw new Error(`instanceDir must be an absolute, instance-owned dir: ${options.instanceDir}`);
  }
  const tag = options.tag ?? newTag("proc");
  const env: Record<string, string> = {};
  if (options.cleanEnv !== true) {
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  }
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  env[HARNESS_TAG_ENV] = tag;

  const child = spawn(options.command, [...(options.args ?? [])], {
    cwd: options.cwd,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => {
      reject(new Error(`cannot start ${options.command}: ${error.message}`, { cause: error }));
    });
  });

  const managed = new ManagedProcessImpl(child, options, tag);
  if (options.ready !== undefined) {
    try {
      await managed.waitUntilReady(options.ready, { timeoutMs: options.readyTimeoutMs ?? 15000 });
    } catch (error) {
      await managed.kill().catch(() => undefined);
      throw error;
    }
  }
  return managed;
}
