import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeEnginePacket,
  decodePayload,
  encodeSocketPacket,
  ProtocolError,
  SocketDecoder,
} from "@switchyard/protocol";
import fc from "fast-check";

const RUNS = { numRuns: 500 };

/** Runs `fn`; anything thrown must be a ProtocolError. */
function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `foreign exception: ${String(err)}`);
    assert.match(err.code, /^SY_ERR_/);
  }
}

const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 64 }),
  fc.string({ unit: "binary-ascii", maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(...'0123456789-/,[]{}":b=\x1e_placeholder'), maxLength: 64 }),
);
const anyBuffer = fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u));

/** Near-valid Socket.IO headers assembled from the grammar's pieces. */
const num = fc.constantFrom(
  "0",
  "1",
  "2",
  "-1",
  "0.5",
  "1e3",
  '"0"',
  '"toString"',
  '"__proto__"',
  "null",
  "true",
  "[0]",
  "{}",
  "9007199254740993",
);
const placeholder = num.map((n) => `{"_placeholder":true,"num":${n}}`);
const element = fc.oneof(
  placeholder,
  fc.constantFrom(
    '"ev"',
    "1",
    "null",
    "[]",
    "{}",
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{"x":1}}}',
  ),
);
const grammarPacket = fc
  .tuple(
    fc.constantFrom("0", "1", "2", "3", "4", "5", "6", "7", ""),
    fc.constantFrom("", "1-", "2-", "0-", "10-", "11-", "-", "1"),
    fc.constantFrom("", "/", "/admin,", "/admin", "/,", ","),
    fc.constantFrom("", "1", "12", "0012", "1234567890123456"),
    fc.array(element, { maxLength: 4 }),
    fc.constantFrom("[", "{", "", "x"),
  )
  .map(([type, att, nsp, id, elems, wrap]) => {
    const body =
      wrap === "[" ? `[${elems.join(",")}]` : wrap === "{" ? `{"a":${elems[0] ?? 1}}` : wrap;
    return type + att + nsp + id + body;
  });

/** A valid encoded packet with one random edit applied. */
const mutated = fc
  .tuple(
    fc.constantFrom(
      encodeSocketPacket({
        type: 2,
        nsp: "/admin",
        data: ["ev", Buffer.from([1]), { a: [Buffer.from([2])] }],
        id: 7,
      }),
      encodeSocketPacket({ type: 3, nsp: "/", data: [Buffer.from([1])], id: 1 }),
      encodeSocketPacket({ type: 0, nsp: "/x", data: { token: "t" } }),
      encodeSocketPacket({ type: 4, nsp: "/", data: { message: "no" } }),
    ),
    fc.nat(),
    fc.constantFrom("delete", "insert", "replace"),
    fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 3 }),
  )
  .map(([parts, at, op, s]) => {
    const [head, ...rest] = parts;
    const i = at % (head.length + 1);
    const edited =
      op === "delete"
        ? head.slice(0, i) + head.slice(i + 1)
        : op === "insert"
          ? head.slice(0, i) + s + head.slice(i)
          : head.slice(0, i) + s + head.slice(i + s.length);
    return [edited, ...rest] as (string | Buffer)[];
  });

describe("fuzz: decoders only ever throw ProtocolError", () => {
  test("decodeEnginePacket", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyString,
          anyString.map((s) => `b${s}`),
          anyBuffer,
        ),
        (frame) => {
          onlyProtocolErrors(() => decodeEnginePacket(frame));
        },
      ),
      RUNS,
    );
  });

  test("decodePayload", () => {
    const body = fc.oneof(
      anyString,
      fc
        .array(
          fc.oneof(
            anyString,
            anyString.map((s) => `b${s}`),
          ),
          { maxLength: 8 },
        )
        .map((a) => a.join("\x1e")),
    );
    fc.assert(
      fc.property(body, fc.option(fc.integer({ min: 0, max: 5 })), (b, max) => {
        onlyProtocolErrors(() => decodePayload(b, max ?? undefined));
      }),
      RUNS,
    );
  });

  test("SocketDecoder.add over random frame sequences", () => {
    const frame = fc.oneof(anyString, grammarPacket, anyBuffer);
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 8 }), (frames) => {
        const decoder = new SocketDecoder();
        for (const f of frames) onlyProtocolErrors(() => decoder.add(f));
      }),
      RUNS,
    );
  });

  test("SocketDecoder.add over near-valid and mutated packets", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          grammarPacket.map((g) => [g, Buffer.from([1]), Buffer.from([2])]),
          mutated,
        ),
        (parts) => {
          const decoder = new SocketDecoder();
          for (const p of parts) onlyProtocolErrors(() => decoder.add(p));
          assert.equal(({} as Record<string, unknown>).x, undefined, "Object.prototype untouched");
        },
      ),
      RUNS,
    );
  });

  test("decoded data never holds functions", () => {
    fc.assert(
      fc.property(grammarPacket, (g) => {
        const decoder = new SocketDecoder();
        let packet: ReturnType<SocketDecoder["add"]>;
        try {
          packet = decoder.add(g) ?? decoder.add(Buffer.from([1])) ?? decoder.add(Buffer.from([2]));
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
          return;
        }
        const stack: unknown[] = [packet?.data];
        while (stack.length > 0) {
          const v = stack.pop();
          assert.notEqual(typeof v, "function");
          if (v !== null && typeof v === "object" && !Buffer.isBuffer(v)) {
            stack.push(...Object.values(v));
          }
        }
      }),
      RUNS,
    );
  });
});
