/**
 * The engine's outbox: its queue with recording targets (FIFO order per target across
 * broadcasts, sends and closes; grouping of consecutive broadcasts to one recipient list;
 * the bound on waiting deliveries; volatile drops whole packets; slow consumers are cut
 * off; buffered packets are flushed once per tick), and two real engines in one process,
 * each with its own outbox: closing one does not deliver the other's queue, and a big
 * broadcast queued on one does not make the other's sends wait. And the seam: adapters
 * import nothing of the engine.
 */
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { EncodedPacket } from "../../src/broadcast/encoded-packet.js";
import type { Engine } from "../../src/engine/engine.js";
import { OutboundPacket } from "../../src/engine/outbound-packet.js";
import {
  MAX_QUEUED_DELIVERIES,
  Outbox,
  type OutboxHost,
  type OutboxTarget,
  QUEUE_MIN_RECIPIENTS,
} from "../../src/engine/outbox.js";
import { nextSession, openClient, Scope, startEngine, waitFor } from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

class Host implements OutboxHost {
  readonly opts = { maxBufferedBytes: 100 };
  readonly stats = { packetsOut: 0, bytesOut: 0, broadcasts: 0, deliveries: 0 };
  drops = 0;
  onVolatileDropped(): void {
    this.drops++;
  }
}

class Target implements OutboxTarget {
  readonly log: string[] = [];
  readyState = "open";
  closeQueued = false;
  canTakeAtOnce = true;
  bufferedAmount = 0;
  /** take() asks for a flush (a polling session that buffered). */
  buffers = false;
  flushes = 0;
  readonly outbox: Outbox;
  constructor(outbox: Outbox) {
    this.outbox = outbox;
  }
  take(packet: OutboundPacket): boolean {
    this.log.push(String(packet.data));
    return this.buffers && this.log.length === 1;
  }
  flush(): void {
    this.flushes++;
  }
  closeNow(): void {
    this.log.push("<close>");
    this.readyState = "closing";
  }
  terminate(reason: string): void {
    this.log.push(`<${reason}>`);
    this.readyState = "closed";
  }
}

const pkt = (s: string) => new EncodedPacket([s]);
const part = (s: string) => new OutboundPacket("message", s);
const turn = () => new Promise<void>((r) => setImmediate(r));

async function settle(outbox: Outbox): Promise<void> {
  for (let i = 0; i < 10_000 && outbox.active; i++) await turn();
  assert.equal(outbox.active, false, "queue drained");
}

function targets(outbox: Outbox, n: number): Target[] {
  return Array.from({ length: n }, () => new Target(outbox));
}

describe("outbox", () => {
  it("keeps FIFO order per target across broadcasts, sends and a close, over several turns", async () => {
    const outbox = new Outbox(new Host());
    const all = targets(outbox, 3000);
    const one = all[1234]!;
    outbox.broadcast(pkt("b1"), all, false, true);
    assert.ok(outbox.send(one, part("u2"), false, true));
    outbox.broadcast(new EncodedPacket(["b3", Buffer.from("b3-attachment")]), all, false, true);
    outbox.close(one, false);
    assert.equal(one.closeQueued, true);
    assert.equal(outbox.send(one, part("after close"), false, true), false);
    outbox.broadcast(pkt("b5"), all, false, true);
    assert.ok(outbox.active);
    assert.equal(all[0]!.log.length, 0, "nothing is delivered inside the emitting call");
    await settle(outbox);
    assert.deepEqual(one.log, ["b1", "u2", "b3", "b3-attachment", "<close>"]);
    for (const t of all)
      if (t !== one) assert.deepEqual(t.log, ["b1", "b3", "b3-attachment", "b5"]);
    assert.equal(outbox.queuedDeliveries, 0);
  });

  it("writes a small broadcast at once when nothing is queued", () => {
    const outbox = new Outbox(new Host());
    const few = targets(outbox, QUEUE_MIN_RECIPIENTS - 1);
    outbox.broadcast(pkt("now"), few, false, true);
    assert.equal(outbox.active, false);
    for (const t of few) assert.deepEqual(t.log, ["now"]);
  });

  it("consecutive broadcasts to one recipient list go out target by target", async () => {
    const outbox = new Outbox(new Host());
    const order: string[] = [];
    const all = targets(outbox, 300).map((t, k) => {
      t.take = (p: OutboundPacket) => {
        order.push(`${k}:${String(p.data)}`);
        return false;
      };
      return t;
    });
    for (let i = 0; i < 5; i++) outbox.broadcast(pkt(`g${i}`), all, false, true);
    await settle(outbox);
    assert.deepEqual(order.slice(0, 6), ["0:g0", "0:g1", "0:g2", "0:g3", "0:g4", "1:g0"]);
    assert.equal(order.length, 1500);
  });

  it("a volatile packet is dropped whole, at once or queued, and counted", async () => {
    const host = new Host();
    const outbox = new Outbox(host);
    const [slow, ok] = targets(outbox, 2) as [Target, Target];
    slow.canTakeAtOnce = false;
    const withAttachment = new EncodedPacket(["v", Buffer.from("v-attachment")]);
    outbox.broadcast(withAttachment, [slow, ok], true, true);
    assert.deepEqual(slow.log, []);
    assert.deepEqual(ok.log, ["v", "v-attachment"]);
    const many = [slow, ...targets(outbox, QUEUE_MIN_RECIPIENTS)];
    outbox.broadcast(withAttachment, many, true, true);
    assert.ok(outbox.active);
    await settle(outbox);
    assert.deepEqual(slow.log, []);
    assert.deepEqual(many[1]!.log, ["v", "v-attachment"]);
    assert.equal(host.drops, 2);
  });

  it("cuts off a slow consumer; drops (and counts) a volatile packet for it instead", () => {
    const host = new Host();
    const outbox = new Outbox(host);
    const [a, b] = targets(outbox, 2) as [Target, Target];
    a.bufferedAmount = b.bufferedAmount = 90;
    assert.equal(outbox.send(b, part("x".repeat(20)), true, true), false);
    assert.equal(host.drops, 1);
    assert.equal(b.readyState, "open");
    assert.equal(outbox.send(a, part("x".repeat(5)), false, true), true, "under the limit");
    assert.equal(outbox.send(a, part("x".repeat(20)), false, true), false);
    assert.deepEqual(a.log, ["xxxxx", "<slow consumer>"]);
    assert.equal(outbox.send(a, part("y"), false, true), false, "a closed session takes nothing");
  });

  it("flushes a session that buffered once, on the next tick", async () => {
    const outbox = new Outbox(new Host());
    const t = new Target(outbox);
    t.buffers = true;
    for (let i = 0; i < 3; i++) outbox.send(t, part(`p${i}`), false, true);
    assert.equal(t.flushes, 0, "not inside the sending call");
    await new Promise<void>((r) => process.nextTick(r));
    assert.equal(t.flushes, 1);
  });

  it("bounds the waiting deliveries: past the bound the emitting call delivers down to half", async () => {
    const outbox = new Outbox(new Host());
    const all = targets(outbox, 500);
    const broadcasts = Math.ceil((MAX_QUEUED_DELIVERIES * 1.5) / all.length);
    let max = 0;
    for (let i = 0; i < broadcasts; i++) {
      outbox.broadcast(pkt(`t${i}`), all, false, true);
      max = Math.max(max, outbox.queuedDeliveries);
    }
    assert.ok(max <= MAX_QUEUED_DELIVERIES + all.length, `at most the bound waits (${max})`);
    assert.ok(all[0]!.log.length > 0, "the emitter delivered some itself");
    await settle(outbox);
    for (const t of [all[0]!, all[499]!]) {
      assert.equal(t.log.length, broadcasts);
      assert.equal(t.log[0], "t0");
      assert.equal(t.log[broadcasts - 1], `t${broadcasts - 1}`);
    }
    assert.ok(
      all[250]!.log.every((d, i) => d === `t${i}`),
      "in order",
    );
  });

  it("drain() delivers everything at once", () => {
    const outbox = new Outbox(new Host());
    const all = targets(outbox, 400);
    outbox.broadcast(pkt("x"), all, false, true);
    outbox.close(all[0]!, false);
    outbox.drain();
    assert.equal(outbox.active, false);
    assert.deepEqual(all[0]!.log, ["x", "<close>"]);
    assert.deepEqual(all[399]!.log, ["x"]);
  });
});

describe("two engines in one process", () => {
  /** A broadcast to recording targets, big enough to be queued on `engine`'s outbox. */
  function queueBig(engine: Engine, label: string): Target[] {
    const all = targets(engine.outbox, QUEUE_MIN_RECIPIENTS * 2);
    engine.outbox.broadcast(pkt(label), all, false, true);
    assert.ok(engine.outbox.active, `${label} is queued`);
    return all;
  }

  it("each has its own outbox and write scheduler", async () => {
    const a = await startEngine(scope);
    const b = await startEngine(scope);
    assert.notEqual(a.engine.outbox, b.engine.outbox);
    assert.notEqual(a.engine.outbox.writes, b.engine.outbox.writes);
  });

  it("closing one delivers its own queue only; the other's keeps its pace and order", async () => {
    const a = await startEngine(scope);
    const b = await startEngine(scope);
    const session = nextSession(b.engine);
    const got: unknown[] = [];
    await openClient(scope, b.url, { transports: ["websocket"] }, (d) => got.push(d));
    const real = await session;
    const onA = queueBig(a.engine, "a");
    // On the other engine: a big broadcast that also reaches a real session, then a
    // unicast to that session, which must wait behind it.
    const onB = targets(b.engine.outbox, QUEUE_MIN_RECIPIENTS * 2);
    b.engine.outbox.broadcast(pkt("b"), [...onB, real], false, true);
    real.send("after b");
    a.engine.close();
    assert.equal(a.engine.outbox.active, false, "the closed engine delivered its queue");
    assert.deepEqual(onA[onA.length - 1]!.log, ["a"]);
    assert.ok(b.engine.outbox.active, "the other engine's queue is untouched");
    assert.ok(
      onB.every((t) => t.log.length === 0),
      "nothing of the other engine's was delivered",
    );
    assert.equal(real.readyState, "open");
    await settle(b.engine.outbox);
    assert.ok(onB.every((t) => t.log.length === 1 && t.log[0] === "b"));
    await waitFor(() => got.length >= 2, 3000, "the real client to receive both");
    assert.deepEqual(got, ["b", "after b"]);
  });

  it("a big broadcast queued on one does not make the other's sends queue", async () => {
    const a = await startEngine(scope);
    const b = await startEngine(scope);
    const session = nextSession(b.engine);
    const got: unknown[] = [];
    const client = await openClient(scope, b.url, { transports: ["websocket"] }, (d) =>
      got.push(d),
    );
    const s = await session;
    // The client's open packet is out: nothing is pending on the connection.
    await waitFor(() => s.bufferedAmount === 0, 3000, "the open packet to be written");
    const onA = queueBig(a.engine, "a");
    assert.equal(s.send("direct"), true);
    assert.equal(b.engine.outbox.active, false, "nothing queued on the other engine");
    assert.ok(s.bufferedAmount > 0, "the send was written to the connection at once, not queued");
    assert.ok(
      onA.every((t) => t.log.length === 0),
      "while the big broadcast still waits",
    );
    await waitFor(() => got.includes("direct"), 3000, "the client to receive it");
    await settle(a.engine.outbox);
    client.close();
  });
});

describe("the adapter seam", () => {
  it("adapters import nothing of the engine: they hand deliveries to a BroadcastSink", async () => {
    const dir = new URL("../../src/adapter/", import.meta.url);
    const files = (await readdir(dir)).filter((f) => f.endsWith(".ts"));
    assert.ok(files.includes("memory-adapter.ts") && files.includes("adapter.ts"));
    for (const f of files) {
      const text = await readFile(new URL(f, dir), "utf8");
      assert.doesNotMatch(text, /from "\.\.\/engine\//, `${f} imports the engine`);
    }
  });
});
