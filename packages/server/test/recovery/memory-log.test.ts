/**
 * The memory adapter's recovery log on its own: what a restore returns (in order,
 * filtered by the session's rooms and the packets' except rooms), how offsets are found
 * and refused, and the age, count and byte bounds.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { sleep, waitFor } from "@switchyard/test-harness";
import type { BroadcastOptions, RecoveryOptions } from "../../src/adapter/adapter.js";
import { MemoryRecoveryLog } from "../../src/adapter/memory-recovery.js";

const OPTS: RecoveryOptions = {
  maxDisconnectionDuration: 60_000,
  skipMiddlewares: true,
  maxPackets: 1000,
  maxBytes: 1 << 20,
};

function to(rooms: string[], except: string[] = []): BroadcastOptions {
  return { rooms: new Set(rooms), except: new Set(except) };
}

/** Appends `[ev, n, offset]` and returns the offset. */
function add(log: MemoryRecoveryLog, n: number, opts: BroadcastOptions, bytes = 10): string {
  const offset = log.nextOffset();
  log.append(offset, ["n", n, offset], opts, bytes);
  return offset;
}

function session(pid: string, rooms: string[]) {
  return { sid: "sid-1", pid, rooms, data: { a: 1 } };
}

describe("MemoryRecoveryLog", () => {
  it("restores the packets after the offset that reached the session's rooms, in order, once", () => {
    const log = new MemoryRecoveryLog(OPTS);
    const first = add(log, 0, to([]));
    add(log, 1, to(["a"]));
    add(log, 2, to(["b"]));
    add(log, 3, to([], ["a"])); // everyone but room a
    add(log, 4, to(["sid-1"])); // a unicast to the socket
    add(log, 5, to(["a", "b"], ["c"]));
    log.persist(session("p1", ["sid-1", "a"]));
    const restored = log.restore("p1", first);
    assert.ok(typeof restored !== "string");
    assert.deepEqual(
      restored.missedPackets.map((d) => d[1]),
      [1, 4, 5],
    );
    assert.ok(restored.missedPackets.every((d) => typeof d[2] === "string"));
    assert.deepEqual(restored.data, { a: 1 });
    assert.equal(log.restore("p1", first), "unknown-session", "consumed");
    log.close();
  });

  it("offsets are unguessable and found in O(1): a wrong random part, a far sequence, junk all miss", () => {
    const log = new MemoryRecoveryLog(OPTS);
    const offsets = [add(log, 0, to([])), add(log, 1, to([])), add(log, 2, to([]))];
    assert.equal(new Set(offsets).size, 3);
    for (const o of offsets) assert.match(o, /^[0-9a-z]+\.[A-Za-z0-9_-]{20}$/);
    const [seq] = offsets[0]!.split(".");
    const forged = [
      `${seq}.AAAAAAAAAAAAAAAAAAAA`,
      `zzzzzzzzzz.${offsets[0]!.split(".")[1]}`,
      "-1.AAAAAAAAAAAAAAAAAAAA",
      "",
      ".",
      "x".repeat(100_000),
    ];
    for (const offset of forged) {
      log.persist(session("p", ["sid-1"]));
      assert.equal(log.restore("p", offset), "offset", offset.slice(0, 40));
    }
    log.persist(session("p", ["sid-1"]));
    const ok = log.restore("p", offsets[1]!);
    assert.ok(typeof ok !== "string");
    assert.deepEqual(
      ok.missedPackets.map((d) => d[1]),
      [2],
    );
    log.close();
  });

  it("a session's mark replays from where its socket connected; a trimmed mark misses", () => {
    const log = new MemoryRecoveryLog({ ...OPTS, maxPackets: 3 });
    add(log, 0, to([]));
    const mark = log.mark();
    add(log, 1, to([]));
    add(log, 2, to([]));
    log.persist({ ...session("p", ["sid-1"]), mark });
    const ok = log.restore("p", "");
    assert.ok(typeof ok !== "string");
    assert.deepEqual(
      ok.missedPackets.map((d) => d[1]),
      [1, 2],
    );
    log.persist({ ...session("q", ["sid-1"]), mark: log.mark() });
    const none = log.restore("q", "");
    assert.ok(typeof none !== "string");
    assert.deepEqual(none.missedPackets, [], "nothing since the mark");
    log.persist({ ...session("r", ["sid-1"]), mark });
    for (let i = 3; i < 10; i++) add(log, i, to([]));
    assert.equal(log.restore("r", ""), "offset", "packets since the mark were dropped");
    log.persist(session("s", ["sid-1"]));
    assert.equal(log.restore("s", ""), "offset", "no offset and no mark");
    log.persist({ ...session("t", ["sid-1"]), mark });
    assert.equal(log.restore("t", mark), "offset", "a mark is not an offset");
    log.close();
  });

  it("count and byte bounds drop the oldest packets first", () => {
    const byCount = new MemoryRecoveryLog({ ...OPTS, maxPackets: 3 });
    const first = add(byCount, 0, to([]));
    for (let i = 1; i < 5000; i++) add(byCount, i, to([]));
    assert.equal(byCount.stats.packets, 3);
    byCount.persist(session("p", ["sid-1"]));
    assert.equal(byCount.restore("p", first), "offset", "a trimmed offset is gone");
    byCount.close();

    const byBytes = new MemoryRecoveryLog({ ...OPTS, maxBytes: 250 });
    for (let i = 0; i < 10; i++) add(byBytes, i, to([]), 100);
    assert.deepEqual(byBytes.stats, { packets: 2, bytes: 200, sessions: 0 });
    byBytes.close();
  });

  it("age bound: packets and sessions older than maxDisconnectionDuration are gone", async () => {
    const log = new MemoryRecoveryLog({ ...OPTS, maxDisconnectionDuration: 50 });
    const old = add(log, 0, to([]));
    log.persist(session("p", ["sid-1"]));
    // The window passing is the point of this test.
    await sleep(80);
    assert.equal(log.restore("p", old), "expired");
    add(log, 1, to([]));
    assert.equal(log.stats.packets, 1, "trimmed on append, no timer per packet");
    log.persist(session("q", ["sid-1"]));
    assert.equal(log.restore("q", old), "offset");
    log.close();
  });

  it("one sweep timer drops expired sessions and packets while nothing happens", async () => {
    const log = new MemoryRecoveryLog({ ...OPTS, maxDisconnectionDuration: 50 });
    add(log, 0, to([]));
    log.persist(session("p", ["sid-1"]));
    assert.deepEqual(log.stats, { packets: 1, bytes: 10, sessions: 1 });
    // The sweep runs every max(1 s, window): waiting for it is the test.
    await waitFor(() => log.stats.sessions === 0, 3000, "the sweep");
    assert.deepEqual(log.stats, { packets: 0, bytes: 0, sessions: 0 });
    log.close();
  });
});
