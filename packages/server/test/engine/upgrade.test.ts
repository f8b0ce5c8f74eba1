/**
 * The polling → WebSocket upgrade, step by step over raw HTTP and a raw `ws` client:
 * probe, noop to the paused poll, switch, and the paths where the upgrade is abandoned.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  assertEngineError,
  once,
  openWebSocket,
  poll,
  pollingSession,
  pollPost,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

describe("upgrade", () => {
  it("probes, releases the paused poll with a noop, then switches", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    const upgrading = once(s, "upgrading");
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    await upgrading;
    ws.ws.send("2probe");
    assert.equal(await ws.next(), "3probe");
    assert.equal((await pending).body, "6", "the waiting GET is answered with a noop");
    // Queued between probe and switch: must arrive once, over the WebSocket.
    s.send("during");
    const switched = once(s, "upgrade");
    ws.ws.send("5");
    await switched;
    assert.equal(s.transport.name, "websocket");
    assert.equal(srv.engine.stats.upgrades, 1);
    assert.equal(await ws.next(), "4during");
    s.send("after");
    assert.equal(await ws.next(), "4after");
    const got = once<[unknown]>(s, "message");
    ws.ws.send("4up");
    assert.deepEqual(await got, ["up"]);
    // The old transport is done: polling requests are now a mismatch.
    assertEngineError(await poll(srv.port, sid), 400, 3);
  });

  it("answers a paused poll that arrives after the probe with a noop", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    await waitFor(() => !s.canUpgrade(), 1000, "the upgrade to begin");
    ws.ws.send("2probe");
    assert.equal(await ws.next(), "3probe");
    assert.equal((await poll(srv.port, sid)).body, "6");
  });

  it("abandons an upgrade that is not probed in time and keeps polling", async () => {
    const srv = await startEngine(scope, { upgradeTimeout: 50 }, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    await once(ws.ws, "close", 2000);
    assert.ok(s.canUpgrade());
    assert.equal(s.transport.name, "polling");
    const got = once<[unknown]>(s, "message");
    assert.equal((await pollPost(srv.port, sid, "4still")).status, 200);
    assert.deepEqual(await got, ["still"]);
  });

  it("abandons an upgrade packet that was not preceded by a probe", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { session: s } = await pollingSession(srv);
    const ws = await openWebSocket(scope, srv.port, {
      EIO: "4",
      transport: "websocket",
      sid: s.id,
    });
    const closed = once(ws.ws, "close");
    ws.ws.send("5");
    await closed;
    assert.equal(s.transport.name, "polling");
    assert.equal(s.readyState, "open");
    assert.ok(s.canUpgrade());
  });

  it("abandons the upgrade when the session closes meanwhile", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    await waitFor(() => !s.canUpgrade(), 1000, "the upgrade to begin");
    const closed = once(ws.ws, "close");
    s.terminate("test over");
    await closed;
    assert.equal(s.readyState, "closed");
  });
});
