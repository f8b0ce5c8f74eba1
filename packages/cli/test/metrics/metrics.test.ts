/**
 * /metrics of `switchyard serve` against a real Server, real socket.io-client and real Redis:
 * the series move when clients connect, emit and leave, refusals are counted by reason, bus
 * series follow a real Redis outage, other areas' observations appear, config is validated.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, afterEach, describe, test } from "node:test";
import { RedisBus } from "@switchyard/redis";
import { createAdapter } from "@switchyard/server";
import { freePort, type RedisServer, startRedis } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import { installMetrics, metricsFor, metricsSchema } from "../../src/metrics/index.js";
import { parseExposition, startContext, type TestContext, until } from "./serve-context.js";

async function scrape(
  url: string,
): Promise<{ status: number; type: string; series: Map<string, number> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    series: parseExposition(text),
  };
}

function connected(url: string, opts: Parameters<typeof connect>[1] = {}): Promise<ClientSocket> {
  const socket = connect(url, { reconnection: false, forceNew: true, ...opts });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

const clients: ClientSocket[] = [];
const contexts: TestContext[] = [];
const closers: (() => Promise<void>)[] = [];
/** Run after the servers are closed (the buses they use). */
const lastClosers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const fn of closers.splice(0).reverse()) await fn();
  for (const c of contexts.splice(0)) await c.close();
  for (const fn of lastClosers.splice(0)) await fn();
});

describe("metricsSchema", () => {
  test("defaults, unknown keys and bad values refused with the key named", () => {
    const d = metricsSchema.parse({});
    assert.equal(d.enabled, true);
    assert.equal(d.path, "/metrics");
    assert.equal(d.prefix, "switchyard_");
    assert.equal(d.port, undefined);
    const unknown = metricsSchema.safeParse({ pth: "/m" });
    assert.equal(unknown.success, false);
    assert.match(JSON.stringify(unknown.error?.issues), /pth/);
    const port = metricsSchema.safeParse({ port: 70000 });
    assert.equal(port.success, false);
    assert.deepEqual(port.error?.issues[0]?.path, ["port"]);
    assert.equal(metricsSchema.safeParse({ path: "metrics" }).success, false);
    assert.equal(metricsSchema.safeParse({ prefix: "9bad" }).success, false);
    assert.equal(metricsSchema.safeParse({ webhookBuckets: [1, 0.5] }).success, false);
  });
});

describe("/metrics on the shared port (memory bus)", () => {
  test("connections, sockets, rooms, packets and bytes in/out, broadcasts, acks, refusals and closes move with real clients", async () => {
    const t = await startContext({ namespaces: ["/", "/before"] });
    contexts.push(t);
    const { ctx } = t;
    ctx.io.on("connection", (socket) => {
      void socket.join("room-a");
      socket.on("ping-me", (_x: unknown, ack: (v: string) => void) => ack("pong"));
    });
    const installed = await installMetrics(ctx, metricsSchema.parse({}));
    closers.push(() => installed.close());
    // Declared namespaces (config) existed before install; later ones are seen on creation.
    ctx.io.of("/admin").use((_s, next) => next(new Error("no admin")));

    const before = await scrape(`${t.url}/metrics`);
    assert.equal(before.status, 200);
    assert.match(before.type, /text\/plain/);
    assert.equal(before.series.get('switchyard_connections{transport="websocket"}'), 0);
    assert.equal(before.series.get("switchyard_handshakes_total"), 0);
    // Default metrics: event-loop lag and GC are there.
    assert.ok(before.series.has("nodejs_eventloop_lag_seconds"));
    assert.ok([...before.series.keys()].some((k) => k.startsWith("nodejs_heap_size_used_bytes")));

    for (let i = 0; i < 3; i++) clients.push(await connected(t.url, { transports: ["websocket"] }));
    clients.push(await connected(t.url, { transports: ["polling"] }));
    const payload = "x".repeat(1000);
    for (const c of clients)
      assert.equal(await c.timeout(5000).emitWithAck("ping-me", payload), "pong");
    // Broadcasts with ack from the server: one answered by every client, one by none.
    for (const c of clients) {
      c.on("srv-q", (ack: (v: string) => void) => ack("ok"));
      c.on("srv-silent", () => {});
    }
    assert.deepEqual(await ctx.io.timeout(5000).emitWithAck("srv-q"), ["ok", "ok", "ok", "ok"]);
    await assert.rejects(ctx.io.timeout(50).emitWithAck("srv-silent"));
    await until(() => ctx.io.stats.ackTimeouts === 4, 5000, "the 4 silent clients counted");
    await assert.rejects(connected(`${t.url}/admin`, { transports: ["websocket"] }), /no admin/);
    const bad = await fetch(`${t.url}/socket.io/?EIO=4&transport=carrier-pigeon`);
    assert.equal(bad.status, 400);

    const mid = (await scrape(`${t.url}/metrics`)).series;
    assert.equal(
      mid.get('switchyard_connections{transport="websocket"}'),
      3,
      "the refused /admin client closed its session",
    );
    assert.equal(mid.get('switchyard_connections{transport="polling"}'), 1);
    assert.equal(mid.get('switchyard_sockets{namespace="/"}'), 4);
    assert.equal(mid.get('switchyard_sockets{namespace="/admin"}'), 0);
    assert.equal(mid.get('switchyard_sockets{namespace="/before"}'), 0);
    assert.equal(
      mid.get('switchyard_rooms{namespace="/"}'),
      1,
      "room-a (own-id rooms not counted)",
    );
    assert.ok((mid.get("switchyard_handshakes_total") ?? 0) >= 5);
    assert.ok(
      (mid.get("switchyard_packets_received_total") ?? 0) >= 4 * 2,
      "CONNECT + EVENT per client",
    );
    assert.ok((mid.get("switchyard_bytes_received_total") ?? 0) >= 4 * 1000);
    assert.equal(mid.get("switchyard_broadcasts_total"), 2);
    assert.equal(mid.get("switchyard_deliveries_total"), 2 * 4);
    assert.equal(mid.get("switchyard_acks_received_total"), 4);
    assert.equal(mid.get("switchyard_ack_timeouts_total"), 4);
    assert.ok(
      (mid.get("switchyard_packets_sent_total") ?? 0) >= 4 * 4,
      "CONNECT, ack, two broadcasts per client",
    );
    assert.ok((mid.get("switchyard_bytes_sent_total") ?? 0) > 0);
    assert.equal(before.series.get("switchyard_broadcasts_total"), 0);
    assert.equal(before.series.get("switchyard_ack_timeouts_total"), 0);
    assert.equal(mid.get('switchyard_refusals_total{layer="socketio",reason="middleware"}'), 1);
    assert.equal(
      mid.get('switchyard_refusals_total{layer="engine",reason="UNKNOWN_TRANSPORT"}'),
      1,
    );
    assert.equal(mid.get('switchyard_errors_total{code="ENGINE_UNKNOWN_TRANSPORT"}'), 1);
    assert.equal(mid.get("switchyard_outbox_queued_deliveries"), 0);
    assert.equal(mid.has("switchyard_bus_up"), false, "no bus series without a bus");

    for (const c of clients.splice(0)) c.close();
    await until(() => ctx.io.engine.clientsCount <= 1, 5000, "clients gone");
    const end = (await scrape(`${t.url}/metrics`)).series;
    assert.equal(end.get('switchyard_sockets{namespace="/"}'), 0);
    assert.ok((end.get('switchyard_session_closes_total{reason="transport close"}') ?? 0) >= 3);
  });

  test("other areas' observations: API requests, webhook latency, auth refusals, policy disconnects", async () => {
    const t = await startContext();
    contexts.push(t);
    const installed = await installMetrics(
      ctx(t),
      metricsSchema.parse({ defaultMetrics: false, prefix: "sy_" }),
    );
    closers.push(() => installed.close());
    const m = metricsFor(t.ctx.io);
    assert.ok(m !== undefined && m === installed.metrics);
    m.observeApiRequest("/api/v1/publish", "POST", 202, 0.003);
    m.observeApiRequest("/api/v1/publish", "POST", 401, 0.001);
    m.observeWebhook("connect", "ok", 0.02);
    m.observeWebhook("connect", "timeout", 3);
    m.countAuthRefusal("token_expired");
    m.countPolicyDisconnect("rate limit exceeded");
    const s = (await scrape(`${t.url}/metrics`)).series;
    assert.equal(
      s.get('sy_api_requests_total{route="/api/v1/publish",method="POST",status="202"}'),
      1,
    );
    assert.equal(
      s.get('sy_api_requests_total{route="/api/v1/publish",method="POST",status="401"}'),
      1,
    );
    assert.equal(s.get('sy_webhook_duration_seconds_count{hook="connect",outcome="timeout"}'), 1);
    assert.equal(
      s.get('sy_webhook_duration_seconds_bucket{le="0.025",hook="connect",outcome="ok"}'),
      1,
    );
    assert.equal(s.get('sy_refusals_total{layer="auth",reason="token_expired"}'), 1);
    assert.equal(
      s.has('sy_errors_total{code="token_expired"}'),
      false,
      "counted once, as a refusal",
    );
    assert.equal(m.stats.areaCodes.get("token_expired"), 1, "listed by the dashboard");
    assert.equal(m.stats.recentErrors.at(-1)?.code, "rate limit exceeded");
    assert.equal(s.get('sy_policy_disconnects_total{reason="rate limit exceeded"}'), 1);
    assert.equal(s.has("nodejs_eventloop_lag_seconds"), false, "defaultMetrics: false");
    // A POST to /metrics is refused with a JSON error.
    const post = await fetch(`${t.url}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(
      ((await post.json()) as { error: { code: string } }).error.code,
      "method_not_allowed",
    );
    await installed.close();
    assert.equal(metricsFor(t.ctx.io), undefined, "close unregisters");
  });

  test("a separate metrics port serves only the metrics; a taken port is a clear error", async () => {
    const t = await startContext();
    contexts.push(t);
    const port = await freePort();
    const installed = await installMetrics(
      ctx(t),
      metricsSchema.parse({ port, defaultMetrics: false }),
    );
    closers.push(() => installed.close());
    assert.equal(installed.address?.port, port);
    const s = await scrape(`http://127.0.0.1:${port}/metrics`);
    assert.equal(s.status, 200);
    assert.ok(s.series.has("switchyard_handshakes_total"));
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    // Not on the shared port.
    assert.equal((await fetch(`${t.url}/metrics`)).status, 404);
    const blocker = http.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    closers.push(() => new Promise((r) => blocker.close(() => r())));
    const taken = (blocker.address() as { port: number }).port;
    const t2 = await startContext();
    contexts.push(t2);
    await assert.rejects(
      installMetrics(ctx(t2), metricsSchema.parse({ port: taken, defaultMetrics: false })),
      /metrics\.port: cannot listen on 127\.0\.0\.1:\d+/,
    );
    assert.equal(metricsFor(t2.ctx.io), undefined);
  });
});

function ctx(t: TestContext) {
  return t.ctx;
}

describe("/metrics with a real Redis bus", () => {
  let redis: RedisServer | undefined;
  after(async () => {
    await redis?.stop();
  });

  test("bus up/down, publish/receive and cluster nodes follow two nodes and a Redis outage", async () => {
    redis = await startRedis();
    const busA = new RedisBus({ url: redis.url });
    const busB = new RedisBus({ url: redis.url });
    lastClosers.push(async () => {
      await busA.close();
      await busB.close();
    });
    await busA.ready();
    await busB.ready();
    const a = await startContext({
      bus: busA,
      server: { adapter: createAdapter(busA, { heartbeatInterval: 200 }) },
    });
    const b = await startContext({
      bus: busB,
      server: { adapter: createAdapter(busB, { heartbeatInterval: 200 }) },
    });
    contexts.push(a, b);
    const installed = await installMetrics(a.ctx, metricsSchema.parse({ defaultMetrics: false }));
    closers.push(() => installed.close());

    const url = `${a.url}/metrics`;
    await until(
      async () => (await scrape(url)).series.get('switchyard_cluster_nodes{namespace="/"}') === 2,
      10_000,
      "node B seen by A",
    );
    const s0 = (await scrape(url)).series;
    assert.equal(s0.get("switchyard_bus_up"), 1);

    // A client on B receives a broadcast made on A: A publishes, the bus counts it.
    const client = await connected(b.url, { transports: ["websocket"] });
    clients.push(client);
    const got = new Promise<string>((resolve) => client.once("news", resolve));
    const published0 = s0.get('switchyard_bus_messages_total{direction="published"}') ?? 0;
    a.ctx.io.emit("news", "hello");
    assert.equal(await got, "hello");
    await until(
      async () =>
        ((await scrape(url)).series.get('switchyard_bus_messages_total{direction="published"}') ??
          0) > published0,
      5000,
      "publish counted",
    );

    const down = new Promise<void>((resolve) => busA.once("down", () => resolve()));
    await redis.kill();
    await down;
    const s1 = (await scrape(url)).series;
    assert.equal(s1.get("switchyard_bus_up"), 0);
    assert.equal(s1.get('switchyard_bus_transitions_total{state="down"}'), 1);
    assert.ok((s1.get("switchyard_bus_outages_total") ?? 0) >= 1);
    assert.equal(s1.get('switchyard_errors_total{code="BUS_DOWN"}'), 1);

    const up = new Promise<void>((resolve) => busA.once("up", () => resolve()));
    await redis.restart();
    await up;
    const s2 = (await scrape(url)).series;
    assert.equal(s2.get("switchyard_bus_up"), 1);
    assert.equal(s2.get('switchyard_bus_transitions_total{state="up"}'), 1);
  });
});
