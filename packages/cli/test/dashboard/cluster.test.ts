/**
 * The dashboard's cluster view over a real Redis bus: two nodes seen, the bus up; a Redis
 * crash shows as bus down (snapshot and sampled history), BUS_DOWN under errors by code,
 * the other node gone; after a restart the bus is up again and the node is back. Each node's
 * row carries that node's own answer (connections, bus health) over the bus.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { RedisBus } from "@switchyard/redis";
import { createAdapter } from "@switchyard/server";
import { type RedisServer, startRedis } from "@switchyard/test-harness";
import { io as ioc } from "socket.io-client";
import {
  type DashboardSnapshot,
  dashboardSchema,
  installDashboard,
} from "../../src/dashboard/index.js";
import { startContext, type TestContext, until } from "../metrics/serve-context.js";

const KEY = "cluster-dashboard-key-0123456789";

let redis: RedisServer | undefined;
after(async () => {
  await redis?.stop();
});

test("cluster nodes and bus health follow a real Redis crash and restart", async (t) => {
  redis = await startRedis();
  const busA = new RedisBus({ url: redis.url });
  const busB = new RedisBus({ url: redis.url });
  const contexts: TestContext[] = [];
  t.after(async () => {
    for (const c of contexts) await c.close();
    await busA.close();
    await busB.close();
  });
  await busA.ready();
  await busB.ready();
  const adapter = (bus: RedisBus) => createAdapter(bus, { heartbeatInterval: 200 });
  const a = await startContext({ bus: busA, server: { adapter: adapter(busA) } });
  contexts.push(a);
  const b = await startContext({ bus: busB, server: { adapter: adapter(busB) } });
  contexts.push(b);
  const installed = await installDashboard(
    a.ctx,
    dashboardSchema.parse({ enabled: true, adminKey: KEY, sampleIntervalMs: 100 }),
  );
  t.after(() => installed.close());
  const installedB = await installDashboard(
    b.ctx,
    dashboardSchema.parse({ enabled: true, adminKey: KEY, sampleIntervalMs: 100 }),
  );
  t.after(() => installedB.close());

  const snapshot = async (): Promise<DashboardSnapshot> => {
    const res = await fetch(`${a.url}/dashboard/api/snapshot`, {
      headers: { authorization: `Bearer ${KEY}` },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as DashboardSnapshot;
  };

  await until(async () => (await snapshot()).cluster.nodes.length === 2, 10_000, "node B listed");
  // Two clients on B: A's dashboard shows them in B's row (B answers over the bus).
  const onB = [0, 1].map(() =>
    ioc(b.url, { reconnection: false, forceNew: true, transports: ["websocket"] }),
  );
  t.after(() => {
    for (const c of onB) c.close();
  });
  await Promise.all(onB.map((c) => new Promise<void>((r) => c.once("connect", () => r()))));
  await until(
    async () => (await snapshot()).cluster.nodes.find((n) => !n.self)?.connections === 2,
    5000,
    "B's connections seen from A",
  );
  const s0 = await snapshot();
  const nodeB = s0.cluster.nodes.find((n) => !n.self);
  assert.equal(nodeB?.busUp, 1);
  assert.equal(nodeB?.pid, process.pid);
  assert.equal(s0.cluster.totalConnections, 2);
  assert.equal(s0.cluster.nodes.find((n) => n.self)?.connections, 0);
  assert.equal(s0.cluster.bus?.healthy, true);
  assert.equal(s0.cluster.nodes.filter((n) => n.self).length, 1);
  assert.equal(s0.history.at(-1)?.busUp, 1);

  const down = new Promise<void>((resolve) => busA.once("down", () => resolve()));
  await redis.kill();
  await down;
  const s1 = await snapshot();
  assert.equal(s1.cluster.bus?.healthy, false);
  assert.deepEqual(
    s1.cluster.nodes.map((n) => n.self),
    [true],
    "no other node while the bus is down",
  );
  assert.equal(s1.errors.byCode.BUS_DOWN, 1);
  assert.equal(s1.errors.recent[0]?.code, "BUS_DOWN");
  await until(async () => (await snapshot()).history.at(-1)?.busUp === 0, 5000, "down sampled");

  const up = new Promise<void>((resolve) => busA.once("up", () => resolve()));
  await redis.restart();
  await up;
  assert.equal((await snapshot()).cluster.bus?.healthy, true);
  await until(async () => (await snapshot()).cluster.nodes.length === 2, 10_000, "node B back");
});
