/**
 * Volatile emits as socket.io delivers them: a volatile packet leaves only if the
 * connection can take it at once — a WebSocket with nothing queued or unwritten, a
 * polling client with a GET waiting and nothing buffered for it. So after a write in the
 * same tick it is dropped (`emit(); volatile.emit()` delivers 1), and of 50 volatile
 * emits in one tick only the first arrives; once the connection is idle again, the next
 * one is delivered. Unicast and broadcast, text and binary, on every transport path.
 * Real socket.io-client sockets count what arrives; a non-volatile "end" marks the end.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import { EncodedPacket } from "../../src/broadcast/encoded-packet.js";
import { type OutboxTarget, QUEUE_MIN_RECIPIENTS } from "../../src/engine/outbox.js";
import {
  once,
  pair,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
  type TransportMode,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** Waits until a volatile packet would be written at once (polling: a GET waits). */
async function ready(socket: Socket): Promise<void> {
  await waitFor(() => socket.conn.transport.idle, 3000, "the connection to be ready");
}

/** Records every "v" (any value) and "b" (binary, as Buffers) the client receives. */
function record(client: ClientSocket): { v: unknown[]; b: Buffer[] } {
  const got = { v: [] as unknown[], b: [] as Buffer[] };
  client.on("v", (x: unknown) => got.v.push(x));
  client.on("b", (x: Buffer | ArrayBuffer) => got.b.push(Buffer.from(x as ArrayBuffer)));
  return got;
}

function dropped(srv: TestServer): number {
  return srv.io.engine.stats.droppedVolatile;
}

for (const mode of TRANSPORT_MODES) {
  describe(`volatile over ${mode.name}`, () => {
    async function one(m: TransportMode) {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, m);
      return { srv, client, socket, got: record(client) };
    }

    it("emit() then volatile.emit() in one tick: the volatile one is dropped", async () => {
      const { srv, client, socket, got } = await one(mode);
      await ready(socket);
      const before = dropped(srv);
      const end = once(client, "end");
      socket.emit("v", 1);
      socket.volatile.emit("v", 2);
      socket.emit("end");
      await end;
      assert.deepEqual(got.v, [1]);
      assert.equal(dropped(srv) - before, 1);
    });

    it("50 volatile emits in one tick deliver the first; the next, once ready, arrives", async () => {
      const { srv, client, socket, got } = await one(mode);
      await ready(socket);
      const before = dropped(srv);
      const end = once(client, "end");
      for (let i = 0; i < 50; i++) socket.volatile.emit("v", i);
      socket.emit("end");
      await end;
      assert.deepEqual(got.v, [0]);
      assert.equal(dropped(srv) - before, 49);
      // Not a permanent state: an idle connection takes the next volatile packet.
      await ready(socket);
      const again = once(client, "v");
      socket.volatile.emit("v", "again");
      assert.deepEqual(await again, ["again"]);
    });

    it("binary: the first of 50 volatile emits arrives whole, the rest are dropped whole", async () => {
      const { srv, client, socket, got } = await one(mode);
      await ready(socket);
      const before = dropped(srv);
      let end = once(client, "end");
      for (let i = 0; i < 50; i++) socket.volatile.emit("b", Buffer.from([i, 1, 2]));
      socket.emit("end");
      await end;
      assert.deepEqual(got.b, [Buffer.from([0, 1, 2])]);
      assert.equal(dropped(srv) - before, 49);
      // After a binary write, a volatile binary packet is dropped too.
      await ready(socket);
      end = once(client, "end");
      socket.emit("b", Buffer.from([7]));
      socket.volatile.emit("b", Buffer.from([8]));
      socket.emit("end");
      await end;
      assert.deepEqual(got.b, [Buffer.from([0, 1, 2]), Buffer.from([7])]);
    });

    it("broadcast: io.volatile.emit() reaches each ready client once per tick", async () => {
      const srv = await startServer(scope);
      const peers = [await pair(scope, srv, mode), await pair(scope, srv, mode)];
      const got = peers.map((p) => record(p.client));
      for (const p of peers) await ready(p.socket);
      let ends = peers.map((p) => once(p.client, "end"));
      for (let i = 0; i < 50; i++) srv.io.volatile.emit("v", i);
      srv.io.emit("end");
      await Promise.all(ends);
      for (const g of got) assert.deepEqual(g.v, [0]);
      // emit() then volatile.emit(): only the first.
      for (const p of peers) await ready(p.socket);
      ends = peers.map((p) => once(p.client, "end"));
      srv.io.emit("v", "first");
      srv.io.volatile.emit("v", "second");
      srv.io.to(peers[0]!.socket.id).volatile.emit("v", "to one");
      srv.io.emit("end");
      await Promise.all(ends);
      for (const g of got) assert.deepEqual(g.v, [0, "first"]);
    });

    it("broadcast binary: the first volatile packet arrives whole, later ones not at all", async () => {
      const srv = await startServer(scope);
      const peers = [await pair(scope, srv, mode), await pair(scope, srv, mode)];
      const got = peers.map((p) => record(p.client));
      for (const p of peers) await ready(p.socket);
      const ends = peers.map((p) => once(p.client, "end"));
      for (let i = 0; i < 50; i++) srv.io.volatile.emit("b", Buffer.from([i, 9]));
      srv.io.emit("end");
      await Promise.all(ends);
      for (const g of got) assert.deepEqual(g.b, [Buffer.from([0, 9])]);
    });
  });
}

describe("volatile over a permessage-deflate WebSocket (framed by ws)", () => {
  it("emit() then volatile.emit(), and 50 volatile emits, each deliver one", async () => {
    const srv = await startServer(scope, { perMessageDeflate: { threshold: 0 } });
    const websocket = TRANSPORT_MODES.find((m) => m.name === "websocket")!;
    const { client, socket } = await pair(scope, srv, websocket);
    assert.equal(
      (socket.conn.transport as { socket?: { extensions?: string } }).socket?.extensions,
      "permessage-deflate",
      "the connection negotiated compression",
    );
    const got = record(client);
    await ready(socket);
    let end = once(client, "end");
    socket.emit("v", 1);
    socket.volatile.emit("v", 2);
    socket.emit("end");
    await end;
    assert.deepEqual(got.v, [1]);
    await ready(socket);
    end = once(client, "end");
    for (let i = 0; i < 50; i++) socket.volatile.emit("v", i);
    socket.emit("end");
    await end;
    assert.deepEqual(got.v, [1, 0]);
  });
});

describe("volatile behind the outbox's queue", () => {
  it("a volatile binary packet that cannot be taken is dropped whole, never its header alone", async () => {
    const srv = await startServer(scope);
    const websocket = TRANSPORT_MODES.find((m) => m.name === "websocket")!;
    const { client, socket } = await pair(scope, srv, websocket);
    const got = record(client);
    await ready(socket);
    // Something waiting in the engine's outbox: every write joins it and is decided on
    // delivery (a big broadcast to sessions already gone, which delivery skips).
    const gone = { readyState: "closed" } as unknown as OutboxTarget;
    const outbox = srv.io.engine.outbox;
    const targets = new Array<OutboxTarget>(QUEUE_MIN_RECIPIENTS).fill(gone);
    outbox.broadcast(new EncodedPacket(["x"]), targets, false, true);
    assert.ok(outbox.active);
    const end = once(client, "end");
    socket.emit("b", Buffer.from([1]));
    socket.volatile.emit("b", Buffer.from([2]));
    socket.emit("end");
    await end;
    assert.deepEqual(got.b, [Buffer.from([1])]);
    assert.equal(client.connected, true, "no stray attachment broke the client's decoder");
  });
});
