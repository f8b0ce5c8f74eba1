// The API cluster-wide: two nodes over a real Redis (RedisBus + cluster adapter). A request
// to one node reaches, lists and counts the sockets of both; an idempotency key seen by one
// node is known to the other; operations published on the broker channel by a plain Redis
// client (as a Python or Go backend would) are applied once per socket.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { RedisBus } from "@switchyard/redis";
import { createAdapter } from "@switchyard/server";
import { type RedisServer, redisCommand, startRedis, waitFor } from "@switchyard/test-harness";
import {
  ALL_KEY,
  Clients,
  call,
  collect,
  MANAGE_KEY,
  type Node,
  next,
  PUBLISH_KEY,
  READ_KEY,
  startNode,
} from "./helpers.ts";

describe("api: two nodes over Redis", () => {
  let redis: RedisServer;
  const buses: RedisBus[] = [];
  const nodes: Node[] = [];
  const clients = new Clients();

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 2; i++) {
      const bus = new RedisBus({ url: redis.url });
      buses.push(bus);
      nodes.push(
        await startNode({
          bus,
          server: {
            adapter: createAdapter(bus, { heartbeatInterval: 200, requestsTimeout: 3000 }),
          },
          setup: (io) => {
            io.on("connection", (s) => {
              s.data = { user: s.handshake.auth.user ?? null, node: i };
            });
          },
        }),
      );
    }
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.io.of("/").adapter.serverCount()))).every(
          (c) => c === 2,
        ),
      10_000,
      "both nodes see each other",
    );
  });
  after(async () => {
    clients.closeAll();
    for (const n of nodes) await n.close();
    for (const b of buses) await b.close();
    await redis?.stop();
  });
  afterEach(() => clients.closeAll());

  function node(i: number): Node {
    const n = nodes[i];
    assert.ok(n);
    return n;
  }

  test("publish, join, list, presence and disconnect through one node reach the other's sockets", async () => {
    const a = await clients.connect(node(0), "/", { user: "on-a" });
    const b = await clients.connect(node(1), "/", { user: "on-b" });
    const gotA = collect(a, "ev");
    const pB = next(b, "ev");
    let r = await call(node(0), "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "ev", data: "all" },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await pB, ["all"]);
    await waitFor(() => gotA.length === 1, 5000, "a got it");

    r = await call(node(0), "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [b.id ?? ""], join: ["room-b"] },
    });
    assert.equal(r.status, 200);
    await call(node(1), "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [a.id ?? ""], join: ["room-b", "room-a"] },
    });
    await waitFor(
      async () => {
        const p = await call(node(0), "GET", "/api/v1/presence?room=room-b&room=room-a", {
          key: READ_KEY,
        });
        return (
          p.body.counts !== undefined && JSON.stringify(p.body.counts) === '{"room-b":2,"room-a":1}'
        );
      },
      5000,
      "presence counts both nodes",
    );
    r = await call(node(1), "GET", "/api/v1/rooms", { key: READ_KEY });
    assert.deepEqual(r.body.rooms, [
      { name: "room-a", size: 1 },
      { name: "room-b", size: 2 },
    ]);
    r = await call(node(0), "GET", "/api/v1/sockets?room=room-b", { key: READ_KEY });
    const listed = r.body.sockets as { id: string; data: { user: string; node: number } }[];
    assert.deepEqual(
      listed.map((s) => s.data).sort((x, y) => x.node - y.node),
      [
        { user: "on-a", node: 0 },
        { user: "on-b", node: 1 },
      ],
    );

    const pRoom = next(b, "room-ev");
    await call(node(0), "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "room-ev", data: 1, rooms: ["room-b"], except: [a.id ?? ""] },
    });
    assert.deepEqual(await pRoom, [1]);

    const gone = next(b, "disconnect");
    r = await call(node(0), "POST", "/api/v1/disconnect", {
      key: MANAGE_KEY,
      body: { sockets: [b.id ?? ""] },
    });
    assert.equal(r.status, 200);
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(a.connected, true);
  });

  test("an idempotency key used on one node is a duplicate on the other", async () => {
    const a = await clients.connect(node(0));
    const got = collect(a, "idem");
    const body = { event: "idem", data: 1, idempotencyKey: "order-42" };
    const first = await call(node(0), "POST", "/api/v1/publish", { key: PUBLISH_KEY, body });
    assert.equal(first.body.duplicate, false);
    // Node 0's bus published the key, then this marker, on one Redis connection: once
    // node 1's client sees the marker, node 1 has recorded the key.
    const b = await clients.connect(node(1));
    const marker = next(b, "marker");
    await call(node(0), "POST", "/api/v1/publish", { key: PUBLISH_KEY, body: { event: "marker" } });
    await marker;
    const retry = await call(node(1), "POST", "/api/v1/publish", { key: PUBLISH_KEY, body });
    assert.equal(retry.body.duplicate, true);
    const end = next(a, "end");
    await call(node(1), "POST", "/api/v1/publish", { key: ALL_KEY, body: { event: "end" } });
    await end;
    assert.deepEqual(got, [[1]]);
  });

  test("operations published on the broker channel by a plain Redis client", async () => {
    const a = await clients.connect(node(0));
    const b = await clients.connect(node(1));
    const port = Number(new URL(redis.url).port);
    const pub = (msg: unknown) =>
      redisCommand(port, ["PUBLISH", "switchyard#api#v1", JSON.stringify(msg)]);
    const gotA = collect(a, "from-broker");
    const gotB = collect(b, "from-broker");
    await pub({ op: "join", sockets: [a.id, b.id], join: ["via-broker"] });
    await pub({ op: "publish", event: "from-broker", data: { x: 1 }, rooms: ["via-broker"] });
    await pub({
      op: "batch",
      messages: [{ event: "from-broker", data: 2, rooms: ["via-broker"], idempotencyKey: "bk" }],
    });
    await pub({
      op: "publish",
      event: "from-broker",
      data: 2,
      rooms: ["via-broker"],
      idempotencyKey: "bk",
    });
    const invalidBefore = nodes.map((n) => n.api.stats.broker.invalid);
    await pub("not an object");
    await pub({ op: "shout", event: "x" });
    await pub({ op: "publish", event: "connect" });
    await pub({ op: "publish", event: "from-broker", data: "end" });
    await waitFor(
      () => gotA.length >= 3 && gotB.length >= 3,
      5000,
      "both clients got the broker publishes",
    );
    assert.deepEqual(gotA, [[{ x: 1 }], [2], ["end"]]);
    assert.deepEqual(gotB, [[{ x: 1 }], [2], ["end"]]);
    nodes.forEach((n, i) => {
      assert.equal(n.api.stats.broker.invalid - (invalidBefore[i] ?? 0), 3, `node ${i} refused 3`);
      const lines = n.logs.filter((l) => String(l.msg).includes("broker message refused"));
      assert.equal(lines.length, 1, "logged once per interval");
    });
    const gone = next(a, "disconnect");
    await pub({ op: "disconnect", rooms: ["via-broker"], except: [b.id] });
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(b.connected, true);
  });
});
