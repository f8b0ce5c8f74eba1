/** What the results were measured on. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { sleep } from "./clock.js";

export interface MachineInfo {
  cpuModel: string;
  nproc: number;
  memGiB: number;
  freeG: string;
  node: string;
  kernel: string;
  fdLimit: string;
  socketio: string;
  ws: string;
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8" }).trim();
  } catch {
    return "?";
  }
}

function pkgVersion(name: string): string {
  try {
    const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "?";
  return {
    cpuModel: model,
    nproc: Number(sh("nproc", [])),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    freeG: sh("free", ["-g"]),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    fdLimit: sh("sh", ["-c", "ulimit -n"]),
    socketio: pkgVersion("socket.io"),
    ws: pkgVersion("ws"),
  };
}

export function loadavg(): [number, number, number] {
  const [a, b, c] = readFileSync("/proc/loadavg", "utf8").split(" ").map(Number);
  return [a!, b!, c!];
}

/**
 * Other work on the machine skews every figure: wait (bounded) until the 1-minute load
 * average is below `threshold`, polling every `pollMs`. Returns what it saw.
 */
export async function waitForQuiet(threshold: number, maxWaitMs: number, pollMs = 30_000) {
  const t0 = Date.now();
  let load = loadavg();
  while (load[0] >= threshold && Date.now() - t0 < maxWaitMs) {
    process.stderr.write(
      `load ${load.join(" ")} ≥ ${threshold}: waiting (${Math.round((Date.now() - t0) / 1000)} s)\n`,
    );
    await sleep(Math.min(pollMs, maxWaitMs - (Date.now() - t0)));
    load = loadavg();
  }
  return { load, waitedMs: Date.now() - t0, quiet: load[0] < threshold };
}

/**
 * Share of CPU time the whole machine spent idle over `ms` (from /proc/stat). On this VM
 * the load average can sit above 1.0 with nothing running (kernel threads in D state
 * count), so the run records this beside it.
 */
export async function cpuIdleShare(ms = 3000): Promise<number> {
  const read = () => {
    const f = readFileSync("/proc/stat", "utf8")
      .split("\n")[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return (b.idle - a.idle) / (b.total - a.total);
}
