/**
 * The long-polling transport over raw HTTP: payload framing both ways, batching, the
 * close packet, heartbeat over polling, and what a GET sees after the session ended.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  assertEngineError,
  closeReason,
  once,
  poll,
  pollingSession,
  pollPost,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

describe("polling transport", () => {
  it("answers a POST with 200 ok and delivers its packets in order, binary as Buffers", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const got: unknown[] = [];
    s.on("message", (d: unknown) => got.push(d));
    const res = await pollPost(srv.port, sid, "4one\x1ebAQID\x1e4two\x1e6\x1e4");
    assert.equal(res.status, 200);
    assert.equal(res.body, "ok");
    assert.match(String(res.headers["content-type"]), /^text\/html/);
    assert.deepEqual(got, ["one", Buffer.from([1, 2, 3]), "two", undefined]);
  });

  it("sends what was queued in one tick as one payload, binary as base64", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    s.send("a");
    s.send(Buffer.from([0xff, 0]));
    s.send("é✓");
    const res = await pending;
    assert.equal(res.body, "4a\x1eb/wA=\x1e4é✓");
    assert.equal(res.headers["content-length"], String(Buffer.byteLength(res.body)));
  });

  it("holds the GET until there is something to send, volatile included", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    assert.equal(s.send("vol", { volatile: true }), true);
    assert.equal((await pending).body, "4vol");
  });

  it("pings over polling and takes the pong from a POST", async () => {
    const srv = await startEngine(scope, { pingInterval: 30, pingTimeout: 500 }, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const ping = await poll(srv.port, sid);
    assert.equal(ping.body, "2");
    const beat = once(s, "heartbeat");
    assert.equal((await pollPost(srv.port, sid, "3")).status, 200);
    await beat;
    assert.equal(s.readyState, "open");
  });

  it("session.close() answers a waiting GET with the close packet", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    const reason = closeReason(s);
    s.close();
    assert.equal((await pending).body, "1");
    assert.equal(await reason, "forced close");
    assertEngineError(await poll(srv.port, sid), 400, 1);
  });

  it("session.close() sends what was queued first and the close packet on the next GET", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    const reason = closeReason(s);
    s.send("bye");
    s.close();
    // Not in one payload: socket.io-client handles messages a tick after decoding them,
    // so a close packet in the same payload would overtake them.
    assert.equal((await pending).body, "4bye");
    assert.equal(s.readyState, "closing");
    // A close that waited for a GET rides it behind a noop (engine.io's bytes).
    assert.equal((await poll(srv.port, sid)).body, "6\x1e1");
    assert.equal(await reason, "forced close");
  });

  it("session.close() without a waiting GET delivers the close packet on the next one", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const reason = closeReason(s);
    s.close();
    assert.equal(s.readyState, "closing");
    assert.equal((await poll(srv.port, sid)).body, "6\x1e1");
    assert.equal(await reason, "forced close");
  });

  it("session.close(true) discards what was queued", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    s.send("never delivered");
    s.close(true);
    assert.equal((await poll(srv.port, sid)).body, "6\x1e1");
  });

  it("a closing session whose client never polls again is closed after a bounded wait", async () => {
    const srv = await startEngine(scope, { pingTimeout: 50 }, { echo: false });
    const { session: s } = await pollingSession(srv);
    const reason = closeReason(s, 2000);
    s.close();
    assert.equal(await reason, "forced close");
    assert.equal(srv.engine.clientsCount, 0);
  });

  it('a client close packet ends the session with "transport close"', async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const reason = closeReason(s);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    assert.equal((await pollPost(srv.port, sid, "1")).status, 200);
    assert.equal(await reason, "transport close");
    // The waiting GET is released with a noop rather than left hanging (engine.io's answer).
    const released = await pending;
    assert.equal(released.status, 200);
    assert.equal(released.body, "6");
  });
});
