import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { PickleRefusedError, PyTuple, readPickle } from "../src/pickle.js";
import { pythonPickles, tagged, type Writable, writePickle } from "./pickle-fixtures.js";

/** What python-socketio 5.7.2 pickles (pubsub_manager._publish), and the scalars around it. */
const MESSAGES = String.raw`
host = "00ca74158e6d439989ca040628ae93c5"
def emit(event, data, namespace="/ws", room=None, skip_sid=None, callback=None):
    return {"method": "emit", "event": event, "data": data, "namespace": namespace,
            "room": room, "skip_sid": skip_sid, "callback": callback, "host_id": host}
shared = {"seq": 1}
CASES = [
    ("emit-dict", emit("tick", {"seq": 1}, room="r")),
    ("emit-tuple3", emit("multi", (1, "two", [3]), room="r")),
    ("emit-bytes", emit("bin", {"b": b"\x00\x01\xff"}, room="r")),
    ("emit-big-bytes", emit("bin", b"\xab" * 70000)),
    ("emit-rooms", emit("list", [1, 2], namespace="/", room=["r", "s"], skip_sid=["a", "b"])),
    ("emit-skip", emit("tick", "x", skip_sid="SKIPSID")),
    ("emit-callback", emit("q", {"n": 1}, room="sid1", callback=("sid1", "/ws", 7))),
    ("emit-none", emit("ping", None)),
    ("emit-empty-tuple", emit("ping", ())),
    ("emit-tuple2", emit("pair", ("a", {"b": [True, False, None]}))),
    ("emit-shared", emit("shared", (shared, shared, [shared]))),
    ("scalars", emit("s", (0, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31, 2**53 - 1, -(2**53 - 1), 2**63, -(2**70), 1.5, -0.25, 1e300))),
    ("unicode", emit("u", ("é€😀", "x" * 300, ""))),
    ("int-keys", emit("k", {1: "one", True: "t", None: "n", "s": 2})),
    ("proto-key", emit("p", {"__proto__": {"polluted": 1}, "constructor": {"prototype": {"x": 1}}})),
    ("close_room", {"method": "close_room", "room": "r", "namespace": "/ws"}),
    ("disconnect", {"method": "disconnect", "sid": "abc", "namespace": "/ws"}),
    ("callback", {"method": "callback", "host_id": host, "sid": "r", "namespace": "/ws", "id": 1, "args": ({"answer": 42},)}),
]
`;

describe("readPickle: pickles from the real Python", () => {
  const fixtures = pythonPickles(MESSAGES, [3, 4, 5]);
  it("reads every 5.7.2-style message, protocols 3–5, as Python meant it", () => {
    assert.ok(fixtures.length >= 18 * 3);
    for (const f of fixtures) {
      const v = readPickle(f.bytes);
      // "int-keys": json.dumps stringifies True as "true"; Python merges 1 and True into one key.
      assert.deepEqual(tagged(v), f.expect, `${f.name} protocol ${f.proto}`);
    }
  });

  it("keeps tuples apart from lists and builds null-prototype dicts", () => {
    const f = fixtures.find((x) => x.name === "emit-tuple3" && x.proto === 4);
    assert.ok(f);
    const v = readPickle(f.bytes) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), null);
    assert.ok(v.data instanceof PyTuple);
    assert.deepEqual((v.data as PyTuple).items[2], [3]);
    assert.ok(Array.isArray((v.data as PyTuple).items[2]));
  });

  it("reads __proto__ and constructor as plain keys, polluting nothing", () => {
    const f = fixtures.find((x) => x.name === "proto-key" && x.proto === 4);
    assert.ok(f);
    const v = readPickle(f.bytes) as { data: Record<string, Record<string, unknown>> };
    assert.ok(Object.hasOwn(v.data, "__proto__"));
    assert.equal(Object.getPrototypeOf(v.data), null);
    assert.deepEqual(
      { ...Object.getOwnPropertyDescriptor(v.data, "__proto__")?.value },
      { polluted: 1 },
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it("refuses protocol 2 bytes (CPython writes them as _codecs.encode + REDUCE)", () => {
    const [f] = pythonPickles('CASES = [("b", {"b": b"\\x01"})]', [2]);
    assert.ok(f);
    assert.throws(() => readPickle(f.bytes), /GLOBAL|REDUCE/);
    const [ok] = pythonPickles('CASES = [("d", {"a": [1, (2, 3)], "s": "x"})]', [2]);
    assert.ok(ok);
    assert.deepEqual(tagged(readPickle(ok.bytes)), { a: [1, { $tuple: [2, 3] }], s: "x" });
  });
});

const HOSTILE = `
import os
class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/switchyard-pickle-pwned",))
class Obj:
    def __init__(self): self.a = 1
selfref = []
selfref.append(selfref)
selfdict = {}
selfdict["me"] = selfdict
deep = []
cur = deep
for _ in range(200):
    nxt = []
    cur.append(nxt)
    cur = nxt
laughs = ["lol" * 100]
for _ in range(40):
    laughs = [laughs, laughs]
REFUSED = {"reduce-os-system", "object", "set", "frozenset", "bytearray", "selfref", "selfdict", "deep", "laughs", "nan"}
CASES = [
    ("reduce-os-system", {"method": "emit", "event": "x", "data": Evil()}),
    ("object", {"data": Obj()}),
    ("set", {"data": {1, 2}}),
    ("frozenset", {"data": frozenset([1])}),
    ("bytearray", {"data": bytearray(b"ab")}),
    ("selfref", {"data": selfref}),
    ("selfdict", selfdict),
    ("deep", {"data": deep}),
    ("laughs", {"data": laughs}),
    ("nan", {"data": float("nan")}),
]
`;

describe("readPickle: hostile input", () => {
  const refusedOnly = (b: Buffer, re?: RegExp) => {
    assert.throws(
      () => readPickle(b),
      (err: unknown) =>
        err instanceof PickleRefusedError && (re === undefined || re.test(err.message)),
    );
  };

  it("refuses code, objects, sets, cycles, depth and expansion bombs from the real Python", () => {
    const fixtures = pythonPickles(HOSTILE, [2, 3, 4, 5]);
    for (const f of fixtures) {
      if (f.name === "bytearray" && f.proto === 5) {
        // Protocol 5 writes bytearray as BYTEARRAY8: read as bytes.
        assert.deepEqual(tagged(readPickle(f.bytes)), { data: { $bytes: "YWI=" } });
        continue;
      }
      refusedOnly(f.bytes);
    }
    const evil = fixtures.find((f) => f.name === "reduce-os-system" && f.proto === 4);
    assert.ok(evil);
    refusedOnly(evil.bytes, /STACK_GLOBAL/);
    const cycle = fixtures.find((f) => f.name === "selfref" && f.proto === 4);
    assert.ok(cycle);
    refusedOnly(cycle.bytes, /contains itself/);
  });

  it("refuses lengths beyond the input, bad memo references, truncation and junk", () => {
    const cases: [number[], RegExp][] = [
      [[0x80, 4, 0x8c, 200, 0x61, 0x2e], /past the end/],
      [[0x80, 4, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e], /past the end/],
      [[0x80, 4, 0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x2e], /past the end/],
      [[0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x2e], /past the end/],
      [[0x80, 4, 0x95, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x4e, 0x2e], /past the end/],
      [[0x80, 4, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e], /never stored/],
      [[0x80, 4, 0x68, 0, 0x2e], /never stored/],
      [[0x80, 4, 0x2e], /unbalanced|underflow/],
      [[0x80, 4, 0x4e, 0x4e, 0x2e], /unbalanced/],
      [[0x80, 4, 0x4e], /before STOP/],
      [[0x80, 4, 0x4e, 0x2e, 0x00], /after STOP/],
      [[0x80, 1, 0x4e, 0x2e], /protocol 1/],
      [[0x80, 6, 0x4e, 0x2e], /protocol 6/],
      [[0x7b, 0x7d], /no PROTO/],
      [[0x80, 4, 0x28, 0x73, 0x2e], /MARK/],
      [[0x80, 4, 0x4e, 0x4e, 0x4e, 0x73, 0x2e], /not a dict/],
      [[0x80, 4, 0x4e, 0x4e, 0x73, 0x2e], /underflow/],
      [[0x80, 4, 0x7d, 0x5d, 0x4e, 0x73, 0x2e], /dict key/],
      [[0x80, 4, 0x4e, 0x4e, 0x61, 0x2e], /not a list/],
      [[0x80, 4, 0x8a, 0xff, 0x2e], /LONG1/],
      [[0x80, 4, 0x8c, 2, 0xed, 0xa0, 0x2e], /UTF-8/],
      [[0x80, 4, 0x52, 0x2e], /REDUCE/],
      [[0x80, 4, 0x63, 0x2e], /GLOBAL/],
      [[0x80, 4, 0x81, 0x2e], /NEWOBJ/],
      [[0x80, 4, 0x92, 0x2e], /NEWOBJ_EX/],
      [[0x80, 4, 0x62, 0x2e], /BUILD/],
      [[0x80, 4, 0x69, 0x2e], /INST/],
      [[0x80, 4, 0x6f, 0x2e], /OBJ/],
      [[0x80, 4, 0x82, 0x01, 0x2e], /EXT1/],
      [[0x80, 4, 0x50, 0x2e], /PERSID/],
      [[0x80, 4, 0x51, 0x2e], /BINPERSID/],
      [[0x80, 4, 0xff, 0x2e], /unknown opcode 0xff/],
    ];
    for (const [bytes, re] of cases) refusedOnly(Buffer.from(bytes), re);
  });

  it("takes huge memo indices by count, and caps the memo", () => {
    // LONG_BINPUT 0xffffffff then LONG_BINGET of it: fine (a sparse memo is one entry).
    const ok = Buffer.from([
      0x80, 4, 0x5d, 0x72, 0xff, 0xff, 0xff, 0xff, 0x30, 0x6a, 0xff, 0xff, 0xff, 0xff, 0x2e,
    ]);
    assert.deepEqual(readPickle(ok), []);
    const flood = [0x80, 4, 0x5d];
    for (let i = 0; i < 70000; i++) flood.push(0x94);
    flood.push(0x2e);
    refusedOnly(Buffer.from(flood), /memo beyond/);
    assert.throws(() => readPickle(Buffer.from(flood), { maxMemo: 10 }), /memo beyond 10/);
  });

  it("refuses input over the size limit before reading it", () => {
    refusedOnly(Buffer.alloc(1024 * 1024 + 1, 0x4e), /exceed/);
    assert.throws(() => readPickle(writePickle("x".repeat(100)), { maxBytes: 50 }), /exceed/);
  });

  it("answers adversarial 1 MiB inputs quickly (bounded work, no hang)", () => {
    const MiB = 1024 * 1024;
    const build = (head: number[], body: number[], fill: number, tail: number[]) => {
      const b = Buffer.alloc(MiB, 0);
      Buffer.from([0x80, 4, ...head]).copy(b, 0);
      let p = head.length + 2;
      while (p + body.length + tail.length <= MiB) {
        for (const x of body) b[p++] = x;
        if (fill-- <= 0) break;
      }
      Buffer.from(tail).copy(b, MiB - tail.length);
      return b.subarray(0, MiB);
    };
    const inputs = [
      // a list of ~500k None: more values than maxValues
      build([0x5d, 0x28], [0x4e], Number.POSITIVE_INFINITY, [0x65, 0x2e]),
      // 350k nested EMPTY_LIST + APPEND pairs interleaved with MEMOIZE/BINGET
      build([0x5d, 0x94], [0x68, 0x00, 0x61], Number.POSITIVE_INFINITY, [0x2e]),
      // a dict with ~100k keys built from two memoized strings (expansion)
      build(
        [0x7d, 0x8c, 0x01, 0x61, 0x94, 0x30, 0x28],
        [0x4a, 1, 2, 3, 4, 0x68, 0x00],
        Number.POSITIVE_INFINITY,
        [0x75, 0x2e],
      ),
      // MARKs and POP_MARKs
      build([0x4e], [0x28, 0x31], Number.POSITIVE_INFINITY, [0x2e]),
    ];
    for (const input of inputs) {
      const t0 = performance.now();
      onlyOwnErrors(input);
      const ms = performance.now() - t0;
      assert.ok(ms < 3000, `took ${Math.round(ms)} ms`);
    }
  });

  it("refuses every truncation of a real message with its own error", () => {
    const [f] = pythonPickles(MESSAGES, [4]);
    assert.ok(f);
    for (let n = 0; n < f.bytes.length; n++) refusedOnly(f.bytes.subarray(0, n));
  });
});

// ——— fuzzing ———

const key = fc.string({ maxLength: 8 }).filter((k) => k !== "$tuple");
const writable: fc.Arbitrary<Writable> = fc.letrec<{ v: Writable }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
    fc.string({ unit: "grapheme", maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc.array(tie("v"), { maxLength: 5 }),
    fc.array(tie("v"), { maxLength: 4 }).map((items) => ({ $tuple: items })),
    fc.dictionary(key, tie("v"), { maxKeys: 5 }),
  ),
})).v;

const OPS = [
  0x2e, 0x95, 0x7d, 0x5d, 0x29, 0x28, 0x73, 0x75, 0x61, 0x65, 0x4a, 0x4b, 0x4d, 0x8a, 0x47, 0x8c,
  0x58, 0x8d, 0x43, 0x42, 0x8e, 0x96, 0x4e, 0x88, 0x89, 0x94, 0x71, 0x72, 0x68, 0x6a, 0x85, 0x86,
  0x87, 0x74, 0x30, 0x31, 0x52, 0x63, 0x93, 0x62, 0x81,
];

function onlyOwnErrors(bytes: Uint8Array): void {
  try {
    readPickle(bytes);
  } catch (err) {
    if (!(err instanceof PickleRefusedError)) throw err;
  }
  assert.equal(Object.getPrototypeOf({}), Object.prototype);
  assert.deepEqual(Object.keys(Object.prototype), []);
}

describe("readPickle: fuzzing (fast-check)", () => {
  it("round-trips every data value a protocol-4 writer produces", () => {
    fc.assert(
      fc.property(writable, (v) => {
        const read = readPickle(writePickle(v));
        assert.deepEqual(tagged(read), JSON.parse(JSON.stringify(toTagged(v))));
      }),
      { numRuns: 400 },
    );
  });

  it("never throws anything but its own error on random opcode streams", () => {
    const stream = fc.array(
      fc.oneof(
        fc.constantFrom(...OPS).map((op) => [op]),
        fc.uint8Array({ maxLength: 9 }).map((a) => [...a]),
      ),
      { maxLength: 60 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 7 }), stream, (proto, chunks) => {
        onlyOwnErrors(Buffer.from([0x80, proto, ...chunks.flat()]));
      }),
      { numRuns: 3000 },
    );
  });

  it("never throws anything but its own error on mutated real messages", () => {
    const fixtures = pythonPickles(MESSAGES, [4, 5]);
    fc.assert(
      fc.property(
        fc.constantFrom(...fixtures),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.constantFrom("set", "insert", "delete"),
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        (f, edits) => {
          const b = [...f.bytes];
          for (const [at, byte, kind] of edits) {
            const i = at % (b.length + 1);
            if (kind === "set") b[i % b.length] = byte;
            else if (kind === "insert") b.splice(i, 0, byte);
            else b.splice(i % b.length, 1);
          }
          onlyOwnErrors(Buffer.from(b));
        },
      ),
      { numRuns: 3000 },
    );
  });
});

function toTagged(v: Writable): unknown {
  if (Buffer.isBuffer(v)) return { $bytes: v.toString("base64") };
  if (Array.isArray(v)) return v.map(toTagged);
  if (typeof v === "object" && v !== null) {
    if (Object.hasOwn(v, "$tuple"))
      return { $tuple: (v as { $tuple: Writable[] }).$tuple.map(toTagged) };
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      Object.defineProperty(out, k, { value: toTagged(x as Writable), enumerable: true });
    }
    return out;
  }
  return v;
}
