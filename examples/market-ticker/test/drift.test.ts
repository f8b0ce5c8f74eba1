/**
 * The ticker does not drift, measured where a user sees it: at a real socket.io client,
 * against the wall clock, not from the lateness the ticker reports about itself.
 *
 * A ticker that re-arms `setTimeout(interval)` after each run is late by every timer's
 * overshoot plus the run's own work, and the lateness adds up: tick n arrives at
 * start + n·(interval + δ). Over 1 s ticks δ ≈ 1 ms is invisible in a dozen gaps, so
 * this test runs the demo (src/main.ts in its own process, as `npm start` does) with a
 * short interval and checks many ticks against the straight line start + n·interval:
 * nearly every tick within a tolerance of it, the typical residual of the last ticks
 * where it was for the first ones, and no trend. Slots the ticker skipped because the
 * loop stalled (a loaded machine) are read from the server's timestamps and kept out of
 * the drift: they move one tick, not the line.
 */
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, it } from "node:test";
import type { Tick } from "../src/price-model.js";
import {
  connectClient,
  type DemoProcess,
  getJson,
  type MarketClient,
  startDemo,
  waitFor,
} from "./helpers.js";

const INTERVAL_MS = 100;
const TICKS = 60; // 6 s
/** Tick n must arrive within this of start + n·interval (most ticks; see OUTLIERS). */
const TOLERANCE_MS = INTERVAL_MS / 2;
/** Share of ticks that may miss the tolerance: a loaded machine delays a few deliveries. */
const OUTLIERS = 0.1;
/** How far the typical residual may move between the first and the last 20 ticks. */
const MAX_DRIFT_MS = INTERVAL_MS / 4;
/** Largest trend of the residuals, ms per tick (a drifting ticker shows ~0.5–2). */
const MAX_SLOPE_MS = 0.3;

let demo: DemoProcess | undefined;
let url = "";
let client: MarketClient | undefined;

before(async () => {
  demo = await startDemo(INTERVAL_MS);
  url = demo.url;
});

after(async () => {
  client?.close();
  await demo?.stop();
});

/**
 * The trend of `ys` over `xs` (ms per slot): the median of the slopes between every two
 * ticks of the same run of consecutive slots (Theil–Sen), so a few deliveries delayed by
 * a loaded machine do not tilt it, and the step a skipped slot makes does not count. (A
 * ticker that re-arms a fixed `setTimeout` after each run, yet skips a slot once half an
 * interval late, draws a saw tooth: it climbs ~1 ms per tick, drops at a skip, climbs
 * again — each run climbs.)
 */
function trendOf(xs: readonly number[], ys: readonly number[]): number {
  const slopes: number[] = [];
  let from = 0;
  for (let i = 1; i <= xs.length; i++) {
    if (i < xs.length && xs[i]! === xs[i - 1]! + 1) continue;
    for (let a = from; a < i; a++)
      for (let b = a + 1; b < i; b++) slopes.push((ys[b]! - ys[a]!) / (xs[b]! - xs[a]!));
    from = i;
  }
  return slopes.length === 0 ? 0 : median(slopes);
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The slot of each tick, counted from the first: consecutive slots are one interval
 * apart on the server's clock give or take the ticker's lateness (at most half an
 * interval), so a gap of about two intervals is a slot the ticker skipped because the
 * loop stalled — not drift. A drifting ticker's gaps are interval + δ: one slot each.
 */
function slotsOf(published: readonly number[]): number[] {
  const slots = [0];
  for (let i = 1; i < published.length; i++) {
    const gap = published[i]! - published[i - 1]!;
    slots.push(slots[i - 1]! + Math.max(1, Math.round(gap / INTERVAL_MS)));
  }
  return slots;
}

it(`tick n arrives at start + n·${INTERVAL_MS} ms (± ${TOLERANCE_MS} ms) over ${TICKS} ticks: no cumulative drift`, async (t) => {
  const socket = await connectClient(url);
  client = socket;
  const ticks: { tick: Tick; at: number }[] = [];
  socket.on("tick", (tick) => ticks.push({ tick, at: performance.now() }));
  const reply = await socket.timeout(5000).emitWithAck("subscribe", "AAPL");
  assert.equal(reply.ok, true);
  const before = (await getJson(`${url}/api/stats`)).json as { missedSlots: number };

  // Skip the first tick: it may have been in flight while the subscription settled.
  await waitFor(() => ticks.length >= TICKS + 1, (TICKS + 40) * INTERVAL_MS, `${TICKS} ticks`);
  const measured = ticks.slice(1, TICKS + 1);
  const stats = (await getJson(`${url}/api/stats`)).json as { missedSlots: number };

  // In order, none lost (seq counts published ticks, not slots).
  assert.deepEqual(
    measured.map((x, i) => x.tick.seq - measured[0]!.tick.seq - i),
    measured.map(() => 0),
    "ticks arrive in order, without gaps",
  );

  const round = (n: number) => Math.round(n * 100) / 100;
  const slots = slotsOf(measured.map((x) => x.tick.t));
  const skipped = slots.at(-1)! - (slots.length - 1);
  t.diagnostic(
    `slots skipped (the loop stalled ≥ ${INTERVAL_MS / 2} ms): ${skipped} by the tick timestamps, ` +
      `${stats.missedSlots - before.missedSlots} by the ticker's counter`,
  );
  assert.ok(skipped <= TICKS * OUTLIERS, `${skipped} slots skipped in ${TICKS} ticks`);
  for (const [where, series] of [
    ["received (client clock)", measured.map((x) => x.at)],
    ["published (server Date.now)", measured.map((x) => x.tick.t)],
  ] as const) {
    // Residual of tick k: its time − (start + slot·interval), start chosen as the median
    // so that one late first tick does not shift the line.
    const raw = series.map((x, k) => x - slots[k]! * INTERVAL_MS);
    const start = median(raw);
    const r = raw.map((x) => x - start);
    const show = `residuals ${r.map(round).join(", ")}`;
    const trend = trendOf(slots, r);
    const drift = median(r.slice(-20)) - median(r.slice(0, 20));
    const off = r.filter((x) => Math.abs(x) > TOLERANCE_MS).length;
    t.diagnostic(
      `${where}: ${TICKS - 1} ticks over ${round(series.at(-1)! - series[0]!)} ms; ` +
        `first → last 20 ticks moved ${round(drift)} ms, trend ${round(trend)} ms/tick, ` +
        `${off} ticks off the line by more than ${TOLERANCE_MS} ms`,
    );
    assert.ok(Math.abs(drift) <= MAX_DRIFT_MS, `${where}: drifted ${round(drift)} ms; ${show}`);
    assert.ok(Math.abs(trend) <= MAX_SLOPE_MS, `${where}: ${round(trend)} ms per tick; ${show}`);
    assert.ok(off <= TICKS * OUTLIERS, `${where}: ${off} ticks off the line; ${show}`);
  }
});
