/**
 * The `parser` option with the npm `socket.io-msgpack-parser` module on both sides:
 * events, acks, binary, rooms and broadcasts over each transport path, and hostile
 * msgpack packets that the module itself lets through.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket, SocketIoParser } from "@switchyard/server";
import notepack from "notepack.io";
import type { ManagerOptions } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import * as socketIoParser from "socket.io-parser";
import {
  once,
  pair,
  quietPeriod,
  rawClient,
  reason,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

// The module ships no types of its own: state the two shapes it satisfies.
const parser = msgpackParser as unknown as SocketIoParser & NonNullable<ManagerOptions["parser"]>;

for (const mode of TRANSPORT_MODES) {
  describe(`msgpack parser over ${mode.name}`, () => {
    it("events, acks both ways, binary and rooms", async () => {
      const srv = await startServer(scope, { parser });
      const a = await pair(scope, srv, mode, { parser });
      const b = await pair(scope, srv, mode, { parser });

      const got = once<unknown[]>(a.client, "hello");
      a.socket.emit("hello", 1, "two", { three: [3, null] }, Buffer.from([1, 2, 3]));
      const [n, s, o, bin] = await got;
      assert.equal(n, 1);
      assert.equal(s, "two");
      assert.deepEqual(o, { three: [3, null] });
      assert.deepEqual(Buffer.from(bin as Uint8Array), Buffer.from([1, 2, 3]));

      a.socket.on("sum", (x: number, y: number, cb: (...r: unknown[]) => void) =>
        cb(x + y, Buffer.from([x])),
      );
      assert.equal(await a.client.timeout(2000).emitWithAck("sum", 2, 3), 5);
      const up = once<unknown[]>(a.socket, "bin");
      a.client.emit("bin", { nested: new Uint8Array([9, 9]) });
      const [nested] = await up;
      assert.deepEqual(Buffer.from((nested as { nested: Uint8Array }).nested), Buffer.from([9, 9]));

      a.client.on("ask", (x: number, cb: (r: number) => void) => cb(x * 10));
      b.client.on("ask", (x: number, cb: (r: number) => void) => cb(x * 100));
      assert.equal(await a.socket.timeout(2000).emitWithAck("ask", 4), 40);
      const all = (await srv.io.timeout(2000).emitWithAck("ask", 1)) as number[];
      assert.deepEqual(
        all.sort((x, y) => x - y),
        [10, 100],
      );

      await b.socket.join("room");
      const gotA: unknown[] = [];
      const gotB: unknown[] = [];
      a.client.on("r", (v: unknown) => gotA.push(v));
      b.client.on("r", (v: unknown) => gotB.push(v));
      srv.io.to("room").emit("r", "room-only");
      a.socket.broadcast.emit("r", "from-a");
      await waitFor(() => gotB.length === 2, 3000, "room broadcasts");
      await quietPeriod(50);
      assert.deepEqual(gotA, []);
      assert.deepEqual(gotB, ["room-only", "from-a"]);

      const why = reason(a.client);
      a.socket.disconnect();
      assert.equal(await why, "io server disconnect");
    });
  });
}

describe("msgpack parser safety", () => {
  /** Opens a raw msgpack session joined to "/"; returns it and its socket. */
  async function rawMsgpack(srv: TestServer) {
    const raw = await rawClient(scope, srv.port);
    const side = once<[Socket]>(srv.io, "connection");
    raw.send(notepack.encode({ type: 0, nsp: "/", data: {} }));
    await raw.next();
    const [socket] = await side;
    return { raw, socket };
  }

  const hostile: [string, unknown][] = [
    ["a numeric event name", { type: 2, nsp: "/", data: [1, "x"] }],
    ["a reserved event name", { type: 2, nsp: "/", data: ["disconnect", "spoofed"] }],
    ["an empty event", { type: 2, nsp: "/", data: [] }],
    ["a fractional ack id", { type: 3, nsp: "/", id: 1.5, data: [] }],
    ["a bad namespace", { type: 2, nsp: "no-slash", data: ["x"] }],
    ["a non-object packet", "just a string"],
  ];
  for (const [what, packet] of hostile) {
    it(`${what} is a parse error`, async () => {
      const srv = await startServer(scope, { parser });
      const { raw, socket } = await rawMsgpack(srv);
      let handled = 0;
      socket.onAny(() => handled++);
      const why = reason(socket);
      raw.send(notepack.encode(packet));
      assert.equal(await why, "parse error");
      assert.equal(handled, 0);
      assert.equal(srv.io.stats.parseErrors, 1);
      const other = await pair(scope, srv, TRANSPORT_MODES[0]!, { parser });
      const ok = once(other.client, "ok");
      other.socket.emit("ok");
      await ok;
    });
  }

  it("a text frame (not msgpack) is a parse error", async () => {
    const srv = await startServer(scope, { parser });
    const { raw, socket } = await rawMsgpack(srv);
    const why = reason(socket);
    raw.send('42["x"]');
    assert.equal(await why, "parse error");
  });

  it("circular data throws a SwitchyardError to the caller", async () => {
    const srv = await startServer(scope, { parser });
    const { client, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!, { parser });
    const o: Record<string, unknown> = {};
    o.self = o;
    assert.throws(() => socket.emit("x", o), { name: "ProtocolError" });
    assert.throws(() => srv.io.emit("x", o), { name: "ProtocolError" });
    const ok = once(client, "ok");
    socket.emit("ok", 1);
    assert.deepEqual(await ok, [1]);
  });
});

describe("socket.io-parser as a module", () => {
  // The default wire format, but decoded by the npm module: its decoder holds a binary
  // packet back until every attachment arrived, emitting nothing for the first parts.
  for (const mode of TRANSPORT_MODES) {
    it(`binary events and acks with attachments (${mode.name})`, async () => {
      const srv = await startServer(scope, { parser: socketIoParser });
      const { client, socket } = await pair(scope, srv, mode);
      const up = once<unknown[]>(socket, "bin");
      client.emit("bin", Buffer.from([1, 2]), { b: Buffer.from([3]) });
      const [a, b] = await up;
      assert.deepEqual(Buffer.from(a as Uint8Array), Buffer.from([1, 2]));
      assert.deepEqual(Buffer.from((b as { b: Uint8Array }).b), Buffer.from([3]));
      socket.on("echo", (x: unknown, cb: (v: unknown) => void) => cb(x));
      const back = await client.timeout(2000).emitWithAck("echo", Buffer.from([7]));
      assert.deepEqual(Buffer.from(back as Uint8Array), Buffer.from([7]));
      const down = once<unknown[]>(client, "down");
      socket.emit("down", new Uint8Array([5, 6]));
      assert.deepEqual(Buffer.from((await down)[0] as Uint8Array), Buffer.from([5, 6]));
    });
  }
});
