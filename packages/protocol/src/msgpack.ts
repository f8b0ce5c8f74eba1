/**
 * Socket.IO packets over msgpack, wire-compatible with npm `socket.io-msgpack-parser`:
 * every packet is one binary Engine.IO message holding the notepack.io encoding of the
 * map `{ type, data, nsp, id }`. Binary values travel inline (msgpack `bin`), so this
 * wire has no attachments and no BINARY_* types, and a text message is an error.
 *
 * We run notepack.io 3, while socket.io-msgpack-parser (and thus every client using
 * it) bundles notepack.io 2.2. Where the two disagree the encoder below produces what
 * 2.2 decodes correctly, and the decoder never hands notepack.io bytes it has not
 * scanned first.
 */
import { EventEmitter } from "node:events";
import { isArrayBuffer, isUint8Array } from "node:util/types";
import { decode, encode } from "notepack.io";
import { callToJSON, hasToJSON, isBinary, MAX_ENCODE_DEPTH, toBuffer, tooDeep } from "./binary.js";
import { ProtocolError, ProtocolErrorCode } from "./errors.js";
import {
  checkOutgoing,
  type DecodeLimits,
  type DecoderOptions,
  fail,
  PacketType,
  resolveLimits,
  SOCKET_PROTOCOL,
  type SocketPacket,
} from "./packet.js";
import { validatePacket } from "./validate.js";

/** What a msgpack decoder accepts: one whole binary Engine.IO message. */
export type MsgpackChunk = Buffer | ArrayBuffer | Uint8Array;

// ---------------------------------------------------------------------------------
// Encoding

/** notepack.io writes integers as 64-bit ints; past these it silently wraps (2^64 → 0). */
const MAX_UINT64 = 2 ** 64;
const MIN_INT64 = -(2 ** 63);

// Depth-bounded recursion, as in binary.ts: the bound is far below the stack limit
// and turns a cycle into SY_ERR_NESTING_TOO_DEEP before notepack.io's own (unbounded)
// recursion meets it. Returns `v` itself unless something below needed replacing, so
// the common payload is walked but never copied.
function prepare(v: unknown, depth: number): unknown {
  if (typeof v === "number") {
    // Every double this large is an integer; Infinity goes out as a float, unharmed.
    if ((v >= MAX_UINT64 || v < MIN_INT64) && Number.isFinite(v)) {
      throw fail(ProtocolErrorCode.BAD_PACKET, `${v} is outside msgpack's 64-bit integer range`);
    }
    return v;
  }
  if (v === null || typeof v !== "object") return v;
  if (Buffer.isBuffer(v)) return v;
  // notepack.io 3 runs other views through Buffer.from(view), which converts element
  // by element: Float32Array [1.5] went out as the byte 1, a DataView as nothing.
  if (isBinary(v)) return toBuffer(v);
  if (depth >= MAX_ENCODE_DEPTH) throw tooDeep();
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const item: unknown = v[i];
      const out = prepare(item, depth + 1);
      if (out !== item) {
        copy ??= v.slice();
        copy[i] = out;
      }
    }
    return copy ?? v;
  }
  // Dates included: notepack.io 3 writes them as msgpack timestamps, which 2.2
  // decodes as [-1, <bytes>]; their JSON string is what the default parser sends.
  if (hasToJSON(v)) return prepare(callToJSON(v), depth + 1);
  let copy: Record<string, unknown> | undefined;
  const record = v as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    const out = prepare(item, depth + 1);
    if (out !== item) {
      // Null prototype, so copying a "__proto__" key stays a plain assignment.
      copy ??= Object.assign(Object.create(null) as Record<string, unknown>, record);
      copy[key] = out;
    }
  }
  return copy ?? v;
}

/** {@link prepare} from the top, for other msgpack writers of this package (cluster.ts). */
export function prepareData(data: unknown): unknown {
  try {
    return prepare(data, 0);
  } catch (err) {
    // Only reachable when the caller was already deep in the stack.
    if (err instanceof RangeError) throw tooDeep();
    throw err;
  }
}

/**
 * One packet as one msgpack Buffer. Keys in socket.io-msgpack-parser's order, absent
 * fields omitted (notepack.io 2.2 would write an explicit `undefined` extension).
 */
function encodeMsgpack(packet: SocketPacket): [Buffer] {
  checkOutgoing(packet);
  let type = packet.type;
  // socket.io-msgpack-parser only knows types 0..4: binary rides inline.
  if (type === PacketType.BINARY_EVENT) type = PacketType.EVENT;
  else if (type === PacketType.BINARY_ACK) type = PacketType.ACK;
  const wire: Record<string, unknown> = { type };
  if (packet.data !== undefined) wire.data = prepareData(packet.data);
  wire.nsp = packet.nsp;
  if (packet.id !== undefined) wire.id = packet.id;
  let bytes: unknown;
  try {
    bytes = encode(wire);
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    // A stack overflow is a RangeError without a Node `code` (ERR_OUT_OF_RANGE has one).
    if (cause instanceof RangeError && !("code" in cause)) {
      throw fail(ProtocolErrorCode.NESTING_TOO_DEEP, "payload nests too deeply to encode", cause);
    }
    throw fail(ProtocolErrorCode.BAD_PACKET, "payload cannot be encoded as msgpack", cause);
  }
  return [bytes as Buffer];
}

/**
 * socket.io-style encoder: `encode(packet)` returns the one Buffer to send as a binary
 * Engine.IO message. Throws only ProtocolError: bad type/namespace/id/shape, data
 * deeper than 1000 levels or circular (SY_ERR_NESTING_TOO_DEEP), values msgpack cannot
 * carry such as BigInt, symbols, or integers outside [-2^63, 2^64) which notepack.io
 * would silently wrap (SY_ERR_BAD_PACKET). Typed arrays and DataViews go
 * out as their bytes (`bin`), Dates as their ISO string, and `toJSON()` is honoured.
 */
export class MsgpackEncoder {
  /** Encodes one packet; BINARY_EVENT/BINARY_ACK are sent as EVENT/ACK. */
  encode(packet: SocketPacket): [Buffer] {
    return encodeMsgpack(packet);
  }
}

// ---------------------------------------------------------------------------------
// Decoding

function malformed(detail: string): ProtocolError {
  return fail(ProtocolErrorCode.BAD_PACKET, `malformed msgpack: ${detail}`);
}

function readLength(buf: Buffer, at: number, size: 1 | 2 | 4): number {
  if (at + size > buf.length) throw malformed("truncated");
  if (size === 1) return buf[at]!;
  return size === 2 ? buf.readUInt16BE(at) : buf.readUInt32BE(at);
}

/**
 * A linear pass over msgpack bytes that builds nothing and cannot recurse: exactly
 * one well-formed value, every declared length within the message, containers
 * nested at most `maxDepth` deep. notepack.io gets only bytes that passed, because it
 * recurses once per level and trusts declared lengths: the six bytes
 * `c9 10 00 00 00 00` make it allocate a 256 MiB ArrayBuffer and copy into it byte
 * by byte (seconds of CPU), `c9 ff ff ff ff 00` a 4 GiB one.
 */
export function scanMsgpack(buf: Buffer, maxDepth: number): void {
  const len = buf.length;
  const open: number[] = []; // items still due in each open container, innermost last
  let i = 0;
  do {
    if (i >= len) throw malformed("truncated");
    const p = buf[i++]!;
    let items = -1; // >= 0: this value is a container of that many items
    let skip = 0; // bytes after the header
    if (p < 0x80 || p > 0xdf) {
      // positive or negative fixint
    } else if (p < 0x90) {
      items = (p & 0x0f) * 2;
    } else if (p < 0xa0) {
      items = p & 0x0f;
    } else if (p < 0xc0) {
      skip = p & 0x1f;
    } else {
      switch (p) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc4: // bin 8
        case 0xd9: // str 8
          skip = readLength(buf, i, 1);
          i += 1;
          break;
        case 0xc5:
        case 0xda:
          skip = readLength(buf, i, 2);
          i += 2;
          break;
        case 0xc6:
        case 0xdb:
          skip = readLength(buf, i, 4);
          i += 4;
          break;
        case 0xc7: // ext 8: length, type, data
          skip = readLength(buf, i, 1) + 1;
          // notepack.io reads a timestamp 96 (type -1) as 12 bytes whatever the length.
          if (buf[i + 1] === 0xff && skip !== 13) throw malformed("bad timestamp length");
          i += 1;
          break;
        case 0xc8:
          skip = readLength(buf, i, 2) + 1;
          i += 2;
          break;
        case 0xc9:
          skip = readLength(buf, i, 4) + 1;
          i += 4;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xca: // float 32
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcb: // float 64
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xd4: // fixext 1..16: type + data
          skip = 2;
          break;
        case 0xd5:
          skip = 3;
          break;
        case 0xd6:
          skip = 5;
          break;
        case 0xd7:
          skip = 9;
          break;
        case 0xd8:
          skip = 17;
          break;
        case 0xdc: // array 16
          items = readLength(buf, i, 2);
          i += 2;
          break;
        case 0xdd:
          items = readLength(buf, i, 4);
          i += 4;
          break;
        case 0xde: // map 16
          items = readLength(buf, i, 2) * 2;
          i += 2;
          break;
        case 0xdf:
          items = readLength(buf, i, 4) * 2;
          i += 4;
          break;
        default: // 0xc1, never used
          throw malformed(`reserved byte 0x${p.toString(16)}`);
      }
    }
    i += skip;
    if (i > len) throw malformed("truncated");
    const top = open.length - 1;
    if (top >= 0) open[top] = open[top]! - 1;
    if (items >= 0) {
      if (open.length >= maxDepth) {
        throw fail(ProtocolErrorCode.NESTING_TOO_DEEP, "msgpack nests too deeply");
      }
      // Every item takes at least one byte: a bogus count fails here, not in a loop.
      if (items > len - i) throw malformed("truncated");
      if (items > 0) {
        open.push(items);
        continue;
      }
    }
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  } while (open.length > 0);
  if (i !== len) throw malformed(`${len - i} trailing bytes`);
}

function toBytes(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (isUint8Array(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (isArrayBuffer(chunk)) return Buffer.from(chunk);
  throw fail(
    ProtocolErrorCode.BAD_PACKET,
    typeof chunk === "string"
      ? "text message on the msgpack parser (expected binary)"
      : "chunk must be a Buffer, ArrayBuffer or Uint8Array",
  );
}

function decodeMsgpack(chunk: unknown, limits: DecodeLimits): SocketPacket {
  const bytes = toBytes(chunk);
  // +1: the packet map itself is a level; the payload starts one below it.
  scanMsgpack(bytes, limits.maxDepth + 1);
  let raw: unknown;
  try {
    raw = decode(bytes);
  } catch (cause) {
    throw fail(ProtocolErrorCode.BAD_PACKET, "msgpack does not decode", cause);
  }
  return validatePacket(raw, limits);
}

/**
 * socket.io-style decoder: `add(chunk)` decodes one binary message and emits
 * "decoded" synchronously with the validated packet (EVENT/ACK, binary inline as
 * Buffers; ArrayBuffers and Dates as msgpack extensions carry them). Throws only
 * ProtocolError (and SwitchyardError SY_ERR_INVALID_OPTION from the constructor);
 * an exception thrown by a "decoded" listener propagates out of `add` unchanged.
 * Holds no state between messages.
 */
export class MsgpackDecoder extends EventEmitter<{ decoded: [SocketPacket] }> {
  readonly #limits: DecodeLimits;

  constructor(opts?: DecoderOptions) {
    super();
    this.#limits = resolveLimits(opts);
  }

  /** Decodes one message; a string (a text Engine.IO message) is SY_ERR_BAD_PACKET. */
  add(chunk: string | MsgpackChunk): void {
    this.emit("decoded", decodeMsgpack(chunk, this.#limits));
  }

  /** Nothing to release: kept for the socket.io parser interface. */
  destroy(): void {
    // Every message is a whole packet, so no partial state exists.
  }
}

/** The shape of {@link msgpackParser}: a socket.io parser module. */
export interface MsgpackParser {
  readonly protocol: typeof SOCKET_PROTOCOL;
  readonly Encoder: typeof MsgpackEncoder;
  readonly Decoder: typeof MsgpackDecoder;
}

/**
 * Drop-in for `require("socket.io-msgpack-parser")` (the `parser` option of socket.io
 * and socket.io-client), with our validation and limits on the decoding side.
 */
export const msgpackParser: MsgpackParser = Object.freeze({
  protocol: SOCKET_PROTOCOL,
  Encoder: MsgpackEncoder,
  Decoder: MsgpackDecoder,
});

/** Per-connection decoder of {@link MsgpackCodec}. */
export interface MsgpackCodecDecoder {
  /** The packet in `chunk` (every message is a whole packet); throws ProtocolError. */
  add(chunk: string | MsgpackChunk): SocketPacket | undefined;
  /** Nothing to release; part of the interface. */
  destroy(): void;
}

/** The server's codec interface: encoder plus a decoder factory, no event emitter. */
export interface MsgpackCodec {
  /** One packet as Engine.IO message payloads: always exactly one Buffer. */
  encode(packet: SocketPacket): (string | Buffer)[];
  /** A decoder for one connection. */
  createDecoder(): MsgpackCodecDecoder;
}

class CodecDecoder implements MsgpackCodecDecoder {
  readonly #limits: DecodeLimits;

  constructor(limits: DecodeLimits) {
    this.#limits = limits;
  }

  add(chunk: string | MsgpackChunk): SocketPacket {
    return decodeMsgpack(chunk, this.#limits);
  }

  destroy(): void {
    // Stateless, see MsgpackDecoder.destroy.
  }
}

/**
 * The msgpack wire as a codec for the server: same bytes as {@link msgpackParser}, but
 * `add()` returns the packet instead of emitting it. `limits` are validated here,
 * once (SwitchyardError SY_ERR_INVALID_OPTION), not per connection.
 */
export function msgpackCodec(limits?: DecoderOptions): MsgpackCodec {
  const resolved = resolveLimits(limits);
  return {
    encode: encodeMsgpack,
    createDecoder: () => new CodecDecoder(resolved),
  };
}
