/**
 * Session forwarding over a real Redis: three nodes behind a round-robin balancer for
 * each transport path, and three node processes of which the one owning polling
 * sessions is SIGKILLed mid-traffic: forwards to it fail fast with 400 and its clients
 * reconnect to live nodes.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { RedisBus } from "@switchyard/redis";
import {
  type ManagedProcess,
  type RedisServer,
  startProcess,
  startRedis,
} from "@switchyard/test-harness";
import type { Socket as ClientSocket } from "socket.io-client";
import { client, connected, Scope, TRANSPORT_MODES, waitFor } from "../socketio/helpers.js";
import type { FwdNodeConfig } from "./fixtures/fwd-node.js";
import {
  assertUnknownSid,
  get,
  roundRobinScenario,
  SECRET,
  startBalancer,
  startNodes,
} from "./helpers.js";

const ROOT = new URL("../../../../", import.meta.url).pathname;
const NODE = new URL("./fixtures/fwd-node.ts", import.meta.url).pathname;

let redis: RedisServer | undefined;
const scope = new Scope();
before(async () => {
  redis = await startRedis();
});
afterEach(() => scope.close());
after(async () => {
  await scope.close();
  await redis?.stop();
});

async function redisBus(): Promise<RedisBus> {
  const bus = scope.add(new RedisBus({ url: redis!.url }), (b) => b.close());
  await bus.ready();
  return bus;
}

describe("session forwarding over Redis behind a round-robin balancer", () => {
  for (const mode of TRANSPORT_MODES) {
    it(`${mode.name}: one session per client, acks from it, broadcasts once and in order`, async () => {
      const nodes = await startNodes(scope, [await redisBus(), await redisBus(), await redisBus()]);
      await roundRobinScenario(scope, nodes, mode);
    });
  }
});

describe("session forwarding over Redis: the owner is SIGKILLed", () => {
  it("forwards to it fail fast with 400 and its polling clients reconnect to live nodes", async () => {
    const procs: ManagedProcess[] = [];
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const config: FwdNodeConfig = {
        nodeId: `k${i}`,
        bus: "redis",
        url: redis!.url,
        secret: SECRET,
      };
      const p = scope.add(
        await startProcess({
          command: process.execPath,
          args: ["--conditions=switchyard-source", "--import", "tsx", NODE, JSON.stringify(config)],
          cwd: ROOT,
          name: `fwd-node-k${i}`,
        }),
        (x) => x.stop({ graceMs: 2000 }),
      );
      const out = await p.waitForOutput(/^ready \d+$/m, { timeoutMs: 30_000 });
      ports.push(Number(/^ready (\d+)$/m.exec(out)![1]));
      procs.push(p);
    }
    const lb = await startBalancer(scope, ports);
    const clients: ClientSocket[] = [];
    for (let i = 0; i < 9; i++) {
      const c = client(scope, lb.url, {
        transports: ["polling"],
        reconnection: true,
        reconnectionDelay: 50,
        reconnectionDelayMax: 200,
      });
      await connected(c, 10_000);
      clients.push(c);
    }
    const victims = clients.filter((c) => c.io.engine.id.startsWith("k1~"));
    assert.ok(victims.length >= 1, "no session on k1");
    // Traffic from every client while the owner dies.
    for (const c of clients) await c.timeout(5000).emitWithAck("echo", 0);
    const oldSid = victims[0]!.io.engine.id;
    const killedAt = Date.now();
    await procs[1]!.kill();
    ports.splice(1, 1); // the balancer's health check would take it out
    // A request for the dead owner's session, reaching a live node: 400 at once.
    const r = await get(ports[0]!, `/socket.io/?EIO=4&transport=polling&sid=${oldSid}`);
    assertUnknownSid(r);
    assert.ok(r.ms < 2500, `the forward took ${r.ms} ms`);
    // Its clients get new sessions on live nodes; the others keep theirs.
    await waitFor(
      () => victims.every((c) => c.connected && !c.io.engine.id.startsWith("k1~")),
      10_000,
      "the killed node's clients reconnected",
    );
    const elapsed = Date.now() - killedAt;
    assert.ok(elapsed < 10_000, `reconnected after ${elapsed} ms`);
    for (const c of clients) {
      const a = (await c.timeout(5000).emitWithAck("echo", 1)) as { id: string; node: string };
      assert.equal(a.id, c.id);
      assert.notEqual(a.node, "k1");
      assert.equal(a.node, c.io.engine.id.split("~")[0]);
    }
  });
});
