import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeEnginePacket,
  decodePayload,
  ENGINE_PROTOCOL,
  type EnginePacket,
  encodeEnginePacket,
  encodeEnginePacketText,
  encodePayload,
  ProtocolError,
  RECORD_SEPARATOR,
} from "@switchyard/protocol";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

// Text fixtures from the Engine.IO v4 protocol document (socketio/engine.io-protocol).
const TEXT_FIXTURES: [EnginePacket, string][] = [
  [
    {
      type: "open",
      data: '{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}',
    },
    '0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}',
  ],
  [{ type: "close" }, "1"],
  [{ type: "ping" }, "2"],
  [{ type: "ping", data: "probe" }, "2probe"],
  [{ type: "pong" }, "3"],
  [{ type: "pong", data: "probe" }, "3probe"],
  [{ type: "message", data: "HelloWorld" }, "4HelloWorld"],
  [{ type: "message", data: '2["hey","Jude"]' }, '42["hey","Jude"]'],
  [{ type: "message", data: "€€€" }, "4€€€"],
  [{ type: "upgrade" }, "5"],
  [{ type: "noop" }, "6"],
];

describe("engine.io packets", () => {
  test("protocol revision", () => {
    assert.equal(ENGINE_PROTOCOL, 4);
    assert.equal(RECORD_SEPARATOR, "\x1e");
  });

  for (const [packet, wire] of TEXT_FIXTURES) {
    test(`${packet.type} ${JSON.stringify(wire).slice(0, 30)} both ways`, () => {
      assert.equal(encodeEnginePacket(packet), wire);
      assert.equal(encodeEnginePacketText(packet), wire);
      assert.deepEqual(decodeEnginePacket(wire), packet);
    });
  }

  test("binary message is the raw buffer on WebSocket (v4: no type byte)", () => {
    const data = Buffer.from([1, 2, 3, 4]);
    const encoded = encodeEnginePacket({ type: "message", data });
    assert.equal(encoded, data, "same Buffer, not a copy");
    const decoded = decodeEnginePacket(Buffer.from([1, 2, 3, 4]));
    assert.deepEqual(decoded, { type: "message", data: Buffer.from([1, 2, 3, 4]) });
  });

  test("binary message is b+base64 in text form", () => {
    const data = Buffer.from([1, 2, 3, 4]);
    assert.equal(encodeEnginePacketText({ type: "message", data }), "bAQIDBA==");
    assert.equal(encodeEnginePacketText({ type: "message", data: Buffer.alloc(0) }), "b");
    assert.deepEqual(decodeEnginePacket("bAQIDBA=="), { type: "message", data });
    assert.deepEqual(decodeEnginePacket("b"), { type: "message", data: Buffer.alloc(0) });
  });

  test("empty string data decodes as absent data (same bytes on the wire)", () => {
    assert.equal(encodeEnginePacket({ type: "message", data: "" }), "4");
    assert.deepEqual(decodeEnginePacket("4"), { type: "message" });
  });

  test("decoded Buffer is not copied", () => {
    const frame = Buffer.from([9]);
    assert.equal(decodeEnginePacket(frame).data, frame);
  });

  test("errors", () => {
    throwsCode(() => decodeEnginePacket(""), "SY_ERR_BAD_PACKET");
    throwsCode(() => decodeEnginePacket("7"), "SY_ERR_UNKNOWN_PACKET_TYPE");
    throwsCode(() => decodeEnginePacket("x"), "SY_ERR_UNKNOWN_PACKET_TYPE");
    throwsCode(() => decodeEnginePacket("/"), "SY_ERR_UNKNOWN_PACKET_TYPE");
    throwsCode(() => decodeEnginePacket("b!!!!"), "SY_ERR_BAD_PACKET");
    throwsCode(
      () => encodeEnginePacket({ type: "toString" as EnginePacket["type"] }),
      "SY_ERR_UNKNOWN_PACKET_TYPE",
    );
    throwsCode(
      () => encodeEnginePacket({ type: "ping", data: Buffer.from([1]) }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(
      () => encodeEnginePacketText({ type: "message", data: 42 as unknown as string }),
      "SY_ERR_BAD_PACKET",
    );
    throwsCode(() => decodeEnginePacket(42 as unknown as string), "SY_ERR_BAD_PACKET");
  });
});

describe("engine.io polling payloads", () => {
  test("strings (engine.io-parser 4.0.0 changelog fixture)", () => {
    const packets: EnginePacket[] = [
      { type: "message", data: "hello" },
      { type: "message", data: "€€€" },
    ];
    assert.equal(encodePayload(packets), "4hello\x1e4€€€");
    assert.deepEqual(decodePayload("4hello\x1e4€€€"), packets);
  });

  test("mixed text and binary", () => {
    const packets: EnginePacket[] = [
      { type: "message", data: "hello" },
      { type: "message", data: Buffer.from([1, 2, 3]) },
      { type: "ping" },
      { type: "message", data: '2["hello"]' },
      { type: "message", data: Buffer.alloc(0) },
    ];
    const wire = '4hello\x1ebAQID\x1e2\x1e42["hello"]\x1eb';
    assert.equal(encodePayload(packets), wire);
    assert.deepEqual(decodePayload(wire), packets);
  });

  test("sample session request body from the Socket.IO v5 document", () => {
    assert.deepEqual(decodePayload('42["hello"]\x1e42["world"]'), [
      { type: "message", data: '2["hello"]' },
      { type: "message", data: '2["world"]' },
    ]);
  });

  test("single packet and empty list", () => {
    assert.deepEqual(decodePayload("6"), [{ type: "noop" }]);
    assert.equal(encodePayload([]), "");
  });

  test("maxPackets", () => {
    assert.equal(decodePayload("6\x1e6\x1e6", 3).length, 3);
    throwsCode(() => decodePayload("6\x1e6\x1e6\x1e6", 3), "SY_ERR_PAYLOAD_TOO_LARGE");
    throwsCode(() => decodePayload("6", 0), "SY_ERR_PAYLOAD_TOO_LARGE");
    const flood = "6\x1e".repeat(1_000_000) + "6";
    const started = performance.now();
    throwsCode(() => decodePayload(flood, 100), "SY_ERR_PAYLOAD_TOO_LARGE");
    assert.ok(performance.now() - started < 500, "rejected in one cheap scan");
  });

  test("malformed payloads", () => {
    throwsCode(() => decodePayload(""), "SY_ERR_BAD_PAYLOAD");
    throwsCode(() => decodePayload("4a\x1e"), "SY_ERR_BAD_PAYLOAD");
    throwsCode(() => decodePayload("\x1e4a"), "SY_ERR_BAD_PAYLOAD");
    throwsCode(() => decodePayload("4a\x1e\x1e4b"), "SY_ERR_BAD_PAYLOAD");
    throwsCode(() => decodePayload("4a\x1e9b"), "SY_ERR_UNKNOWN_PACKET_TYPE");
    throwsCode(() => decodePayload(42 as unknown as string), "SY_ERR_BAD_PAYLOAD");
  });

  test("bad base64 is rejected, not silently skipped", () => {
    for (const bad of ["b!", "bAQ=D", "bA", "bAQID=", "bAQ-_", "bAQ\nID", "bAQIDBA===", "b===="]) {
      throwsCode(() => decodePayload(`4ok\x1e${bad}`), "SY_ERR_BAD_PAYLOAD");
    }
    // Padded and unpadded forms are both standard base64.
    assert.deepEqual(decodePayload("bAQI=\x1ebAQI"), [
      { type: "message", data: Buffer.from([1, 2]) },
      { type: "message", data: Buffer.from([1, 2]) },
    ]);
  });

  test("encoding refuses a text packet that would split on the record separator", () => {
    throwsCode(() => encodePayload([{ type: "message", data: "a\x1eb" }]), "SY_ERR_BAD_PACKET");
  });
});
