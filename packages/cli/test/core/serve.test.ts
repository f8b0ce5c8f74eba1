// startServer in-process: health and readiness, routes, namespaces, CORS, drain, and a
// Redis bus (real redis-server) between two servers.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { after, afterEach, describe, test } from "node:test";
import {
  type RedisServer,
  redisCommand,
  startRedis,
  waitFor,
  within,
} from "@switchyard/test-harness";
import { pino } from "pino";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { ConfigError, type RunningServer, startServer, validateConfig } from "../../src/index.ts";

const silent = pino({ level: "silent" });
const servers: RunningServer[] = [];
const clients: ClientSocket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.allSettled(servers.splice(0).map((s) => s.drain()));
});

async function start(config: Record<string, unknown> = {}, log = silent): Promise<RunningServer> {
  const c = validateConfig({
    listen: { host: "127.0.0.1", port: 0 },
    shutdown: { timeout: 3000 },
    ...config,
  });
  const s = await startServer(c, { log });
  servers.push(s);
  return s;
}

function url(s: RunningServer, path = ""): string {
  return `http://127.0.0.1:${s.address.port}${path}`;
}

function client(s: RunningServer, nsp = "/", opts: Record<string, unknown> = {}): ClientSocket {
  const c = ioc(url(s, nsp), { reconnection: false, transports: ["websocket"], ...opts });
  clients.push(c);
  return c;
}

function connected(c: ClientSocket): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("connect_error", (err) => reject(err));
    }),
    5000,
    "connect",
  );
}

function refused(c: ClientSocket): Promise<Error> {
  return within(
    new Promise<Error>((resolve, reject) => {
      c.once("connect", () => reject(new Error("connected, expected a refusal")));
      c.once("connect_error", (err) => resolve(err));
    }),
    5000,
    "connect_error",
  );
}

async function getJson(u: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const res = await fetch(u, init);
  return { status: res.status, body: await res.json() };
}

describe("serve: health, readiness and routes", () => {
  test("/healthz and /readyz; unknown paths get a JSON 404", async () => {
    const s = await start();
    assert.deepEqual(await getJson(url(s, "/healthz")), { status: 200, body: { status: "ok" } });
    assert.deepEqual(await getJson(url(s, "/readyz")), { status: 200, body: { status: "ready" } });
    assert.equal(s.ready, true);
    const nf = await getJson(url(s, "/nope"));
    assert.equal(nf.status, 404);
    assert.equal((nf.body as { error: { code: string } }).error.code, "not_found");
  });

  test("routes: longest prefix wins, prefix boundaries, method match, handler errors are 500", async () => {
    const s = await start();
    const lines: string[] = [];
    const { context } = s;
    context.route("GET", "/x", (_q, r) => void r.end("x"));
    context.route("GET", "/x/v1", (_q, r) => void r.end("v1"));
    context.route("POST", "/x/v1/publish", (_q, r) => void r.end("publish"));
    context.route("GET", "/boom", () => {
      lines.push("boom");
      throw new Error("handler bug");
    });
    const text = async (p: string, init?: RequestInit) => {
      const r = await fetch(url(s, p), init);
      return `${r.status} ${await r.text()}`;
    };
    assert.equal(await text("/x/v1/rooms?x=1"), "200 v1");
    assert.equal(await text("/x/v10"), "200 x", "/x/v1 does not match /x/v10");
    assert.equal(await text("/x/v1/publish", { method: "POST" }), "200 publish");
    assert.equal(await text("/x/v1/publish"), "200 v1", "GET falls to the GET route");
    assert.match(await text("/boom"), /^500 .*"internal"/);
    assert.throws(() => context.route("GET", "/x", () => {}), /already registered/);
    assert.deepEqual(lines, ["boom"]);
    // The server still serves after a handler failure.
    assert.equal((await getJson(url(s, "/healthz"))).status, 200);
  });
});

describe("serve: logs under attack", () => {
  test("refused Engine.IO requests: one line per error code per interval, all counted", async () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const l of chunk.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l));
          cb();
        },
      }),
    );
    const s = await start({}, log);
    for (let i = 0; i < 40; i++) {
      const r = await fetch(url(s, `/socket.io/?EIO=4&transport=polling&sid=bogus${i}`));
      assert.equal(r.status, 400);
      await r.text();
    }
    for (let i = 0; i < 10; i++) {
      const r = await fetch(url(s, "/socket.io/?EIO=4&transport=carrier-pigeon"));
      assert.equal(r.status, 400);
      await r.text();
    }
    const refused = lines.filter((l) => String(l.msg).startsWith("connection refused"));
    assert.equal(refused.length, 2, JSON.stringify(refused));
    assert.notEqual(refused[0]?.code, refused[1]?.code, "one line per code");
    const counted = Object.values(s.io.engine.stats.connectionErrors).reduce((a, b) => a + b, 0);
    assert.equal(counted, 50, "every refusal is counted");
  });
});

describe("serve: namespaces and engine options", () => {
  test("declared namespaces and a pattern; others refused", async () => {
    const s = await start({ namespaces: { names: ["/", "/chat"], pattern: "^/tenant-\\d+$" } });
    await connected(client(s, "/chat"));
    await connected(client(s, "/tenant-42"));
    const err = await refused(client(s, "/other"));
    assert.equal(err.message, "Invalid namespace");
    const err2 = await refused(client(s, "/tenant-x"));
    assert.equal(err2.message, "Invalid namespace");
  });

  test("listen.path and engine options reach the handshake", async () => {
    const s = await start({
      listen: { host: "127.0.0.1", port: 0, path: "/rt" },
      engine: { pingInterval: 1234, pingTimeout: 2345, maxHttpBufferSize: 5000 },
    });
    const res = await fetch(url(s, "/rt/?EIO=4&transport=polling"));
    const body = await res.text();
    const hs = JSON.parse(body.slice(1)) as Record<string, unknown>;
    assert.equal(hs.pingInterval, 1234);
    assert.equal(hs.pingTimeout, 2345);
    assert.equal(hs.maxPayload, 5000);
    assert.equal((await fetch(url(s, "/socket.io/?EIO=4&transport=polling"))).status, 404);
  });

  test("CORS: an allowed origin gets the header, another is refused", async () => {
    const s = await start({ cors: { origin: ["https://app.example"] } });
    const ok = await fetch(url(s, "/socket.io/?EIO=4&transport=polling"), {
      headers: { origin: "https://app.example" },
    });
    assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
    await ok.text();
    const bad = await fetch(url(s, "/socket.io/?EIO=4&transport=polling"), {
      headers: { origin: "https://evil.example" },
    });
    assert.equal(bad.status, 403);
    await bad.text();
  });

  test("a port in use is a one-line ConfigError", async () => {
    const s = await start();
    const c = validateConfig({ listen: { host: "127.0.0.1", port: s.address.port } });
    await assert.rejects(startServer(c, { log: silent }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
      return true;
    });
  });
});

describe("serve: drain", () => {
  test("clients see a transport close (and would reconnect); not ready while draining", async () => {
    const s = await start();
    const c = client(s);
    await connected(c);
    let hookRan = false;
    s.context.onDrain(() => {
      hookRan = true;
      assert.equal(s.ready, false, "not ready once draining");
    });
    const reason = new Promise<string>((resolve) => c.once("disconnect", (r) => resolve(r)));
    assert.equal(await within(s.drain(), 5000, "drain"), true);
    assert.equal(await within(reason, 5000, "disconnect"), "transport close");
    assert.equal(hookRan, true);
    assert.equal(s.http.listening, false);
  });

  test("a drain that takes longer than shutdown.timeout resolves false at the bound", async () => {
    const s = await start({ shutdown: { timeout: 300 } });
    s.context.onDrain(() => new Promise(() => {}));
    const t0 = Date.now();
    assert.equal(await within(s.drain(), 3000, "bounded drain"), false);
    assert.ok(Date.now() - t0 >= 290, "waited for the bound");
  });
});

describe("serve: Redis bus", () => {
  let redis: RedisServer | undefined;
  after(async () => {
    await redis?.stop();
  });

  test("two servers on one Redis: a broadcast reaches the other's clients; /readyz follows the bus", async () => {
    redis ??= await startRedis();
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          for (const l of chunk.toString().split("\n")) if (l !== "") lines.push(JSON.parse(l));
          cb();
        },
      }),
    );
    const a = await start({ bus: redis.url }, log);
    const b = await start({ bus: redis.url });
    await waitFor(() => a.ready && b.ready, 5000, "both buses up");
    const c = client(a);
    await connected(c);
    const got = new Promise<unknown>((resolve) => c.once("news", (x) => resolve(x)));
    // Cluster membership is by heartbeat: retry until b's broadcast is seen by a's client.
    let received: unknown;
    void got.then((x) => {
      received = x;
    });
    let last = 0;
    await waitFor(
      () => {
        if (received === undefined && Date.now() - last >= 100) {
          last = Date.now();
          b.io.emit("news", { n: 1 });
        }
        return received !== undefined;
      },
      5000,
      "broadcast across the bus",
    );
    assert.deepEqual(received, { n: 1 });
    const listening = lines.find((l) => typeof l.msg === "string" && l.msg.includes("listening"));
    assert.equal(listening?.bus, redis.url, "the bus URL is logged (no password in it here)");

    await redis.kill();
    await waitFor(() => !a.ready, 10_000, "a not ready without its bus");
    const r = await getJson(url(a, "/readyz"));
    assert.equal(r.status, 503);
    assert.deepEqual(r.body, { status: "not ready", reasons: ["bus disconnected"] });
    await redis.restart();
    await waitFor(() => a.ready, 15_000, "a ready again");
    assert.equal((await getJson(url(a, "/readyz"))).status, 200);
  });

  test("flaskBridge: a python-socketio publish on Redis reaches the clients", async () => {
    redis ??= await startRedis();
    const r = redis;
    const s = await start({ flaskBridge: { url: r.url } });
    const c = client(s);
    await connected(c);
    let received: unknown;
    c.on("from-flask", (x: unknown) => {
      received = x;
    });
    const body = JSON.stringify({
      method: "emit",
      event: "from-flask",
      data: { ok: 1 },
      namespace: "/",
      room: null,
      skip_sid: null,
      callback: null,
      host_id: "py",
    });
    let last = 0;
    await waitFor(
      async () => {
        if (received === undefined && Date.now() - last >= 100) {
          last = Date.now();
          await redisCommand(r.port, ["PUBLISH", "flask-socketio", body]);
        }
        return received !== undefined;
      },
      10_000,
      "the bridged emit",
    );
    assert.deepEqual(received, { ok: 1 });
  });

  test("flaskBridge: a bad bridge option is a one-line error naming the key", async () => {
    const c = validateConfig({
      listen: { host: "127.0.0.1", port: 0 },
      flaskBridge: { url: "redis://127.0.0.1:1", chanels: ["x"] },
    });
    await assert.rejects(startServer(c, { log: silent }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /"flaskBridge\.chanels"/);
      assert.match(err.message, /did you mean "flaskBridge\.channels"/);
      return true;
    });
  });

  test("forwarding over Redis: a polling request for A's session sent to B is served", async () => {
    redis ??= await startRedis();
    const fw = { forwarding: { secret: "a-cluster-secret-of-32-characters" }, bus: redis.url };
    const a = await start(fw);
    const b = await start(fw);
    await waitFor(() => a.ready && b.ready, 5000, "both buses up");
    const hs = await (await fetch(url(a, "/socket.io/?EIO=4&transport=polling"))).text();
    const sid = (JSON.parse(hs.slice(1)) as { sid: string }).sid;
    // B learns A's internal address from A's announcements (every 2 s by default).
    let status = 0;
    let tries = 0;
    await waitFor(
      async () => {
        tries++;
        const r = await fetch(url(b, `/socket.io/?EIO=4&transport=polling&sid=${sid}`), {
          method: "POST",
          body: "40",
        });
        status = r.status;
        await r.text();
        if (status !== 200) await new Promise((res) => setTimeout(res, 200));
        return status === 200;
      },
      10_000,
      () => `B forwarding to A (last status ${status} after ${tries} tries)`,
    );
    // A's session got the namespace connect through B: A now has the socket.
    await waitFor(() => a.io.sockets.sockets.size === 1, 5000, "the socket on A");
    assert.equal(b.io.sockets.sockets.size, 0);
  });
});
