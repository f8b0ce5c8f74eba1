/**
 * The broadcast API on server, namespace and socket: operator chains and their flags,
 * broadcast acks (callback and emitWithAck, complete and partial), the socket-set
 * utilities (fetchSockets, socketsJoin/Leave, disconnectSockets, allSockets),
 * serverSideEmit on a single node, and catch-all listeners both ways.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { AckTimeoutError, type Socket } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  httpGet,
  httpRequest,
  once,
  pair,
  quietPeriod,
  reason,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
  type TransportMode,
  waitFor,
  within,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

interface Peer {
  client: ClientSocket;
  socket: Socket;
  got: unknown[];
}

/** Connects `n` clients (one per mode in turn unless `mode` is given), each recording "ev". */
async function peers(srv: TestServer, n: number, mode?: TransportMode): Promise<Peer[]> {
  const out: Peer[] = [];
  for (let i = 0; i < n; i++) {
    const p = await pair(scope, srv, mode ?? TRANSPORT_MODES[i % TRANSPORT_MODES.length]!);
    const got: unknown[] = [];
    p.client.on("ev", (v: unknown) => got.push(v));
    out.push({ ...p, got });
  }
  return out;
}

describe("broadcast operators", () => {
  it("to/in/except chains: union of targets minus exclusions, each client once", async () => {
    const srv = await startServer(scope);
    const [a, b, c, d] = await peers(srv, 4);
    await a!.socket.join(["red", "blue"]);
    await b!.socket.join("red");
    await c!.socket.join(["blue", "vip"]);
    // d is in no room.
    srv.io.to("red").to("blue").emit("ev", "red|blue"); // a, b, c
    srv.io.in(["red", "blue"]).except("vip").emit("ev", "red|blue-vip"); // a, b
    srv.io.except("red").emit("ev", "all-red"); // c, d
    srv.io.except(["red", "blue"]).emit("ev", "all-red-blue"); // d
    srv.io.to("vip").except("blue").emit("ev", "nobody");
    srv.io.emit("ev", "all");
    await waitFor(
      () =>
        a!.got.length === 3 && b!.got.length === 3 && c!.got.length === 3 && d!.got.length === 3,
      3000,
      "broadcasts",
    );
    await quietPeriod(50);
    assert.deepEqual(a!.got, ["red|blue", "red|blue-vip", "all"]);
    assert.deepEqual(b!.got, ["red|blue", "red|blue-vip", "all"]);
    assert.deepEqual(c!.got, ["red|blue", "all-red", "all"]);
    assert.deepEqual(d!.got, ["all-red", "all-red-blue", "all"]);
  });

  it("operators are immutable: a derived chain does not change its base", async () => {
    const srv = await startServer(scope);
    const [a, b] = await peers(srv, 2);
    await a!.socket.join("x");
    await b!.socket.join("y");
    const base = srv.io.to("x");
    base.to("y");
    base.except("x");
    base.emit("ev", "x-only");
    await waitFor(() => a!.got.length === 1, 3000, "x broadcast");
    await quietPeriod(50);
    assert.deepEqual(b!.got, []);
  });

  it("local, volatile, compress and timeout flags on server, namespace and socket", async () => {
    const srv = await startServer(scope);
    const [a, b] = await peers(srv, 2, TRANSPORT_MODES[0]);
    const flags: { volatile: boolean; compress: boolean }[] = [];
    // Recorded where the adapter hands each broadcast to the engine's outbox.
    const conn = b!.socket.conn;
    const outbox = srv.io.engine.outbox;
    const original = outbox.broadcast.bind(outbox);
    outbox.broadcast = (packet, recipients, volatile, compress) => {
      if (recipients.includes(conn)) flags.push({ volatile, compress });
      original(packet, recipients, volatile, compress);
    };
    srv.io.local.emit("ev", "local");
    srv.io.volatile.emit("ev", "volatile");
    srv.io.compress(false).emit("ev", "uncompressed");
    srv.io.of("/").local.volatile.compress(false).emit("ev", "all-flags");
    a!.socket.local.emit("ev", "socket-local");
    a!.socket.volatile.broadcast.emit("ev", "socket-volatile");
    a!.socket.compress(false).broadcast.emit("ev", "socket-uncompressed");
    // Each volatile broadcast follows a write in the same tick, so the connection cannot
    // take it at once and it is dropped, as socket.io drops it; its flags still came down.
    await waitFor(() => b!.got.length === 4, 3000, "4 broadcasts");
    assert.deepEqual(b!.got, ["local", "uncompressed", "socket-local", "socket-uncompressed"]);
    assert.deepEqual(flags, [
      { volatile: false, compress: true },
      { volatile: true, compress: true },
      { volatile: false, compress: false },
      { volatile: true, compress: false },
      { volatile: false, compress: true },
      { volatile: true, compress: true },
      { volatile: false, compress: false },
    ]);
    // The socket's own flags were consumed by its broadcasts.
    const own = once(a!.client, "ev");
    a!.socket.emit("ev", "own");
    assert.deepEqual(await own, ["own"]);
    // `a` saw only broadcasts that did not exclude it plus its own emit.
    assert.deepEqual(a!.got, ["local", "uncompressed", "own"]);
  });

  it("volatile broadcasts skip a polling client that is not ready", async () => {
    const srv = await startServer(scope);
    // A raw polling client: after the handshake it has no GET pending, so it is not
    // ready, and stays so until we poll.
    const open = await httpGet(srv.port, "/socket.io/?EIO=4&transport=polling");
    const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const side = once<[Socket]>(srv.io, "connection");
    assert.equal((await httpRequest(srv.port, path, { method: "POST", body: "40" })).status, 200);
    await side;
    const dropped = srv.io.engine.stats.droppedVolatile;
    srv.io.volatile.emit("ev", "dropped");
    srv.io.emit("ev", "kept");
    srv.io.volatile.emit("ev", "dropped too");
    assert.equal(srv.io.engine.stats.droppedVolatile, dropped + 2);
    const poll = await httpGet(srv.port, path);
    assert.match(poll.body, /^40\{"sid":/);
    assert.match(poll.body, /42\["ev","kept"\]/);
    assert.doesNotMatch(poll.body, /dropped/);
  });
});

describe("broadcast acks", () => {
  for (const target of ["server", "namespace", "socket"] as const) {
    it(`collects every client's ack (${target})`, async () => {
      const srv = await startServer(scope);
      const all = await peers(srv, 3);
      for (const [i, p] of all.entries()) {
        p.client.on("ask", (x: number, cb: (r: unknown) => void) => cb({ i, x }));
      }
      const op =
        target === "server"
          ? srv.io.timeout(2000)
          : target === "namespace"
            ? srv.io.of("/").timeout(2000)
            : all[0]!.socket.timeout(2000).broadcast;
      const expected = target === "socket" ? [1, 2] : [0, 1, 2];
      const [err, responses] = await new Promise<[Error | null, { i: number; x: number }[]]>(
        (resolve) =>
          op.emit("ask", 7, (e: Error | null, r: { i: number; x: number }[]) => resolve([e, r])),
      );
      assert.equal(err, null);
      assert.deepEqual(responses.map((r) => r.i).sort(), expected);
      assert.ok(responses.every((r) => r.x === 7));
      const viaPromise = (await op.emitWithAck("ask", 8)) as { i: number; x: number }[];
      assert.deepEqual(viaPromise.map((r) => r.i).sort(), expected);
    });
  }

  it("one client not answering: err with the partial responses; emitWithAck rejects", async () => {
    const srv = await startServer(scope);
    const all = await peers(srv, 3);
    all[0]!.client.on("ask", (cb: (r: string) => void) => cb("a"));
    all[1]!.client.on("ask", (cb: (r: string) => void) => cb("b"));
    all[2]!.client.on("ask", () => {}); // never answers
    const t0 = Date.now();
    const [err, responses] = await new Promise<[Error | null, string[]]>((resolve) =>
      srv.io.timeout(150).emit("ask", (e: Error | null, r: string[]) => resolve([e, r])),
    );
    assert.ok(Date.now() - t0 >= 140);
    assert.ok(err instanceof AckTimeoutError);
    assert.deepEqual([...responses].sort(), ["a", "b"]);
    await assert.rejects(srv.io.timeout(100).emitWithAck("ask"), AckTimeoutError);
  });

  it("at the timeout: emitWithAck's error carries the responses, silent clients' ack callbacks are released", async () => {
    const srv = await startServer(scope);
    const all = await peers(srv, 3);
    all[0]!.client.on("ask", (cb: (r: string) => void) => cb("a"));
    all[1]!.client.on("ask", (cb: (r: string) => void) => cb("b"));
    all[2]!.client.on("ask", () => {}); // never answers
    const silent = all[2]!.socket;
    const pendingAcks = () =>
      (silent as unknown as { acks?: Map<number, unknown> }).acks?.size ?? 0;
    const err = await srv.io
      .timeout(150)
      .emitWithAck("ask")
      .then(
        () => assert.fail("resolved although a client was silent"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof AckTimeoutError);
    assert.deepEqual([...(err as AckTimeoutError & { responses: string[] }).responses].sort(), [
      "a",
      "b",
    ]);
    await waitFor(() => pendingAcks() === 0, 1000, "the silent client's ack released");

    // A periodic timed broadcast (from the server, a room, a socket) leaves nothing behind.
    await silent.join("room");
    let timedOut = 0;
    const count = (e: Error | null) => {
      if (e instanceof AckTimeoutError) timedOut++;
    };
    for (let i = 0; i < 10; i++) {
      srv.io.timeout(100).emit("ask", count);
      srv.io.to("room").timeout(100).emit("ask", count);
      all[0]!.socket.timeout(100).broadcast.emit("ask", count);
    }
    assert.equal(pendingAcks(), 30, "awaited until the timeout");
    await waitFor(() => timedOut === 30, 3000, "30 timeouts");
    await waitFor(() => pendingAcks() === 0, 1000, "every callback released");
    assert.equal(silent.connected, true);
  });

  it("with no recipient the ack fires at once with no responses", async () => {
    const srv = await startServer(scope);
    const [err, responses] = await within(
      new Promise<unknown[]>((resolve) =>
        srv.io
          .to("empty-room")
          .timeout(5000)
          .emit("ask", (...args: unknown[]) => resolve(args)),
      ),
      1000,
      "the empty broadcast ack",
    );
    assert.equal(err, null);
    assert.deepEqual(responses, []);
    assert.deepEqual(
      await within(srv.io.timeout(5000).emitWithAck("ask"), 1000, "emitWithAck"),
      [],
    );
  });

  it("room-filtered broadcast acks only count the targeted clients", async () => {
    const srv = await startServer(scope);
    const all = await peers(srv, 3);
    for (const [i, p] of all.entries()) p.client.on("ask", (cb: (r: number) => void) => cb(i));
    await all[1]!.socket.join("room");
    await all[2]!.socket.join("room");
    const responses = (await srv.io
      .to("room")
      .except(all[2]!.socket.id)
      .timeout(1000)
      .emitWithAck("ask")) as number[];
    assert.deepEqual(responses, [1]);
  });
});

describe("socket-set utilities", () => {
  it("fetchSockets, socketsJoin, socketsLeave, allSockets, disconnectSockets", async () => {
    const srv = await startServer(scope);
    const [a, b, c] = await peers(srv, 3);
    await a!.socket.join("room");
    await b!.socket.join("room");

    const fetched = await srv.io.in("room").fetchSockets();
    assert.deepEqual(fetched.map((s) => s.id).sort(), [a!.socket.id, b!.socket.id].sort());
    const f = fetched.find((s) => s.id === a!.socket.id)!;
    assert.ok(f.rooms.has("room"));
    assert.equal(typeof f.handshake.time, "string");
    const got = once(a!.client, "direct");
    f.emit("direct", "hi");
    assert.deepEqual(await got, ["hi"]);
    assert.equal((await srv.io.fetchSockets()).length, 3);
    assert.equal((await srv.io.except("room").fetchSockets()).length, 1);

    assert.deepEqual(
      await srv.io.allSockets(),
      new Set([a!.socket.id, b!.socket.id, c!.socket.id]),
    );
    assert.deepEqual(await srv.io.in("room").allSockets(), new Set([a!.socket.id, b!.socket.id]));

    srv.io.in("room").socketsJoin(["r2", "r3"]);
    assert.ok(a!.socket.rooms.has("r2") && a!.socket.rooms.has("r3"));
    assert.ok(!c!.socket.rooms.has("r2"));
    srv.io.except("room").socketsJoin("outside");
    assert.ok(c!.socket.rooms.has("outside"));
    srv.io.in(a!.socket.id).socketsLeave(["r2", "room"]);
    assert.deepEqual([...a!.socket.rooms].sort(), [a!.socket.id, "r3"].sort());
    srv.io.socketsLeave("r3");
    assert.equal(srv.io.sockets.adapter.rooms.has("r3"), false);

    const reasons = Promise.all([reason(b!.socket), reason(b!.client)]);
    srv.io.in("room").disconnectSockets();
    assert.deepEqual(await reasons, ["server namespace disconnect", "io server disconnect"]);
    assert.equal(a!.socket.connected, true);
    // disconnectSockets(true) closes the underlying connections.
    const closed = reason(c!.socket);
    srv.io.in(c!.socket.id).disconnectSockets(true);
    assert.equal(await closed, "server namespace disconnect");
    await waitFor(() => srv.io.engine.clientsCount === 1, 3000, "c's session to close");
  });

  it("the adapter emits create-room / join-room / leave-room / delete-room", async () => {
    const srv = await startServer(scope);
    const adapter = srv.io.of("/").adapter;
    const events: string[] = [];
    let own = "";
    const label = (room: string) => (room === own ? "<own>" : room);
    adapter.on("create-room", (room: string) => events.push(`create:${label(room)}`));
    adapter.on("join-room", (room: string) => events.push(`join:${label(room)}`));
    adapter.on("leave-room", (room: string) => events.push(`leave:${label(room)}`));
    adapter.on("delete-room", (room: string) => events.push(`delete:${label(room)}`));
    srv.io.use((socket, next) => {
      own = socket.id;
      next();
    });
    const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    await socket.join("r");
    await socket.join("r");
    await socket.leave("r");
    const gone = reason(socket);
    client.disconnect();
    await gone;
    assert.deepEqual(events, [
      "create:<own>",
      "join:<own>",
      "create:r",
      "join:r",
      "leave:r",
      "delete:r",
      "leave:<own>",
      "delete:<own>",
    ]);
  });

  it("serverSideEmit on a single node: no local delivery, an ack gets []", async () => {
    const srv = await startServer(scope);
    let delivered = false;
    srv.io.on("ping-nodes", () => {
      delivered = true;
    });
    assert.equal(srv.io.serverSideEmit("ping-nodes", 1), true);
    const [err, responses] = await within(
      new Promise<unknown[]>((resolve) =>
        srv.io.serverSideEmit("ping-nodes", 2, (...args: unknown[]) => resolve(args)),
      ),
      1000,
      "the serverSideEmit ack",
    );
    assert.equal(err, null);
    assert.deepEqual(responses, []);
    assert.deepEqual(
      await within(srv.io.serverSideEmitWithAck("ping-nodes"), 1000, "serverSideEmitWithAck"),
      [],
    );
    assert.equal(delivered, false);
    assert.throws(() => srv.io.serverSideEmit("connection"), /reserved/);
  });
});

describe("catch-all listeners", () => {
  it("onAny/prependAny/offAny/listenersAny and the outgoing variants", async () => {
    const srv = await startServer(scope);
    const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    const calls: string[] = [];
    const first = (ev: string, ...args: unknown[]) =>
      calls.push(`first:${ev}:${JSON.stringify(args)}`);
    const second = (ev: string) => calls.push(`second:${ev}`);
    const before = (ev: string) => calls.push(`before:${ev}`);
    socket.onAny(first);
    socket.onAny(second);
    socket.prependAny(before);
    assert.deepEqual(socket.listenersAny(), [before, first, second]);
    socket.on("hello", () => calls.push("handler"));
    client.emit("hello", 1, { a: 2 });
    await waitFor(() => calls.length === 4, 3000, "listeners");
    assert.deepEqual(calls, ["before:hello", 'first:hello:[1,{"a":2}]', "second:hello", "handler"]);

    // An event with no listener still reaches the catch-all, with its ack.
    calls.length = 0;
    socket.offAny(before);
    assert.deepEqual(socket.listenersAny(), [first, second]);
    socket.offAny(second);
    socket.onAny((ev: string, ...args: unknown[]) => {
      const cb = args.at(-1);
      if (ev === "needs-ack" && typeof cb === "function") cb("from any");
    });
    assert.equal(await client.timeout(2000).emitWithAck("needs-ack"), "from any");
    socket.offAny();
    assert.deepEqual(socket.listenersAny(), []);

    const out: unknown[][] = [];
    const outA = (...args: unknown[]) => out.push(["a", ...args]);
    const outB = (...args: unknown[]) => out.push(["b", ...args]);
    socket.onAnyOutgoing(outA);
    socket.prependAnyOutgoing(outB);
    assert.deepEqual(socket.listenersAnyOutgoing(), [outB, outA]);
    const got = once(client, "news");
    socket.emit("news", 1, 2);
    await got;
    assert.deepEqual(out, [
      ["b", "news", 1, 2],
      ["a", "news", 1, 2],
    ]);
    socket.offAnyOutgoing(outB);
    assert.deepEqual(socket.listenersAnyOutgoing(), [outA]);
    socket.offAnyOutgoing();
    assert.deepEqual(socket.listenersAnyOutgoing(), []);
  });

  it("onAnyOutgoing sees the broadcasts that reach the socket, binary included", async () => {
    const srv = await startServer(scope);
    const [a, b] = await peers(srv, 2, TRANSPORT_MODES[0]);
    const nsp = srv.io.of("/");
    assert.equal(nsp.outgoingListeners, 0);
    const seen: unknown[][] = [];
    const listener = (...args: unknown[]) => seen.push(args);
    a!.socket.onAnyOutgoing(listener);
    assert.equal(nsp.outgoingListeners, 1);
    await a!.socket.join("room");
    const arrived: unknown[][] = [];
    a!.client.onAny((...args: unknown[]) => arrived.push(args));
    a!.client.on("ask", (cb: (v: string) => void) => cb("ok"));

    srv.io.emit("all", 1);
    srv.io.to("room").emit("room", { x: 2 });
    srv.io.to(a!.socket.id).emit("direct", Buffer.from([1, 2, 3]));
    srv.io.except(a!.socket.id).emit("not-for-a"); // reaches b only
    b!.socket.broadcast.emit("from-b");
    await srv.io.to("room").timeout(1000).emitWithAck("ask");
    await waitFor(() => arrived.length === 5, 3000, "five events at the client");
    assert.deepEqual(seen, [
      ["all", 1],
      ["room", { x: 2 }],
      ["direct", Buffer.from([1, 2, 3])],
      ["from-b"],
      ["ask"],
    ]);

    // Off, and gone with the socket: broadcasts no longer look for listeners.
    a!.socket.offAnyOutgoing(listener);
    assert.equal(nsp.outgoingListeners, 0);
    srv.io.emit("after-off");
    b!.socket.onAnyOutgoing(listener);
    b!.socket.onAnyOutgoing(() => {});
    assert.equal(nsp.outgoingListeners, 1, "counted once per socket");
    const gone = once(b!.socket, "disconnect");
    b!.client.disconnect();
    await gone;
    assert.equal(nsp.outgoingListeners, 0);
    b!.socket.offAnyOutgoing();
    assert.equal(nsp.outgoingListeners, 0, "a disconnected socket is not counted again");
    assert.equal(seen.length, 5);
  });

  it("a throwing catch-all listener or handler is reported, not fatal", async () => {
    const srv = await startServer(scope);
    const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    socket.onAny(() => {
      throw new Error("any failed");
    });
    socket.on("boom", () => {
      throw new Error("handler failed");
    });
    const errors: string[] = [];
    socket.on("error", (err: Error) => errors.push(err.message));
    client.emit("boom");
    await waitFor(() => errors.length === 2, 3000, "two errors");
    assert.deepEqual(errors, ["any failed", "handler failed"]);
    assert.equal(srv.io.stats.handlerErrors, 2);
    socket.on("fine", (cb: (v: string) => void) => cb("still serving"));
    assert.equal(await client.timeout(2000).emitWithAck("fine"), "still serving");
  });
});
