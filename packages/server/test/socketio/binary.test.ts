/**
 * Binary data through the Socket.IO layer over each transport path: every binary
 * container, nested in objects and arrays, both directions, in acks; and payloads
 * just under and just over `maxHttpBufferSize`.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  connect,
  once,
  pair,
  reason,
  Scope,
  startServer,
  TRANSPORT_MODES,
  within,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** What a Node client receives for any binary container: a Buffer with the same bytes. */
function asBuffer(v: unknown): Buffer {
  assert.ok(Buffer.isBuffer(v) || v instanceof ArrayBuffer, `not binary: ${typeof v}`);
  return Buffer.isBuffer(v) ? v : Buffer.from(v);
}

for (const mode of TRANSPORT_MODES) {
  describe(`binary over ${mode.name}`, () => {
    it("server → client: Buffer, ArrayBuffer, typed arrays, DataView, nested", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const u16 = new Uint16Array([1, 2, 65535]);
      const f64 = new Float64Array([Math.PI]);
      const view = new DataView(new ArrayBuffer(4));
      view.setUint32(0, 0xdeadbeef);
      // A view over part of a bigger buffer: only its own bytes go out.
      const slice = new Uint8Array(bytes(64).buffer, 8, 4);
      const got = once<unknown[]>(client, "bin");
      socket.emit(
        "bin",
        bytes(10),
        bytes(5, 7).buffer.slice(0, 5),
        u16,
        { deep: { list: [f64, "text", { v: view }] }, n: 1 },
        [slice, null],
      );
      const [b, ab, t16, nested, arr] = await got;
      assert.deepEqual(asBuffer(b), bytes(10));
      assert.deepEqual(asBuffer(ab), bytes(5, 7).subarray(0, 5));
      assert.deepEqual(asBuffer(t16), Buffer.from(u16.buffer));
      const n = nested as { deep: { list: [unknown, string, { v: unknown }] }; n: number };
      assert.deepEqual(asBuffer(n.deep.list[0]), Buffer.from(f64.buffer));
      assert.equal(n.deep.list[1], "text");
      assert.deepEqual(asBuffer(n.deep.list[2].v), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
      assert.equal(n.n, 1);
      const [s, nul] = arr as [unknown, null];
      assert.deepEqual(asBuffer(s), Buffer.from(slice));
      assert.equal(nul, null);
    });

    it("client → server: binary nested in objects and arrays arrives as Buffers", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const got = once<unknown[]>(socket, "up");
      client.emit(
        "up",
        bytes(3),
        { a: [new Uint8Array([9, 8, 7])], b: "x" },
        new Uint32Array([1]).buffer,
      );
      const [b, obj, ab] = await got;
      assert.ok(Buffer.isBuffer(b));
      assert.deepEqual(b, bytes(3));
      const o = obj as { a: [Buffer]; b: string };
      assert.ok(Buffer.isBuffer(o.a[0]));
      assert.deepEqual(o.a[0], Buffer.from([9, 8, 7]));
      assert.equal(o.b, "x");
      assert.deepEqual(ab, Buffer.from(new Uint32Array([1]).buffer));
    });

    it("binary in acks, both directions", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      // client → server ack carrying binary
      client.on("give", (n: number, cb: (...a: unknown[]) => void) =>
        cb(bytes(n), { inner: bytes(2, 5) }),
      );
      const [b, o] = await within(
        new Promise<unknown[]>((resolve) =>
          socket.emit("give", 6, (...a: unknown[]) => resolve(a)),
        ),
        2000,
        "the binary ack",
      );
      assert.deepEqual(b, bytes(6));
      assert.deepEqual((o as { inner: Buffer }).inner, bytes(2, 5));
      // server → client ack carrying binary, with binary arguments in
      socket.on("echo", (data: Buffer, cb: (...a: unknown[]) => void) => {
        assert.ok(Buffer.isBuffer(data));
        cb({ back: Buffer.concat([data, Buffer.from([0])]) }, new Uint8Array([1, 2]));
      });
      const res = await client.timeout(2000).emitWithAck("echo", bytes(4));
      assert.deepEqual(
        asBuffer((res as { back: unknown }).back),
        Buffer.concat([bytes(4), Buffer.from([0])]),
      );
      // emitWithAck resolves with the first argument only.
      assert.deepEqual(await within(socket.emitWithAck("give", 1), 2000, "emitWithAck"), bytes(1));
    });

    it("a payload just under the default 1 MB limit passes both ways", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      // Polling carries binary as base64 (4/3 the size), as engine.io does.
      const big = bytes(mode.name === "polling" ? 700_000 : 900_000, 3);
      const text = "x".repeat(900_000);
      const up = once<unknown[]>(socket, "big", 5000);
      client.emit("big", big);
      assert.deepEqual((await up)[0], big);
      const upText = once<unknown[]>(socket, "bigText", 5000);
      client.emit("bigText", text);
      assert.equal((await upText)[0], text);
      const down = once<unknown[]>(client, "big", 5000);
      socket.emit("big", big);
      assert.deepEqual(asBuffer((await down)[0]), big);
    });

    it("a 1.1 MB payload over the limit closes that session only ('payload too large')", async () => {
      const srv = await startServer(scope, { maxHttpBufferSize: 1e6 });
      const victim = await pair(scope, srv, mode);
      const bystander = await pair(scope, srv, TRANSPORT_MODES[0]!);
      const why = reason(victim.socket, 5000);
      victim.client.emit("huge", bytes(1_100_000));
      assert.equal(await why, "payload too large");
      const echo = once(bystander.client, "ok");
      bystander.socket.emit("ok", 1);
      assert.deepEqual(await echo, [1]);
      assert.equal(srv.io.engine.stats.closes["payload too large"], 1);
    });
  });
}

describe("binary limits", () => {
  it("a 1.4 MB payload passes with maxHttpBufferSize 2e6", async () => {
    const srv = await startServer(scope, { maxHttpBufferSize: 2e6 });
    for (const mode of TRANSPORT_MODES) {
      const c = await connect(scope, srv.url, mode.opts);
      const side = [...srv.io.sockets.sockets.values()].find((s) => s.id === c.id)!;
      const big = bytes(1_400_000, 9);
      const up = once<unknown[]>(side, "big", 5000);
      c.emit("big", big);
      assert.deepEqual((await up)[0], big, mode.name);
    }
  });
});
