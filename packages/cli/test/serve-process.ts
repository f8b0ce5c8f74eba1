// `switchyard serve` spawned from source for the end-to-end tests: the node arguments that run
// packages/cli/src/main.ts through tsx with the `switchyard-source` condition, a start that
// waits for /readyz, a list of the started processes that one call stops, and a bounded
// run to completion (`--print-config`, …).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { httpStatus, type ManagedProcess, startProcess, within } from "@switchyard/test-harness";

/** The repository's root: the spawned command's cwd. */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The command's entry point, run from source. */
export const MAIN = join(ROOT, "packages/cli/src/main.ts");
/** `node` arguments before the command's own: `[...NODE_ARGS, "serve", …]`. */
export const NODE_ARGS: readonly string[] = [
  "--conditions=switchyard-source",
  "--import",
  "tsx",
  MAIN,
];

export interface ServeOptions {
  /** Port for `--port` (host 127.0.0.1); readiness is its /readyz answering 200. */
  port: number;
  /** Arguments after `serve --host 127.0.0.1 --port <port>`. */
  args?: readonly string[];
  /** Process name in the harness's messages. */
  name: string;
  /** Extra environment (on top of the harness's). */
  env?: Record<string, string>;
  /** Bound on readiness; 30 s unless told. */
  readyTimeoutMs?: number;
}

/** The `serve` processes a test file starts; `stopAll()` (in its afterEach) stops them. */
export class ServeProcesses {
  private readonly procs: ManagedProcess[] = [];

  /** @param graceMs grace before SIGKILL when stopping. */
  constructor(private readonly graceMs: number) {}

  /** Starts `switchyard serve --host 127.0.0.1 --port <port> …args` and waits until ready. */
  async start(opts: ServeOptions): Promise<ManagedProcess> {
    const { port } = opts;
    const p = await startProcess({
      command: process.execPath,
      args: [
        ...NODE_ARGS,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        ...(opts.args ?? []),
      ],
      cwd: ROOT,
      name: opts.name,
      env: opts.env,
      ready: async () => (await httpStatus(`http://127.0.0.1:${port}/readyz`)) === 200,
      readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    });
    this.procs.push(p);
    return p;
  }

  /** Stops every process started so far (all of them, whatever each one does). */
  async stopAll(): Promise<void> {
    await Promise.allSettled(this.procs.splice(0).map((p) => p.stop({ graceMs: this.graceMs })));
  }
}

/** Runs `switchyard …args` to completion (killed after 25 s, bounded at 30 s). */
export function runCommand(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return within(
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...NODE_ARGS, ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, stdout, stderr }));
      setTimeout(() => child.kill("SIGKILL"), 25_000).unref();
    }),
    30_000,
    `switchyard ${args.join(" ")}`,
  );
}
