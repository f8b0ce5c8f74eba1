import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PublishDroppedError } from "@switchyard/server";
import {
  Inbox,
  type RabbitServer,
  runFixture,
  sleep,
  startRabbitMQ,
  trapUnhandled,
  waitFor,
} from "@switchyard/test-harness";
import amqp from "amqplib";
import { AmqpBus, type AmqpBusOptions, routingKey } from "../src/index.js";

const FIXTURE = new URL("./fixtures/close-exits.ts", import.meta.url).pathname;

const unhandled = trapUnhandled();
after(() => {
  unhandled.dispose();
  unhandled.assertNone();
});

type Extra = Omit<ConstructorParameters<typeof AmqpBus>[0], "url">;

/** A bus that closes after the test, even when an assertion fails. */
async function openBus(
  t: { after(fn: () => Promise<void>): void },
  url: string,
  extra: Extra = {},
): Promise<AmqpBus> {
  const bus = new AmqpBus({ url, ...extra });
  t.after(() => bus.close());
  await bus.ready();
  return bus;
}

// One broker for the whole file (RabbitMQ boots in ~6 s); the fault tests, which kill and
// restart it, run last.
let rabbit: RabbitServer;
before(async () => {
  rabbit = await startRabbitMQ();
});
after(() => rabbit?.stop());

describe("AmqpBus against a real RabbitMQ", () => {
  test("publishes and receives bytes unchanged (binary-safe), own messages included", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const inbox = new Inbox();
    await bus.subscribe("socket.io#/#", inbox.handler);
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(1024 * 1024, 0xa5); // spans many frames
    const payloads = [every, Buffer.alloc(0), Buffer.from("AMQP\x00\x00\x09\x01"), big];
    for (const p of payloads) bus.publish("socket.io#/#", p);
    await inbox.waitForCount(payloads.length);
    assert.deepEqual(
      inbox.messages.map((m) => m.channel),
      payloads.map(() => "socket.io#/#"),
    );
    for (const [i, p] of payloads.entries()) assert.ok(inbox.messages[i]!.payload.equals(p));
    await bus.flush(); // every publish confirmed
    assert.deepEqual(bus.stats, {
      published: payloads.length,
      received: payloads.length,
      dropped: 0,
      queued: 0,
      outages: 0,
      ignored: 0,
      blocked: 0,
    });
  });

  test("channel names with topic wildcards and dots route exactly, long ones hashed", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const names = [
      "socket.io#/#",
      "socket.io#/#*#",
      "socket.io#/#room.a#",
      "socket.io#/#room#",
      "#",
      "*",
      "socket.io#/é#\u{1F600}#",
      `socket.io#/#${"r".repeat(300)}#`,
      `socket.io#/#${"r".repeat(301)}#`,
    ];
    const inboxes = new Map(names.map((n) => [n, new Inbox()]));
    for (const n of names) await bus.subscribe(n, inboxes.get(n)!.handler);
    for (const n of names) bus.publish(n, Buffer.from(n));
    await waitFor(() => bus.stats.received === names.length, 5000, "all delivered");
    for (const n of names) assert.deepEqual(inboxes.get(n)!.texts(), [n], n.slice(0, 40));
    assert.equal(bus.stats.ignored, 0);
  });

  test("receives what a plain amqplib client publishes with the documented key", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const inbox = new Inbox();
    await bus.subscribe("socket.io#/chat#room é#", inbox.handler);
    const conn = await amqp.connect(rabbit.url);
    t.after(() => conn.close());
    const ch = await conn.createChannel();
    const key = `sy.${Buffer.from("socket.io#/chat#room é#").toString("base64url")}`;
    assert.equal(key, routingKey("socket.io#/chat#room é#"));
    ch.publish("switchyard", key, Buffer.from([0, 1]));
    await inbox.waitForCount(1);
    assert.equal(inbox.messages[0]!.channel, "socket.io#/chat#room é#");
    assert.deepEqual([...inbox.messages[0]!.payload], [0, 1]);
  });

  test("unsubscribe stops delivery at the broker; other channels are unaffected", async (t) => {
    const bus = await openBus(t, rabbit.url);
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
    assert.equal(bus.stats.ignored, 0, "unbound at the broker, not filtered locally");
  });

  test("many channels: each handler gets exactly its channel's messages", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const inboxes = new Map<string, Inbox>();
    const names = Array.from({ length: 200 }, (_, i) => `socket.io#/n${i % 7}#room-${i}#`);
    await Promise.all(
      names.map((name) => {
        const inbox = new Inbox();
        inboxes.set(name, inbox);
        return bus.subscribe(name, inbox.handler);
      }),
    );
    for (const name of names) {
      for (let k = 0; k < 3; k++) bus.publish(name, Buffer.from(`${name}:${k}`));
    }
    await waitFor(() => bus.stats.received === names.length * 3, 5000, "all delivered");
    for (const name of names) {
      assert.deepEqual(
        inboxes.get(name)!.texts(),
        [0, 1, 2].map((k) => `${name}:${k}`),
      );
    }
  });

  test("two buses see each other; the broker routes each only what it subscribed", async (t) => {
    const one = await openBus(t, rabbit.url);
    const two = await openBus(t, rabbit.url);
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
    await sleep(100);
    assert.deepEqual(oneInbox.texts(), ["from-one"]);
    assert.deepEqual(twoInbox.texts("x"), ["from-one"]);
    assert.deepEqual(twoInbox.texts("only-two"), ["private"]);
    // Nothing unsubscribed reached either node: routing happened in the broker.
    assert.equal(one.stats.received, 1);
    assert.equal(one.stats.ignored, 0);
    assert.equal(two.stats.ignored, 0);
  });

  test("a throwing handler is reported as `error` and the bus keeps delivering", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const errors: Error[] = [];
    bus.on("error", (err) => errors.push(err));
    const inbox = new Inbox();
    await bus.subscribe("boom", () => {
      throw new Error("handler bug");
    });
    await bus.subscribe("fine", inbox.handler);
    bus.publish("boom", Buffer.from("x"));
    bus.publish("fine", Buffer.from("y"));
    await inbox.waitForCount(1);
    await waitFor(() => errors.length === 1, 5000, "error reported");
    assert.equal(errors[0]!.message, "handler bug");
    assert.equal(bus.healthy, true);
  });

  test("re-subscribing replaces the handler; subscribe after close rejects", async (t) => {
    const bus = await openBus(t, rabbit.url);
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

  test("validates options and names the option", () => {
    assert.throws(() => new AmqpBus({ url: "redis://x" }), /option "url"/);
    assert.throws(() => new AmqpBus({ url: "amqp://x", exchange: "" }), /option "exchange"/);
    assert.throws(
      () => new AmqpBus({ url: "amqp://x", maxReconnectDelayMs: 1.5 }),
      /option "maxReconnectDelayMs"/,
    );
    const refused = (opts: object, code: string, message: string): void => {
      assert.throws(
        () => new AmqpBus(opts as AmqpBusOptions),
        (err: unknown) =>
          err instanceof Error &&
          (err as { code?: string }).code === code &&
          err.message === message,
      );
    };
    refused(
      { url: "amqp://x", exchnage: "sy" },
      "SY_ERR_UNKNOWN_OPTION",
      'unknown option "exchnage" — did you mean "exchange"?',
    );
    refused(
      { url: "amqp://x", offlineQueue: { timout: 5 } },
      "SY_ERR_UNKNOWN_OPTION",
      'unknown option "offlineQueue.timout" — did you mean "offlineQueue.timeout"?',
    );
    refused(
      { url: "amqp://x", offlineQueue: { maxBytes: -1 } },
      "SY_ERR_INVALID_OPTION",
      'option "offlineQueue.maxBytes" must be a non-negative integer, got number -1',
    );
  });

  test("close() leaves no open handle: the process exits by itself", async () => {
    const result = await runFixture(FIXTURE, [rabbit.url], 20000);
    assert.equal(result.signal, null, `fixture had to be killed:\n${result.output}`);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /delivered ok/);
  });

  test("a channel error (exchange deleted under us) is recovered like an outage", async (t) => {
    const bus = await openBus(t, rabbit.url, { exchange: "sy-chan-err", maxReconnectDelayMs: 200 });
    const events: string[] = [];
    bus.on("down", () => events.push("down"));
    bus.on("up", () => events.push("up"));
    const inbox = new Inbox();
    await bus.subscribe("c", inbox.handler);
    const conn = await amqp.connect(rabbit.url);
    t.after(() => conn.close());
    const ch = await conn.createChannel();
    await ch.deleteExchange("sy-chan-err");
    // Publishing to a missing exchange makes the broker close our channel (404).
    bus.publish("c", Buffer.from("into the void"));
    await waitFor(() => events.length === 2, 10000, "down and up");
    assert.deepEqual(events, ["down", "up"]);
    bus.publish("c", Buffer.from("back"));
    await inbox.waitForCount(1);
    assert.deepEqual(inbox.texts(), ["back"]);
  });

  test("broker down at start: one `down`, publishes wait until their timeout, close() stops retrying", async (t) => {
    const bus = new AmqpBus({
      url: "amqp://guest:guest@127.0.0.1:1",
      maxReconnectDelayMs: 100,
      offlineQueue: { maxMessages: 2, timeout: 800 },
    });
    t.after(() => bus.close());
    const events: string[] = [];
    bus.on("down", () => events.push("down"));
    bus.on("up", () => events.push("up"));
    const errors: Error[] = [];
    bus.on("error", (err) => errors.push(err));
    const subscribed = bus.subscribe("never", () => {});
    // close() rejects it; handled here so the rejection is never "unhandled" in between.
    subscribed.catch(() => {});
    await waitFor(() => events.length > 0, 5000, "down reported");
    bus.publish("never", Buffer.from("x"));
    bus.publish("never", Buffer.from("y"));
    bus.publish("never", Buffer.from("full"));
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [2, 1]);
    await sleep(500); // several failed attempts: still one `down`
    assert.deepEqual(events, ["down"]);
    assert.equal(bus.stats.outages, 1);
    // close() waits for the queued publishes: here until they time out.
    await bus.close();
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [0, 3]);
    assert.equal(errors.length, 1, "drops reported once");
    assert.ok(errors[0] instanceof PublishDroppedError && errors[0].reason === "full");
    await assert.rejects(subscribed, { code: "SY_ERR_CLOSED" });
  });
});

describe("AmqpBus offline queue, flush() and close()", () => {
  test("flush() resolves once RabbitMQ confirmed every publish made so far", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const payload = Buffer.alloc(512, 1);
    for (let i = 0; i < 2000; i++) bus.publish("flush", payload);
    assert.ok(bus.stats.published < 2000, "confirms are asynchronous");
    await bus.flush();
    assert.equal(bus.stats.published, 2000);
    await bus.flush(); // nothing outstanding: at once
  });

  test("publishes made before the bus is up are delivered, in order, and close() waits for them", async (t) => {
    const receiver = await openBus(t, rabbit.url);
    const inbox = new Inbox();
    await receiver.subscribe("early-close", inbox.handler);
    const bus = new AmqpBus({ url: rabbit.url });
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
  });
});

describe("AmqpBus broker faults", () => {
  test("publishing blocked by a resource alarm: publishes wait, reported once, then go out in order", async (t) => {
    const bus = await openBus(t, rabbit.url);
    const errors: Error[] = [];
    bus.on("error", (err) => errors.push(err));
    const inbox = new Inbox();
    await bus.subscribe("b", inbox.handler);
    await rabbit.rabbitmqctl(["set_vm_memory_high_watermark", "absolute", "1"]);
    t.after(() => rabbit.rabbitmqctl(["set_vm_memory_high_watermark", "0.4"]).then(() => {}));
    // The broker raises the alarm at its next memory check: wait for it, or "first" may go
    // out before the alarm and nothing would then block the connection.
    await waitFor(
      async () => /memory/.test(await rabbit.rabbitmqctl(["eval", "rabbit_alarm:get_alarms()."])),
      20000,
      "the memory alarm",
    );
    // RabbitMQ blocks a connection (and says so) when it next publishes under the alarm;
    // that publish waits in the broker's TCP buffer and arrives after the alarm clears.
    bus.publish("b", Buffer.from("first"));
    await waitFor(() => bus.blocked, 10000, "blocked");
    bus.publish("b", Buffer.from("x"));
    bus.publish("b", Buffer.from("y"));
    assert.deepEqual([bus.stats.queued, bus.stats.dropped], [2, 0]);
    assert.equal(bus.stats.blocked, 1);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /blocked/);
    assert.equal(bus.healthy, true, "blocked is not an outage: deliveries still flow in");
    await rabbit.rabbitmqctl(["set_vm_memory_high_watermark", "0.4"]);
    await waitFor(() => !bus.blocked, 10000, "unblocked");
    bus.publish("b", Buffer.from("z"));
    await bus.flush();
    await inbox.waitForCount(4);
    assert.deepEqual(inbox.texts(), ["first", "x", "y", "z"]);
    assert.deepEqual([bus.stats.published, bus.stats.dropped, bus.stats.queued], [4, 0, 0]);
  });

  for (const mode of ["kill -9", "graceful restart"] as const) {
    test(`${mode} mid-traffic: no crash, drops counted, one down/up, delivery resumes`, async (t) => {
      const sender = await openBus(t, rabbit.url);
      const receiver = await openBus(t, rabbit.url);
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

      const started = Date.now();
      if (mode === "kill -9") {
        await rabbit.kill();
        await waitFor(() => !sender.healthy && !receiver.healthy, 5000, "both see the outage");
        await sleep(300); // traffic keeps flowing into the outage
        assert.ok(sender.stats.queued > 0, "publishes during the outage wait in the queue");
      }
      // Subscription changes while the broker is away take effect on the new queue.
      // (subscribe() resolves once bound, i.e. after the reconnect.)
      const late = receiver.subscribe("late", inbox.handler);
      await receiver.unsubscribe("other");
      const other = receiver.subscribe("other", inbox.handler);
      const gone = receiver.subscribe("gone", inbox.handler);
      await receiver.unsubscribe("gone");
      await rabbit.restart();
      const brokerBack = Date.now();
      await waitFor(() => sender.healthy && receiver.healthy, 15000, "both back up");
      const downAt = Math.min(...events.filter((e) => e.event === "down").map((e) => e.at));
      const upAt = Math.max(...events.filter((e) => e.event === "up").map((e) => e.at));
      t.diagnostic(
        `${mode}: down ${downAt - started} ms after the fault began, broker ready after ` +
          `${brokerBack - started} ms, both buses up ${upAt - brokerBack} ms after that`,
      );

      const mark = inbox.messages.length;
      await waitFor(() => inbox.messages.length >= mark + 20, 5000, "delivery resumed");
      clearInterval(timer);
      await sender.flush().catch(() => {}); // rejects if some were in flight at the fault
      assert.equal(sender.stats.published + sender.stats.dropped, attempted);
      assert.equal(sender.stats.queued, 0);
      for (const bus of ["sender", "receiver"]) {
        assert.deepEqual(
          events.filter((e) => e.bus === bus).map((e) => e.event),
          ["down", "up"],
          `${bus}: one down, one up`,
        );
      }
      assert.equal(sender.stats.outages, 1);
      assert.equal(receiver.stats.outages, 1);
      const got = inbox.texts("traffic").map(Number);
      assert.deepEqual(
        got,
        [...got].sort((a, b) => a - b),
        "order kept",
      );
      assert.equal(new Set(got).size, got.length, "no duplicates");
      assert.equal(receiver.stats.received, inbox.messages.length);
      // An outage is reported by down/up, not per error; publishes unconfirmed when the
      // connection broke are dropped (not resent) and reported once.
      assert.ok(errors.length <= 1, errors.map((e) => e.message).join("\n"));
      for (const e of errors) {
        assert.ok(e instanceof PublishDroppedError && e.reason === "failed", e.message);
      }
      // Every subscription was re-bound on the new queue, and only those.
      await Promise.all([late, other, gone]);
      sender.publish("other", Buffer.from("o"));
      sender.publish("late", Buffer.from("l"));
      sender.publish("gone", Buffer.from("g"));
      await waitFor(() => inbox.texts("other").length === 1, 5000, "re-bound 'other'");
      await waitFor(() => inbox.texts("late").length === 1, 5000, "bound 'late'");
      await sleep(100);
      assert.deepEqual(inbox.texts("gone"), []);
      assert.equal(receiver.stats.ignored, 0);
    });
  }
});
