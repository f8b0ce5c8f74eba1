/**
 * The cost of connection state recovery on one node: the benchmark's 64 B fan-out phase
 * (1,000 WebSocket clients in one room, the load generator of `run.ts`, same plan as the
 * `websocket` scenario) against the same Switchyard app with `connectionStateRecovery`
 * off and on, alternated `--rounds` times so drift of the machine hits both alike; then
 * the memory held per retained packet. A benchmark script, not a test:
 *
 *   node --conditions=switchyard-source --import tsx --expose-gc tools/recovery.ts [--rounds=2] [--flat-ms=5000] [--packets=20000]
 *
 * With recovery on, every tick gets an offset (one more argument on the wire, ~24 B) and
 * is kept in the namespace's log, which is trimmed at its default bounds (10,000
 * packets / 16 MiB / 2 min) as the run goes: the steady state of a busy server.
 *
 * Memory: in this process, a Server with recovery on (bounds raised to hold them all)
 * broadcasts `--packets` ticks with 64 B of padding each (their own string) to a namespace
 * with no client; heap after a full GC, before and after, divided by the packets held
 * (`recoveryStats`): the payload, its argument array with the offset, and the log entry.
 */
import os from "node:os";
import { fileURLToPath } from "node:url";
import type { Impl } from "../lib/harness.js";
import { killEverything, type ServerHandle, startServer, startWorker } from "../lib/harness.js";
import { connectClients, type FanoutPlan, fanout } from "../scenarios/phases.js";

const ROLE = process.env.RECOVERY_BENCH_ROLE;

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
}

/** The server process: the benchmark app (apps/app.ts) with recovery on or off. */
async function app(): Promise<void> {
  const { Server } = await import("@switchyard/server");
  const { startApp } = await import("../apps/app.js");
  const on = process.env.RECOVERY_BENCH_ON === "1";
  startApp(
    Server as unknown as import("../apps/app.js").ServerClass,
    on ? "switchyard+recovery" : "switchyard",
    on ? { connectionStateRecovery: {} } : undefined,
  );
}

/** The harness forks `apps/<impl>.ts`; this file is the app when forked with the role set. */
const SELF = `../tools/${fileURLToPath(import.meta.url)
  .split("/")
  .pop()!
  .replace(/\.ts$/, "")}` as Impl;

async function phase(on: boolean, plan: FanoutPlan): Promise<Record<string, number>> {
  let server: ServerHandle | undefined;
  try {
    server = await startServer(SELF, {
      env: { RECOVERY_BENCH_ROLE: "app", RECOVERY_BENCH_ON: on ? "1" : "0" },
    });
    const w = await startWorker();
    const c = await connectClients(server, w, 1000, "websocket", 200);
    if (c.failed > 0) throw new Error(`${c.failed} clients failed to connect`);
    await w.call("join", { rooms: 1, concurrency: 200 });
    const { figures } = await fanout(server, w, "f64", plan);
    return figures;
  } finally {
    await server?.stop();
    killEverything();
  }
}

async function memoryPerPacket(count: number): Promise<{ bytesPerPacket: number; held: number }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  const { Server } = await import("@switchyard/server");
  const io = new Server({
    connectionStateRecovery: { maxPackets: count, maxBytes: 1 << 30 },
  });
  const nsp = io.of("/");
  const pad = "x".repeat(64);
  const settle = async () => {
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
  };
  // Warm-up: the log's array and the code paths exist before the baseline.
  for (let i = 0; i < 1000; i++) nsp.emit("tick", { seq: i, t: Date.now(), pad });
  await settle();
  const before = process.memoryUsage().heapUsed;
  // A payload of its own per packet (as real ones are), so its bytes count too.
  for (let i = 0; i < count; i++) {
    nsp.emit("tick", { seq: i, t: Date.now(), pad: `${i}`.padStart(64, "x") });
  }
  await settle();
  const after = process.memoryUsage().heapUsed;
  const stats = (nsp.adapter as unknown as { recoveryStats?: { packets: number } }).recoveryStats;
  const held = stats?.packets ?? 0;
  await io.close();
  return { bytesPerPacket: (after - before) / count, held };
}

/**
 * What recovery adds per broadcast, whatever the recipients: `n` broadcasts of a 64 B
 * tick to a namespace with no client (encode + offset + log entry + trimming at the
 * default bounds), off vs on, in this process; ns per broadcast, best of 3.
 */
async function perBroadcast(n: number): Promise<{ off: number; on: number }> {
  const { Server } = await import("@switchyard/server");
  const pad = "x".repeat(64);
  const time = async (on: boolean): Promise<number> => {
    const io = new Server(on ? { connectionStateRecovery: {} } : {});
    const nsp = io.of("/");
    let best = Number.POSITIVE_INFINITY;
    for (let round = 0; round < 4; round++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) nsp.emit("tick", { seq: i, t: 0, pad });
      const ns = Number(process.hrtime.bigint() - t0) / n;
      if (round > 0) best = Math.min(best, ns); // round 0 warms up
    }
    await io.close();
    return best;
  };
  const off = await time(false);
  const on = await time(true);
  return { off, on };
}

async function main(): Promise<void> {
  const rounds = arg("rounds", 2);
  const plan: FanoutPlan = {
    size: 64,
    n: 20,
    roomsPerPost: 1,
    window: 4,
    flatMs: arg("flat-ms", 5000),
    bursts: 0,
    burstN: 200,
  };
  console.log(
    `load average before: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const rows: { on: boolean; f: Record<string, number> }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const on of [false, true]) {
      const f = await phase(on, plan);
      rows.push({ on, f });
      console.log(
        `round ${r + 1} recovery ${on ? "on " : "off"}: ${Math.round(f["f64.perSec"]!)} deliveries/s, ` +
          `${f["f64.cpuPerDeliveryUs"]!.toFixed(3)} µs server CPU/delivery, server CPU ${f["f64.serverCpuPct"]!.toFixed(0)} %, ` +
          `loadgen CPU ${f["f64.loadgenCpuPct"]!.toFixed(0)} %, p99 ${f["f64.p99"]!.toFixed(1)} ms, lost ${f["f64.lost"]}`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const on of rounds > 0 ? [false, true] : []) {
    const of = rows.filter((x) => x.on === on).map((x) => x.f);
    console.log(
      `median recovery ${on ? "on " : "off"}: ${Math.round(median(of.map((f) => f["f64.perSec"]!)))} deliveries/s, ` +
        `${median(of.map((f) => f["f64.cpuPerDeliveryUs"]!)).toFixed(3)} µs/delivery`,
    );
  }
  const b = await perBroadcast(arg("broadcasts", 200_000));
  console.log(
    `per broadcast, no recipients: ${b.off.toFixed(0)} ns off, ${b.on.toFixed(0)} ns on (+${(b.on - b.off).toFixed(0)} ns)`,
  );
  const m = await memoryPerPacket(arg("packets", 20_000));
  console.log(
    `memory: ${m.bytesPerPacket.toFixed(0)} B of heap per retained 64 B packet (${m.held} held)`,
  );
  console.log(
    `load average after: ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
}

if (ROLE === "app") await app();
else await main();
