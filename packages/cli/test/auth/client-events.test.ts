/**
 * Client → backend events against a real HTTP backend: the backend's answer becomes the
 * client's ack (one POST per event, or batches); failures ack an error; a slow backend
 * never stalls other clients; per-socket pending events are bounded.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { installClientEvents } from "../../src/auth/client-events.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { clientEventsSchema } from "../../src/auth/schema.js";
import {
  type Backend,
  client,
  connected,
  startBackend,
  startContext,
  type TestContext,
} from "./context.js";

let t: TestContext;
let backend: Backend;
let opened: ClientSocket[];
let handles: { close(): void }[];

beforeEach(async () => {
  t = await startContext();
  backend = await startBackend();
  opened = [];
  handles = [];
});
afterEach(async () => {
  for (const s of opened) s.close();
  for (const h of handles) h.close();
  await t.close();
  await backend.close();
});

async function install(raw: Record<string, unknown> = {}, hook: Record<string, unknown> = {}) {
  const h = await installClientEvents(
    t.ctx,
    clientEventsSchema.parse({ webhook: { url: backend.url, timeoutMs: 500, ...hook }, ...raw }),
  );
  handles.push(h);
  return h;
}

type EventBody = {
  event: string;
  args: unknown[];
  ack: boolean;
  socket: { id: string; nsp: string; data: unknown };
};

test("one POST per event; { ack: [...] } spreads into the client's ack; binary as $binary", async () => {
  backend.handler = (call) => {
    const b = call.body as EventBody;
    if (b.event === "add")
      return { json: { ack: [(b.args[0] as number) + (b.args[1] as number), "sum"] } };
    if (b.event === "fail")
      return { json: { error: { code: "NOPE", message: "backend said no" } } };
    return { json: { echoed: b.args } };
  };
  const h = await install();
  t.ctx.io.on("connection", (s) => {
    s.data = { user: "ada" };
  });
  const s = client(t.url, opened);
  await connected(s);
  const answer = await new Promise<unknown[]>((resolve) =>
    s.emit("add", 2, 3, (...a: unknown[]) => resolve(a)),
  );
  assert.deepEqual(answer, [5, "sum"]);
  assert.deepEqual(await s.timeout(3000).emitWithAck("fail"), {
    error: { code: "NOPE", message: "backend said no" },
  });
  assert.deepEqual(await s.timeout(3000).emitWithAck("echo", Buffer.from("hi")), {
    echoed: [{ $binary: Buffer.from("hi").toString("base64") }],
  });
  s.emit("fire-and-forget", { x: 1 });
  for (let i = 0; i < 100 && backend.calls.length < 4; i++)
    await new Promise((r) => setTimeout(r, 20));
  const first = backend.calls[0]!.body as EventBody;
  assert.equal(first.ack, true);
  assert.deepEqual(first.socket, { id: s.id, nsp: "/", data: { user: "ada" } });
  assert.deepEqual(backend.calls[3]!.body, {
    event: "fire-and-forget",
    args: [{ x: 1 }],
    ack: false,
    socket: first.socket,
  });
  assert.equal(h.stats.forwarded, 4);
});

test("only the configured events are forwarded; the others reach the app's handlers", async () => {
  await install({ events: ["chat"] });
  const local = new Promise<void>((resolve) =>
    t.ctx.io.on("connection", (sk) => sk.on("other", () => resolve())),
  );
  const s = client(t.url, opened);
  await connected(s);
  s.emit("other");
  await local;
  await s.timeout(3000).emitWithAck("chat", "hi");
  assert.deepEqual(
    backend.calls.map((c) => (c.body as EventBody).event),
    ["chat"],
  );
});

test('"*" forwards every event except the reserved switchyard:* ones', async () => {
  await install();
  const s = client(t.url, opened);
  await connected(s);
  s.emit("switchyard:join", "room");
  await s.timeout(3000).emitWithAck("a");
  await s.timeout(3000).emitWithAck("b");
  assert.deepEqual(
    backend.calls.map((c) => (c.body as EventBody).event),
    ["a", "b"],
  );
});

test("a slow backend acks a timeout error and never stalls another client", async () => {
  backend.handler = (call) =>
    (call.body as EventBody).event === "slow" ? "hang" : { json: { ack: ["fast"] } };
  await install({}, { timeoutMs: 800 });
  const slow = client(t.url, opened);
  const fast = client(t.url, opened);
  await Promise.all([connected(slow), connected(fast)]);
  const slowAnswer = slow.timeout(3000).emitWithAck("slow");
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) assert.equal(await fast.timeout(3000).emitWithAck("quick"), "fast");
  assert.ok(
    performance.now() - t0 < 700,
    "the fast client's acks came before the slow one timed out",
  );
  const err = (await slowAnswer) as { error: { code: string } };
  assert.equal(err.error.code, ClientErrorCode.BackendTimeout);
});

test("per-socket pending events are bounded: beyond maxPendingPerSocket, acked busy at once", async () => {
  backend.handler = () => "hang";
  await install({ maxPendingPerSocket: 2 }, { timeoutMs: 1500 });
  const s = client(t.url, opened);
  await connected(s);
  const a = s.timeout(3000).emitWithAck("e");
  const b = s.timeout(3000).emitWithAck("e");
  const third = (await s.timeout(3000).emitWithAck("e")) as { error: { code: string } };
  assert.equal(third.error.code, ClientErrorCode.BackendBusy);
  assert.equal(
    ((await a) as { error: { code: string } }).error.code,
    ClientErrorCode.BackendTimeout,
  );
  assert.equal(
    ((await b) as { error: { code: string } }).error.code,
    ClientErrorCode.BackendTimeout,
  );
  // Pending slots are given back: the socket can forward again.
  backend.handler = () => ({ json: { ack: [1] } });
  assert.equal(await s.timeout(3000).emitWithAck("e"), 1);
});

test("batches: { events: [...] } answered by { results: [...] } in order; a bad batch answer fails each", async () => {
  let bad = false;
  backend.handler = (call) => {
    const events = (call.body as { events: EventBody[] }).events;
    if (bad) return { json: { results: [] } };
    return { json: { results: events.map((e) => ({ ack: [e.args[0]] })) } };
  };
  await install({ batchSize: 5, batchDelayMs: 50 });
  const s = client(t.url, opened);
  await connected(s);
  const answers = await Promise.all(
    [1, 2, 3, 4, 5, 6, 7].map((n) => s.timeout(3000).emitWithAck("n", n)),
  );
  assert.deepEqual(answers, [1, 2, 3, 4, 5, 6, 7]);
  const sizes = backend.calls.map((c) => (c.body as { events: unknown[] }).events.length);
  assert.deepEqual(sizes, [5, 2]);
  bad = true;
  const err = (await s.timeout(3000).emitWithAck("n", 8)) as { error: { code: string } };
  assert.equal(err.error.code, ClientErrorCode.BackendUnavailable);
});
