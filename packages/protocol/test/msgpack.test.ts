/**
 * The msgpack parser against the real `socket.io-msgpack-parser` (what socket.io-client
 * users run): byte fixtures both ways, round-trip properties, hostile input, fuzzing.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  encodeSocketPacket,
  msgpackCodec,
  msgpackParser,
  PacketType,
  ProtocolError,
  SocketDecoder,
  type SocketPacket,
} from "@switchyard/protocol";
import fc from "fast-check";
import * as notepack from "notepack.io";
import * as refModule from "socket.io-msgpack-parser";

interface RefParser {
  protocol: number;
  Encoder: new () => { encode(packet: unknown): Buffer[] };
  Decoder: new () => {
    on(event: "decoded", fn: (packet: unknown) => void): void;
    add(chunk: unknown): void;
  };
}
const ref = ((refModule as { default?: unknown }).default ?? refModule) as RefParser;
const np = notepack as unknown as { encode(v: unknown): Buffer; decode(b: Buffer): unknown };

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function refEncode(packet: unknown): Buffer {
  const parts = new ref.Encoder().encode(packet);
  assert.equal(parts.length, 1);
  return parts[0] as Buffer;
}

function refDecode(bytes: Buffer): unknown {
  const decoder = new ref.Decoder();
  let out: unknown;
  decoder.on("decoded", (p) => {
    out = p;
  });
  decoder.add(bytes);
  return out;
}

function ourEncode(packet: SocketPacket): Buffer {
  const parts = new msgpackParser.Encoder().encode(packet);
  assert.equal(parts.length, 1);
  assert.ok(Buffer.isBuffer(parts[0]));
  return parts[0];
}

function ourDecode(bytes: unknown, opts?: { maxDepth?: number; maxAttachments?: number }) {
  return msgpackCodec(opts)
    .createDecoder()
    .add(bytes as Buffer);
}

/** A packet map with `data` spliced in as raw msgpack bytes. */
function withRawData(type: number, dataBytes: Buffer, id?: number): Buffer {
  const head = np.encode({ type, nsp: "/" });
  // fixmap header + one more pair ("data": ...), then "id" if given.
  const pairs = 3 + (id === undefined ? 0 : 1);
  const tail = id === undefined ? [] : [np.encode("id"), np.encode(id)];
  return Buffer.concat([
    Buffer.from([0x80 | pairs]),
    head.subarray(1),
    np.encode("data"),
    dataBytes,
    ...tail,
  ]);
}

const B = Buffer.from([1, 2, 3]);

// Written in socket.io-msgpack-parser's key order (type, data, nsp, id), so the two
// encoders must agree to the byte.
const FIXTURES: [string, SocketPacket][] = [
  ["CONNECT", { type: 0, nsp: "/" }],
  ["CONNECT with auth", { type: 0, data: { token: "abc", n: 1 }, nsp: "/" }],
  ["CONNECT /admin with auth", { type: 0, data: { token: "abc" }, nsp: "/admin" }],
  ["DISCONNECT", { type: 1, nsp: "/admin" }],
  ["EVENT", { type: 2, data: ["hello", "world", 1.5, -3, null, true], nsp: "/" }],
  ["EVENT with ack id", { type: 2, data: ["hello", { a: [1, 2] }], nsp: "/", id: 12 }],
  ["EVENT with namespace and ack id", { type: 2, data: ["ev"], nsp: "/admin", id: 70000 }],
  ["EVENT with binary", { type: 2, data: ["file", B, { nested: [Buffer.alloc(300)] }], nsp: "/" }],
  ["ACK", { type: 3, data: ["ok"], nsp: "/", id: 12 }],
  ["ACK with binary", { type: 3, data: [B], nsp: "/admin", id: 0 }],
  ["CONNECT_ERROR string", { type: 4, data: "Not authorized", nsp: "/" }],
  [
    "CONNECT_ERROR object",
    { type: 4, data: { message: "Not authorized", data: { code: 401 } }, nsp: "/admin" },
  ],
];

describe("msgpack: byte compatibility with socket.io-msgpack-parser", () => {
  test("the module has the socket.io parser shape", () => {
    assert.equal(msgpackParser.protocol, 5);
    assert.equal(msgpackParser.protocol, ref.protocol);
    assert.equal(typeof new msgpackParser.Encoder().encode, "function");
    assert.equal(typeof new msgpackParser.Decoder().add, "function");
    assert.ok(Object.isFrozen(msgpackParser));
  });

  for (const [name, packet] of FIXTURES) {
    test(`${name}: same bytes, decoded the same both ways`, () => {
      const ours = ourEncode(packet);
      const theirs = refEncode(packet);
      assert.deepEqual(ours, theirs);
      assert.deepEqual(refDecode(ours), packet);
      assert.deepEqual(ourDecode(theirs), packet);
    });
  }

  test("what socket.io-client sends: `options` key, explicit undefined data", () => {
    // socket.io-client hands its packet object, flags included, to the encoder.
    const event = refEncode({ type: 2, data: ["ev", B], options: { compress: true }, nsp: "/" });
    assert.deepEqual(ourDecode(event), { type: 2, nsp: "/", data: ["ev", B] });
    // notepack.io 2.2 writes `undefined` as an extension; it means "absent".
    const connect = refEncode({ type: 0, data: undefined, nsp: "/" });
    assert.deepEqual(ourDecode(connect), { type: 0, nsp: "/" });
  });

  test("binary types go out as EVENT/ACK, which the reference accepts", () => {
    const bytes = ourEncode({ type: PacketType.BINARY_EVENT, nsp: "/", data: ["ev", B], id: 1 });
    assert.deepEqual(refDecode(bytes), { type: 2, data: ["ev", B], nsp: "/", id: 1 });
    const ack = ourEncode({ type: PacketType.BINARY_ACK, nsp: "/", data: [B], id: 2 });
    assert.deepEqual(refDecode(ack), { type: 3, data: [B], nsp: "/", id: 2 });
  });

  test("views go out as exactly their bytes", () => {
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const f32 = new Float32Array([1.5, -2]);
    const data = [
      "ev",
      backing.subarray(2, 5),
      f32,
      new DataView(backing.buffer, 1, 2),
      new Uint16Array([258]),
      backing.buffer,
    ];
    const decoded = refDecode(ourEncode({ type: 2, nsp: "/", data })) as { data: unknown[] };
    assert.deepEqual(decoded.data, [
      "ev",
      Buffer.from([2, 3, 4]),
      Buffer.from(f32.buffer),
      Buffer.from([1, 2]),
      Buffer.from(new Uint16Array([258]).buffer),
      Buffer.from(backing),
    ]);
    // The caller's data is left alone.
    assert.ok(data[2] instanceof Float32Array);
  });

  test("Dates go out as their JSON string (notepack.io 2.2 cannot read msgpack timestamps)", () => {
    const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    const decoded = refDecode(ourEncode({ type: 2, nsp: "/", data: ["ev", { when }] }));
    assert.deepEqual(decoded, {
      type: 2,
      data: ["ev", { when: "2024-01-02T03:04:05.006Z" }],
      nsp: "/",
    });
  });

  test("toJSON is honoured; undefined object values are left out", () => {
    const data = ["ev", { a: { toJSON: () => "A" }, b: undefined, c: 1 }];
    assert.deepEqual(ourDecode(ourEncode({ type: 2, nsp: "/", data })), {
      type: 2,
      nsp: "/",
      data: ["ev", { a: "A", c: 1 }],
    });
  });

  test("ArrayBuffers and Dates from notepack.io 2.2 clients arrive as such", () => {
    const when = new Date(1_700_000_000_123);
    const bytes = refEncode({
      type: 2,
      data: ["ev", new Uint8Array([9, 8]).buffer, when],
      nsp: "/",
    });
    const p = ourDecode(bytes) as SocketPacket;
    const [, ab, date] = p.data as unknown[];
    assert.ok(ab instanceof ArrayBuffer);
    assert.deepEqual(Buffer.from(ab), Buffer.from([9, 8]));
    assert.deepEqual(date, when);
  });

  test("our decoded packet equals the text decoder's for the same packet", () => {
    for (const [, packet] of FIXTURES) {
      const text = new SocketDecoder();
      let viaText: SocketPacket | undefined;
      for (const part of encodeSocketPacket(packet)) viaText = text.add(part);
      assert.deepEqual(ourDecode(ourEncode(packet)), viaText);
    }
  });
});

describe("msgpack: decoder", () => {
  test("emits decoded synchronously", () => {
    const decoder = new msgpackParser.Decoder();
    const seen: SocketPacket[] = [];
    decoder.on("decoded", (p) => seen.push(p));
    decoder.add(refEncode({ type: 2, data: ["a"], nsp: "/" }));
    assert.deepEqual(seen, [{ type: 2, nsp: "/", data: ["a"] }]);
    decoder.add(refEncode({ type: 2, data: ["b"], nsp: "/" }));
    assert.equal(seen.length, 2);
    decoder.destroy();
  });

  test("accepts Buffer, Uint8Array and ArrayBuffer", () => {
    const bytes = refEncode({ type: 2, data: ["a", 1], nsp: "/" });
    const padded = new Uint8Array(bytes.length + 4);
    padded.set(bytes, 2);
    const view = padded.subarray(2, 2 + bytes.length);
    const expected = { type: 2, nsp: "/", data: ["a", 1] };
    assert.deepEqual(ourDecode(bytes), expected);
    assert.deepEqual(ourDecode(view), expected);
    assert.deepEqual(ourDecode(view.slice().buffer), expected);
  });

  test("a string is an error", () => {
    throwsCode(() => ourDecode('2["ev"]'), "SY_ERR_BAD_PACKET");
    throwsCode(() => new msgpackParser.Decoder().add('2["ev"]'), "SY_ERR_BAD_PACKET");
    for (const chunk of [undefined, null, 1, {}, [0x80], new Uint16Array(1)]) {
      throwsCode(() => ourDecode(chunk), "SY_ERR_BAD_PACKET");
    }
  });

  const malformed: [string, number[]][] = [
    ["empty", []],
    ["reserved byte 0xc1", [0xc1]],
    ["truncated map", [0x83, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x02]],
    ["truncated string", [0xd9, 0x05, 0x61]],
    ["truncated length", [0xda, 0x00]],
    ["trailing bytes", [...np.encode({ type: 0, nsp: "/" }), 0xc0]],
    ["array count beyond the message", [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]],
    ["map count beyond the message", [0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0, 0xc0]],
    ["4 GiB ArrayBuffer extension", [0xc9, 0xff, 0xff, 0xff, 0xff, 0x00]],
    ["256 MiB ArrayBuffer extension", [0xc9, 0x10, 0x00, 0x00, 0x00, 0x00]],
    ["timestamp 96 with a wrong length", [0xc7, 0x00, 0xff, ...new Array(12).fill(0)]],
    ["not a map", [...np.encode([2, "/", ["ev"]])]],
    ["nil", [0xc0]],
  ];
  for (const [name, bytes] of malformed) {
    test(`malformed: ${name} → SY_ERR_BAD_PACKET, quickly`, () => {
      const started = performance.now();
      throwsCode(() => ourDecode(Buffer.from(bytes)), "SY_ERR_BAD_PACKET");
      assert.ok(performance.now() - started < 100, "decoding must not trust declared lengths");
    });
  }

  const wrong: [string, unknown, string][] = [
    ["type 9", { type: 9, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type as a string", { type: "2", data: ["ev"], nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type missing", { data: ["ev"], nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["nsp not a string", { type: 2, data: ["ev"], nsp: 1 }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp missing", { type: 2, data: ["ev"] }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp without /", { type: 2, data: ["ev"], nsp: "admin" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp too long", { type: 1, nsp: `/${"x".repeat(300)}` }, "SY_ERR_BAD_NAMESPACE"],
    ["event name a number", { type: 2, data: [1, "x"], nsp: "/" }, "SY_ERR_BAD_EVENT"],
    ["event without name", { type: 2, data: [], nsp: "/" }, "SY_ERR_BAD_EVENT"],
    ["event data an object", { type: 2, data: { 0: "ev" }, nsp: "/" }, "SY_ERR_BAD_EVENT"],
    ["ack without id", { type: 3, data: [], nsp: "/" }, "SY_ERR_BAD_ACK_ID"],
    ["ack id negative", { type: 3, data: [], nsp: "/", id: -1 }, "SY_ERR_BAD_ACK_ID"],
    ["ack id a float", { type: 3, data: [], nsp: "/", id: 1.5 }, "SY_ERR_BAD_ACK_ID"],
    ["ack id a string", { type: 3, data: [], nsp: "/", id: "1" }, "SY_ERR_BAD_ACK_ID"],
    ["ack id nil", { type: 3, data: [], nsp: "/", id: null }, "SY_ERR_BAD_ACK_ID"],
    ["ack id 2^53", { type: 3, data: [], nsp: "/", id: 2 ** 53 }, "SY_ERR_BAD_ACK_ID"],
    ["CONNECT with an array", { type: 0, data: [], nsp: "/" }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with binary", { type: 0, data: B, nsp: "/" }, "SY_ERR_BAD_PACKET"],
    ["DISCONNECT with data", { type: 1, data: "x", nsp: "/" }, "SY_ERR_BAD_PACKET"],
    ["CONNECT_ERROR with a number", { type: 4, data: 1, nsp: "/" }, "SY_ERR_BAD_PACKET"],
    [
      "11 binary values",
      { type: 2, data: ["ev", ...Array.from({ length: 11 }, () => B)], nsp: "/" },
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    ],
  ];
  for (const [name, raw, code] of wrong) {
    test(`wrong shape: ${name} → ${code}`, () => {
      throwsCode(() => ourDecode(np.encode(raw)), code);
      // The reference encoder writes the same bytes for these.
      throwsCode(() => ourDecode(refEncode(raw)), code);
    });
  }

  test('"__proto__" keys: notepack.io turns them into prototypes, so they are refused', () => {
    const inData = np.encode(
      JSON.parse('{"type":2,"nsp":"/","data":["ev",{"__proto__":{"isAdmin":true}}]}'),
    );
    throwsCode(() => ourDecode(inData), "SY_ERR_BAD_PACKET");
    const inPayload = np.encode(JSON.parse('{"type":0,"nsp":"/","data":{"__proto__":[1]}}'));
    throwsCode(() => ourDecode(inPayload), "SY_ERR_BAD_PACKET");
    // An inherited `id` must not turn an EVENT into one that expects an ack.
    const onPacket = np.encode(
      JSON.parse('{"type":2,"nsp":"/","data":["ev"],"__proto__":{"id":5,"type":3}}'),
    );
    throwsCode(() => ourDecode(onPacket), "SY_ERR_BAD_PACKET");
    const probe: Record<string, unknown> = {};
    assert.equal(probe.isAdmin, undefined);
    assert.equal(probe.id, undefined);
  });

  test("nesting: 32 levels pass, 33 do not, checked before notepack.io recurses", () => {
    let ok: unknown = 0;
    for (let i = 0; i < 31; i++) ok = [ok];
    assert.ok(ourDecode(np.encode({ type: 2, data: ["ev", ok], nsp: "/" })));
    throwsCode(
      () => ourDecode(np.encode({ type: 2, data: ["ev", [ok]], nsp: "/" })),
      "SY_ERR_NESTING_TOO_DEEP",
    );
    const spliced = withRawData(2, Buffer.concat([Buffer.from([0x92, 0xa1, 0x65]), np.encode(ok)]));
    assert.ok(ourDecode(spliced));
  });

  test("100k-deep msgpack is SY_ERR_NESTING_TOO_DEEP, never RangeError", () => {
    const arrays = withRawData(
      3,
      Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]),
      1,
    );
    throwsCode(() => ourDecode(arrays), "SY_ERR_NESTING_TOO_DEEP");
    // Maps nest through their values (and keys), too.
    const maps = withRawData(
      0,
      Buffer.from([...new Array<number[]>(100_000).fill([0x81, 0xa1, 0x61]).flat(), 0xc0]),
    );
    throwsCode(() => ourDecode(maps), "SY_ERR_NESTING_TOO_DEEP");
    // With a limit that allows it, notepack.io's own recursion is the backstop.
    throwsCode(() => ourDecode(arrays, { maxDepth: 1_000_000 }), "SY_ERR_BAD_PACKET");
  });

  test("limits are options of the codec and of the Decoder", () => {
    const bytes = np.encode({ type: 2, data: ["ev", [[1]]], nsp: "/" });
    throwsCode(() => ourDecode(bytes, { maxDepth: 2 }), "SY_ERR_NESTING_TOO_DEEP");
    assert.ok(ourDecode(bytes, { maxDepth: 3 }));
    throwsCode(
      () => new msgpackParser.Decoder({ maxDepth: 2 }).add(bytes),
      "SY_ERR_NESTING_TOO_DEEP",
    );
    const bin = np.encode({ type: 2, data: ["ev", B], nsp: "/" });
    throwsCode(() => ourDecode(bin, { maxAttachments: 0 }), "SY_ERR_TOO_MANY_ATTACHMENTS");
    for (const bad of [{ maxDepth: 0 }, { maxAttachments: -1 }, { maxDepth: Number.NaN }]) {
      const isInvalidOption = (err: unknown) =>
        (err as { code?: string }).code === "SY_ERR_INVALID_OPTION";
      assert.throws(() => msgpackCodec(bad), isInvalidOption);
      assert.throws(() => new msgpackParser.Decoder(bad), isInvalidOption);
    }
  });
});

describe("msgpack: encoder", () => {
  test("the 64-bit edges and non-finite numbers survive", () => {
    const data = ["ev", 2 ** 64 - 2048, -(2 ** 63), 2 ** 53 + 2, Infinity, -Infinity, Number.NaN];
    assert.deepEqual(ourDecode(ourEncode({ type: 2, nsp: "/", data }))?.data, data);
  });

  test("codec encode returns one Buffer, the Encoder's bytes", () => {
    const packet: SocketPacket = { type: 2, nsp: "/", data: ["ev", B], id: 3 };
    const parts = msgpackCodec().encode(packet);
    assert.equal(parts.length, 1);
    assert.deepEqual(parts[0], ourEncode(packet));
  });

  const circular: Record<string, unknown> = {};
  circular.self = circular;
  let deep: unknown = 1;
  for (let i = 0; i < 2000; i++) deep = [deep];
  const cases: [string, unknown, string][] = [
    ["circular data", { type: 2, nsp: "/", data: ["ev", circular] }, "SY_ERR_NESTING_TOO_DEEP"],
    ["2000 levels", { type: 2, nsp: "/", data: ["ev", deep] }, "SY_ERR_NESTING_TOO_DEEP"],
    ["BigInt", { type: 2, nsp: "/", data: ["ev", 1n] }, "SY_ERR_BAD_PACKET"],
    [
      "2^64, which notepack.io would send as 0",
      { type: 2, nsp: "/", data: ["ev", 2 ** 64] },
      "SY_ERR_BAD_PACKET",
    ],
    ["-1e19", { type: 2, nsp: "/", data: ["ev", { n: -1e19 }] }, "SY_ERR_BAD_PACKET"],
    ["symbol", { type: 2, nsp: "/", data: ["ev", Symbol("s")] }, "SY_ERR_BAD_PACKET"],
    ["function in an array", { type: 2, nsp: "/", data: ["ev", () => 1] }, "SY_ERR_BAD_PACKET"],
    [
      "throwing toJSON",
      {
        type: 2,
        nsp: "/",
        data: [
          "ev",
          {
            toJSON() {
              throw new Error("boom");
            },
          },
        ],
      },
      "SY_ERR_BAD_PACKET",
    ],
    ["type 9", { type: 9, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["namespace", { type: 0, nsp: "admin" }, "SY_ERR_BAD_NAMESPACE"],
    ["ack id", { type: 3, nsp: "/", data: [], id: -1 }, "SY_ERR_BAD_ACK_ID"],
    ["event name", { type: 2, nsp: "/", data: [1] }, "SY_ERR_BAD_EVENT"],
    ["CONNECT payload", { type: 0, nsp: "/", data: "x" }, "SY_ERR_BAD_PACKET"],
  ];
  for (const [name, packet, code] of cases) {
    test(`${name} → ${code}`, () => {
      throwsCode(() => ourEncode(packet as SocketPacket), code);
      throwsCode(() => msgpackCodec().encode(packet as SocketPacket), code);
    });
  }
});

/**
 * JSON values as a JSON decoder would give them, minus "__proto__" keys and integers
 * past 64 bits (both refused, see above).
 */
const json = fc
  .jsonValue({ maxDepth: 3 })
  .map((v) =>
    JSON.parse(JSON.stringify(v), (k, x) =>
      k === "__proto__" ? undefined : typeof x === "number" && Math.abs(x) >= 2 ** 63 ? 0 : x,
    ),
  );
const bytes = fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u));
const arg = fc.oneof({ weight: 3, arbitrary: json }, { weight: 1, arbitrary: bytes });
const nsp = fc.constantFrom("/", "/admin", "/a/b", "/é");
const record = fc.dictionary(
  fc.string({ maxLength: 6 }).filter((k) => k !== "__proto__"),
  arg,
  { noNullPrototype: true, maxKeys: 4 },
);
const packet: fc.Arbitrary<SocketPacket> = fc.oneof(
  fc.record(
    {
      type: fc.constant(PacketType.EVENT),
      data: fc
        .tuple(fc.string({ maxLength: 8 }), fc.array(arg, { maxLength: 5 }))
        .map(([n, a]) => [n, ...a]),
      nsp,
      id: fc.nat({ max: 999_999_999_999_999 }),
    },
    { requiredKeys: ["type", "data", "nsp"], noNullPrototype: true },
  ),
  fc.record(
    {
      type: fc.constant(PacketType.ACK),
      data: fc.array(arg, { maxLength: 5 }),
      nsp,
      id: fc.nat(),
    },
    { noNullPrototype: true },
  ),
  fc.record({ type: fc.constant(PacketType.CONNECT), nsp }, { noNullPrototype: true }),
  fc.record(
    { type: fc.constant(PacketType.CONNECT), data: record, nsp },
    { noNullPrototype: true },
  ),
  fc.record({ type: fc.constant(PacketType.DISCONNECT), nsp }, { noNullPrototype: true }),
  fc.record(
    {
      type: fc.constant(PacketType.CONNECT_ERROR),
      data: fc.oneof(fc.string(), record),
      nsp,
    },
    { noNullPrototype: true },
  ),
);

describe("msgpack: properties", () => {
  const RUNS = { numRuns: 300 };

  test("round trip through our encoder and decoder", () => {
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(ourDecode(ourEncode(p)), p);
      }),
      RUNS,
    );
  });

  test("what we encode, socket.io-msgpack-parser decodes (and vice versa), byte for byte", () => {
    fc.assert(
      fc.property(packet, (p) => {
        const ours = ourEncode(p);
        assert.deepEqual(refDecode(ours), p);
        const theirs = refEncode(p);
        assert.deepEqual(ourDecode(theirs), p);
        assert.deepEqual(ours, theirs);
      }),
      RUNS,
    );
  });
});

/** Runs `fn`; anything thrown must be a ProtocolError. */
function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `foreign exception: ${String(err)}`);
    assert.match(err.code, /^SY_ERR_/);
  }
}

describe("msgpack fuzz: the decoder only ever throws ProtocolError", () => {
  const RUNS = { numRuns: 1000 };
  const decoder = msgpackCodec().createDecoder();

  test("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (u) => {
        onlyProtocolErrors(() => decoder.add(Buffer.from(u)));
      }),
      RUNS,
    );
  });

  test("random bytes behind a valid packet-map prefix", () => {
    const prefix = np.encode({ type: 2, nsp: "/", data: ["ev"] }).subarray(0, 12);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 48 }), (u) => {
        onlyProtocolErrors(() => decoder.add(Buffer.concat([prefix, u])));
      }),
      RUNS,
    );
  });

  test("mutated valid packets", () => {
    const samples = FIXTURES.map(([, p]) => ourEncode(p));
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.nat(),
        fc.constantFrom("delete", "insert", "replace"),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        (sample, at, op, edit) => {
          const i = at % (sample.length + 1);
          const e = Buffer.from(edit);
          const mutated =
            op === "delete"
              ? Buffer.concat([sample.subarray(0, i), sample.subarray(i + 1)])
              : op === "insert"
                ? Buffer.concat([sample.subarray(0, i), e, sample.subarray(i)])
                : Buffer.concat([sample.subarray(0, i), e, sample.subarray(i + e.length)]);
          onlyProtocolErrors(() => decoder.add(mutated));
          assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
        },
      ),
      RUNS,
    );
  });

  test("arbitrary values as packet maps", () => {
    fc.assert(
      fc.property(
        fc.record({
          type: fc.oneof(fc.integer({ min: -1, max: 8 }), fc.anything()),
          nsp: fc.oneof(nsp, fc.anything()),
          data: fc.anything({ withNullPrototype: false }),
          id: fc.oneof(fc.nat(), fc.anything()),
        }),
        (raw) => {
          let encoded: Buffer;
          try {
            encoded = np.encode(raw);
          } catch {
            return; // notepack.io cannot encode it; not what this test is about
          }
          onlyProtocolErrors(() => decoder.add(encoded));
        },
      ),
      RUNS,
    );
  });
});
