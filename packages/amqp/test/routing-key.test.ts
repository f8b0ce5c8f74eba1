import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { routingKey } from "../src/index.js";

test("routing keys: sy. + unpadded base64url of the UTF-8 channel name", () => {
  assert.equal(routingKey("socket.io#/#"), "sy.c29ja2V0LmlvIy8j");
  assert.equal(routingKey("socket.io#/chat#room 1#"), "sy.c29ja2V0LmlvIy9jaGF0I3Jvb20gMSM");
  assert.equal(routingKey("é"), "sy.w6k");
  assert.equal(routingKey(""), "sy.");
  // One topic word after the prefix: no separator and no wildcard can appear in it.
  for (const ch of ["a.b", "#", "*", "socket.io#/#*#", "\u{1F600}.#"]) {
    const key = routingKey(ch);
    assert.match(key, /^sy\.[A-Za-z0-9_-]*$/, key);
    assert.equal(Buffer.from(key.slice(3), "base64url").toString("utf8"), ch);
  }
});

test("routing keys: channels over 189 UTF-8 bytes use sy.h. + sha256 hex", () => {
  const fits = "x".repeat(189); // base64url: 252 chars, key 255 bytes
  assert.equal(routingKey(fits).length, 255);
  assert.ok(!routingKey(fits).startsWith("sy.h."));
  const long = "x".repeat(190);
  const hashed = `sy.h.${createHash("sha256").update(long).digest("hex")}`;
  assert.equal(routingKey(long), hashed);
  assert.equal(hashed.length, 69);
  // Multi-byte characters count by bytes: 95 × "é" is 190 bytes.
  assert.ok(routingKey("é".repeat(95)).startsWith("sy.h."));
  assert.ok(!routingKey("é".repeat(94)).startsWith("sy.h."));
  // Deterministic.
  assert.equal(routingKey(long), routingKey(`${long}`));
  assert.notEqual(routingKey(long), routingKey(`${long}y`));
});
