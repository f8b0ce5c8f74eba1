/**
 * The cost of session forwarding: a long-polling session served by its owner directly,
 * against the same session reached through another node that forwards to the owner.
 * A benchmark script, not a test:
 *
 *   node --conditions=switchyard-source --import tsx tools/forwarding.ts [--sessions=20] [--seconds=5] [--rounds=2]
 *
 * Two Switchyard node processes (A owns every session, B is the entry node of the
 * forwarded phases) with `forwarding` over a RedisBus (the bus only carries the nodes'
 * announcements; forwarded requests go node to node). `--sessions` Engine.IO polling
 * sessions, handshaken on A, each doing sequential round trips for `--seconds` per
 * phase: a held GET, then a POST of one Socket.IO event with an ack id; the round trip
 * ends when the GET returns the ack. Phases alternate (local: both requests to A;
 * forwarded: both to B) `--rounds` times, so drift of the machine hits both alike.
 *
 * Reports per phase kind: round trips/s, latency p50/p99 per round trip, and server CPU
 * (from each node's process.cpuUsage) per round trip and per forwarded request (two per
 * round trip: the POST and the GET), split between the entry node and the owner.
 */
import { Agent, request } from "node:http";
import { Histogram } from "../lib/histogram.js";
import { forkNode, listenAndAnnounce, type NodeProc, numberArg } from "../lib/node-process.js";

const SECRET = "bench-forwarding-cluster-secret-0123456789";

/** One node: Server + ClusterAdapter + forwarding over Redis; answers IPC `cpu`/`peers`. */
async function node(): Promise<void> {
  const { createServer } = await import("node:http");
  const { createAdapter, Server } = await import("@switchyard/server");
  const { RedisBus } = await import("@switchyard/redis");
  const bus = new RedisBus({ url: process.env.FWD_REDIS ?? "" });
  await bus.ready();
  const http = createServer();
  const io = new Server(http, {
    adapter: createAdapter(bus),
    forwarding: { bus, secret: SECRET },
  });
  io.on("connection", (socket) => {
    socket.on("echo", (x: unknown, cb: unknown) => {
      if (typeof cb === "function") cb(x);
    });
  });
  await io.engine.forwarder?.ready();
  process.on("message", (m: { id: number; cmd: string }) => {
    const cpu = process.cpuUsage();
    const result =
      m.cmd === "cpu"
        ? { cpuUs: cpu.user + cpu.system, stats: io.engine.forwarder?.stats }
        : { peers: io.engine.forwarder?.directory.peers() ?? [] };
    process.send?.({ id: m.id, result });
  });
  process.on("disconnect", () => {
    void io
      .close()
      .then(() => bus.close())
      .finally(() => process.exit(0));
  });
  listenAndAnnounce(http);
}

function startNode(redisUrl: string): Promise<NodeProc> {
  return forkNode(import.meta.url, { FWD_ROLE: "node", FWD_REDIS: redisUrl });
}

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

function http(method: "GET" | "POST", port: number, path: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent,
        headers: body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8" },
      },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          data += c;
        });
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(data)
            : reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${data}`)),
        );
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on("error", reject);
    req.end(body);
  });
}

const PATH = "/socket.io/?EIO=4&transport=polling";

/** An Engine.IO polling session with a Socket.IO connection, created on `port`. */
async function openSession(port: number): Promise<string> {
  const open = await http("GET", port, PATH);
  const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
  await http("POST", port, `${PATH}&sid=${sid}`, "40");
  const connected = await http("GET", port, `${PATH}&sid=${sid}`);
  if (!connected.startsWith("40")) throw new Error(`no Socket.IO CONNECT: ${connected}`);
  return sid;
}

/**
 * One round trip on `port`: a held GET, then a POST of `421["echo",n]`; done when a GET
 * returns the ack `431[n]` (pings on the way are answered with pongs).
 */
async function roundTrip(port: number, sid: string, n: number): Promise<void> {
  const path = `${PATH}&sid=${sid}`;
  const want = `43${n % 1000}[${n}]`;
  let got = http("GET", port, path);
  await http("POST", port, path, `42${n % 1000}["echo",${n}]`);
  for (let i = 0; i < 10; i++) {
    const packets = (await got).split("\x1e");
    if (packets.includes("2")) await http("POST", port, path, "3");
    if (packets.includes(want)) return;
    got = http("GET", port, path);
  }
  throw new Error(`no ack ${want}`);
}

interface Phase {
  roundTrips: number;
  seconds: number;
  hist: Histogram;
  cpuA: number;
  cpuB: number;
}

async function phase(
  nodes: { a: NodeProc; b: NodeProc },
  target: number,
  sids: string[],
  seconds: number,
  counter: { n: number },
): Promise<Phase> {
  const hist = new Histogram();
  const [a0, b0] = await Promise.all([
    nodes.a.call<{ cpuUs: number }>("cpu"),
    nodes.b.call<{ cpuUs: number }>("cpu"),
  ]);
  const start = performance.now();
  const end = start + seconds * 1000;
  let roundTrips = 0;
  await Promise.all(
    sids.map(async (sid) => {
      // Bounded by time and by count.
      for (let i = 0; i < 1_000_000 && performance.now() < end; i++) {
        const t = performance.now();
        await roundTrip(target, sid, ++counter.n);
        hist.record(performance.now() - t);
        roundTrips++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const [a1, b1] = await Promise.all([
    nodes.a.call<{ cpuUs: number }>("cpu"),
    nodes.b.call<{ cpuUs: number }>("cpu"),
  ]);
  return {
    roundTrips,
    seconds: elapsed,
    hist,
    cpuA: a1.cpuUs - a0.cpuUs,
    cpuB: b1.cpuUs - b0.cpuUs,
  };
}

async function main(): Promise<void> {
  const sessions = numberArg("sessions", 20);
  const seconds = numberArg("seconds", 5);
  const rounds = numberArg("rounds", 2);
  const harness = await import("@switchyard/test-harness");
  const redis = await harness.startRedis();
  const started: NodeProc[] = [];
  try {
    const a = await startNode(redis.url);
    started.push(a);
    const b = await startNode(redis.url);
    started.push(b);
    for (let i = 0; ; i++) {
      const [pa, pb] = await Promise.all([
        a.call<{ peers: string[] }>("peers"),
        b.call<{ peers: string[] }>("peers"),
      ]);
      if (pa.peers.length >= 1 && pb.peers.length >= 1) break;
      if (i > 200) throw new Error("the nodes did not find each other in 10 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    const sids: string[] = [];
    for (let i = 0; i < sessions; i++) sids.push(await openSession(a.port));
    const counter = { n: 0 };
    // Warm-up: both paths, JIT and keep-alive connections.
    await phase({ a, b }, a.port, sids, 1, counter);
    await phase({ a, b }, b.port, sids, 1, counter);
    const local: Phase[] = [];
    const forwarded: Phase[] = [];
    for (let r = 0; r < rounds; r++) {
      local.push(await phase({ a, b }, a.port, sids, seconds, counter));
      forwarded.push(await phase({ a, b }, b.port, sids, seconds, counter));
    }
    const stats = await b.call<{ stats: unknown }>("cpu");
    const sum = (ps: Phase[]) => {
      const hist = new Histogram();
      for (const p of ps) hist.merge(p.hist);
      const n = ps.reduce((s, p) => s + p.roundTrips, 0);
      const secs = ps.reduce((s, p) => s + p.seconds, 0);
      const cpuA = ps.reduce((s, p) => s + p.cpuA, 0);
      const cpuB = ps.reduce((s, p) => s + p.cpuB, 0);
      return {
        n,
        perSec: n / secs,
        p50: hist.quantile(0.5),
        p99: hist.quantile(0.99),
        cpuA: cpuA / n,
        cpuB: cpuB / n,
      };
    };
    const l = sum(local);
    const f = sum(forwarded);
    const fmt = (x: number, d = 2) => x.toFixed(d);
    console.log(`sessions ${sessions}, ${rounds} × ${seconds} s per path, Node ${process.version}`);
    console.log(
      "| path | round trips/s | p50 ms | p99 ms | CPU owner µs/rt | CPU entry µs/rt | CPU total µs/rt |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|");
    console.log(
      `| local (owner A) | ${fmt(l.perSec, 0)} | ${fmt(l.p50)} | ${fmt(l.p99)} | ${fmt(l.cpuA, 0)} | ${fmt(l.cpuB, 0)} | ${fmt(l.cpuA + l.cpuB, 0)} |`,
    );
    console.log(
      `| forwarded (B → A) | ${fmt(f.perSec, 0)} | ${fmt(f.p50)} | ${fmt(f.p99)} | ${fmt(f.cpuA, 0)} | ${fmt(f.cpuB, 0)} | ${fmt(f.cpuA + f.cpuB, 0)} |`,
    );
    console.log(
      `extra latency per polling round trip: p50 +${fmt(f.p50 - l.p50)} ms, p99 +${fmt(f.p99 - l.p99)} ms; ` +
        `extra server CPU per round trip +${fmt(f.cpuA + f.cpuB - l.cpuA - l.cpuB, 0)} µs ` +
        `(entry node ${fmt(f.cpuB - l.cpuB, 0)} µs = ${fmt((f.cpuB - l.cpuB) / 2, 0)} µs per forwarded request, ` +
        `owner ${fmt(f.cpuA - l.cpuA, 0)} µs)`,
    );
    console.log(`entry node's forwarder stats: ${JSON.stringify(stats.stats)}`);
  } finally {
    await Promise.all(started.map((n) => n.stop()));
    agent.destroy();
    await redis.stop();
  }
}

if (process.env.FWD_ROLE === "node") {
  await node();
} else {
  await main();
}
