/**
 * The client side with a real python-socketio client (Debian python3-socketio): a refused
 * token's connect_error carries the stable code, joins answer through `call`, and an event
 * is answered by a real HTTP backend.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import { runPython } from "@switchyard/test-harness";
import { SignJWT } from "jose";
import { installAuth } from "../../src/auth/auth.js";
import { installClientEvents } from "../../src/auth/client-events.js";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { authSchema, clientEventsSchema } from "../../src/auth/schema.js";
import { type Backend, startBackend, startContext, type TestContext } from "./context.js";

const SCRIPT = fileURLToPath(new URL("./py/client.py", import.meta.url));
const SECRET = "a-test-secret-of-32-characters!!";

let t: TestContext;
let backend: Backend;
let handles: { close(): void }[];

beforeEach(async () => {
  t = await startContext();
  backend = await startBackend((call) => ({
    json: { ack: [{ got: (call.body as { args: unknown[] }).args[0] }] },
  }));
  handles = [];
});
afterEach(async () => {
  for (const h of handles) h.close();
  await t.close();
  await backend.close();
});

test("python-socketio: refusal code, join answers, event answered by the backend", async () => {
  handles.push(
    await installAuth(
      t.ctx,
      authSchema.parse({ jwt: { secret: SECRET }, rooms: { mode: "claims" } }),
    ),
  );
  handles.push(
    await installClientEvents(t.ctx, clientEventsSchema.parse({ webhook: { url: backend.url } })),
  );
  const key = new TextEncoder().encode(SECRET);
  const good = await new SignJWT({ sub: "py", rooms: ["news"] })
    .setProtectedHeader({ alg: "HS256" })
    .sign(key);
  const expired = await new SignJWT({ sub: "py", exp: Math.floor(Date.now() / 1000) - 60 })
    .setProtectedHeader({ alg: "HS256" })
    .sign(key);
  const r = await runPython(SCRIPT, [t.url, expired, good], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as {
    refusal: { message: string; data: { code: string } };
    join_ok: unknown;
    join_refused: { error: { code: string } };
    message: unknown;
  };
  assert.equal(out.refusal.data.code, ClientErrorCode.TokenExpired);
  assert.deepEqual(out.join_ok, { ok: true, room: "news" });
  assert.equal(out.join_refused.error.code, ClientErrorCode.RoomForbidden);
  assert.deepEqual(out.message, { got: { text: "from python" } });
});
