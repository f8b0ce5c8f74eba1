/**
 * The binary side of Socket.IO packets: finding binary values in outgoing data,
 * replacing them with numbered placeholders, and putting received attachments back.
 * Walks over untrusted (decoded) data are iterative; walks over outgoing data are
 * bounded by MAX_ENCODE_DEPTH, which doubles as cycle detection. Neither can overflow
 * the call stack.
 */
import { ProtocolError, ProtocolErrorCode } from "./errors.js";

/**
 * Deepest nesting the encoder walks. Far beyond real payloads, far below where
 * JSON.stringify would overflow the stack; also what turns a cycle into an error.
 */
export const MAX_ENCODE_DEPTH = 1000;

/** Whether `value` is raw bytes the way socket.io-parser sees them (Blob aside). */
export function isBinary(value: unknown): value is ArrayBuffer | ArrayBufferView {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** A Buffer over the same memory: attachments go on the wire without a copy. */
export function toBuffer(value: ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** The error for data past {@link MAX_ENCODE_DEPTH} (or circular), for every encoder. */
export function tooDeep(): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCode.NESTING_TOO_DEEP,
    `data nests deeper than ${MAX_ENCODE_DEPTH} levels (or is circular)`,
  );
}

/** Calls `toJSON()`, turning whatever it throws into SY_ERR_BAD_PACKET. */
export function callToJSON(value: { toJSON: () => unknown }): unknown {
  try {
    return value.toJSON();
  } catch (cause) {
    throw new ProtocolError(ProtocolErrorCode.BAD_PACKET, "toJSON() threw while encoding", {
      cause,
    });
  }
}

/** Whether `value` has a callable `toJSON`, own or inherited, as JSON.stringify checks. */
export function hasToJSON(value: object): value is { toJSON: () => unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

// Depth-bounded recursion: faster than an explicit stack on the hot path, and the
// bound keeps it far from the call-stack limit.
function scan(v: unknown, depth: number, fromToJSON: boolean): boolean {
  if (v === null || typeof v !== "object") return false;
  if (isBinary(v)) return true;
  if (depth >= MAX_ENCODE_DEPTH) throw tooDeep();
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      if (scan(v[i], depth + 1, false)) return true;
    }
    return false;
  }
  // A toJSON result is not toJSON'd again, as in socket.io-parser.
  if (!fromToJSON && hasToJSON(v)) return scan(callToJSON(v), depth, true);
  for (const key in v) {
    if (Object.hasOwn(v, key) && scan((v as Record<string, unknown>)[key], depth + 1, false)) {
      return true;
    }
  }
  return false;
}

/**
 * Whether `value` holds a Buffer, ArrayBuffer or ArrayBufferView anywhere, following
 * arrays, own enumerable keys and `toJSON()` the way socket.io-parser does. Throws
 * SY_ERR_NESTING_TOO_DEEP past {@link MAX_ENCODE_DEPTH} levels (which also catches
 * cycles) and SY_ERR_BAD_PACKET when a `toJSON()` throws.
 */
export function hasBinary(value: unknown): boolean {
  if (value === null || typeof value !== "object") return false;
  try {
    return scan(value, 0, false);
  } catch (err) {
    // Only reachable when the caller was already deep in the stack.
    if (err instanceof RangeError) throw tooDeep();
    throw err;
  }
}

/** Data with binary replaced by placeholders, and the binary in placeholder order. */
export interface Deconstructed {
  data: unknown;
  buffers: Buffer[];
}

// Depth and the "already produced by toJSON" flag share one number per stack entry.
const FROM_TO_JSON = 1;

/**
 * Copies `data` with every binary value replaced by `{"_placeholder":true,"num":n}`,
 * numbered in depth-first order like socket.io-parser (so its decoder and ours agree).
 * The copy uses null-prototype objects so a "__proto__" key stays a plain key.
 */
export function deconstruct(data: unknown): Deconstructed {
  const buffers: Buffer[] = [];
  const root: { value?: unknown } = Object.create(null);
  const values: unknown[] = [data];
  const parents: Record<string | number, unknown>[] = [root as Record<string, unknown>];
  const keys: (string | number)[] = ["value"];
  const marks: number[] = [0];
  while (values.length > 0) {
    const v = values.pop();
    const parent = parents.pop() as Record<string | number, unknown>;
    const key = keys.pop() as string | number;
    const mark = marks.pop() as number;
    if (v === null || typeof v !== "object") {
      parent[key] = v;
      continue;
    }
    if (isBinary(v)) {
      parent[key] = { _placeholder: true, num: buffers.length };
      buffers.push(toBuffer(v));
      continue;
    }
    const depth = mark >> 1;
    if (depth >= MAX_ENCODE_DEPTH) throw tooDeep();
    const childMark = (depth + 1) << 1;
    if (Array.isArray(v)) {
      const copy: unknown[] = new Array(v.length);
      parent[key] = copy;
      // Pushed in reverse so pops run in order: placeholders are numbered depth-first.
      for (let i = v.length - 1; i >= 0; i--) {
        values.push(v[i]);
        parents.push(copy as unknown as Record<number, unknown>);
        keys.push(i);
        marks.push(childMark);
      }
      continue;
    }
    if ((mark & FROM_TO_JSON) === 0 && hasToJSON(v)) {
      values.push(callToJSON(v));
      parents.push(parent);
      keys.push(key);
      marks.push((depth << 1) | FROM_TO_JSON);
      continue;
    }
    const copy: Record<string, unknown> = Object.create(null);
    parent[key] = copy;
    const own = Object.keys(v);
    for (let i = own.length - 1; i >= 0; i--) {
      const k = own[i] as string;
      values.push((v as Record<string, unknown>)[k]);
      parents.push(copy);
      keys.push(k);
      marks.push(childMark);
    }
  }
  return { data: root.value, buffers };
}

/**
 * Whether the JSON text `json` opens more than `maxDepth` nested arrays/objects.
 * A linear scan over the text, so the check itself cannot recurse; it runs before
 * JSON.parse and before anything walks the parsed value.
 */
export function exceedsDepth(json: string, maxDepth: number): boolean {
  // Cannot open more containers than there are characters.
  if (json.length <= maxDepth) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > maxDepth) return true;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    }
  }
  return false;
}

/** Where one placeholder sits in decoded data, to be replaced by attachment `num`. */
export interface Slot {
  parent: unknown[] | Record<string, unknown>;
  key: number | string;
  num: number;
}

function badPlaceholder(detail: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.BAD_PACKET, `invalid placeholder: ${detail}`);
}

function placeholderNum(obj: Record<string, unknown>, attachments: number): number | undefined {
  if (!Object.hasOwn(obj, "_placeholder") || obj._placeholder !== true) return undefined;
  const num = obj.num;
  // CVE-2022-2421: a non-integer `num` ("toString", "__proto__", 1.5...) must never
  // index anything.
  if (!Object.hasOwn(obj, "num") || typeof num !== "number" || !Number.isInteger(num)) {
    throw badPlaceholder("num must be an integer");
  }
  if (num < 0 || num >= attachments) {
    throw badPlaceholder(`num ${num} is outside 0..${attachments - 1}`);
  }
  if (Object.keys(obj).length !== 2) throw badPlaceholder("unexpected keys");
  return num;
}

/**
 * Finds the placeholders in freshly parsed JSON (depth already bounded) and checks
 * them against the announced attachment count: each `num` an integer in range, and
 * every attachment referenced at least once, so no frame is buffered for nothing.
 */
export function collectSlots(data: unknown, attachments: number): Slot[] {
  const slots: Slot[] = [];
  const used = new Uint8Array(attachments);
  let usedCount = 0;
  const stack: unknown[] = [data];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== "object") continue;
    const parent = v as unknown[] | Record<string, unknown>;
    const keys: (number | string)[] = Array.isArray(v) ? [...v.keys()] : Object.keys(v);
    for (const key of keys) {
      const child = (parent as Record<string | number, unknown>)[key];
      if (child === null || typeof child !== "object") continue;
      const num = Array.isArray(child)
        ? undefined
        : placeholderNum(child as Record<string, unknown>, attachments);
      if (num === undefined) {
        stack.push(child);
        continue;
      }
      slots.push({ parent, key, num });
      if (used[num] === 0) {
        used[num] = 1;
        usedCount++;
      }
    }
  }
  if (usedCount !== attachments) {
    throw new ProtocolError(
      ProtocolErrorCode.BAD_PACKET,
      `${attachments - usedCount} attachment(s) announced but never referenced`,
    );
  }
  return slots;
}

/**
 * Puts the attachments in place. Object keys are written with defineProperty so a
 * key named "__proto__" gets an own property instead of running the prototype setter.
 */
export function fillSlots(slots: readonly Slot[], buffers: readonly Buffer[]): void {
  for (const { parent, key, num } of slots) {
    const buffer = buffers[num];
    if (Array.isArray(parent)) {
      parent[key as number] = buffer;
    } else {
      Object.defineProperty(parent, key, {
        value: buffer,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
  }
}
