// The API through `switchyard serve` end to end (spawned from source): keys from the config
// file and from the environment (keyEnv), publish and join reaching a real socket.io-client,
// the OpenAPI document served, answers validated against it, and --print-config masking
// the keys.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { freePort, makeTempDir, within } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { runCommand, ServeProcesses } from "../serve-process.ts";
import { checkResponse } from "./json-schema.ts";

const FILE_KEY = "file-key-0123456789abcdef-secret";
const ENV_KEY = "env-key-0123456789abcdef-secret";

const dir = makeTempDir("cli-api-e2e");
const servers = new ServeProcesses(3000);
const opened: ClientSocket[] = [];
after(() => dir.remove());
afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await servers.stopAll();
});

function configFile(): string {
  const file = join(dir.path, "api.json");
  writeFileSync(
    file,
    JSON.stringify({
      api: {
        keys: [
          { name: "file", key: FILE_KEY, scopes: ["publish", "manage"] },
          { name: "env", keyEnv: "SY_E2E_READ_KEY", scopes: ["read"] },
        ],
      },
    }),
  );
  return file;
}

test("serve: the API publishes to, manages and lists real clients", async () => {
  const port = await freePort();
  const p = await servers.start({
    port,
    args: ["--config", configFile()],
    name: "switchyard serve (api)",
    env: { SWITCHYARD_LOG_FORMAT: "json", SY_E2E_READ_KEY: ENV_KEY },
  });
  const url = `http://127.0.0.1:${port}`;
  const doc = (await (await fetch(`${url}/api/v1/openapi.json`)).json()) as Record<string, unknown>;
  assert.equal(doc.openapi, "3.1.0");
  const api = async (
    method: "GET" | "POST",
    path: string,
    key: string | undefined,
    body?: unknown,
  ) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    checkResponse(doc, method, path.split("?")[0] ?? path, res.status, json);
    return { status: res.status, body: json };
  };

  const c = ioc(url, { transports: ["websocket"], reconnection: false, forceNew: true });
  opened.push(c);
  await within(
    new Promise<void>((resolve) => c.once("connect", () => resolve())),
    10_000,
    "connect",
  );
  const got = new Promise<unknown[]>((resolve) =>
    c.once("news", (...args: unknown[]) => resolve(args)),
  );

  let r = await api("POST", "/api/v1/join", FILE_KEY, { sockets: [c.id], join: ["headlines"] });
  assert.equal(r.status, 200);
  r = await api("POST", "/api/v1/publish", FILE_KEY, {
    event: "news",
    data: { title: "hi" },
    rooms: ["headlines"],
  });
  assert.deepEqual(r.body, { ok: true, duplicate: false });
  assert.deepEqual(await within(got, 5000, "news"), [{ title: "hi" }]);

  r = await api("GET", "/api/v1/presence?room=headlines", ENV_KEY);
  assert.deepEqual(r.body, { namespace: "/", counts: { headlines: 1 } });
  r = await api("GET", "/api/v1/rooms", FILE_KEY);
  assert.equal(r.status, 403);
  r = await api("POST", "/api/v1/publish", undefined, { event: "news" });
  assert.equal(r.status, 401);
  assert.ok(!p.stdout().includes(FILE_KEY) && !p.stderr().includes(FILE_KEY), "keys never logged");
});

test("serve --print-config masks the API keys", async () => {
  const out = await runCommand(["serve", "--print-config", "--config", configFile()], {
    SY_E2E_READ_KEY: ENV_KEY,
  });
  assert.equal(out.code, 0);
  assert.match(out.stdout, /"api"/);
  assert.ok(!out.stdout.includes(FILE_KEY), "the key is masked");
  assert.match(out.stdout, /"scopes"/);
});
