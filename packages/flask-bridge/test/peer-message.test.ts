/**
 * The one encoder of the Python channel: whatever a Switchyard app emits, the bytes are a
 * JSON object with a `method` (or nothing is published). The mixed-cluster test feeds its
 * output to real python-socketio 5.7.2 nodes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  encodePeerMessage,
  type PeerMessage,
  type PythonSocketIOVersion,
} from "../src/peer-message.js";

const HOST = "5791c4a0".padEnd(32, "0");
const VERSIONS: PythonSocketIOVersion[] = ["5.7", "5.14", "5.15"];

function emit(
  args: unknown[],
  extra: Partial<Extract<PeerMessage, { method: "emit" }>> = {},
): PeerMessage {
  return {
    method: "emit",
    event: "tick",
    args,
    namespace: "/ws",
    room: "r",
    skipSid: null,
    callback: null,
    hostId: HOST,
    ...extra,
  };
}

function parsed(out: ReturnType<typeof encodePeerMessage>): Record<string, unknown> {
  assert.ok(out.ok, out.ok ? "" : out.reason);
  const obj = JSON.parse(out.bytes.toString("utf8")) as unknown;
  assert.ok(obj !== null && typeof obj === "object" && !Array.isArray(obj));
  return obj as Record<string, unknown>;
}

test("any emit args: a JSON object with a method, or a refusal — never a throw", () => {
  const hostile = fc.oneof(
    fc.anything({
      withBigInt: true,
      withTypedArray: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
    }),
    fc.constant({
      toJSON: () => {
        throw new Error("boom");
      },
    }),
    fc.constant(
      (() => {
        const a: unknown[] = [];
        a.push(a);
        return a;
      })(),
    ),
    fc.constant(Buffer.from([0, 1, 255])),
  );
  fc.assert(
    fc.property(
      fc.array(hostile, { maxLength: 4 }),
      fc.constantFrom(...VERSIONS),
      fc.oneof(fc.string(), fc.constant("disconnect")),
      fc.oneof(fc.constant(null), fc.string(), fc.array(fc.string())),
      (args, version, event, room) => {
        const out = encodePeerMessage(emit(args, { event, room }), version);
        if (!out.ok) {
          assert.equal(typeof out.reason, "string");
          return;
        }
        const text = out.bytes.toString("utf8");
        assert.ok(Buffer.from(text, "utf8").equals(out.bytes), "valid UTF-8");
        const obj = parsed(out);
        assert.equal(obj.method, "emit");
        assert.equal(obj.host_id, HOST);
      },
    ),
    { numRuns: 2000 },
  );
});

test("any message shape (even not a PeerMessage) never throws and never yields a non-object", () => {
  fc.assert(
    fc.property(fc.anything({ withBigInt: true }), fc.constantFrom(...VERSIONS), (msg, version) => {
      const out = encodePeerMessage(msg as PeerMessage, version);
      if (out.ok) assert.equal(typeof parsed(out).method, "string");
    }),
    { numRuns: 1000 },
  );
});

test("5.7 layout: one argument as data, no binary key; several arguments and binary refused", () => {
  assert.deepEqual(parsed(encodePeerMessage(emit([{ seq: 1 }]), "5.7")), {
    method: "emit",
    event: "tick",
    data: { seq: 1 },
    namespace: "/ws",
    room: "r",
    skip_sid: null,
    callback: null,
    host_id: HOST,
  });
  assert.equal(parsed(encodePeerMessage(emit([]), "5.7")).data, null);
  const multi = encodePeerMessage(emit([1, 2]), "5.7");
  assert.ok(!multi.ok && /2 arguments/.test(multi.reason));
  const bin = encodePeerMessage(emit([{ b: Buffer.from([1]) }]), "5.14");
  assert.ok(!bin.ok && /binary/.test(bin.reason));
  const reserved = encodePeerMessage(emit([1], { event: "connect" }), "5.15");
  assert.ok(!reserved.ok && /reserved/.test(reserved.reason));
});

test("5.15 layout: data is the argument list; binary as placeholders plus base64", () => {
  const plain = parsed(encodePeerMessage(emit([1, "two", [3]]), "5.15"));
  assert.deepEqual(plain.data, [1, "two", [3]]);
  assert.equal(plain.binary, false);
  const bin = parsed(encodePeerMessage(emit([{ b: Buffer.from([0, 1, 255]) }]), "5.15"));
  assert.equal(bin.binary, true);
  assert.deepEqual(bin.data, [[{ b: { _placeholder: true, num: 0 } }], "AAH/"]);
});

test("callback, disconnect and close_room bodies in python-socketio's field order", () => {
  const cb = encodePeerMessage(
    {
      method: "callback",
      hostId: "a".repeat(32),
      sid: "room",
      namespace: "/ws",
      id: 3,
      args: [{ answer: 42 }],
    },
    "5.7",
  );
  assert.equal(
    cb.ok && cb.bytes.toString(),
    `{"method":"callback","host_id":"${"a".repeat(32)}","sid":"room","namespace":"/ws","id":3,"args":[{"answer":42}]}`,
  );
  assert.equal(
    parsed(
      encodePeerMessage({ method: "disconnect", sid: "S", namespace: "/ws", hostId: HOST }, "5.7"),
    ).sid,
    "S",
  );
  assert.equal(
    parsed(
      encodePeerMessage({ method: "close_room", room: "r", namespace: "/", hostId: HOST }, "5.15"),
    ).room,
    "r",
  );
  const bad = encodePeerMessage(
    { method: "close_room", room: "r", namespace: "ws", hostId: HOST },
    "5.15",
  );
  assert.ok(!bad.ok);
});
