/** The Flask bridge over real Redis: see bridge-helpers.ts for the scenarios. */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { RedisBus } from "@switchyard/redis";
import { Server } from "@switchyard/server";
import {
  type RedisServer,
  requirePythonModules,
  startRedis,
  waitFor,
} from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { createFlaskBridge } from "../src/index.js";
import { runEmitter, scenarios, survivesRestart } from "./bridge-helpers.js";

describe("Flask bridge over real Redis", { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let raw: Redis;
  before(async () => {
    requirePythonModules(["socketio", "flask_socketio", "redis"]);
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    await cluster.close();
    raw?.disconnect();
    await redis?.stop();
  });
  const cluster = scenarios(
    () => ({
      url: redis.url,
      makeBus: () => new RedisBus({ url: redis.url }),
      publishRaw: async (channel, body) => {
        await raw.publish(channel, body);
      },
    }),
    "flask-socketio",
  );

  test("pickle is dropped by default: counted, reported once with the fix", async (t) => {
    const warn = t.mock.method(console, "warn", () => {});
    const http = createServer();
    const io = new Server(http);
    const bridge = createFlaskBridge(io, { url: redis.url });
    t.after(async () => {
      await bridge.close();
      await io.close();
    });
    assert.deepEqual(bridge.options.channels, ["flask-socketio", "socketio"]);
    await bridge.ready();
    await runEmitter("flask", redis.url, "flask-socketio", [{ op: "emit", event: "x", data: 1 }]);
    await runEmitter("manager", redis.url, "socketio", [
      { op: "emit", event: "x", data: 1 },
      { op: "emit", event: "x", data: 2 },
    ]);
    await waitFor(() => bridge.stats.unsupported === 3, 10_000, "three pickles dropped");
    assert.equal(bridge.stats.applied, 0);
    const warnings = warn.mock.calls
      .map((c) => String(c.arguments[0]))
      .filter((m) => m.includes("pickle"));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /python-socketio >= 5\.14/);
    assert.match(warnings[0] ?? "", /legacyPickle: "data-only"/);
  });
  test("reconnects after a Redis restart and delivers again", (t) =>
    survivesRestart(
      t,
      redis.url,
      () => redis.restart(),
      async (channel, body) => {
        await raw.publish(channel, body);
      },
    ));
  test("a bridge created while Redis is down subscribes once it is up", async (t) => {
    t.mock.method(console, "warn", () => {});
    await redis.kill();
    const io = new Server();
    const bridge = createFlaskBridge(io, {
      url: redis.url,
      channels: ["late"],
      reconnectMaxDelay: 300,
    });
    t.after(async () => {
      await bridge.close();
      await io.close();
    });
    const downs: unknown[] = [];
    bridge.on("down", (err) => downs.push(err));
    await waitFor(() => downs.length > 0, 10_000, "down reported");
    assert.equal(bridge.connected, false);
    await redis.restart();
    await bridge.ready();
    let applied = 0;
    bridge.on("message", (_msg, outcome) => {
      if (outcome === "applied") applied++;
    });
    await raw.publish(
      "late",
      '{"method": "emit", "event": "x", "data": [1], "binary": false, "namespace": "/"}',
    );
    await waitFor(() => applied === 1, 5000, "the message applied");
  });
});
