/**
 * Publishers that are not servers: Switchyard's `Emitter`, and the official
 * `@socket.io/redis-emitter` package (given a redis-client-shaped shim that forwards
 * `publish` to a LocalBus; the real Redis round trip is packages/redis's test).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { Emitter as SocketIoEmitter } from "@socket.io/redis-emitter";
import {
  Emitter,
  InvalidOptionError,
  type LocalBus,
  PublishDroppedError,
} from "@switchyard/server";
import { pair, reason, Scope, waitFor } from "../socketio/helpers.js";
import { allGot, peer, received, spread, startCluster } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** What @socket.io/redis-emitter needs of a redis client: `publish(channel, message)`. */
function redisShim(bus: LocalBus): {
  publish(channel: string, message: Buffer | string): Promise<number>;
} {
  return {
    publish(channel, message) {
      bus.publish(channel, typeof message === "string" ? Buffer.from(message) : message);
      return Promise.resolve(0);
    },
  };
}

interface ServerEvents {
  sse: (n: number, s: string) => void;
}
interface ClientEvents {
  tick: (sym: string, px: number) => void;
  bin: (b: Buffer) => void;
  plain: () => void;
  hi: (s: string) => void;
}

describe("Emitter", () => {
  it("emit, to/in/except, volatile, compress, binary, of(), on every node", async () => {
    const { nodes, hub } = await startCluster(scope);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const peers = await spread(scope, nodes, [["ACME"], ["ACME", "vip"], [], ["vip"]]);
    const emitter = new Emitter<ClientEvents, ServerEvents>(bus);
    assert.equal(emitter.namespace, "/");
    // Volatile first: a volatile packet reaches a client only while its connection is
    // idle (socket.io's rule), so after the other emits it would rightly be dropped.
    emitter.volatile
      .compress(false)
      .to(peers[2]!.socket.id)
      .emit("bin", Buffer.from([1, 2]));
    emitter.emit("plain");
    emitter.to("ACME").emit("tick", "ACME", 12.5);
    emitter.in(["ACME", "vip"]).except("ACME").emit("tick", "VIP", 1);
    emitter.except("vip").emit("plain");
    await waitFor(() => received(peers[2]!, "bin").length === 1, 3000, "the binary emit");
    await allGot(peers, "plain");
    await waitFor(() => received(peers[3]!, "tick").length === 1, 3000, "the vip tick");
    assert.deepEqual(received(peers[0]!, "tick"), [["ACME", 12.5]]);
    assert.deepEqual(received(peers[1]!, "tick"), [["ACME", 12.5]]);
    assert.deepEqual(received(peers[3]!, "tick"), [["VIP", 1]]);
    assert.deepEqual(
      Buffer.from(received(peers[2]!, "bin")[0]![0] as ArrayBuffer),
      Buffer.from([1, 2]),
    );
    assert.deepEqual(
      peers.map((p) => received(p, "plain").length),
      [2, 1, 2, 1],
    );
    // Another namespace.
    for (const n of nodes) n.io.of("/admin");
    const ws = { name: "ws", opts: { transports: ["websocket" as const] }, upgrade: false };
    const admin = await pair(scope, nodes[2]!, ws, {}, "/admin");
    const got: unknown[] = [];
    admin.client.on("hi", (x: unknown) => got.push(x));
    const other = emitter.of("admin");
    assert.equal(other.namespace, "/admin");
    other.emit("hi", "admins");
    await waitFor(() => got.length === 1, 3000, "the /admin emit");
    assert.deepEqual(got, ["admins"]);
  });

  it("socketsJoin, socketsLeave, disconnectSockets and serverSideEmit", async () => {
    const { nodes, hub } = await startCluster(scope);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const emitter = new Emitter<ClientEvents, ServerEvents>(bus);
    const peers = await spread(scope, nodes, [["a"], ["a"], ["b"]]);
    emitter.in("a").socketsJoin("c");
    await waitFor(
      () => peers[0]!.socket.rooms.has("c") && peers[1]!.socket.rooms.has("c"),
      3000,
      "joins",
    );
    assert.ok(!peers[2]!.socket.rooms.has("c"));
    emitter.socketsLeave("a");
    await waitFor(() => peers.every((p) => !p.socket.rooms.has("a")), 3000, "leaves");
    const got: string[] = [];
    for (const n of nodes)
      n.io.on("sse", (x: number, s: string) => got.push(`${n.name}:${x}:${s}`));
    emitter.serverSideEmit("sse", 1, "x");
    await waitFor(() => got.length === 3, 3000, "every node");
    assert.deepEqual(got.sort(), ["A:1:x", "B:1:x", "C:1:x"]);
    const gone = reason(peers[2]!.client);
    emitter.to("b").disconnectSockets();
    assert.equal(await gone, "io server disconnect");
    assert.ok(peers[0]!.client.connected);
  });

  it("refuses what it cannot do: reserved names, acks, bad options", async () => {
    const { hub } = await startCluster(scope, 1);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const emitter = new Emitter(bus);
    assert.throws(() => emitter.emit("connect"), /reserved/);
    assert.throws(() => emitter.to("r").emit("x", () => {}), TypeError);
    assert.throws(() => emitter.serverSideEmit("x", () => {}), TypeError);
    assert.throws(() => new Emitter({} as never), /option "bus"/);
    assert.throws(() => new Emitter(bus, { namespace: "" }), /namespace/);
    assert.throws(
      () => new Emitter(bus, { namspace: "/" } as object),
      (err: unknown) =>
        err instanceof InvalidOptionError &&
        err.code === "SY_ERR_UNKNOWN_OPTION" &&
        err.message === 'unknown option "namspace" — did you mean "namespace"?',
    );
  });

  it("flush() waits for the bus and reports drops; close() flushes, then closes the bus", async () => {
    const { nodes, hub } = await startCluster(scope, 1);
    const peers = await spread(scope, nodes, [["r"]]);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const emitter = new Emitter<ClientEvents>(bus);
    emitter.to("r").emit("hi", "one");
    await emitter.flush();
    await waitFor(() => received(peers[0]!, "hi").length === 1, 3000, "the flushed emit");
    // A simulated outage drops: the next flush() says so, with how many.
    bus.disconnect();
    emitter.emit("hi", "lost");
    emitter.emit("hi", "lost too");
    bus.reconnect();
    await assert.rejects(
      emitter.flush(),
      (err: unknown) =>
        err instanceof PublishDroppedError &&
        err.code === "SY_ERR_PUBLISH_DROPPED" &&
        err.dropped === 2,
    );
    await emitter.flush(); // reported once: a later flush has nothing to report
    emitter.to("r").emit("hi", "two");
    await emitter.close();
    assert.equal(bus.healthy, false, "the bus is closed");
    await waitFor(() => received(peers[0]!, "hi").length === 2, 3000, "the emit before close()");
    assert.deepEqual(received(peers[0]!, "hi"), [["one"], ["two"]]);
  });
});

describe("the official @socket.io/redis-emitter", () => {
  it("reaches Switchyard clients: emit, rooms, a socket id, except, flags, binary, namespaces", async () => {
    const { nodes, hub } = await startCluster(scope);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const emitter = new SocketIoEmitter(redisShim(bus));
    const peers = await spread(scope, nodes, [["news"], ["news", "sports"], ["sports"]]);
    // Volatile first: it reaches only clients whose connection is idle (socket.io's rule).
    emitter.volatile.compress(false).emit("flags");
    emitter.emit("all", 1);
    emitter.to("news").emit("news", { title: "t" });
    emitter.to(["news", "sports"]).except("sports").emit("only-news");
    emitter.to(peers[2]!.socket.id).emit("direct", "c");
    emitter.emit("binary", Buffer.from([0xde, 0xad]));
    await allGot(peers, "binary");
    await allGot(peers, "flags");
    await waitFor(() => received(peers[2]!, "direct").length === 1, 3000, "the direct emit");
    assert.deepEqual(
      peers.map((p) => received(p, "all")),
      [[[1]], [[1]], [[1]]],
    );
    assert.deepEqual(
      peers.map((p) => received(p, "news").length),
      [1, 1, 0],
    );
    assert.deepEqual(
      peers.map((p) => received(p, "only-news").length),
      [1, 0, 0],
    );
    assert.deepEqual(
      peers.map((p) => received(p, "direct").length),
      [0, 0, 1],
    );
    assert.deepEqual(
      Buffer.from(received(peers[0]!, "binary")[0]![0] as ArrayBuffer),
      Buffer.from([0xde, 0xad]),
    );
    for (const n of nodes) n.io.of("/live");
    const ws = { name: "ws", opts: { transports: ["websocket" as const] }, upgrade: false };
    const live = await pair(scope, nodes[1]!, ws, {}, "/live");
    const got: unknown[] = [];
    live.client.on("x", (v: unknown) => got.push(v));
    emitter.of("/live").emit("x", "live");
    await waitFor(() => got.length === 1, 3000, "the /live emit");
  });

  it("its requests work: socketsJoin, socketsLeave, disconnectSockets, serverSideEmit", async () => {
    const { nodes, hub } = await startCluster(scope);
    const bus = scope.add(hub.bus(), (b) => b.close());
    const emitter = new SocketIoEmitter(redisShim(bus));
    const peers = await spread(scope, nodes, [["a"], ["a"], []]);
    emitter.in("a").socketsJoin(["b", "c"]);
    await waitFor(() => peers.slice(0, 2).every((p) => p.socket.rooms.has("c")), 3000, "joins");
    emitter.socketsLeave("b");
    await waitFor(() => peers.every((p) => !p.socket.rooms.has("b")), 3000, "leaves");
    const got: string[] = [];
    for (const n of nodes) n.io.on("hello", (x: unknown) => got.push(`${n.name}:${String(x)}`));
    emitter.serverSideEmit("hello", "world");
    await waitFor(() => got.length === 3, 3000, "every node");
    const gone = peers.slice(0, 2).map((p) => reason(p.client));
    emitter.in("c").disconnectSockets();
    assert.deepEqual(await Promise.all(gone), ["io server disconnect", "io server disconnect"]);
    assert.ok(peers[2]!.client.connected);
    const late = await peer(scope, nodes[0]!);
    emitter.disconnectSockets(true);
    assert.equal(await reason(late.client), "io server disconnect");
  });
});
