import { type ManagedProcess, startProcess } from "./process.js";
import { BINARIES, requireBinary, requirePythonModules } from "./require-binary.js";

/** Debian's interpreter, which sees the python3-* packages (a pyenv python3 may come first on PATH). */
export const PYTHON = "/usr/bin/python3";

/** Options of {@link runPython} and {@link startPython}. */
export interface PythonOptions {
  /** Extra environment variables (`PYTHONUNBUFFERED=1` is always set). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Modules that must import, checked once per test process. @default ["socketio"] */
  readonly requireModules?: readonly string[];
}

/** Options of {@link runPython}. */
export interface RunPythonOptions extends PythonOptions {
  /** Kill the script and reject after this long. @default 60000 */
  readonly timeoutMs?: number;
}

/** How a Python script ended, with its complete output. */
export interface PythonResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const OUTPUT_LIMIT = 32 * 1024 * 1024;

/**
 * Starts `/usr/bin/python3 -u script ...args` as a managed process (killed at exit of
 * the test process if still running) — for long-running clients; see `waitForOutput`.
 */
export function startPython(
  scriptPath: string,
  args: readonly string[] = [],
  options: PythonOptions = {},
): Promise<ManagedProcess> {
  requireBinary(BINARIES.python);
  requirePythonModules(options.requireModules ?? ["socketio"]);
  return startProcess({
    name: `python3 ${scriptPath.split("/").pop()}`,
    command: PYTHON,
    args: ["-u", scriptPath, ...args],
    env: { PYTHONUNBUFFERED: "1", ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    outputLimit: OUTPUT_LIMIT,
    killGraceMs: 2000,
  });
}

/**
 * Runs a Python script to completion and resolves with its exit status and full output
 * (whatever the exit code: assert on it). Rejects, quoting the output, on timeout.
 */
export async function runPython(
  scriptPath: string,
  args: readonly string[] = [],
  options: RunPythonOptions = {},
): Promise<PythonResult> {
  const child = await startPython(scriptPath, args, options);
  try {
    const exit = await child.waitForExit(options.timeoutMs ?? 60000);
    await child.stop();
    return { ...exit, stdout: child.stdout(), stderr: child.stderr() };
  } catch (error) {
    await child.kill();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}\n--- output ---\n${child.output().slice(-4000)}\n---`);
  }
}
