/**
 * Published advisories of the reference parsers (socket.io-parser, engine.io(-parser),
 * socket.io), replayed against our codecs. Where the upstream root cause lies outside a
 * codec, the title says which part is ours and which belongs to the server.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decodeEnginePacket,
  decodePayload,
  ProtocolError,
  SocketDecoder,
} from "@switchyard/protocol";

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

function isPristine(): boolean {
  const probe: Record<string, unknown> = {};
  return probe.polluted === undefined && probe.x === undefined && probe.y === undefined;
}

describe("socket.io-parser advisories", () => {
  test("CVE-2022-2421 / GHSA-qm95-pgcg-qqfq: placeholder num must be an in-range integer", () => {
    for (const num of [
      '"toString"',
      '"__proto__"',
      '"constructor"',
      '"length"',
      '"0"',
      "1.5",
      "-1",
      "1",
      "true",
      "null",
      "[0]",
      "{}",
      "1e400",
    ]) {
      const d = new SocketDecoder();
      throwsCode(() => d.add(`51-["ev",{"_placeholder":true,"num":${num}}]`), "SY_ERR_BAD_PACKET");
      assert.equal(d.awaitingAttachments, false);
    }
  });

  test("CVE-2022-2421: placeholder-shaped objects in a non-binary packet stay plain data", () => {
    const p = new SocketDecoder().add('2["ev",{"_placeholder":true,"num":"toString"}]');
    assert.deepEqual(p?.data, ["ev", { _placeholder: true, num: "toString" }]);
  });

  test("CVE-2023-32695 / GHSA-cqmj-92xf-r6r9: event name must be a string", () => {
    for (const wire of [
      '2[{"toString":"foo"}]',
      '2[["ev"]]',
      "2[1]",
      "2[true]",
      "2[null]",
      "2[]",
      '2{"0":"ev"}',
      '51-[{"_placeholder":true,"num":0}]',
    ]) {
      throwsCode(() => new SocketDecoder().add(wire), "SY_ERR_BAD_EVENT");
    }
  });

  test("CVE-2026-33151 / GHSA-677m-j7p3-52f9: attachment count is bounded before buffering", () => {
    for (const wire of ['511-["a"]', '599999-["a"]', '59999999999999999999-["a"]']) {
      const d = new SocketDecoder();
      throwsCode(() => d.add(wire), "SY_ERR_TOO_MANY_ATTACHMENTS");
      assert.equal(d.awaitingAttachments, false, "nothing is buffered");
    }
  });

  test("CVE-2026-69185 / GHSA-2m8v-j782-fhvr: zero attachments are rejected", () => {
    const d = new SocketDecoder();
    throwsCode(() => d.add('50-["a"]'), "SY_ERR_BAD_PACKET");
    throwsCode(() => d.add('600-1["a"]'), "SY_ERR_BAD_PACKET");
    assert.equal(d.awaitingAttachments, false);
    throwsCode(() => d.add(Buffer.alloc(1024)), "SY_ERR_BAD_PACKET");
  });

  test("CVE-2020-36049 / GHSA-xfhh-g9f5-x4m4: header fields are scanned with bounds", () => {
    const big = 10_000_000;
    const started = performance.now();
    throwsCode(() => new SocketDecoder().add(`2/${"a".repeat(big)}`), "SY_ERR_BAD_NAMESPACE");
    throwsCode(() => new SocketDecoder().add(`2${"1".repeat(big)}["a"]`), "SY_ERR_BAD_ACK_ID");
    throwsCode(
      () => new SocketDecoder().add(`5${"1".repeat(big)}-["a"]`),
      "SY_ERR_TOO_MANY_ATTACHMENTS",
    );
    assert.ok(performance.now() - started < 1000, "rejected without walking the whole input");
  });

  test("socket.io-parser 2.2.3 (infinite loop with malicious binary packet): truncated headers end", () => {
    for (const wire of ["5", "51", "5123", "6-", "5/admin,"]) {
      throwsCode(() => new SocketDecoder().add(wire), "SY_ERR_BAD_PACKET");
    }
  });
});

describe("prototype pollution", () => {
  test("__proto__ and constructor keys stay plain own data", () => {
    const p = new SocketDecoder().add(
      '2["ev",{"__proto__":{"polluted":1}},{"constructor":{"prototype":{"x":1}}}]',
    );
    assert.ok(p);
    const [, a, b] = p.data as [string, Record<string, unknown>, Record<string, unknown>];
    assert.equal(Object.getPrototypeOf(a), Object.prototype);
    assert.ok(Object.hasOwn(a, "__proto__"));
    assert.ok(Object.hasOwn(b, "constructor"));
    assert.ok(isPristine());
  });

  test("a placeholder under __proto__ becomes an own property, not the prototype", () => {
    const d = new SocketDecoder();
    d.add(
      '51-["ev",{"__proto__":{"_placeholder":true,"num":0}},{"constructor":{"_placeholder":true,"num":0}}]',
    );
    const buf = Buffer.from([1, 2]);
    const p = d.add(buf);
    assert.ok(p);
    const [, a, b] = p.data as [string, Record<string, unknown>, Record<string, unknown>];
    assert.equal(Object.getPrototypeOf(a), Object.prototype, "prototype unchanged");
    assert.equal(Object.getOwnPropertyDescriptor(a, "__proto__")?.value, buf);
    assert.equal(b.constructor, buf);
    assert.ok(isPristine());
  });

  test("CONNECT auth with __proto__ does not pollute", () => {
    const p = new SocketDecoder().add('0{"__proto__":{"polluted":true},"token":"t"}');
    assert.ok(p);
    assert.equal((p.data as Record<string, unknown>).token, "t");
    assert.equal(Object.getPrototypeOf(p.data), Object.prototype);
    assert.ok(isPristine());
  });
});

describe("engine.io advisories (codec part)", () => {
  test("CVE-2022-41940 / GHSA-r7qp-cfhv-p84w: malformed polling bodies only raise ProtocolError", () => {
    // Upstream the crash came from the HTTP layer; the codec's share is never to throw
    // anything a server would not catch and turn into a 400.
    const bodies = [
      "",
      "\x1e",
      "4\x1e",
      "9",
      "b!",
      "bA",
      "4a\x1e\x1e4b",
      "\x00",
      "\ud800",
      "4".repeat(10_000) + "\x1e",
    ];
    for (const body of bodies) {
      assert.throws(() => decodePayload(body), ProtocolError);
    }
  });

  test("engine.io-parser: bad binary (invalid base64) is an error, never silently different bytes", () => {
    for (const frame of ["b$$$$", "bAQ=D", "bAQID=", "b-_-_"]) {
      throwsCode(() => decodeEnginePacket(frame), "SY_ERR_BAD_PACKET");
      throwsCode(() => decodePayload(frame), "SY_ERR_BAD_PAYLOAD");
    }
  });
});

describe("socket.io advisories outside the codec", () => {
  test('CVE-2024-38355 / GHSA-25hc-qcg6-38wj: the decoder passes reserved names such as "error" through; the server must reject them', () => {
    // Shape only, by design: the reserved-name policy belongs to the namespace layer.
    assert.deepEqual(new SocketDecoder().add('2["error"]')?.data, ["error"]);
    assert.deepEqual(new SocketDecoder().add('2["disconnect"]')?.data, ["disconnect"]);
  });
});
