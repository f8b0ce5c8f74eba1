/**
 * Mixed clusters: real socket.io 4.8 server processes and Switchyard processes in one
 * cluster, real socket.io-client 4.8 clients on every node, real Redis from the harness.
 *
 * 1. All nodes on the official `@socket.io/redis-adapter` (2 socket.io + 2 Switchyard):
 *    the checks of official-adapter-suite.ts across both kinds (broadcasts / rooms /
 *    `except` once and in order, `fetchSockets` returning sockets of both kinds with
 *    working remote emit/join/leave/disconnect, `socketsJoin`/`socketsLeave`/
 *    `disconnectSockets`, `serverSideEmit` with acks and broadcast acks with a timeout
 *    counting both kinds), then SIGKILL of one node of each kind: the two left keep
 *    delivering to each other's clients and answer each other's requests.
 * 2. Switchyard's own ClusterAdapter (RedisBus) next to a socket.io node on
 *    `@socket.io/redis-adapter`: what works — broadcasts both ways (all, one room,
 *    `except`), exactly once and in order; `socketsJoin` / `disconnectSockets` issued on
 *    the socket.io node reaching Switchyard's sockets (socket.io's adapter publishes them
 *    in the request format of `@socket.io/redis-emitter`, which Switchyard reads) — and,
 *    kept as a check that it still is so, what does not: the socket.io node's requests
 *    that expect answers (`fetchSockets`, `serverSideEmit` with ack) time out, because
 *    Switchyard answers its own request format only (docs/socketio-adapters.md).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { startRedis, waitFor } from "@switchyard/test-harness";
import { fence, range, startSioCluster } from "./helpers.js";
import { officialAdapterTests } from "./official-adapter-suite.js";
import { suiteCluster } from "./suite-cluster.js";

interface AckResult {
  error: string | null;
  responses: unknown[];
}

const redisBroker = {
  async startBroker(
    scope: Parameters<NonNullable<Parameters<typeof startSioCluster>[0]["startBroker"]>>[0],
  ) {
    const redis = scope.add(await startRedis(), (x) => x.stop());
    return redis.url;
  },
};

describe("2 socket.io + 2 Switchyard processes on @socket.io/redis-adapter", () => {
  const get = suiteCluster(() =>
    startSioCluster({
      // A and C are socket.io, B and D Switchyard: the suite's checks mix them.
      nodes: [
        { server: "socketio", adapter: "redis" },
        { server: "switchyard", adapter: "redis" },
        { server: "socketio", adapter: "redis" },
        { server: "switchyard", adapter: "redis" },
      ],
      ...redisBroker,
    }),
  );

  officialAdapterTests(test, get);

  test("SIGKILL of one node of each kind: the other two keep serving each other", async () => {
    const c = get();
    const [a, b, nodeC, d] = c.nodes as [
      (typeof c.nodes)[0],
      (typeof c.nodes)[0],
      (typeof c.nodes)[0],
      (typeof c.nodes)[0],
    ];
    await Promise.all([a.kill(), b.kill()]);
    // The two first clients of C and D (the suite disconnected some of its extra ones).
    const left = c.clients.filter((x) => /^[CD][01]$/.test(x.name));
    // The suite's extra clients (one never answers acks) leave.
    for (const x of c.clients) if (!left.includes(x)) x.socket.close();
    left.push(...[c.addClient("C-late", nodeC), c.addClient("D-late", d)]);
    await waitFor(() => left.every((x) => x.socket.connected), 10_000, "clients of C and D");
    await waitFor(
      async () =>
        (await nodeC.call<unknown[]>("local")).length === 3 &&
        (await d.call<unknown[]>("local")).length === 3,
      10_000,
      "three sockets left on C and on D",
    );
    await waitFor(
      async () =>
        (await nodeC.call<number>("serverCount")) === 2 &&
        (await d.call<number>("serverCount")) === 2,
      15_000,
      "C and D counting 2 servers",
    );
    await Promise.all([
      nodeC.call("broadcast", { event: "after", n: 50 }),
      d.call("broadcast", { event: "after", n: 50 }),
    ]);
    await fence(nodeC, left);
    await fence(d, left);
    for (const x of left) {
      assert.deepEqual(x.sequence("after", "C"), range(50), `${x.name} from socket.io node C`);
      assert.deepEqual(x.sequence("after", "D"), range(50), `${x.name} from Switchyard node D`);
    }
    for (const [from, other] of [
      [nodeC, "D"],
      [d, "C"],
    ] as const) {
      const r = await from.call<AckResult>("serverSideEmit");
      assert.deepEqual(r, { error: null, responses: [other] }, `serverSideEmit from ${from.name}`);
      const acks = await from.call<AckResult>("broadcastWithAck", {
        event: "ask",
        timeoutMs: 5000,
      });
      assert.equal(acks.error, null, `broadcast ack from ${from.name}`);
      assert.deepEqual(
        [...acks.responses].sort(),
        left.map((x) => x.name).sort(),
        `acks from ${from.name}`,
      );
    }
  });
});

describe("Switchyard's own ClusterAdapter next to a socket.io node on @socket.io/redis-adapter", () => {
  const get = suiteCluster(() =>
    startSioCluster({
      nodes: [
        { server: "socketio", adapter: "redis" },
        { server: "switchyard", adapter: "switchyard-redis" },
      ],
      // socket.io counts Switchyard (subscribed to socket.io-request#/#), Switchyard does
      // not count socket.io (no heartbeats): the counts differ, by design of each.
      serverCount: false,
      ...redisBroker,
    }),
  );

  test("broadcasts both ways: to all, to one room, with except — once, in order", async () => {
    const c = get();
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    // Joins issued on each client's own node (local joins, no cross-kind request).
    await a.call("socketsJoin", { to: [c.client("A1").id], room: "red" });
    await b.call("socketsJoin", { to: [c.client("B1").id], room: "red" });
    const n = 50;
    for (const node of [a, b]) {
      await node.call("broadcast", { event: "all", n });
      await node.call("broadcast", { event: "red", n, to: ["red"] });
      await node.call("broadcast", { event: "notRed", n, except: ["red"] });
    }
    await fence(a, c.clients);
    await fence(b, c.clients);
    for (const x of c.clients) {
      const inRed = x.name === "A1" || x.name === "B1";
      for (const from of ["A", "B"]) {
        assert.deepEqual(x.sequence("all", from), range(n), `${x.name} all from ${from}`);
        assert.deepEqual(
          x.sequence("red", from),
          inRed ? range(n) : [],
          `${x.name} red from ${from}`,
        );
        assert.deepEqual(
          x.sequence("notRed", from),
          inRed ? [] : range(n),
          `${x.name} except red from ${from}`,
        );
      }
    }
  });

  test("socketsJoin and disconnectSockets issued on the socket.io node reach Switchyard's sockets", async () => {
    const c = get();
    const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
    const target = c.client("B0");
    await a.call("socketsJoin", { to: [target.id], room: "blue" });
    await waitFor(
      async () =>
        (await b.call<{ id: string; rooms: string[] }[]>("local"))
          .find((s) => s.id === target.id)
          ?.rooms.includes("blue") === true,
      10_000,
      "B0 in blue",
    );
    const doomed = c.addClient("B-doomed", b);
    await waitFor(() => doomed.socket.connected, 10_000, "B-doomed connected");
    await a.call("disconnectSockets", { to: [doomed.id] });
    await waitFor(() => doomed.disconnectReason !== undefined, 10_000, "B-doomed disconnected");
    assert.equal(doomed.disconnectReason, "io server disconnect");
    assert.equal(target.socket.connected, true);
  });

  test("what cannot work: the socket.io node's fetchSockets and serverSideEmit time out", async () => {
    const a = get().nodes[0]!;
    await assert.rejects(a.call("fetchSockets"), /timeout reached/);
    const r = await a.call<AckResult>("serverSideEmit");
    assert.match(r.error ?? "", /timeout reached/);
  });
});
