/**
 * Connection state recovery across nodes, end to end: three Switchyard processes over a
 * real Redis (RedisBus + RedisRecoveryLog) behind real haproxy with the shipped
 * round-robin config, and real socket.io-client 4.8 clients (WebSocket only: no
 * forwarding needed). The node its clients are on is SIGKILLed: they reconnect through
 * haproxy to another node and recover every broadcast they missed, in order, exactly
 * once, with their id, rooms and data. Misses are detected and counted: the window
 * exceeded, Redis flushed (epoch changed), a replayed or forged pid. The log stays
 * bounded under a flood.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  NodeProcess,
  type RedisServer,
  Scope,
  sleep,
  startHaproxy,
  startNamedNodes,
  startRedis,
  waitFor,
  waitForPeers,
} from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import type { RecoveryNodeConfig } from "./fixtures/recovery-node.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/recovery-node.ts", import.meta.url));
const HAPROXY_CFG = fileURLToPath(new URL("../../../deploy/haproxy.cfg", import.meta.url));

/** One forked node; SIGKILLed at exit of the test process whatever happens. */
class Node extends NodeProcess {
  constructor(config: RecoveryNodeConfig) {
    super({ name: config.name, fixture: FIXTURE, config, callTimeoutMs: 30_000 });
  }
}

interface Stats {
  io: Record<string, number>;
  log: Record<string, number> | undefined;
  sockets: number;
}

interface Hello {
  node: string;
  id: string;
  recovered: boolean;
  rooms: string[];
  data: { name: string };
}

/** A client and what it saw. */
interface Client {
  readonly name: string;
  readonly rooms: string[];
  readonly socket: ClientSocket;
  readonly hellos: Hello[];
  /** Ticks by room. */
  readonly ticks: Map<string, number[]>;
}

let redis: RedisServer;
let admin: Redis;
const suite = new Scope(15_000);
before(async () => {
  redis = suite.add(await startRedis(), (r) => r.stop());
  admin = suite.add(new Redis(redis.url), (r) => r.disconnect());
});
after(() => suite.close());

async function startCluster(
  scope: Scope,
  n: number,
  config: Omit<RecoveryNodeConfig, "name" | "url">,
): Promise<{ nodes: Node[]; url: string }> {
  await admin.flushall();
  const nodes = await startNamedNodes(
    scope,
    n,
    (name) => new Node({ ...config, name, url: redis.url }),
  );
  if (config.secret !== undefined) await waitForPeers(nodes);
  const proxy = scope.add(
    await startHaproxy({ configFile: HAPROXY_CFG, backends: nodes.map((x) => ({ port: x.port })) }),
    (p) => p.stop(),
  );
  return { nodes, url: proxy.url };
}

function makeClient(
  scope: Scope,
  url: string,
  name: string,
  rooms: string[],
  opts: {
    reconnection?: boolean;
    auth?: Record<string, unknown>;
    transports?: ("polling" | "websocket")[];
  } = {},
): Client {
  const socket = connect(url, {
    forceNew: true,
    transports: opts.transports ?? ["websocket"],
    upgrade: false,
    reconnection: opts.reconnection ?? true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    timeout: 10_000,
    auth: opts.auth ?? { rooms, name },
  });
  scope.add(socket, (s) => s.close());
  const client: Client = { name, rooms, socket, hellos: [], ticks: new Map() };
  socket.on("hello", (h: Hello) => client.hellos.push(h));
  socket.on("tick", (room: string, n: number) => {
    const list = client.ticks.get(room) ?? [];
    client.ticks.set(room, list);
    list.push(n);
  });
  return client;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function sum(nodes: readonly Node[], pick: (s: Stats) => number): Promise<number> {
  const all = await Promise.all(nodes.map((x) => x.call<Stats>("stats")));
  return all.reduce((acc, s) => acc + pick(s), 0);
}

test("SIGKILL a node: its clients recover every missed broadcast on another node, in order, exactly once; a replayed or forged pid recovers nothing; the log stays bounded", async () => {
  const scope = new Scope(15_000);
  try {
    const { nodes, url } = await startCluster(scope, 3, { window: 20_000, maxLength: 1000 });
    const rooms = ["r0", "r1", "r2"];
    const clients = Array.from({ length: 24 }, (_, i) =>
      makeClient(scope, url, `c${i}`, [rooms[i % 3]!]),
    );
    await waitFor(() => clients.every((c) => c.hellos.length === 1), 20_000, "every hello");
    const victim = nodes[0]!;
    const emitter = nodes[2]!;
    const victims = clients.filter((c) => c.hellos[0]!.node === victim.name);
    const others = clients.filter((c) => c.hellos[0]!.node !== victim.name);
    assert.ok(victims.length >= 4, `round-robin gave ${victims.length} clients to ${victim.name}`);

    const COUNT = 150;
    // Also to the room only the victim node holds: where its clients recover, no socket
    // was in it before.
    const ticking = emitter.call("tick", {
      rooms: [...rooms, `at-${victim.name}`],
      count: COUNT,
      intervalMs: 10,
    });
    // Every client has had some (so it holds an offset) before the kill.
    await waitFor(
      () => clients.every((c) => (c.ticks.get(c.rooms[0]!)?.length ?? 0) >= 20),
      15_000,
      "20 ticks at every client",
    );
    await victim.kill();
    await ticking;
    // The rooms whose every tick a client must get: a victim also had the victim node's own room.
    const ownRooms = (c: (typeof clients)[number]): string[] =>
      c.hellos[0]!.node === victim.name ? [c.rooms[0]!, `at-${victim.name}`] : c.rooms;
    const short = (c: (typeof clients)[number]): string[] =>
      ownRooms(c).filter((room) => (c.ticks.get(room)?.length ?? 0) < COUNT);
    await waitFor(
      () =>
        victims.every((c) => c.hellos.length === 2) && clients.every((c) => short(c).length === 0),
      20_000,
      () =>
        `victims back (${victims.filter((c) => c.hellos.length === 2).length}/${victims.length}) and ${COUNT} ticks in every own room (${clients.filter((c) => short(c).length === 0).length}/${clients.length}): ${clients
          .filter((c) => short(c).length > 0)
          .map(
            (c) =>
              `${c.name} ${JSON.stringify(c.hellos)} ${short(c)
                .map(
                  (room) =>
                    `${room} missing ${range(1, COUNT).filter((n) => !c.ticks.get(room)?.includes(n))}`,
                )
                .join(", ")}`,
          )
          .join("; ")}`,
    );
    for (const c of clients) {
      const own = ownRooms(c);
      for (const room of own) {
        assert.deepEqual(
          c.ticks.get(room),
          range(1, COUNT),
          `${c.name}: every tick of ${room} once, in order (${JSON.stringify(c.hellos)})`,
        );
      }
      assert.deepEqual([...c.ticks.keys()].sort(), own.sort(), `${c.name}: only its rooms' ticks`);
    }
    for (const c of victims) {
      const [first, second] = c.hellos as [Hello, Hello];
      assert.notEqual(second.node, victim.name);
      assert.equal(second.recovered, true, `${c.name} recovered on ${second.node}`);
      assert.equal(second.id, first.id, "same socket id");
      assert.deepEqual(second.rooms, first.rooms, "rooms restored");
      assert.deepEqual(first.rooms, [...c.rooms, `at-${victim.name}`].sort());
      assert.deepEqual(second.data, { name: c.name }, "data restored");
      assert.equal(c.socket.recovered, true, "the client saw it recovered");
    }
    for (const c of others) assert.equal(c.hellos.length, 1, `${c.name} was not disturbed`);
    const live = nodes.slice(1);
    assert.equal(await sum(live, (s) => s.log?.restored ?? 0), victims.length);
    assert.equal(await sum(live, (s) => s.io.recovered ?? 0), victims.length);

    // Replayed: a victim's pid and offset, presented again by another client.
    const v = victims[0]!.socket as unknown as { _pid: string; _lastOffset: string; id: string };
    const replay = makeClient(scope, url, "replay", ["r0"], {
      reconnection: false,
      auth: { pid: v._pid, offset: v._lastOffset },
    });
    const forged = makeClient(scope, url, "forged", ["r0"], {
      reconnection: false,
      auth: { pid: "AAAAAAAAAAAAAAAAAAAA", offset: v._lastOffset },
    });
    await waitFor(
      () => replay.hellos.length === 1 && forged.hellos.length === 1,
      10_000,
      "the replayed and forged clients' hellos",
    );
    for (const x of [replay, forged]) {
      assert.equal(x.hellos[0]!.recovered, false, `${x.name}: a fresh session`);
      assert.notEqual(x.hellos[0]!.id, v.id);
      assert.deepEqual(
        x.hellos[0]!.rooms,
        [`at-${x.hellos[0]!.node}`],
        `${x.name}: none of the victim's rooms`,
      );
      assert.equal(x.ticks.size, 0, `${x.name}: no missed packets replayed`);
    }
    assert.ok(victims[0]!.socket.connected, "the victim keeps its session");
    assert.ok(
      (await sum(live, (s) => s.io.recoveryMissesUnknownSession ?? 0)) >= 2,
      "both misses counted as unknown sessions",
    );

    // Bounded: a flood leaves the stream near maxLength.
    await emitter.call("flood", { count: 5000 });
    const xlen = await admin.xlen("{switchyard:recovery:/}:log");
    assert.ok(xlen <= 1100, `XLEN ${xlen} after a flood of 5,000 (maxLength 1,000)`);
  } finally {
    await scope.close();
  }
});

test("window exceeded: a client of a killed node that comes back too late gets a fresh session, counted", async () => {
  const scope = new Scope(15_000);
  try {
    const { nodes, url } = await startCluster(scope, 3, { window: 1500 });
    const clients = Array.from({ length: 9 }, (_, i) =>
      makeClient(scope, url, `c${i}`, ["r0"], { reconnection: false }),
    );
    await waitFor(() => clients.every((c) => c.hellos.length === 1), 20_000, "every hello");
    const victim = nodes[0]!;
    const victims = clients.filter((c) => c.hellos[0]!.node === victim.name);
    assert.ok(victims.length >= 1);
    await nodes[2]!.call("tick", { rooms: ["r0"], count: 3, intervalMs: 0 });
    await waitFor(() => clients.every((c) => c.ticks.get("r0")?.length === 3), 10_000, "3 ticks");
    await victim.kill();
    await waitFor(() => victims.every((c) => !c.socket.connected), 10_000, "victims disconnected");
    // The point of this test: more time passes than the window.
    await sleep(2000);
    for (const c of victims) c.socket.connect();
    await waitFor(() => victims.every((c) => c.hellos.length === 2), 15_000, "victims back");
    for (const c of victims) {
      assert.equal(c.hellos[1]!.recovered, false, `${c.name}: not recovered`);
      assert.notEqual(c.hellos[1]!.id, c.hellos[0]!.id);
      assert.equal(c.socket.recovered, false);
    }
    assert.equal(
      await sum(nodes.slice(1), (s) => s.io.recoveryMissesUnknownSession ?? 0),
      victims.length,
    );
  } finally {
    await scope.close();
  }
});

test("Redis flushed (epoch changed): live sessions are saved again, but offsets from before do not recover, counted", async () => {
  const scope = new Scope(15_000);
  try {
    const { nodes, url } = await startCluster(scope, 3, { window: 20_000 });
    const clients = Array.from({ length: 9 }, (_, i) => makeClient(scope, url, `c${i}`, ["r0"]));
    await waitFor(() => clients.every((c) => c.hellos.length === 1), 20_000, "every hello");
    const victim = nodes[0]!;
    const victims = clients.filter((c) => c.hellos[0]!.node === victim.name);
    assert.ok(victims.length >= 1);
    await nodes[2]!.call("tick", { rooms: ["r0"], count: 3, intervalMs: 0 });
    await waitFor(() => clients.every((c) => c.ticks.get("r0")?.length === 3), 10_000, "3 ticks");
    await admin.flushall();
    // The nodes notice the new epoch at their next heartbeat and save their sessions again.
    await waitFor(
      async () => {
        const keys = await admin.keys("*:live:*");
        const lens = await Promise.all(keys.map((k) => admin.hlen(k)));
        return lens.reduce((a, b) => a + b, 0) === clients.length;
      },
      10_000,
      "every live session saved again",
    );
    await victim.kill();
    await waitFor(() => victims.every((c) => c.hellos.length === 2), 15_000, "victims back");
    for (const c of victims) {
      assert.equal(c.hellos[1]!.recovered, false, `${c.name}: not recovered across the flush`);
      assert.equal(c.socket.recovered, false);
    }
    const live = nodes.slice(1);
    const stats = JSON.stringify(await Promise.all(live.map((x) => x.call<Stats>("stats"))));
    assert.equal(
      await sum(live, (s) => s.io.recoveryMissesEpoch ?? 0),
      victims.length,
      `misses by epoch: ${stats}`,
    );
    assert.equal(await sum(live, (s) => s.log?.missEpoch ?? 0), victims.length);
  } finally {
    await scope.close();
  }
});

test("a client that received nothing before its node was killed recovers from where the log stood when it connected", async () => {
  const scope = new Scope(15_000);
  try {
    const { nodes, url } = await startCluster(scope, 3, { window: 20_000 });
    // Some traffic first, so every node has seen the log move (the hellos are logged).
    const talkers = Array.from({ length: 3 }, (_, i) => makeClient(scope, url, `t${i}`, ["t"]));
    await waitFor(() => talkers.every((c) => c.hellos.length === 1), 20_000, "talkers' hellos");
    const quiet = Array.from({ length: 9 }, (_, i) =>
      makeClient(scope, url, `q${i}`, ["q"], { auth: { rooms: ["q"], quiet: true } }),
    );
    const connects = new Map<Client, number>(quiet.map((c) => [c, 0]));
    for (const c of quiet) c.socket.on("connect", () => connects.set(c, connects.get(c)! + 1));
    await waitFor(() => quiet.every((c) => connects.get(c) === 1), 20_000, "quiet clients");
    const victim = nodes[0]!;
    const onVictim = new Set(await victim.call<string[]>("ids"));
    const victims = quiet.filter((c) => onVictim.has(c.socket.id!));
    assert.ok(victims.length >= 1, "round-robin put quiet clients on the victim");
    for (const c of victims) {
      const s = c.socket as unknown as { _pid?: string; _lastOffset?: string };
      assert.ok(s._pid !== undefined && s._lastOffset === undefined, "a pid and no offset");
    }
    // Live states are written 20 ms after a join.
    await waitFor(
      async () => {
        const keys = await admin.keys("*:live:*");
        const lens = await Promise.all(keys.map((k) => admin.hlen(k)));
        return lens.reduce((a, b) => a + b, 0) === talkers.length + quiet.length;
      },
      10_000,
      "every live session saved",
    );
    await victim.kill();
    await nodes[2]!.call("tick", { rooms: ["q"], count: 20, intervalMs: 0 });
    await waitFor(
      () => victims.every((c) => connects.get(c) === 2 && c.ticks.get("q")?.length === 20),
      20_000,
      "victims back with 20 ticks",
    );
    for (const c of victims) {
      assert.equal(c.socket.recovered, true, `${c.name} recovered`);
      assert.deepEqual(c.ticks.get("q"), range(1, 20), `${c.name}: every tick once, in order`);
    }
  } finally {
    await scope.close();
  }
});

test("polling clients (sessions forwarded behind round-robin) recover on another node too", async () => {
  const scope = new Scope(15_000);
  try {
    const { nodes, url } = await startCluster(scope, 3, {
      window: 20_000,
      secret: "recovery-cluster-tests-secret-0123",
    });
    const clients = Array.from({ length: 9 }, (_, i) =>
      makeClient(scope, url, `p${i}`, ["r"], { transports: ["polling"] }),
    );
    await waitFor(() => clients.every((c) => c.hellos.length === 1), 20_000, "every hello");
    const victim = nodes[0]!;
    const victims = clients.filter((c) => c.hellos[0]!.node === victim.name);
    assert.ok(victims.length >= 1, "round-robin put polling clients on the victim");
    const COUNT = 60;
    const ticking = nodes[2]!.call("tick", { rooms: ["r"], count: COUNT, intervalMs: 10 });
    await waitFor(
      () => clients.every((c) => (c.ticks.get("r")?.length ?? 0) >= 10),
      15_000,
      "10 ticks at every client",
    );
    await victim.kill();
    await ticking;
    await waitFor(
      () =>
        victims.every((c) => c.hellos.length === 2) &&
        clients.every((c) => (c.ticks.get("r")?.length ?? 0) >= COUNT),
      20_000,
      "victims back and every tick everywhere",
    );
    for (const c of clients) {
      assert.deepEqual(c.ticks.get("r"), range(1, COUNT), `${c.name}: every tick once, in order`);
    }
    for (const c of victims) {
      assert.equal(c.hellos[1]!.recovered, true, `${c.name} recovered`);
      assert.equal(c.hellos[1]!.id, c.hellos[0]!.id);
      assert.equal(c.socket.io.engine.transport.name, "polling");
    }
  } finally {
    await scope.close();
  }
});
