/** The engine's query reader agrees with URLSearchParams.get on any URL. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { queryParam, urlPath } from "../../src/engine/query.js";

const NAMES = ["sid", "EIO", "transport", "t", "s", "si", "sidx", ""];
const piece = fc.oneof(
  fc.constantFrom(...NAMES),
  fc.stringMatching(/^[A-Za-z0-9_.~=%+-]{0,8}$/),
  fc.constantFrom("%73id", "%zz", "a+b", "%E2%82%AC", "="),
);
const segment = fc.oneof(
  fc.tuple(piece, piece).map(([k, v]) => `${k}=${v}`),
  piece,
  fc.constant(""),
);
const url = fc
  .tuple(
    fc.constantFrom("/socket.io/", "/x", "/"),
    fc.array(segment, { maxLength: 6 }),
    fc.boolean(),
  )
  .map(([path, segs, withQ]) => (withQ ? `${path}?${segs.join("&")}` : path));

describe("query reader", () => {
  it("matches URLSearchParams.get for every name (property)", () => {
    fc.assert(
      fc.property(url, fc.constantFrom(...NAMES), (u, name) => {
        const i = u.indexOf("?");
        const expected = new URLSearchParams(i === -1 ? "" : u.slice(i + 1)).get(name);
        assert.equal(queryParam(u, name), expected, `${u} ${name}`);
      }),
      { numRuns: 2000 },
    );
  });

  it("named cases: first of repeated, empty value, bare name, prefix names, escapes", () => {
    const u = "/socket.io/?EIO=4&transport=polling&sid=a&sid=b&t=&j&sidx=9";
    assert.equal(queryParam(u, "sid"), "a");
    assert.equal(queryParam(u, "t"), "");
    assert.equal(queryParam(u, "j"), "");
    assert.equal(queryParam(u, "si"), null);
    assert.equal(queryParam("/x?%73id=1", "sid"), "1");
    assert.equal(queryParam("/x?sid=a+b%21", "sid"), "a b!");
    assert.equal(queryParam("/x", "sid"), null);
    assert.equal(urlPath(u), "/socket.io/");
    assert.equal(urlPath("/p"), "/p");
  });
});
