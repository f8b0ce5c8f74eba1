/**
 * Profiles one server through the 64 B fan-out phase (1,000 WebSocket clients: warm-up,
 * bursts, flat out; by default Switchyard) with --cpu-prof and prints the functions with
 * the most self time.
 *
 *   node --conditions=switchyard-source --import tsx tools/profile.ts [switchyard|socketio|bare-ws] [--echo|--polling|--connect] [--write-md]
 *
 * --echo profiles the echo phase (10 s) instead, --polling the long-polling fan-out,
 * --connect a connect storm of 10k clients.
 *
 * The profile lands in results/raw/profiles/ (open it in Chrome DevTools); the summary
 * goes to results/profile-<impl>-<phase>.md and, with --write-md, into RESULTS.md.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Impl } from "../lib/harness.js";
import { replaceBlock } from "../lib/report.js";
import { runStorm } from "../scenarios/connections.js";
import { runPolling } from "../scenarios/polling.js";
import type { RunResult } from "../scenarios/types.js";
import { runWebsocket } from "../scenarios/websocket.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/**
 * Self time per function, counted from the first sample whose stack contains one of
 * `markers` (the first broadcast, the first echo): process startup and module loading
 * stay out of the picture.
 */
export function summarizeProfile(prof: CpuProfile, markers: string[], top = 25) {
  const byNode = new Map<number, CpuProfile["nodes"][number]>();
  const parent = new Map<number, number>();
  for (const n of prof.nodes) {
    byNode.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const marked = (id: number): boolean => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      if (markers.includes(byNode.get(cur)?.callFrame.functionName ?? "")) return true;
    }
    return false;
  };
  let from = prof.samples.findIndex((id) => marked(id));
  if (from < 0) from = 0;
  const self = new Map<string, number>();
  let total = 0;
  for (let i = from; i < prof.samples.length; i++) {
    const node = byNode.get(prof.samples[i]!);
    const dt = prof.timeDeltas[i] ?? 0;
    if (node === undefined) continue;
    const f = node.callFrame;
    const file = f.url
      .replace(/^file:\/\//, "")
      .replace(/^.*\/(packages|node_modules|bench)\//, "$1/");
    // Line numbers of tsx-transpiled sources do not match the .ts files: name + file only.
    const line = f.url === "" || file.endsWith(".ts") ? "" : `:${f.lineNumber + 1}`;
    const key = `${f.functionName || "(anonymous)"} — ${file || "(native)"}${line}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  const idle = self.get("(idle) — (native)") ?? 0;
  const busy = total - idle;
  const rows = [...self.entries()]
    .filter(([k]) => k !== "(idle) — (native)")
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => ({ fn: k, ms: us / 1000, pctOfBusy: (us / busy) * 100 }));
  return { totalMs: total / 1000, busyMs: busy / 1000, rows };
}

interface Phase {
  /** Counting starts at the first sample under one of these functions. */
  markers: string[];
  run(impl: Impl, dir: string): Promise<RunResult>;
  title(impl: Impl): string;
  figure(r: RunResult): string;
}

const PHASES: Record<string, Phase> = {
  f64: {
    markers: ["broadcast", "textFrame"],
    run: (impl, dir) => runWebsocket(impl, "quick", { cpuProfDir: dir }, "f64"),
    title: (impl) =>
      `${impl}, fan-out to 1,000 WebSocket clients, 64 B: warm-up, one burst of 200 ticks, 1.5 s flat out (\`tools/profile.ts\`)`,
    figure: (r) =>
      `${r.metrics["f64.cpuPerDeliveryUs"]?.toFixed(2)} µs server CPU per delivery, ${Math.round(r.metrics["f64.perSec"] ?? 0)} deliveries/s`,
  },
  polling: {
    markers: ["broadcast"],
    run: (impl, dir) => runPolling(impl, "quick", { cpuProfDir: dir }),
    title: (impl) =>
      `${impl}, fan-out to 1,000 long-polling clients, 64 B: warm-up, one burst of 100 ticks, 1.5 s flat out (\`tools/profile.ts --polling\`)`,
    figure: (r) => `${r.metrics["poll.cpuPerDeliveryUs"]?.toFixed(2)} µs server CPU per delivery`,
  },
  echo: {
    markers: ["onEcho"],
    run: (impl, dir) => runWebsocket(impl, "full", { cpuProfDir: dir }, "echo"),
    title: (impl) =>
      `${impl}, echo acks, 100 clients, one in flight each, 10 s (\`tools/profile.ts --echo\`)`,
    figure: (r) => `${r.metrics["echo.cpuPerRtUs"]?.toFixed(1)} µs server CPU per round trip`,
  },
  connect: {
    markers: ["handleUpgrade"],
    run: (impl, dir) => runStorm(impl, { cpuProfDir: dir }),
    title: (impl) =>
      `${impl}, connect storm of 10k WebSocket clients (\`tools/profile.ts --connect\`)`,
    figure: (r) => `${r.metrics.serverCpuPerConnUs?.toFixed(0)} µs server CPU per connection`,
  },
};

async function main(): Promise<void> {
  const impl = (process.argv.find((a) => ["switchyard", "socketio", "bare-ws"].includes(a)) ??
    "switchyard") as Impl;
  const name = ["echo", "polling", "connect"].find((p) => process.argv.includes(`--${p}`)) ?? "f64";
  const phase = PHASES[name]!;
  const dir = here(`../results/raw/profiles/${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const r = await phase.run(impl, dir);
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) throw new Error("no profile written");
  const s = summarizeProfile(
    JSON.parse(readFileSync(`${dir}/${file}`, "utf8")) as CpuProfile,
    phase.markers,
  );
  const md = [
    `Profile of ${phase.title(impl)}, ${new Date().toISOString()}:`,
    `server busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (counted from the first \`${phase.markers[0]}\`); this run: ${phase.figure(r)} (profiling slows it down).`,
    "",
    "| self time | % of busy | function — file:line |",
    "|---:|---:|---|",
    ...s.rows.map((x) => `| ${x.ms.toFixed(0)} ms | ${x.pctOfBusy.toFixed(1)} % | \`${x.fn}\` |`),
  ].join("\n");
  console.log(md);
  console.log(`\nprofile: ${dir}/${file}`);
  const out = here(`../results/profile-${impl}-${name}.md`);
  writeFileSync(out, `${md}\n`);
  if (process.argv.includes("--write-md")) {
    const path = here("../RESULTS.md");
    writeFileSync(path, replaceBlock(readFileSync(path, "utf8"), `profile-${impl}-${name}`, md));
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
