/**
 * The page in real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * it connects, draws ticks of the picked symbol, and switching symbol moves the socket
 * from one room to the other so that only the new symbol's ticks arrive.
 *
 * Set MARKET_TICKER_SCREENSHOT=/tmp/market-ticker.png to keep a screenshot.
 * Set CHROMIUM_PATH to use another Chromium binary.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { createMarketApp, type MarketApp, NAMESPACE, roomOf } from "../src/app.js";
import type { Tick } from "../src/price-model.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

declare global {
  /** What the page exposes for inspection (see public/app.js). */
  interface Window {
    __ticks: (Tick & { receivedAt: number })[];
    __events: { type: "subscribed" | "unsubscribed"; symbol: string; at: number }[];
  }
}

let app: MarketApp;
let context: BrowserContext | undefined;
let profile: string | undefined;
let page: Page;
const pageErrors: string[] = [];
/** The one failing request the tests make on purpose. */
const EXPECTED_404 = "/api/quote/NOPE";

before(async () => {
  app = await createMarketApp({ port: 0, host: "127.0.0.1", tickIntervalMs: 100 });
  profile = await mkdtemp(join(tmpdir(), "market-ticker-chromium-"));
  // A persistent context is how playwright takes a fresh --user-data-dir of our own.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 640 },
    timeout: 30_000,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    // Failed requests are checked through `response` below, which knows the URL.
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource"))
      pageErrors.push(msg.text());
  });
  page.on("response", (res) => {
    if (res.status() >= 400 && !res.url().endsWith(EXPECTED_404))
      pageErrors.push(`HTTP ${res.status()} ${res.url()}`);
  });
});

after(async () => {
  await context?.close().catch(() => {});
  if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  await app?.close();
});

it("Chromium is where the test expects it", () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found (set CHROMIUM_PATH)`);
});

it("connects and shows live ticks of the first symbol", async () => {
  await page.goto(app.url);
  await page.waitForFunction(
    () => document.querySelector<HTMLElement>("#status")?.dataset.state === "connected",
  );
  assert.equal(await page.textContent("#status"), "connected");

  const options = await page.$$eval("#symbol option", (els) =>
    els.map((o) => (o as HTMLOptionElement).value),
  );
  assert.deepEqual(
    options,
    app.symbols.map((s) => s.symbol),
  );
  assert.equal(await page.inputValue("#symbol"), "AAPL");

  await page.waitForFunction(() => window.__ticks.filter((t) => t.symbol === "AAPL").length >= 5);
  const ticks = await page.evaluate(() => window.__ticks);
  assert.ok(
    ticks.every((t) => t.symbol === "AAPL"),
    "only AAPL ticks before any switch",
  );
  for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]!.seq, ticks[i - 1]!.seq + 1);

  // The display follows the ticks.
  await page.waitForFunction(() => document.querySelectorAll("#ticks li").length >= 5);
  const last = await page.evaluate(() => {
    const row = document.querySelector<HTMLElement>("#ticks li")!;
    const tick = window.__ticks.find((t) => String(t.seq) === row.dataset.seq)!;
    return { row: row.dataset.symbol, tick, price: document.querySelector("#price")!.textContent };
  });
  assert.equal(last.row, "AAPL");
  assert.equal(await page.textContent("#quote-symbol"), "AAPL");
  assert.match(last.price ?? "", /^\d{1,3}(,\d{3})*\.\d{2}$/);
  assert.equal(await page.getAttribute("#error", "hidden"), "");
});

it("switching symbol switches rooms: only the new symbol's ticks arrive", async () => {
  const nsp = app.io.of(NAMESPACE);
  await page.selectOption("#symbol", "MSFT");
  await page.waitForFunction(() =>
    window.__events.some((e) => e.type === "subscribed" && e.symbol === "MSFT"),
  );
  const events = await page.evaluate(() => window.__events);
  const left = events.find((e) => e.type === "unsubscribed" && e.symbol === "AAPL");
  assert.ok(left, `no unsubscribe from AAPL in ${JSON.stringify(events)}`);

  // Server side: the socket left AAPL's room and joined MSFT's.
  assert.equal((await nsp.in(roomOf("AAPL")).fetchSockets()).length, 0);
  assert.equal((await nsp.in(roomOf("MSFT")).fetchSockets()).length, 1);

  await page.waitForFunction(
    (from) => window.__ticks.slice(from).filter((t) => t.symbol === "MSFT").length >= 5,
    left.at,
  );
  const since = await page.evaluate((from) => window.__ticks.slice(from), left.at);
  assert.deepEqual(
    [...new Set(since.map((t) => t.symbol))],
    ["MSFT"],
    "after the unsubscribe ack only MSFT ticks arrive",
  );
  for (let i = 1; i < since.length; i++) assert.equal(since[i]!.seq, since[i - 1]!.seq + 1);

  await page.waitForFunction(() => document.querySelectorAll("#ticks li").length >= 3);
  const rows = await page.$$eval("#ticks li", (els) =>
    els.map((li) => (li as HTMLElement).dataset.symbol),
  );
  assert.deepEqual([...new Set(rows)], ["MSFT"]);
  assert.equal(await page.textContent("#quote-symbol"), "MSFT");
  assert.equal(await page.textContent("#quote-name"), "Microsoft");
});

it("quick successive picks end subscribed to the last one only", async () => {
  const nsp = app.io.of(NAMESPACE);
  await page.selectOption("#symbol", "GOOG");
  await page.selectOption("#symbol", "TSLA");
  await page.waitForFunction(
    () =>
      window.__events.at(-1)?.type === "subscribed" && window.__events.at(-1)?.symbol === "TSLA",
  );
  const rooms = await Promise.all(
    app.symbols.map(async (s) => [
      s.symbol,
      (await nsp.in(roomOf(s.symbol)).fetchSockets()).length,
    ]),
  );
  assert.deepEqual(
    rooms.filter(([, n]) => n !== 0),
    [["TSLA", 1]],
  );
});

it("the REST API works from the page", async () => {
  const result = await page.evaluate(async () => {
    const symbols = await (await fetch("/api/symbols")).json();
    const quote = await fetch("/api/quote/tsla");
    const missing = await fetch("/api/quote/NOPE"); // EXPECTED_404
    return { symbols, quote: await quote.json(), missing: missing.status };
  });
  assert.deepEqual(
    result.symbols.symbols.map((s: { symbol: string }) => s.symbol),
    app.symbols.map((s) => s.symbol),
  );
  assert.equal(result.symbols.intervalMs, 100);
  assert.equal(result.quote.symbol, "TSLA");
  assert.equal(typeof result.quote.price, "number");
  assert.equal(result.missing, 404);
  assert.equal(await page.textContent("#interval"), "100 ms");
});

it("the page logged no errors", async () => {
  const shot = process.env.MARKET_TICKER_SCREENSHOT;
  if (shot) {
    await page.waitForFunction(() => document.querySelectorAll("#ticks li").length >= 12);
    await page.screenshot({ path: shot, fullPage: true });
  }
  assert.deepEqual(pageErrors, []);
});
