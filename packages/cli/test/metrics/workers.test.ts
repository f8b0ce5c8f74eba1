/**
 * `switchyard serve --workers 2 --metrics.port P` end to end (spawned from source): the
 * primary serves both workers' series aggregated — connections made over the shared port,
 * spread over the workers, add up on one scrape — and a worker's shared-port /metrics says
 * where the metrics are instead of answering with one worker's numbers; the dashboard lists
 * both workers (they answer each other over the IPC bus) and sums their connections.
 */
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { freePort, within } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import type { DashboardSnapshot } from "../../src/dashboard/index.js";
import { ServeProcesses } from "../serve-process.ts";
import { parseExposition, until } from "./serve-context.js";

const KEY = "workers-dashboard-admin-key-0123456789";

const servers = new ServeProcesses(5000);
const clients: ClientSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await servers.stopAll();
});

function connect(port: number): Promise<ClientSocket> {
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, transports: ["websocket"] });
  clients.push(c);
  return within(
    new Promise((resolve, reject) => {
      c.once("connect", () => resolve(c));
      c.once("connect_error", reject);
    }),
    10_000,
    "client connect",
  );
}

test("--workers 2: the primary serves the workers' metrics aggregated on metrics.port", async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  const p = await servers.start({
    port,
    args: [
      "--workers",
      "2",
      "--metrics.port",
      String(metricsPort),
      "--shutdown-timeout",
      "5000",
      "--dashboard.enabled",
      "true",
    ],
    name: "switchyard serve --workers 2",
    env: { SWITCHYARD_LOG_FORMAT: "json", SWITCHYARD_DASHBOARD__ADMIN_KEY: KEY },
  });
  await p.waitForOutput(/workers' metrics aggregated/, { timeoutMs: 30_000 });

  const scrape = async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, {
      signal: AbortSignal.timeout(8000),
    });
    assert.equal(res.status, 200);
    return parseExposition(await res.text());
  };
  const ws = 'switchyard_connections{transport="websocket"}';
  assert.equal((await scrape()).get(ws), 0);

  // 6 connections over the shared port, spread round-robin over the two workers.
  for (let i = 0; i < 6; i++) await connect(port);
  await until(async () => (await scrape()).get(ws) === 6, 10_000, "6 connections summed");
  const s = await scrape();
  assert.equal(s.get('switchyard_sockets{namespace="/"}'), 6);
  assert.ok((s.get("switchyard_handshakes_total") ?? 0) >= 6);
  assert.ok(s.has("nodejs_eventloop_lag_seconds"), "default metrics aggregated too");

  // A worker's /metrics on the shared port refuses to answer for one worker.
  const shared = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(shared.status, 503);
  const body = (await shared.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, "metrics_on_primary");
  assert.match(body.error.message, /metrics\.port/);

  // The dashboard (whichever worker answers) lists both workers with their own counts.
  const dash = await fetch(`http://127.0.0.1:${port}/dashboard/api/snapshot`, {
    headers: { authorization: `Bearer ${KEY}` },
    signal: AbortSignal.timeout(8000),
  });
  assert.equal(dash.status, 200);
  const snap = (await dash.json()) as DashboardSnapshot;
  assert.equal(snap.cluster.nodes.length, 2, JSON.stringify(snap.cluster.nodes));
  assert.equal(snap.cluster.totalConnections, 6);
  assert.equal(new Set(snap.cluster.nodes.map((n) => n.pid)).size, 2, "two worker processes");

  process.kill(p.pid, "SIGTERM");
  assert.deepEqual(await p.waitForExit(15_000), { code: 0, signal: null });
});
