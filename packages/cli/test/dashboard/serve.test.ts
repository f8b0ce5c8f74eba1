/**
 * The dashboard from the command (spawned from source): enabled by flags with the key from
 * the environment, the key masked by --print-config, refused without it, the snapshot
 * counting a real client; enabling it without a key fails at start-up naming the key.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { afterEach, test } from "node:test";
import { freePort, within } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import type { DashboardSnapshot } from "../../src/dashboard/index.js";
import { NODE_ARGS, ROOT as root, ServeProcesses } from "../serve-process.ts";

const KEY = "serve-dashboard-admin-key-0123456789";

const servers = new ServeProcesses(3000);
const clients: ClientSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await servers.stopAll();
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
  await servers.start({
    port,
    args: ["--dashboard.enabled", "true"],
    name: "switchyard serve (dashboard)",
    env: { SWITCHYARD_LOG_FORMAT: "json", SWITCHYARD_DASHBOARD__ADMIN_KEY: KEY },
  });
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
