/** The array FIFO under the write scheduler and the delivery queue, across its compaction. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Fifo } from "../../src/fifo.js";

describe("Fifo", () => {
  it("keeps order and length through pushes and shifts that cross the compaction point", () => {
    const q = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 1000; i++) q.push(next++);
      for (let i = 0; i < 700; i++) assert.equal(q.shift(), expected++);
      assert.equal(q.length, next - expected);
      assert.equal(q.peek(), expected);
      assert.equal(q.peek(5), expected + 5);
    }
    while (q.length > 0) assert.equal(q.shift(), expected++);
    assert.equal(expected, next);
    assert.equal(q.shift(), undefined);
    assert.equal(q.peek(), undefined);
  });
});
