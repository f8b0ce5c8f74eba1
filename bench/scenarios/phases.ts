/**
 * The measuring phases scenarios are made of. Each brackets its load with two snapshots
 * of the server's process.cpuUsage() (taken over IPC while the server is idle), and
 * reports the load generator's own CPU beside every throughput figure.
 */
import { sleep } from "../lib/clock.js";
import { cpuMs, type ServerHandle, type Worker } from "../lib/harness.js";
import { type MetricDef, pct } from "./types.js";

const KiB = 1024;

export type Figures = Record<string, number>;

/**
 * The URL a batch of clients connects to. The server listens on 0.0.0.0, so every
 * 127.0.0.x reaches it: each batch of 10k clients gets its own destination address, so
 * the kernel's choice of source port stays cheap (ports can be shared across distinct
 * 4-tuples). With one destination, connect() spends seconds of system time searching the
 * ephemeral range once ~10k ports are taken; an explicit bind() to a 127.0.0.x source
 * address (the worker's `localAddresses`) costs even more here.
 */
export function batchUrl(server: ServerHandle, alreadyConnected: number): string {
  return `http://127.0.0.${1 + Math.floor(alreadyConnected / 10_000)}:${server.port}`;
}

export async function connectClients(
  server: ServerHandle,
  w: Worker,
  n: number,
  transport: "websocket" | "polling",
  concurrency: number,
  already = 0,
) {
  const r = await w.call("connect", {
    url: batchUrl(server, already),
    n,
    transport,
    concurrency,
    localAddresses: [],
    timeoutMs: 180_000,
  });
  return r;
}

// ——— connect storm ———

export const stormMetrics = (g: string): MetricDef[] => [
  { group: g, key: "connPerSec", label: "connections/s", unit: "conn/s", better: "higher" },
  {
    group: g,
    key: "serverCpuPerConnUs",
    label: "server CPU per connection",
    unit: "µs",
    better: "lower",
  },
  { group: g, key: "stormServerCpuPct", label: "server CPU", unit: "% core", better: "info" },
  {
    group: g,
    key: "stormLoadgenCpuPct",
    label: "load generator CPU",
    unit: "% core",
    better: "info",
  },
];

export async function storm(
  server: ServerHandle,
  w: Worker,
  n: number,
): Promise<{ figures: Figures; raw: unknown; connected: number }> {
  const s0 = await server.stats();
  const r = await connectClients(server, w, n, "websocket", 500);
  const s1 = await server.stats();
  if (r.failed > 0)
    throw new Error(`${r.failed} of ${n} clients failed to connect: ${JSON.stringify(r.errors)}`);
  return {
    figures: {
      connPerSec: r.perSec,
      serverCpuPerConnUs: (cpuMs(s0, s1) * 1000) / r.connected,
      stormServerCpuPct: pct(cpuMs(s0, s1), r.ms),
      stormLoadgenCpuPct: pct(r.cpu.totalMs, r.ms),
    },
    raw: r,
    connected: r.connected,
  };
}

// ——— idle memory ———

export const memMetrics = (g: string, suffix: string, at: string): MetricDef[] => [
  {
    group: g,
    key: `rssPerConn${suffix}`,
    label: `RSS per idle connection @${at}`,
    unit: "KiB",
    better: "lower",
  },
  {
    group: g,
    key: `heapPerConn${suffix}`,
    label: `heap after GC per idle connection @${at}`,
    unit: "KiB",
    better: "lower",
  },
  {
    group: g,
    key: `extPerConn${suffix}`,
    label: `external + arrayBuffers per connection @${at}`,
    unit: "KiB",
    better: "lower",
  },
];

export async function memoryPerConnection(
  server: ServerHandle,
  base: NodeJS.MemoryUsage,
  connected: number,
  suffix: string,
): Promise<{ figures: Figures; raw: unknown }> {
  await sleep(1000);
  const m = await server.stats(true);
  return {
    figures: {
      [`rssPerConn${suffix}`]: (m.mem.rss - base.rss) / KiB / connected,
      [`heapPerConn${suffix}`]: (m.mem.heapUsed - base.heapUsed) / KiB / connected,
      [`extPerConn${suffix}`]:
        (m.mem.external + m.mem.arrayBuffers - base.external - base.arrayBuffers) / KiB / connected,
    },
    raw: { mem: m.mem, serverSockets: m.connections },
  };
}

// ——— fan-out ———

export const fanoutMetrics = (g: string, p: string, withBursts: boolean): MetricDef[] => [
  {
    group: g,
    key: `${p}.cpuPerDeliveryUs`,
    label: "server CPU per delivery (flat out)",
    unit: "µs",
    better: "lower",
  },
  { group: g, key: `${p}.perSec`, label: "deliveries/s (flat out)", unit: "/s", better: "higher" },
  {
    group: g,
    key: `${p}.serverCpuPct`,
    label: "server CPU (flat out)",
    unit: "% core",
    better: "info",
  },
  {
    group: g,
    key: `${p}.loadgenCpuPct`,
    label: "load generator CPU (flat out)",
    unit: "% core",
    better: "info",
  },
  { group: g, key: `${p}.p50`, label: "latency p50 (flat out)", unit: "ms", better: "lower" },
  { group: g, key: `${p}.p99`, label: "latency p99 (flat out)", unit: "ms", better: "lower" },
  ...(withBursts
    ? ([
        { group: g, key: `${p}.burstP50`, label: "burst latency p50", unit: "ms", better: "lower" },
        { group: g, key: `${p}.burstP99`, label: "burst latency p99", unit: "ms", better: "lower" },
        {
          group: g,
          key: `${p}.burstCpuPerDeliveryUs`,
          label: "server CPU per delivery (bursts)",
          unit: "µs",
          better: "lower",
        },
      ] as MetricDef[])
    : []),
  {
    group: g,
    key: `${p}.lost`,
    label: "ticks lost or out of order, all clients checked",
    unit: "",
    better: "lower",
  },
];

export interface FanoutPlan {
  size: number;
  /** Ticks per room per POST. */
  n: number;
  roomsPerPost: number;
  window: number;
  flatMs: number;
  /** Isolated bursts (0: none) of `burstN` ticks, for burst latency. */
  bursts: number;
  burstN: number;
}

export async function fanout(
  server: ServerHandle,
  w: Worker,
  p: string,
  plan: FanoutPlan,
): Promise<{ figures: Figures; raw: unknown }> {
  const common = { size: plan.size, roomsPerPost: plan.roomsPerPost, pauseMs: 0 };
  // Warm-up (JIT, buffers), not measured.
  await w.call("fanout", {
    ...common,
    mode: "flat",
    n: plan.n,
    window: plan.window,
    bursts: 4,
    durationMs: 10_000,
    timeoutMs: 60_000,
  });
  const figures: Figures = {};
  const raw: Record<string, unknown> = {};
  if (plan.bursts > 0) {
    const s0 = await server.stats();
    const b = await w.call("fanout", {
      ...common,
      mode: "bursts",
      n: plan.burstN,
      window: 1,
      bursts: plan.bursts,
      pauseMs: 200,
      durationMs: 0,
      timeoutMs: 120_000,
    });
    const s1 = await server.stats();
    figures[`${p}.burstP50`] = b.latency.p50;
    figures[`${p}.burstP99`] = b.latency.p99;
    figures[`${p}.burstCpuPerDeliveryUs`] = (cpuMs(s0, s1) * 1000) / b.deliveries;
    raw.bursts = b;
    if (b.postErrors.length > 0) throw new Error(`${p}: publish failed: ${b.postErrors[0]}`);
    if (b.timedOut) throw new Error(`${p}: bursts timed out: ${JSON.stringify(b.check)}`);
  }
  const s2 = await server.stats();
  const f = await w.call("fanout", {
    ...common,
    mode: "flat",
    n: plan.n,
    window: plan.window,
    bursts: 1_000_000,
    durationMs: plan.flatMs,
    timeoutMs: plan.flatMs + 120_000,
  });
  const s3 = await server.stats();
  raw.flat = f;
  if (f.postErrors.length > 0) throw new Error(`${p}: publish failed: ${f.postErrors[0]}`);
  if (f.timedOut) throw new Error(`${p}: flat-out fan-out timed out: ${JSON.stringify(f.check)}`);
  const c = cpuMs(s2, s3);
  Object.assign(figures, {
    [`${p}.cpuPerDeliveryUs`]: (c * 1000) / f.deliveries,
    [`${p}.perSec`]: f.perSec,
    [`${p}.serverCpuPct`]: pct(c, f.busyMs),
    [`${p}.loadgenCpuPct`]: pct(f.cpu.totalMs, f.busyMs),
    [`${p}.p50`]: f.latency.p50,
    [`${p}.p99`]: f.latency.p99,
    [`${p}.lost`]: f.check.lost + f.check.disorder + f.check.gaps,
  });
  return { figures, raw };
}

// ——— echo ———

export const echoMetrics = (g: string): MetricDef[] => [
  {
    group: g,
    key: "echo.cpuPerRtUs",
    label: "server CPU per round trip",
    unit: "µs",
    better: "lower",
  },
  { group: g, key: "echo.perSec", label: "round trips/s", unit: "/s", better: "higher" },
  { group: g, key: "echo.serverCpuPct", label: "server CPU", unit: "% core", better: "info" },
  {
    group: g,
    key: "echo.loadgenCpuPct",
    label: "load generator CPU",
    unit: "% core",
    better: "info",
  },
  { group: g, key: "echo.p50", label: "echo p50", unit: "ms", better: "lower" },
  { group: g, key: "echo.p99", label: "echo p99", unit: "ms", better: "lower" },
];

export async function echo(
  server: ServerHandle,
  w: Worker,
  clients: number,
  durationMs: number,
): Promise<{ figures: Figures; raw: unknown }> {
  await w.call("echo", {
    clients,
    durationMs: Math.min(1000, durationMs),
    size: 32,
    maxRoundTrips: 1_000_000,
  }); // warm-up
  const s0 = await server.stats();
  const e = await w.call("echo", { clients, durationMs, size: 32, maxRoundTrips: 10_000_000 });
  const s1 = await server.stats();
  if (e.mismatches > 0) throw new Error(`${e.mismatches} echo acks did not return the argument`);
  return {
    figures: {
      "echo.cpuPerRtUs": (cpuMs(s0, s1) * 1000) / e.roundTrips,
      "echo.perSec": e.perSec,
      "echo.serverCpuPct": pct(cpuMs(s0, s1), e.ms),
      "echo.loadgenCpuPct": pct(e.cpu.totalMs, e.ms),
      "echo.p50": e.latency.p50,
      "echo.p99": e.latency.p99,
    },
    raw: e,
  };
}

// ——— REST under fan-out ———

export const restMetrics = (g: string): MetricDef[] => [
  { group: g, key: "rest.idleP50", label: "GET /api p50, idle", unit: "ms", better: "lower" },
  { group: g, key: "rest.idleP99", label: "GET /api p99, idle", unit: "ms", better: "lower" },
  {
    group: g,
    key: "rest.loadedP50",
    label: "GET /api p50, fan-out flat out",
    unit: "ms",
    better: "lower",
  },
  {
    group: g,
    key: "rest.loadedP99",
    label: "GET /api p99, fan-out flat out",
    unit: "ms",
    better: "lower",
  },
  {
    group: g,
    key: "rest.degradation",
    label: "loaded p99 / own idle p99",
    unit: "×",
    better: "lower",
  },
  {
    group: g,
    key: "rest.requests",
    label: "GET /api answered during fan-out",
    unit: "",
    better: "higher",
  },
  {
    group: g,
    key: "rest.perSec",
    label: "fan-out deliveries/s meanwhile",
    unit: "/s",
    better: "higher",
  },
  {
    group: g,
    key: "rest.loadgenCpuPct",
    label: "fan-out load generator CPU",
    unit: "% core",
    better: "info",
  },
];

/**
 * `GET /api` one at a time, 2 ms apart, from a separate load-generator process: first
 * on the idle server, then while `w` drives fan-out flat out.
 */
export async function restUnderFanout(
  server: ServerHandle,
  w: Worker,
  probe: Worker,
  plan: FanoutPlan,
  idleMs: number,
): Promise<{ figures: Figures; raw: unknown }> {
  const restArgs = { url: server.url, count: 100_000, intervalMs: 2 };
  await probe.call("rest", { ...restArgs, durationMs: 300, delayMs: 0 }); // warm-up
  const idle = await probe.call("rest", { ...restArgs, durationMs: idleMs, delayMs: 0 });
  const [f, loaded] = await Promise.all([
    w.call("fanout", {
      size: plan.size,
      roomsPerPost: plan.roomsPerPost,
      pauseMs: 0,
      mode: "flat",
      n: plan.n,
      window: plan.window,
      bursts: 1_000_000,
      durationMs: plan.flatMs,
      timeoutMs: plan.flatMs + 120_000,
    }),
    // Starts after the fan-out is under way and stops before it winds down.
    probe.call("rest", { ...restArgs, durationMs: plan.flatMs - 500, delayMs: 250 }),
  ]);
  return {
    figures: {
      "rest.idleP50": idle.latency.p50,
      "rest.idleP99": idle.latency.p99,
      "rest.loadedP50": loaded.latency.p50,
      "rest.loadedP99": loaded.latency.p99,
      "rest.degradation": loaded.latency.p99 / idle.latency.p99,
      "rest.requests": loaded.requests,
      "rest.perSec": f.perSec,
      "rest.loadgenCpuPct": pct(f.cpu.totalMs, f.busyMs),
    },
    raw: { idle, loaded, fanout: f },
  };
}
