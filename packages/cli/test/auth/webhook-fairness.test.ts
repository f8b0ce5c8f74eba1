/**
 * The webhook pool is shared fairly: calls carry a key (socket id, client address); each key
 * gets a bounded share of the in-flight slots and of the queue, waiting keys are served
 * round-robin, and a call waits at most timeoutMs. Real HTTP backend on loopback.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { installAuth } from "../../src/auth/auth.js";
import { installClientEvents } from "../../src/auth/client-events.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { JOIN_EVENT } from "../../src/auth/rooms.js";
import { authSchema, clientEventsSchema } from "../../src/auth/schema.js";
import { perKeyLimit, WebhookClient, type WebhookResult } from "../../src/auth/webhook-client.js";
import {
  type Backend,
  client,
  connected,
  startBackend,
  startContext,
  type TestContext,
} from "./context.js";

let backend: Backend;
let closers: (() => unknown)[];

beforeEach(async () => {
  backend = await startBackend();
  closers = [];
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await backend.close();
});

function hook(over: Partial<ConstructorParameters<typeof WebhookClient>[0]> = {}) {
  const h = new WebhookClient({
    url: backend.url,
    timeoutMs: 1000,
    maxResponseBytes: 65536,
    headers: {},
    maxConcurrent: 16,
    maxQueued: 32,
    ...over,
  });
  closers.push(() => h.close());
  return h;
}

test("perKeyLimit: a sixteenth of the pool, at least 1", () => {
  assert.equal(perKeyLimit(64), 4);
  assert.equal(perKeyLimit(1000), 62);
  assert.equal(perKeyLimit(8), 1);
});

test("one key holds at most its share; its surplus waits (bounded) or is refused busy; other keys go out at once", async () => {
  backend.handler = (call) =>
    (call.body as { who: string }).who === "hung" ? "hang" : { json: { ok: true } };
  // 16 in flight → 1 per key; 32 queued → 2 per key.
  const h = hook({ timeoutMs: 1200 });
  const hung: Promise<WebhookResult>[] = [];
  for (let i = 0; i < 5; i++) hung.push(h.post({ who: "hung" }, "A"));
  const refused = await Promise.race([
    Promise.all(hung.slice(3)),
    new Promise<undefined>((r) => setTimeout(r, 500, undefined)),
  ]);
  assert.ok(refused !== undefined, "calls past the key's queue share are refused at once");
  for (const r of refused) assert.equal(r.ok ? "ok" : r.reason, "busy");
  assert.equal(h.stats.busyPerKey, 2);
  assert.equal(h.stats.inFlight, 1, "key A holds one slot of 16");
  assert.equal(h.stats.queued, 2);
  const t0 = performance.now();
  const others = await Promise.all(
    ["B", "C", "D", "E", "F", "G"].map((k) => h.post({ who: k }, k)),
  );
  const othersMs = performance.now() - t0;
  for (const r of others) assert.equal(r.ok, true);
  assert.ok(
    othersMs < 1000,
    `other keys answered in ${othersMs.toFixed(0)} ms, before A's timeout`,
  );
  // A's in-flight call times out at the backend; its queued ones time out in the queue
  // without being sent.
  const results = await Promise.all(hung.slice(0, 3));
  for (const r of results) assert.equal(r.ok ? "ok" : r.reason, "timeout");
  // A queued call is never sent with (almost) no time left: both fail unsent.
  assert.equal(h.stats.queueTimeout, 2, "the queued calls timed out in the queue");
  const sentByA = backend.calls.filter((c) => (c.body as { who: string }).who === "hung").length;
  assert.equal(sentByA, 1, "queued calls that timed out were never sent");
  assert.deepEqual(
    { inFlight: h.stats.inFlight, queued: h.stats.queued, keys: h.stats.keys },
    { inFlight: 0, queued: 0, keys: 0 },
    "nothing left behind",
  );
});

test("waiting keys are served round-robin, not in arrival order", async () => {
  // One slot in all: every call queues behind the first; the order they reach the backend
  // alternates between keys although A's calls all arrived first.
  const release: (() => void)[] = [];
  backend.handler = () =>
    new Promise((resolve) => release.push(() => resolve({ json: { ok: true } })));
  const h = hook({ maxConcurrent: 1, maxQueued: 64, timeoutMs: 5000 });
  const done: Promise<WebhookResult>[] = [];
  done.push(h.post({ k: "A", i: 0 }, "A"));
  for (let i = 1; i <= 3; i++) done.push(h.post({ k: "A", i }, "A"));
  for (let i = 0; i < 3; i++) done.push(h.post({ k: "B", i }, "B"));
  for (let n = 0; n < 7; n++) {
    const deadline = Date.now() + 3000;
    while (release.length === 0) {
      assert.ok(Date.now() < deadline, "the next call reached the backend");
      await new Promise((r) => setTimeout(r, 5));
    }
    release.shift()?.();
  }
  for (const r of await Promise.all(done)) assert.equal(r.ok, true);
  const order = backend.calls.map((c) => (c.body as { k: string }).k).join("");
  assert.equal(order, "ABABABA");
});

test("client events: 4 sockets whose events hang hold a few slots each; the others' events are answered before the hung ones time out", async () => {
  const t: TestContext = await startContext();
  closers.push(() => t.close());
  backend.handler = (call) =>
    (call.body as { event: string }).event === "stuck" ? "hang" : { json: { ack: ["fast"] } };
  // The defaults: 64 in flight, 1000 queued, 16 pending per socket.
  const h = await installClientEvents(
    t.ctx,
    clientEventsSchema.parse({ webhook: { url: backend.url, timeoutMs: 2000 } }),
  );
  closers.push(() => h.close());
  const opened: ClientSocket[] = [];
  closers.push(() => {
    for (const s of opened) s.close();
  });
  const hung = Array.from({ length: 4 }, () => client(t.url, opened));
  const others = Array.from({ length: 8 }, () => client(t.url, opened));
  await Promise.all([...hung, ...others].map((s) => connected(s)));
  let firstHungAnswer = Number.POSITIVE_INFINITY;
  const hungAnswers: Promise<unknown>[] = [];
  for (const s of hung)
    for (let i = 0; i < 16; i++)
      hungAnswers.push(
        s
          .timeout(5000)
          .emitWithAck("stuck", i)
          .then((a) => {
            firstHungAnswer = Math.min(firstHungAnswer, performance.now());
            return a;
          }),
      );
  // Wait until the hung sockets hold what they may (64 events: 16 sent, 48 queued).
  const deadline = Date.now() + 3000;
  while (h.webhook!.stats.inFlight + h.webhook!.stats.queued < 64) {
    assert.ok(Date.now() < deadline, "the hung sockets' events reached the pool");
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(h.webhook!.stats.inFlight, 4 * perKeyLimit(64), "4 slots per hung socket");
  let lastOtherAnswer = 0;
  const t0 = performance.now();
  await Promise.all(
    others.flatMap((s) =>
      Array.from({ length: 4 }, async (_, i) => {
        assert.equal(await s.timeout(5000).emitWithAck("chat", i), "fast");
        lastOtherAnswer = Math.max(lastOtherAnswer, performance.now());
      }),
    ),
  );
  const ms = lastOtherAnswer - t0;
  const answers = (await Promise.all(hungAnswers)) as { error: { code: string } }[];
  for (const a of answers) assert.equal(a.error.code, ClientErrorCode.BackendTimeout);
  assert.ok(
    lastOtherAnswer < firstHungAnswer,
    `the other sockets' 32 events (answered within ${ms.toFixed(0)} ms) came before the hung ones timed out`,
  );
  assert.deepEqual(
    { inFlight: h.webhook!.stats.inFlight, queued: h.webhook!.stats.queued },
    { inFlight: 0, queued: 0 },
  );
  console.log(`# others' 32 events answered in ${ms.toFixed(0)} ms while 4 sockets hung 64`);
});

test("subscribe webhook: a socket whose joins hang holds its share; its surplus is refused busy at once; another socket's join is answered", async () => {
  const t: TestContext = await startContext();
  closers.push(() => t.close());
  backend.handler = (call) =>
    (call.body as { room: string }).room === "stuck" ? "hang" : { json: { allow: true } };
  // 16 in flight → 1 per socket; 32 queued → 2 per socket.
  const h = await installAuth(
    t.ctx,
    authSchema.parse({
      rooms: {
        mode: "webhook",
        webhook: { url: backend.url, timeoutMs: 1500, maxConcurrent: 16, maxQueued: 32 },
      },
    }),
  );
  closers.push(() => h.close());
  const opened: ClientSocket[] = [];
  closers.push(() => {
    for (const s of opened) s.close();
  });
  const hung = client(t.url, opened);
  const other = client(t.url, opened);
  await Promise.all([connected(hung), connected(other)]);
  type Answer = { ok?: true; error?: { code: string } };
  const stuck = Array.from(
    { length: 5 },
    () => hung.timeout(5000).emitWithAck(JOIN_EVENT, "stuck") as Promise<Answer>,
  );
  const codes = await Promise.race([
    Promise.all(stuck.slice(3)),
    new Promise<undefined>((r) => setTimeout(r, 1000, undefined)),
  ]);
  assert.ok(codes !== undefined, "joins past the socket's share are refused at once");
  for (const a of codes) assert.equal(a.error?.code, ClientErrorCode.BackendBusy);
  const t0 = performance.now();
  assert.deepEqual(await other.timeout(5000).emitWithAck(JOIN_EVENT, "open"), {
    ok: true,
    room: "open",
  });
  const ms = performance.now() - t0;
  let firstStuckAt = Number.POSITIVE_INFINITY;
  const answers = await Promise.all(
    stuck.slice(0, 3).map((p) =>
      p.then((a) => {
        firstStuckAt = Math.min(firstStuckAt, performance.now());
        return a;
      }),
    ),
  );
  for (const a of answers) assert.equal(a.error?.code, ClientErrorCode.BackendTimeout);
  assert.ok(firstStuckAt - t0 > ms, `the other socket's join (${ms.toFixed(0)} ms) came first`);
  assert.equal(h.webhooks.subscribe?.stats.busyPerKey, 2);
});
