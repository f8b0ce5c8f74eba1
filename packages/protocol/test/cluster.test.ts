/**
 * The cluster (bus) formats: byte fixtures (the ones docs/wire-format.md shows), the
 * exact bytes and JSON `@socket.io/redis-emitter` publishes, round trips of every
 * control type, and hostile input that must end as ProtocolError, never anything else.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Emitter as SocketIoEmitter } from "@socket.io/redis-emitter";
import {
  broadcastChannel,
  broadcastChannelFor,
  broadcastPrefix,
  CLUSTER_WIRE_VERSION,
  type ControlMessage,
  controlChannel,
  decodeClusterBroadcast,
  decodeControlMessage,
  decodeEmitterRequest,
  EMITTER_UID,
  emitterRequestChannel,
  encodeClusterBroadcast,
  encodeControlMessage,
  encodeEmitterRequest,
  PacketType,
  ProtocolError,
} from "@switchyard/protocol";
import fc from "fast-check";
import * as notepack from "notepack.io";

const np = notepack as unknown as { encode(v: unknown): Buffer; decode(b: Buffer): unknown };

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, (err as Error).message);
    return true;
  });
}

/** What the real emitter publishes: [channel, message] pairs. */
function capture(): {
  client: { publish(ch: string, msg: Buffer | string): void };
  sent: [string, Buffer | string][];
} {
  const sent: [string, Buffer | string][] = [];
  return { client: { publish: (ch, msg) => sent.push([ch, msg]) }, sent };
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("channels", () => {
  test("socket.io's names, room channel only for exactly one room", () => {
    assert.equal(broadcastChannel("/"), "socket.io#/#");
    assert.equal(broadcastChannel("/chat", "r1"), "socket.io#/chat#r1#");
    assert.equal(broadcastChannelFor("/", []), "socket.io#/#");
    assert.equal(broadcastChannelFor("/", new Set(["a"])), "socket.io#/#a#");
    assert.equal(broadcastChannelFor("/", ["a", "b"]), "socket.io#/#");
    assert.equal(emitterRequestChannel("/x"), "socket.io-request#/x#");
    assert.equal(controlChannel("/"), "switchyard#/#");
    assert.equal(controlChannel("/", "n1"), "switchyard#/#n1#");
  });
});

describe("format 1: broadcasts", () => {
  // The worked example of docs/wire-format.md.
  const EXAMPLE = hex(`
    93 a7 656d6974746572
    83 a4 74797065 02
       a4 64617461 92 a4 7469636b 82 a3 73796d a4 41434d45 a2 7078 cb 4029000000000000
       a3 6e7370 a1 2f
    83 a5 726f6f6d73 91 a4 41434d45
       a5 666c616773 80
       a6 657863657074 90`);

  test("byte fixture (docs example) both ways", () => {
    const msg = {
      uid: "emitter",
      packet: { type: PacketType.EVENT, nsp: "/", data: ["tick", { sym: "ACME", px: 12.5 }] },
      opts: { rooms: ["ACME"], except: [], flags: {} },
    };
    assert.deepEqual(encodeClusterBroadcast(msg), EXAMPLE);
    assert.deepEqual(decodeClusterBroadcast(EXAMPLE), msg);
  });

  test("same bytes as @socket.io/redis-emitter, on the same channels", () => {
    const { client, sent } = capture();
    const emitter = new SocketIoEmitter(client);
    emitter.to("ACME").emit("tick", { sym: "ACME", px: 12.5 });
    emitter
      .of("/chat")
      .to(["a", "b"])
      .except("c")
      .volatile.compress(false)
      .emit("m", Buffer.from([1, 2]));
    emitter.emit("all");
    assert.deepEqual(
      sent.map(([ch]) => ch),
      ["socket.io#/#ACME#", "socket.io#/chat#", "socket.io#/#"],
    );
    assert.deepEqual(sent[0]![1], EXAMPLE);
    const ours = encodeClusterBroadcast({
      uid: EMITTER_UID,
      packet: { type: PacketType.EVENT, nsp: "/chat", data: ["m", Buffer.from([1, 2])] },
      opts: { rooms: ["a", "b"], except: ["c"], flags: { volatile: true, compress: false } },
    });
    assert.deepEqual(ours, sent[1]![1]);
    const decoded = decodeClusterBroadcast(sent[1]![1] as Buffer);
    assert.deepEqual(decoded.opts, {
      rooms: ["a", "b"],
      except: ["c"],
      flags: { volatile: true, compress: false },
    });
    assert.deepEqual(decoded.packet.data, ["m", Buffer.from([1, 2])]);
  });

  test("binary values in any form become msgpack bin; BINARY_EVENT is read as EVENT", () => {
    const bytes = encodeClusterBroadcast({
      uid: "n",
      packet: {
        type: PacketType.BINARY_EVENT,
        nsp: "/",
        data: ["b", new Uint16Array([1, 2]), { a: new ArrayBuffer(2) }],
      },
      opts: { rooms: [], except: [], flags: { local: false, timeout: 5 } },
    });
    const msg = decodeClusterBroadcast(bytes);
    assert.equal(msg.packet.type, PacketType.EVENT);
    assert.deepEqual(msg.packet.data, ["b", Buffer.from([1, 0, 2, 0]), { a: Buffer.alloc(2) }]);
    assert.deepEqual(msg.opts.flags, { local: false, timeout: 5 });
    const raw = np.encode(["n", { type: 5, data: ["x"], nsp: "/" }, {}]);
    assert.equal(decodeClusterBroadcast(raw).packet.type, PacketType.EVENT);
  });

  test("lenient on what socket.io adapters add, strict on types", () => {
    // Missing except/flags, extra flags (socket.io's `broadcast`, `binary`), an ack id.
    const m = decodeClusterBroadcast(
      np.encode([
        "u",
        { type: 2, data: ["e"], nsp: "/", id: 4 },
        { rooms: ["r"], flags: { broadcast: true, binary: false } },
      ]),
    );
    assert.deepEqual(m.opts, { rooms: ["r"], except: [], flags: {} });
    assert.equal(m.packet.id, 4);
    throwsCode(
      () =>
        decodeClusterBroadcast(
          np.encode(["u", { type: 2, data: ["e"], nsp: "/" }, { rooms: "r" }]),
        ),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () =>
        decodeClusterBroadcast(
          np.encode(["u", { type: 2, data: ["e"], nsp: "/" }, { rooms: [1] }]),
        ),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () =>
        decodeClusterBroadcast(
          np.encode(["u", { type: 2, data: ["e"], nsp: "/" }, { flags: { volatile: "yes" } }]),
        ),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () =>
        decodeClusterBroadcast(
          np.encode(["u", { type: 2, data: ["e"], nsp: "/" }, { flags: { timeout: -1 } }]),
        ),
      "SY_ERR_BAD_PACKET",
    );
  });

  test("what a node must never deliver", () => {
    const opts = { rooms: [], except: [] };
    // Not an EVENT.
    throwsCode(
      () => decodeClusterBroadcast(np.encode(["u", { type: 0, nsp: "/" }, opts])),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => decodeClusterBroadcast(np.encode(["u", { type: 1, nsp: "/" }, opts])),
      "SY_ERR_BAD_PACKET",
    );
    // Bad event payloads (CVE-2023-32695 shape), namespaces, uids.
    throwsCode(
      () =>
        decodeClusterBroadcast(
          np.encode(["u", { type: 2, data: [{ toString: 1 }], nsp: "/" }, opts]),
        ),
      "SY_ERR_BAD_EVENT",
    );
    throwsCode(
      () => decodeClusterBroadcast(np.encode(["u", { type: 2, data: ["e"], nsp: "chat" }, opts])),
      "SY_ERR_BAD_NAMESPACE",
    );
    throwsCode(
      () => decodeClusterBroadcast(np.encode(["", { type: 2, data: ["e"], nsp: "/" }, opts])),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => decodeClusterBroadcast(np.encode([7, { type: 2, data: ["e"], nsp: "/" }, opts])),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => decodeClusterBroadcast(np.encode(["u", { type: 2, data: ["e"], nsp: "/" }])),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(() => decodeClusterBroadcast(np.encode({ uid: "u" })), "SY_ERR_BAD_PACKET");
    // A "__proto__" key: notepack.io would make it the packet's prototype.
    const polluted = np.encode([
      "u",
      JSON.parse('{"type":2,"data":["e"],"nsp":"/","__proto__":{"id":1}}'),
      opts,
    ]);
    throwsCode(() => decodeClusterBroadcast(polluted), "SY_ERR_BAD_PACKET");
    const pollutedOpts = np.encode([
      "u",
      { type: 2, data: ["e"], nsp: "/" },
      JSON.parse('{"__proto__":{"rooms":["x"]}}'),
    ]);
    throwsCode(() => decodeClusterBroadcast(pollutedOpts), "SY_ERR_BAD_PACKET");
  });

  test("hostile bytes: truncated, bogus lengths, reserved byte, trailing bytes, deep nesting", () => {
    throwsCode(() => decodeClusterBroadcast(Buffer.alloc(0)), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeClusterBroadcast(hex("c1")), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeClusterBroadcast(hex("93 a1 75")), "SY_ERR_BAD_PACKET");
    // A 4 GiB bin header in six bytes: refused by the scan, before any allocation.
    const started = process.hrtime.bigint();
    throwsCode(() => decodeClusterBroadcast(hex("c9 ff ff ff ff 00")), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeClusterBroadcast(hex("dd ff ff ff ff")), "SY_ERR_BAD_PACKET");
    assert.ok(process.hrtime.bigint() - started < 50_000_000n);
    const ok = encodeClusterBroadcast({
      uid: "u",
      packet: { type: 2, nsp: "/", data: ["e"] },
      opts: { rooms: [], except: [], flags: {} },
    });
    throwsCode(() => decodeClusterBroadcast(Buffer.concat([ok, hex("00")])), "SY_ERR_BAD_PACKET");
    const deep = Buffer.concat([
      hex("93 a1 75 83 a4 74797065 02 a3 6e7370 a1 2f a4 64617461 92 a1 65"),
      Buffer.alloc(5000, 0x91),
      hex("c0 80"),
    ]);
    throwsCode(() => decodeClusterBroadcast(deep), "SY_ERR_NESTING_TOO_DEEP");
    throwsCode(() => decodeClusterBroadcast("text" as unknown as Buffer), "SY_ERR_BAD_PACKET");
  });

  test("encoder refuses what receivers would refuse", () => {
    const opts = { rooms: [], except: [], flags: {} };
    throwsCode(
      () =>
        encodeClusterBroadcast({
          uid: "u",
          packet: { type: PacketType.ACK, nsp: "/", data: [], id: 1 },
          opts,
        }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => encodeClusterBroadcast({ uid: "", packet: { type: 2, nsp: "/", data: ["e"] }, opts }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => encodeClusterBroadcast({ uid: "u", packet: { type: 2, nsp: "/", data: [] }, opts }),
      "SY_ERR_BAD_EVENT",
    );
    throwsCode(
      () =>
        encodeClusterBroadcast({
          uid: "u",
          packet: { type: 2, nsp: "/", data: ["e", 2 ** 64] },
          opts,
        }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () =>
        encodeClusterBroadcast({ uid: "u", packet: { type: 2, nsp: "/", data: ["e", 1n] }, opts }),
      "SY_ERR_BAD_PACKET",
    );
  });

  test("broadcastPrefix is what every broadcast of that uid starts with", () => {
    for (const uid of ["n", "x".repeat(31), "y".repeat(32), "z".repeat(128)]) {
      const bytes = encodeClusterBroadcast({
        uid,
        packet: { type: 2, nsp: "/", data: ["e"] },
        opts: { rooms: [], except: [], flags: {} },
      });
      const prefix = broadcastPrefix(uid);
      assert.deepEqual(bytes.subarray(0, prefix.length), prefix);
      assert.notDeepEqual(bytes.subarray(0, prefix.length), broadcastPrefix(`${uid.slice(1)}q`));
    }
  });
});

describe("format 1b: @socket.io/redis-emitter requests", () => {
  test("decodes exactly what the real emitter publishes", () => {
    const { client, sent } = capture();
    const emitter = new SocketIoEmitter(client);
    emitter.to("a").except("b").socketsJoin(["c", "d"]);
    emitter.socketsLeave("c");
    emitter.in("a").disconnectSockets(true);
    emitter.of("/x").serverSideEmit("hello", 1, { two: [2] });
    assert.deepEqual(
      sent.map(([ch]) => ch),
      [
        "socket.io-request#/#",
        "socket.io-request#/#",
        "socket.io-request#/#",
        "socket.io-request#/x#",
      ],
    );
    const decoded = sent.map(([, msg]) => decodeEmitterRequest(Buffer.from(msg as string)));
    assert.deepEqual(decoded, [
      { type: "join", opts: { rooms: ["a"], except: ["b"] }, rooms: ["c", "d"] },
      { type: "leave", opts: { rooms: [], except: [] }, rooms: ["c"] },
      { type: "disconnect", opts: { rooms: ["a"], except: [] }, close: true },
      { type: "serverSideEmit", data: ["hello", 1, { two: [2] }] },
    ]);
    // And our encoder writes the same JSON, byte for byte.
    assert.deepEqual(
      decoded.map((r) => encodeEmitterRequest(r).toString()),
      sent.map(([, msg]) => msg),
    );
    assert.deepEqual(decodeEmitterRequest(sent[0]![1] as string), decoded[0]);
  });

  test("adapter-to-adapter requests and junk are refused", () => {
    throwsCode(
      () => decodeEmitterRequest('{"uid":"x","type":0,"requestId":"1"}'),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    throwsCode(() => decodeEmitterRequest('{"type":"join"}'), "SY_ERR_UNKNOWN_PACKET_TYPE");
    throwsCode(() => decodeEmitterRequest("{"), "SY_ERR_BAD_JSON");
    throwsCode(() => decodeEmitterRequest("[1]"), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeEmitterRequest('{"type":2,"opts":{},"rooms":"x"}'), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeEmitterRequest('{"type":6,"data":[1]}'), "SY_ERR_BAD_EVENT");
    throwsCode(
      () => decodeEmitterRequest(`{"type":6,"data":["e",${"[".repeat(2000)}${"]".repeat(2000)}]}`),
      "SY_ERR_NESTING_TOO_DEEP",
    );
  });
});

describe("format 2: control messages", () => {
  test("byte fixtures (docs examples)", () => {
    const heartbeat = hex("83 a1 76 01 a4 74797065 a9 686561727462656174 a3 756964 a2 6e31");
    assert.deepEqual(encodeControlMessage({ type: "heartbeat", uid: "n1" }), heartbeat);
    assert.deepEqual(decodeControlMessage(heartbeat), { type: "heartbeat", uid: "n1" });
    const join = hex(`85 a1 76 01 a4 74797065 a4 6a6f696e a3 756964 a9 70792d776f726b6572
      a4 6f707473 82 a5 726f6f6d73 91 a4 41434d45 a6 657863657074 90
      a5 726f6f6d73 91 a8 7761746368657273`);
    const msg: ControlMessage = {
      type: "join",
      uid: "py-worker",
      opts: { rooms: ["ACME"], except: [] },
      rooms: ["watchers"],
    };
    assert.deepEqual(encodeControlMessage(msg), join);
    assert.deepEqual(decodeControlMessage(join), msg);
    assert.equal(CLUSTER_WIRE_VERSION, 1);
  });

  test("every type round-trips", () => {
    const target = { rooms: ["a"], except: ["b"] };
    const all: ControlMessage[] = [
      { type: "hello", uid: "n" },
      { type: "heartbeat", uid: "n" },
      { type: "bye", uid: "n" },
      { type: "fetch", uid: "n", rid: "n:1", opts: target },
      {
        type: "fetch-res",
        uid: "n",
        rid: "n:1",
        sockets: [
          {
            id: "s1",
            handshake: { auth: { t: 1 }, headers: { a: "b" } },
            rooms: ["s1", "a"],
            data: { bin: Buffer.from([9]) },
          },
        ],
      },
      { type: "join", uid: "n", opts: target, rooms: ["c"] },
      { type: "leave", uid: "n", opts: target, rooms: ["c"] },
      { type: "disconnect", uid: "n", opts: target, close: true },
      { type: "emit", uid: "n", data: ["ev", 1] },
      { type: "emit", uid: "n", rid: "n:2", data: ["ev", { x: [null] }] },
      { type: "emit-res", uid: "n", rid: "n:2", args: ["pong", 2] },
      {
        type: "broadcast",
        uid: "n",
        rid: "n:3",
        packet: { type: PacketType.EVENT, nsp: "/", data: ["q", 1] },
        opts: { ...target, flags: { timeout: 1000, compress: false } },
      },
      { type: "broadcast-count", uid: "n", rid: "n:3", count: 7 },
      { type: "broadcast-ack", uid: "n", rid: "n:3", args: [{ ok: true }] },
    ];
    for (const m of all) assert.deepEqual(decodeControlMessage(encodeControlMessage(m)), m, m.type);
  });

  test("unknown version or type is 'unsupported', not malformed", () => {
    throwsCode(
      () => decodeControlMessage(np.encode({ v: 2, type: "heartbeat", uid: "n" })),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    throwsCode(
      () => decodeControlMessage(np.encode({ type: "heartbeat", uid: "n" })),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    throwsCode(
      () => decodeControlMessage(np.encode({ v: "1", type: "heartbeat", uid: "n" })),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    throwsCode(
      () => decodeControlMessage(np.encode({ v: 1, type: "gossip", uid: "n" })),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    // Extra fields of a known type are ignored (room for additive changes within v1).
    assert.deepEqual(
      decodeControlMessage(np.encode({ v: 1, type: "bye", uid: "n", reason: "deploy" })),
      { type: "bye", uid: "n" },
    );
  });

  test("malformed control messages", () => {
    const bad: unknown[] = [
      [1, 2],
      { v: 1, type: "heartbeat" },
      { v: 1, type: "heartbeat", uid: "x".repeat(129) },
      { v: 1, type: "fetch", uid: "n", opts: { rooms: [] } },
      { v: 1, type: "fetch", uid: "n", rid: "r" },
      { v: 1, type: "fetch-res", uid: "n", rid: "r", sockets: [{ rooms: [] }] },
      { v: 1, type: "fetch-res", uid: "n", rid: "r", sockets: [{ id: "s", handshake: 3 }] },
      { v: 1, type: "join", uid: "n", opts: { rooms: [] } },
      { v: 1, type: "disconnect", uid: "n", opts: {}, close: "yes" },
      { v: 1, type: "emit", uid: "n", data: "ev" },
      { v: 1, type: "emit-res", uid: "n", rid: "r", args: 1 },
      {
        v: 1,
        type: "broadcast",
        uid: "n",
        rid: "r",
        packet: { type: 3, nsp: "/", data: [], id: 1 },
        opts: {},
      },
      { v: 1, type: "broadcast-count", uid: "n", rid: "r", count: -1 },
      { v: 1, type: "broadcast-count", uid: "n", rid: "r", count: 1.5 },
    ];
    for (const m of bad) {
      assert.throws(
        () => decodeControlMessage(np.encode(m)),
        (err: unknown) => err instanceof ProtocolError && err.code !== "SY_ERR_UNKNOWN_PACKET_TYPE",
        JSON.stringify(m),
      );
    }
    const polluted = np.encode(
      JSON.parse(
        '{"v":1,"type":"fetch-res","uid":"n","rid":"r","sockets":[{"id":"s","data":{"__proto__":{"admin":true}}}]}',
      ),
    );
    throwsCode(() => decodeControlMessage(polluted), "SY_ERR_BAD_PACKET");
    const pollutedTop = np.encode(JSON.parse('{"__proto__":{"v":1},"type":"bye","uid":"n"}'));
    throwsCode(() => decodeControlMessage(pollutedTop), "SY_ERR_BAD_PACKET");
  });

  test("arbitrary bytes only ever raise ProtocolError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const decode of [decodeClusterBroadcast, decodeControlMessage, decodeEmitterRequest]) {
          try {
            decode(Buffer.from(bytes));
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  test("arbitrary msgpack values only ever raise ProtocolError", () => {
    const value = fc.anything({ maxDepth: 4, withObjectString: false, withNullPrototype: true });
    fc.assert(
      fc.property(
        fc.oneof(
          value,
          fc.record({
            v: fc.constant(1),
            type: fc.constantFrom("fetch", "fetch-res", "emit", "broadcast", "join"),
            uid: fc.string(),
            rid: fc.anything(),
            opts: fc.anything(),
            sockets: fc.anything(),
            data: fc.anything(),
          }),
        ),
        (v) => {
          let bytes: Buffer;
          try {
            bytes = np.encode(v);
          } catch {
            return;
          }
          for (const decode of [decodeClusterBroadcast, decodeControlMessage]) {
            try {
              decode(bytes);
            } catch (err) {
              if (!(err instanceof ProtocolError)) throw err;
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("payload round trip property", () => {
    const json = fc.jsonValue({ maxDepth: 5 });
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.array(json, { maxLength: 4 }), (ev, args) => {
        const data = [ev, ...args];
        let bytes: Buffer;
        try {
          bytes = encodeControlMessage({ type: "emit", uid: "n", data });
        } catch (err) {
          // Integers outside msgpack's 64-bit range are refused, never wrapped.
          assert.ok(err instanceof ProtocolError);
          return;
        }
        const m = decodeControlMessage(bytes);
        assert.deepEqual(m, { type: "emit", uid: "n", data: JSON.parse(JSON.stringify(data)) });
      }),
      { numRuns: 300 },
    );
  });
});
