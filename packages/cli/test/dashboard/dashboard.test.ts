/**
 * The dashboard of `switchyard serve`: the admin key over plain HTTP (missing, wrong, rate
 * limited, right), and the page in real headless Chromium — it loads, its plots move when
 * real socket.io clients connect and send events, rooms and errors appear, a wrong key is
 * refused on the page.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import { launchChromium } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import {
  type DashboardSnapshot,
  dashboardSchema,
  installDashboard,
} from "../../src/dashboard/index.js";
import { startContext, type TestContext } from "../metrics/serve-context.js";

const KEY = "k3y-for-the-dashboard-tests-0123456789";
/** The page's DOM as far as the tests read it (the test tsconfig has no DOM lib). */
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  toDataURL(): string;
}
type PageGlobal = { document: { getElementById(id: string): PageElement } };
/** Functions run in the page (serialized: self-contained, the cast is compile-time only). */
const canvasPixels = () =>
  (globalThis as unknown as PageGlobal).document.getElementById("chart-connections").toDataURL();
const historyPoints = () =>
  Number(
    (globalThis as unknown as PageGlobal).document.getElementById("chart-connections").dataset
      .points,
  ) >= 2;
const movedWithClients = () => {
  const doc = (globalThis as unknown as PageGlobal).document;
  return (
    doc.getElementById("chart-connections").dataset.last === "3" &&
    Number(doc.getElementById("chart-messages").dataset.last) > 0
  );
};
const showsEngineError = () =>
  (
    (globalThis as unknown as PageGlobal).document.getElementById("errors").textContent ?? ""
  ).includes("ENGINE_UNKNOWN_TRANSPORT");

function connected(url: string): Promise<ClientSocket> {
  const socket = connect(url, { reconnection: false, forceNew: true, transports: ["websocket"] });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(err);
    });
  });
}

const clients: ClientSocket[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function start(extra: Record<string, unknown> = {}): Promise<TestContext> {
  const t = await startContext();
  const installed = await installDashboard(
    t.ctx,
    dashboardSchema.parse({ enabled: true, adminKey: KEY, sampleIntervalMs: 200, ...extra }),
  );
  cleanups.push(
    () => t.close(),
    () => installed.close(),
  );
  return t;
}

describe("dashboardSchema", () => {
  test("off by default; enabled needs an admin key of 16+ characters; unknown keys refused", () => {
    assert.equal(dashboardSchema.parse({}).enabled, false);
    const missing = dashboardSchema.safeParse({ enabled: true });
    assert.equal(missing.success, false);
    assert.deepEqual(missing.error?.issues[0]?.path, ["adminKey"]);
    assert.match(missing.error?.issues[0]?.message ?? "", /required when dashboard.enabled/);
    assert.equal(dashboardSchema.safeParse({ enabled: true, adminKey: "short" }).success, false);
    const typo = dashboardSchema.safeParse({ enabled: true, adminKey: KEY, adminkey: KEY });
    assert.equal(typo.success, false);
    assert.match(JSON.stringify(typo.error?.issues), /adminkey/);
    assert.equal(dashboardSchema.safeParse({ path: "/dash/" }).success, false);
    assert.equal(dashboardSchema.safeParse({ sampleIntervalMs: 10 }).success, false);
  });
});

describe("dashboard over HTTP", () => {
  test("the page holds no data; the snapshot needs the key; bad keys are refused, then rate-limited", async () => {
    const t = await start({ maxBadKeysPerMinute: 4 });
    const page = await fetch(`${t.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    const html = await page.text();
    assert.match(html, /<script src="\/dashboard\/app\.js">/);
    assert.equal(html.includes(KEY), false);
    assert.equal((await fetch(`${t.url}/dashboard/app.js`)).status, 200);
    assert.equal((await fetch(`${t.url}/dashboard/nope`)).status, 404);
    assert.equal((await fetch(`${t.url}/dashboard`, { method: "POST" })).status, 405);

    const none = await fetch(`${t.url}/dashboard/api/snapshot`);
    assert.equal(none.status, 401);
    assert.equal(
      ((await none.json()) as { error: { code: string } }).error.code,
      "missing_admin_key",
    );
    const snapshot = (auth: string) =>
      fetch(`${t.url}/dashboard/api/snapshot`, { headers: { authorization: auth } });
    const good = await snapshot(`Bearer ${KEY}`);
    assert.equal(good.status, 200);
    const s = (await good.json()) as DashboardSnapshot;
    assert.equal(s.cluster.bus, null);
    assert.equal(s.cluster.nodes[0]?.self, true);
    assert.ok(s.history.length >= 1);
    for (let i = 0; i < 2; i++) {
      const bad = await snapshot(`Bearer ${KEY.slice(0, -1)}x`);
      assert.equal(bad.status, 401);
      assert.equal(((await bad.json()) as { error: { code: string } }).error.code, "bad_admin_key");
    }
    assert.equal((await snapshot(`Bearer ${"y".repeat(2000)}`)).status, 401, "oversized key");
    const limited = await snapshot(`Bearer ${KEY}`);
    assert.equal(
      limited.status,
      429,
      "after 4 bad keys (missing, 2 wrong, oversized) even the right one waits",
    );
    assert.equal(limited.headers.get("retry-after"), "60");
  });
});

describe("dashboard in headless Chromium", () => {
  test("the page loads, plots move with real clients and events, rooms and errors show; a wrong key is refused", async () => {
    const t = await start();
    t.ctx.io.on("connection", (socket) => {
      void socket.join("room-a");
      socket.on("tick", () => {});
    });
    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(err.message));

    await page.goto(`${t.url}/dashboard#key=${encodeURIComponent(KEY)}`);
    await page.waitForSelector("#main:not([hidden])", { timeout: 15_000 });
    assert.match((await page.textContent("#status")) ?? "", /^live/);
    assert.equal(page.url().includes(KEY), false, "the key leaves the address bar");
    await page.waitForFunction(historyPoints, undefined, { timeout: 10_000 });
    assert.equal(await page.getAttribute("#chart-connections", "data-last"), "0");
    const pixelsBefore = await page.evaluate(canvasPixels);

    for (let i = 0; i < 3; i++) clients.push(await connected(t.url));
    // Events flow until the page shows a rate (bounded by the wait's timeout).
    const sender = setInterval(() => {
      for (const c of clients) c.emit("tick", "x".repeat(100));
    }, 20);
    try {
      await page.waitForFunction(movedWithClients, undefined, { timeout: 15_000 });
    } finally {
      clearInterval(sender);
    }
    const pixelsAfter = await page.evaluate(canvasPixels);
    assert.notEqual(
      pixelsAfter,
      pixelsBefore,
      "the connections plot was redrawn with the new line",
    );
    assert.equal(await page.textContent("#connections"), "3");
    const rooms = (await page.textContent("#rooms")) ?? "";
    assert.match(rooms, /room-a\s*3/);
    assert.match((await page.textContent("#nodes")) ?? "", /this node/);
    assert.match((await page.textContent("#bus")) ?? "", /none/);

    // An engine refusal shows up under errors by code.
    assert.equal((await fetch(`${t.url}/socket.io/?EIO=4&transport=carrier-pigeon`)).status, 400);
    await page.waitForFunction(showsEngineError, undefined, { timeout: 10_000 });

    // A wrong key: refused on the page, no data shown, the key form offered.
    const other = await browser.newPage();
    await other.goto(`${t.url}/dashboard#key=${encodeURIComponent("not-the-admin-key-at-all")}`);
    await other.waitForSelector("#status.refused", { timeout: 10_000 });
    assert.match((await other.textContent("#status")) ?? "", /refused: wrong admin key/);
    assert.equal(await other.isVisible("#main"), false);
    assert.equal(await other.isVisible("#login"), true);
    // Entering the right key in the form opens it.
    await other.fill("#key", KEY);
    await other.click("button[type=submit]");
    await other.waitForSelector("#main:not([hidden])", { timeout: 10_000 });
    assert.deepEqual(pageErrors, []);
  });
});
