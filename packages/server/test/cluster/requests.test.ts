/**
 * Requests across three in-process nodes: fetchSockets (with RemoteSocket emit / join /
 * leave / disconnect / timeout().emit), socketsJoin / socketsLeave / disconnectSockets,
 * serverSideEmit with and without acks, and broadcast acks counting every node's
 * clients.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { AckTimeoutError, RemoteSocket, type Socket } from "@switchyard/server";
import { HOST, once, reason, Scope, waitFor, within } from "../socketio/helpers.js";
import {
  allGot,
  type ClusterNode,
  peer,
  received,
  spread,
  startCluster,
  waitCounts,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

function answer(
  p: { client: { on(ev: string, fn: (...a: never[]) => void): unknown } },
  tag: string,
): void {
  p.client.on("q", ((x: unknown, cb: (r: unknown) => void) => cb(`${tag}:${String(x)}`)) as never);
}

describe("cluster fetchSockets and remote sockets", () => {
  it("returns every node's sockets: local Socket objects and RemoteSockets with id, handshake, rooms, data", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [["x"], ["x", "y"], ["x"], ["y"]]);
    for (const [i, p] of peers.entries()) p.socket.data = { i, nested: { bin: Buffer.from([i]) } };
    const sockets = await nodes[0]!.io.in("x").fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.id).sort(),
      peers
        .slice(0, 3)
        .map((p) => p.socket.id)
        .sort(),
    );
    for (const s of sockets) {
      const p = peers.find((x) => x.socket.id === s.id)!;
      if (p.node === nodes[0]) {
        assert.equal(s, p.socket, "a local socket is the live Socket");
        continue;
      }
      assert.ok(s instanceof RemoteSocket);
      assert.equal(s.node, p.node.adapter.uid);
      assert.deepEqual([...s.rooms].sort(), [...p.socket.rooms].sort());
      assert.deepEqual(s.data, {
        i: peers.indexOf(p),
        nested: { bin: Buffer.from([peers.indexOf(p)]) },
      });
      assert.equal(s.handshake.address, p.socket.handshake.address);
      assert.equal(s.handshake.headers.host, p.socket.handshake.headers.host);
      assert.equal(s.handshake.issued, p.socket.handshake.issued);
    }
    assert.equal((await nodes[1]!.io.fetchSockets()).length, 4);
    assert.equal((await nodes[2]!.io.except("x").fetchSockets()).length, 1);
    assert.equal((await nodes[2]!.io.local.fetchSockets()).length, 1);
    assert.deepEqual([...(await nodes[1]!.io.in("y").allSockets())], [peers[1]!.socket.id]);
  });

  it("RemoteSocket: emit, emit with ack, timeout().emit, emitWithAck, join, leave, disconnect", async () => {
    const { nodes } = await startCluster(scope);
    const target = await peer(scope, nodes[1]!);
    answer(target, "B");
    const [remote] = await nodes[0]!.io.in(target.socket.id).fetchSockets();
    assert.ok(remote instanceof RemoteSocket);
    remote.emit("hello", 1, Buffer.from([7]));
    await waitFor(() => received(target, "hello").length === 1, 3000, "the remote emit");
    const [n, bin] = received(target, "hello")[0]!;
    assert.equal(n, 1);
    assert.deepEqual(Buffer.from(bin as ArrayBuffer), Buffer.from([7]));

    const plain = await within(
      new Promise((resolve) => remote.emit("q", "p", resolve)),
      3000,
      "plain ack",
    );
    assert.equal(plain, "B:p");
    const timed = await within(
      new Promise<unknown[]>((resolve) =>
        remote.timeout(2000).emit("q", "t", (...args: unknown[]) => resolve(args)),
      ),
      3000,
      "timeout().emit",
    );
    assert.deepEqual(timed, [null, "B:t"]);
    assert.equal(await remote.timeout(2000).emitWithAck("q", "w"), "B:w");
    // A client that does not answer: AckTimeoutError after the timeout.
    await assert.rejects(remote.timeout(100).emitWithAck("silent"), AckTimeoutError);

    remote.join(["j1", "j2"]);
    await waitFor(() => target.socket.rooms.has("j2"), 3000, "the remote join");
    nodes[2]!.io.to("j1").emit("in-j1");
    await waitFor(
      () => received(target, "in-j1").length === 1,
      3000,
      "a broadcast to the joined room",
    );
    remote.leave("j1");
    await waitFor(() => !target.socket.rooms.has("j1"), 3000, "the remote leave");
    const gone = reason(target.client);
    remote.disconnect();
    assert.equal(await gone, "io server disconnect");
  });

  it("RemoteSocket.disconnect(true) closes the connection", async () => {
    const { nodes } = await startCluster(scope);
    const target = await peer(scope, nodes[2]!);
    const [remote] = await nodes[1]!.io.in(target.socket.id).fetchSockets();
    const gone = reason(target.client);
    remote!.disconnect(true);
    assert.equal(await gone, "io server disconnect");
    await waitFor(() => target.socket.conn.readyState === "closed", 3000, "the session to close");
  });
});

describe("cluster socketsJoin / socketsLeave / disconnectSockets", () => {
  it("act on the matching sockets of every node", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [["src"], ["src"], ["src"], [], ["src", "keep"]]);
    nodes[0]!.io.in("src").except("keep").socketsJoin(["dst", "dst2"]);
    await waitFor(() => peers.filter((p) => p.socket.rooms.has("dst")).length === 3, 3000, "joins");
    assert.ok(!peers[4]!.socket.rooms.has("dst"));
    assert.ok(peers[0]!.socket.rooms.has("dst2"));
    await Promise.all(nodes.map((n) => n.adapter.settled()));
    nodes[1]!.io.to("dst").emit("d");
    await allGot(peers.slice(0, 3), "d");
    nodes[2]!.io.in("dst").socketsLeave("dst");
    await waitFor(() => peers.every((p) => !p.socket.rooms.has("dst")), 3000, "leaves");
    const gone = peers.slice(0, 3).map((p) => reason(p.client));
    nodes[1]!.io.in("src").except("keep").disconnectSockets();
    assert.deepEqual(await Promise.all(gone), Array(3).fill("io server disconnect"));
    assert.ok(peers[3]!.client.connected && peers[4]!.client.connected);
    const closed = reason(peers[3]!.client);
    nodes[0]!.io.local.disconnectSockets(true);
    // peers[3] is on node A (index 3 % 3 = 0); local only: peers[4] (node B) stays.
    assert.equal(await closed, "io server disconnect");
    await waitFor(
      () => peers[3]!.socket.conn.readyState === "closed",
      3000,
      "the session to close",
    );
    assert.ok(peers[4]!.client.connected);
  });
});

describe("cluster serverSideEmit", () => {
  it("reaches the other nodes' listeners, not its own", async () => {
    const { nodes } = await startCluster(scope);
    const got: string[] = [];
    for (const n of nodes) n.io.on("tick", (x: unknown) => got.push(`${n.name}:${String(x)}`));
    nodes[0]!.io.serverSideEmit("tick", 1);
    await waitFor(() => got.length === 2, 3000, "two listeners");
    assert.deepEqual(got.sort(), ["B:1", "C:1"]);
  });

  it("with an ack gathers one response per other node; resolves at once on a lone node", async () => {
    const { nodes } = await startCluster(scope);
    for (const n of nodes) {
      n.io.on("ping", (x: unknown, cb: (r: unknown) => void) => cb(`${n.name}:${String(x)}`));
    }
    const res = await within(nodes[1]!.io.serverSideEmitWithAck("ping", 5), 3000, "responses");
    assert.deepEqual(res.sort(), ["A:5", "C:5"]);
    const viaCallback = await within(
      new Promise<[Error | null, unknown[]]>((resolve) =>
        nodes[2]!.io.serverSideEmit("ping", 6, (err: Error | null, r: unknown[]) =>
          resolve([err, r]),
        ),
      ),
      3000,
      "callback",
    );
    assert.deepEqual([viaCallback[0], viaCallback[1].sort()], [null, ["A:6", "B:6"]]);
    // A node that never answers: timeout error with the answers that came.
    nodes[2]!.io.sockets.removeAllListeners("ping");
    nodes[2]!.io.on("ping", () => {});
    const { nodes: lone } = await startCluster(scope, 1);
    assert.deepEqual(await lone[0]!.io.serverSideEmitWithAck("ping"), []);
    assert.throws(() => nodes[0]!.io.serverSideEmit("connection" as never), /reserved/);
  });

  it("an unanswered serverSideEmit ack ends with AckTimeoutError and the responses so far", async () => {
    const { nodes } = await startCluster(scope, 3, {
      heartbeatInterval: 500,
      requestsTimeout: 150,
    });
    nodes[1]!.io.on("ping", (cb: (r: unknown) => void) => cb("B"));
    nodes[2]!.io.on("ping", () => {});
    const [err, responses] = await within(
      new Promise<[Error | null, unknown[]]>((resolve) =>
        nodes[0]!.io.serverSideEmit("ping", (e: Error | null, r: unknown[]) => resolve([e, r])),
      ),
      3000,
      "the timeout",
    );
    assert.ok(err instanceof AckTimeoutError);
    assert.match(err.message, /1 of 2 nodes/);
    assert.deepEqual(responses, ["B"]);
  });
});

describe("cluster broadcast acks", () => {
  it("count the clients of every node and gather each one's ack", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [["r"], [], ["r"], ["r"], [], ["r"]]);
    for (const [i, p] of peers.entries()) answer(p, String(i));
    const all = await within(nodes[0]!.io.timeout(2000).emitWithAck("q", "all"), 3000, "all acks");
    assert.deepEqual((all as string[]).sort(), peers.map((_, i) => `${i}:all`).sort());
    const room = await within(
      nodes[1]!.io.to("r").timeout(2000).emitWithAck("q", "r"),
      3000,
      "room acks",
    );
    assert.deepEqual((room as string[]).sort(), ["0:r", "2:r", "3:r", "5:r"]);
    // Callback form; and from a socket (the sender excluded).
    const [err, res] = await within(
      new Promise<[Error | null, unknown[]]>((resolve) =>
        peers[2]!.socket.broadcast
          .timeout(2000)
          .emit("q", "b", (e: Error | null, r: unknown[]) => resolve([e, r])),
      ),
      3000,
      "socket.broadcast acks",
    );
    assert.equal(err, null);
    assert.equal(res.length, 5);
    // Nobody matches anywhere: completes at once with no responses.
    assert.deepEqual(
      await within(nodes[2]!.io.to("nobody").timeout(2000).emitWithAck("q"), 1000, "empty"),
      [],
    );
  });

  it("completes only when every node's clients acked, even if local ones are fast", async () => {
    const { nodes } = await startCluster(scope);
    const local = await peer(scope, nodes[0]!);
    const remote = await peer(scope, nodes[1]!);
    answer(local, "local");
    // The remote client answers late: the operator must still wait for it.
    remote.client.on("q", (x: unknown, cb: (r: unknown) => void) =>
      setTimeout(() => cb(`remote:${String(x)}`), 100),
    );
    const res = await within(nodes[0]!.io.timeout(2000).emitWithAck("q", 1), 3000, "both acks");
    assert.deepEqual((res as string[]).sort(), ["local:1", "remote:1"]);
  });

  it("a client that never acks: AckTimeoutError with the others' responses", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [[], [], []]);
    answer(peers[0]!, "a");
    answer(peers[2]!, "c");
    const [err, res] = await within(
      new Promise<[Error | null, unknown[]]>((resolve) =>
        nodes[1]!.io
          .timeout(200)
          .emit("q", "x", (e: Error | null, r: unknown[]) => resolve([e, r])),
      ),
      3000,
      "the timeout",
    );
    assert.ok(err instanceof AckTimeoutError);
    assert.deepEqual((res as string[]).sort(), ["a:x", "c:x"]);
  });

  it("a timed-out broadcast: emitWithAck's error carries the responses; every node releases the silent clients' ack callbacks", async () => {
    const { nodes } = await startCluster(scope);
    // Silent clients on the asking node and on another one.
    const peers = await spread(scope, nodes, [[], [], [], [], []]);
    answer(peers[0]!, "a");
    answer(peers[2]!, "c");
    const silent = [peers[1]!, peers[3]!, peers[4]!];
    const pendingAcks = () =>
      silent.map((p) => (p.socket as unknown as { acks?: Map<number, unknown> }).acks?.size ?? 0);
    const err = await within(
      nodes[1]!.io
        .timeout(200)
        .emitWithAck("q", "x")
        .then(
          () => assert.fail("resolved although clients were silent"),
          (e: unknown) => e,
        ),
      3000,
      "the timeout",
    );
    assert.ok(err instanceof AckTimeoutError);
    assert.deepEqual([...(err as AckTimeoutError & { responses: string[] }).responses].sort(), [
      "a:x",
      "c:x",
    ]);
    await waitFor(() => pendingAcks().every((n) => n === 0), 2000, "released ack callbacks");
  });

  it("local broadcast acks stay on their node", async () => {
    const { nodes } = await startCluster(scope);
    const peers = await spread(scope, nodes, [[], [], []]);
    for (const [i, p] of peers.entries()) answer(p, String(i));
    const res = await within(
      nodes[2]!.io.local.timeout(1000).emitWithAck("q", "l"),
      2000,
      "local acks",
    );
    assert.deepEqual(res, ["2:l"]);
  });
});

describe("cluster requests and a changing membership", () => {
  it("a node restarted with io.close(() => io.listen(port)) rejoins the cluster", async () => {
    const { nodes } = await startCluster(scope, 2);
    const [a, b] = nodes as [ClusterNode, ClusterNode];
    const err = await new Promise<Error | undefined>(
      (resolve) =>
        void a.io.close((e) => {
          a.io.listen(a.port, HOST);
          resolve(e);
        }),
    );
    assert.equal(err, undefined);
    await waitFor(() => a.io.httpServer?.listening === true, 3000, "listening again");
    await waitCounts(nodes, 2);
    const [p] = await spread(scope, [a], [["news"]]);
    b.io.to("news").emit("headline", 1);
    await waitFor(() => received(p!, "headline").length === 1, 3000, "the broadcast from b");
    const fetched = await b.io.in("news").fetchSockets();
    assert.deepEqual(
      fetched.map((s) => s.id),
      [p!.socket.id],
    );
  });

  it("a new node is counted at once and answers requests", async () => {
    const { hub, nodes } = await startCluster(scope, 2);
    const { startNode, waitCounts } = await import("./helpers.js");
    const joined = once(nodes[0]!.adapter, "node-joined");
    const c = await startNode(scope, hub, "C");
    await within(joined, 1000, "node-joined");
    await waitCounts([...nodes, c], 3, 500);
    const p = await peer(scope, c);
    const found = await nodes[0]!.io.fetchSockets();
    assert.deepEqual(
      found.map((s) => s.id),
      [p.socket.id],
    );
    assert.ok((found[0] as unknown as Socket | RemoteSocket) instanceof RemoteSocket);
  });
});
