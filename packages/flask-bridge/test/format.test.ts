import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decodeFlaskMessage, type FlaskDecodeOptions, type FlaskMessage } from "../src/format.js";
import { pythonPickles } from "./pickle-fixtures.js";

function ok(body: string | Uint8Array, opts?: FlaskDecodeOptions): FlaskMessage {
  const r = decodeFlaskMessage(body, opts);
  if (!r.ok) assert.fail(`refused: ${r.error.message}`);
  return r.message;
}

function refused(
  body: string | Uint8Array,
  reason: string,
  re?: RegExp,
  opts?: FlaskDecodeOptions,
): void {
  const r = decodeFlaskMessage(body, opts);
  assert.equal(r.ok, false, `accepted: ${String(body).slice(0, 80)}`);
  if (r.ok) return;
  assert.equal(r.error.reason, reason, r.error.message);
  assert.equal(r.error.code, "SY_ERR_FLASK_MESSAGE");
  if (re !== undefined) assert.match(r.error.message, re);
}

const H = "a11793578a834f59bf6c88cc540b6ac1";

describe("decodeFlaskMessage: JSON layouts (byte fixtures from flask-socketio-queue.md)", () => {
  it("5.15.1+: data is the argument list, binary attachments rebuilt from base64", () => {
    const m = ok(
      `{"method": "emit", "event": "tick", "data": [{"seq": 1}], "binary": false, "namespace": "/ws", "room": "r", "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.deepEqual(m, {
      method: "emit",
      namespace: "/ws",
      hostId: H,
      encoding: "json",
      event: "tick",
      args: [{ seq: 1 }],
      rooms: ["r"],
      skipSids: [],
      callback: undefined,
      layout: "json-arguments",
    });
    const all = ok(
      `{"method": "emit", "event": "tick", "data": [{"seq": 2}], "binary": false, "namespace": "/ws", "room": null, "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.equal(all.method === "emit" && all.rooms, undefined);
    const skip = ok(
      `{"method": "emit", "event": "tick", "data": [{"seq": 3}], "binary": false, "namespace": "/ws", "room": "r", "skip_sid": "SKIPSID", "callback": null, "host_id": "${H}"}`,
    );
    assert.deepEqual(skip.method === "emit" && skip.skipSids, ["SKIPSID"]);
    const multi = ok(
      `{"method": "emit", "event": "multi", "data": [1, "two", [3]], "binary": false, "namespace": "/ws", "room": "r", "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.deepEqual(multi.method === "emit" && multi.args, [1, "two", [3]]);
    const bin = ok(
      `{"method": "emit", "event": "bin", "data": [[{"b": {"_placeholder": true, "num": 0}}], "AAH/"], "binary": true, "namespace": "/ws", "room": "r", "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.deepEqual(bin.method === "emit" && bin.args, [{ b: Buffer.from([0, 1, 0xff]) }]);
    const list = ok(
      `{"method": "emit", "event": "list", "data": [[1, 2]], "binary": false, "namespace": "/", "room": ["r", "s"], "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.ok(list.method === "emit");
    assert.deepEqual(list.args, [[1, 2]]);
    assert.deepEqual(list.rooms, ["r", "s"]);
    assert.deepEqual(
      ok(`{"method": "close_room", "room": "r", "namespace": "/ws", "host_id": "${H}"}`),
      {
        method: "close_room",
        namespace: "/ws",
        hostId: H,
        encoding: "json",
        room: "r",
      },
    );
    const cb = ok(
      `{"method": "emit", "event": "q", "data": [{"n": 1}], "binary": false, "namespace": "/ws", "room": "GXmyu0Q6qNfNOmHLAAAB", "skip_sid": null, "callback": ["GXmyu0Q6qNfNOmHLAAAB", "/ws", 1], "host_id": "257c02be8a774482ae70a2f629aab384"}`,
    );
    assert.deepEqual(cb.method === "emit" && cb.callback, {
      room: "GXmyu0Q6qNfNOmHLAAAB",
      namespace: "/ws",
      id: 1,
    });
    assert.deepEqual(
      ok(
        `{"method": "callback", "host_id": "257c02be8a774482ae70a2f629aab384", "sid": "GXmyu0Q6qNfNOmHLAAAB", "namespace": "/ws", "id": 1, "args": [{"answer": 42, "echo": {"n": 1}}]}`,
      ),
      {
        method: "callback",
        namespace: "/ws",
        hostId: "257c02be8a774482ae70a2f629aab384",
        encoding: "json",
        sid: "GXmyu0Q6qNfNOmHLAAAB",
        id: 1,
        args: [{ answer: 42, echo: { n: 1 } }],
      },
    );
    assert.deepEqual(
      ok(
        `{"method": "enter_room", "sid": "9i2s", "room": "r2", "namespace": "/ws", "host_id": "${H}"}`,
      ),
      {
        method: "enter_room",
        namespace: "/ws",
        hostId: H,
        encoding: "json",
        sid: "9i2s",
        room: "r2",
      },
    );
    assert.equal(
      ok(`{"method": "leave_room", "sid": "9i2s", "room": "r2", "namespace": "/ws"}`).method,
      "leave_room",
    );
    assert.deepEqual(
      ok(`{"method": "disconnect", "sid": "9i2s", "namespace": "/ws", "host_id": "${H}"}`),
      {
        method: "disconnect",
        namespace: "/ws",
        hostId: H,
        encoding: "json",
        sid: "9i2s",
      },
    );
  });

  it("5.14.0–5.14.1 (no binary key) and JSON-switched 5.7.2: data is one argument", () => {
    const m = ok(
      `{"method": "emit", "event": "tick", "data": [1, 2], "namespace": "/ws", "room": "r", "skip_sid": null, "callback": null, "host_id": "${H}"}`,
    );
    assert.ok(m.method === "emit");
    assert.equal(m.layout, "json-single");
    assert.deepEqual(m.args, [[1, 2]]);
    const none = ok(`{"method": "emit", "event": "ping", "data": null, "namespace": "/"}`);
    assert.deepEqual(none.method === "emit" && none.args, []);
  });

  it('5.14.2–5.15.0 with binaryLayout: "single": data is one argument, attachments rebuilt', () => {
    const single: FlaskDecodeOptions = { binaryLayout: "single" };
    const m = ok(
      `{"method": "emit", "event": "t", "data": [1, 2], "binary": false, "namespace": "/ws", "room": null}`,
      single,
    );
    assert.ok(m.method === "emit");
    assert.equal(m.layout, "json-binary-single");
    assert.deepEqual(m.args, [[1, 2]]);
    const bin = ok(
      `{"method": "emit", "event": "b", "data": [{"b": {"_placeholder": true, "num": 1}, "a": {"_placeholder": true, "num": 0}}, "AQ==", "AgM="], "binary": true, "namespace": "/ws"}`,
      single,
    );
    assert.deepEqual(bin.method === "emit" && bin.args, [
      { b: Buffer.from([2, 3]), a: Buffer.from([1]) },
    ]);
  });

  it("refuses malformed and foreign bodies with a reason, never throwing", () => {
    refused('["method"]', "malformed", /not a JSON object/);
    refused('"method"', "malformed");
    refused("[1, 2]", "malformed");
    refused("garbage", "malformed", /not JSON/);
    refused(Buffer.from([0xff, 0xfe, 0x00]), "malformed", /neither pickle nor UTF-8/);
    refused(
      '{"method": "emit", "event": "x", "data": [NaN], "binary": false}',
      "malformed",
      /not JSON/,
    );
    refused('{"method": "emit"}', "malformed", /"event"/);
    refused('{"method": 1}', "malformed", /method/);
    refused('{"event": "x"}', "malformed", /method/);
    refused('{"method": "emit", "event": "x", "namespace": "ws"}', "malformed", /namespace/);
    refused('{"method": "emit", "event": "x", "room": 5}', "malformed", /room/);
    refused('{"method": "emit", "event": "x", "room": ["a", 1]}', "malformed", /room/);
    refused('{"method": "emit", "event": "x", "skip_sid": {}}', "malformed", /skip_sid/);
    refused('{"method": "emit", "event": "x", "callback": ["r", "/"]}', "malformed", /callback/);
    refused(
      '{"method": "emit", "event": "x", "data": {"a": 1}, "binary": false}',
      "malformed",
      /list of arguments/,
    );
    refused(
      '{"method": "emit", "event": "x", "data": [[1], "@@@"], "binary": true}',
      "malformed",
      /base64/,
    );
    refused(
      '{"method": "emit", "event": "x", "data": [[{"_placeholder": true, "num": 3}], "AA=="], "binary": true}',
      "malformed",
      /placeholder/,
    );
    refused('{"method": "emit", "event": "x", "data": [], "binary": "yes"}', "malformed", /binary/);
    refused('{"method": "callback", "sid": "s", "id": "1", "args": []}', "malformed", /"id"/);
    refused('{"method": "disconnect", "namespace": "/"}', "malformed", /"sid"/);
    refused('{"method": "close_room"}', "malformed", /"room"/);
    refused('{"method": "publish", "x": 1}', "unsupported", /unknown method "publish"/);
    for (const ev of [
      "connect",
      "connect_error",
      "disconnect",
      "disconnecting",
      "newListener",
      "removeListener",
    ]) {
      refused(
        `{"method": "emit", "event": "${ev}", "data": [1], "binary": false}`,
        "reserved-event",
      );
    }
    refused(
      `{"method": "emit", "event": "x", "data": ["${"a".repeat(2000)}"]}`,
      "too-large",
      /limit 1000/,
      {
        maxMessageBytes: 1000,
      },
    );
    const deep = `${"[".repeat(100)}${"]".repeat(100)}`;
    refused(
      `{"method": "emit", "event": "x", "data": [${deep}], "binary": false}`,
      "malformed",
      /deeper/,
    );
    refused(
      `{"method": "emit", "event": "x", "data": [[${deep}], "AA=="], "binary": true}`,
      "malformed",
      /deeper/,
    );
  });

  it("keeps a __proto__ key a key", () => {
    const m = ok(
      '{"method": "emit", "event": "x", "data": [{"__proto__": {"polluted": 1}}], "binary": false}',
    );
    assert.ok(m.method === "emit");
    const arg = m.args[0] as Record<string, unknown>;
    assert.ok(Object.hasOwn(arg, "__proto__"));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const bin = ok(
      '{"method": "emit", "event": "x", "data": [[{"__proto__": {"_placeholder": true, "num": 0}}], "AA=="], "binary": true}',
    );
    assert.ok(bin.method === "emit");
    assert.ok(Object.hasOwn(bin.args[0] as object, "__proto__"));
    assert.equal(Object.getPrototypeOf(bin.args[0]), Object.prototype);
  });
});

const PY = String.raw`
host = "00ca74158e6d439989ca040628ae93c5"
def emit(event, data, namespace="/ws", room=None, skip_sid=None):
    return {"method": "emit", "event": event, "data": data, "namespace": namespace,
            "room": room, "skip_sid": skip_sid, "callback": None, "host_id": host}
CASES = [
    ("dict", emit("tick", {"seq": 1}, room="r")),
    ("tuple", emit("multi", (1, "two", [3]), room=["r", "s"], skip_sid="x")),
    ("list", emit("list", [1, 2])),
    ("bytes", emit("bin", {"b": b"\x00\x01\xff"})),
    ("none", emit("ping", None)),
    ("big", emit("big", (2**64, (1, 2)))),
    ("close_room", {"method": "close_room", "room": "r", "namespace": "/ws"}),
    ("disconnect", {"method": "disconnect", "sid": "abc", "namespace": "/ws"}),
    ("reserved", emit("disconnect", 1)),
    ("notdict", ["method", "emit"]),
]
`;

/** flask-socketio-queue.md §3: Debian 5.7.2, `SocketIO(message_queue=url).emit('tick', {'seq': 1}, namespace='/ws', to='r')`, 163 bytes. */
const CAPTURE_572 = Buffer.from(
  "80049598000000000000007d94288c066d6574686f64948c04656d697494" +
    "8c056576656e74948c047469636b948c0464617461947d948c0373657194" +
    "4b01738c096e616d657370616365948c032f7773948c04726f6f6d948c01" +
    "72948c08736b69705f736964944e8c0863616c6c6261636b944e8c07686f" +
    "73745f6964948c2030306361373431353865366434333939383963613034" +
    "3036323861653933633594752e",
  "hex",
);

describe("decodeFlaskMessage: the captured 5.7.2 pickle bytes", () => {
  it("reads them with legacyPickle, refuses them without", () => {
    assert.equal(CAPTURE_572.length, 163);
    const m = ok(CAPTURE_572, { legacyPickle: "data-only" });
    assert.ok(m.method === "emit");
    assert.equal(m.event, "tick");
    assert.equal(m.namespace, "/ws");
    assert.deepEqual(m.rooms, ["r"]);
    assert.deepEqual(m.skipSids, []);
    assert.equal(m.hostId, "00ca74158e6d439989ca040628ae93c5");
    assert.deepEqual(JSON.parse(JSON.stringify(m.args)), [{ seq: 1 }]);
    refused(CAPTURE_572, "unsupported", /legacyPickle/);
  });
});

describe("decodeFlaskMessage: pickle (5.7.2) from the real Python", () => {
  const fixtures = pythonPickles(PY, [4, 5]);
  const byName = (n: string) => {
    const f = fixtures.find((x) => x.name === n && x.proto === 4);
    assert.ok(f);
    return f.bytes;
  };

  it("refuses pickle by default, saying how to fix it", () => {
    const r = decodeFlaskMessage(byName("dict"));
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.error.reason, "unsupported");
    assert.equal(r.error.isPickle, true);
    assert.match(r.error.message, /python-socketio >= 5\.14/);
    assert.match(r.error.message, /legacyPickle/);
  });

  it('reads the 5.7.2 messages with legacyPickle: "data-only"', () => {
    const opts: FlaskDecodeOptions = { legacyPickle: "data-only" };
    for (const f of fixtures.filter((x) => x.name !== "reserved" && x.name !== "notdict")) {
      assert.equal(decodeFlaskMessage(f.bytes, opts).ok, true, `${f.name} ${f.proto}`);
    }
    const dict = ok(byName("dict"), opts);
    assert.deepEqual(
      { ...dict, args: undefined },
      {
        method: "emit",
        namespace: "/ws",
        hostId: "00ca74158e6d439989ca040628ae93c5",
        encoding: "pickle",
        event: "tick",
        args: undefined,
        rooms: ["r"],
        skipSids: [],
        callback: undefined,
        layout: "pickle",
      },
    );
    assert.deepEqual(JSON.parse(JSON.stringify(dict.method === "emit" && dict.args)), [{ seq: 1 }]);
    const tuple = ok(byName("tuple"), opts);
    assert.ok(tuple.method === "emit");
    assert.deepEqual(tuple.args, [1, "two", [3]]);
    assert.deepEqual(tuple.rooms, ["r", "s"]);
    assert.deepEqual(tuple.skipSids, ["x"]);
    const list = ok(byName("list"), opts);
    assert.deepEqual(list.method === "emit" && list.args, [[1, 2]]);
    const bytes = ok(byName("bytes"), opts);
    assert.ok(bytes.method === "emit");
    assert.deepEqual((bytes.args[0] as { b: Buffer }).b, Buffer.from([0, 1, 0xff]));
    assert.deepEqual(
      ok(byName("none"), opts).method === "emit" &&
        (ok(byName("none"), opts) as { args: unknown[] }).args,
      [],
    );
    // Tuples nested inside an argument become lists, as JSON would carry them.
    assert.deepEqual(
      ok(byName("big"), opts).method === "emit" &&
        (ok(byName("big"), opts) as { args: unknown[] }).args,
      [2 ** 64, [1, 2]],
    );
    assert.deepEqual(ok(byName("close_room"), opts), {
      method: "close_room",
      namespace: "/ws",
      hostId: undefined,
      encoding: "pickle",
      room: "r",
    });
    refused(byName("reserved"), "reserved-event", undefined, opts);
    refused(byName("notdict"), "malformed", /not a dict/, opts);
    refused(Buffer.from([0x80, 4, 0x63, 0x2e]), "pickle-refused", /GLOBAL/, opts);
  });
});

describe("decodeFlaskMessage: fuzzing", () => {
  it("never throws on arbitrary bytes, JSON values or field combinations", () => {
    const field = fc.oneof(
      fc.constant(null),
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.array(fc.string()),
      fc.jsonValue(),
    );
    const msg = fc.record(
      {
        method: fc.constantFrom(
          "emit",
          "callback",
          "disconnect",
          "close_room",
          "enter_room",
          "leave_room",
          "x",
        ),
        event: field,
        data: field,
        binary: fc.oneof(fc.boolean(), field),
        namespace: field,
        room: field,
        skip_sid: field,
        callback: field,
        sid: field,
        id: field,
        args: field,
        host_id: field,
      },
      { requiredKeys: ["method"] },
    );
    const opts = fc.record({
      legacyPickle: fc.constantFrom(false as const, "data-only" as const),
      binaryLayout: fc.constantFrom("arguments" as const, "single" as const),
    });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.jsonValue().map((v) => JSON.stringify(v) ?? ""),
          msg.map((m) => JSON.stringify(m)),
        ),
        opts,
        (body, o) => {
          const r = decodeFlaskMessage(body, o);
          if (!r.ok) assert.equal(r.error.code, "SY_ERR_FLASK_MESSAGE");
          else assert.equal(typeof r.message.method, "string");
        },
      ),
      { numRuns: 3000 },
    );
  });
});
