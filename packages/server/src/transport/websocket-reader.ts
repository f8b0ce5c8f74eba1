/**
 * Reads client-to-server WebSocket frames (RFC 6455 §5) from a TCP byte stream when no
 * extension was negotiated: masks required and removed in place, fragments reassembled,
 * control frames (ping, pong, close) reported between the fragments of a message, text
 * checked for valid UTF-8, and every size checked against `maxPayload` before a byte of
 * the payload is buffered. A violation is reported once, with the close code RFC 6455
 * assigns to it (1002 protocol error, 1007 bad UTF-8, 1008 too many fragments, 1009 too
 * big), and ends reading.
 *
 * A message may arrive in at most `maxFragments` data frames, empty ones included (as `ws`
 * counts them since 8.21.1, CVE-2026-48779 / CVE-2026-62389): bytes alone do not bound the
 * work of a peer that sends a message as 200,000 one-byte or empty fragments and never
 * finishes it, so the frame after the last one allowed is refused with 1008 before its
 * payload is read.
 *
 * Bytes are parsed where they arrived: a chunk holding whole frames is never copied. A
 * frame split across chunks, and the fragments of a message, are copied into one growing
 * buffer ({@link Accumulator}) as they arrive — never kept as a list of chunks — so a peer
 * that trickles a message a byte per read or a byte per fragment holds about twice the
 * bytes it sent, not a Buffer object per byte.
 */
import { isUtf8 } from "node:buffer";

export interface FrameSink {
  /** A complete data message: text (validated UTF-8, decoded) or binary. */
  onMessage(data: string | Buffer, binary: boolean): void;
  onPing(payload: Buffer): void;
  /** The peer's close frame: its code (1005 when it gave none) and reason. */
  onCloseFrame(code: number, reason: string): void;
  /** The peer broke the protocol; `code` is the close code to answer with. */
  onProtocolError(code: number, message: string): void;
}

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** Close codes. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_INVALID_DATA = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TOO_BIG = 1009;

/**
 * The parser, as a base class: the WebSocket transport extends it and is its own sink,
 * so a connection is one object instead of a transport holding a reader (−48 bytes and
 * an allocation per connection). {@link FrameReader} is the same parser with a separate sink.
 */
export abstract class FrameParser implements FrameSink {
  private readonly maxPayload: number;
  /** Bytes of an incomplete frame (or header), in arrival order. */
  private held: Accumulator | undefined = undefined;
  /** Bytes needed before parsing can go on (0: none held). */
  private needed = 0;
  /** The data message being reassembled from fragments. */
  private fragments: Accumulator | undefined = undefined;
  private fragmentBinary = false;
  /** Data frames of the message being reassembled (0 between messages). */
  private fragmentCount = 0;
  private readonly maxFragments: number;
  /** A violation or a close frame ended reading. */
  private readEnded = false;

  /**
   * @param maxPayload the largest message accepted, in bytes (1009 past it)
   * @param maxFragments the most data frames one message may arrive in (1008 past it)
   */
  constructor(maxPayload: number, maxFragments: number) {
    this.maxPayload = maxPayload;
    this.maxFragments = maxFragments;
  }

  abstract onMessage(data: string | Buffer, binary: boolean): void;
  abstract onPing(payload: Buffer): void;
  abstract onCloseFrame(code: number, reason: string): void;
  abstract onProtocolError(code: number, message: string): void;

  /**
   * Bytes of memory this reader holds between reads: a split frame and a message being
   * reassembled, each in one buffer (0 between messages: no view into a read chunk is kept).
   */
  get retainedBytes(): number {
    return (this.held?.capacity ?? 0) + (this.fragments?.capacity ?? 0);
  }

  /** Feeds bytes read from the socket. */
  push(chunk: Buffer): void {
    if (this.readEnded || chunk.length === 0) return;
    const held = this.held;
    if (held === undefined) {
      this.parse(chunk);
      return;
    }
    // Take what the held frame (or header) still needs; the rest is parsed after it.
    const take = Math.min(chunk.length, this.needed - held.length);
    held.append(chunk, take);
    if (held.length < this.needed) return;
    this.held = undefined;
    this.needed = 0;
    this.parse(held.bytes());
    if (take < chunk.length) this.push(chunk.subarray(take));
  }

  private hold(rest: Buffer, needed: number): void {
    const acc = new Accumulator(Math.min(needed, Math.max(2 * rest.length, 1024)), needed);
    acc.append(rest, rest.length);
    this.held = acc;
    this.needed = needed;
  }

  private parse(buf: Buffer): void {
    const len = buf.length;
    let off = 0;
    while (off < len && !this.readEnded) {
      const avail = len - off;
      if (avail < 2) {
        this.hold(buf.subarray(off), 2);
        return;
      }
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x70) !== 0) {
        this.violation(CLOSE_PROTOCOL_ERROR, "RSV bits set without an extension");
        return;
      }
      if ((b1 & 0x80) === 0) {
        this.violation(CLOSE_PROTOCOL_ERROR, "client frame not masked");
        return;
      }
      let size = b1 & 0x7f;
      let header = 6;
      if (size === 126) header = 8;
      else if (size === 127) header = 14;
      if (avail < header) {
        this.hold(buf.subarray(off), header);
        return;
      }
      if (size === 126) size = buf.readUInt16BE(off + 2);
      else if (size === 127) {
        const hi = buf.readUInt32BE(off + 2);
        // Beyond 2^53 - 1 a length cannot be represented; far beyond maxPayload anyway.
        if (hi > 0x1fffff) {
          this.violation(CLOSE_TOO_BIG, "frame length beyond 2^53 - 1");
          return;
        }
        size = hi * 0x1_0000_0000 + buf.readUInt32BE(off + 6);
      }
      const control = opcode >= 0x8;
      if (control) {
        if (opcode !== OP_CLOSE && opcode !== OP_PING && opcode !== OP_PONG) {
          this.violation(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
          return;
        }
        if (!fin) {
          this.violation(CLOSE_PROTOCOL_ERROR, "fragmented control frame");
          return;
        }
        if (size > 125) {
          this.violation(CLOSE_PROTOCOL_ERROR, "control frame over 125 bytes");
          return;
        }
      } else {
        if (opcode === OP_CONTINUATION) {
          if (this.fragments === undefined) {
            this.violation(CLOSE_PROTOCOL_ERROR, "continuation without a message");
            return;
          }
          // Checked at the header, before the payload is held; empty fragments count.
          if (this.fragmentCount >= this.maxFragments) {
            this.violation(
              CLOSE_POLICY_VIOLATION,
              `message in more than maxFragments (${this.maxFragments}) fragments`,
            );
            return;
          }
        } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
          if (this.fragments !== undefined) {
            this.violation(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one");
            return;
          }
        } else {
          this.violation(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
          return;
        }
        if (size + (this.fragments?.length ?? 0) > this.maxPayload) {
          this.violation(CLOSE_TOO_BIG, `message over maxPayload (${this.maxPayload} bytes)`);
          return;
        }
      }
      if (avail < header + size) {
        this.hold(buf.subarray(off), header + size);
        return;
      }
      const payload = buf.subarray(off + header, off + header + size);
      unmask(payload, buf, off + header - 4);
      off += header + size;
      if (control) this.onControl(opcode, payload);
      else this.onDataFrame(opcode, fin, payload);
    }
  }

  private onDataFrame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode !== OP_CONTINUATION) {
      if (fin) {
        this.deliver(payload, opcode === OP_BINARY);
        return;
      }
      const acc = new Accumulator(Math.max(2 * payload.length, 1024), this.maxPayload);
      acc.append(payload, payload.length);
      this.fragments = acc;
      this.fragmentBinary = opcode === OP_BINARY;
      this.fragmentCount = 1;
      return;
    }
    const frags = this.fragments!;
    frags.append(payload, payload.length);
    this.fragmentCount++;
    if (!fin) return;
    const whole = frags.bytes();
    this.fragments = undefined;
    this.fragmentCount = 0;
    this.deliver(whole, this.fragmentBinary);
  }

  private deliver(payload: Buffer, binary: boolean): void {
    if (binary) {
      this.onMessage(payload, true);
      return;
    }
    if (!isUtf8(payload)) {
      this.violation(CLOSE_INVALID_DATA, "text message is not valid UTF-8");
      return;
    }
    this.onMessage(payload.toString(), false);
  }

  private onControl(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      this.onPing(payload);
      return;
    }
    if (opcode === OP_PONG) return;
    // Close: no body, or a 2-byte code and a UTF-8 reason.
    if (payload.length === 0) {
      this.readEnded = true; // nothing may follow a close frame
      this.onCloseFrame(CLOSE_NO_STATUS, "");
      return;
    }
    if (payload.length === 1) {
      this.violation(CLOSE_PROTOCOL_ERROR, "close frame of 1 byte");
      return;
    }
    const code = payload.readUInt16BE(0);
    if (!validCloseCode(code)) {
      this.violation(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`);
      return;
    }
    const reason = payload.subarray(2);
    if (!isUtf8(reason)) {
      this.violation(CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
      return;
    }
    this.readEnded = true;
    this.onCloseFrame(code, reason.toString());
  }

  private violation(code: number, message: string): void {
    this.readEnded = true;
    this.held = undefined;
    this.fragments = undefined;
    this.onProtocolError(code, message);
  }
}

/** The parser with a separate {@link FrameSink} (tests, and any reader that is not a transport). */
export class FrameReader extends FrameParser {
  private readonly sink: FrameSink;

  constructor(sink: FrameSink, maxPayload: number, maxFragments: number) {
    super(maxPayload, maxFragments);
    this.sink = sink;
  }

  onMessage(data: string | Buffer, binary: boolean): void {
    this.sink.onMessage(data, binary);
  }

  onPing(payload: Buffer): void {
    this.sink.onPing(payload);
  }

  onCloseFrame(code: number, reason: string): void {
    this.sink.onCloseFrame(code, reason);
  }

  onProtocolError(code: number, message: string): void {
    this.sink.onProtocolError(code, message);
  }
}

/**
 * A buffer that grows by doubling (never past `limit`) as bytes are appended: appending n
 * bytes costs O(n) amortised, and it holds at most about twice what was appended.
 */
class Accumulator {
  private buf: Buffer;
  private used = 0;
  private readonly limit: number;

  constructor(initial: number, limit: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1, Math.min(initial, limit)));
    this.limit = limit;
  }

  get length(): number {
    return this.used;
  }

  /** Bytes allocated. */
  get capacity(): number {
    return this.buf.length;
  }

  /** Appends the first `n` bytes of `src`. */
  append(src: Buffer, n: number): void {
    const need = this.used + n;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(
        Math.min(Math.max(need, 2 * this.buf.length), Math.max(need, this.limit)),
      );
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    src.copy(this.buf, this.used, 0, n);
    this.used = need;
  }

  /** The bytes appended so far (a view, not a copy). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}

/** Whether a peer may send this close code (RFC 6455 §7.4, as `ws` accepts them). */
function validCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  );
}

/** XORs `payload` in place with the 4-byte mask at `buf[maskAt]`. */
function unmask(payload: Buffer, buf: Buffer, maskAt: number): void {
  const m0 = buf[maskAt]!;
  const m1 = buf[maskAt + 1]!;
  const m2 = buf[maskAt + 2]!;
  const m3 = buf[maskAt + 3]!;
  if ((m0 | m1 | m2 | m3) === 0) return;
  const n = payload.length;
  let i = 0;
  for (const end = n - 3; i < end; i += 4) {
    payload[i] = payload[i]! ^ m0;
    payload[i + 1] = payload[i + 1]! ^ m1;
    payload[i + 2] = payload[i + 2]! ^ m2;
    payload[i + 3] = payload[i + 3]! ^ m3;
  }
  for (let k = 0; i < n; i++, k++) payload[i] = payload[i]! ^ buf[maskAt + k]!;
}
