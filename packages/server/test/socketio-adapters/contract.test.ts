/**
 * socket.io's adapter contract on one Switchyard server, with real socket.io-client 4.8
 * clients on every transport and `socket.io-adapter` 2.5's own classes (the base of every
 * official adapter): what `io.adapter()` and the `adapter` option accept and refuse,
 * `io.adapter(factory)` replacing the adapters of existing namespaces (connected sockets
 * keep their rooms), broadcasts written through `client.writeToEngine` (text and binary,
 * volatile, `onAnyOutgoing`), broadcast acks through `socket.acks` with ids from the
 * shared `nsp._ids` counter, and the contract members living on the prototypes (nothing
 * per connection).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { decode, encode } from "@msgpack/msgpack";
import {
  type Adapter,
  type AdapterNamespace,
  InvalidOptionError,
  MemoryAdapter,
  msgpackParser,
  Server,
} from "@switchyard/server";
import { Adapter as SioAdapter } from "socket.io-adapter";
import type { ManagerOptions } from "socket.io-client";
import npmMsgpackParser from "socket.io-msgpack-parser";
import {
  connect,
  once,
  pair,
  quietPeriod,
  Scope,
  startServer,
  TRANSPORT_MODES,
  waitFor,
} from "../socketio/helpers.js";

describe("socket.io adapter contract", () => {
  const scope = new Scope();
  after(() => scope.close());

  test("io.adapter() returns the factory; non-functions are refused clearly", async () => {
    const io = new Server();
    scope.add(io, (x) => x.close());
    assert.equal(io.adapter(), MemoryAdapter);
    assert.throws(
      () => io.adapter(42 as never),
      (err: unknown) =>
        err instanceof InvalidOptionError &&
        err.option === "adapter" &&
        /adapter class or a function returning an adapter/.test(err.message),
    );
    assert.equal(io.adapter(), MemoryAdapter, "a refused factory changes nothing");
    assert.throws(() => new Server({ adapter: {} as never }), InvalidOptionError);
    const factory = (nsp: never) => new SioAdapter(nsp);
    assert.equal(io.adapter(factory), io, "chainable, as in socket.io");
    assert.equal(io.adapter(), factory);
    assert.ok(io.of("/").adapter instanceof SioAdapter, "an arrow function factory is called");
    assert.ok(io.of("/late").adapter instanceof SioAdapter, "namespaces created later use it");
  });

  for (const mode of TRANSPORT_MODES) {
    test(`io.adapter(socket.io-adapter class) after clients joined rooms (${mode.name})`, async () => {
      const srv = await startServer(scope);
      const first = await pair(scope, srv, mode);
      await first.socket.join("room");
      const old = srv.io.of("/").adapter;
      let oldClosed = false;
      old.close = () => {
        oldClosed = true;
      };
      srv.io.adapter(SioAdapter);
      const adapter = srv.io.of("/").adapter;
      assert.ok(adapter instanceof SioAdapter);
      assert.ok(oldClosed, "the replaced adapter is closed");
      assert.deepEqual([...first.socket.rooms].sort(), [first.socket.id, "room"].sort());

      const second = await pair(scope, srv, mode);
      await second.socket.join("room");
      const got: unknown[][] = [];
      for (const c of [first.client, second.client]) {
        c.on("news", (...args: unknown[]) => got.push([c === first.client ? 1 : 2, ...args]));
      }
      const outgoing: unknown[][] = [];
      second.socket.onAnyOutgoing((...args: unknown[]) => outgoing.push(args));
      srv.io.to("room").emit("news", "text", 1);
      srv.io.to("room").emit("news", Buffer.from([1, 2, 3]));
      srv.io.except(first.socket.id).emit("news", "not first");
      await waitFor(() => got.length === 5, 3000, "broadcasts through socket.io-adapter");
      const norm = got.map((g) =>
        g.map((x) =>
          x instanceof ArrayBuffer || ArrayBuffer.isView(x)
            ? [...new Uint8Array(x as ArrayBuffer)]
            : x,
        ),
      );
      assert.deepEqual(
        norm.filter((g) => g[0] === 1),
        [
          [1, "text", 1],
          [1, [1, 2, 3]],
        ],
      );
      assert.deepEqual(
        norm.filter((g) => g[0] === 2),
        [
          [2, "text", 1],
          [2, [1, 2, 3]],
          [2, "not first"],
        ],
      );
      assert.equal(
        outgoing.length,
        3,
        "onAnyOutgoing saw every broadcast (notifyOutgoingListeners)",
      );
    });
  }

  test("broadcast acks through socket.acks; ids shared with unicast acks (nsp._ids)", async () => {
    const srv = await startServer(scope);
    srv.io.adapter(SioAdapter);
    const a = await pair(scope, srv, TRANSPORT_MODES[0]!);
    const b = await pair(scope, srv, TRANSPORT_MODES[1]!);
    a.client.on("q", (x: number, ack: (v: string) => void) => ack(`a${x}`));
    b.client.on("q", (x: number, ack: (v: string) => void) => {
      if (x !== 2) ack(`b${x}`);
    });
    // A unicast with an ack still pending while the broadcast asks: distinct ids.
    a.client.on("u", (ack: (v: string) => void) => setTimeout(() => ack("unicast"), 100));
    const unicast = a.socket.timeout(3000).emitWithAck("u");
    const all = await srv.io.timeout(2000).emitWithAck("q", 1);
    assert.deepEqual([...(all as string[])].sort(), ["a1", "b1"]);
    assert.equal(await unicast, "unicast");
    // One client stays silent: the timeout reports the answers that came.
    await assert.rejects(
      srv.io.timeout(300).emitWithAck("q", 2),
      (err: Error & { responses?: unknown[] }) => {
        assert.deepEqual(err.responses, ["a2"]);
        return true;
      },
    );
    assert.ok(srv.io.stats.acksReceived >= 4);
  });

  test("with the msgpack parser: socket.io-adapter encodes with server.encoder, binary frames reach clients", async () => {
    const srv = await startServer(scope, { parser: msgpackParser, adapter: SioAdapter });
    const parser = npmMsgpackParser as unknown as NonNullable<ManagerOptions["parser"]>;
    const a = await pair(scope, srv, TRANSPORT_MODES[0]!, { parser });
    const b = await pair(scope, srv, TRANSPORT_MODES[1]!, { parser });
    assert.ok(srv.io.of("/").adapter instanceof SioAdapter);
    const got: unknown[] = [];
    for (const c of [a.client, b.client]) c.on("m", (x: unknown) => got.push(x));
    srv.io.emit("m", { n: 1, bytes: Buffer.from([9, 8]) });
    await waitFor(() => got.length === 2, 3000, "msgpack broadcast at both clients");
    for (const x of got) {
      const { n, bytes } = x as { n: number; bytes: Uint8Array };
      assert.equal(n, 1);
      assert.deepEqual([...new Uint8Array(bytes)], [9, 8]);
    }
  });

  test("a volatile broadcast, fetchSockets and socketsJoin through a socket.io-adapter class", async () => {
    const srv = await startServer(scope);
    srv.io.adapter(SioAdapter);
    const a = await pair(scope, srv, TRANSPORT_MODES[0]!);
    const got: unknown[] = [];
    a.client.on("v", (x: unknown) => got.push(x));
    srv.io.volatile.emit("v", 1);
    await waitFor(() => got.length === 1, 3000, "volatile broadcast to a ready client");
    const fetched = await srv.io.fetchSockets();
    assert.equal(fetched.length, 1);
    assert.equal(fetched[0], a.socket as unknown, "local sockets are the live sockets");
    srv.io.socketsJoin("joined");
    assert.ok(a.socket.rooms.has("joined"));
    srv.io.in("joined").disconnectSockets();
    await waitFor(() => !a.client.connected, 3000, "disconnectSockets");
  });

  test("a socket's handshake survives the encoders socket.io adapters send it to other nodes with", async () => {
    const srv = await startServer(scope, { adapter: SioAdapter });
    const c = await connect(scope, `${srv.url}?team=blue`, {
      transports: ["websocket"],
      auth: { token: "t-1" },
    });
    assert.ok(c.connected);
    const [local] = await srv.io.of("/").adapter.fetchSockets({ rooms: new Set() });
    assert.ok(local !== undefined);
    const plain = { id: local.id, handshake: local.handshake, rooms: [...local.rooms] };
    // @msgpack/msgpack (redis-streams, postgres adapters) and structured clone (node:cluster
    // IPC with advanced serialization) copy own properties only, never calling toJSON.
    for (const [name, copy] of [
      ["@msgpack/msgpack", decode(encode(plain)) as typeof plain],
      ["structuredClone", structuredClone(plain)],
    ] as const) {
      const h = copy.handshake as unknown as Record<string, unknown>;
      assert.equal(typeof h.time, "string", `${name}: time`);
      assert.equal(typeof h.issued, "number", `${name}: issued`);
      assert.deepEqual(
        h.query,
        { ...(local.handshake as { query: object }).query },
        `${name}: query`,
      );
      assert.equal((h.query as Record<string, string>).team, "blue", `${name}: query value`);
      assert.deepEqual(h.auth, { token: "t-1" }, `${name}: auth`);
    }
    // Sockets of our own adapters keep the lazy form (nothing built per connection).
    const own = await startServer(scope);
    const c2 = await connect(scope, own.url, { transports: ["websocket"] });
    assert.ok(c2.connected);
    const [mine] = own.io.of("/").sockets.values();
    assert.ok(mine !== undefined);
    assert.ok(!Object.keys(mine.handshake).includes("time"), "lazy on our adapters");
  });

  test("the contract costs nothing per connection: members are on the prototypes", async () => {
    const srv = await startServer(scope);
    const { socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    for (const name of ["acks", "notifyOutgoingListeners"]) {
      assert.ok(!Object.hasOwn(socket, name), `socket.${name} is not an own property`);
      assert.ok(name in socket, `socket.${name} exists`);
    }
    assert.ok(!Object.hasOwn(socket.client, "writeToEngine"));
    assert.equal(
      typeof (socket.client as unknown as { writeToEngine: unknown }).writeToEngine,
      "function",
    );
    const nsp = srv.io.of("/") as unknown as Record<string, unknown>;
    for (const name of ["server", "_ids", "_onServerSideEmit"]) {
      assert.ok(!Object.hasOwn(nsp, name), `nsp.${name} is not an own property`);
      assert.ok(name in nsp, `nsp.${name} exists`);
    }
    assert.equal(nsp.server, srv.io, "nsp.server is the Server");
    assert.deepEqual(srv.io.encoder.encode({ type: 2, nsp: "/", data: ["x"] }), ['2["x"]']);
    assert.ok(!Object.keys(srv.io).includes("encoder"));
    // A Switchyard adapter written against our seam still works as before.
    class Counting extends MemoryAdapter {
      static made = 0;
      constructor(nsp: AdapterNamespace) {
        super(nsp);
        Counting.made++;
      }
    }
    srv.io.adapter(Counting);
    assert.equal(Counting.made, 1);
    const c = await connect(scope, srv.url, { transports: ["websocket"] });
    const news = once<[string]>(c, "n");
    srv.io.emit("n", "ok");
    assert.deepEqual(await news, ["ok"]);
    await quietPeriod(10);
    const adapter: Adapter = srv.io.of("/").adapter;
    assert.ok(adapter instanceof Counting);
  });
});
