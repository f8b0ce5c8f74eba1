/**
 * The heartbeat wheel on its own, with recording targets and real timers: pings leave in
 * order and never late, a pong deadline counts from when the ping was due, a target is
 * closed at its deadline (never before), a pong moves it back to the ping list from the
 * middle of the pong list, deleted targets are never touched again, and `expire` closes a
 * target whose deadline passed before the timer fired.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type HeartbeatTarget, HeartbeatWheel } from "../../src/engine/heartbeat.js";
import { waitFor } from "../helpers.js";

class Target implements HeartbeatTarget {
  nextPingAt = 0;
  pongDeadline = 0;
  hbPrev: HeartbeatTarget | undefined = undefined;
  hbNext: HeartbeatTarget | undefined = undefined;
  pings: number[] = [];
  /** The deadline the ping was given, as read right after it was sent. */
  deadlines: number[] = [];
  timedOutAt = 0;
  /** When the ping that is now awaited was due. */
  due = 0;
  constructor(readonly name: string) {}
  sendPing(): void {
    this.pings.push(performance.now());
  }
  onPingTimeout(): void {
    this.timedOutAt = performance.now();
  }
}

const INTERVAL = 40;
const TIMEOUT = 60;

function addTracked(wheel: HeartbeatWheel, t: Target): void {
  wheel.add(t);
  t.due = t.nextPingAt;
}

describe("heartbeat wheel", () => {
  it("pings in order, no later than due, and closes silent targets at their deadline", async () => {
    const wheel = new HeartbeatWheel(INTERVAL, TIMEOUT);
    try {
      const targets: Target[] = [];
      for (let i = 0; i < 5; i++) {
        const t = new Target(`t${i}`);
        addTracked(wheel, t);
        targets.push(t);
        await new Promise((r) => setTimeout(r, 3));
      }
      await waitFor(() => targets.every((t) => t.timedOutAt > 0), 3000, "every timeout");
      for (const t of targets) {
        assert.equal(t.pings.length, 1, `${t.name} pinged once`);
        // Early by at most the resolution (5 ms here), never before that.
        assert.ok(t.pings[0]! >= t.due - 5 - 0.001, `${t.name} pinged too early`);
        assert.ok(t.timedOutAt >= t.due + TIMEOUT, `${t.name} closed before its deadline`);
      }
      const order = [...targets].sort((a, b) => a.timedOutAt - b.timedOutAt);
      assert.deepEqual(
        order.map((t) => t.name),
        targets.map((t) => t.name),
      );
    } finally {
      wheel.close();
    }
  });

  it("a pong from the middle of the pong list keeps that target; the others time out", async () => {
    const wheel = new HeartbeatWheel(INTERVAL, TIMEOUT);
    try {
      const [a, b, c] = [new Target("a"), new Target("b"), new Target("c")];
      for (const t of [a, b, c]) addTracked(wheel, t);
      await waitFor(() => b.pongDeadline > 0, 1000, "b's ping");
      assert.ok(b.pongDeadline <= b.due + TIMEOUT + 0.001, "deadline counts from the due time");
      wheel.pong(b);
      assert.equal(b.pongDeadline, 0);
      assert.ok(b.nextPingAt > 0);
      await waitFor(() => a.timedOutAt > 0 && c.timedOutAt > 0, 2000, "a and c to time out");
      assert.equal(b.timedOutAt, 0);
      // b goes on being pinged.
      await waitFor(() => b.pings.length >= 2, 1000, "b's second ping");
      wheel.delete(b);
      wheel.delete(b); // idempotent
      const pings = b.pings.length;
      await new Promise((r) => setTimeout(r, INTERVAL + TIMEOUT + 20));
      assert.equal(b.pings.length, pings, "a deleted target is not pinged");
      assert.equal(b.timedOutAt, 0, "nor timed out");
    } finally {
      wheel.close();
    }
  });

  it("expire() closes a target past its deadline at once, and only then", async () => {
    const wheel = new HeartbeatWheel(INTERVAL, 10_000);
    try {
      const t = new Target("t");
      wheel.add(t);
      assert.equal(wheel.expire(t), false, "no pong awaited yet");
      await waitFor(() => t.pongDeadline > 0, 1000, "the ping");
      assert.equal(wheel.expire(t), false, "deadline not reached");
      t.pongDeadline = performance.now() - 1;
      assert.equal(wheel.expire(t), true);
      assert.ok(t.timedOutAt > 0);
      assert.equal(t.pongDeadline, 0);
      assert.equal(wheel.expire(t), false, "already off the wheel");
    } finally {
      wheel.close();
    }
  });
});
