/**
 * The client side through `switchyard serve` end to end (spawned from source): a JWT with
 * room claims, rooms joined by the client, a client event answered by a real HTTP backend
 * as the client's ack (the role of a Flask `@socketio.on`), and --print-config masking
 * this area's secrets.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { freePort, makeTempDir } from "@switchyard/test-harness";
import { SignJWT } from "jose";
import type { Socket as ClientSocket } from "socket.io-client";
import { ClientErrorCode } from "../../src/auth/codes.js";
import { runCommand, ServeProcesses } from "../serve-process.ts";
import { type Backend, client, connected, startBackend } from "./context.js";

const SECRET = "0123456789abcdef0123456789abcdef";

const dir = makeTempDir("cli-auth-e2e");
const servers = new ServeProcesses(3000);
const opened: ClientSocket[] = [];
let backend: Backend | undefined;

after(() => dir.remove());
afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await servers.stopAll();
  await backend?.close();
  backend = undefined;
});

function configFile(name: string, config: unknown): string {
  const file = join(dir.path, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

test("serve: JWT + room claims + client events answered by the backend", async () => {
  const b = await startBackend((call) => {
    const body = call.body as { event: string; args: unknown[]; socket: { data: { sub: string } } };
    return {
      json: { ack: [{ echo: body.args[0], from: body.socket.data.sub, event: body.event }] },
    };
  });
  backend = b;
  const port = await freePort();
  const file = configFile("serve.json", {
    auth: { jwt: { secret: SECRET }, rooms: { mode: "claims", allow: ["user:{sub}"] } },
    clientEvents: { webhook: { url: b.url, timeoutMs: 2000 }, events: ["message"] },
    limits: { eventsPerSecond: 50 },
  });
  await servers.start({
    port,
    args: ["--config", file],
    name: "switchyard serve (clients)",
    env: { SWITCHYARD_LOG_FORMAT: "json" },
  });
  const url = `http://127.0.0.1:${port}`;
  const token = await new SignJWT({ sub: "ada", rooms: ["news"] })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(SECRET));
  const s = client(url, opened, { auth: { token } });
  await connected(s, 10_000);
  assert.deepEqual(await s.timeout(5000).emitWithAck("switchyard:join", "news"), {
    ok: true,
    room: "news",
  });
  assert.deepEqual(await s.timeout(5000).emitWithAck("switchyard:join", "user:ada"), {
    ok: true,
    room: "user:ada",
  });
  const refused = (await s.timeout(5000).emitWithAck("switchyard:join", "user:bob")) as {
    error: { code: string };
  };
  assert.equal(refused.error.code, ClientErrorCode.RoomForbidden);
  assert.deepEqual(await s.timeout(5000).emitWithAck("message", "hello"), {
    echo: "hello",
    from: "ada",
    event: "message",
  });
  assert.equal(b.calls.length, 1);
});

test("--print-config masks the JWT secret and webhook headers", async () => {
  const file = configFile("print.json", {
    auth: { jwt: { secret: SECRET } },
    clientEvents: {
      webhook: {
        url: "http://127.0.0.1:9/hook",
        headers: { authorization: "Bearer backend-token" },
      },
    },
  });
  const out = await runCommand(["serve", "--print-config", "--config", file]);
  assert.equal(out.code, 0, out.stderr);
  assert.ok(!out.stdout.includes(SECRET), "the secret is masked");
  assert.ok(!out.stdout.includes("backend-token"), "webhook headers are masked");
  assert.match(out.stdout, /"limits"/);
});
