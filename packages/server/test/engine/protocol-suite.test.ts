/**
 * The behaviours the official Engine.IO / Socket.IO protocol suites
 * (`socketio/engine.io-protocol`, `socketio/socket.io-protocol`, `test-suite/`) check
 * and a server can get subtly wrong, in our own words over raw HTTP and raw WebSocket:
 * a silent polling session is gone once pingInterval + pingTimeout have passed, a close
 * packet POSTed while a GET waits ends that GET with a noop, a WebSocket naming a session
 * that cannot upgrade completes its handshake and is then closed (an unknown sid gets
 * HTTP 400), an Engine.IO parse error ends the session at once, and a graceful close
 * for a reason (the Socket.IO layer's parse error) still delivers what was queued.
 */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { after, describe, it } from "node:test";
import type { Session } from "@switchyard/server";
import {
  assertEngineError,
  closeReason,
  HOST,
  nextSession,
  once,
  openWebSocket,
  poll,
  pollingHandshake,
  pollingSession,
  pollPost,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

/** The suites' heartbeat settings. */
const SUITE = { pingInterval: 300, pingTimeout: 200 };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("official protocol suites: heartbeat over polling", () => {
  for (const method of ["GET", "POST"] as const) {
    it(`a session that never pongs is gone when pingInterval + pingTimeout have passed (${method} at that moment)`, async () => {
      const srv = await startEngine(scope, SUITE, { echo: false });
      const next = nextSession(srv.engine);
      const hs = await pollingHandshake(srv.port);
      // The suite's clock starts once the handshake is answered; so does ours.
      const answeredAt = performance.now();
      const s = await next;
      let closedAt = 0;
      s.once("close", () => {
        closedAt = performance.now();
      });
      // The deadline counts from when the ping was due, not from a later tick.
      await waitFor(() => s.pongDeadline > 0, 2000, "the ping");
      assert.ok(
        s.pongDeadline <= answeredAt + SUITE.pingInterval + SUITE.pingTimeout,
        `deadline ${(s.pongDeadline - answeredAt).toFixed(1)} ms after the handshake`,
      );
      await sleep(SUITE.pingInterval + SUITE.pingTimeout);
      const res =
        method === "GET" ? await poll(srv.port, hs.sid) : await pollPost(srv.port, hs.sid, "2");
      assertEngineError(res, 400, 1);
      assert.equal(s.readyState, "closed");
      assert.ok(closedAt >= s.pongDeadline || s.pongDeadline === 0, "never before the deadline");
      assert.equal(srv.engine.stats.closes["ping timeout"], 1);
    });
  }

  it("the heartbeat timer closes a silent session at its deadline, without a request", async () => {
    const srv = await startEngine(scope, SUITE, { echo: false });
    const next = nextSession(srv.engine);
    await pollingHandshake(srv.port);
    const s = await next;
    await waitFor(() => s.pongDeadline > 0, 2000, "the ping");
    const deadline = s.pongDeadline;
    let closedAt = 0;
    s.once("close", () => {
      closedAt = performance.now();
    });
    assert.equal(await closeReason(s, 2000), "ping timeout");
    assert.ok(closedAt >= deadline, "closed before the deadline");
  });

  it("a session that answers its pings stays past pingInterval + pingTimeout", async () => {
    const srv = await startEngine(scope, { pingInterval: 100, pingTimeout: 1500 }, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    for (let i = 0; i < 3; i++) {
      assert.equal((await poll(srv.port, sid)).body, "2");
      assert.equal((await pollPost(srv.port, sid, "3")).status, 200);
    }
    assert.equal(s.readyState, "open");
    assert.equal(srv.engine.stats.closes["ping timeout"], undefined);
  });
});

describe("official protocol suites: close and parse errors over polling", () => {
  it("a close packet POSTed while a GET waits: the GET gets a noop, the next request 400", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    const reason = closeReason(s);
    const post = await pollPost(srv.port, sid, "1");
    assert.equal(post.status, 200);
    assert.equal(post.body, "ok");
    const answered = await pending;
    assert.equal(answered.status, 200);
    assert.equal(answered.body, "6");
    assert.equal(await reason, "transport close");
    assertEngineError(await poll(srv.port, sid), 400, 1);
  });

  it("a close packet with no GET waiting ends the session too", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const reason = closeReason(s);
    assert.equal((await pollPost(srv.port, sid, "4before\x1e1\x1e4after")).status, 200);
    assert.equal(await reason, "transport close");
    assertEngineError(await poll(srv.port, sid), 400, 1);
  });

  it("an Engine.IO parse error ends the session at once: POST 400, then GET 400", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    s.send("queued");
    const reason = closeReason(s);
    assert.equal((await pollPost(srv.port, sid, "abc")).status, 400);
    assert.equal(await reason, "parse error");
    assertEngineError(await poll(srv.port, sid), 400, 1);
  });

  it("a graceful close for a reason delivers what was queued, then the close packet, then 400", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    // What the Socket.IO layer does with a packet it cannot decode: reply queued before
    // it (the CONNECT reply) still goes out, then the session ends for "parse error".
    srv.engine.on("connection", (session: Session) => {
      session.on("message", (data: string) => {
        if (data === "connect") session.send("connected");
        else session.end("parse error", "bad packet from the client");
      });
    });
    const { sid, session: s } = await pollingSession(srv);
    const reason = closeReason(s);
    assert.equal((await pollPost(srv.port, sid, "4connect\x1e4garbage\x1e4ignored")).status, 200);
    assert.equal(s.readyState, "closing");
    assert.equal((await poll(srv.port, sid)).body, "4connected");
    // engine.io's bytes: a noop, then the close packet, when the close waited for a GET.
    assert.equal((await poll(srv.port, sid)).body, "6\x1e1");
    assert.equal(await reason, "parse error");
    assertEngineError(await poll(srv.port, sid), 400, 1);
  });

  it("a graceful close for a reason with a GET waiting answers it at once", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { sid, session: s } = await pollingSession(srv);
    const pending = poll(srv.port, sid);
    await waitFor(() => s.transport.writable, 1000, "the GET to wait");
    const reason = closeReason(s);
    s.end("parse error");
    assert.equal((await pending).body, "1");
    assert.equal(await reason, "parse error");
  });

  it("a graceful close for a reason over WebSocket sends what was queued, then closes", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const s = await next;
    const closed = once<[number]>(ws.ws, "close");
    const reason = closeReason(s);
    s.send("last words");
    s.end("parse error");
    assert.match(String(await ws.next()), /^0\{/);
    assert.equal(await ws.next(), "4last words");
    assert.equal((await closed)[0], 1000);
    assert.equal(await reason, "parse error");
  });
});

describe("official protocol suites: WebSockets naming a session", () => {
  async function upgradedSession() {
    const srv = await startEngine(scope);
    const { sid, session: s } = await pollingSession(srv);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    ws.ws.send("2probe");
    assert.equal(await ws.next(), "3probe");
    const switched = once(s, "upgrade");
    ws.ws.send("5");
    await switched;
    return { srv, sid, s, ws };
  }

  it("a second WebSocket for an upgraded session completes its handshake, then is closed", async () => {
    const { srv, sid, s, ws } = await upgradedSession();
    const second = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    const [code] = await once<[number]>(second.ws, "close");
    assert.equal(code, 1008);
    assert.deepEqual(second.queued, [], "nothing but the close");
    // The session goes on over its own WebSocket.
    assert.equal(s.readyState, "open");
    ws.ws.send("4hello");
    assert.equal(await ws.next(), "4hello");
    // And polling requests naming it are refused.
    assertEngineError(await poll(srv.port, sid), 400, 3);
  });

  it("a second WebSocket while the first is upgrading is closed after its handshake", async () => {
    const srv = await startEngine(scope);
    const { sid, session: s } = await pollingSession(srv);
    const first = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    await waitFor(() => !s.canUpgrade(), 1000, "the first upgrade to begin");
    const second = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket", sid });
    assert.equal((await once<[number]>(second.ws, "close"))[0], 1008);
    // The first upgrade completes.
    first.ws.send("2probe");
    assert.equal(await first.next(), "3probe");
    const switched = once(s, "upgrade");
    first.ws.send("5");
    await switched;
    first.ws.send("4still here");
    assert.equal(await first.next(), "4still here");
  });

  it("a WebSocket naming an unknown session is refused with HTTP 400 before the handshake", async () => {
    const srv = await startEngine(scope);
    const { WebSocket } = await import("ws");
    const ws = scope.add(
      new WebSocket(`ws://${HOST}:${srv.port}/engine.io/?EIO=4&transport=websocket&sid=nope`),
      (w) => w.terminate(),
    );
    ws.on("error", () => {});
    const [, res] = await once<[unknown, IncomingMessage]>(ws, "unexpected-response");
    assert.equal(res.statusCode, 400);
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (c: string) => {
      body += c;
    });
    await once(res, "end");
    assert.deepEqual(JSON.parse(body), { code: 1, message: "Session ID unknown" });
    assert.equal(srv.engine.stats.connectionErrors[1], 1);
  });
});
