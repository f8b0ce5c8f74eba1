/**
 * Broadcasts across three in-process nodes: all / rooms / several rooms / except /
 * local / volatile / compress / binary, from the server and from a socket, plus the
 * per-room subscriptions that keep a node from receiving broadcasts for rooms it holds
 * no socket of.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { broadcastChannel, decodeClusterBroadcast, EMITTER_UID } from "@switchyard/protocol";
import { Scope, waitFor } from "../socketio/helpers.js";
import { allGot, peer, received, spread, startCluster } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

describe("cluster broadcast", () => {
  it("to all: every client of every node, once, binary intact", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [[], [], [], [], [], []]);
    nodes[1]!.io.emit("all", "x", { bin: Buffer.from([1, 2, 3]) });
    await allGot(peers, "all");
    nodes[2]!.io.emit("end");
    await allGot(peers, "end");
    for (const p of peers) {
      assert.equal(received(p, "all").length, 1);
      const [s, obj] = received(p, "all")[0]!;
      assert.equal(s, "x");
      assert.deepEqual(Buffer.from((obj as { bin: ArrayBuffer }).bin), Buffer.from([1, 2, 3]));
    }
  });

  it("rooms, several rooms, except, a socket id: same selection as one node", async () => {
    const { nodes } = await startCluster(scope);
    const all = await spread(scope, nodes, [["r1"], ["r1", "r2"], ["r2"], ["r3"], ["r1"], []]);
    const [A, B, C] = nodes;
    B!.io.to("r1").emit("one");
    C!.io.to(["r1", "r2"]).emit("two");
    A!.io.to("r1").except("r2").emit("exc");
    A!.io.except("r1").emit("allbut");
    B!.io.to(all[3]!.socket.id).emit("sock");
    A!.io.to("nobody").emit("none");
    C!.io.emit("end");
    await allGot(all, "end");
    const who = (ev: string) => all.flatMap((p, i) => (received(p, ev).length > 0 ? [i] : []));
    assert.deepEqual(who("one"), [0, 1, 4]);
    assert.deepEqual(who("two"), [0, 1, 2, 4]);
    assert.ok(
      all.every((p) => received(p, "two").length <= 1),
      "once, even when in both rooms",
    );
    assert.deepEqual(who("exc"), [0, 4]);
    assert.deepEqual(who("allbut"), [2, 3, 5]);
    assert.deepEqual(who("sock"), [3]);
    assert.deepEqual(who("none"), []);
  });

  it("socket.broadcast / socket.to exclude the sender on every node", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [["g"], ["g"], ["g"], []]);
    peers[0]!.socket.broadcast.emit("b");
    peers[1]!.socket.to("g").emit("g");
    peers[3]!.socket.emit("end");
    for (const p of peers) p.socket.emit("end");
    await allGot(peers, "end");
    await allGot([peers[1]!, peers[2]!, peers[3]!], "b");
    await allGot([peers[0]!, peers[2]!], "g");
    assert.equal(received(peers[0]!, "b").length, 0);
    assert.equal(received(peers[1]!, "g").length, 0);
    assert.equal(received(peers[3]!, "g").length, 0);
  });

  it("local stays on its node and is not published", async () => {
    const { nodes, hub } = await startCluster(scope);
    const tap = hub.bus();
    scope.add(tap, (b) => b.close());
    const seen: string[] = [];
    await tap.subscribe(broadcastChannel("/"), (_c, p) => {
      seen.push(String(decodeClusterBroadcast(p).packet.data));
    });
    const peers = await spread(scope, nodes, [[], [], []]);
    nodes[0]!.io.local.emit("local");
    peers[0]!.socket.local.emit("local-from-socket");
    nodes[0]!.io.emit("end");
    await allGot(peers, "end");
    assert.deepEqual(
      peers.map((p) => received(p, "local").length),
      [1, 0, 0],
    );
    assert.deepEqual(
      peers.map((p) => received(p, "local-from-socket").length),
      [0, 0, 0],
    );
    await waitFor(() => seen.includes("end"), 3000, "the tap");
    assert.deepEqual(seen, ["end"]);
  });

  it("volatile and compress travel with the broadcast and reach the remote delivery", async () => {
    const { nodes, hub } = await startCluster(scope);
    const tap = hub.bus();
    scope.add(tap, (b) => b.close());
    const flags: unknown[] = [];
    await tap.subscribe(broadcastChannel("/"), (_c, p) => {
      flags.push(decodeClusterBroadcast(p).opts.flags);
    });
    const remote = await peer(scope, nodes[1]!);
    const calls: [boolean, boolean][] = [];
    // The adapter → outbox seam of the remote node (the outbox sees sessions).
    const outbox = nodes[1]!.io.engine.outbox;
    const broadcast = outbox.broadcast.bind(outbox);
    outbox.broadcast = (packet, recipients, volatile, compress) => {
      if (recipients.includes(remote.socket.conn)) calls.push([volatile, compress]);
      broadcast(packet, recipients, volatile, compress);
    };
    nodes[0]!.io.volatile.emit("v");
    nodes[0]!.io.compress(false).emit("c");
    nodes[0]!.io.volatile.compress(false).emit("vc");
    nodes[0]!.io.emit("end");
    // A volatile packet is dropped when the connection cannot take it at once (socket.io's
    // rule), so only the non-volatile ones are sure to arrive; the flags are checked
    // where the remote node hands each broadcast to its socket.
    await waitFor(() => received(remote, "end").length === 1, 3000, "the last broadcast");
    assert.equal(received(remote, "c").length, 1);
    assert.ok(received(remote, "v").length <= 1 && received(remote, "vc").length <= 1);
    assert.deepEqual(calls, [
      [true, true],
      [false, false],
      [true, false],
      [false, true],
    ]);
    assert.deepEqual(flags, [
      { volatile: true },
      { compress: false },
      { volatile: true, compress: false },
      {},
    ]);
  });

  it("a node subscribes to a room's channel only while it holds a socket in it", async () => {
    // Heartbeats far apart, so the only traffic is what the test sends.
    const { nodes } = await startCluster(scope, 3, { heartbeatInterval: 60_000 });
    const [A, B, C] = nodes;
    const inRoom = await peer(scope, A!, ["quiet"]);
    const elsewhere = await peer(scope, B!);
    const channel = broadcastChannel("/", "quiet");
    assert.ok(A!.bus.channels.has(channel));
    assert.ok(!B!.bus.channels.has(channel));
    assert.ok(!C!.bus.channels.has(channel));
    // Own-id rooms are rooms like any other (so an emitter's `to(socketId)` reaches them).
    assert.ok(B!.bus.channels.has(broadcastChannel("/", elsewhere.socket.id)));
    const before = [A!.adapter.stats.received, B!.adapter.stats.received];
    C!.io.to("quiet").emit("q");
    await waitFor(() => received(inRoom, "q").length === 1, 3000, "the room broadcast");
    assert.equal(A!.adapter.stats.received, before[0]! + 1);
    assert.equal(B!.adapter.stats.received, before[1], "B never saw it");
    // Leaving the last socket ends the subscription; joining again restores it.
    await inRoom.socket.leave("quiet");
    await waitFor(() => !A!.bus.channels.has(channel), 3000, "the unsubscribe");
    const pending = inRoom.socket.join("quiet");
    assert.ok(pending instanceof Promise, "join awaits the subscription");
    await pending;
    assert.ok(A!.bus.channels.has(channel));
    inRoom.client.disconnect();
    await waitFor(
      () => !A!.bus.channels.has(broadcastChannel("/", inRoom.socket.id)),
      3000,
      "id room",
    );
  });

  it("ignores its own echoes without decoding; an emitter's broadcast reaches every node", async () => {
    const { nodes, hub } = await startCluster(scope);
    const peers = await spread(scope, nodes, [[], [], []]);
    const stats = () => nodes.map((n) => n.adapter.stats.dropped);
    nodes[0]!.io.emit("mine");
    const outsider = hub.bus();
    scope.add(outsider, (b) => b.close());
    const { encodeClusterBroadcast } = await import("@switchyard/protocol");
    outsider.publish(
      broadcastChannel("/"),
      encodeClusterBroadcast({
        uid: EMITTER_UID,
        packet: { type: 2, nsp: "/", data: ["theirs", 1] },
        opts: { rooms: [], except: [], flags: {} },
      }),
    );
    await allGot(peers, "theirs");
    assert.deepEqual(
      peers.map((p) => received(p, "mine").length),
      [1, 1, 1],
    );
    assert.deepEqual(stats(), [0, 0, 0]);
  });

  it("namespaces are separate: channels, membership and delivery", async () => {
    const { nodes } = await startCluster(scope);
    for (const n of nodes) n.io.of("/chat");
    await waitFor(
      () =>
        nodes.every((n) => (n.io.of("/chat").adapter as typeof n.adapter).liveNodes().size === 2),
      3000,
      "/chat membership",
    );
    const { pair } = await import("../socketio/helpers.js");
    const ws = { name: "ws", opts: { transports: ["websocket" as const] }, upgrade: false };
    const chat = await pair(scope, nodes[1]!, ws, {}, "/chat");
    const main = await peer(scope, nodes[2]!);
    const got: unknown[] = [];
    chat.client.on("m", (x: unknown) => got.push(x));
    nodes[0]!.io.of("/chat").emit("m", "chat");
    nodes[0]!.io.emit("m", "main");
    await waitFor(() => got.length === 1 && received(main, "m").length === 1, 3000, "both");
    assert.deepEqual(got, ["chat"]);
    assert.deepEqual(received(main, "m"), [["main"]]);
  });
});
