// examples/flask-backend end to end with its one command (start.mjs): real Flask (Debian's
// python3-flask) issuing JWTs, receiving client events by webhook and publishing over the
// switchyard API; real socket.io-client users.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePort,
  httpStatus,
  type ManagedProcess,
  requirePythonModules,
  startProcess,
  within,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";

const START = fileURLToPath(new URL("../start.mjs", import.meta.url));
const opened: ClientSocket[] = [];
let proc: ManagedProcess | undefined;

after(async () => {
  for (const c of opened.splice(0)) c.close();
  await proc?.stop({ graceMs: 8000 });
});

function connect(url: string, auth: Record<string, unknown>): ClientSocket {
  const c = ioc(url, { transports: ["websocket"], reconnection: false, forceNew: true, auth });
  opened.push(c);
  return c;
}

function once(c: ClientSocket, event: string): Promise<unknown[]> {
  return within(
    new Promise((resolve) => c.once(event, (...args: unknown[]) => resolve(args))),
    // Generous: on a loaded machine Flask's first answers (JWT checks, webhooks) are slow.
    20_000,
    event,
  );
}

test("flask-backend: login, join and chat through the Flask webhook, notify over the API", async () => {
  requirePythonModules(["flask"]); // a clear error naming python3-flask if it is missing
  const [sy, fl] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${sy}`;
  const flask = `http://127.0.0.1:${fl}`;
  proc = await startProcess({
    command: process.execPath,
    args: [START],
    name: "flask-backend start.mjs",
    env: { SWITCHYARD_PORT: String(sy), FLASK_PORT: String(fl), SWITCHYARD_LOG_FORMAT: "json" },
    ready: async () =>
      (await httpStatus(`${url}/readyz`)) === 200 && (await httpStatus(`${flask}/health`)) === 200,
    readyTimeoutMs: 40_000,
  });

  const login = async (user: string): Promise<string> => {
    const res = await fetch(`${flask}/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: string }).token;
  };

  const refused = connect(url, {});
  const err = (await once(refused, "connect_error"))[0] as Error;
  assert.ok(err instanceof Error);

  // Both tokens first: awaiting bob's login after ada's socket exists could let ada's
  // `connect` fire before anyone listens for it.
  const [adaToken, bobToken] = [await login("ada"), await login("bob")];
  const ada = connect(url, { token: adaToken });
  const bob = connect(url, { token: bobToken });
  await Promise.all([once(ada, "connect"), once(bob, "connect")]);
  assert.deepEqual(await ada.timeout(10_000).emitWithAck("join"), {
    ok: true,
    rooms: ["chat", "user:ada"],
  });
  assert.deepEqual(await bob.timeout(10_000).emitWithAck("join"), {
    ok: true,
    rooms: ["chat", "user:bob"],
  });

  const adaGot: unknown[] = [];
  ada.on("message", (m: unknown) => adaGot.push(m));
  const bobGets = once(bob, "message");
  assert.deepEqual(await ada.timeout(10_000).emitWithAck("message", "hello bob"), { ok: true });
  assert.deepEqual(await bobGets, [{ from: "ada", text: "hello bob" }]);

  const adaNotified: unknown[] = [];
  ada.on("notification", (n: unknown) => adaNotified.push(n));
  const bobNotified = once(bob, "notification");
  const res = await fetch(`${flask}/notify/bob`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ order: 17, status: "shipped" }),
  });
  assert.deepEqual(await res.json(), { ok: true, duplicate: false });
  assert.deepEqual(await bobNotified, [{ order: 17, status: "shipped" }]);
  // ada was excluded from her own chat message and is not bob: a marker to her proves it.
  const marker = once(ada, "message");
  assert.deepEqual(await bob.timeout(10_000).emitWithAck("message", "hi ada"), { ok: true });
  assert.deepEqual(await marker, [{ from: "bob", text: "hi ada" }]);
  assert.deepEqual(adaGot, [{ from: "bob", text: "hi ada" }]);
  assert.deepEqual(adaNotified, []);
});
