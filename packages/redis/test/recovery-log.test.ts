// RedisRecoveryLog against a real redis-server: offsets, reads after an offset, the
// bounds (length and age), epochs (a flushed Redis, a reset), sessions taken once, the
// live state of a node that died, and bogus input costing one bounded lookup.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createAdapter, LocalHub, type LogRead, type RecoveryLogHandle } from "@switchyard/server";
import { sleep, waitFor } from "@switchyard/test-harness";
import { RedisRecoveryLog } from "../src/index.js";
import { redisForFile } from "./redis-for-file.js";

const env = redisForFile();

let nsCount = 0;
/** A log and a handle on a namespace of its own (keys never shared between tests). */
function open(
  t: { after(fn: () => unknown): void },
  opts: { maxLength?: number; maxAge?: number } = {},
  settings = { window: 60_000, nodeTimeout: 10_000 },
  node = "node-a",
): { log: RedisRecoveryLog; h: RecoveryLogHandle; nsp: string } {
  const log = new RedisRecoveryLog({ url: env.redis.url, ...opts });
  t.after(() => log.close());
  const nsp = `/t${++nsCount}`;
  return { log, h: log.open(nsp, node, settings), nsp };
}

function entries(read: LogRead): string[] {
  assert.ok("entries" in read, `expected entries, got ${JSON.stringify(read)}`);
  return read.entries.map(([, body]) => body.toString());
}

describe("RedisRecoveryLog", () => {
  test("append returns ordered offsets; read after one returns the later entries in order", async (t) => {
    const { h } = open(t);
    const offsets: string[] = [];
    for (let i = 1; i <= 20; i++) offsets.push(await h.append(Buffer.from(`e${i}`), false));
    const epochs = new Set(offsets.map((o) => o.split(":")[0]));
    assert.equal(epochs.size, 1, "one epoch");
    assert.deepEqual(
      offsets.map((o) => Number(o.split(":")[1])),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(entries(await h.read(offsets[14]!)), ["e16", "e17", "e18", "e19", "e20"]);
    const read = await h.read(offsets[17]!);
    assert.ok("entries" in read);
    assert.deepEqual(
      read.entries.map(([o]) => o),
      offsets.slice(18),
      "the offsets read are the ones append returned",
    );
    assert.deepEqual(entries(await h.read(offsets[19]!)), [], "nothing after the last");
  });

  test("bounded by length: XLEN stays near maxLength under a flood; an offset trimmed away is gone", async (t) => {
    const { h, nsp } = open(t, { maxLength: 50 });
    const first = await h.append(Buffer.from("first"), false);
    const all = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => h.append(Buffer.from(`x${i}`), false)),
    );
    const len = await env.admin.xlen(`{switchyard:recovery:${nsp}}:log`);
    // MAXLEN ~ trims whole stream nodes (100 entries each by default).
    assert.ok(len >= 50 && len <= 150, `XLEN ${len} after 2001 appends with maxLength 50`);
    assert.deepEqual(await h.read(first), { gone: "trimmed" });
    assert.deepEqual(entries(await h.read(all[1997]!)), ["x1998", "x1999"]);
  });

  test("bounded by age; an offset whose own entry aged out still reads when nothing after it did", async (t) => {
    const { h, nsp } = open(t, { maxAge: 200 });
    const a = await h.append(Buffer.from("a"), false);
    const b = await h.append(Buffer.from("b"), false);
    await sleep(300);
    const c = await h.append(Buffer.from("c"), false);
    const len = await env.admin.xlen(`{switchyard:recovery:${nsp}}:log`);
    assert.equal(len, 1, "a and b trimmed by age");
    assert.deepEqual(entries(await h.read(b)), ["c"], "b is c's predecessor: nothing missing");
    assert.deepEqual(await h.read(a), { gone: "trimmed" }, "b is gone after a");
    assert.deepEqual(entries(await h.read(c)), []);
  });

  test("epoch: a flushed Redis, or a reset, makes older offsets unrecoverable (detected)", async (t) => {
    const { h } = open(t);
    const before = await h.append(Buffer.from("1"), false);
    await h.append(Buffer.from("2"), false);
    await env.admin.flushall();
    const afterFlush = await h.append(Buffer.from("3"), false);
    assert.notEqual(afterFlush.split(":")[0], before.split(":")[0], "a new epoch");
    assert.deepEqual(await h.read(before), { gone: "epoch" });
    const reset = await h.append(Buffer.from("4"), true);
    assert.notEqual(reset.split(":")[0], afterFlush.split(":")[0]);
    assert.deepEqual(await h.read(afterFlush), { gone: "epoch" });
    await h.heartbeat(true);
    assert.deepEqual(await h.read(reset), { gone: "epoch" }, "a reset by heartbeat");
  });

  test("a persisted session is taken once, and expires with the window", async (t) => {
    const { h } = open(t, {}, { window: 300, nodeTimeout: 10_000 });
    await h.persist("pid-1", Buffer.from("state-1"));
    const taken = await h.take("pid-1");
    assert.ok(taken !== null && "snapshot" in taken);
    assert.equal(taken.snapshot.toString(), "state-1");
    assert.equal(await h.take("pid-1"), null, "consumed on use");
    await h.persist("pid-2", Buffer.from("state-2"));
    const key = (await env.admin.keys("*:s:pid-2"))[0]!;
    const ttl = await env.admin.pttl(key);
    assert.ok(ttl > 0 && ttl <= 300, `kept for the window (PTTL ${ttl})`);
    await waitFor(async () => (await env.admin.exists(key)) === 0, 2000, "pid-2 to expire");
    assert.equal(await h.take("pid-2"), null, "expired");
  });

  test("live states: not taken while the node beats; taken once after it died; gone after the window", async (t) => {
    const settings = { window: 1500, nodeTimeout: 300 };
    const { log, nsp } = open(t, {}, settings);
    const a = log.open(nsp, "node-a", settings);
    const b = log.open(nsp, "node-b", settings);
    await a.heartbeat(false);
    await b.heartbeat(false);
    await a.saveLive(
      [
        ["pid-a", Buffer.from("A")],
        ["pid-x", Buffer.from("X")],
      ],
      [],
    );
    await a.saveLive([], ["pid-x"]);
    const early = await b.take("pid-a");
    assert.ok(early !== null && "waitMs" in early, `node-a alive: ${JSON.stringify(early)}`);
    assert.ok(early.waitMs > 0 && early.waitMs <= 300);
    assert.equal(await b.take("pid-x"), null, "a removed live state");
    // node-a stops beating (it was killed): after nodeTimeout its sessions can be taken.
    await sleep(400);
    const late = await b.take("pid-a");
    assert.ok(late !== null && "snapshot" in late, `node-a dead: ${JSON.stringify(late)}`);
    assert.equal(late.snapshot.toString(), "A");
    assert.equal(await b.take("pid-a"), null, "consumed on use");
    // A persisted session replaces the live state.
    await b.heartbeat(false);
    await b.saveLive([["pid-b", Buffer.from("live")]], []);
    await b.persist("pid-b", Buffer.from("persisted"));
    const persisted = await a.take("pid-b");
    assert.ok(persisted !== null && "snapshot" in persisted);
    assert.equal(persisted.snapshot.toString(), "persisted");
    assert.equal(await a.take("pid-b"), null);
    // Past the window after its last heartbeat, a dead node's sessions are gone.
    await a.saveLive([["pid-late", Buffer.from("L")]], []);
    await a.heartbeat(false);
    await sleep(settings.window + 100);
    assert.equal(await b.take("pid-late"), null);
  });

  test("bogus pids and offsets: nothing, one bounded lookup each", async (t) => {
    const { h } = open(t);
    const real = await h.append(Buffer.from("r"), false);
    const epoch = real.split(":")[0];
    await h.persist("real-pid", Buffer.from("s"));
    for (let i = 0; i < 200; i++) {
      assert.equal(await h.take(`forged-${i}`), null);
    }
    assert.deepEqual(
      await h.read(`${epoch}:999999:999999-0`),
      { gone: "trimmed" },
      "from the future",
    );
    assert.deepEqual(await h.read(`other:1:1-0`), { gone: "epoch" });
    assert.deepEqual(await h.read(`garbage`), { gone: "trimmed" });
    const taken = await h.take("real-pid");
    assert.ok(taken !== null && "snapshot" in taken, "the real one is untouched");
  });

  test("options are validated", (t) => {
    assert.throws(
      () => new RedisRecoveryLog({ url: env.redis.url, maxLenght: 5 } as never),
      /maxLength/,
    );
    assert.throws(() => new RedisRecoveryLog({ url: "http://x" }), /url/);
    assert.throws(() => new RedisRecoveryLog({ url: env.redis.url, maxLength: 0 }), /maxLength/);
    assert.throws(
      () => new RedisRecoveryLog({ url: env.redis.url, keyPrefix: "a{b" }),
      /keyPrefix/,
    );
    // The adapter's option: a RecoveryLog, and a misspelt key is named.
    const bus = new LocalHub().bus();
    const log = new RedisRecoveryLog({ url: env.redis.url });
    t.after(() => log.close());
    assert.throws(() => createAdapter(bus, { recovery: {} as never }), /recovery/);
    assert.throws(() => createAdapter(bus, { recovry: log } as never), /recovery/);
    assert.doesNotThrow(() => createAdapter(bus, { recovery: log }));
  });
});
