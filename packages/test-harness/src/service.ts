// Shared lifecycle of a harness-started service: one temp dir and one tag for all its
// incarnations, so restart() keeps port and data dir and stop() can prove nothing is left.
import type { ProcessInfo } from "./proc-scan.js";
import { findProcesses } from "./proc-scan.js";
import type { ManagedProcess } from "./process.js";
import type { TempDir } from "./tmp.js";

/** Lifecycle methods shared by every service handle. */
export interface ServiceControl {
  /** Instance's own temp dir (config, data, logs); removed by `stop()`. */
  readonly dir: string;
  /** The current incarnation, `undefined` after `stop()` or `kill()`. */
  readonly process: ManagedProcess | undefined;
  /** Retained output of the current (or last) incarnation. */
  output(): string;
  /** Processes of this instance still alive (any incarnation); empty after a clean stop. */
  leftovers(): ProcessInfo[];
  /** Graceful stop (SIGTERM, SIGKILL after a grace period), then removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Lifecycle of the brokers, which fault tests restart and kill. */
export interface RestartableControl extends ServiceControl {
  /** Stops the current incarnation (if running) and starts a new one on the same port and data dir. */
  restart(): Promise<void>;
  /** SIGKILLs every process of the instance (a crash); the dir is kept so `restart()` works. */
  kill(): Promise<void>;
}

export class Service implements RestartableControl {
  private current: ManagedProcess | undefined;
  private last: ManagedProcess | undefined;
  private stopped = false;

  private constructor(
    private readonly tempDir: TempDir,
    private readonly tag: string,
    private readonly launch: () => Promise<ManagedProcess>,
  ) {}

  /** Launches the first incarnation; removes the temp dir if that fails. */
  static async start(
    tempDir: TempDir,
    tag: string,
    launch: () => Promise<ManagedProcess>,
  ): Promise<Service> {
    const service = new Service(tempDir, tag, launch);
    try {
      service.current = await launch();
      service.last = service.current;
    } catch (error) {
      tempDir.remove();
      throw error;
    }
    return service;
  }

  /** A plain handle object: `fields` plus the lifecycle methods bound to this service. */
  handle<T extends object>(fields: T): T & RestartableControl {
    const service = this;
    return {
      ...fields,
      get dir() {
        return service.dir;
      },
      get process() {
        return service.process;
      },
      output: () => service.output(),
      leftovers: () => service.leftovers(),
      stop: () => service.stop(),
      restart: () => service.restart(),
      kill: () => service.kill(),
    };
  }

  get dir(): string {
    return this.tempDir.path;
  }

  get process(): ManagedProcess | undefined {
    return this.current;
  }

  output(): string {
    return this.last?.output() ?? "";
  }

  leftovers(): ProcessInfo[] {
    const byTag = findProcesses({ tag: this.tag, cwdPrefix: this.tempDir.path });
    const group = this.last === undefined ? [] : this.last.leftovers();
    const seen = new Set(byTag.map((p) => p.pid));
    return [...byTag, ...group.filter((p) => !seen.has(p.pid))];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const current = this.current;
    this.current = undefined;
    try {
      if (current !== undefined) await current.stop();
    } finally {
      this.tempDir.remove();
    }
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error("restart() after stop(): the service is gone");
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) await current.stop();
    this.current = await this.launch();
    this.last = this.current;
  }

  async kill(): Promise<void> {
    if (this.stopped) return;
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) await current.kill();
  }
}

/** True if the error text says a port was taken (the service lost a freePort race). */
export function isAddressInUse(error: unknown): boolean {
  const text = error instanceof Error ? error.message : String(error);
  return /address already in use|eaddrinuse/i.test(text);
}

/**
 * Runs `attempt` up to `attempts` times while it fails with "address in use" — only
 * sensible when the ports were picked by {@link freePort}, not requested by the caller.
 */
export async function retryOnPortClash<T>(
  portsExplicit: boolean,
  attempt: () => Promise<T>,
  attempts = 3,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (portsExplicit || i >= attempts || !isAddressInUse(error)) throw error;
    }
  }
}
