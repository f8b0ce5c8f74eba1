import { now, sleep } from "../lib/clock.js";
import {
  type Impl,
  killEverything,
  type ServerHandle,
  startServer,
  startWorker,
  type Worker,
} from "../lib/harness.js";
import type { Figures } from "./phases.js";
import { type MetricDef, type Mode, pct, type RunResult, type Scenario } from "./types.js";

/**
 * What links the 3 nodes. `redis` and `amqp`: our ClusterAdapter over RedisBus / AmqpBus
 * (socket.io: its redis-adapter). Switchyard only, on Redis: `sioredis`, the official
 * `@socket.io/redis-adapter` (a socket.io cluster that only changed its import), and
 * `redisfwd`, our adapter with session forwarding on (apps/switchyard-cluster.ts).
 */
type BusKind = "redis" | "amqp" | "sioredis" | "redisfwd";
const NODES = 3;
const CLIENTS_PER_NODE = 200;
const SIZE = 64;
const ROOM = "room-0";
const BUS_LABEL: Record<BusKind, string> = {
  redis: "Redis",
  amqp: "RabbitMQ",
  sioredis: "Redis, Switchyard with the official @socket.io/redis-adapter",
  redisfwd: "Redis, Switchyard's adapter with session forwarding on",
};
const SWITCHYARD_BUSES: readonly BusKind[] = ["redis", "amqp", "sioredis", "redisfwd"];

/**
 * The buses a Switchyard run goes through: all, or those named by `--buses=a,b` (e.g.
 * `--buses=redis,sioredis,redisfwd` to leave RabbitMQ out). socket.io runs on Redis only.
 */
function switchyardBuses(): BusKind[] {
  const flag = process.argv.find((a) => a.startsWith("--buses="));
  if (flag === undefined) return [...SWITCHYARD_BUSES];
  const named = flag.slice("--buses=".length).split(",");
  const unknown = named.filter((b) => !SWITCHYARD_BUSES.includes(b as BusKind));
  if (unknown.length > 0)
    throw new Error(`--buses: unknown ${unknown.join(",")} (known: ${SWITCHYARD_BUSES.join(",")})`);
  return named as BusKind[];
}

/** The broker each bus kind runs on. */
function brokerOf(bus: BusKind): "redis" | "amqp" {
  return bus === "amqp" ? "amqp" : "redis";
}

function plan(mode: Mode) {
  const quick = mode === "quick";
  return {
    bursts: quick ? 3 : 10,
    burstN: 200,
    flatMs: quick ? 2000 : 10_000,
    n: 20,
    window: 4,
    emitTicks: quick ? 400 : 2000,
    emitBatch: 2,
    emitEveryMs: 10,
  };
}

const fanMetrics = (bus: BusKind): MetricDef[] => {
  const g = `Cluster over ${BUS_LABEL[bus]}: 3 nodes, 600 clients (200 per node) in one room, 64 B, POST /publish on one node`;
  const p = `${bus}.fan`;
  return [
    {
      group: g,
      key: `${p}.perSec`,
      label: "deliveries/s (flat out)",
      unit: "/s",
      better: "higher",
    },
    {
      group: g,
      key: `${p}.p50`,
      label: "publish → receipt p50 (flat out)",
      unit: "ms",
      better: "lower",
    },
    {
      group: g,
      key: `${p}.p99`,
      label: "publish → receipt p99 (flat out)",
      unit: "ms",
      better: "lower",
    },
    {
      group: g,
      key: `${p}.burstP50`,
      label: "publish → receipt p50 (bursts of 200)",
      unit: "ms",
      better: "lower",
    },
    {
      group: g,
      key: `${p}.burstP99`,
      label: "publish → receipt p99 (bursts of 200)",
      unit: "ms",
      better: "lower",
    },
    {
      group: g,
      key: `${p}.cpuPerDeliveryUs`,
      label: "CPU of the 3 nodes per delivery (flat out)",
      unit: "µs",
      better: "lower",
    },
    {
      group: g,
      key: `${p}.publisherCpuPct`,
      label: "publishing node CPU (flat out)",
      unit: "% core",
      better: "info",
    },
    {
      group: g,
      key: `${p}.otherCpuPct`,
      label: "each other node's CPU, mean (flat out)",
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
    {
      group: g,
      key: `${p}.lost`,
      label: "ticks lost or out of order, all clients checked",
      unit: "",
      better: "lower",
    },
  ];
};

const emitMetrics = (bus: BusKind): MetricDef[] => {
  const g = `Emitter → clients over ${BUS_LABEL[bus]}: a separate publisher, 3 nodes, 600 clients, 200 ticks/s of 64 B`;
  const p = `${bus}.emit`;
  return [
    { group: g, key: `${p}.p50`, label: "emit → receipt p50", unit: "ms", better: "lower" },
    { group: g, key: `${p}.p99`, label: "emit → receipt p99", unit: "ms", better: "lower" },
    { group: g, key: `${p}.max`, label: "emit → receipt max", unit: "ms", better: "lower" },
    { group: g, key: `${p}.perSec`, label: "deliveries/s (paced)", unit: "/s", better: "info" },
    {
      group: g,
      key: `${p}.lost`,
      label: "ticks lost or out of order, all clients checked",
      unit: "",
      better: "lower",
    },
  ];
};

/** Something that publishes `{seq, t, pad}` ticks to a room through the bus. */
interface TickEmitter {
  emit(seq: number, pad: string): void;
  close(): Promise<void>;
}

async function makeEmitter(impl: Impl, bus: BusKind, url: string): Promise<TickEmitter> {
  // The official adapter listens to what socket.io's own emitter publishes.
  if (impl === "socketio" || bus === "sioredis") {
    // From the bench's package: @socket.io/redis-emitter + ioredis (root node_modules).
    const { Emitter } = await import("@socket.io/redis-emitter");
    const { Redis } = await import("ioredis");
    const client = new Redis(url);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("emitter: redis not ready in 10 s")), 10_000);
      client.once("ready", () => {
        clearTimeout(t);
        resolve();
      });
    });
    const em = new Emitter(client);
    return {
      emit: (seq, pad) => {
        em.to(ROOM).emit("tick", { seq, t: now(), pad });
      },
      close: async () => {
        client.disconnect();
      },
    };
  }
  const { Emitter } = await import("@switchyard/server");
  const b =
    brokerOf(bus) === "redis"
      ? new (await import("@switchyard/redis")).RedisBus({ url })
      : new (await import("@switchyard/amqp")).AmqpBus({ url, exchange: "switchyard-bench" });
  await Promise.race([
    b.ready(),
    sleep(15_000).then(() => {
      throw new Error("emitter: bus not ready in 15 s");
    }),
  ]);
  const em = new Emitter(b, { namespace: "/" });
  return {
    emit: (seq, pad) => {
      em.to(ROOM).emit("tick", { seq, t: now(), pad });
    },
    close: () => b.close(),
  };
}

async function allCpu(servers: ServerHandle[]): Promise<number[]> {
  const s = await Promise.all(servers.map((x) => x.stats()));
  return s.map((x) => (x.cpu.user + x.cpu.system) / 1000);
}

async function fanoutAcross(
  servers: ServerHandle[],
  w: Worker,
  bus: BusKind,
  p: ReturnType<typeof plan>,
): Promise<{ figures: Figures; raw: unknown }> {
  const pre = `${bus}.fan`;
  const common = { size: SIZE, roomsPerPost: 1, pauseMs: 0 };
  // Warm-up (JIT, buffers, bus connections), not measured.
  const warm = await w.call("fanout", {
    ...common,
    mode: "flat",
    n: p.n,
    window: p.window,
    bursts: 8,
    durationMs: 10_000,
    timeoutMs: 60_000,
  });
  if (warm.timedOut || warm.postErrors.length > 0)
    throw new Error(
      `${pre}: warm-up failed: ${JSON.stringify({ e: warm.postErrors[0], c: warm.check })}`,
    );
  const figures: Figures = {};
  const b = await w.call("fanout", {
    ...common,
    mode: "bursts",
    n: p.burstN,
    window: 1,
    bursts: p.bursts,
    pauseMs: 200,
    durationMs: 0,
    timeoutMs: 120_000,
  });
  if (b.postErrors.length > 0) throw new Error(`${pre}: publish failed: ${b.postErrors[0]}`);
  if (b.timedOut) throw new Error(`${pre}: bursts timed out: ${JSON.stringify(b.check)}`);
  figures[`${pre}.burstP50`] = b.latency.p50;
  figures[`${pre}.burstP99`] = b.latency.p99;
  const c0 = await allCpu(servers);
  const f = await w.call("fanout", {
    ...common,
    mode: "flat",
    n: p.n,
    window: p.window,
    bursts: 1_000_000,
    durationMs: p.flatMs,
    timeoutMs: p.flatMs + 120_000,
  });
  const c1 = await allCpu(servers);
  if (f.postErrors.length > 0) throw new Error(`${pre}: publish failed: ${f.postErrors[0]}`);
  if (f.timedOut) throw new Error(`${pre}: flat-out fan-out timed out: ${JSON.stringify(f.check)}`);
  const d = c1.map((x, i) => x - c0[i]!);
  const total = d.reduce((a, x) => a + x, 0);
  // The worker publishes to the node it connected to last: servers[NODES - 1].
  const pubCpu = d[NODES - 1]!;
  Object.assign(figures, {
    [`${pre}.perSec`]: f.perSec,
    [`${pre}.p50`]: f.latency.p50,
    [`${pre}.p99`]: f.latency.p99,
    [`${pre}.cpuPerDeliveryUs`]: (total * 1000) / f.deliveries,
    [`${pre}.publisherCpuPct`]: pct(pubCpu, f.busyMs),
    [`${pre}.otherCpuPct`]: pct((total - pubCpu) / (NODES - 1), f.busyMs),
    [`${pre}.loadgenCpuPct`]: pct(f.cpu.totalMs, f.busyMs),
    [`${pre}.lost`]: f.check.lost + f.check.disorder + f.check.gaps,
  });
  return { figures, raw: { warm, bursts: b, flat: f, nodeCpuMs: d } };
}

async function emitterPhase(
  em: TickEmitter,
  w: Worker,
  bus: BusKind,
  ticks: number,
  p: ReturnType<typeof plan>,
) {
  const pad = "x".repeat(SIZE);
  const { fromSeq } = await w.call<{ fromSeq: number }>("expect", { n: ticks });
  const deadline = now() + 60_000;
  let seq = fromSeq;
  for (let i = 0; i < ticks && now() < deadline; ) {
    for (let k = 0; k < p.emitBatch && i < ticks; k++, i++) em.emit(++seq, pad);
    await sleep(p.emitEveryMs);
  }
  const r = await w.call("awaitExpected", { timeoutMs: 30_000 });
  if (r.timedOut)
    throw new Error(`${bus}.emit: ticks missing after 30 s: ${JSON.stringify(r.check)}`);
  return r;
}

async function runBus(impl: Impl, bus: BusKind, mode: Mode): Promise<RunResult> {
  const p = plan(mode);
  const harness = await import("@switchyard/test-harness");
  const broker =
    brokerOf(bus) === "redis" ? await harness.startRedis() : await harness.startRabbitMQ();
  let em: TickEmitter | undefined;
  try {
    if (!/^(redis|amqp):\/\/([^@]*@)?127\.0\.0\.\d+:/.test(broker.url))
      throw new Error(`broker not on 127.0.0.x: ${broker.url}`);
    const env = { BENCH_BUS: bus, BENCH_BUS_URL: broker.url };
    const servers: ServerHandle[] = [];
    for (let i = 0; i < NODES; i++) servers.push(await startServer(impl, { env }));
    const w = await startWorker();
    // One worker, three connects: the worker's publishes go to the node it connected to
    // last; the clients of the two others get the ticks through the bus.
    for (const s of servers) {
      const c = await w.call("connect", {
        url: `http://127.0.0.1:${s.port}`,
        n: CLIENTS_PER_NODE,
        transport: "websocket",
        concurrency: 100,
        localAddresses: [],
        timeoutMs: 60_000,
      });
      if (c.failed > 0)
        throw new Error(`${c.failed} clients failed to connect: ${JSON.stringify(c.errors)}`);
    }
    await w.call("join", { rooms: 1, concurrency: 100 });
    // Room subscriptions on the broker are asynchronous to the join ack.
    await sleep(1500);
    const fan = await fanoutAcross(servers, w, bus, p);
    em = await makeEmitter(impl, bus, broker.url);
    await emitterPhase(em, w, bus, 50, p); // warm-up
    const e = await emitterPhase(em, w, bus, p.emitTicks, p);
    const pre = `${bus}.emit`;
    const figures: Figures = {
      ...fan.figures,
      [`${pre}.p50`]: e.latency.p50,
      [`${pre}.p99`]: e.latency.p99,
      [`${pre}.max`]: e.latency.max,
      [`${pre}.perSec`]: (e.deliveries / e.ms) * 1000,
      [`${pre}.lost`]: e.check.lost + e.check.disorder + e.check.gaps,
    };
    await Promise.all(servers.map((s) => s.stop()));
    return { metrics: figures, notes: { [`${bus}.fan`]: fan.raw, [`${bus}.emit`]: e } };
  } finally {
    await em?.close().catch(() => {});
    killEverything();
    await broker.stop();
  }
}

export const cluster: Scenario = {
  name: "cluster",
  title: "Cluster: 3 nodes on one broker, 600 clients — fan-out across nodes, emitter → clients",
  impls: ["switchyard", "socketio"],
  fullOnly: true,
  metrics: [
    ...fanMetrics("redis"),
    ...emitMetrics("redis"),
    ...fanMetrics("amqp"),
    ...emitMetrics("amqp"),
    ...fanMetrics("sioredis"),
    ...emitMetrics("sioredis"),
    ...fanMetrics("redisfwd"),
    ...emitMetrics("redisfwd"),
  ],
  async run(impl, mode) {
    const buses: BusKind[] = impl === "switchyard" ? switchyardBuses() : ["redis"];
    const metrics: Record<string, number> = {};
    const notes: Record<string, unknown> = {};
    for (const bus of buses) {
      const r = await runBus(impl, bus, mode);
      Object.assign(metrics, r.metrics);
      Object.assign(notes, r.notes);
    }
    return { metrics, notes };
  },
};
