/**
 * Client events over the broker: a Python backend (redis-py) consumes them from a real
 * Redis and replies on `replyTo`; its reply becomes the client's ack; no reply is a timeout
 * error; malformed replies are counted and dropped; events without an ack are delivered
 * too.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RedisBus } from "@switchyard/redis";
import { type RedisServer, startPython, startRedis } from "@switchyard/test-harness";
import type { Socket as ClientSocket } from "socket.io-client";
import { installClientEvents } from "../../src/auth/client-events.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { clientEventsSchema } from "../../src/auth/schema.js";
import { client, connected, startContext, type TestContext } from "./context.js";

const SCRIPT = fileURLToPath(new URL("./py/bus_backend.py", import.meta.url));

let redis: RedisServer;
let t: TestContext;
let bus: RedisBus;
let opened: ClientSocket[];
let handles: { close(): void }[];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});
beforeEach(async () => {
  t = await startContext();
  bus = new RedisBus({ url: redis.url });
  t.ctx.bus = bus;
  opened = [];
  handles = [];
});
afterEach(async () => {
  for (const s of opened) s.close();
  for (const h of handles) h.close();
  await t.close();
  await bus.close();
});

test("events published on the bus, answered by a Python backend on replyTo", async () => {
  const backend = await startPython(SCRIPT, [redis.url, "sy:events"], {
    requireModules: ["redis"],
  });
  try {
    await backend.waitForOutput("ready", { timeoutMs: 15_000 });
    const h = await installClientEvents(
      t.ctx,
      clientEventsSchema.parse({ bus: { channel: "sy:events", replyTimeoutMs: 1000 } }),
    );
    handles.push(h);
    t.ctx.io.on("connection", (s) => {
      s.data = { sub: "ada" };
    });
    const s = client(t.url, opened);
    await connected(s);
    assert.deepEqual(await s.timeout(5000).emitWithAck("hello", 1, "two"), {
      echo: [1, "two"],
      sub: "ada",
    });
    const silent = (await s.timeout(5000).emitWithAck("ignore")) as { error: { code: string } };
    assert.equal(silent.error.code, ClientErrorCode.BackendTimeout);
    const garbage = (await s.timeout(5000).emitWithAck("garbage")) as { error: { code: string } };
    assert.equal(garbage.error.code, ClientErrorCode.BackendTimeout);
    assert.equal(h.stats.badReplies, 2);
    s.emit("no-ack", { x: 1 });
    await backend.waitForOutput('"event": "no-ack"', { timeoutMs: 5000 });
    assert.match(backend.stdout(), /"event": "no-ack", "args": \[\{"x": 1\}\], "replyTo": null/);
  } finally {
    await backend.stop();
  }
});

test("clientEvents.bus without a cluster bus fails at install with one line", async () => {
  t.ctx.bus = undefined;
  await assert.rejects(
    installClientEvents(t.ctx, clientEventsSchema.parse({ bus: {} })),
    /^Error: clientEvents\.bus: needs a cluster bus/,
  );
  assert.throws(
    () => clientEventsSchema.parse({ bus: {}, webhook: { url: "http://127.0.0.1:1/x" } }),
    /either webhook or bus/,
  );
});
