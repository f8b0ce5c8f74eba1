/**
 * Membership by heartbeat on in-process nodes: a node cut off without a bye drops out
 * of the counts within two heartbeat intervals, a node that closes says bye and drops
 * out at once, requests never wait for a dead node (nor for one that dies while they
 * run), a bus outage keeps local delivery going and is reported once, and options are
 * validated.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  ClusterAdapter,
  type ClusterAdapterOptions,
  createAdapter,
  InvalidOptionError,
  LocalHub,
} from "@switchyard/server";
import { once, Scope, waitFor, within } from "../socketio/helpers.js";
import { type counts, peer, received, startCluster, waitCounts } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const INTERVAL = 100;
const OPTS: ClusterAdapterOptions = { heartbeatInterval: INTERVAL, requestsTimeout: 5000 };
/** Timer and event-loop jitter of a busy test process (polling every 5 ms). */
const SLACK = 80;

/** Polls serverCount on `nodes` and resolves with the ms it took to read `n` everywhere. */
async function timeUntilCount(
  nodes: Parameters<typeof counts>[0],
  n: number,
  since: number,
  timeoutMs = 2000,
): Promise<number> {
  await waitCounts(nodes, n, timeoutMs);
  return Date.now() - since;
}

describe("cluster membership", () => {
  it("a node whose bus goes silent (closed, no bye) drops out within two heartbeat intervals", async (t) => {
    const { nodes } = await startCluster(scope, 3, OPTS);
    const [A, B, C] = nodes;
    const left = once<[string, string]>(A!.adapter, "node-left", 2000);
    await C!.bus.close();
    const ms = await timeUntilCount([A!, B!], 2, Date.now());
    t.diagnostic(`dropped out after ${ms} ms (interval ${INTERVAL} ms)`);
    assert.ok(ms <= 2 * INTERVAL + SLACK, `took ${ms} ms`);
    assert.deepEqual(await left, [C!.adapter.uid, "timeout"]);
  });

  it("a node that closes cleanly says bye and drops out at once", async () => {
    const { nodes } = await startCluster(scope, 3, { heartbeatInterval: 10_000 });
    const [A, B, C] = nodes;
    const left = once<[string, string]>(B!.adapter, "node-left", 2000);
    const started = Date.now();
    await C!.io.close();
    const ms = await timeUntilCount([A!, B!], 2, started, 1000);
    assert.ok(ms < 500, `took ${ms} ms with a 10 s heartbeat`);
    assert.deepEqual(await left, [C!.adapter.uid, "bye"]);
  });

  it("requests never wait for a dead node, nor for one that dies while they run", async (t) => {
    const { nodes } = await startCluster(scope, 3, OPTS);
    const [A, B, C] = nodes;
    const a = await peer(scope, A!);
    const b = await peer(scope, B!);
    await peer(scope, C!);
    B!.io.on("ping", (cb: (r: unknown) => void) => cb("B"));
    C!.io.on("ping", (cb: (r: unknown) => void) => cb("C"));
    // C is cut off (its broker connection lost): it neither hears nor answers.
    C!.bus.disconnect();
    const started = Date.now();
    const [fetched, pinged] = await within(
      Promise.all([A!.io.fetchSockets(), A!.io.serverSideEmitWithAck("ping")]),
      2000,
      "requests pending on a dying node",
    );
    const ms = Date.now() - started;
    t.diagnostic(`requests completed ${ms} ms after the node went silent (requestsTimeout 5000)`);
    assert.deepEqual(fetched.map((s) => s.id).sort(), [a.socket.id, b.socket.id].sort());
    assert.deepEqual(pinged, ["B"]);
    assert.ok(ms <= 2 * INTERVAL + INTERVAL + SLACK, `took ${ms} ms`);
    // Once known dead, requests do not even ask it.
    const again = Date.now();
    await A!.io.serverSideEmitWithAck("ping");
    assert.ok(Date.now() - again < INTERVAL, "answered without waiting");
    const acks = await A!.io
      .timeout(1000)
      .emitWithAck("nobody-answers-this")
      .catch((e: Error) => e);
    assert.ok(acks instanceof Error, "clients that do not ack still time out normally");
  });

  it("a bus outage: reported once, local delivery continues, membership returns on reconnect", async () => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (msg: unknown) => warnings.push(String(msg));
    try {
      const { nodes } = await startCluster(scope, 3, OPTS);
      const [A, B, C] = nodes;
      const a = await peer(scope, A!);
      const c = await peer(scope, C!);
      const downs: unknown[] = [];
      C!.adapter.on("bus-down", (err: unknown) => downs.push(err));
      // A request in flight when the broker goes: its answers cannot come, it ends now.
      const inFlight = C!.io.serverSideEmitWithAck("nobody-listens");
      C!.bus.disconnect(new Error("broker gone"));
      assert.deepEqual(await within(inFlight, 500, "the request in flight"), []);
      C!.bus.disconnect(); // a second report of the same outage changes nothing
      assert.equal(await C!.adapter.serverCount(), 1, "alone while the bus is down");
      assert.equal(downs.length, 1);
      assert.equal(warnings.filter((w) => w.includes("cluster bus down")).length, 1);
      assert.match(warnings[0]!, /broker gone/);
      // Local delivery on the cut-off node keeps working; cluster traffic does not reach it.
      C!.io.emit("local-only");
      A!.io.emit("from-a");
      await waitFor(
        () => received(c, "local-only").length === 1 && received(a, "from-a").length === 1,
        2000,
        "local delivery",
      );
      assert.equal(received(a, "local-only").length, 0);
      assert.equal(received(c, "from-a").length, 0);
      await waitCounts([A!, B!], 2, 1000);
      // Back: hello, peers answer, counts are whole again well before a heartbeat.
      const up = once(C!.adapter, "bus-up");
      const started = Date.now();
      C!.bus.reconnect();
      await up;
      await waitCounts(nodes, 3, 1000);
      assert.ok(Date.now() - started < INTERVAL + SLACK);
      A!.io.emit("again");
      await waitFor(
        () => received(c, "again").length === 1,
        2000,
        "cluster delivery after reconnect",
      );
    } finally {
      console.warn = warn;
    }
  });
});

describe("cluster adapter options", () => {
  it("are validated once, naming the option", () => {
    const bus = new LocalHub().bus();
    const bad: [ClusterAdapterOptions, RegExp][] = [
      [{ heartbeatInterval: 0 }, /heartbeatInterval/],
      [{ heartbeatInterval: 1.5 }, /heartbeatInterval/],
      [{ heartbeatTimeout: -1 }, /heartbeatTimeout/],
      [
        { heartbeatInterval: 1000, heartbeatTimeout: 500 },
        /heartbeatTimeout.*at least heartbeatInterval/,
      ],
      [{ requestsTimeout: Number.NaN }, /requestsTimeout/],
    ];
    for (const [opts, re] of bad) {
      assert.throws(
        () => createAdapter(bus, opts),
        (err: unknown) => err instanceof InvalidOptionError && re.test(err.message),
      );
    }
    assert.throws(() => createAdapter({} as never), /option "bus"/);
    assert.throws(() => createAdapter(bus, null as never), InvalidOptionError);
    assert.equal(typeof createAdapter(bus), "function");
  });

  it("defaults: 5 s heartbeat, twice that to die, 5 s requests; one uid per Server", async () => {
    const hub = new LocalHub();
    const { startServer } = await import("../socketio/helpers.js");
    const srv = await startServer(scope, {
      adapter: createAdapter(scope.add(hub.bus(), (b) => b.close())),
    });
    const main = srv.io.sockets.adapter as ClusterAdapter;
    assert.ok(main instanceof ClusterAdapter);
    assert.deepEqual(
      { ...main.options },
      { heartbeatInterval: 5000, heartbeatTimeout: 10_000, requestsTimeout: 5000 },
    );
    assert.equal((srv.io.of("/other").adapter as ClusterAdapter).uid, main.uid);
    // The same constructor used by two Servers: their namespaces must not share a uid.
    const shared = createAdapter(
      scope.add(hub.bus(), (b) => b.close()),
      OPTS,
    );
    const one = await startServer(scope, { adapter: shared });
    const two = await startServer(scope, { adapter: shared });
    const [u1, u2] = [one, two].map((s) => (s.io.sockets.adapter as ClusterAdapter).uid);
    assert.notEqual(u1, u2);
  });
});
