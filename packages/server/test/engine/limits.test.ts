/**
 * Inbound and outbound bounds: `maxHttpBufferSize` on both transports (refused before
 * the body is read when the size is declared), and `maxBufferedBytes` against slow
 * readers ("slow consumer", volatile drops). A healthy session stays unaffected.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Session } from "@switchyard/server";
import type { Socket as ClientSocket } from "engine.io-client";
import {
  assertEngineError,
  closeReason,
  enginePath,
  nextSession,
  openClient,
  openWebSocket,
  parseOpen,
  pollingHandshake,
  pollingSession as pollingSessionOf,
  pollPost,
  rawConnect,
  rawWebSocket,
  readUntil,
  request,
  roundTrip,
  Scope,
  startEngine,
  type TestServer,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

const MAX = 10_000;

describe("maxHttpBufferSize", () => {
  let srv: TestServer;
  let healthyWs: ClientSocket;
  let healthyPolling: ClientSocket;

  before(async () => {
    srv = await startEngine(scope, { maxHttpBufferSize: MAX });
    healthyWs = await openClient(scope, srv.url, { transports: ["websocket"] });
    healthyPolling = await openClient(scope, srv.url, { transports: ["polling"] });
  });

  async function stillHealthy(): Promise<void> {
    await roundTrip(healthyWs);
    await roundTrip(healthyPolling);
  }

  function pollingSession() {
    return pollingSessionOf(srv);
  }

  it("accepts a polling body of exactly the limit", async () => {
    const { sid, session } = await pollingSession();
    const got: unknown[] = [];
    session.on("message", (d: unknown) => got.push(d));
    const body = `4${"a".repeat(MAX - 1)}`;
    assert.equal(Buffer.byteLength(body), MAX);
    const res = await pollPost(srv.port, sid, body);
    assert.equal(res.status, 200);
    assert.deepEqual(got, ["a".repeat(MAX - 1)]);
    await stillHealthy();
  });

  it("refuses a declared oversize POST with 413 before reading the body", async () => {
    const { sid, session } = await pollingSession();
    const reason = closeReason(session);
    const socket = await rawConnect(scope, srv.port);
    // Headers only: the answer must come without a byte of the body.
    socket.write(
      `POST ${enginePath({ EIO: "4", transport: "polling", sid })} HTTP/1.1\r\n` +
        `Host: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${100 * MAX}\r\n\r\n`,
    );
    const answer = await readUntil(socket, (t) => t.includes("\r\n\r\n"));
    assert.match(answer, /^HTTP\/1\.1 413 /);
    assert.equal(await reason, "payload too large");
    assert.equal(srv.engine.stats.closes["payload too large"], 1);
    await stillHealthy();
  });

  it("refuses a declared oversize handshake POST without reading it", async () => {
    const socket = await rawConnect(scope, srv.port);
    socket.write(
      `POST ${enginePath({ EIO: "4", transport: "polling" })} HTTP/1.1\r\n` +
        `Host: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n`,
    );
    const answer = await readUntil(socket, (t) => t.includes('"code":2'));
    assert.match(answer, /^HTTP\/1\.1 400 /);
    await stillHealthy();
  });

  it('closes the session when a chunked body grows past the limit ("payload too large")', async () => {
    const { sid, session } = await pollingSession();
    const reason = closeReason(session);
    const socket = await rawConnect(scope, srv.port);
    socket.write(
      `POST ${enginePath({ EIO: "4", transport: "polling", sid })} HTTP/1.1\r\n` +
        `Host: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    let answer = "";
    socket.on("data", (c: Buffer) => {
      answer += c.toString();
    });
    const chunk = "4".padEnd(1000, "b");
    // Bounded: at most 50 chunks (5x the limit), stop as soon as the server answers.
    for (let i = 0; i < 50 && answer === "" && !socket.destroyed; i++) {
      socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(await reason, "payload too large");
    await waitFor(() => answer !== "" || socket.destroyed, 3000, "an answer or a closed socket");
    if (answer !== "") assert.match(answer, /^HTTP\/1\.1 413 /);
    await stillHealthy();
  });

  it("accepts a websocket message of exactly the limit", async () => {
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const session = await next;
    parseOpen(String(await ws.next()));
    const got: unknown[] = [];
    session.on("message", (d: unknown) => got.push(d));
    ws.ws.send(`4${"c".repeat(MAX - 1)}`);
    await waitFor(() => got.length === 1, 3000, "the message");
    assert.equal(session.readyState, "open");
  });

  it('closes a websocket session whose message exceeds the limit ("payload too large")', async () => {
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const session = await next;
    const reason = closeReason(session);
    ws.ws.send(`4${"c".repeat(MAX)}`);
    assert.equal(await reason, "payload too large");
    await stillHealthy();
  });

  it("refuses oversize binary on websocket too", async () => {
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const session = await next;
    const reason = closeReason(session);
    ws.ws.send(Buffer.alloc(MAX + 1));
    assert.equal(await reason, "payload too large");
    await stillHealthy();
  });
});

describe("bounded outbound buffer", () => {
  const BUDGET = 256 * 1024;
  const CHUNK = Buffer.alloc(16 * 1024, 0x61).toString();
  let srv: TestServer;
  let healthy: ClientSocket;

  before(async () => {
    srv = await startEngine(scope, { maxBufferedBytes: BUDGET, pingInterval: 60_000 });
    healthy = await openClient(scope, srv.url, { transports: ["websocket"] });
  });

  /** A WebSocket session whose client completed the handshake and then stopped reading. */
  async function stalledWebSocket(): Promise<Session> {
    const next = nextSession(srv.engine);
    const socket = await rawWebSocket(scope, srv.port, "EIO=4&transport=websocket");
    socket.pause();
    return next;
  }

  it('closes a websocket session that does not read with "slow consumer"', async () => {
    const session = await stalledWebSocket();
    const reason = closeReason(session);
    let sent = 0;
    // Bounded: 4000 x 16 KiB = 64 MiB at most, far past any loopback socket buffer.
    for (let i = 0; i < 4000 && session.readyState === "open"; i++) {
      if (session.send(CHUNK)) sent++;
    }
    assert.equal(await reason, "slow consumer");
    // Frames of one tick stay corked in user space, so at least a full budget's worth
    // (each message is CHUNK plus its packet type byte) is accepted before the cut.
    assert.ok(
      sent >= Math.floor(BUDGET / (CHUNK.length + 1)),
      `only ${sent} messages were accepted`,
    );
    assert.equal(srv.engine.stats.closes["slow consumer"], 1);
    assert.equal(session.send("after"), false);
    await roundTrip(healthy);
  });

  it("drops volatile messages instead of closing, and counts them", async () => {
    const session = await stalledWebSocket();
    const droppedBefore = srv.engine.stats.droppedVolatile;
    let dropped = 0;
    for (let i = 0; i < 4000 && dropped < 10; i++) {
      if (!session.send(CHUNK, { volatile: true })) dropped++;
    }
    assert.equal(dropped, 10);
    assert.equal(srv.engine.stats.droppedVolatile - droppedBefore, 10);
    assert.equal(session.readyState, "open");
    // A regular message still hits the budget and closes the session.
    const reason = closeReason(session);
    for (let i = 0; i < 4000 && session.readyState === "open"; i++) session.send(CHUNK);
    assert.equal(await reason, "slow consumer");
    await roundTrip(healthy);
  });

  it('closes a polling session that never polls with "slow consumer"', async () => {
    const next = nextSession(srv.engine);
    await pollingHandshake(srv.port);
    const session = await next;
    const reason = closeReason(session);
    // Volatile: nobody is polling, so nothing is queued at all.
    assert.equal(session.send("v", { volatile: true }), false);
    let accepted = 0;
    for (let i = 0; i < 100 && session.readyState === "open"; i++) {
      if (session.send(CHUNK)) accepted++;
    }
    assert.equal(await reason, "slow consumer");
    // Each packet also counts its type byte, so one chunk less than BUDGET / CHUNK fits.
    assert.ok(
      accepted >= BUDGET / CHUNK.length - 1 && accepted <= BUDGET / CHUNK.length,
      `${accepted}`,
    );
    await roundTrip(healthy);
  });

  it("delivers what fits the budget to a polling client that comes back", async () => {
    const next = nextSession(srv.engine);
    const hs = await pollingHandshake(srv.port);
    const session = await next;
    for (let i = 0; i < 3; i++) assert.equal(session.send(`queued${i}`), true);
    const res = await request(
      srv.port,
      enginePath({ EIO: "4", transport: "polling", sid: hs.sid }),
    );
    assert.equal(res.body, "4queued0\x1e4queued1\x1e4queued2");
    assert.equal(session.readyState, "open");
  });

  it("refuses requests beyond the budget with clean errors, not crashes", async () => {
    const res = await request(srv.port, enginePath({ EIO: "4", transport: "polling", sid: "x" }));
    assertEngineError(res, 400, 1);
  });
});
