/**
 * Byte fixtures made by the real /usr/bin/python3 (`pickle.dumps`), and a tagged JSON
 * form of pickle values so tests can compare what Python meant with what the reader
 * produced: tuples as `{"$tuple": […]}`, bytes as `{"$bytes": base64}`, integers beyond
 * ±2^53 as `{"$int": "digits"}`.
 */
import { execFileSync } from "node:child_process";
import { PYTHON } from "@switchyard/test-harness";
import { type PickleValue, PyTuple } from "../src/pickle.js";

/** One pickled value, as Python wrote it. */
export interface PyFixture {
  readonly name: string;
  readonly proto: number;
  readonly bytes: Buffer;
  /** The tagged JSON of what was pickled; `undefined` when the case is meant to be refused. */
  readonly expect: unknown;
}

/**
 * Runs `script` (which must define `CASES`, a list of (name, value) pairs, and may set
 * `REFUSED`, names of cases whose pickles must be refused) under the real Python and
 * returns the pickles of every case for each protocol in `protos`.
 */
export function pythonPickles(script: string, protos: readonly number[]): PyFixture[] {
  const program = `
import base64, json, pickle, sys
${script}
REFUSED = globals().get("REFUSED", set())
def tag(v):
    if isinstance(v, tuple): return {"$tuple": [tag(x) for x in v]}
    if isinstance(v, (bytes, bytearray)): return {"$bytes": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, bool) or v is None: return v
    if isinstance(v, int):
        return v if -(2**53) < v < 2**53 else {"$int": str(v)}
    if isinstance(v, list): return [tag(x) for x in v]
    if isinstance(v, dict): return {("null" if k is None else json.dumps(k) if not isinstance(k, str) else k): tag(x) for k, x in v.items()}
    return v
for proto in json.loads(sys.argv[1]):
    for name, value in CASES:
        b = pickle.dumps(value, protocol=proto)
        expect = None if name in REFUSED else tag(value)
        print(json.dumps({"name": name, "proto": proto, "b64": base64.b64encode(b).decode(), "expect": expect, "refused": name in REFUSED}))
`;
  const out = execFileSync(PYTHON, ["-c", program, JSON.stringify(protos)], {
    encoding: "utf8",
    timeout: 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return out
    .trim()
    .split("\n")
    .map((line) => {
      const j = JSON.parse(line) as {
        name: string;
        proto: number;
        b64: string;
        expect: unknown;
        refused: boolean;
      };
      return {
        name: j.name,
        proto: j.proto,
        bytes: Buffer.from(j.b64, "base64"),
        expect: j.refused ? undefined : j.expect,
      };
    });
}

/** The tagged JSON of a value the reader produced. */
export function tagged(v: PickleValue): unknown {
  if (v instanceof PyTuple) return { $tuple: v.items.map(tagged) };
  if (Buffer.isBuffer(v)) return { $bytes: v.toString("base64") };
  if (typeof v === "bigint") return { $int: v.toString() };
  if (Array.isArray(v)) return v.map(tagged);
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(out, k, { value: tagged(v[k] as PickleValue), enumerable: true });
    }
    return out;
  }
  return v;
}

// ——— a test-only pickle writer (protocol 4 data opcodes), for round-trip fuzzing ———

/** Values the test writer can pickle. */
export type Writable =
  | null
  | boolean
  | number
  | string
  | Buffer
  | Writable[]
  | { readonly $tuple: Writable[] }
  | { readonly [k: string]: Writable };

/** Pickles `v` with protocol 4 data opcodes, as CPython would (without FRAME). */
export function writePickle(v: Writable): Buffer {
  const parts: Buffer[] = [Buffer.from([0x80, 4])];
  const w = (b: number[] | Buffer) => parts.push(Buffer.isBuffer(b) ? b : Buffer.from(b));
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const put = (x: Writable): void => {
    if (x === null) w([0x4e]);
    else if (x === true) w([0x88]);
    else if (x === false) w([0x89]);
    else if (typeof x === "number") {
      if (Number.isInteger(x) && x >= 0 && x < 256) w([0x4b, x]);
      else if (Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31) {
        const b = Buffer.alloc(5);
        b[0] = 0x4a;
        b.writeInt32LE(x, 1);
        w(b);
      } else {
        const b = Buffer.alloc(9);
        b[0] = 0x47;
        b.writeDoubleBE(x, 1);
        w(b);
      }
    } else if (typeof x === "string") {
      const s = Buffer.from(x, "utf8");
      if (s.length < 256) w([0x8c, s.length]);
      else w(Buffer.concat([Buffer.from([0x58]), u32(s.length)]));
      w(s);
      w([0x94]);
    } else if (Buffer.isBuffer(x)) {
      if (x.length < 256) w([0x43, x.length]);
      else w(Buffer.concat([Buffer.from([0x42]), u32(x.length)]));
      w(x);
      w([0x94]);
    } else if (Array.isArray(x)) {
      w([0x5d, 0x94]);
      if (x.length > 0) {
        w([0x28]);
        for (const e of x) put(e);
        w([0x65]);
      }
    } else if (Object.hasOwn(x, "$tuple") && Array.isArray((x as { $tuple: unknown }).$tuple)) {
      const items = (x as { $tuple: Writable[] }).$tuple;
      if (items.length === 0) w([0x29]);
      else {
        w([0x28]);
        for (const e of items) put(e);
        w([0x74]);
      }
      w([0x94]);
    } else {
      w([0x7d, 0x94]);
      const keys = Object.keys(x);
      if (keys.length > 0) {
        w([0x28]);
        for (const k of keys) {
          put(k);
          put((x as Record<string, Writable>)[k] as Writable);
        }
        w([0x75]);
      }
    }
  };
  put(v);
  w([0x2e]);
  return Buffer.concat(parts);
}
