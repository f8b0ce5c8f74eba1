import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  encodeSocketPacket,
  encodeSocketPacketString,
  hasBinary,
  PacketType,
  ProtocolError,
  SOCKET_PROTOCOL,
  SocketDecoder,
  type SocketPacket,
} from "@switchyard/protocol";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Feeds every part to a fresh decoder; returns what the last part completed. */
function decodeAll(parts: readonly (string | Buffer)[], decoder = new SocketDecoder()) {
  let out: SocketPacket | undefined;
  parts.forEach((part, i) => {
    out = decoder.add(part);
    if (i < parts.length - 1) assert.equal(out, undefined, "incomplete until the last part");
  });
  return out;
}

const B1234 = Buffer.from([1, 2, 3, 4]);

// Fixtures from the "Packet encoding" tables of the Socket.IO v5 protocol document.
const TEXT_FIXTURES: [SocketPacket, string][] = [
  [{ type: PacketType.CONNECT, nsp: "/" }, "0"],
  [
    { type: PacketType.CONNECT, nsp: "/", data: { sid: "wZX3oN0bSVIhsaknAAAI" } },
    '0{"sid":"wZX3oN0bSVIhsaknAAAI"}',
  ],
  [{ type: PacketType.CONNECT, nsp: "/admin" }, "0/admin,"],
  [
    { type: PacketType.CONNECT, nsp: "/admin", data: { sid: "oSO0OpakMV_3jnilAAAA" } },
    '0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}',
  ],
  [
    { type: PacketType.CONNECT_ERROR, nsp: "/", data: { message: "Not authorized" } },
    '4{"message":"Not authorized"}',
  ],
  [{ type: PacketType.CONNECT_ERROR, nsp: "/", data: "Not authorized" }, '4"Not authorized"'],
  [{ type: PacketType.EVENT, nsp: "/", data: ["foo"] }, '2["foo"]'],
  [{ type: PacketType.EVENT, nsp: "/admin", data: ["bar"] }, '2/admin,["bar"]'],
  [{ type: PacketType.EVENT, nsp: "/", data: ["hey", "Jude"] }, '2["hey","Jude"]'],
  [{ type: PacketType.EVENT, nsp: "/", data: ["foo"], id: 12 }, '212["foo"]'],
  [{ type: PacketType.ACK, nsp: "/", data: [], id: 12 }, "312[]"],
  [{ type: PacketType.EVENT, nsp: "/admin", data: ["foo"], id: 13 }, '2/admin,13["foo"]'],
  [{ type: PacketType.ACK, nsp: "/admin", data: ["bar"], id: 13 }, '3/admin,13["bar"]'],
  [{ type: PacketType.ACK, nsp: "/", data: ["bar"], id: 14 }, '314["bar"]'],
  [{ type: PacketType.DISCONNECT, nsp: "/" }, "1"],
  [{ type: PacketType.DISCONNECT, nsp: "/admin" }, "1/admin,"],
];

const BINARY_FIXTURES: [SocketPacket, [string, ...Buffer[]]][] = [
  [
    { type: PacketType.EVENT, nsp: "/", data: ["baz", B1234] },
    ['51-["baz",{"_placeholder":true,"num":0}]', B1234],
  ],
  [
    {
      type: PacketType.EVENT,
      nsp: "/admin",
      data: ["baz", Buffer.from([1, 2]), Buffer.from([3, 4])],
    },
    [
      '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
      Buffer.from([1, 2]),
      Buffer.from([3, 4]),
    ],
  ],
  [
    { type: PacketType.EVENT, nsp: "/", data: ["foo", B1234], id: 14 },
    ['51-14["foo",{"_placeholder":true,"num":0}]', B1234],
  ],
  [
    { type: PacketType.ACK, nsp: "/", data: ["bar", B1234], id: 15 },
    ['61-15["bar",{"_placeholder":true,"num":0}]', B1234],
  ],
];

describe("socket.io packets", () => {
  test("protocol revision and types", () => {
    assert.equal(SOCKET_PROTOCOL, 5);
    assert.deepEqual(Object.values(PacketType), [0, 1, 2, 3, 4, 5, 6]);
  });

  for (const [packet, wire] of TEXT_FIXTURES) {
    test(`text ${wire} both ways`, () => {
      assert.deepEqual(encodeSocketPacket(packet), [wire]);
      assert.equal(encodeSocketPacketString(packet), wire);
      assert.deepEqual(new SocketDecoder().add(wire), packet);
    });
  }

  for (const [packet, parts] of BINARY_FIXTURES) {
    test(`binary ${parts[0]} both ways`, () => {
      assert.deepEqual(encodeSocketPacket(packet), parts);
      assert.deepEqual(decodeAll(parts), packet, "decodes to EVENT/ACK with Buffers in place");
    });
  }

  test("namespace without trailing comma is accepted like socket.io-parser", () => {
    assert.deepEqual(new SocketDecoder().add("0/admin"), { type: 0, nsp: "/admin" });
    assert.deepEqual(new SocketDecoder().add("1/admin"), { type: 1, nsp: "/admin" });
  });

  test("views and ArrayBuffers become Buffers over the same memory", () => {
    const ab = new Uint8Array([5, 6, 7, 8]).buffer;
    const view = new Uint8Array(ab, 1, 2);
    const [head, b0, b1] = encodeSocketPacket({ type: 2, nsp: "/", data: ["x", ab, { v: view }] });
    assert.equal(
      head,
      '52-["x",{"_placeholder":true,"num":0},{"v":{"_placeholder":true,"num":1}}]',
    );
    assert.ok(Buffer.isBuffer(b0) && Buffer.isBuffer(b1));
    assert.equal(b0.buffer, ab);
    assert.equal(b1.buffer, ab);
    assert.deepEqual([...b1], [6, 7]);
  });

  test("placeholders are numbered depth-first and object key order is kept", () => {
    const data = ["e", { b: Buffer.from([1]), a: [Buffer.from([2])] }, Buffer.from([3])];
    const [head, ...bufs] = encodeSocketPacket({ type: 2, nsp: "/", data });
    assert.equal(
      head,
      '53-["e",{"b":{"_placeholder":true,"num":0},"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":2}]',
    );
    assert.deepEqual(
      bufs.map((b) => b[0]),
      [1, 2, 3],
    );
  });

  test("BINARY_EVENT without binary data is sent as EVENT", () => {
    assert.deepEqual(encodeSocketPacket({ type: PacketType.BINARY_EVENT, nsp: "/", data: ["a"] }), [
      '2["a"]',
    ]);
  });

  test("toJSON is honoured like socket.io-parser", () => {
    const withJson = { toJSON: () => ({ when: "now" }) };
    const date = new Date(0);
    assert.deepEqual(encodeSocketPacket({ type: 2, nsp: "/", data: ["t", withJson, date] }), [
      '2["t",{"when":"now"},"1970-01-01T00:00:00.000Z"]',
    ]);
    const binJson = { toJSON: () => Buffer.from([7]) };
    assert.equal(hasBinary(binJson), true);
    assert.deepEqual(encodeSocketPacket({ type: 2, nsp: "/", data: ["t", binJson] }), [
      '51-["t",{"_placeholder":true,"num":0}]',
      Buffer.from([7]),
    ]);
  });

  test("hasBinary", () => {
    assert.equal(hasBinary(null), false);
    assert.equal(hasBinary("abc"), false);
    assert.equal(hasBinary([1, { a: [2, "x"] }]), false);
    assert.equal(hasBinary(Buffer.alloc(0)), true);
    assert.equal(hasBinary(new ArrayBuffer(1)), true);
    assert.equal(hasBinary(new Float64Array(1)), true);
    assert.equal(hasBinary(new DataView(new ArrayBuffer(1))), true);
    assert.equal(hasBinary({ deep: [[{ x: new Uint8Array(1) }]] }), true);
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    throwsCode(() => hasBinary(deep), "SY_ERR_NESTING_TOO_DEEP");
  });

  test("awaitingAttachments and reset", () => {
    const d = new SocketDecoder();
    assert.equal(d.awaitingAttachments, false);
    assert.equal(d.add('51-["a",{"_placeholder":true,"num":0}]'), undefined);
    assert.equal(d.awaitingAttachments, true);
    d.reset();
    assert.equal(d.awaitingAttachments, false);
    assert.deepEqual(d.add('2["b"]'), { type: 2, nsp: "/", data: ["b"] });
  });

  test("a placeholder may be referenced more than once", () => {
    const d = new SocketDecoder();
    d.add('51-["a",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":0}]]');
    const p = d.add(B1234);
    assert.deepEqual(p?.data, ["a", B1234, [B1234]]);
  });

  test("decoder options are validated", () => {
    assert.throws(() => new SocketDecoder({ maxAttachments: -1 }), /maxAttachments/);
    assert.throws(() => new SocketDecoder({ maxDepth: 0 }), /maxDepth/);
    assert.throws(() => new SocketDecoder({ maxDepth: 1.5 }), /maxDepth/);
  });
});

describe("socket.io decoder errors", () => {
  const cases: [string, string][] = [
    ["", "SY_ERR_BAD_PACKET"],
    ["7", "SY_ERR_UNKNOWN_PACKET_TYPE"],
    [" ", "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["a", "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["2", "SY_ERR_BAD_EVENT"],
    ["2[]", "SY_ERR_BAD_EVENT"],
    ["2{}", "SY_ERR_BAD_EVENT"],
    ['2"foo"', "SY_ERR_BAD_EVENT"],
    ["2[1]", "SY_ERR_BAD_EVENT"],
    ["2[null]", "SY_ERR_BAD_EVENT"],
    ['2["foo"', "SY_ERR_BAD_JSON"],
    ["2[foo]", "SY_ERR_BAD_JSON"],
    ['21a["foo"]', "SY_ERR_BAD_JSON"],
    ['2admin,["foo"]', "SY_ERR_BAD_JSON"],
    ["3[]", "SY_ERR_BAD_ACK_ID"],
    ['31234567890123456["x"]', "SY_ERR_BAD_ACK_ID"],
    ['21234567890123456["x"]', "SY_ERR_BAD_ACK_ID"],
    ["31{}", "SY_ERR_BAD_PACKET"],
    ["31", "SY_ERR_BAD_PACKET"],
    ["0[]", "SY_ERR_BAD_PACKET"],
    ["0null", "SY_ERR_BAD_PACKET"],
    ['0"x"', "SY_ERR_BAD_PACKET"],
    ["01{}", "SY_ERR_BAD_PACKET"],
    ["1{}", "SY_ERR_BAD_PACKET"],
    ["11", "SY_ERR_BAD_PACKET"],
    ["4", "SY_ERR_BAD_PACKET"],
    ["4[]", "SY_ERR_BAD_PACKET"],
    ["41", "SY_ERR_BAD_PACKET"],
    ['5["a"]', "SY_ERR_BAD_PACKET"],
    ['5-["a"]', "SY_ERR_BAD_PACKET"],
    ['5x-["a"]', "SY_ERR_BAD_PACKET"],
    ['51["a"]', "SY_ERR_BAD_PACKET"],
    ['511-["a"]', "SY_ERR_TOO_MANY_ATTACHMENTS"],
    ['599999999999-["a"]', "SY_ERR_TOO_MANY_ATTACHMENTS"],
    ['51-["a"]', "SY_ERR_BAD_PACKET"],
    ['52-["a",{"_placeholder":true,"num":0}]', "SY_ERR_BAD_PACKET"],
    ['51-["a",{"_placeholder":true,"num":1}]', "SY_ERR_BAD_PACKET"],
    ['51-["a",{"_placeholder":true,"num":-1}]', "SY_ERR_BAD_PACKET"],
    ['51-["a",{"_placeholder":true,"num":0.5}]', "SY_ERR_BAD_PACKET"],
    ['51-["a",{"_placeholder":true}]', "SY_ERR_BAD_PACKET"],
    ['51-["a",{"_placeholder":true,"num":0,"extra":1}]', "SY_ERR_BAD_PACKET"],
    ['61-{"_placeholder":true,"num":0}', "SY_ERR_BAD_PACKET"],
    ['61-["a",{"_placeholder":true,"num":0}]', "SY_ERR_BAD_ACK_ID"],
    ['51-[{"_placeholder":true,"num":0}]', "SY_ERR_BAD_EVENT"],
    ["0admin", "SY_ERR_BAD_JSON"],
    [`0/${"a".repeat(256)},`, "SY_ERR_BAD_NAMESPACE"],
    [`2${"[".repeat(33)}${"]".repeat(33)}`, "SY_ERR_NESTING_TOO_DEEP"],
  ];
  for (const [wire, code] of cases) {
    test(`${JSON.stringify(wire.length > 40 ? `${wire.slice(0, 40)}…` : wire)} → ${code}`, () => {
      throwsCode(() => new SocketDecoder().add(wire), code);
    });
  }

  test("depth limit counts containers, not brackets inside strings", () => {
    const ok = `2["x",${"[".repeat(31)}${"]".repeat(31)},"${"[".repeat(100)}\\"["]`;
    assert.ok(new SocketDecoder().add(ok));
    throwsCode(
      () => new SocketDecoder({ maxDepth: 2 }).add('2["a",[[]]]'),
      "SY_ERR_NESTING_TOO_DEEP",
    );
  });

  test("100k-deep JSON throws a ProtocolError, never RangeError", () => {
    const wire = `2${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    throwsCode(() => new SocketDecoder().add(wire), "SY_ERR_NESTING_TOO_DEEP");
    const objects = `2["x",${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}]`;
    throwsCode(() => new SocketDecoder().add(objects), "SY_ERR_NESTING_TOO_DEEP");
  });

  test("frames out of order", () => {
    throwsCode(() => new SocketDecoder().add(B1234), "SY_ERR_BAD_PACKET");
    const d = new SocketDecoder();
    d.add('51-["a",{"_placeholder":true,"num":0}]');
    throwsCode(() => d.add('2["b"]'), "SY_ERR_BAD_PACKET");
    assert.equal(d.awaitingAttachments, false, "reset after an error");
    throwsCode(() => d.add(new Uint8Array(1) as unknown as Buffer), "SY_ERR_BAD_PACKET");
    throwsCode(() => d.add(42 as unknown as string), "SY_ERR_BAD_PACKET");
  });

  test("maxAttachments option", () => {
    const d = new SocketDecoder({ maxAttachments: 2 });
    const placeholders = '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}';
    assert.equal(d.add(`52-["a",${placeholders}]`), undefined);
    throwsCode(
      () => new SocketDecoder({ maxAttachments: 2 }).add('53-["a"]'),
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    );
    throwsCode(
      () => new SocketDecoder({ maxAttachments: 0 }).add('51-["a"]'),
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    );
  });
});

describe("socket.io encoder errors", () => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  const cases: [string, SocketPacket, string][] = [
    ["unknown type", { type: 9 as PacketType, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["nsp without slash", { type: 0, nsp: "admin" }, "SY_ERR_BAD_NAMESPACE"],
    ["empty nsp", { type: 0, nsp: "" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp with comma", { type: 0, nsp: "/a,b" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp too long", { type: 0, nsp: `/${"a".repeat(256)}` }, "SY_ERR_BAD_NAMESPACE"],
    ["negative id", { type: 2, nsp: "/", data: ["a"], id: -1 }, "SY_ERR_BAD_ACK_ID"],
    ["fractional id", { type: 2, nsp: "/", data: ["a"], id: 1.5 }, "SY_ERR_BAD_ACK_ID"],
    ["16-digit id", { type: 2, nsp: "/", data: ["a"], id: 2 ** 53 - 1 }, "SY_ERR_BAD_ACK_ID"],
    ["ack without id", { type: 3, nsp: "/", data: [] }, "SY_ERR_BAD_ACK_ID"],
    ["id on CONNECT", { type: 0, nsp: "/", id: 1 }, "SY_ERR_BAD_PACKET"],
    ["event without name", { type: 2, nsp: "/", data: [] }, "SY_ERR_BAD_EVENT"],
    ["event not array", { type: 2, nsp: "/", data: "x" }, "SY_ERR_BAD_EVENT"],
    ["disconnect with data", { type: 1, nsp: "/", data: {} }, "SY_ERR_BAD_PACKET"],
    ["connect with array", { type: 0, nsp: "/", data: [] }, "SY_ERR_BAD_PACKET"],
    ["circular", { type: 2, nsp: "/", data: ["a", circular] }, "SY_ERR_NESTING_TOO_DEEP"],
    ["too deep", { type: 2, nsp: "/", data: ["a", deep] }, "SY_ERR_NESTING_TOO_DEEP"],
    ["BigInt", { type: 2, nsp: "/", data: ["a", 1n] }, "SY_ERR_BAD_PACKET"],
    [
      "throwing toJSON",
      {
        type: 2,
        nsp: "/",
        data: [
          "a",
          {
            toJSON() {
              throw new TypeError("no");
            },
          },
        ],
      },
      "SY_ERR_BAD_PACKET",
    ],
    [
      "toJSON → undefined",
      { type: 0, nsp: "/", data: { toJSON: () => undefined } },
      "SY_ERR_BAD_PACKET",
    ],
  ];
  for (const [name, packet, code] of cases) {
    test(`${name} → ${code}`, () => {
      throwsCode(() => encodeSocketPacket(packet), code);
    });
  }

  test("string fast path maps foreign exceptions too", () => {
    throwsCode(
      () => encodeSocketPacketString({ type: 2, nsp: "/", data: ["a", circular] }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => encodeSocketPacketString({ type: 2, nsp: "/", data: ["a", deep] }),
      "SY_ERR_NESTING_TOO_DEEP",
    );
    throwsCode(
      () => encodeSocketPacketString({ type: 5, nsp: "/", data: ["a"] }),
      "SY_ERR_BAD_PACKET",
    );
  });
});
