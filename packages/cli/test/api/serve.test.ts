// The API through `switchyard serve` end to end (spawned from source): keys from the config
// file and from the environment (keyEnv), publish and join reaching a real socket.io-client,
// the OpenAPI document served, answers validated against it, and --print-config masking
// the keys.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePort,
  httpStatus,
  type ManagedProcess,
  makeTempDir,
  startProcess,
  within,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { checkResponse } from "./json-schema.ts";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const NODE_ARGS = [
  "--conditions=switchyard-source",
  "--import",
  "tsx",
  join(root, "packages/cli/src/main.ts"),
];
const FILE_KEY = "file-key-0123456789abcdef-secret";
const ENV_KEY = "env-key-0123456789abcdef-secret";

const dir = makeTempDir("cli-api-e2e");
const procs: ManagedProcess[] = [];
const opened: ClientSocket[] = [];
after(() => dir.remove());
afterEach(async () => {
  for (const c of opened.splice(0)) c.close();
  await Promise.allSettled(procs.splice(0).map((p) => p.stop({ graceMs: 3000 })));
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
  const p = await startProcess({
    command: process.execPath,
    args: [
      ...NODE_ARGS,
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--config",
      configFile(),
    ],
    cwd: root,
    name: "switchyard serve (api)",
    env: { SWITCHYARD_LOG_FORMAT: "json", SY_E2E_READ_KEY: ENV_KEY },
    ready: async () => (await httpStatus(`http://127.0.0.1:${port}/readyz`)) === 200,
    readyTimeoutMs: 30_000,
  });
  procs.push(p);
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
  const out = await within(
    new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [...NODE_ARGS, "serve", "--print-config", "--config", configFile()],
        {
          cwd: root,
          env: { ...process.env, SY_E2E_READ_KEY: ENV_KEY },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
      });
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, stdout }));
      setTimeout(() => child.kill("SIGKILL"), 25_000).unref();
    }),
    30_000,
    "--print-config",
  );
  assert.equal(out.code, 0);
  assert.match(out.stdout, /"api"/);
  assert.ok(!out.stdout.includes(FILE_KEY), "the key is masked");
  assert.match(out.stdout, /"scopes"/);
});
