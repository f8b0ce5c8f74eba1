/**
 * Heartbeat: the server pings every `pingInterval` and closes sessions whose pong does
 * not arrive within `pingTimeout`, on both transports; answering clients stay.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  closeReason,
  nextSession,
  once,
  openClient,
  openWebSocket,
  parseOpen,
  pollingHandshake,
  roundTrip,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

/** For sessions that must time out: short, so the test is quick. */
const FAST = { pingInterval: 40, pingTimeout: 60 };
/**
 * For sessions that must survive: pings as often, but the pong may be late by a few
 * hundred ms (other test files load the machine; a stalled event loop is not a dead peer).
 */
const LENIENT = { pingInterval: 40, pingTimeout: 1500 };

describe("heartbeat", () => {
  it('closes a websocket client that never answers pings with "ping timeout"', async () => {
    const { port, engine } = await startEngine(scope, FAST);
    const session = nextSession(engine);
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    const s = await session;
    let closedAt = 0;
    s.once("close", () => {
      closedAt = performance.now();
    });
    const reason = closeReason(s, 2000);
    const closed = once(ws.ws, "close", 2000);
    parseOpen(String(await ws.next()));
    assert.equal(await ws.next(), "2", "the server pings");
    // Set when the ping left; the session must not close before it.
    const deadline = s.pongDeadline;
    assert.ok(deadline > 0, "a pong is awaited");
    assert.equal(await reason, "ping timeout");
    await closed;
    assert.ok(closedAt >= deadline, "closed before pingTimeout elapsed");
    assert.equal(engine.stats.closes["ping timeout"], 1);
    assert.equal(engine.clientsCount, 0);
  });

  it("keeps a raw websocket client that answers every ping", async () => {
    const { port, engine } = await startEngine(scope, LENIENT);
    const session = nextSession(engine);
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    const s = await session;
    parseOpen(String(await ws.next()));
    let beats = 0;
    s.on("heartbeat", () => beats++);
    // Five full ping/pong rounds: well past pingInterval + pingTimeout.
    for (let i = 0; i < 5; i++) {
      assert.equal(await ws.next(), "2");
      ws.ws.send("3");
    }
    await waitFor(() => beats === 5, 1000, "5 heartbeats");
    assert.equal(s.readyState, "open");
    assert.equal(engine.stats.closes["ping timeout"], undefined);
  });

  it("keeps engine.io-client sessions alive on both transports", async () => {
    const { url, engine } = await startEngine(scope, LENIENT);
    const ws = await openClient(scope, url, { transports: ["websocket"] });
    const polling = await openClient(scope, url, { transports: ["polling"] });
    let beats = 0;
    for (const s of engine.sessions.values()) s.on("heartbeat", () => beats++);
    await waitFor(() => beats >= 8, 3000, "8 heartbeats");
    assert.equal(engine.clientsCount, 2);
    await roundTrip(ws);
    await roundTrip(polling);
  });

  it('closes a polling session that stops polling with "ping timeout"', async () => {
    const { port, engine } = await startEngine(scope, FAST);
    const session = nextSession(engine);
    const hs = await pollingHandshake(port);
    const s = await session;
    assert.equal(s.id, hs.sid);
    assert.equal(await closeReason(s, 2000), "ping timeout");
    assert.equal(engine.sessions.has(hs.sid), false);
  });
});
