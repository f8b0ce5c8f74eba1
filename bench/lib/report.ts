/** Aggregation of a results file into the markdown tables of RESULTS.md. */

import type { MetricDef } from "../scenarios/types.js";
import { fmt, type Spread, spread } from "./aggregate.js";
import type { Impl } from "./harness.js";
import type { MachineInfo } from "./machine.js";

export interface RunRecord {
  scenario: string;
  impl: Impl;
  repeat: number;
  startedAt: string;
  load1: number;
  ms: number;
  metrics: Record<string, number>;
  notes: Record<string, unknown>;
  error?: string;
}

export interface ResultsFile {
  version: 1;
  mode: string;
  repeats: number;
  startedAt: string;
  finishedAt: string;
  switchyardFrom: string;
  machine: MachineInfo;
  load: {
    before: number[];
    after: number[];
    waitedMs: number;
    quietAtStart: boolean;
    idleBefore?: number;
  };
  scenarios: { name: string; title: string; impls: Impl[]; metrics: MetricDef[] }[];
  runs: RunRecord[];
}

const IMPL_LABEL: Record<Impl, string> = {
  socketio: "socket.io 4.8",
  switchyard: "Switchyard",
  "bare-ws": "bare ws (ceiling)",
  "socketio-bun": "socket.io 4.8 on Bun",
};

export function summarize(r: ResultsFile) {
  const out = new Map<string, Map<Impl, Map<string, Spread>>>();
  for (const s of r.scenarios) {
    const byImpl = new Map<Impl, Map<string, Spread>>();
    for (const impl of s.impls) {
      const runs = r.runs.filter(
        (x) => x.scenario === s.name && x.impl === impl && x.error === undefined,
      );
      const m = new Map<string, Spread>();
      for (const def of s.metrics)
        m.set(def.key, spread(runs.map((x) => x.metrics[def.key] ?? Number.NaN)));
      byImpl.set(impl, m);
    }
    out.set(s.name, byImpl);
  }
  return out;
}

function cell(s: Spread | undefined): string {
  if (s === undefined || !Number.isFinite(s.median)) return "–";
  if (s.min === s.max) return fmt(s.median);
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

function ratio(a: Spread | undefined, b: Spread | undefined): number {
  if (a === undefined || b === undefined) return Number.NaN;
  if (b.median === 0) return a.median === 0 ? 1 : Number.NaN;
  return a.median / b.median;
}

export function renderTables(r: ResultsFile): string {
  const sum = summarize(r);
  const lines: string[] = [];
  for (const s of r.scenarios) {
    const byImpl = sum.get(s.name)!;
    const hasBare = s.impls.includes("bare-ws");
    const hasBun = s.impls.includes("socketio-bun");
    const groups = [...new Set(s.metrics.map((m) => m.group))];
    for (const g of groups) {
      const defs = s.metrics.filter((m) => m.group === g);
      const measured = defs.some((d) =>
        [...byImpl.values()].some((m) => Number.isFinite(m.get(d.key)?.median)),
      );
      if (!measured) continue; // e.g. many rooms, full mode only
      lines.push(`#### ${g}`, "");
      const head = ["figure", IMPL_LABEL.socketio, IMPL_LABEL.switchyard];
      if (hasBun) head.push(IMPL_LABEL["socketio-bun"]);
      if (hasBare) head.push(IMPL_LABEL["bare-ws"]);
      head.push("Switchyard / socket.io");
      if (hasBun) head.push("Switchyard / socket.io on Bun");
      if (hasBare) head.push("Switchyard / bare ws");
      lines.push(
        `| ${head.join(" | ")} |`,
        `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
      );
      for (const def of defs) {
        const sy = byImpl.get("switchyard")?.get(def.key);
        const so = byImpl.get("socketio")?.get(def.key);
        const bw = byImpl.get("bare-ws")?.get(def.key);
        const label = def.unit === "" ? def.label : `${def.label} (${def.unit})`;
        const row = [label, cell(so), cell(sy)];
        const sb = byImpl.get("socketio-bun")?.get(def.key);
        if (hasBun) row.push(cell(sb));
        if (hasBare) row.push(cell(bw));
        row.push(def.better === "info" ? "" : `${fmt(ratio(sy, so))}×`);
        if (hasBun) row.push(def.better === "info" ? "" : `${fmt(ratio(sy, sb))}×`);
        if (hasBare) row.push(def.better === "info" ? "" : `${fmt(ratio(sy, bw))}×`);
        lines.push(`| ${row.join(" | ")} |`);
      }
      lines.push("");
    }
    const failed = r.runs.filter((x) => x.scenario === s.name && x.error !== undefined);
    if (failed.length > 0) {
      lines.push(
        `Failed runs (${s.name}): ${failed.map((x) => `${x.impl}#${x.repeat}: ${x.error?.split("\n")[0]}`).join("; ")}`,
        "",
      );
    }
  }
  return lines.join("\n");
}

interface Target {
  what: string;
  scenario: string;
  metric: string;
  /** ratio: Switchyard/socket.io; bare: Switchyard/bare ws; bun: Switchyard/socket.io on Bun; self: Switchyard's own figure. */
  kind: "ratio" | "bare" | "bun" | "self";
  op: "<=" | ">=";
  value: number;
  beside?: string;
}

export const TARGETS: Target[] = [
  {
    what: "server CPU per fan-out delivery (1,000 clients, 64 B)",
    scenario: "websocket",
    metric: "f64.cpuPerDeliveryUs",
    kind: "ratio",
    op: "<=",
    value: 0.33,
  },
  {
    what: "… and within 1.25× of the bare-ws ceiling's",
    scenario: "websocket",
    metric: "f64.cpuPerDeliveryUs",
    kind: "bare",
    op: "<=",
    value: 1.25,
  },
  {
    what: "fan-out deliveries/s (64 B)",
    scenario: "websocket",
    metric: "f64.perSec",
    kind: "ratio",
    op: ">=",
    value: 2,
    beside: "f64.loadgenCpuPct",
  },
  {
    what: "fan-out deliveries/s (1 KB)",
    scenario: "websocket",
    metric: "f1k.perSec",
    kind: "ratio",
    op: ">=",
    value: 2,
    beside: "f1k.loadgenCpuPct",
  },
  {
    what: "fan-out burst latency p99 (bursts of 200 ticks to 1,000 clients, 64 B)",
    scenario: "websocket",
    metric: "f64.burstP99",
    kind: "ratio",
    op: "<=",
    value: 0.3,
  },
  {
    what: "RSS per idle connection at 10k clients",
    scenario: "connections",
    metric: "rssPerConn10k",
    kind: "ratio",
    op: "<=",
    value: 0.5,
  },
  {
    what: "connections/s (10k clients)",
    scenario: "connections",
    metric: "connPerSec",
    kind: "ratio",
    op: ">=",
    value: 2,
    beside: "stormLoadgenCpuPct",
  },
  {
    what: "server CPU per echo round trip",
    scenario: "websocket",
    metric: "echo.cpuPerRtUs",
    kind: "ratio",
    op: "<=",
    value: 0.5,
  },
  {
    what: "echo p99",
    scenario: "websocket",
    metric: "echo.p99",
    kind: "ratio",
    op: "<=",
    value: 0.7,
  },
  {
    what: "GET /api p99 during flat-out fan-out vs its own idle p99",
    scenario: "websocket",
    metric: "rest.degradation",
    kind: "self",
    op: "<=",
    value: 5,
  },
  {
    what: "polling-only fan-out deliveries/s",
    scenario: "polling",
    metric: "poll.perSec",
    kind: "ratio",
    op: ">=",
    value: 2,
    beside: "poll.loadgenCpuPct",
  },
  {
    what: "RSS per idle connection at 10k clients (issue 10: ≤ 5 KiB)",
    scenario: "connections",
    metric: "rssPerConn10k",
    kind: "self",
    op: "<=",
    value: 5,
  },
  {
    what: "server CPU per connection set-up (10k clients) vs socket.io on Bun",
    scenario: "connections",
    metric: "serverCpuPerConnUs",
    kind: "bun",
    op: "<=",
    value: 1,
  },
  {
    what: "server CPU per echo round trip vs socket.io on Bun",
    scenario: "websocket",
    metric: "echo.cpuPerRtUs",
    kind: "bun",
    op: "<=",
    value: 1,
  },
  {
    what: "idle WebSocket clients held on one process (fd limit 20,000)",
    scenario: "connections",
    metric: "heldBig",
    kind: "self",
    op: ">=",
    value: 19_000,
  },
];

export function renderTargets(r: ResultsFile): string {
  const sum = summarize(r);
  const lines = ["| target | goal | measured (median) | verdict |", "|---|---:|---:|---|"];
  for (const t of TARGETS) {
    const byImpl = sum.get(t.scenario);
    if (byImpl === undefined) continue;
    const sy = byImpl.get("switchyard")?.get(t.metric);
    let measured: number;
    let goal: string;
    if (t.kind === "ratio") {
      measured = ratio(sy, byImpl.get("socketio")?.get(t.metric));
      goal = `${t.op === "<=" ? "≤" : "≥"} ${t.value}× socket.io`;
    } else if (t.kind === "bare") {
      measured = ratio(sy, byImpl.get("bare-ws")?.get(t.metric));
      goal = `≤ ${t.value}× bare ws`;
    } else if (t.kind === "bun") {
      measured = ratio(sy, byImpl.get("socketio-bun")?.get(t.metric));
      goal = `≤ ${t.value}× socket.io on Bun`;
    } else {
      measured = sy?.median ?? Number.NaN;
      goal = `${t.op === "<=" ? "≤" : "≥"} ${fmt(t.value)}`;
    }
    let verdict: string;
    if (!Number.isFinite(measured)) verdict = "not measured";
    else {
      const met = t.op === "<=" ? measured <= t.value : measured >= t.value;
      const by = t.op === "<=" ? measured / t.value : t.value / measured;
      verdict = met ? "**met**" : `**missed** (${fmt(by)}× off the goal)`;
    }
    let m = Number.isFinite(measured)
      ? t.kind === "self"
        ? fmt(measured)
        : `${fmt(measured)}×`
      : "–";
    if (t.beside !== undefined) {
      const ls = byImpl.get("switchyard")?.get(t.beside)?.median;
      const lo = byImpl.get("socketio")?.get(t.beside)?.median;
      m += ` (load generator CPU: ${fmt(lo ?? Number.NaN)} % of a core against socket.io, ${fmt(ls ?? Number.NaN)} % against Switchyard)`;
    }
    lines.push(`| ${t.what} | ${goal} | ${m} | ${verdict} |`);
  }
  return lines.join("\n");
}

export function renderMachine(r: ResultsFile): string {
  const m = r.machine;
  return [
    `- CPU: ${m.cpuModel}, \`nproc\` = ${m.nproc}; memory ${m.memGiB} GiB; fd limit ${m.fdLimit} per process`,
    `- ${m.kernel}; Node ${m.node}; socket.io ${m.socketio}; ws ${m.ws}; Switchyard from ${r.switchyardFrom}`,
    `- mode \`${r.mode}\`, ${r.repeats} repeats per implementation, A/B alternating, each run on fresh processes; ${r.startedAt} → ${r.finishedAt}`,
    `- load average before: ${r.load.before.join(" ")} (waited ${Math.round(r.load.waitedMs / 1000)} s${r.load.quietAtStart ? "" : ", never got below 1.0"})${r.load.idleBefore === undefined ? "" : `; CPU idle over 3 s before the start: ${(r.load.idleBefore * 100).toFixed(1)} %`}; after: ${r.load.after.join(" ")}; 1-min load at each run start (our own runs included): ${r.runs.map((x) => x.load1.toFixed(2)).join(", ")}`,
    "",
    "```",
    `$ free -g`,
    m.freeG,
    "```",
  ].join("\n");
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceBlock(doc: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) return `${doc.trimEnd()}\n\n${start}\n${body}\n${end}\n`;
  return `${doc.slice(0, i + start.length)}\n${body}\n${doc.slice(j)}`;
}
