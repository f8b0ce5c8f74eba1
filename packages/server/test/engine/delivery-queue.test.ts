/**
 * The delivery queue on its own, with recording targets: FIFO order per target across
 * broadcasts, sends and closes; grouping of consecutive broadcasts to one recipient list;
 * the bound on waiting deliveries (the emitter delivers down to half of it); volatile
 * drops whole packets.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  drainQueue,
  MAX_QUEUED_DELIVERIES,
  type QueueTarget,
  queueActive,
  queueBroadcast,
  queueClose,
  queuedDeliveries,
  queueSend,
} from "../../src/engine/delivery-queue.js";
import { OutboundPacket } from "../../src/engine/outbound-packet.js";

class Target implements QueueTarget {
  readonly log: string[] = [];
  accept = true;
  writePacket(packet: OutboundPacket, volatile: boolean): boolean {
    const d = String(packet.data);
    if (volatile && !this.accept) return false;
    this.log.push(d);
    return true;
  }
  closeNow(): void {
    this.log.push("<close>");
  }
}

const pkt = (s: string) => new OutboundPacket("message", s);
const turn = () => new Promise<void>((r) => setImmediate(r));

async function settle(): Promise<void> {
  for (let i = 0; i < 10_000 && queueActive(); i++) await turn();
  assert.equal(queueActive(), false, "queue drained");
}

describe("delivery queue", () => {
  it("keeps FIFO order per target across broadcasts, sends and a close, over several turns", async () => {
    const targets = Array.from({ length: 3000 }, () => new Target());
    const one = targets[1234]!;
    queueBroadcast(targets, [pkt("b1")], false, true);
    queueSend(one, pkt("u2"), false, true);
    queueBroadcast(targets, [pkt("b3"), pkt("b3-attachment")], false, true);
    queueClose(one, false);
    queueBroadcast(targets, [pkt("b5")], false, true);
    assert.ok(queueActive());
    assert.equal(targets[0]!.log.length, 0, "nothing is delivered inside the emitting call");
    await settle();
    assert.deepEqual(one.log, ["b1", "u2", "b3", "b3-attachment", "<close>", "b5"]);
    for (const t of targets)
      if (t !== one) assert.deepEqual(t.log, ["b1", "b3", "b3-attachment", "b5"]);
    assert.equal(queuedDeliveries(), 0);
  });

  it("consecutive broadcasts to one recipient list go out target by target", async () => {
    const order: string[] = [];
    const targets = Array.from({ length: 300 }, (_, k) => {
      const t = new Target();
      t.writePacket = (p: OutboundPacket) => {
        order.push(`${k}:${String(p.data)}`);
        return true;
      };
      return t;
    });
    for (let i = 0; i < 5; i++) queueBroadcast(targets, [pkt(`g${i}`)], false, true);
    await settle();
    assert.deepEqual(order.slice(0, 6), ["0:g0", "0:g1", "0:g2", "0:g3", "0:g4", "1:g0"]);
    assert.equal(order.length, 1500);
  });

  it("a volatile packet is dropped whole (never its header without its attachments)", async () => {
    const slow = new Target();
    slow.accept = false;
    const ok = new Target();
    const targets = [slow, ok, ...Array.from({ length: 300 }, () => new Target())];
    queueBroadcast(targets, [pkt("v"), pkt("v-attachment")], true, true);
    await settle();
    assert.deepEqual(slow.log, []);
    assert.deepEqual(ok.log, ["v", "v-attachment"]);
  });

  it("bounds the waiting deliveries: past the bound the emitting call delivers down to half", async () => {
    const targets = Array.from({ length: 500 }, () => new Target());
    const perBroadcast = targets.length;
    const broadcasts = Math.ceil((MAX_QUEUED_DELIVERIES * 1.5) / perBroadcast);
    let max = 0;
    for (let i = 0; i < broadcasts; i++) {
      queueBroadcast(targets, [pkt(`t${i}`)], false, true);
      max = Math.max(max, queuedDeliveries());
    }
    assert.ok(max <= MAX_QUEUED_DELIVERIES + perBroadcast, `at most the bound waits (${max})`);
    assert.ok(targets[0]!.log.length > 0, "the emitter delivered some itself");
    await settle();
    for (const t of [targets[0]!, targets[499]!]) {
      assert.equal(t.log.length, broadcasts);
      assert.equal(t.log[0], "t0");
      assert.equal(t.log[broadcasts - 1], `t${broadcasts - 1}`);
    }
    assert.ok(
      targets[250]!.log.every((d, i) => d === `t${i}`),
      "in order",
    );
  });

  it("drainQueue delivers everything at once", () => {
    const targets = Array.from({ length: 400 }, () => new Target());
    queueBroadcast(targets, [pkt("x")], false, true);
    queueClose(targets[0]!, false);
    drainQueue();
    assert.equal(queueActive(), false);
    assert.deepEqual(targets[0]!.log, ["x", "<close>"]);
    assert.deepEqual(targets[399]!.log, ["x"]);
  });
});
