/**
 * The dashboard from the command (spawned from source): enabled by flags with the key from
 * the environment, the key masked by --print-config, refused without it, the snapshot
 * counting a real client; enabling it without a key fails at start-up naming the key.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePort,
  httpStatus,
  type ManagedProcess,
  startProcess,
  within,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import type { DashboardSnapshot } from "../../src/dashboard/index.js";

const root = fileURLToPath(new URL("../../../../", import.meta.url));
const NODE_ARGS = [
  "--conditions=switchyard-source",
  "--import",
  "tsx",
  join(root, "packages/cli/src/main.ts"),
];
const KEY = "serve-dashboard-admin-key-0123456789";

const procs: ManagedProcess[] = [];
const clients: ClientSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.allSettled(procs.splice(0).map((p) => p.stop({ graceMs: 3000 })));
});

test("serve --dashboard.enabled true with SWITCHYARD_DASHBOARD__ADMIN_KEY", async () => {
  const env = {
    ...process.env,
    SWITCHYARD_LOG_FORMAT: "json",
    SWITCHYARD_DASHBOARD__ADMIN_KEY: KEY,
  };
  const printed = spawnSync(
    process.execPath,
    [...NODE_ARGS, "serve", "--print-config", "--dashboard.enabled", "true"],
    { cwd: root, env, encoding: "utf8", timeout: 25_000 },
  );
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal(printed.stdout.includes(KEY), false, "the admin key is masked");
  assert.equal(
    (JSON.parse(printed.stdout) as { dashboard: { enabled: boolean } }).dashboard.enabled,
    true,
  );

  const noKey = spawnSync(
    process.execPath,
    [...NODE_ARGS, "serve", "--dashboard.enabled", "true"],
    {
      cwd: root,
      env: { ...process.env, SWITCHYARD_LOG_FORMAT: "json" },
      encoding: "utf8",
      timeout: 25_000,
    },
  );
  assert.equal(noKey.status, 2);
  assert.match(noKey.stderr, /dashboard\.adminKey/);

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
      "--dashboard.enabled",
      "true",
    ],
    cwd: root,
    name: "switchyard serve (dashboard)",
    env: { SWITCHYARD_LOG_FORMAT: "json", SWITCHYARD_DASHBOARD__ADMIN_KEY: KEY },
    ready: async () => (await httpStatus(`http://127.0.0.1:${port}/readyz`)) === 200,
    readyTimeoutMs: 30_000,
  });
  procs.push(p);
  const base = `http://127.0.0.1:${port}/dashboard`;
  assert.equal((await fetch(base)).status, 200);
  assert.equal((await fetch(`${base}/api/snapshot`)).status, 401);

  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, transports: ["websocket"] });
  clients.push(c);
  await within(
    new Promise<void>((resolve) => c.once("connect", () => resolve())),
    10_000,
    "connect",
  );
  const res = await fetch(`${base}/api/snapshot`, { headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(res.status, 200);
  const s = (await res.json()) as DashboardSnapshot;
  assert.equal(s.transports.websocket, 1);
  assert.equal(s.namespaces.find((n) => n.name === "/")?.sockets, 1);
});
