/**
 * Thread emitters: a real worker thread and a real forked child each emit 1,000
 * events/s for 2 s to a room through the main thread's server (no broker), received by
 * real socket.io-clients in order and exactly once, binary included, while REST
 * requests on the same port keep being answered (their p99 is printed, not asserted:
 * timing bounds belong in bench/). Back-pressure: the in-flight window is never
 * exceeded, a main side that does not acknowledge makes the worker's flush wait and
 * its emits be refused (nothing queues). Malformed messages are counted and dropped.
 */
import assert from "node:assert/strict";
import { type ChildProcess, fork } from "node:child_process";
import { request } from "node:http";
import { afterEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { MessageChannel, Worker } from "node:worker_threads";
import {
  attachThreadEmitters,
  InvalidOptionError,
  type SwitchyardError,
  type ThreadEmitterStats,
  threadEmitter,
} from "@switchyard/server";
import { connect, Scope, startServer, waitFor } from "../socketio/helpers.js";

const PRODUCER = fileURLToPath(new URL("producer.ts", import.meta.url));
const EXEC_ARGV = ["--conditions=switchyard-source", "--import", "tsx"];
const WORKER_BOOT = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(
  new URL("producer.ts", import.meta.url).href,
)}); })`;
const RATE = 1000;
const DURATION_MS = 2000;
const TOTAL = (RATE * DURATION_MS) / 1000;
const WINDOW = 64;

const scope = new Scope();
afterEach(() => scope.close());

interface Report {
  test: true;
  [k: string]: unknown;
}

function startWorker(
  cfg: object,
  transferList: MessagePortLike[] = [],
): {
  worker: Worker;
  reports: Report[];
} {
  // Node 20 does not run a worker's `--import` hooks for its entry, so the worker
  // registers tsx itself (it inherits --conditions=switchyard-source from this process).
  const worker = new Worker(WORKER_BOOT, {
    eval: true,
    workerData: cfg,
    transferList: transferList as never,
  });
  scope.add(worker, (w) => w.terminate().then(() => undefined));
  const reports: Report[] = [];
  worker.on("message", (m: Report) => {
    if (m.test === true) reports.push(m);
  });
  worker.on("error", (e) => reports.push({ test: true, error: String(e) }));
  return { worker, reports };
}
type MessagePortLike = object;

function startChild(cfg: object): { child: ChildProcess; reports: Report[] } {
  const child = fork(PRODUCER, [], {
    execArgv: EXEC_ARGV,
    env: { ...process.env, PRODUCER: JSON.stringify(cfg) },
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  scope.add(child, (c) => {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });
  const reports: Report[] = [];
  child.on("message", (m: Report) => {
    if (m.test === true) reports.push(m);
  });
  return { child, reports };
}

/** GETs `/api` in a loop (at most `max` requests, until `stop()`), recording latencies. */
function restLoad(port: number, max: number): { stop(): Promise<number[]> } {
  const latencies: number[] = [];
  let stopped = false;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request({ host: "127.0.0.1", port, path: "/api", agent: false }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          else {
            latencies.push(performance.now() - t0);
            resolve();
          }
        });
      });
      req.on("error", reject);
      req.end();
    });
  const loop = (async () => {
    for (let n = 0; n < max && !stopped; n++) {
      await one();
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return latencies;
    },
  };
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] ?? Number.NaN;
}

async function scenario(kind: "worker" | "child"): Promise<void> {
  const srv = await startServer(scope, {}, (req, res) => {
    if (req.url === "/api") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    }
  });
  srv.io.on("connection", (s) => s.join("ticks"));
  const hub = attachThreadEmitters(srv.io);
  scope.add(hub, (h) => h.close());
  const clients = [await connect(scope, srv.url), await connect(scope, srv.url)];
  const got: { i: number; b: number }[][] = clients.map(() => []);
  for (const [k, c] of clients.entries()) {
    c.on("tick", (i: number, b: Buffer) => {
      got[k]!.push({ i, b: Buffer.from(b).readUInt16BE(0) });
    });
  }
  const outsider = await connect(scope, srv.url);
  await waitFor(() => srv.io.of("/").adapter.rooms.get("ticks")?.size === 3, 3000, "joined");
  srv.io.in(outsider.id!).socketsLeave("ticks");
  let outsiderGot = 0;
  outsider.on("tick", () => outsiderGot++);

  const rest = restLoad(srv.port, 20_000);
  const cfg = {
    mode: "pace",
    room: "ticks",
    rate: RATE,
    durationMs: DURATION_MS,
    maxInFlight: WINDOW,
  };
  let stop: () => unknown;
  let reports: Report[];
  if (kind === "worker") {
    const w = startWorker(cfg);
    hub.adopt(w.worker);
    stop = () => w.worker.terminate();
    reports = w.reports;
  } else {
    const c = startChild(cfg);
    hub.adopt(c.child);
    stop = () => c.child.kill("SIGKILL");
    reports = c.reports;
  }
  assert.equal(hub.stats.endpoints, 1);
  await waitFor(
    () => reports.some((r) => r.done === true || "error" in r),
    DURATION_MS + 25_000,
    `${kind} done`,
  );
  const done = reports.find((r) => r.done === true);
  assert.ok(done, `the ${kind} finished: ${JSON.stringify(reports)}`);
  await waitFor(() => got.every((g) => g.length >= TOTAL), 10_000, "every tick received");
  const latencies = await rest.stop();

  const stats = done.stats as ThreadEmitterStats;
  assert.equal(done.sent, TOTAL);
  assert.equal(stats.posted, TOTAL);
  assert.equal(stats.acknowledged, TOTAL);
  assert.equal(stats.refused, 0);
  assert.ok(stats.maxInFlightSeen <= WINDOW, `window exceeded: ${stats.maxInFlightSeen}`);
  for (const g of got) {
    assert.equal(g.length, TOTAL, "exactly once");
    g.forEach((e, n) => {
      if (e.i !== n || e.b !== n) assert.fail(`out of order at ${n}: ${JSON.stringify(e)}`);
    });
  }
  assert.equal(outsiderGot, 0, "only the room got them");
  assert.ok(latencies.length > 20, `REST kept answering (${latencies.length} requests)`);
  assert.equal(hub.stats.malformed, 0);
  assert.ok(hub.stats.acks < TOTAL, "acknowledgements are coalesced");
  // An endpoint that goes away leaves the hub by itself.
  stop();
  await waitFor(() => hub.stats.endpoints === 0, 5000, "endpoint released");
  console.log(
    `${kind}: ${TOTAL} events in ${Math.round(done.ms as number)} ms, window ${WINDOW} ` +
      `(max in flight ${stats.maxInFlightSeen}, drain waits ${done.waits}, acks ${hub.stats.acks}); ` +
      `REST ${latencies.length} requests, p99 ${p99(latencies).toFixed(1)} ms`,
  );
}

describe("thread emitters", () => {
  it("a worker thread at 1,000 events/s for 2 s: in order, exactly once, REST answered", async () => {
    await scenario("worker");
  });

  it("a forked child at 1,000 events/s for 2 s: in order, exactly once, REST answered", async () => {
    await scenario("child");
  });

  it("back-pressure: a full window refuses emits and flush waits until the main side acknowledges", async () => {
    const srv = await startServer(scope);
    srv.io.on("connection", (s) => s.join("r"));
    const hub = attachThreadEmitters(srv.io);
    scope.add(hub, (h) => h.close());
    const c = await connect(scope, srv.url);
    let n = 0;
    c.on("tick", () => n++);
    const { port1, port2 } = new MessageChannel();
    scope.add(port1, (p) => p.close());
    const w = startWorker(
      { mode: "fill", room: "r", rate: 0, durationMs: 0, maxInFlight: 8, port: port2 },
      [port2],
    );
    // The main side does not listen yet: a stalled server.
    await waitFor(() => w.reports.some((r) => r.stalled === true), 20_000, "worker stalled");
    const filled = w.reports.find((r) => r.filled === true)!;
    assert.equal(filled.accepted, 8, "exactly the window was accepted");
    assert.equal(filled.refusedOnce, true, "then emit returned false");
    const stalled = w.reports.find((r) => r.stalled === true)!;
    assert.equal(stalled.flushedWhileStalled, false, "flush waits while nothing is acknowledged");
    const s = stalled.stats as ThreadEmitterStats;
    assert.equal(s.inFlight, 8);
    assert.equal(s.maxInFlightSeen, 8);
    assert.equal(s.refused, 2, "both refused emits counted, neither queued");
    hub.adopt(port1);
    await waitFor(() => w.reports.some((r) => r.flushed === true), 5000, "flushed after adopt");
    await waitFor(() => n === 8, 3000, "the 8 accepted events delivered");
    assert.equal(hub.stats.delivered, 8);
  });

  it("counts and drops malformed messages, acknowledges in sequence, never throws", async () => {
    const srv = await startServer(scope);
    srv.io.on("connection", (s) => s.join("r"));
    const hub = attachThreadEmitters(srv.io);
    scope.add(hub, (h) => h.close());
    const c = await connect(scope, srv.url);
    const got: unknown[][] = [];
    c.on("hi", (...a: unknown[]) => got.push(a));
    const port = hub.port();
    scope.add(port, (p) => p.close());
    const acks: number[] = [];
    port.on("message", (m: { ack?: number }) => {
      if (typeof m.ack === "number") acks.push(m.ack);
    });
    const tag = "switchyard:thread-emitter";
    const base = { sy: tag, nsp: "/", rooms: ["r"], except: [] };
    port.postMessage({ app: "own message" }); // not ours: ignored, not counted
    port.postMessage({ ...base, id: 1, op: "nope" }); // bad op
    port.postMessage({ ...base, id: 7, op: "emit", data: ["hi"] }); // out of sequence
    port.postMessage({ ...base, id: 2, op: "emit", data: ["connect"] }); // reserved name
    port.postMessage({ ...base, id: 3, op: "emit", rooms: [42], data: ["hi"] }); // bad rooms
    port.postMessage({ ...base, id: 4, op: "join", target: "x" }); // bad target
    port.postMessage({ ...base, id: 5, op: "emit", data: ["hi", 1, Buffer.from([9])] });
    await waitFor(() => got.length === 1, 3000, "the valid emit");
    assert.equal(got[0]![0], 1);
    assert.deepEqual([...Buffer.from(got[0]![1] as Buffer)], [9]);
    await waitFor(() => acks.includes(5), 3000, "ack 5");
    assert.equal(hub.stats.malformed, 5);
    assert.equal(hub.stats.delivered, 1);
  });

  it("same API through a MessagePort: except, join/leave, serverSideEmit, of(), disconnect", async () => {
    const srv = await startServer(scope);
    const hub = attachThreadEmitters(srv.io);
    scope.add(hub, (h) => h.close());
    const a = await connect(scope, srv.url);
    const b = await connect(scope, srv.url);
    const heard: unknown[][] = [];
    srv.io.of("/").on("sse", (...args: unknown[]) => heard.push(args));
    const port = hub.port();
    const emitter = threadEmitter(port, { maxInFlight: 4 });
    scope.add(emitter, (e) => e.close());
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on("m", (s: string) => gotA.push(s));
    b.on("m", (s: string) => gotB.push(s));
    assert.equal(emitter.socketsJoin("all"), true);
    assert.equal(emitter.in(b.id!).socketsJoin("b"), true);
    await emitter.flush();
    emitter.to("all").except("b").emit("m", "not-b");
    emitter.to("b").compress(false).emit("m", "only-b");
    emitter.serverSideEmit("sse", 1, "x");
    await emitter.flush();
    await waitFor(() => gotA.length === 1 && gotB.length === 1, 3000, "targeted emits");
    assert.deepEqual([gotA, gotB], [["not-b"], ["only-b"]]);
    assert.deepEqual(heard, [[1, "x"]]);
    emitter.in("b").socketsLeave("all");
    await emitter.flush();
    assert.equal(srv.io.of("/").adapter.rooms.get("all")?.size, 1);
    assert.equal(emitter.of("/other").namespace, "/other");
    const gone = new Promise<string>((r) => b.once("disconnect", r));
    emitter.in("b").disconnectSockets();
    assert.equal(await gone, "io server disconnect");
    assert.throws(() => emitter.emit("m", "x", () => {}), TypeError);
    assert.throws(
      () => threadEmitter(port, { maxInflight: 2 } as never),
      (e: SwitchyardError) => e.code === "SY_ERR_UNKNOWN_OPTION" && /maxInFlight/.test(e.message),
    );
    assert.throws(() => threadEmitter(port, { maxInFlight: 0 }), InvalidOptionError);
    assert.throws(() => threadEmitter(null), InvalidOptionError);
    assert.throws(() => attachThreadEmitters(null as never), InvalidOptionError);
    assert.throws(() => hub.adopt({} as never), InvalidOptionError);
    assert.throws(() => hub.adopt({ on() {}, off() {} } as never), InvalidOptionError);
  });
});
