/**
 * The cost of connection state recovery across nodes: broadcast throughput and CPU per
 * delivery on a 3-node Switchyard cluster over Redis (RedisBus), with recovery off,
 * on without a log (each node keeps its own in-memory log), and on with the Redis
 * Streams log (`createAdapter(bus, { recovery: new RedisRecoveryLog(…) })`), phases
 * alternated `--rounds` times so drift of the machine hits all alike. A benchmark
 * script, not a test:
 *
 *   node --conditions=switchyard-source --import tsx tools/recovery-cluster.ts [--clients=300] [--broadcasts=5000] [--rounds=2]
 *
 * `--clients` socket.io-client WebSocket clients (this process), spread evenly over the
 * nodes, all in one room; node A emits `--broadcasts` 64 B events to the room as fast as
 * it can (1,000 per event-loop turn), so two thirds of them cross the bus. Reported per
 * mode: broadcasts/s (first emit to the last delivery at every client), server CPU (all
 * three nodes, process.cpuUsage) per delivery, and Redis CPU (INFO cpu) per broadcast;
 * with the log, Redis memory per logged broadcast (MEMORY USAGE of the stream / XLEN).
 */
import os from "node:os";
import { forkNode, listenAndAnnounce, type NodeProc, numberArg } from "../lib/node-process.js";

type Mode = "off" | "memory" | "log";

/** One node: Server + ClusterAdapter over Redis, recovery per RC_MODE; IPC `cpu` / `blast`. */
async function node(): Promise<void> {
  const { createServer } = await import("node:http");
  const { createAdapter, Server } = await import("@switchyard/server");
  const { RedisBus, RedisRecoveryLog } = await import("@switchyard/redis");
  const url = process.env.RC_REDIS ?? "";
  const mode = process.env.RC_MODE as Mode;
  const bus = new RedisBus({ url });
  await bus.ready();
  const log = mode === "log" ? new RedisRecoveryLog({ url }) : undefined;
  const http = createServer();
  const io = new Server(http, {
    ...(mode === "off" ? {} : { connectionStateRecovery: {} }),
    adapter: createAdapter(bus, log === undefined ? {} : { recovery: log }),
  });
  io.on("connection", (socket) => {
    socket.join("r");
  });
  const payload = "x".repeat(64);
  process.on("message", (m: { id: number; cmd: string; count?: number }) => {
    if (m.cmd === "cpu") {
      const cpu = process.cpuUsage();
      process.send?.({ id: m.id, result: cpu.user + cpu.system });
      return;
    }
    // blast: `count` broadcasts, 1,000 per turn.
    let left = m.count ?? 0;
    const turn = (): void => {
      for (let i = 0; i < 1000 && left > 0; i++, left--) io.to("r").emit("t", payload);
      if (left > 0) setImmediate(turn);
      else process.send?.({ id: m.id, result: 0 });
    };
    turn();
  });
  process.on("disconnect", () => {
    void io
      .close()
      .then(() => Promise.all([bus.close(), log?.close()]))
      .finally(() => process.exit(0));
  });
  listenAndAnnounce(http);
}

function startNode(redisUrl: string, mode: Mode): Promise<NodeProc> {
  return forkNode(import.meta.url, { RC_ROLE: "node", RC_REDIS: redisUrl, RC_MODE: mode });
}

interface Figures {
  /** Redis memory per logged entry (MEMORY USAGE of the stream / XLEN), log mode only. */
  redisBytesPerEntry?: number;
  broadcastsPerS: number;
  deliveriesPerS: number;
  serverCpuUsPerDelivery: number;
  redisCpuUsPerBroadcast: number;
}

async function phase(
  redisUrl: string,
  mode: Mode,
  clients: number,
  broadcasts: number,
): Promise<Figures> {
  const { io: connect } = await import("socket.io-client");
  const { Redis } = await import("ioredis");
  const admin = new Redis(redisUrl);
  await admin.flushall();
  const nodes = await Promise.all([0, 1, 2].map(() => startNode(redisUrl, mode)));
  const sockets: ReturnType<typeof connect>[] = [];
  try {
    let received = 0;
    let connected = 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("clients not connected in 30 s")), 30_000);
      for (let i = 0; i < clients; i++) {
        const s = connect(`http://127.0.0.1:${nodes[i % 3]!.port}`, {
          forceNew: true,
          transports: ["websocket"],
          reconnection: false,
        });
        s.on("t", () => {
          received++;
        });
        s.once("connect", () => {
          if (++connected === clients) {
            clearTimeout(t);
            resolve();
          }
        });
        sockets.push(s);
      }
    });
    // Joins (and their bus subscriptions) settle.
    await new Promise((r) => setTimeout(r, 500));
    const redisCpu = async (): Promise<number> => {
      const info = await admin.info("cpu");
      const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
      return (get("used_cpu_user") + get("used_cpu_sys")) * 1e6;
    };
    const cpu0 = await Promise.all(nodes.map((n) => n.call<number>("cpu")));
    const r0 = await redisCpu();
    const want = clients * broadcasts;
    const start = process.hrtime.bigint();
    await nodes[0]!.call("blast", { count: broadcasts });
    const deadline = Date.now() + 120_000;
    while (received < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (received < want) throw new Error(`${mode}: ${received}/${want} deliveries in 120 s`);
    const cpu1 = await Promise.all(nodes.map((n) => n.call<number>("cpu")));
    const r1 = await redisCpu();
    const serverCpu = cpu1.reduce((a, c, i) => a + c - cpu0[i]!, 0);
    const stream = "{switchyard:recovery:/}:log";
    const entries = mode === "log" ? await admin.xlen(stream) : 0;
    const bytes =
      entries > 0 ? Number(await admin.call("MEMORY", "USAGE", stream, "SAMPLES", "0")) : 0;
    return {
      ...(entries > 0 ? { redisBytesPerEntry: bytes / entries } : {}),
      broadcastsPerS: broadcasts / seconds,
      deliveriesPerS: want / seconds,
      serverCpuUsPerDelivery: serverCpu / want,
      redisCpuUsPerBroadcast: (r1 - r0) / broadcasts,
    };
  } finally {
    for (const s of sockets) s.close();
    await Promise.all(nodes.map((n) => n.stop()));
    admin.disconnect();
  }
}

async function main(): Promise<void> {
  const clients = numberArg("clients", 300);
  const broadcasts = numberArg("broadcasts", 5000);
  const rounds = numberArg("rounds", 2);
  const harness = await import("@switchyard/test-harness");
  const redis = await harness.startRedis();
  const modes: Mode[] = ["off", "memory", "log"];
  const all = new Map<Mode, Figures[]>(modes.map((m) => [m, []]));
  const load0 = os.loadavg()[0]!;
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of modes) {
        const f = await phase(redis.url, mode, clients, broadcasts);
        all.get(mode)!.push(f);
        console.log(`round ${r + 1} ${mode}: ${JSON.stringify(f)}`);
      }
    }
  } finally {
    await redis.stop();
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
  };
  console.log(
    `\n${clients} clients on 3 nodes, ${broadcasts} × 64 B broadcasts from node A, ${rounds} rounds (medians); load average ${load0.toFixed(2)} → ${os.loadavg()[0]!.toFixed(2)}, ${os.cpus().length} cores\n`,
  );
  console.log(
    "| recovery | broadcasts/s | deliveries/s | server CPU µs/delivery | Redis CPU µs/broadcast |",
  );
  console.log("|---|---:|---:|---:|---:|");
  for (const mode of modes) {
    const fs = all.get(mode)!;
    const label =
      mode === "off"
        ? "off"
        : mode === "memory"
          ? "on, no log (per node)"
          : "on, Redis Streams log";
    console.log(
      `| ${label} | ${median(fs.map((f) => f.broadcastsPerS)).toFixed(0)} | ${median(fs.map((f) => f.deliveriesPerS)).toFixed(0)} | ${median(fs.map((f) => f.serverCpuUsPerDelivery)).toFixed(2)} | ${median(fs.map((f) => f.redisCpuUsPerBroadcast)).toFixed(1)} |`,
    );
  }
  const perEntry = all.get("log")!.find((f) => f.redisBytesPerEntry !== undefined);
  if (perEntry?.redisBytesPerEntry !== undefined) {
    console.log(
      `\nRedis memory per logged 64 B broadcast: ${perEntry.redisBytesPerEntry.toFixed(0)} B`,
    );
  }
}

if (process.env.RC_ROLE === "node") await node();
else await main();
