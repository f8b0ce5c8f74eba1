/**
 * Rooms clients ask for with `switchyard:join`: from token claims (exact names, `*`
 * patterns, configured `{claim}` patterns), from a subscribe webhook, or never (API only).
 * A refusal is an ack error, never a silent success; the room membership is checked
 * server-side.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { SignJWT } from "jose";
import type { Socket as ClientSocket } from "socket.io-client";
import { installAuth } from "../../src/auth/auth.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { JOIN_EVENT, LEAVE_EVENT } from "../../src/auth/rooms.js";
import { authSchema } from "../../src/auth/schema.js";
import {
  type Backend,
  client,
  connected,
  startBackend,
  startContext,
  type TestContext,
} from "./context.js";

const SECRET = "a-test-secret-of-32-characters!!";
const token = (claims: Record<string, unknown>) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(SECRET));

type Answer = { ok?: true; room?: string; error?: { code: string; message: string } };

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

async function install(raw: unknown) {
  handles.push(await installAuth(t.ctx, authSchema.parse(raw)));
}

function join(s: ClientSocket, room: unknown, event = JOIN_EVENT): Promise<Answer> {
  return s.timeout(3000).emitWithAck(event, room) as Promise<Answer>;
}

async function serverRooms(): Promise<string[]> {
  const [socket] = await t.ctx.io.fetchSockets();
  return [...(socket?.rooms ?? [])];
}

test("mode api (default): every client join is refused with an ack error", async () => {
  await install({});
  const s = client(t.url, opened);
  await connected(s);
  const answer = await join(s, "news");
  assert.equal(answer.error?.code, ClientErrorCode.RoomForbidden);
  assert.ok(!(await serverRooms()).includes("news"));
});

test("mode claims: exact names, * patterns, {claim} patterns; others refused; leave works", async () => {
  await install({
    jwt: { secret: SECRET },
    rooms: { mode: "claims", allow: ["user:{sub}", "public:*"] },
  });
  const s = client(t.url, opened, {
    auth: { token: await token({ sub: "42", rooms: ["news", "ticker:*"] }) },
  });
  await connected(s);
  for (const room of ["news", "ticker:AAPL", "user:42", "public:lobby"]) {
    assert.deepEqual(await join(s, room), { ok: true, room }, room);
  }
  for (const room of ["newsX", "user:43", "ticker", "admin"]) {
    assert.equal((await join(s, room)).error?.code, ClientErrorCode.RoomForbidden, room);
  }
  for (const room of [42, "", "x".repeat(300), null]) {
    assert.equal((await join(s, room)).error?.code, ClientErrorCode.RoomInvalid, String(room));
  }
  assert.deepEqual((await serverRooms()).filter((r) => r !== s.id).sort(), [
    "news",
    "public:lobby",
    "ticker:AAPL",
    "user:42",
  ]);
  assert.deepEqual(await join(s, "news", LEAVE_EVENT), { ok: true, room: "news" });
  assert.equal((await join(s, s.id, LEAVE_EVENT)).error?.code, ClientErrorCode.RoomInvalid);
  assert.ok(!(await serverRooms()).includes("news"));
});

test("a claim pattern cannot be widened by a * inside a claim value", async () => {
  await install({ jwt: { secret: SECRET }, rooms: { mode: "claims", allow: ["user:{sub}"] } });
  const s = client(t.url, opened, { auth: { token: await token({ sub: "*" }) } });
  await connected(s);
  assert.equal((await join(s, "user:someone")).error?.code, ClientErrorCode.RoomForbidden);
});

test("maxRoomsPerSocket bounds client joins", async () => {
  await install({ jwt: { secret: SECRET }, rooms: { mode: "claims", maxRoomsPerSocket: 2 } });
  const s = client(t.url, opened, { auth: { token: await token({ rooms: ["*"] }) } });
  await connected(s);
  assert.equal((await join(s, "a")).ok, true);
  assert.equal((await join(s, "b")).ok, true);
  assert.equal((await join(s, "c")).error?.code, ClientErrorCode.RoomForbidden);
});

test("mode webhook: the backend decides; its failures are ack errors", async () => {
  const b = await startBackend((call) => {
    const body = call.body as { room: string; socket: { data: { sub: string } } };
    if (body.room === "slow") return "hang";
    if (body.room === "boom") return { status: 500 };
    return { json: { allow: body.room === `private:${body.socket.data.sub}` } };
  });
  backend = b;
  await install({
    jwt: { secret: SECRET },
    rooms: { mode: "webhook", webhook: { url: b.url, timeoutMs: 300 } },
  });
  const s = client(t.url, opened, { auth: { token: await token({ sub: "7" }) } });
  await connected(s);
  assert.deepEqual(await join(s, "private:7"), { ok: true, room: "private:7" });
  assert.equal((await join(s, "private:8")).error?.code, ClientErrorCode.RoomForbidden);
  assert.equal((await join(s, "slow")).error?.code, ClientErrorCode.BackendTimeout);
  assert.equal((await join(s, "boom")).error?.code, ClientErrorCode.BackendUnavailable);
  const asked = b.calls.map((c) => (c.body as { action: string; room: string }).room);
  assert.deepEqual(asked, ["private:7", "private:8", "slow", "boom"]);
});
