/**
 * SIGKILL behind a balancer: three nodes over Redis behind the shipped haproxy and nginx
 * configs, polling clients sending acked requests without pause, and the node that owns
 * a third of the sessions is killed mid-traffic. Its clients must reconnect to the live
 * nodes (new sessions there) within a bound, and every client's requests must be
 * answered again afterwards, by its own (new) session. The nodes forward requests for
 * each other's sessions (docs/forwarding.md): behind round-robin, a request for a
 * session of the killed node gets 400 from whichever node it reaches, at once.
 */
import assert from "node:assert/strict";
import { after, afterEach, test } from "node:test";
import {
  type RedisServer,
  Scope,
  startHaproxy,
  startNginx,
  startRedis,
  waitFor,
} from "@switchyard/test-harness";
import {
  allConnected,
  assertAcks,
  assertSpread,
  deployFile,
  type LbClient,
  type LbNode,
  makeClients,
  SECRET,
  spread,
  startNodes,
} from "./lb-helpers.js";

const CLIENTS = 60;

let redis: RedisServer | undefined;
const suite = new Scope(15_000);
let scope: Scope;
after(() => suite.close());
afterEach(() => scope.close());

async function broker(): Promise<RedisServer> {
  redis ??= suite.add(await startRedis(), (r) => r.stop());
  return redis;
}

/** Each client sends an acked request every few ms until `stop()`; failures are counted. */
function traffic(clients: readonly LbClient[]): { answered: number[]; stop(): Promise<void> } {
  let running = true;
  const answered = clients.map(() => 0);
  const loops = clients.map(async (c, i) => {
    // Bounded: at most 10,000 requests per client, and stop() ends it.
    for (let n = 0; running && n < 10_000; n++) {
      if (!c.socket.connected) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      try {
        await c.socket.timeout(2000).emitWithAck("echo", n);
        answered[i]!++;
      } catch {
        // Lost with the killed node: the client reconnects and carries on.
      }
    }
  });
  return {
    answered,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * `sticky`: the balancer keeps each session on its owner, so the clients of the live
 * nodes must not notice the crash at all. Without stickiness, a request of theirs that
 * was passing through the killed node when it died is lost with it, and they may
 * reconnect too.
 */
async function killOwner(
  start: (nodes: LbNode[]) => Promise<{ url: string; stop(): Promise<void> }>,
  sticky: boolean,
): Promise<void> {
  scope = new Scope(15_000);
  const redis = await broker();
  const nodes = await startNodes(scope, 3, { bus: "redis", url: redis.url, secret: SECRET });
  const proxy = scope.add(await start(nodes), (p) => p.stop());
  const clients = makeClients(
    scope,
    proxy.url,
    [{ transport: "polling", count: CLIENTS, source: "distinct" }],
    { withCredentials: sticky },
  );
  await allConnected(clients);
  assertSpread(clients, 3);
  // From now on a lost connection is expected (for the victims): let them reconnect.
  for (const c of clients) c.socket.io.reconnection(true);

  const load = traffic(clients);
  try {
    const victim = nodes[1]!;
    const victims = clients.filter((c) => c.hello?.node === victim.name);
    const others = clients.filter((c) => c.hello?.node !== victim.name);
    // Mid-traffic: every client has had answers before the kill.
    await waitFor(() => load.answered.every((n) => n >= 2), 15_000, "2 answers per client");
    await victim.kill();

    await waitFor(
      () =>
        victims.every(
          (c) => c.connects >= 2 && c.socket.connected && c.hello?.node !== victim.name,
        ),
      20_000,
      () =>
        `the ${victims.length} clients of the killed node back on live nodes (${
          victims.filter((c) => c.connects >= 2 && c.socket.connected).length
        } so far; spread ${JSON.stringify([...spread(clients)])})`,
    );
    const before = [...load.answered];
    await waitFor(
      () => load.answered.every((n, i) => n >= before[i]! + 3),
      20_000,
      "3 more answers per client after the victims reconnected",
    );
    for (const c of sticky ? others : []) {
      assert.equal(c.connects, 1, `a client of a live node reconnected: ${c.errors.join("; ")}`);
    }
  } finally {
    await load.stop();
  }
  // After the dust settled, each client's answers come from its own session.
  await assertAcks(clients, 2);
  assert.ok(clients.every((c) => c.hello?.node !== "B"));
}

test("haproxy cookie insert: SIGKILL the owner of polling sessions", async () => {
  await killOwner(
    (nodes) =>
      startHaproxy({
        configFile: deployFile("haproxy-cookie.cfg"),
        backends: nodes.map((n) => ({ port: n.port })),
      }),
    true,
  );
});

test("haproxy round-robin: SIGKILL the owner of polling sessions", async () => {
  await killOwner(
    (nodes) =>
      startHaproxy({
        configFile: deployFile("haproxy.cfg"),
        backends: nodes.map((n) => ({ port: n.port })),
      }),
    false,
  );
});

test("nginx round-robin: SIGKILL the owner of polling sessions", async () => {
  await killOwner(
    (nodes) =>
      startNginx({
        configFile: deployFile("nginx.conf"),
        upstreams: nodes.map((n) => ({ port: n.port })),
      }),
    false,
  );
});
