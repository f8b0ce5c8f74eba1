/**
 * Wire compatibility with the reference parsers that real socket.io v4 clients run
 * (socket.io-parser, engine.io-parser). Both are explicit root devDependencies and
 * imported statically: if one goes missing the suite fails rather than skipping.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodePayload,
  type EnginePacket,
  encodePayload,
  encodeSocketPacket,
  PacketType,
  SocketDecoder,
  type SocketPacket,
} from "@switchyard/protocol";
import * as engineIoParser from "engine.io-parser";
import fc from "fast-check";
import * as socketIoParser from "socket.io-parser";

interface RefDecoder {
  on(event: "decoded", fn: (packet: SocketPacket) => void): void;
  add(chunk: string | Buffer): void;
}
interface RefSocketParser {
  Encoder: new () => { encode(packet: SocketPacket): (string | Buffer)[] };
  Decoder: new () => RefDecoder;
}
interface RefEngineParser {
  encodePayload(packets: EnginePacket[], cb: (payload: string) => void): void;
  decodePayload(payload: string, binaryType?: string): EnginePacket[];
}

const sio = socketIoParser as unknown as RefSocketParser;
const eio = engineIoParser as unknown as RefEngineParser;
const RUNS = { numRuns: 200 };

function refDecode(parts: readonly (string | Buffer)[]): SocketPacket | undefined {
  const decoder = new sio.Decoder();
  let out: SocketPacket | undefined;
  decoder.on("decoded", (p) => {
    out = p;
  });
  for (const part of parts) decoder.add(part);
  return out;
}

function ourDecode(parts: readonly (string | Buffer)[]): SocketPacket | undefined {
  const decoder = new SocketDecoder();
  let out: SocketPacket | undefined;
  for (const part of parts) out = decoder.add(part);
  return out;
}

const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const bytes = fc.uint8Array({ maxLength: 16 }).map((u) => Buffer.from(u));
const arg = fc.oneof({ weight: 3, arbitrary: json }, { weight: 1, arbitrary: bytes });
// socket.io-parser rejects reserved names and allows at most 10 attachments.
const name = fc.string({ maxLength: 10 }).map((s) => `ev:${s}`);
const nsp = fc.constantFrom("/", "/admin", "/a/b", "/é");
const packet: fc.Arbitrary<SocketPacket> = fc.oneof(
  fc.record(
    {
      type: fc.constant(PacketType.EVENT),
      nsp,
      data: fc.tuple(name, fc.array(arg, { maxLength: 5 })).map(([n, a]) => [n, ...a]),
      id: fc.nat({ max: 1_000_000 }),
    },
    { requiredKeys: ["type", "nsp", "data"], noNullPrototype: true },
  ),
  fc.record(
    { type: fc.constant(PacketType.ACK), nsp, data: fc.array(arg, { maxLength: 5 }), id: fc.nat() },
    { noNullPrototype: true },
  ),
  fc.record({ type: fc.constant(PacketType.CONNECT), nsp }, { noNullPrototype: true }),
  fc.record(
    {
      type: fc.constant(PacketType.CONNECT),
      nsp,
      data: fc.dictionary(fc.string(), json, { noNullPrototype: true }),
    },
    { noNullPrototype: true },
  ),
  fc.record({ type: fc.constant(PacketType.DISCONNECT), nsp }, { noNullPrototype: true }),
);

describe("socket.io-parser compatibility", () => {
  test("what we encode, socket.io-parser decodes", () => {
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(refDecode(encodeSocketPacket(p)), p);
      }),
      RUNS,
    );
  });

  test("what socket.io-parser encodes, we decode", () => {
    const encoder = new sio.Encoder();
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(ourDecode(encoder.encode({ ...p })), p);
      }),
      RUNS,
    );
  });

  test("byte-identical output", () => {
    const encoder = new sio.Encoder();
    fc.assert(
      fc.property(packet, (p) => {
        assert.deepEqual(encodeSocketPacket(p), encoder.encode({ ...p }));
      }),
      RUNS,
    );
  });
});

describe("engine.io-parser compatibility", () => {
  const enginePacket: fc.Arbitrary<EnginePacket> = fc.oneof(
    fc.record(
      {
        type: fc.constantFrom<EnginePacket["type"]>(
          "open",
          "close",
          "ping",
          "pong",
          "message",
          "noop",
        ),
        data: fc.string({ minLength: 1 }).filter((s) => !s.includes("\x1e")),
      },
      { requiredKeys: ["type"], noNullPrototype: true },
    ),
    fc.record(
      { type: fc.constant<EnginePacket["type"]>("message"), data: bytes },
      { noNullPrototype: true },
    ),
  );

  test("polling payloads agree both ways", () => {
    fc.assert(
      fc.property(fc.array(enginePacket, { minLength: 1, maxLength: 6 }), (packets) => {
        let theirs = "";
        eio.encodePayload(packets, (s) => {
          theirs = s;
        });
        assert.equal(encodePayload(packets), theirs);
        assert.deepEqual(decodePayload(theirs), packets);
        assert.deepEqual(eio.decodePayload(encodePayload(packets), "nodebuffer"), packets);
      }),
      RUNS,
    );
  });
});
