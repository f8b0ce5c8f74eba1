/**
 * FrameReader, the client-to-server WebSocket frame parser, fed bytes directly with a
 * recording sink: a property over random messages, fragmentations, masks, interleaved
 * pings and chunkings, then one named case per protocol violation (each reported once,
 * with its close code, and nothing reported after it or after a close frame), the bound
 * on fragments per message, and what the reader keeps between reads.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FrameReader, type FrameSink } from "../../src/transport/websocket-reader.js";

const RUNS = { numRuns: 150 };
/** The engine's default `maxFragments`. */
const MAX_FRAGMENTS = 16_384;

type Event =
  | { kind: "message"; data: string | Buffer; binary: boolean }
  | { kind: "ping"; payload: Buffer }
  | { kind: "close"; code: number; reason: string }
  | { kind: "error"; code: number; message: string };

/** A sink that records every call, copying buffers (the reader may reuse their memory). */
class Recorder implements FrameSink {
  readonly events: Event[] = [];
  onMessage(data: string | Buffer, binary: boolean): void {
    this.events.push({
      kind: "message",
      data: typeof data === "string" ? data : Buffer.from(data),
      binary,
    });
  }
  onPing(payload: Buffer): void {
    this.events.push({ kind: "ping", payload: Buffer.from(payload) });
  }
  onCloseFrame(code: number, reason: string): void {
    this.events.push({ kind: "close", code, reason });
  }
  onProtocolError(code: number, message: string): void {
    this.events.push({ kind: "error", code, message });
  }
}

const ZERO_MASK = Buffer.alloc(4);
const SOME_MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

interface FrameOpts {
  fin?: boolean;
  rsv?: number;
  /** 4-byte mask, or null for an unmasked frame. */
  mask?: Buffer | null;
  /** Force the length encoding (7-bit, 16-bit or 64-bit) regardless of the size. */
  lengthBytes?: 0 | 2 | 8;
}

/** One client frame (masked with {@link SOME_MASK} unless told otherwise). */
function frame(opcode: number, payload: Buffer | string, opts: FrameOpts = {}): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : payload;
  const mask = opts.mask === undefined ? SOME_MASK : opts.mask;
  const first = (opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | opcode;
  const maskBit = mask === null ? 0 : 0x80;
  const lengthBytes =
    opts.lengthBytes ?? (data.length < 126 ? 0 : data.length < 65536 ? 2 : (8 as const));
  let header: Buffer;
  if (lengthBytes === 0) header = Buffer.from([first, maskBit | data.length]);
  else if (lengthBytes === 2) {
    header = Buffer.from([first, maskBit | 126, 0, 0]);
    header.writeUInt16BE(data.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(BigInt(data.length), 2);
  }
  if (mask === null) return Buffer.concat([header, data]);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

/** A close frame body: 2-byte code and a reason. */
function closeBody(code: number, reason: Buffer | string = ""): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code, 0);
  return Buffer.concat([head, typeof reason === "string" ? Buffer.from(reason) : reason]);
}

/** Header of a masked frame declaring `size` bytes, without its payload. */
function headerOnly(opcode: number, size: number, fin = true): Buffer {
  const full = frame(opcode, Buffer.alloc(size), { fin, mask: ZERO_MASK });
  return full.subarray(0, full.length - size);
}

/**
 * Feeds copies of `chunks` to a new reader (it unmasks in place, so a test's frames would
 * otherwise be altered for their next use).
 */
function read(chunks: Buffer[], maxPayload = 1 << 20, maxFragments = MAX_FRAGMENTS): Event[] {
  const rec = new Recorder();
  const reader = new FrameReader(rec, maxPayload, maxFragments);
  for (const c of chunks) reader.push(Buffer.from(c));
  return rec.events;
}

/** Feeds `bytes` one byte at a time (the most split a stream can be). */
function readBytewise(bytes: Buffer, maxPayload = 1 << 20): Event[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return read(chunks, maxPayload);
}

function errorsOf(events: Event[]): Event[] {
  return events.filter((e) => e.kind === "error");
}

/** Asserts the stream ends with exactly one protocol error with `code`, and nothing after. */
function assertFails(events: Event[], code: number): void {
  const errors = errorsOf(events);
  assert.equal(errors.length, 1, `one violation reported, got ${JSON.stringify(events)}`);
  const last = events.at(-1)!;
  assert.equal(last.kind, "error", "the violation is the last thing reported");
  assert.equal(last.kind === "error" && last.code, code);
}

const msg = (data: string | Buffer, binary = typeof data !== "string"): Event => ({
  kind: "message",
  data,
  binary,
});

// ——— the property ———

interface GenMessage {
  binary: boolean;
  bytes: Buffer;
  /** Cut points inside the payload (sorted, may repeat: empty fragments). */
  cuts: number[];
  masks: Buffer[];
  /** Ping payloads inserted before each fragment (index = fragment number) and after the last. */
  pings: Buffer[][];
}

const SIZES = [0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 65534, 65535, 65536, 65537];

const mask = fc.oneof(
  { weight: 1, arbitrary: fc.constant(ZERO_MASK) },
  {
    weight: 3,
    arbitrary: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((u) => Buffer.from(u)),
  },
);
const pingPayload = fc.uint8Array({ maxLength: 125 }).map((u) => Buffer.from(u));
/** Mostly no ping at a boundary, sometimes one or two. */
const pingsAt = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Buffer[]>([]) },
  { weight: 1, arbitrary: fc.array(pingPayload, { minLength: 1, maxLength: 2 }) },
);

/** Payload size: small and random, or right at a length-encoding boundary. */
const size = fc.oneof(
  { weight: 3, arbitrary: fc.nat({ max: 300 }) },
  { weight: 2, arbitrary: fc.constantFrom(...SIZES) },
);

/** Text of exactly `n` UTF-8 bytes when the random prefix fits, multi-byte characters included. */
function textBytes(prefix: string, n: number): Buffer {
  const head = Buffer.from(prefix);
  if (head.length >= n) return head;
  return Buffer.concat([head, Buffer.alloc(n - head.length, 0x61)]);
}

const message: fc.Arbitrary<GenMessage> = fc
  .record({
    binary: fc.boolean(),
    size,
    prefix: fc.string({ unit: "binary", maxLength: 20 }),
    raw: fc.uint8Array({ maxLength: 64 }),
    cutSeeds: fc.array(fc.nat(), { maxLength: 5 }),
    masks: fc.array(mask, { minLength: 6, maxLength: 6 }),
    pings: fc.array(pingsAt, { minLength: 7, maxLength: 7 }),
  })
  .map(({ binary, size: n, prefix, raw, cutSeeds, masks, pings }) => {
    let bytes: Buffer;
    if (binary) {
      bytes = Buffer.alloc(n);
      // Random-looking content: the raw bytes repeated (an all-zero payload hides mask bugs).
      for (let i = 0; i < n; i++) bytes[i] = raw.length > 0 ? raw[i % raw.length]! : i & 0xff;
    } else bytes = textBytes(prefix, n);
    const cuts = cutSeeds.map((s) => s % (bytes.length + 1)).sort((a, b) => a - b);
    return { binary, bytes, cuts, masks, pings };
  });

/** How the stream is cut into chunks: sizes cycled until the end ([1] = byte by byte). */
const chunking = fc.oneof(
  fc.constant([1]),
  fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
  fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 4 }),
);

/** Builds the byte stream of the messages and the events a sink must see, in order. */
function streamOf(messages: GenMessage[]): { bytes: Buffer; expected: Event[] } {
  const parts: Buffer[] = [];
  const expected: Event[] = [];
  const ping = (p: Buffer) => {
    parts.push(frame(0x9, p, { mask: SOME_MASK }));
    expected.push({ kind: "ping", payload: p });
  };
  for (const m of messages) {
    const bounds = [0, ...m.cuts, m.bytes.length];
    const n = bounds.length - 1;
    for (let i = 0; i < n; i++) {
      // Pings between fragments only (before the first fragment counts as between messages).
      for (const p of m.pings[i]!) ping(p);
      const opcode = i === 0 ? (m.binary ? 0x2 : 0x1) : 0x0;
      const piece = m.bytes.subarray(bounds[i], bounds[i + 1]);
      parts.push(frame(opcode, piece, { fin: i === n - 1, mask: m.masks[i]! }));
    }
    expected.push(msg(m.binary ? Buffer.from(m.bytes) : m.bytes.toString(), m.binary));
  }
  return { bytes: Buffer.concat(parts), expected };
}

function chunksOf(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(bytes.subarray(off, off + n));
    off += n;
  }
  return out;
}

describe("FrameReader: messages, fragments, pings and chunking", () => {
  it("delivers exactly the messages and pings, in order, however fragmented, masked and chunked", () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), chunking, pingsAt, (ms, sizes, trailing) => {
        const { bytes, expected } = streamOf(ms);
        const tail = trailing.map((p) => frame(0x9, p));
        const all = Buffer.concat([bytes, ...tail]);
        const events = read(chunksOf(all, sizes));
        const want = [...expected, ...trailing.map((p): Event => ({ kind: "ping", payload: p }))];
        assert.deepEqual(events, want);
      }),
      RUNS,
    );
  });

  it("pongs are swallowed, also between fragments", () => {
    const events = read([
      frame(0x1, "he", { fin: false }),
      frame(0xa, "pong body"),
      frame(0x0, "llo"),
      frame(0xa, ""),
    ]);
    assert.deepEqual(events, [msg("hello")]);
  });

  it("parses several whole frames in one chunk", () => {
    const events = read([
      Buffer.concat([frame(0x1, "a"), frame(0x2, Buffer.from([1])), frame(0x9, "p")]),
    ]);
    assert.deepEqual(events, [
      msg("a"),
      msg(Buffer.from([1])),
      { kind: "ping", payload: Buffer.from("p") },
    ]);
  });

  it("accepts a 64-bit length for a small message (non-minimal encoding)", () => {
    assert.deepEqual(readBytewise(frame(0x1, "tiny", { lengthBytes: 8 })), [msg("tiny")]);
    assert.deepEqual(read([frame(0x2, Buffer.from([9]), { lengthBytes: 2 })]), [
      msg(Buffer.from([9])),
    ]);
  });

  it("a UTF-8 sequence split across fragments is valid", () => {
    const euro = Buffer.from("€𝄞"); // 3 + 4 bytes
    const events = read([
      frame(0x1, euro.subarray(0, 1), { fin: false }),
      frame(0x0, euro.subarray(1, 5), { fin: false }),
      frame(0x0, euro.subarray(5)),
    ]);
    assert.deepEqual(events, [msg("€𝄞")]);
  });

  it("accepts messages of exactly maxPayload bytes, whole and fragmented", () => {
    const max = 300;
    const whole = Buffer.alloc(max, 7);
    assert.deepEqual(read([frame(0x2, whole)], max), [msg(whole)]);
    assert.deepEqual(
      read(
        [frame(0x2, whole.subarray(0, 100), { fin: false }), frame(0x0, whole.subarray(100))],
        max,
      ),
      [msg(whole)],
    );
  });
});

describe("FrameReader: trickled input", () => {
  it("a 200 KB message fed two bytes per read arrives whole, held as bytes, not as a chunk list", () => {
    const payload = Buffer.alloc(200_000, 0x61);
    payload[199_999] = 0x62;
    const bytes = frame(0x2, payload); // 14-byte header (64-bit length, mask)
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1_000_000, 100_000);
    const half = 100_014;
    for (let i = 0; i < half; i += 2) reader.push(bytes.subarray(i, i + 2));
    // Held: one buffer of every byte so far (a list of chunks would count 50,007 entries).
    assert.equal((reader as unknown as { held: { length: number } }).held.length, half);
    for (let i = half; i < bytes.length; i += 2) reader.push(bytes.subarray(i, i + 2));
    assert.equal(rec.events.length, 1);
    const e = rec.events[0]!;
    assert.ok(e.kind === "message" && Buffer.isBuffer(e.data));
    assert.ok(e.data.equals(payload));
  });

  it("20,000 one-byte fragments reassemble into one message", () => {
    const n = 20_000;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      parts.push(
        frame(i === 0 ? 0x1 : 0x0, String.fromCharCode(97 + (i % 26)), { fin: i === n - 1 }),
      );
    }
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1_000_000, 100_000);
    reader.push(Buffer.concat(parts));
    const expected = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (i % 26))).join(
      "",
    );
    assert.deepEqual(rec.events, [{ kind: "message", data: expected, binary: false }]);
  });
});

describe("FrameReader: close frames", () => {
  it("an empty close frame is reported as 1005", () => {
    assert.deepEqual(read([frame(0x8, "")]), [{ kind: "close", code: 1005, reason: "" }]);
  });

  it("reports code and reason, also when split byte by byte and between fragments", () => {
    const events = readBytewise(
      Buffer.concat([frame(0x1, "a", { fin: false }), frame(0x8, closeBody(4000, "bye ü"))]),
    );
    assert.deepEqual(events, [{ kind: "close", code: 4000, reason: "bye ü" }]);
  });

  for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4000, 4999]) {
    it(`accepts close code ${code}`, () => {
      assert.deepEqual(read([frame(0x8, closeBody(code))]), [{ kind: "close", code, reason: "" }]);
    });
  }

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]) {
    it(`refuses close code ${code} with 1002`, () => {
      assertFails(read([frame(0x8, closeBody(code))]), 1002);
    });
  }

  it("refuses a close body of 1 byte with 1002", () => {
    assertFails(read([frame(0x8, Buffer.from([3]))]), 1002);
  });

  it("refuses a close reason that is not UTF-8 with 1007", () => {
    assertFails(read([frame(0x8, closeBody(1000, Buffer.from([0xc3, 0x28])))]), 1007);
  });

  it("nothing is reported after a close frame, in the same chunk or later", () => {
    const events = read([
      Buffer.concat([frame(0x8, closeBody(1000)), frame(0x1, "after"), frame(0x9, "p")]),
      frame(0x1, "later"),
      frame(0x8, closeBody(1001)),
      Buffer.from([0xff, 0xff]), // would be a violation
    ]);
    assert.deepEqual(events, [{ kind: "close", code: 1000, reason: "" }]);
  });
});

describe("FrameReader: violations", () => {
  const valid = frame(0x1, "valid");

  /** The violation alone, byte by byte, and in one chunk with a valid frame before and after. */
  function check(bad: Buffer, code: number, maxPayload?: number): void {
    assertFails(read([bad], maxPayload), code);
    assertFails(readBytewise(bad, maxPayload), code);
    const events = read([Buffer.concat([valid, bad, valid]), valid], maxPayload);
    assert.deepEqual(events[0], msg("valid"), "the frame before the violation is delivered");
    assertFails(events, code);
    assert.equal(events.length, 2, "nothing after the violation");
  }

  it("an unmasked frame: 1002", () => {
    check(frame(0x1, "x", { mask: null }), 1002);
    check(frame(0x9, "", { mask: null }), 1002);
  });

  for (const rsv of [1, 2, 4, 7]) {
    it(`RSV bits ${rsv.toString(2).padStart(3, "0")}: 1002`, () => {
      check(frame(0x1, "x", { rsv }), 1002);
    });
  }

  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    it(`unknown opcode 0x${opcode.toString(16)}: 1002`, () => {
      check(frame(opcode, "x"), 1002);
    });
  }

  it("a continuation without a message: 1002", () => {
    check(frame(0x0, "x"), 1002);
    check(frame(0x0, "x", { fin: false }), 1002);
  });

  it("a new message inside a fragmented one: 1002", () => {
    const start = frame(0x1, "a", { fin: false });
    assertFails(read([start, frame(0x1, "b")]), 1002);
    assertFails(read([start, frame(0x2, Buffer.from([1]), { fin: false })]), 1002);
    assertFails(readBytewise(Buffer.concat([start, frame(0x2, "b")])), 1002);
  });

  it("a fragmented control frame: 1002", () => {
    check(frame(0x9, "p", { fin: false }), 1002);
    check(frame(0x8, closeBody(1000), { fin: false }), 1002);
    check(frame(0xa, "", { fin: false }), 1002);
  });

  it("a control frame over 125 bytes: 1002 (also with 16- and 64-bit lengths)", () => {
    check(frame(0x9, Buffer.alloc(126)), 1002);
    check(frame(0x8, closeBody(1000, "r".repeat(124))), 1002);
    check(frame(0xa, Buffer.alloc(200), { lengthBytes: 8 }), 1002);
    // Refused from the header alone.
    assertFails(read([headerOnly(0x9, 126)]), 1002);
  });

  it("invalid UTF-8 in a text message: 1007, whole and fragmented", () => {
    check(frame(0x1, Buffer.from([0x61, 0xff])), 1007);
    // An overlong encoding, a lone surrogate, a truncated sequence at the end.
    check(frame(0x1, Buffer.from([0xc0, 0xaf])), 1007);
    check(frame(0x1, Buffer.from([0xed, 0xa0, 0x80])), 1007);
    const truncated = Buffer.concat([
      frame(0x1, "ok", { fin: false }),
      frame(0x0, Buffer.from([0xe2, 0x82])),
    ]);
    assertFails(read([truncated]), 1007);
    assertFails(readBytewise(truncated), 1007);
  });

  it("binary messages are not checked for UTF-8", () => {
    assert.deepEqual(read([frame(0x2, Buffer.from([0xff, 0xfe]))]), [
      msg(Buffer.from([0xff, 0xfe])),
    ]);
  });

  it("a message over maxPayload in one frame: 1009 as soon as its header arrived", () => {
    const max = 100;
    for (const n of [101, 126, 70_000]) {
      // Only the header: the payload never needs to arrive.
      assertFails(read([headerOnly(0x2, n)], max), 1009);
      assertFails(readBytewise(headerOnly(0x1, n), max), 1009);
    }
    check(frame(0x2, Buffer.alloc(101)), 1009, 100);
  });

  it("a message over maxPayload across fragments: 1009 at the header of the fragment that crosses", () => {
    const max = 100;
    const events = read([frame(0x2, Buffer.alloc(60), { fin: false }), headerOnly(0x0, 41)], max);
    assertFails(events, 1009);
    assert.equal(events.length, 1);
    // 60 + 40 = 100 is still fine.
    const ok = read(
      [frame(0x2, Buffer.alloc(60), { fin: false }), frame(0x0, Buffer.alloc(40))],
      max,
    );
    assert.deepEqual(ok, [msg(Buffer.alloc(100))]);
  });

  it("a 64-bit length with the high bits set: 1009 from the header alone", () => {
    for (const hi of [0x8000_0000, 0xffff_ffff, 0x0020_0000]) {
      const h = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
      h.writeUInt32BE(hi, 2);
      assertFails(read([h]), 1009);
      assertFails(readBytewise(h), 1009);
    }
    // Within 2^53 but over maxPayload: also 1009, also from the header alone.
    const big = Buffer.from([0x82, 0xff, 0, 0x1f, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3, 4]);
    assertFails(read([big]), 1009);
  });

  it("nothing is reported after a violation, whatever follows", () => {
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1000, MAX_FRAGMENTS);
    reader.push(frame(0x1, "a", { mask: null }));
    reader.push(frame(0x1, "b"));
    reader.push(frame(0x9, "p"));
    reader.push(frame(0x8, closeBody(1000)));
    reader.push(frame(0x2, Buffer.alloc(5000)));
    assert.equal(rec.events.length, 1);
    assertFails(rec.events, 1002);
  });
});

/** `count` data frames of one text message: "a" each, or empty; the last has FIN unless `unfinished`. */
function fragments(count: number, opts: { empty?: boolean; unfinished?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  const piece = opts.empty === true ? "" : "a";
  for (let i = 0; i < count; i++) {
    const fin = i === count - 1 && opts.unfinished !== true;
    parts.push(frame(i === 0 ? 0x1 : 0x0, piece, { fin, mask: ZERO_MASK }));
  }
  return Buffer.concat(parts);
}

describe("FrameReader: fragments per message (ws CVE-2026-48779, CVE-2026-62389)", () => {
  it("a message of exactly maxFragments frames arrives; one more frame is 1008", () => {
    assert.deepEqual(read([fragments(100)], 1 << 20, 100), [msg("a".repeat(100))]);
    const events = read([fragments(101)], 1 << 20, 100);
    assertFails(events, 1008);
    assert.equal(events.length, 1, "nothing delivered before the violation");
  });

  it("empty fragments count: 200,000 of them, never finished, are cut off at the bound", () => {
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1 << 20, MAX_FRAGMENTS);
    const bytes = fragments(200_000, { empty: true, unfinished: true });
    const start = performance.now();
    // As a peer would send them: 64 KiB reads.
    for (let off = 0; off < bytes.length; off += 65_536)
      reader.push(bytes.subarray(off, off + 65_536));
    assertFails(rec.events, 1008);
    assert.ok(performance.now() - start < 2000, "cut off quickly");
    // Refused at the frame after the last allowed: the error names the bound.
    const e = rec.events[0]!;
    assert.ok(e.kind === "error" && e.message.includes(String(MAX_FRAGMENTS)), JSON.stringify(e));
    assert.equal(reader.retainedBytes, 0, "nothing kept after the violation");
  });

  it("200,000 one-byte fragments are cut off at the bound, from the frame header alone", () => {
    const bytes = fragments(200_000);
    const events = read([bytes]);
    assertFails(events, 1008);
    // The refused frame's header is enough: its payload need not have arrived.
    const head = frame(0x0, "a", { fin: false, mask: ZERO_MASK }).subarray(0, 6);
    assertFails(read([fragments(MAX_FRAGMENTS, { unfinished: true }), head]), 1008);
  });

  it("the count restarts with every message, and control frames between fragments do not count", () => {
    const chunks: Buffer[] = [];
    for (let m = 0; m < 3; m++) {
      chunks.push(frame(0x1, "x", { fin: false }));
      for (let i = 0; i < 3; i++) {
        chunks.push(frame(0x9, "p"));
        chunks.push(frame(0x0, "y", { fin: i === 2 }));
      }
    }
    const events = read(chunks, 1 << 20, 4);
    assert.equal(errorsOf(events).length, 0, JSON.stringify(errorsOf(events)));
    assert.equal(events.filter((e) => e.kind === "message").length, 3);
    assert.equal(events.filter((e) => e.kind === "ping").length, 9);
  });

  it("maxFragments 1: unfragmented messages only", () => {
    assert.deepEqual(read([frame(0x1, "whole")], 1 << 20, 1), [msg("whole")]);
    assertFails(read([frame(0x1, "a", { fin: false }), frame(0x0, "b")], 1 << 20, 1), 1008);
  });
});

describe("FrameReader: memory kept between reads (ws 8.21.0 maxBufferedChunks, 8.23 mask view)", () => {
  it("a frame trickled in 100,000 one-byte reads is held in one buffer of at most twice its size", () => {
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1 << 20, MAX_FRAGMENTS);
    const bytes = frame(0x2, Buffer.alloc(100_000, 7));
    let peak = 0;
    for (let i = 0; i < bytes.length - 1; i++) {
      reader.push(bytes.subarray(i, i + 1));
      if ((i & 1023) === 0) peak = Math.max(peak, reader.retainedBytes);
    }
    peak = Math.max(peak, reader.retainedBytes);
    assert.ok(peak <= 2 * bytes.length, `held ${peak} bytes for a ${bytes.length}-byte frame`);
    reader.push(bytes.subarray(bytes.length - 1));
    assert.equal(rec.events.length, 1);
    assert.equal(reader.retainedBytes, 0);
  });

  it("after whole frames nothing is kept: no view into the read chunk (mask, close reason) survives", () => {
    const rec = new Recorder();
    const reader = new FrameReader(rec, 1 << 20, MAX_FRAGMENTS);
    const chunk = Buffer.concat([
      frame(0x1, "hello"),
      frame(0x9, "ping"),
      frame(0x2, Buffer.alloc(300, 1)),
    ]);
    reader.push(chunk);
    assert.equal(rec.events.length, 3);
    assert.equal(reader.retainedBytes, 0);
    // A fragmented message in progress keeps a copy, not the chunk it arrived in.
    const big = Buffer.alloc(65_536);
    frame(0x1, "part", { fin: false }).copy(big);
    reader.push(big.subarray(0, frame(0x1, "part", { fin: false }).length));
    assert.ok(reader.retainedBytes > 0 && reader.retainedBytes <= 1024);
  });
});
