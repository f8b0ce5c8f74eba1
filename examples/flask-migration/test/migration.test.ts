/**
 * The example end to end on real Redis: the Flask node (app.py, Debian's Flask-SocketIO),
 * the Switchyard node replacing it (src/server.ts) and the real background publisher
 * (publisher.py, stock 5.7.2: pickle). Clients on both nodes receive every tick exactly
 * once, in order; broadcasts of either node reach the clients of both.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePort,
  type ManagedProcess,
  type RedisServer,
  redisCommand,
  runPython,
  startPython,
  startRedis,
  waitFor,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as ioClient } from "socket.io-client";
import { type SwitchyardNode, startSwitchyardNode } from "../src/server.js";

const here = (f: string) => fileURLToPath(new URL(`../${f}`, import.meta.url));
const MODULES = ["flask_socketio", "redis"];

let redis: RedisServer;
let flask: ManagedProcess;
let node: SwitchyardNode;
let flaskUrl: string;
const clients: ClientSocket[] = [];
const events = new Map<ClientSocket, { ev: string; data: unknown }[]>();

async function connect(url: string, polling: boolean): Promise<ClientSocket> {
  const c = ioClient(url, {
    forceNew: true,
    reconnection: false,
    transports: polling ? ["polling"] : ["websocket"],
  });
  clients.push(c);
  const log: { ev: string; data: unknown }[] = [];
  events.set(c, log);
  c.onAny((ev: string, data: unknown) => log.push({ ev, data }));
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("connect_error", reject);
  });
  return c;
}

const of = (c: ClientSocket, ev: string) => (events.get(c) ?? []).filter((e) => e.ev === ev);

before(async () => {
  redis = await startRedis();
  const port = await freePort();
  flask = await startPython(here("app.py"), [String(port), redis.url], { requireModules: MODULES });
  await flask.waitForOutput("READY", { timeoutMs: 15000 });
  flaskUrl = `http://127.0.0.1:${port}`;
  node = await startSwitchyardNode(redis.url);
});

after(async () => {
  for (const c of clients) c.close();
  await node?.close();
  await flask?.stop().catch(() => flask.kill());
  await redis?.stop();
});

test("the publisher's ticks reach the clients of both nodes exactly once, in order", async () => {
  // The Flask node binds its port a moment after READY: retry its first connect (bounded).
  let fc: ClientSocket | undefined;
  for (let i = 0; i < 50 && fc === undefined; i++) {
    try {
      fc = await connect(flaskUrl, true);
    } catch {
      clients.pop()?.close();
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  assert.ok(fc, "connected to the Flask node");
  const sc = await connect(node.url, false);
  // Both nodes answer the same events.
  assert.deepEqual(await fc.timeout(5000).emitWithAck("ping", 1), { pong: 1, by: "flask" });
  assert.deepEqual(await sc.timeout(5000).emitWithAck("ping", 2), { pong: 2, by: "switchyard" });
  // The Flask node subscribes on its first client: both nodes now read the channel.
  await waitFor(
    async () => {
      const reply = (await redisCommand(redis.port, [
        "PUBSUB",
        "NUMSUB",
        "flask-socketio",
      ])) as unknown[];
      return Number(reply[1]) >= 2;
    },
    10000,
    "2 subscribers on flask-socketio",
  );
  const res = await runPython(here("publisher.py"), [redis.url, "20", "0.01"], {
    requireModules: MODULES,
    timeoutMs: 30000,
  });
  assert.equal(res.code, 0, res.stderr);
  await waitFor(
    () => of(fc, "tick").length >= 20 && of(sc, "tick").length >= 20,
    10000,
    () => `ticks: flask ${of(fc, "tick").length}, switchyard ${of(sc, "tick").length} of 20`,
  );
  // Broadcasts of either node reach both (each a marker after the ticks: exactly once checked below).
  assert.equal(await fc.timeout(5000).emitWithAck("shout", "from flask"), "ok");
  assert.equal(await sc.timeout(5000).emitWithAck("shout", "from switchyard"), "ok");
  await waitFor(
    () => of(fc, "shouted").length >= 2 && of(sc, "shouted").length >= 2,
    10000,
    "both shouts on both nodes",
  );
  for (const c of [fc, sc]) {
    assert.deepEqual(
      of(c, "tick").map((e) => (e.data as { seq: number }).seq),
      [...Array(20).keys()],
    );
    assert.deepEqual(
      of(c, "shouted")
        .map((e) => (e.data as { by: string }).by)
        .sort(),
      ["flask", "switchyard"],
    );
  }
  assert.equal(node.bridge.stats.pickleRefused, 0);
  assert.equal(node.bridge.stats.refused, 0);
});
