/**
 * Per-connection rate limits with real clients: past the events/s bucket or the bytes/s
 * bucket the socket gets `switchyard:disconnect` with the documented code, then
 * `io server disconnect`; a client within its limits is unaffected; events over the limit
 * never reach the backend.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { installClientEvents } from "../../src/auth/client-events.js";
import { ClientErrorCode, DISCONNECT_NOTICE_EVENT } from "../../src/auth/codes.js";
import { installLimits, TokenBucket } from "../../src/auth/limits.js";
import { clientEventsSchema, limitsSchema } from "../../src/auth/schema.js";
import {
  type Backend,
  client,
  connected,
  next,
  startBackend,
  startContext,
  type TestContext,
} from "./context.js";

let t: TestContext;
let opened: ClientSocket[];
let handles: { close(): void }[];
let backend: Backend | undefined;

beforeEach(async () => {
  t = await startContext();
  opened = [];
  handles = [];
  backend = undefined;
});
afterEach(async () => {
  for (const s of opened) s.close();
  for (const h of handles) h.close();
  await t.close();
  await backend?.close();
});

test("token bucket: burst, then refill at the rate", async () => {
  const b = new TokenBucket(100, 3);
  assert.equal(b.take(1) && b.take(1) && b.take(1), true);
  assert.equal(b.take(1), false);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(b.take(1), true);
  assert.equal(b.take(5), false);
});

test("events/s: past the burst the socket is told SY_ERR_RATE_LIMITED and disconnected; others unaffected", async () => {
  const h = await installLimits(
    t.ctx,
    limitsSchema.parse({ eventsPerSecond: 5, eventsBurst: 10, bytesPerSecond: 0 }),
  );
  handles.push(h);
  let handled = 0;
  t.ctx.io.on("connection", (s) => s.on("tick", () => handled++));
  const noisy = client(t.url, opened);
  const calm = client(t.url, opened);
  await Promise.all([connected(noisy), connected(calm)]);
  const notice = next<[{ code: string; message: string }]>(noisy, DISCONNECT_NOTICE_EVENT);
  const gone = next<[string]>(noisy, "disconnect");
  for (let i = 0; i < 50; i++) noisy.emit("tick");
  assert.equal((await notice)[0].code, ClientErrorCode.RateLimited);
  assert.equal((await gone)[0], "io server disconnect");
  assert.ok(handled <= 11, `at most the burst was handled (${handled})`);
  assert.equal(h.stats.eventLimitDisconnects, 1);
  assert.equal(h.stats.refusals[ClientErrorCode.RateLimited], 1);
  // The calm client still round-trips.
  const echoed = next(calm, "pong!");
  const [server] = (await t.ctx.io.fetchSockets()).filter((s) => s.id === calm.id);
  server!.emit("pong!");
  await echoed;
  assert.equal(calm.connected, true);
});

test("events over the limit never reach the backend webhook", async () => {
  const b = await startBackend(() => ({ json: { ack: ["ok"] } }));
  backend = b;
  // Client events installed first on purpose: the limit holds whatever the order.
  handles.push(
    await installClientEvents(t.ctx, clientEventsSchema.parse({ webhook: { url: b.url } })),
  );
  handles.push(
    await installLimits(
      t.ctx,
      limitsSchema.parse({ eventsPerSecond: 1, eventsBurst: 3, bytesPerSecond: 0 }),
    ),
  );
  const s = client(t.url, opened);
  await connected(s);
  const gone = next(s, "disconnect");
  for (let i = 0; i < 20; i++) s.emit("e", i);
  await gone;
  // Give in-flight POSTs a moment to land (bounded), then count.
  for (let i = 0; i < 10 && b.calls.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(b.calls.length, 3);
});

test("bytes/s: a connection sending past its byte bucket is told SY_ERR_BYTE_RATE_LIMITED", async () => {
  const h = await installLimits(
    t.ctx,
    limitsSchema.parse({ eventsPerSecond: 0, bytesPerSecond: 10_000, bytesBurst: 50_000 }),
  );
  handles.push(h);
  const s = client(t.url, opened);
  await connected(s);
  const notice = next<[{ code: string }]>(s, DISCONNECT_NOTICE_EVENT);
  const gone = next<[string]>(s, "disconnect");
  const chunk = "x".repeat(10_000);
  for (let i = 0; i < 10; i++) s.emit("blob", chunk);
  assert.equal((await notice)[0].code, ClientErrorCode.ByteRateLimited);
  assert.equal((await gone)[0], "io server disconnect");
  assert.equal(h.stats.byteLimitDisconnects, 1);
});

test("over HTTP long-polling too: the byte and event limits hold", async () => {
  const h = await installLimits(
    t.ctx,
    limitsSchema.parse({
      eventsPerSecond: 5,
      eventsBurst: 5,
      bytesPerSecond: 10_000,
      bytesBurst: 30_000,
    }),
  );
  handles.push(h);
  const bytes = client(t.url, opened, { transports: ["polling"] });
  const events = client(t.url, opened, { transports: ["polling"] });
  await Promise.all([connected(bytes), connected(events)]);
  const byteNotice = next<[{ code: string }]>(bytes, DISCONNECT_NOTICE_EVENT, 5000);
  const eventNotice = next<[{ code: string }]>(events, DISCONNECT_NOTICE_EVENT, 5000);
  const chunk = "y".repeat(10_000);
  for (let i = 0; i < 6; i++) bytes.emit("blob", chunk);
  for (let i = 0; i < 20; i++) events.emit("tick");
  assert.equal((await byteNotice)[0].code, ClientErrorCode.ByteRateLimited);
  assert.equal((await eventNotice)[0].code, ClientErrorCode.RateLimited);
});

test("limits 0 turn a limit off; bad values are refused by the schema", () => {
  assert.equal(limitsSchema.parse({ eventsPerSecond: 0 }).eventsPerSecond, 0);
  assert.throws(() => limitsSchema.parse({ eventsPerSecond: -1 }));
  assert.throws(() => limitsSchema.parse({ eventsPerSec: 5 }), /eventsPerSec/);
});
