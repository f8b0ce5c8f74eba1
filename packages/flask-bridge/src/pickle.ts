/**
 * A restricted pickle *reader* for the messages python-socketio < 5.14 (Debian's 5.7.2)
 * puts on its message queue. It is not an unpickler: it knows the data opcodes of
 * protocols 2–5 (dicts, lists, tuples, str, bytes, ints, floats, bools, None, the memo)
 * and refuses the whole message at the first opcode that would name code (`GLOBAL`,
 * `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ*`, `EXT*`, `PERSID`, …) or
 * that python-socketio never writes. Nothing read here is ever looked up, called or
 * used as a prototype: dicts become null-prototype objects, keys are plain strings.
 *
 * Bounded: the input length, every declared length by the bytes that remain, the
 * stack, the mark stack, the memo, `LONG1` lengths, the nesting depth and the size of
 * the result once shared (memoized) parts are expanded, as a JSON encoder would. Cycles
 * (a list appended to itself through the memo) are refused. The only error thrown is
 * {@link PickleRefusedError}.
 */
import { isUtf8 } from "node:buffer";
import { SwitchyardError } from "@switchyard/server";

/** Code of {@link PickleRefusedError}. */
export const PICKLE_REFUSED = "SY_ERR_PICKLE_REFUSED";

/** A pickle the restricted reader does not accept; `message` says why. */
export class PickleRefusedError extends SwitchyardError {
  /** Byte offset of the opcode (or field) that was refused. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(PICKLE_REFUSED, `pickle refused at byte ${offset}: ${message}`);
    this.name = "PickleRefusedError";
    this.offset = offset;
  }
}

/** A Python tuple, kept apart from lists (a top-level `data` tuple means several arguments). */
export class PyTuple {
  /** The elements, in order. */
  readonly items: readonly PickleValue[];

  constructor(items: readonly PickleValue[]) {
    this.items = Object.freeze(items.slice());
    Object.freeze(this);
  }
}

/** A Python dict: a null-prototype object with string keys. */
export type PickleDict = { [key: string]: PickleValue };

/** What the reader produces. Integers outside ±2^53 come back as `bigint`. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | PickleValue[]
  | PyTuple
  | PickleDict;

/** Limits of {@link readPickle}; every one has a default fit for python-socketio messages. */
export interface PickleLimits {
  /** Largest input in bytes. @default 1048576 (1 MiB) */
  maxBytes?: number;
  /** Deepest nesting of containers in the result (the top level is depth 1). @default 32 */
  maxDepth?: number;
  /** Most memo entries. @default 65536 */
  maxMemo?: number;
  /** Most values (containers and scalars) in the result once memo references are expanded. @default 100000 */
  maxValues?: number;
  /** Most bytes of strings and byte strings in the result once memo references are expanded. @default 4 × maxBytes */
  maxExpandedBytes?: number;
}

const LONG1_MAX = 32; // bytes: a 256-bit integer is far beyond anything sent as data
const STACK_MAX = 1_000_000;

/** Opcodes that name code, objects or machinery: refused by name. */
const REFUSED: Readonly<Record<number, string>> = {
  99: "GLOBAL",
  147: "STACK_GLOBAL",
  82: "REDUCE",
  98: "BUILD",
  105: "INST",
  111: "OBJ",
  129: "NEWOBJ",
  146: "NEWOBJ_EX",
  130: "EXT1",
  131: "EXT2",
  132: "EXT4",
  80: "PERSID",
  81: "BINPERSID",
  151: "NEXT_BUFFER",
  152: "READONLY_BUFFER",
  143: "EMPTY_SET",
  144: "ADDITEMS",
  145: "FROZENSET",
  139: "LONG4",
  73: "INT",
  76: "LONG",
  70: "FLOAT",
  83: "STRING",
  84: "BINSTRING",
  85: "SHORT_BINSTRING",
  86: "UNICODE",
  112: "PUT",
  103: "GET",
  108: "LIST",
  100: "DICT",
  50: "DUP",
};

const MARK_SENTINEL: unique symbol = Symbol("mark");
type Slot = PickleValue | typeof MARK_SENTINEL;

function isContainer(v: unknown): v is PickleValue[] | PyTuple | PickleDict {
  return typeof v === "object" && v !== null && !Buffer.isBuffer(v);
}

function isDict(v: unknown): v is PickleDict {
  return isContainer(v) && !Array.isArray(v) && !(v instanceof PyTuple);
}

/**
 * Reads one pickle (protocol 2–5) made of data opcodes only. Throws
 * {@link PickleRefusedError} — and nothing else — for anything else.
 */
export function readPickle(input: Uint8Array, limits: PickleLimits = {}): PickleValue {
  const maxBytes = limits.maxBytes ?? 1024 * 1024;
  const maxDepth = limits.maxDepth ?? 32;
  const maxMemo = limits.maxMemo ?? 65536;
  const maxValues = limits.maxValues ?? 100_000;
  const maxExpandedBytes = limits.maxExpandedBytes ?? 4 * maxBytes;
  if (input.length > maxBytes) {
    throw new PickleRefusedError(`${input.length} bytes exceed the limit of ${maxBytes}`, 0);
  }
  const buf = Buffer.from(input.buffer, input.byteOffset, input.length);
  const value = new Reader(buf, maxMemo).run();
  checkShape(value, maxDepth, maxValues, maxExpandedBytes);
  return value;
}

class Reader {
  private pos = 0;
  private readonly stack: Slot[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();

  constructor(
    private readonly buf: Buffer,
    private readonly maxMemo: number,
  ) {}

  run(): PickleValue {
    const buf = this.buf;
    if (buf.length < 2 || buf[0] !== 0x80) throw new PickleRefusedError("no PROTO opcode", 0);
    const proto = buf[1] as number;
    if (proto < 2 || proto > 5) throw new PickleRefusedError(`protocol ${proto} (2–5 only)`, 1);
    this.pos = 2;
    for (;;) {
      const at = this.pos;
      if (at >= buf.length) throw new PickleRefusedError("input ends before STOP", at);
      const op = buf[at] as number;
      this.pos++;
      switch (op) {
        case 0x2e: {
          // STOP
          if (this.marks.length !== 0 || this.stack.length !== 1) {
            throw new PickleRefusedError("STOP with an unbalanced stack", at);
          }
          if (this.pos !== buf.length) throw new PickleRefusedError("bytes after STOP", this.pos);
          return this.value(this.stack.pop(), at);
        }
        case 0x95: // FRAME: an 8-byte length; data follows inline
          this.declared(this.uint(8, at), at);
          break;
        case 0x7d:
          this.push(Object.create(null) as PickleDict, at);
          break;
        case 0x5d:
          this.push([], at);
          break;
        case 0x29:
          this.push(new PyTuple([]), at);
          break;
        case 0x28: // MARK
          if (this.marks.length >= 1024) throw new PickleRefusedError("too many MARKs", at);
          this.marks.push(this.stack.length);
          this.stack.push(MARK_SENTINEL);
          break;
        case 0x73: {
          // SETITEM
          const v = this.pop(at);
          const k = this.pop(at);
          this.setItem(this.top(at), k, v, at);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark(at);
          if (items.length % 2 !== 0)
            throw new PickleRefusedError("SETITEMS with an odd count", at);
          const d = this.top(at);
          for (let i = 0; i < items.length; i += 2) {
            this.setItem(d, items[i] as PickleValue, items[i + 1] as PickleValue, at);
          }
          break;
        }
        case 0x61: {
          // APPEND
          const v = this.pop(at);
          this.list(this.top(at), at).push(v);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark(at);
          const l = this.list(this.top(at), at);
          for (const v of items) l.push(v);
          break;
        }
        case 0x4a:
          this.push(this.buf.readInt32LE(this.take(4, at)), at);
          break;
        case 0x4b:
          this.push(this.buf[this.take(1, at)] as number, at);
          break;
        case 0x4d:
          this.push(this.buf.readUInt16LE(this.take(2, at)), at);
          break;
        case 0x8a: {
          // LONG1
          const n = this.uint(1, at);
          if (n > LONG1_MAX) throw new PickleRefusedError(`LONG1 of ${n} bytes`, at);
          this.push(long(this.buf, this.take(n, at), n), at);
          break;
        }
        case 0x47: {
          // BINFLOAT (big-endian)
          const f = this.buf.readDoubleBE(this.take(8, at));
          if (!Number.isFinite(f)) throw new PickleRefusedError("non-finite float", at);
          this.push(f, at);
          break;
        }
        case 0x8c:
          this.push(this.text(this.uint(1, at), at), at);
          break;
        case 0x58:
          this.push(this.text(this.uint(4, at), at), at);
          break;
        case 0x8d:
          this.push(this.text(this.uint(8, at), at), at);
          break;
        case 0x43:
          this.push(this.bytes(this.uint(1, at), at), at);
          break;
        case 0x42:
          this.push(this.bytes(this.uint(4, at), at), at);
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8: read as bytes
          this.push(this.bytes(this.uint(8, at), at), at);
          break;
        case 0x4e:
          this.push(null, at);
          break;
        case 0x88:
          this.push(true, at);
          break;
        case 0x89:
          this.push(false, at);
          break;
        case 0x94: // MEMOIZE
          this.put(this.memo.size, at);
          break;
        case 0x71:
          this.put(this.uint(1, at), at);
          break;
        case 0x72:
          this.put(this.uint(4, at), at);
          break;
        case 0x68:
          this.get(this.uint(1, at), at);
          break;
        case 0x6a:
          this.get(this.uint(4, at), at);
          break;
        case 0x85:
          this.push(new PyTuple([this.pop(at)]), at);
          break;
        case 0x86: {
          const b = this.pop(at);
          const a = this.pop(at);
          this.push(new PyTuple([a, b]), at);
          break;
        }
        case 0x87: {
          const c = this.pop(at);
          const b = this.pop(at);
          const a = this.pop(at);
          this.push(new PyTuple([a, b, c]), at);
          break;
        }
        case 0x74:
          this.push(new PyTuple(this.popMark(at)), at);
          break;
        case 0x30: // POP
          if (this.stack.length === 0) throw new PickleRefusedError("POP of an empty stack", at);
          if (this.stack[this.stack.length - 1] === MARK_SENTINEL) this.popMark(at);
          else this.stack.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark(at);
          break;
        case 0x80:
          throw new PickleRefusedError("PROTO after the start", at);
        default: {
          const name = REFUSED[op];
          throw new PickleRefusedError(
            name === undefined
              ? `unknown opcode 0x${op.toString(16).padStart(2, "0")}`
              : `opcode ${name} is not data (refused: only data opcodes are read)`,
            at,
          );
        }
      }
    }
  }

  /** Advances past `n` bytes and returns where they start. */
  private take(n: number, at: number): number {
    const start = this.pos;
    if (n > this.buf.length - start) {
      throw new PickleRefusedError(`a length of ${n} runs past the end of the input`, at);
    }
    this.pos = start + n;
    return start;
  }

  private uint(n: 1 | 4 | 8, at: number): number {
    const p = this.take(n, at);
    if (n === 1) return this.buf[p] as number;
    if (n === 4) return this.buf.readUInt32LE(p);
    const v = this.buf.readBigUInt64LE(p);
    // Anything past the input is refused by declared(); keep the number exact meanwhile.
    return v > BigInt(this.buf.length) ? Number.MAX_SAFE_INTEGER : Number(v);
  }

  private declared(n: number, at: number): void {
    if (n > this.buf.length - this.pos) {
      throw new PickleRefusedError(`a length of ${n} runs past the end of the input`, at);
    }
  }

  private text(n: number, at: number): string {
    const p = this.take(n, at);
    const slice = this.buf.subarray(p, p + n);
    // Python writes str as UTF-8 with surrogatepass; a lone surrogate is not valid UTF-8.
    if (!isUtf8(slice)) {
      throw new PickleRefusedError("a str that is not valid UTF-8", at);
    }
    return slice.toString("utf8");
  }

  private bytes(n: number, at: number): Buffer {
    const p = this.take(n, at);
    return Buffer.from(this.buf.subarray(p, p + n));
  }

  private push(v: PickleValue, at: number): void {
    if (this.stack.length >= STACK_MAX) throw new PickleRefusedError("stack too deep", at);
    this.stack.push(v);
  }

  private pop(at: number): PickleValue {
    return this.value(this.stack.pop(), at);
  }

  private value(v: Slot | undefined, at: number): PickleValue {
    if (v === undefined) throw new PickleRefusedError("stack underflow", at);
    if (v === MARK_SENTINEL) throw new PickleRefusedError("a MARK where a value was expected", at);
    return v;
  }

  private top(at: number): PickleValue {
    return this.value(this.stack[this.stack.length - 1], at);
  }

  private popMark(at: number): PickleValue[] {
    const m = this.marks.pop();
    if (m === undefined) throw new PickleRefusedError("no MARK", at);
    const items = this.stack.splice(m);
    items.shift(); // the mark itself
    return items as PickleValue[];
  }

  private list(v: PickleValue, at: number): PickleValue[] {
    if (!Array.isArray(v)) throw new PickleRefusedError("APPEND to something not a list", at);
    return v;
  }

  private setItem(d: PickleValue, k: PickleValue, v: PickleValue, at: number): void {
    if (!isDict(d)) throw new PickleRefusedError("SETITEM on something not a dict", at);
    // A null-prototype object: "__proto__" or "constructor" are plain own keys here.
    Object.defineProperty(d, dictKey(k, at), {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }

  private put(i: number, at: number): void {
    if (this.memo.size >= this.maxMemo && !this.memo.has(i)) {
      throw new PickleRefusedError(`memo beyond ${this.maxMemo} entries`, at);
    }
    this.memo.set(i, this.top(at));
  }

  private get(i: number, at: number): void {
    const v = this.memo.get(i);
    if (v === undefined) throw new PickleRefusedError(`memo entry ${i} was never stored`, at);
    this.push(v, at);
  }
}

/** Keys as `json.dumps` writes them: str as is; int, bool and None stringified; others refused. */
function dictKey(k: PickleValue, at: number): string {
  if (typeof k === "string") return k;
  if (typeof k === "bigint") return k.toString();
  if (typeof k === "number" && Number.isInteger(k)) return String(k);
  if (k === true) return "true";
  if (k === false) return "false";
  if (k === null) return "null";
  throw new PickleRefusedError("a dict key that is not a str, int, bool or None", at);
}

/** Little-endian two's complement, as LONG1 stores it. */
function long(buf: Buffer, p: number, n: number): number | bigint {
  if (n === 0) return 0;
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[p + i] as number);
  if (((buf[p + n - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * n);
  return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
}

/**
 * Refuses cycles, and results nested deeper than `maxDepth` or bigger than the limits
 * once shared parts are counted at every place they appear. One depth-first walk over
 * the distinct containers (each visited once, so linear in the input), colouring the
 * ones on the current path to find cycles.
 */
function checkShape(
  root: PickleValue,
  maxDepth: number,
  maxValues: number,
  maxExpandedBytes: number,
): void {
  interface Info {
    depth: number;
    values: number;
    bytes: number;
  }
  const done = new Map<object, Info>();
  const onPath = new Set<object>();
  const scalar = (v: PickleValue): Info => ({
    depth: 0,
    values: 1,
    bytes: typeof v === "string" ? v.length : Buffer.isBuffer(v) ? v.length : 0,
  });
  // Explicit stack: a hostile pickle must not exhaust the JS call stack.
  type Frame = { node: object; children: PickleValue[]; i: number; acc: Info };
  const children = (v: PickleValue[] | PyTuple | PickleDict): PickleValue[] =>
    Array.isArray(v) ? v : v instanceof PyTuple ? (v.items as PickleValue[]) : Object.values(v);
  const cap = (n: number) => Math.min(n, Number.MAX_SAFE_INTEGER);
  if (!isContainer(root)) return;
  const stack: Frame[] = [
    { node: root, children: children(root), i: 0, acc: { depth: 1, values: 1, bytes: 0 } },
  ];
  onPath.add(root);
  let result: Info | undefined;
  while (stack.length > 0) {
    const f = stack[stack.length - 1] as Frame;
    if (f.i < f.children.length) {
      const c = f.children[f.i++] as PickleValue;
      let info: Info | undefined;
      if (!isContainer(c)) info = scalar(c);
      else if (onPath.has(c)) throw new PickleRefusedError("a container that contains itself", 0);
      else info = done.get(c);
      if (info === undefined && isContainer(c)) {
        if (stack.length >= maxDepth) {
          throw new PickleRefusedError(`nesting deeper than ${maxDepth}`, 0);
        }
        onPath.add(c);
        stack.push({
          node: c,
          children: children(c),
          i: 0,
          acc: { depth: 1, values: 1, bytes: 0 },
        });
        continue;
      }
      addInfo(f.acc, info as Info);
    } else {
      stack.pop();
      onPath.delete(f.node);
      done.set(f.node, f.acc);
      if (f.acc.values > maxValues) {
        throw new PickleRefusedError(`more than ${maxValues} values once expanded`, 0);
      }
      if (f.acc.bytes > maxExpandedBytes) {
        throw new PickleRefusedError(`more than ${maxExpandedBytes} bytes once expanded`, 0);
      }
      const parent = stack[stack.length - 1];
      if (parent === undefined) result = f.acc;
      else addInfo(parent.acc, f.acc);
    }
  }
  function addInfo(acc: Info, c: Info): void {
    acc.depth = Math.max(acc.depth, c.depth + 1);
    acc.values = cap(acc.values + c.values);
    acc.bytes = cap(acc.bytes + c.bytes);
  }
  if (result !== undefined && result.depth > maxDepth) {
    throw new PickleRefusedError(`nesting deeper than ${maxDepth}`, 0);
  }
}
