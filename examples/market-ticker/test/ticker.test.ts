/**
 * The drift-free scheduler and the deterministic price walk, in isolation.
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { afterEach, describe, it } from "node:test";
import { PriceWalk } from "../src/price-model.js";
import { resolveSymbols } from "../src/symbols.js";
import { Ticker } from "../src/ticker.js";
import { waitFor } from "./helpers.js";

interface Run {
  slot: number;
  lateMs: number;
  at: number;
}

describe("Ticker", () => {
  let ticker: Ticker | undefined;
  afterEach(() => ticker?.stop());

  it("runs slot n at origin + n·interval, never early, at most half an interval late", async () => {
    const interval = 30;
    const runs: Run[] = [];
    const origin = performance.now();
    ticker = new Ticker({
      intervalMs: interval,
      onSlot: (slot, lateMs) => runs.push({ slot, lateMs, at: performance.now() }),
    });
    ticker.start();
    await waitFor(() => runs.length >= 10, 5000, "ten slots");
    ticker.stop();
    for (const run of runs) {
      assert.ok(
        run.lateMs >= 0 && run.lateMs <= interval / 2,
        `slot ${run.slot} late ${run.lateMs}`,
      );
      // Drift-free: the n-th run is anchored to the origin, not to the previous run.
      assert.ok(run.at - origin >= run.slot * interval - 1, `slot ${run.slot} early`);
    }
    const stats = ticker.stats;
    assert.equal(stats.slots + stats.missedSlots, runs.at(-1)!.slot);
  });

  it("skips and counts slots missed while the loop was blocked, without a burst", async () => {
    const interval = 40;
    const runs: Run[] = [];
    ticker = new Ticker({
      intervalMs: interval,
      onSlot: (slot, lateMs) => {
        runs.push({ slot, lateMs, at: performance.now() });
        if (runs.length === 2) {
          // Block the event loop for ~3.3 intervals, as a long synchronous job would.
          const until = performance.now() + interval * 3.3;
          while (performance.now() < until);
        }
      },
    });
    ticker.start();
    await waitFor(() => runs.length >= 6, 5000, "six slots");
    ticker.stop();
    const stats = ticker.stats;
    assert.ok(stats.missedSlots >= 2, `missed ${stats.missedSlots}`);
    assert.equal(stats.slots + stats.missedSlots, runs.at(-1)!.slot);
    for (let i = 1; i < runs.length; i++) {
      assert.ok(runs[i]!.slot > runs[i - 1]!.slot);
      const gap = runs[i]!.at - runs[i - 1]!.at;
      assert.ok(gap >= interval / 2 - 1, `burst: runs ${i - 1} and ${i} are ${gap} ms apart`);
    }
  });

  it("keeps going when a slot throws", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    ticker = new Ticker({
      intervalMs: 10,
      onSlot: () => {
        calls++;
        if (calls === 1) throw new Error("boom");
      },
      onError: (err) => errors.push(err),
    });
    ticker.start();
    await waitFor(() => calls >= 3, 3000, "three slots");
    assert.equal(errors.length, 1);
    assert.equal(ticker.stats.errors, 1);
  });

  it("rejects bad intervals", () => {
    for (const intervalMs of [0, 5, 1.5, Number.NaN])
      assert.throws(() => new Ticker({ intervalMs, onSlot: () => {} }), /intervalMs/);
  });
});

describe("PriceWalk", () => {
  const [aapl, msft] = resolveSymbols([
    { symbol: "AAPL", name: "Apple", open: 189.5 },
    { symbol: "MSFT", name: "Microsoft", open: 412.3 },
  ]);

  it("is deterministic per seed and symbol", () => {
    const walk = (seed: number, info = aapl!) => {
      const w = new PriceWalk(info, seed, 0);
      return Array.from({ length: 50 }, (_, i) => w.step(i).price);
    };
    assert.deepEqual(walk(1), walk(1));
    assert.notDeepEqual(walk(1), walk(2));
    assert.notDeepEqual(walk(1), walk(1, msft));
  });

  it("moves at most 0.4 % plus reversion per step and stays positive over a long run", () => {
    const w = new PriceWalk(aapl!, 7, 0);
    let prev = w.tick.price;
    assert.equal(w.tick.seq, 0);
    for (let i = 1; i <= 100_000; i++) {
      const tick = w.step(i);
      assert.equal(tick.seq, i);
      if (i <= 1000) assert.ok(Math.abs(tick.price - prev) <= prev * 0.006 + 0.01);
      prev = tick.price;
    }
    assert.ok(prev > 189.5 / 3 && prev < 189.5 * 3, `drifted to ${prev}`);
  });
});
