/**
 * The connect webhook against a real HTTP backend: allow with data and rooms, deny with a
 * reason, and every backend failure (timeout, 500, oversized or malformed answer) refused
 * with a stable code, counted — never a hang or a crash.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import type { Socket as ClientSocket } from "socket.io-client";
import { installAuth } from "../../src/auth/auth.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { authSchema } from "../../src/auth/schema.js";
import {
  type Backend,
  client,
  connected,
  refusedCode,
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

async function install(hook: Record<string, unknown> = {}) {
  const h = await installAuth(
    t.ctx,
    authSchema.parse({
      connectWebhook: {
        url: backend.url,
        timeoutMs: 400,
        maxResponseBytes: 1024,
        headers: { authorization: "Bearer backend-key" },
        ...hook,
      },
    }),
  );
  handles.push(h);
  return h;
}

test("allow: the handshake reaches the backend; data lands in socket.data, rooms are joined", async () => {
  backend.handler = () => ({
    json: { allow: true, data: { user: "ada", role: "admin" }, rooms: ["team:1", "", 7] },
  });
  await install();
  const seen = new Promise<{ data: unknown; rooms: string[] }>((resolve) =>
    t.ctx.io.on("connection", (s) => resolve({ data: s.data, rooms: [...s.rooms] })),
  );
  await connected(
    client(t.url, opened, { auth: { token: "opaque", hello: "world" }, query: { v: "2" } }),
  );
  const { data, rooms } = await seen;
  assert.deepEqual(data, { user: "ada", role: "admin" });
  assert.ok(rooms.includes("team:1"));
  assert.equal(rooms.length, 2); // own id + team:1 (bad entries dropped)
  const call = backend.calls[0]!;
  assert.equal(call.headers.authorization, "Bearer backend-key");
  const body = call.body as Record<string, unknown>;
  assert.equal(body.namespace, "/");
  assert.equal(body.address, "127.0.0.1");
  assert.deepEqual(body.auth, { token: "opaque", hello: "world" }); // no JWT: the backend checks the token
  assert.equal((body.query as Record<string, string>).v, "2");
});

test("deny: connect_error with SY_ERR_AUTH_DENIED and the backend's reason", async () => {
  backend.handler = () => ({ json: { allow: false, reason: "banned" } });
  const h = await install();
  const s = client(t.url, opened);
  const err = await connected(s).then(
    () => assert.fail("connected"),
    (e: Error & { data?: { code?: string } }) => e,
  );
  assert.equal(err.data?.code, ClientErrorCode.Denied);
  assert.equal(err.message, "banned");
  assert.equal(h.stats.refusals[ClientErrorCode.Denied], 1);
});

test("backend failures are refusals with a reason: timeout, 500, oversized, not JSON, no allow", async () => {
  const h = await install();
  const cases: [string, Backend["handler"], string][] = [
    ["timeout", () => "hang", ClientErrorCode.BackendTimeout],
    ["500", () => ({ status: 500, json: { allow: true } }), ClientErrorCode.BackendUnavailable],
    [
      "oversized",
      () => ({ json: { allow: true, data: { pad: "x".repeat(5000) } } }),
      ClientErrorCode.BackendUnavailable,
    ],
    ["not JSON", () => ({ raw: "allow" }), ClientErrorCode.BackendUnavailable],
    ["no allow", () => ({ json: { ok: true } }), ClientErrorCode.BackendUnavailable],
    [
      "redirect",
      () => ({ status: 302, json: { allow: true } }),
      ClientErrorCode.BackendUnavailable,
    ],
  ];
  for (const [what, handler, code] of cases) {
    backend.handler = handler;
    const t0 = Date.now();
    assert.equal(await refusedCode(client(t.url, opened)), code, what);
    assert.ok(Date.now() - t0 < 2000, `${what} answered within the bound`);
  }
  assert.equal(h.stats.refusals[ClientErrorCode.BackendTimeout], 1);
  assert.equal(h.stats.refusals[ClientErrorCode.BackendUnavailable], 5);
  assert.equal(h.stats.accepted, 0);
  backend.handler = () => ({ json: { allow: true } });
  await connected(client(t.url, opened));
});

test("a dead backend (connection refused) is a refusal too", async () => {
  await backend.close();
  await install();
  assert.equal(await refusedCode(client(t.url, opened)), ClientErrorCode.BackendUnavailable);
});

test("bounded concurrency: beyond maxConcurrent + maxQueued, refused at once as busy", async () => {
  backend.handler = () => "hang";
  const h = await install({ maxConcurrent: 1, maxQueued: 1, timeoutMs: 1500 });
  const first = client(t.url, opened);
  const second = client(t.url, opened);
  const firstCode = refusedCode(first);
  const secondCode = refusedCode(second);
  // Wait until both occupy the pool (one in flight, one queued), then a third is refused at once.
  for (let i = 0; i < 100 && h.webhooks.connect!.stats.queued < 1; i++)
    await new Promise((r) => setTimeout(r, 20));
  const t0 = Date.now();
  assert.equal(await refusedCode(client(t.url, opened)), ClientErrorCode.BackendBusy);
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(await firstCode, ClientErrorCode.BackendTimeout);
  assert.equal(await secondCode, ClientErrorCode.BackendTimeout);
});
