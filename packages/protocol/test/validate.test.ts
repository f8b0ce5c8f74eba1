import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  PacketType,
  ProtocolError,
  SocketDecoder,
  type SocketPacket,
  validateSocketPacket,
} from "@switchyard/protocol";
import fc from "fast-check";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** `[[[...leaf]]]` with `depth` arrays, built without recursion. */
function nested(depth: number, leaf: unknown = 0): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const B = Buffer.from([1, 2, 3]);

describe("validateSocketPacket: accepted packets", () => {
  const valid: [string, unknown, SocketPacket][] = [
    ["CONNECT", { type: 0, nsp: "/" }, { type: 0, nsp: "/" }],
    [
      "CONNECT with auth",
      { type: 0, nsp: "/admin", data: { token: "t" } },
      { type: 0, nsp: "/admin", data: { token: "t" } },
    ],
    ["DISCONNECT", { type: 1, nsp: "/x" }, { type: 1, nsp: "/x" }],
    ["EVENT", { type: 2, nsp: "/", data: ["ev", 1] }, { type: 2, nsp: "/", data: ["ev", 1] }],
    [
      "EVENT with ack id 0",
      { type: 2, nsp: "/", data: ["ev"], id: 0 },
      { type: 2, nsp: "/", data: ["ev"], id: 0 },
    ],
    ["ACK", { type: 3, nsp: "/", data: [], id: 7 }, { type: 3, nsp: "/", data: [], id: 7 }],
    ["CONNECT_ERROR string", { type: 4, nsp: "/", data: "no" }, { type: 4, nsp: "/", data: "no" }],
    [
      "CONNECT_ERROR object",
      { type: 4, nsp: "/", data: { message: "no" } },
      { type: 4, nsp: "/", data: { message: "no" } },
    ],
    [
      "BINARY_EVENT becomes EVENT",
      { type: 5, nsp: "/", data: ["ev", B], attachments: 1 },
      { type: 2, nsp: "/", data: ["ev", B] },
    ],
    [
      "BINARY_ACK becomes ACK",
      { type: 6, nsp: "/", data: [B], id: 1 },
      { type: 3, nsp: "/", data: [B], id: 1 },
    ],
    [
      "extra keys are dropped (socket.io-client's `options`)",
      { type: 2, data: ["ev"], options: { compress: true }, nsp: "/" },
      { type: 2, nsp: "/", data: ["ev"] },
    ],
    [
      "own undefined fields count as absent",
      { type: 2, nsp: "/", data: ["ev"], id: undefined },
      { type: 2, nsp: "/", data: ["ev"] },
    ],
    [
      "largest ack id",
      { type: 2, nsp: "/", data: ["ev"], id: 999_999_999_999_999 },
      { type: 2, nsp: "/", data: ["ev"], id: 999_999_999_999_999 },
    ],
    [
      "longest namespace",
      { type: 1, nsp: `/${"a".repeat(255)}` },
      { type: 1, nsp: `/${"a".repeat(255)}` },
    ],
  ];
  for (const [name, raw, expected] of valid) {
    test(name, () => {
      assert.deepEqual(validateSocketPacket(raw), expected);
    });
  }

  test("returns a fresh packet object but the same data", () => {
    const raw = { type: 2, nsp: "/", data: ["ev", { a: 1 }] };
    const p = validateSocketPacket(raw);
    assert.notEqual(p, raw);
    assert.equal(p.data, raw.data);
  });

  test("null-prototype objects are plain", () => {
    const raw = Object.assign(Object.create(null), {
      type: 0,
      nsp: "/",
      data: Object.assign(Object.create(null), { x: 1 }),
    });
    assert.equal(validateSocketPacket(raw).nsp, "/");
  });

  test("binary values, Dates, undefined and non-finite numbers are data", () => {
    const data = [
      "ev",
      Buffer.from([1]),
      new Uint8Array(2),
      new ArrayBuffer(3),
      new Float64Array(1),
      new DataView(new ArrayBuffer(1)),
      new Date(0),
      undefined,
      Number.NaN,
    ];
    assert.equal(validateSocketPacket({ type: 2, nsp: "/", data }).data, data);
  });

  test('an own "__proto__" key (what JSON.parse makes) is plain data, as in the text decoder', () => {
    const data = JSON.parse('["ev",{"__proto__":{"isAdmin":true}}]') as unknown[];
    assert.equal(validateSocketPacket({ type: 2, nsp: "/", data }).data, data);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
  });

  test("non-enumerable and inherited fields are ignored", () => {
    const raw = { type: 2, nsp: "/", data: ["ev"] };
    Object.defineProperty(raw, "id", { value: 5, enumerable: false });
    assert.deepEqual(validateSocketPacket(raw), { type: 2, nsp: "/", data: ["ev"] });
  });
});

describe("validateSocketPacket: rejected packets", () => {
  const poisoned = Object.setPrototypeOf({}, { isAdmin: true }) as object;
  const fakeArray: unknown[] = [];
  Object.setPrototypeOf(fakeArray, { length: 0 });
  class Auth {
    token = "t";
  }
  const cases: [string, unknown, string][] = [
    ["null", null, "SY_ERR_BAD_PACKET"],
    ["a string", '2["ev"]', "SY_ERR_BAD_PACKET"],
    ["an array", [2, "/", ["ev"]], "SY_ERR_BAD_PACKET"],
    ["a Buffer", B, "SY_ERR_BAD_PACKET"],
    ["a class instance", new Auth(), "SY_ERR_BAD_PACKET"],
    [
      "a packet with a poisoned prototype",
      Object.setPrototypeOf({ type: 2, nsp: "/", data: ["ev"] }, { id: 1 }),
      "SY_ERR_BAD_PACKET",
    ],
    ["type 7", { type: 7, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type 9", { type: 9, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type -1", { type: -1, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type 1.5", { type: 1.5, nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ['type "2"', { type: "2", nsp: "/", data: ["ev"] }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["type missing", { nsp: "/" }, "SY_ERR_UNKNOWN_PACKET_TYPE"],
    ["nsp missing", { type: 0 }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp a number", { type: 0, nsp: 1 }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp empty", { type: 0, nsp: "" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp without /", { type: 0, nsp: "admin" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp with ,", { type: 0, nsp: "/a,b" }, "SY_ERR_BAD_NAMESPACE"],
    ["nsp of 257 chars", { type: 0, nsp: `/${"a".repeat(256)}` }, "SY_ERR_BAD_NAMESPACE"],
    ["id -1", { type: 2, nsp: "/", data: ["ev"], id: -1 }, "SY_ERR_BAD_ACK_ID"],
    ["id 1.5", { type: 2, nsp: "/", data: ["ev"], id: 1.5 }, "SY_ERR_BAD_ACK_ID"],
    ['id "1"', { type: 2, nsp: "/", data: ["ev"], id: "1" }, "SY_ERR_BAD_ACK_ID"],
    ["id null", { type: 2, nsp: "/", data: ["ev"], id: null }, "SY_ERR_BAD_ACK_ID"],
    ["id NaN", { type: 2, nsp: "/", data: ["ev"], id: Number.NaN }, "SY_ERR_BAD_ACK_ID"],
    ["id 1e15", { type: 2, nsp: "/", data: ["ev"], id: 1e15 }, "SY_ERR_BAD_ACK_ID"],
    ["ACK without id", { type: 3, nsp: "/", data: [] }, "SY_ERR_BAD_ACK_ID"],
    ["ACK with object data", { type: 3, nsp: "/", data: {}, id: 1 }, "SY_ERR_BAD_PACKET"],
    ["EVENT without data", { type: 2, nsp: "/" }, "SY_ERR_BAD_EVENT"],
    ["EVENT with []", { type: 2, nsp: "/", data: [] }, "SY_ERR_BAD_EVENT"],
    ["EVENT with a number name", { type: 2, nsp: "/", data: [1] }, "SY_ERR_BAD_EVENT"],
    ["EVENT with an object", { type: 2, nsp: "/", data: { 0: "ev" } }, "SY_ERR_BAD_EVENT"],
    ["BINARY_EVENT with a number name", { type: 5, nsp: "/", data: [B] }, "SY_ERR_BAD_EVENT"],
    ["CONNECT with []", { type: 0, nsp: "/", data: [] }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with null", { type: 0, nsp: "/", data: null }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with a string", { type: 0, nsp: "/", data: "t" }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with a Buffer", { type: 0, nsp: "/", data: B }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with a Date", { type: 0, nsp: "/", data: new Date(0) }, "SY_ERR_BAD_PACKET"],
    ["CONNECT with an id", { type: 0, nsp: "/", id: 1 }, "SY_ERR_BAD_PACKET"],
    ["DISCONNECT with data", { type: 1, nsp: "/", data: {} }, "SY_ERR_BAD_PACKET"],
    ["CONNECT_ERROR without data", { type: 4, nsp: "/" }, "SY_ERR_BAD_PACKET"],
    ["CONNECT_ERROR with a number", { type: 4, nsp: "/", data: 1 }, "SY_ERR_BAD_PACKET"],
    ["CONNECT_ERROR with []", { type: 4, nsp: "/", data: [] }, "SY_ERR_BAD_PACKET"],
    [
      "a poisoned object in data",
      { type: 2, nsp: "/", data: ["ev", poisoned] },
      "SY_ERR_BAD_PACKET",
    ],
    ["a poisoned CONNECT payload", { type: 0, nsp: "/", data: poisoned }, "SY_ERR_BAD_PACKET"],
    [
      "an array with a foreign prototype",
      { type: 3, nsp: "/", data: fakeArray, id: 1 },
      "SY_ERR_BAD_PACKET",
    ],
    [
      "a class instance in data",
      { type: 2, nsp: "/", data: ["ev", new Auth()] },
      "SY_ERR_BAD_PACKET",
    ],
    ["a Map in data", { type: 2, nsp: "/", data: ["ev", new Map()] }, "SY_ERR_BAD_PACKET"],
    ["a function in data", { type: 2, nsp: "/", data: ["ev", () => 1] }, "SY_ERR_BAD_PACKET"],
    ["a symbol in data", { type: 2, nsp: "/", data: ["ev", Symbol("s")] }, "SY_ERR_BAD_PACKET"],
    ["a BigInt in data", { type: 2, nsp: "/", data: ["ev", 1n] }, "SY_ERR_BAD_PACKET"],
    [
      "an object inheriting from a Buffer",
      { type: 2, nsp: "/", data: ["ev", Object.create(B)] },
      "SY_ERR_BAD_PACKET",
    ],
    ["33 levels", { type: 3, nsp: "/", data: nested(33), id: 1 }, "SY_ERR_NESTING_TOO_DEEP"],
    [
      "a Buffer at level 33",
      { type: 3, nsp: "/", data: nested(32, B), id: 1 },
      "SY_ERR_NESTING_TOO_DEEP",
    ],
    [
      "11 binary values",
      { type: 2, nsp: "/", data: ["ev", ...Array.from({ length: 11 }, () => B)] },
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    ],
  ];
  for (const [name, raw, code] of cases) {
    test(`${name} → ${code}`, () => {
      throwsCode(() => validateSocketPacket(raw), code);
    });
  }

  test("depth is checked before the shape, as in the text decoder", () => {
    throwsCode(
      () => validateSocketPacket({ type: 2, nsp: "/", data: nested(40) }),
      "SY_ERR_NESTING_TOO_DEEP",
    );
  });

  test("32 levels pass; a Date or a string does not add a level", () => {
    assert.ok(validateSocketPacket({ type: 3, nsp: "/", data: nested(32), id: 1 }));
    assert.ok(validateSocketPacket({ type: 3, nsp: "/", data: nested(32, new Date(0)), id: 1 }));
    assert.ok(validateSocketPacket({ type: 3, nsp: "/", data: nested(31, B), id: 1 }));
  });

  test("100k-deep data throws a ProtocolError, never RangeError", () => {
    throwsCode(
      () => validateSocketPacket({ type: 3, nsp: "/", data: nested(100_000), id: 1 }),
      "SY_ERR_NESTING_TOO_DEEP",
    );
  });

  test("the walk is iterative: 100k levels pass when the limit allows them", () => {
    const data = nested(100_000);
    const p = validateSocketPacket({ type: 3, nsp: "/", data, id: 1 }, { maxDepth: 200_000 });
    assert.equal(p.data, data);
  });

  test("limits", () => {
    const data = ["ev", [[1]]];
    throwsCode(
      () => validateSocketPacket({ type: 2, nsp: "/", data }, { maxDepth: 2 }),
      "SY_ERR_NESTING_TOO_DEEP",
    );
    assert.ok(validateSocketPacket({ type: 2, nsp: "/", data }, { maxDepth: 3 }));
    throwsCode(
      () => validateSocketPacket({ type: 2, nsp: "/", data: ["ev", B] }, { maxAttachments: 0 }),
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    );
    const ten = ["ev", ...Array.from({ length: 10 }, () => B)];
    assert.ok(validateSocketPacket({ type: 2, nsp: "/", data: ten }));
  });

  test("invalid limits are SY_ERR_INVALID_OPTION", () => {
    const p = { type: 2, nsp: "/", data: ["ev"] };
    for (const limits of [{ maxDepth: 0 }, { maxDepth: 1.5 }, { maxAttachments: -1 }]) {
      assert.throws(
        () => validateSocketPacket(p, limits),
        (err: unknown) => (err as { code?: string }).code === "SY_ERR_INVALID_OPTION",
      );
    }
  });
});

describe("validateSocketPacket agrees with the text decoder", () => {
  // Top-level numbers are left out: on the text wire they would merge with the ack id.
  const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
  const data = fc.oneof(
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.string({ maxLength: 5 }),
    fc.array(json, { maxLength: 4 }),
    fc
      .tuple(fc.string({ maxLength: 5 }), fc.array(json, { maxLength: 3 }))
      .map(([n, a]) => [n, ...a]),
    fc.dictionary(fc.string({ maxLength: 5 }), json, { noNullPrototype: true }),
  );
  const raw = fc.record(
    {
      type: fc.integer({ min: 0, max: 4 }),
      nsp: fc.constantFrom("/", "/admin", "/é", `/${"a".repeat(256)}`),
      data,
      id: fc.integer({ min: 0, max: 999_999_999_999_999 }),
    },
    { requiredKeys: ["type", "nsp"], noNullPrototype: true },
  );

  function toText(p: { type: number; nsp: string; data?: unknown; id?: number }): string {
    return (
      String(p.type) +
      (p.nsp === "/" ? "" : `${p.nsp},`) +
      (p.id === undefined ? "" : String(p.id)) +
      (p.data === undefined ? "" : JSON.stringify(p.data))
    );
  }

  function outcome(fn: () => unknown): unknown {
    try {
      return fn();
    } catch (err) {
      assert.ok(err instanceof ProtocolError);
      return err.code;
    }
  }

  test("same packet or same error code, for every limit", () => {
    fc.assert(
      fc.property(raw, fc.integer({ min: 1, max: 4 }), (r, maxDepth) => {
        const ours = outcome(() => validateSocketPacket(r, { maxDepth }));
        const text = outcome(() => new SocketDecoder({ maxDepth }).add(toText(r)));
        assert.deepEqual(ours, text);
      }),
      { numRuns: 500 },
    );
  });

  test("whatever the text decoder returns passes validation unchanged", () => {
    const decoder = new SocketDecoder();
    const p = decoder.add('51-/admin,9["ev",{"_placeholder":true,"num":0},{"a":[1]}]');
    assert.equal(p, undefined);
    const done = decoder.add(B) as SocketPacket;
    assert.deepEqual(validateSocketPacket(done), done);
    assert.equal(PacketType.EVENT, done.type);
  });
});
