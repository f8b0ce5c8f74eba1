// Linux /proc scanning, used to find every process that belongs to a harness-started
// service, including the ones that escape its process group (Erlang's epmd daemon,
// erl_child_setup, inet_gethost all call setsid).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** One running (non-zombie) process as seen in /proc. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgid: number;
  /** Short executable name (`/proc/<pid>/comm`). */
  readonly comm: string;
  /** Full command line, arguments joined by spaces. */
  readonly cmdline: string;
}

/** What makes a process part of a service instance; any one criterion matches. */
export interface ProcessMatch {
  /** Value of the `SWITCHYARD_HARNESS_TAG` environment variable. */
  readonly tag?: string;
  /** Process group id (the leader's pid, since services are spawned detached). */
  readonly pgid?: number;
  /** Working directory equal to or below this path (survives setproctitle tricks). */
  readonly cwdPrefix?: string;
}

/** Environment variable stamped on every harness-started process tree. */
export const HARNESS_TAG_ENV = "SWITCHYARD_HARNESS_TAG";

function readStat(pid: number): { ppid: number; pgid: number; state: string } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // comm is in parentheses and may itself contain spaces or parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0] ?? "";
  return { state, ppid: Number(fields[1]), pgid: Number(fields[2]) };
}

function readText(path: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return "";
  }
}

function hasEnv(pid: number, entry: string): boolean {
  const environ = readText(`/proc/${pid}/environ`);
  return environ.length > 0 && environ.split("\0").includes(entry);
}

function cwdOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, "");
  } catch {
    return undefined;
  }
}

/** Lists processes matching any criterion of `match` (never the current process, never zombies). */
export function findProcesses(match: ProcessMatch): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  const tagEntry = match.tag === undefined ? undefined : `${HARNESS_TAG_ENV}=${match.tag}`;
  // An empty or root prefix would match every process: ignore it.
  const prefix = match.cwdPrefix?.replace(/\/+$/, "") || undefined;
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const stat = readStat(pid);
    if (stat === undefined || stat.state === "Z" || stat.state === "X") continue;
    let matched = match.pgid !== undefined && stat.pgid === match.pgid;
    if (!matched && tagEntry !== undefined) matched = hasEnv(pid, tagEntry);
    if (!matched && prefix !== undefined) {
      const cwd = cwdOf(pid);
      matched = cwd !== undefined && (cwd === prefix || cwd.startsWith(`${prefix}/`));
    }
    if (!matched) continue;
    out.push({
      pid,
      ppid: stat.ppid,
      pgid: stat.pgid,
      comm: readText(`/proc/${pid}/comm`).trim(),
      cmdline: readText(`/proc/${pid}/cmdline`).split("\0").join(" ").trim(),
    });
  }
  return out;
}

/** Sends `signal` to each pid, ignoring processes that are already gone. */
export function signalAll(pids: Iterable<number>, signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // ESRCH: already gone.
    }
  }
}
