import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeEnginePacket,
  decodePayload,
  type EnginePacket,
  type EnginePacketType,
  encodeEnginePacket,
  encodeEnginePacketText,
  encodePayload,
  encodeSocketPacket,
  encodeSocketPacketString,
  hasBinary,
  PacketType,
  SocketDecoder,
  type SocketPacket,
} from "@switchyard/protocol";
import fc from "fast-check";

const RUNS = { numRuns: 300 };

/** Records with a plain prototype, like what the decoders build. */
function rec<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

const engineType = fc.constantFrom<EnginePacketType>(
  "open",
  "close",
  "ping",
  "pong",
  "message",
  "upgrade",
  "noop",
);
/** Empty text is the same bytes as no data, so it is generated as "no data". */
const text = fc.string({ unit: "binary", minLength: 1, maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 32 }).map((u) => Buffer.from(u));

const enginePacket: fc.Arbitrary<EnginePacket> = fc.oneof(
  engineType.map((type) => ({ type })),
  rec({ type: engineType, data: text }),
  rec({ type: fc.constant<EnginePacketType>("message"), data: bytes }),
);
const payloadPacket = enginePacket.filter(
  (p) => typeof p.data !== "string" || !p.data.includes("\x1e"),
);

/** JSON values as they come back from JSON.parse (no -0, plain prototypes). */
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const key = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("__proto__", "constructor"));
const leaf = fc.oneof({ weight: 3, arbitrary: json }, { weight: 1, arbitrary: bytes });
const withBinary: fc.Arbitrary<unknown> = fc.oneof(
  leaf,
  fc.array(leaf, { maxLength: 4 }),
  fc
    .array(fc.tuple(key, leaf), { maxLength: 4 })
    .map((entries) => Object.fromEntries(entries) as unknown),
);
const nsp = fc.oneof(
  fc.constant("/"),
  fc
    .string({ unit: "binary", minLength: 1, maxLength: 30 })
    .filter((s) => !s.includes(","))
    .map((s) => `/${s}`),
);
const ackId = fc.integer({ min: 0, max: 999_999_999_999_999 });
const eventData = fc
  .tuple(fc.string({ maxLength: 20 }), fc.array(withBinary, { maxLength: 5 }))
  .map(([name, args]) => [name, ...args]);
const jsonObject = json.filter(
  (v): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v),
);

const socketPacket: fc.Arbitrary<SocketPacket> = fc.oneof(
  rec({ type: fc.constant(PacketType.CONNECT), nsp }),
  rec({ type: fc.constant(PacketType.CONNECT), nsp, data: jsonObject }),
  rec({ type: fc.constant(PacketType.DISCONNECT), nsp }),
  rec({
    type: fc.constant(PacketType.CONNECT_ERROR),
    nsp,
    data: fc.oneof(fc.string(), jsonObject),
  }),
  rec({ type: fc.constant(PacketType.EVENT), nsp, data: eventData }),
  rec({ type: fc.constant(PacketType.EVENT), nsp, data: eventData, id: ackId }),
  rec({
    type: fc.constant(PacketType.ACK),
    nsp,
    data: fc.array(withBinary, { maxLength: 5 }),
    id: ackId,
  }),
);

function roundTrip(packet: SocketPacket): SocketPacket | undefined {
  const decoder = new SocketDecoder({ maxAttachments: 1000 });
  const [head, ...buffers] = encodeSocketPacket(packet);
  let out = decoder.add(head);
  for (const buffer of buffers) {
    assert.equal(out, undefined);
    out = decoder.add(buffer);
  }
  assert.equal(decoder.awaitingAttachments, false);
  return out;
}

describe("round-trip properties", () => {
  test("engine packet: WebSocket form", () => {
    fc.assert(
      fc.property(enginePacket, (p) => {
        assert.deepEqual(decodeEnginePacket(encodeEnginePacket(p)), p);
      }),
      RUNS,
    );
  });

  test("engine packet: text form", () => {
    fc.assert(
      fc.property(enginePacket, (p) => {
        assert.deepEqual(decodeEnginePacket(encodeEnginePacketText(p)), p);
      }),
      RUNS,
    );
  });

  test("polling payload", () => {
    fc.assert(
      fc.property(fc.array(payloadPacket, { minLength: 1, maxLength: 10 }), (packets) => {
        assert.deepEqual(decodePayload(encodePayload(packets)), packets);
        assert.deepEqual(decodePayload(encodePayload(packets), packets.length), packets);
      }),
      RUNS,
    );
  });

  test("socket packet, with namespaces, ack ids and binary attachments", () => {
    fc.assert(
      fc.property(socketPacket, (p) => {
        assert.deepEqual(roundTrip(p), p);
      }),
      RUNS,
    );
  });

  test("attachment count equals the binary values found", () => {
    fc.assert(
      fc.property(eventData, (data) => {
        const [head, ...buffers] = encodeSocketPacket({ type: PacketType.EVENT, nsp: "/", data });
        assert.equal(hasBinary(data), buffers.length > 0);
        assert.equal(head.startsWith(buffers.length > 0 ? `5${buffers.length}-` : "2"), true);
      }),
      RUNS,
    );
  });

  test("string fast path agrees with the full encoder when there is no binary", () => {
    fc.assert(
      fc.property(
        socketPacket.filter((p) => !hasBinary(p.data)),
        (p) => {
          assert.equal(encodeSocketPacketString(p), encodeSocketPacket(p)[0]);
        },
      ),
      RUNS,
    );
  });
});
