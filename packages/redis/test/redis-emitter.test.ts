/**
 * The official `@socket.io/redis-emitter` (npm) publishing into a Switchyard cluster:
 * a real redis-server, two Switchyard `Server`s whose cluster adapters run over
 * `RedisBus`, real socket.io-client clients on both nodes, and the real `Emitter`
 * over a real ioredis client. Broadcasts travel as msgpack `[uid, packet, opts]` on
 * `socket.io#<nsp>#` / `socket.io#<nsp>#<room>#`; socketsJoin, disconnectSockets and
 * serverSideEmit as JSON on `socket.io-request#<nsp>#`.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { type ClusterAdapter, createAdapter, Server, type Socket } from "@switchyard/server";
import {
  type RedisServer,
  sleep,
  startRedis,
  trapUnhandled,
  waitFor,
} from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { type Socket as ClientSocket, io as connectClient } from "socket.io-client";
import { RedisBus } from "../src/index.js";

const unhandled = trapUnhandled();
after(() => {
  unhandled.dispose();
  unhandled.assertNone();
});

/** How long a negative check waits for something that must not arrive. */
const QUIET_MS = 300;

interface Received {
  event: string;
  args: unknown[];
}

/** A Switchyard node: Server on 127.0.0.1:0 with the cluster adapter over a RedisBus. */
interface Node {
  name: string;
  io: Server;
  bus: RedisBus;
  url: string;
  /** Server-side sockets by id, of every namespace. */
  sockets: Map<string, Socket>;
  /** Arguments of every `io.on("hello")` call (serverSideEmit). */
  hello: unknown[][];
}

/** A connected client, what it received, and why it disconnected (if it did). */
interface Peer {
  name: string;
  node: Node;
  client: ClientSocket;
  got: Received[];
  disconnectReason?: string;
}

async function startNode(name: string, url: string, cleanups: Array<() => Promise<void>>) {
  const bus = new RedisBus({ url });
  cleanups.push(() => bus.close());
  await bus.ready();
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(bus, { heartbeatInterval: 500 }) });
  cleanups.push(async () => {
    await io.close();
    if (http.listening) await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  const node: Node = { name, io, bus, url: "", sockets: new Map(), hello: [] };
  for (const nsp of ["/", "/admin"]) {
    io.of(nsp).on("connection", async (socket: Socket) => {
      node.sockets.set(socket.id, socket);
      const rooms = String(socket.handshake.query.rooms ?? "")
        .split(",")
        .filter(Boolean);
      // In a cluster, join() resolves once the broker confirmed the room's subscription.
      await socket.join(rooms);
      socket.emit("joined");
    });
  }
  io.on("hello", (...args: unknown[]) => {
    node.hello.push(args);
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  node.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  await adapterOf(node, "/").settled();
  await adapterOf(node, "/admin").settled();
  return node;
}

function adapterOf(node: Node, nsp: string): ClusterAdapter {
  return node.io.of(nsp).adapter as unknown as ClusterAdapter;
}

async function connectPeer(
  name: string,
  node: Node,
  nsp: string,
  rooms: string[],
  cleanups: Array<() => Promise<void>>,
): Promise<Peer> {
  const client = connectClient(`${node.url}${nsp}`, {
    transports: ["websocket"],
    query: { rooms: rooms.join(",") },
    forceNew: true,
    reconnection: false,
  });
  cleanups.push(async () => {
    client.disconnect();
  });
  const peer: Peer = { name, node, client, got: [] };
  client.onAny((event: string, ...args: unknown[]) => {
    if (event !== "joined") peer.got.push({ event, args });
  });
  client.on("disconnect", (reason) => {
    peer.disconnectReason = reason;
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not joined within 5 s`)), 5000);
    client.once("joined", () => {
      clearTimeout(timer);
      resolve();
    });
    client.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return peer;
}

function received(peer: Peer, event: string): unknown[][] {
  return peer.got.filter((g) => g.event === event).map((g) => g.args);
}

async function allGot(peers: readonly Peer[], event: string): Promise<void> {
  await waitFor(
    () => peers.every((p) => received(p, event).length > 0),
    5000,
    `"${event}" at ${peers.map((p) => p.name).join(", ")}`,
  );
}

/** Bounded negative check: within QUIET_MS, none of `peers` got `event`. */
async function noneGot(peers: readonly Peer[], event: string): Promise<void> {
  await sleep(QUIET_MS);
  for (const p of peers)
    assert.deepEqual(received(p, event), [], `${p.name} must not get "${event}"`);
}

describe("@socket.io/redis-emitter → Switchyard cluster over RedisBus", () => {
  const cleanups: Array<() => Promise<void>> = [];
  let redis: RedisServer | undefined;
  let publisher: Redis;
  let emitter: Emitter;
  let A: Node;
  let B: Node;
  // Main namespace: a1/b1 in room "r", a2/b2 in no room; adminA/adminB on /admin.
  let a1: Peer;
  let a2: Peer;
  let b1: Peer;
  let b2: Peer;
  let adminA: Peer;
  let adminB: Peer;
  let main: Peer[];

  before(async () => {
    redis = await startRedis();
    const url = redis.url;
    publisher = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    cleanups.push(async () => {
      await publisher.quit().catch(() => publisher.disconnect());
    });
    await publisher.connect();
    emitter = new Emitter(publisher);
    A = await startNode("A", url, cleanups);
    B = await startNode("B", url, cleanups);
    a1 = await connectPeer("a1", A, "/", ["r"], cleanups);
    a2 = await connectPeer("a2", A, "/", [], cleanups);
    b1 = await connectPeer("b1", B, "/", ["r"], cleanups);
    b2 = await connectPeer("b2", B, "/", [], cleanups);
    adminA = await connectPeer("adminA", A, "/admin", [], cleanups);
    adminB = await connectPeer("adminB", B, "/admin", [], cleanups);
    main = [a1, a2, b1, b2];
  });

  after(async () => {
    // Reverse order: clients, then servers and buses, then the publisher, then redis.
    const errors: unknown[] = [];
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    await redis?.stop();
    assert.deepEqual(errors.map(String), [], "cleanup errors");
  });

  test("emit() reaches every client of the namespace on both nodes, not /admin", async () => {
    emitter.emit("all", { n: 1 }, "two", [3]);
    await allGot(main, "all");
    for (const p of main) assert.deepEqual(received(p, "all"), [[{ n: 1 }, "two", [3]]], p.name);
    await noneGot([adminA, adminB], "all");
    for (const p of main) assert.equal(received(p, "all").length, 1, `${p.name} got it once`);
  });

  test('to("r").emit() reaches only the room members, on both nodes', async () => {
    emitter.to("r").emit("inr", "x");
    await allGot([a1, b1], "inr");
    assert.deepEqual(received(a1, "inr"), [["x"]]);
    assert.deepEqual(received(b1, "inr"), [["x"]]);
    await noneGot([a2, b2, adminA, adminB], "inr");
  });

  test('except("r").emit() reaches everyone but the room members', async () => {
    emitter.except("r").emit("notr", 7);
    await allGot([a2, b2], "notr");
    assert.deepEqual(received(a2, "notr"), [[7]]);
    assert.deepEqual(received(b2, "notr"), [[7]]);
    await noneGot([a1, b1, adminA, adminB], "notr");
  });

  test('of("/admin").emit() reaches only /admin clients', async () => {
    emitter.of("/admin").emit("adm", "deploying");
    await allGot([adminA, adminB], "adm");
    assert.deepEqual(received(adminA, "adm"), [["deploying"]]);
    assert.deepEqual(received(adminB, "adm"), [["deploying"]]);
    await noneGot(main, "adm");
  });

  test("binary arguments arrive as binary", async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    emitter.emit("bin", bytes, { nested: Buffer.from([1, 2]) }, "text");
    await allGot(main, "bin");
    for (const p of main) {
      const [args] = received(p, "bin");
      assert.equal(args!.length, 3, p.name);
      const first = args![0];
      assert.ok(
        first instanceof Uint8Array || first instanceof ArrayBuffer,
        `${p.name}: binary arrives as binary, got ${Object.prototype.toString.call(first)}`,
      );
      assert.deepEqual([...new Uint8Array(first as ArrayBuffer)], [...bytes], p.name);
      const nested = (args![1] as { nested: unknown }).nested;
      assert.ok(nested instanceof Uint8Array || nested instanceof ArrayBuffer, p.name);
      assert.deepEqual([...new Uint8Array(nested as ArrayBuffer)], [1, 2], p.name);
      assert.equal(args![2], "text", p.name);
    }
  });

  test('socketsJoin("x") makes sockets join; io.to("x").emit() then reaches them', async () => {
    emitter.to("r").socketsJoin("x");
    const inX = (p: Peer): boolean =>
      p.node.sockets.get(p.client.id ?? "")?.rooms.has("x") === true;
    await waitFor(() => inX(a1) && inX(b1), 5000, "a1 and b1 joined x");
    assert.equal(inX(a2), false, "a2 is not in r, so not in x");
    assert.equal(inX(b2), false, "b2 is not in r, so not in x");
    // The join's room subscription is confirmed once the adapters have settled.
    await adapterOf(A, "/").settled();
    await adapterOf(B, "/").settled();
    A.io.to("x").emit("inx", "from A");
    await allGot([a1, b1], "inx");
    assert.deepEqual(received(a1, "inx"), [["from A"]]);
    assert.deepEqual(received(b1, "inx"), [["from A"]]);
    await noneGot([a2, b2, adminA, adminB], "inx");
  });

  test('serverSideEmit("hello", 1) reaches io.on("hello") on both nodes', async () => {
    emitter.serverSideEmit("hello", 1);
    await waitFor(() => A.hello.length > 0 && B.hello.length > 0, 5000, "hello on A and B");
    assert.deepEqual(A.hello, [[1]]);
    assert.deepEqual(B.hello, [[1]]);
    await noneGot([...main, adminA, adminB], "hello");
  });

  // Last: it ends the main namespace's clients.
  test("disconnectSockets() disconnects the namespace's clients on both nodes", async () => {
    emitter.disconnectSockets();
    await waitFor(
      () => main.every((p) => p.disconnectReason !== undefined),
      5000,
      "every main-namespace client disconnected",
    );
    for (const p of main) assert.equal(p.disconnectReason, "io server disconnect", p.name);
    await sleep(QUIET_MS);
    assert.equal(adminA.client.connected, true, "/admin clients stay");
    assert.equal(adminB.client.connected, true, "/admin clients stay");
  });
});
