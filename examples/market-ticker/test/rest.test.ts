/**
 * The REST API, the static page and the subscribe/unsubscribe protocol of
 * `/ws/rt_market`, against an in-process app on a free loopback port.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createMarketApp, type MarketApp, roomOf, type SubscriptionReply } from "../src/app.js";
import type { Tick } from "../src/price-model.js";
import { connectClient, getJson, httpRequest, type MarketClient, waitFor } from "./helpers.js";

const SYMBOLS = [
  { symbol: "AAPL", name: "Apple", open: 189.5 },
  { symbol: "MSFT", name: "Microsoft", open: 412.3 },
  "BRK.B",
];

describe("market-ticker REST API and page", () => {
  let app: MarketApp;

  before(async () => {
    app = await createMarketApp({
      port: 0,
      host: "127.0.0.1",
      tickIntervalMs: 50,
      symbols: SYMBOLS,
    });
  });
  after(async () => {
    await app?.close();
  });

  it("GET /api/symbols lists the symbols as JSON", async () => {
    const res = await httpRequest(`${app.url}/api/symbols`);
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(res.headers["cache-control"], "no-store");
    const body = JSON.parse(res.body) as {
      symbols: { symbol: string; name: string; open: number }[];
      intervalMs: number;
    };
    assert.deepEqual(
      body.symbols.map((s) => s.symbol),
      ["AAPL", "MSFT", "BRK.B"],
    );
    assert.deepEqual(body.symbols[0], { symbol: "AAPL", name: "Apple", open: 189.5 });
    assert.equal(body.intervalMs, 50);
  });

  it("GET /api/quote/:symbol returns the latest quote, any case", async () => {
    await waitFor(() => (app.quote("AAPL")?.seq ?? 0) >= 1, 3000, "a first tick");
    const { status, json } = await getJson(`${app.url}/api/quote/aapl`);
    assert.equal(status, 200);
    const quote = json as Record<string, unknown>;
    assert.equal(quote.symbol, "AAPL");
    assert.equal(quote.name, "Apple");
    assert.equal(quote.open, 189.5);
    assert.equal(typeof quote.price, "number");
    assert.ok((quote.seq as number) >= 1);
    assert.ok(Math.abs((quote.t as number) - Date.now()) < 60_000);
    assert.equal(quote.change, Math.round(((quote.price as number) - 189.5) * 100) / 100);
    const dotted = await getJson(`${app.url}/api/quote/BRK.B?fields=all`);
    assert.equal(dotted.status, 200);
    assert.equal((dotted.json as Tick).symbol, "BRK.B");
  });

  it("quotes move on: seq grows with every tick", async () => {
    const first = app.quote("MSFT")!;
    await waitFor(() => app.quote("MSFT")!.seq >= first.seq + 2, 3000, "two more ticks");
    const { json } = await getJson(`${app.url}/api/quote/MSFT`);
    assert.ok((json as Tick).seq >= first.seq + 2);
  });

  it("answers unknown symbols and paths with JSON 404s, bad encodings with 400", async () => {
    for (const path of [
      "/api/quote/NOPE",
      "/api/quote/",
      "/api/quote/AAPL/extra",
      "/api/quote/%3Cscript%3E",
      "/api/nothing",
    ]) {
      const res = await httpRequest(`${app.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8", path);
      assert.equal(typeof (JSON.parse(res.body) as { error: unknown }).error, "string", path);
    }
    const bad = await httpRequest(`${app.url}/api/quote/%E0%A4%A`);
    assert.equal(bad.status, 400);
    const page = await httpRequest(`${app.url}/nothing-here`);
    assert.equal(page.status, 404);
    assert.equal(page.headers["content-type"], "text/plain; charset=utf-8");
  });

  it("only GET and HEAD are allowed", async () => {
    const post = await httpRequest(`${app.url}/api/symbols`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    const head = await httpRequest(`${app.url}/api/symbols`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.ok(Number(head.headers["content-length"]) > 0);
  });

  it("serves the page, its script and style, and the Socket.IO client", async () => {
    const page = await httpRequest(`${app.url}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
    assert.match(page.body, /<script src="\/socket\.io\/socket\.io\.js"/);
    assert.match(page.body, /id="status"/);
    const js = await httpRequest(`${app.url}/app.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers["content-type"], "text/javascript; charset=utf-8");
    const css = await httpRequest(`${app.url}/style.css`);
    assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
    const client = await httpRequest(`${app.url}/socket.io/socket.io.js`);
    assert.equal(client.status, 200);
    assert.match(String(client.headers["content-type"]), /javascript/);
    assert.ok(client.body.length > 10_000);
  });

  it("GET /api/stats reports the ticker's counters", async () => {
    const { status, json } = await getJson(`${app.url}/api/stats`);
    assert.equal(status, 200);
    const stats = json as Record<string, number>;
    assert.equal(stats.intervalMs, 50);
    assert.ok(stats.slots! >= 1);
    assert.equal(stats.ticksSent, stats.slots! * 3);
    assert.equal(typeof stats.missedSlots, "number");
  });
});

describe("market-ticker subscriptions", () => {
  let app: MarketApp;
  let client: MarketClient | undefined;

  before(async () => {
    app = await createMarketApp({ port: 0, tickIntervalMs: 50, symbols: SYMBOLS });
  });
  after(async () => {
    client?.close();
    await app?.close();
  });

  it("validates subscribe and unsubscribe through the ack", async () => {
    client = await connectClient(app.url);
    // Untyped view of the client: the point is to send what a typed client would not.
    const c = client as unknown as {
      emit(ev: string, ...args: unknown[]): void;
      timeout(ms: number): { emitWithAck(ev: string, ...args: unknown[]): Promise<unknown> };
    };
    const ask = (ev: string, ...args: unknown[]) =>
      c.timeout(3000).emitWithAck(ev, ...args) as Promise<SubscriptionReply>;

    assert.deepEqual(await ask("subscribe", "NOPE"), { ok: false, error: "unknown symbol: NOPE" });
    assert.deepEqual(await ask("subscribe", 42), { ok: false, error: "symbol must be a string" });
    assert.deepEqual(await ask("subscribe", { symbol: "AAPL" }), {
      ok: false,
      error: "symbol must be a string",
    });
    assert.equal((await ask("subscribe", "x".repeat(10_000))).ok, false);
    assert.deepEqual(await ask("unsubscribe", "NOPE"), {
      ok: false,
      error: "unknown symbol: NOPE",
    });
    // Without an ack the event is still handled (and nothing breaks).
    c.emit("subscribe", "NOPE");
    c.emit("subscribe", "MSFT");
    c.emit("unsubscribe", "MSFT");

    const ok = await ask("subscribe", "aapl");
    assert.equal(ok.ok, true);
    assert.ok(ok.ok && ok.symbol === "AAPL" && ok.quote.symbol === "AAPL");
    const sockets = await app.io.of("/ws/rt_market").in(roomOf("AAPL")).fetchSockets();
    assert.deepEqual(
      sockets.map((s) => s.id),
      [client.id],
    );
    // Unsubscribing from a symbol one is not subscribed to is fine (idempotent).
    assert.equal((await ask("unsubscribe", "MSFT")).ok, true);
  });

  it("delivers only the subscribed symbol's ticks, in sequence", async () => {
    assert.ok(client);
    const ticks: Tick[] = [];
    client.on("tick", (tick) => ticks.push(tick));
    await waitFor(() => ticks.length >= 4, 3000, "four AAPL ticks");
    assert.ok(ticks.every((t) => t.symbol === "AAPL"));
    for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i]!.seq, ticks[i - 1]!.seq + 1);

    const off = await client.timeout(3000).emitWithAck("unsubscribe", "AAPL");
    assert.equal(off.ok, true);
    // Ticks sent before the leave precede the ack on the same connection; none after.
    const mark = ticks.length;
    const on = await client.timeout(3000).emitWithAck("subscribe", "MSFT");
    assert.equal(on.ok, true);
    await waitFor(() => ticks.length >= mark + 3, 3000, "three MSFT ticks");
    assert.deepEqual(
      ticks.slice(mark).map((t) => t.symbol),
      ticks.slice(mark).map(() => "MSFT"),
    );
  });
});
