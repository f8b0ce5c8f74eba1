import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PublishDroppedError } from "@switchyard/server";
import {
  Inbox,
  type RedisServer,
  redisCommand,
  runFixture,
  sleep,
  startRedis,
  trapUnhandled,
  waitFor,
  within,
} from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { RedisBus, type RedisBusOptions } from "../src/index.js";

const FIXTURE = new URL("./fixtures/close-exits.ts", import.meta.url).pathname;

const unhandled = trapUnhandled();
after(() => {
  unhandled.dispose();
  unhandled.assertNone();
});

/** A bus that closes after the test, even when an assertion fails. */
async function openBus(
  t: { after(fn: () => Promise<void>): void },
  url: string,
  extra: { initialReconnectDelayMs?: number; maxReconnectDelayMs?: number } = {},
): Promise<RedisBus> {
  const bus = new RedisBus({ url, ...extra });
  t.after(() => bus.close());
  await bus.ready();
  return bus;
}

describe("RedisBus against a real redis-server", () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  test("publishes and receives bytes unchanged (binary-safe), own messages included", async (t) => {
    const bus = await openBus(t, redis.url);
    const inbox = new Inbox();
    await bus.subscribe("socket.io#/#", inbox.handler);
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(1024 * 1024, 0xa5);
    const payloads = [every, Buffer.alloc(0), Buffer.from("\r\n$-1\r\n*3\r\n"), big];
    for (const p of payloads) bus.publish("socket.io#/#", p);
    await inbox.waitForCount(payloads.length);
    assert.deepEqual(
      inbox.messages.map((m) => m.channel),
      payloads.map(() => "socket.io#/#"),
    );
    for (const [i, p] of payloads.entries()) assert.ok(inbox.messages[i]!.payload.equals(p));
    await waitFor(() => bus.stats.published === payloads.length, 5000, "published counted");
    assert.equal(bus.stats.received, payloads.length);
    assert.equal(bus.stats.dropped, 0);
    assert.equal(bus.stats.outages, 0);
  });

  test("receives what a plain redis client publishes (external publishers)", async (t) => {
    const bus = await openBus(t, redis.url);
    const inbox = new Inbox();
    await bus.subscribe("socket.io#/chat#room é#", inbox.handler);
    await redisCommand(redis.port, ["PUBLISH", "socket.io#/chat#room é#", Buffer.from([0, 1])]);
    await inbox.waitForCount(1);
    assert.equal(inbox.messages[0]!.channel, "socket.io#/chat#room é#");
    assert.deepEqual([...inbox.messages[0]!.payload], [0, 1]);
  });

  test("unsubscribe stops delivery; other channels are unaffected", async (t) => {
    const bus = await openBus(t, redis.url);
    const a = new Inbox();
    const b = new Inbox();
    await bus.subscribe("a", a.handler);
    await bus.subscribe("b", b.handler);
    bus.publish("a", Buffer.from("1"));
    await a.waitForCount(1);
    await bus.unsubscribe("a");
    await bus.unsubscribe("a"); // idempotent
    bus.publish("a", Buffer.from("2"));
    bus.publish("b", Buffer.from("3"));
    await b.waitForCount(1);
    await sleep(50);
    assert.deepEqual(a.texts(), ["1"]);
    assert.deepEqual(b.texts(), ["3"]);
    const subs = await redisCommand(redis.port, ["PUBSUB", "NUMSUB", "a", "b"]);
    assert.deepEqual(subs, ["a", 0, "b", 1]);
  });

  test("many channels: each handler gets exactly its channel's messages", async (t) => {
    const bus = await openBus(t, redis.url);
    const inboxes = new Map<string, Inbox>();
    const names = Array.from({ length: 200 }, (_, i) => `socket.io#/n${i % 7}#room-${i}#`);
    await Promise.all(
      names.map((name) => {
        const inbox = new Inbox();
        inboxes.set(name, inbox);
        return bus.subscribe(name, inbox.handler);
      }),
    );
    for (const name of names)
      for (let k = 0; k < 3; k++) bus.publish(name, Buffer.from(`${name}:${k}`));
    await waitFor(() => bus.stats.received === names.length * 3, 5000, "all delivered");
    for (const name of names) {
      assert.deepEqual(
        inboxes.get(name)!.texts(),
        [0, 1, 2].map((k) => `${name}:${k}`),
      );
    }
  });

  test("two buses see each other; a bus only receives channels it subscribed", async (t) => {
    const one = await openBus(t, redis.url);
    const two = await openBus(t, redis.url);
    const oneInbox = new Inbox();
    const twoInbox = new Inbox();
    await one.subscribe("x", oneInbox.handler);
    await two.subscribe("x", twoInbox.handler);
    await two.subscribe("only-two", twoInbox.handler);
    one.publish("x", Buffer.from("from-one"));
    two.publish("only-two", Buffer.from("private"));
    two.publish("nobody", Buffer.from("void"));
    await oneInbox.waitForCount(1);
    await twoInbox.waitForCount(2);
    await sleep(50);
    assert.deepEqual(oneInbox.texts(), ["from-one"]);
    assert.deepEqual(twoInbox.texts("x"), ["from-one"]);
    assert.deepEqual(twoInbox.texts("only-two"), ["private"]);
    assert.equal(one.stats.ignored, 0);
  });

  test("a throwing handler is reported as `error` and the bus keeps delivering", async (t) => {
    const bus = await openBus(t, redis.url);
    const errors: Error[] = [];
    bus.on("error", (err) => errors.push(err));
    const inbox = new Inbox();
    let calls = 0;
    await bus.subscribe("boom", () => {
      calls++;
      throw new Error("handler bug");
    });
    await bus.subscribe("fine", inbox.handler);
    bus.publish("boom", Buffer.from("x"));
    bus.publish("fine", Buffer.from("y"));
    await inbox.waitForCount(1);
    assert.equal(calls, 1);
    assert.deepEqual(
      errors.map((e) => e.message),
      ["handler bug"],
    );
  });

  test("re-subscribing replaces the handler; subscribe after close rejects", async (t) => {
    const bus = await openBus(t, redis.url);
    const first = new Inbox();
    const second = new Inbox();
    await bus.subscribe("r", first.handler);
    await bus.subscribe("r", second.handler);
    bus.publish("r", Buffer.from("m"));
    await second.waitForCount(1);
    assert.equal(first.messages.length, 0);
    await bus.close();
    await bus.close(); // idempotent
    assert.equal(bus.healthy, false);
    await assert.rejects(bus.subscribe("r", first.handler), { code: "SY_ERR_CLOSED" });
    const before = bus.stats.dropped;
    bus.publish("r", Buffer.from("after close"));
    assert.equal(bus.stats.dropped, before + 1);
  });

  test("given clients: the bus uses them and close() leaves them open", async (t) => {
    const pub = new Redis(redis.url);
    const sub = new Redis(redis.url);
    t.after(() => {
      pub.disconnect();
      sub.disconnect();
    });
    const bus = new RedisBus({ pub, sub });
    await bus.ready();
    const inbox = new Inbox();
    await bus.subscribe("given", inbox.handler);
    bus.publish("given", Buffer.from("ok"));
    await inbox.waitForCount(1);
    await bus.close();
    assert.equal(pub.status, "ready");
    assert.equal(await pub.ping(), "PONG");
    assert.deepEqual(await redisCommand(redis.port, ["PUBSUB", "NUMSUB", "given"]), ["given", 0]);
  });

  test("validates options and names the option", () => {
    assert.throws(() => new RedisBus({ url: "http://x" }), /option "url"/);
    assert.throws(
      () => new RedisBus({ url: "redis://x", maxReconnectDelayMs: -1 }),
      /option "maxReconnectDelayMs"/,
    );
    assert.throws(
      () => new RedisBus({ pub: {} as Redis, sub: {} as Redis }),
      /option "pub" must be an ioredis Redis client/,
    );
    const same = new Redis({ lazyConnect: true });
    assert.throws(() => new RedisBus({ pub: same, sub: same }), /option "sub"/);
    same.disconnect();
  });

  test("refuses unknown option keys with a did-you-mean, nested ones too", () => {
    const refused = (opts: object, code: string, message: string): void => {
      assert.throws(
        () => new RedisBus(opts as RedisBusOptions),
        (err: unknown) =>
          err instanceof Error &&
          (err as { code?: string }).code === code &&
          err.message === message,
      );
    };
    refused(
      { url: "redis://127.0.0.1:1", maxReconectDelayMs: 10 },
      "SY_ERR_UNKNOWN_OPTION",
      'unknown option "maxReconectDelayMs" — did you mean "maxReconnectDelayMs"?',
    );
    refused(
      { url: "redis://127.0.0.1:1", offlineQueue: { maxMessage: 1 } },
      "SY_ERR_UNKNOWN_OPTION",
      'unknown option "offlineQueue.maxMessage" — did you mean "offlineQueue.maxMessages"?',
    );
    refused(
      { url: "redis://127.0.0.1:1", offlineQueue: { timeout: 0 } },
      "SY_ERR_INVALID_OPTION",
      'option "offlineQueue.timeout" must be a positive integer, got number 0',
    );
    // `redisOptions` belong to the URL form; with given clients they are unknown.
    refused(
      { pub: {}, sub: {}, redisOptions: {} },
      "SY_ERR_UNKNOWN_OPTION",
      'unknown option "redisOptions"',
    );
  });

  test("close() leaves no open handle: the process exits by itself", async () => {
    const result = await runFixture(FIXTURE, [redis.url], 15000);
    assert.equal(result.signal, null, `fixture had to be killed:\n${result.output}`);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /delivered ok/);
  });
});

describe("RedisBus broker faults", () => {
  test("broker down at start: publishes wait, one `down`, `up` once it appears, then they go out in order", async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    await redis.kill();
    const bus = new RedisBus({ url: redis.url, maxReconnectDelayMs: 200 });
    t.after(() => bus.close());
    const events: string[] = [];
    bus.on("down", () => events.push("down"));
    bus.on("up", () => events.push("up"));
    const inbox = new Inbox();
    const subscribed = bus.subscribe("early", inbox.handler);
    await waitFor(() => events.length > 0, 5000, "down reported");
    bus.publish("early", Buffer.from("queued 1"));
    bus.publish("early", Buffer.from("queued 2"));
    assert.equal(bus.stats.queued, 2);
    assert.equal(bus.stats.dropped, 0);
    await sleep(600); // several failed reconnect attempts: still one `down`
    assert.deepEqual(events, ["down"]);
    await redis.restart();
    await subscribed; // resolves once confirmed after the reconnect
    await waitFor(() => bus.healthy, 5000, "up after the broker appeared");
    assert.deepEqual(events, ["down", "up"]);
    bus.publish("early", Buffer.from("kept"));
    await bus.flush();
    await inbox.waitForCount(3);
    assert.deepEqual(inbox.texts(), ["queued 1", "queued 2", "kept"]);
    assert.deepEqual([bus.stats.published, bus.stats.dropped, bus.stats.queued], [3, 0, 0]);
  });

  for (const mode of ["kill -9", "graceful restart"] as const) {
    test(`${mode} mid-traffic: no crash, drops counted, one down/up, delivery resumes`, async (t) => {
      const redis = await startRedis();
      t.after(() => redis.stop());
      const sender = await openBus(t, redis.url);
      const receiver = await openBus(t, redis.url);
      const events: Array<{ bus: string; event: string; at: number }> = [];
      for (const [name, bus] of [
        ["sender", sender],
        ["receiver", receiver],
      ] as const) {
        bus.on("down", () => events.push({ bus: name, event: "down", at: Date.now() }));
        bus.on("up", () => events.push({ bus: name, event: "up", at: Date.now() }));
      }
      const errors: Error[] = [];
      sender.on("error", (err) => errors.push(err));
      receiver.on("error", (err) => errors.push(err));
      const inbox = new Inbox();
      await receiver.subscribe("traffic", inbox.handler);
      await receiver.subscribe("other", inbox.handler);

      let seq = 0;
      let attempted = 0;
      const timer = setInterval(() => {
        attempted++;
        sender.publish("traffic", Buffer.from(String(seq++)));
      }, 2);
      t.after(() => clearInterval(timer));
      await inbox.waitForCount(20);

      let brokerBack = 0;
      if (mode === "kill -9") {
        await redis.kill();
        await waitFor(() => !sender.healthy && !receiver.healthy, 5000, "both see the outage");
        await sleep(300); // traffic keeps flowing into the outage
        assert.ok(sender.stats.queued > 0, "publishes during the outage wait in the queue");
        await redis.restart();
      } else {
        await redis.restart();
      }
      brokerBack = Date.now();
      await waitFor(() => sender.healthy && receiver.healthy, 10000, "both back up");
      const upAt = Math.max(...events.filter((e) => e.event === "up").map((e) => e.at));
      t.diagnostic(`${mode}: reconnected ${upAt - brokerBack} ms after the broker was ready`);

      const mark = inbox.messages.length;
      await waitFor(() => inbox.messages.length >= mark + 20, 5000, "delivery resumed");
      clearInterval(timer);
      await waitFor(
        () => sender.stats.published + sender.stats.dropped === attempted,
        5000,
        "every publish accounted for",
      );
      for (const bus of ["sender", "receiver"]) {
        assert.deepEqual(
          events.filter((e) => e.bus === bus).map((e) => e.event),
          ["down", "up"],
          `${bus}: one down, one up`,
        );
      }
      assert.equal(sender.stats.outages, 1);
      assert.equal(receiver.stats.outages, 1);
      // At-most-once: no message twice, order kept.
      const got = inbox.texts("traffic").map(Number);
      assert.deepEqual(
        got,
        [...got].sort((a, b) => a - b),
      );
      assert.equal(new Set(got).size, got.length);
      assert.equal(receiver.stats.received, inbox.messages.length);
      // An outage is reported by down/up, not per error; publishes in flight when the
      // connection broke are dropped (not resent) and reported once.
      assert.ok(errors.length <= 1, errors.map((e) => e.message).join("\n"));
      for (const e of errors) {
        assert.ok(e instanceof PublishDroppedError && e.reason === "failed", e.message);
      }
      assert.equal(sender.stats.queued, 0);
      // The subscription was restored exactly (one subscriber each).
      assert.deepEqual(await redisCommand(redis.port, ["PUBSUB", "NUMSUB", "traffic", "other"]), [
        "traffic",
        1,
        "other",
        1,
      ]);
    });
  }

  test("subscribe/unsubscribe racing the re-subscription after a reconnect", async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const retryStrategy = (): number => 50;
    const pub = new Redis(redis.url, { retryStrategy });
    const sub = new Redis(redis.url, { retryStrategy, autoResubscribe: false });
    t.after(() => {
      pub.disconnect();
      sub.disconnect();
    });
    const bus = new RedisBus({ pub, sub });
    t.after(() => bus.close());
    await bus.ready();
    const inbox = new Inbox();
    await bus.subscribe("before", inbox.handler);
    await bus.subscribe("gone", inbox.handler);
    await redis.kill();
    await waitFor(() => !bus.healthy, 5000, "down");
    // Registered after the bus's own listener: runs once its restore has started.
    let late: Promise<void> | undefined;
    sub.once("ready", () => {
      late = bus.subscribe("late", inbox.handler);
      void bus.unsubscribe("gone");
    });
    await redis.restart();
    await bus.ready();
    await waitFor(() => late !== undefined, 5000, "late subscribe issued");
    await late;
    assert.deepEqual(
      await redisCommand(redis.port, ["PUBSUB", "NUMSUB", "before", "late", "gone"]),
      ["before", 1, "late", 1, "gone", 0],
    );
    bus.publish("late", Buffer.from("ok"));
    await inbox.waitForCount(1);
    assert.deepEqual(inbox.texts("late"), ["ok"]);
  });

  test("unsubscribe during an outage is not resurrected by the reconnect", async (t) => {
    const redis = await startRedis();
    t.after(() => redis.stop());
    const bus = await openBus(t, redis.url, { maxReconnectDelayMs: 200 });
    const inbox = new Inbox();
    await bus.subscribe("keep", inbox.handler);
    await bus.subscribe("drop", inbox.handler);
    await redis.kill();
    await waitFor(() => !bus.healthy, 5000, "down");
    await bus.unsubscribe("drop");
    await redis.restart();
    await bus.ready();
    assert.deepEqual(await redisCommand(redis.port, ["PUBSUB", "NUMSUB", "keep", "drop"]), [
      "keep",
      1,
      "drop",
      0,
    ]);
  });
});

describe("RedisBus offline queue, flush() and close()", () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  test("flush() resolves once Redis answered every publish made so far", async (t) => {
    const bus = await openBus(t, redis.url);
    const payload = Buffer.alloc(512, 1);
    for (let i = 0; i < 2000; i++) bus.publish("flush", payload);
    assert.ok(bus.stats.published < 2000, "answers are asynchronous");
    await bus.flush();
    assert.equal(bus.stats.published, 2000);
    await bus.flush(); // nothing outstanding: at once
  });

  test("publishes made before the bus is up are delivered, in order, and close() waits for them", async (t) => {
    const receiver = await openBus(t, redis.url);
    const inbox = new Inbox();
    await receiver.subscribe("early-close", inbox.handler);
    const bus = new RedisBus({ url: redis.url });
    t.after(() => bus.close());
    assert.equal(bus.healthy, false, "not connected yet");
    for (let i = 0; i < 50; i++) bus.publish("early-close", Buffer.from(String(i)));
    assert.equal(bus.stats.queued, 50);
    await bus.close();
    assert.deepEqual([bus.stats.published, bus.stats.dropped], [50, 0]);
    await inbox.waitForCount(50);
    assert.deepEqual(
      inbox.texts(),
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    bus.publish("early-close", Buffer.from("after close"));
    assert.equal(bus.stats.dropped, 1, "a publish after close() is dropped and counted");
  });

  test("a full queue and the timeout drop, counted and reported once; flush() rejects", async (t) => {
    // Nothing listens on port 1: the bus never comes up.
    const bus = new RedisBus({
      url: "redis://127.0.0.1:1",
      maxReconnectDelayMs: 50,
      offlineQueue: { maxMessages: 3, maxBytes: 1000, timeout: 300 },
    });
    t.after(() => bus.close());
    const errors: Error[] = [];
    bus.on("error", (err) => errors.push(err));
    for (let i = 0; i < 5; i++) bus.publish("c", Buffer.from(`m${i}`));
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [3, 2]);
    assert.equal(errors.length, 1, "reported once, not per message");
    assert.ok(errors[0] instanceof PublishDroppedError);
    assert.equal(errors[0].code, "SY_ERR_PUBLISH_DROPPED");
    assert.equal(errors[0].reason, "full");
    assert.match(errors[0].message, /offline queue is full \(maxMessages 3, maxBytes 1000\)/);
    const started = Date.now();
    const err = await bus.flush().then(
      () => assert.fail("flush() must reject"),
      (e: unknown) => e,
    );
    const waited = Date.now() - started;
    assert.ok(err instanceof PublishDroppedError);
    assert.equal(err.dropped, 5, "the two refused and the three expired");
    assert.ok(waited >= 250 && waited < 3000, `flush waited ${waited} ms for the timeout`);
    assert.deepEqual([bus.stats.queued, bus.stats.dropped, bus.stats.published], [0, 5, 0]);
    assert.equal(errors.length, 1, "the expiries belong to the same episode");
    // Bytes bound too: 600 + 600 > 1000.
    bus.publish("c", Buffer.alloc(600));
    bus.publish("c", Buffer.alloc(600));
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [1, 6]);
    await assert.rejects(
      bus.flush(),
      (e: unknown) => e instanceof PublishDroppedError && e.dropped === 2,
    );
    // close() waits for nothing more: the queue is empty.
    await within(bus.close(), 1000, "close()");
  });

  test("maxMessages: 0 turns the queue off (at-most-once, as before)", async (t) => {
    const bus = new RedisBus({ url: "redis://127.0.0.1:1", offlineQueue: { maxMessages: 0 } });
    t.after(() => bus.close());
    bus.on("error", () => {});
    bus.publish("c", Buffer.from("x"));
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [0, 1]);
  });
});
