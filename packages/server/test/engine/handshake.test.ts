/**
 * The handshake (its fields and the session id format) and the spec's error answers
 * over raw HTTP, with their counters and `connection_error` events.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { type ConnectionError, EngineErrorCode, sessionNode } from "@switchyard/server";
import {
  assertEngineError,
  enginePath,
  once,
  openWebSocket,
  parseOpen,
  poll,
  pollingHandshake,
  rawExchange,
  request,
  Scope,
  startEngine,
  upgradeRequest,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

const SID = /^([A-Za-z0-9_-]{1,16})~([A-Za-z0-9_-]{20})$/;

describe("handshake", () => {
  it("answers a polling handshake with sid, upgrades, heartbeat and maxPayload", async () => {
    const { port, engine } = await startEngine(scope, {
      nodeId: "node-a",
      pingInterval: 1234,
      pingTimeout: 567,
      maxHttpBufferSize: 4321,
    });
    const res = await request(port, enginePath({ EIO: "4", transport: "polling" }));
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain/);
    const hs = parseOpen(res.body);
    assert.deepEqual(hs.upgrades, ["websocket"]);
    assert.equal(hs.pingInterval, 1234);
    assert.equal(hs.pingTimeout, 567);
    assert.equal(hs.maxPayload, 4321);
    const m = SID.exec(hs.sid);
    assert.ok(m, `sid ${hs.sid} has the <nodeId>~<20 chars> form`);
    assert.equal(m[1], "node-a");
    assert.equal(sessionNode(hs.sid), "node-a");
    assert.ok(engine.sessions.has(hs.sid));
    assert.equal(engine.stats.handshakes, 1);
  });

  it("answers a websocket handshake with no upgrades", async () => {
    const { port } = await startEngine(scope, { nodeId: "wsnode" });
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    const first = await ws.next();
    assert.equal(typeof first, "string");
    const hs = parseOpen(String(first));
    assert.deepEqual(hs.upgrades, []);
    assert.equal(sessionNode(hs.sid), "wsnode");
  });

  it("generates unique ids carrying at least 120 random bits", async () => {
    const { port, engine } = await startEngine(scope, { nodeId: "n1" });
    const ids = new Set<string>();
    // Bounded: 200 handshakes in batches of 20.
    for (let batch = 0; batch < 10; batch++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => pollingHandshake(port)));
      for (const hs of answers) ids.add(hs.sid);
    }
    assert.equal(ids.size, 200);
    assert.equal(engine.clientsCount, 200);
    const alphabet = new Set<string>();
    for (const id of ids) {
      const m = SID.exec(id);
      assert.ok(m, id);
      // 20 base64url characters = 120 bits.
      assert.equal(Buffer.from(m[2]!, "base64url").length, 15);
      for (const c of m[2]!) alphabet.add(c);
    }
    // 4000 random characters from a 64-symbol alphabet cover nearly all of it.
    assert.ok(alphabet.size > 56, `only ${alphabet.size} distinct characters`);
  });

  it("sessionNode() rejects strings that are not session ids", () => {
    assert.equal(sessionNode("abc"), undefined);
    assert.equal(sessionNode("~AAAAAAAAAAAAAAAAAAAA"), undefined);
    assert.equal(sessionNode("n~short"), undefined);
    assert.equal(sessionNode("n~AAAAAAAAAAAAAAAAAAAAA"), undefined);
    assert.equal(sessionNode("n~AAAAAAAAAAAAAAAAAAAA"), "n");
  });
});

describe("error answers", () => {
  async function expectError(
    query: Record<string, string>,
    status: number,
    code: number,
    opts: { method?: string; engineOpts?: Parameters<typeof startEngine>[1] } = {},
  ): Promise<ConnectionError> {
    const { port, engine } = await startEngine(scope, opts.engineOpts ?? {});
    const event = once<[ConnectionError]>(engine, "connection_error");
    const res = await request(port, enginePath(query), { method: opts.method ?? "GET" });
    assertEngineError(res, status, code);
    const [err] = await event;
    assert.equal(err.code, code);
    assert.equal(engine.stats.connectionErrors[code], 1);
    assert.equal(engine.clientsCount, 0);
    return err;
  }

  it("code 0: unknown transport", async () => {
    const err = await expectError({ EIO: "4", transport: "carrier-pigeon" }, 400, 0);
    assert.equal(err.message, "Transport unknown");
    await expectError({ EIO: "4" }, 400, EngineErrorCode.UNKNOWN_TRANSPORT);
    // Not a transport of ours (engine.io's WebTransport path is a known DoS vector).
    await expectError({ EIO: "4", transport: "webtransport" }, 400, 0);
  });

  it("code 1: unknown sid", async () => {
    const err = await expectError(
      { EIO: "4", transport: "polling", sid: "nope~AAAAAAAAAAAAAAAAAAAA" },
      400,
      1,
    );
    assert.equal(err.message, "Session ID unknown");
  });

  it("code 2: handshake with a method other than GET", async () => {
    await expectError({ EIO: "4", transport: "polling" }, 400, 2, { method: "POST" });
  });

  it("code 3: websocket transport over a plain GET, and a transport mismatch", async () => {
    await expectError({ EIO: "4", transport: "websocket" }, 400, 3);
    const { port, engine } = await startEngine(scope);
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    const hs = parseOpen(String(await ws.next()));
    const res = await poll(port, hs.sid);
    assertEngineError(res, 400, 3);
    assert.equal(engine.stats.connectionErrors[3], 1);
    assert.ok(engine.sessions.has(hs.sid), "a refused request does not end the session");
  });

  it("code 5: EIO missing or not 4", async () => {
    await expectError({ EIO: "3", transport: "polling" }, 400, 5);
    await expectError({ transport: "polling" }, 400, 5);
  });

  it("code 4 (403): allowRequest refuses, or throws", async () => {
    const refused = await expectError({ EIO: "4", transport: "polling" }, 403, 4, {
      engineOpts: { allowRequest: (_req, cb) => cb("not today", false) },
    });
    assert.equal(refused.message, "not today");
    const thrown = await expectError({ EIO: "4", transport: "polling" }, 403, 4, {
      engineOpts: {
        allowRequest: () => {
          throw new Error("secret internal detail");
        },
      },
    });
    // The thrown error stays on the server: the client sees the spec's message.
    assert.equal(thrown.message, "Forbidden");
    assert.ok(thrown.context.error instanceof Error);
  });

  it("allowRequest answering asynchronously (once) is honoured on both transports", async () => {
    let calls = 0;
    const { port } = await startEngine(scope, {
      allowRequest: (req, cb) => {
        calls++;
        setTimeout(() => cb(null, req.headers["x-ok"] === "yes"), 5);
        // A second answer is ignored.
        setTimeout(() => cb(null, true), 10);
      },
    });
    assertEngineError(await request(port, enginePath({ EIO: "4", transport: "polling" })), 403, 4);
    const ok = await request(port, enginePath({ EIO: "4", transport: "polling" }), {
      headers: { "x-ok": "yes" },
    });
    assert.equal(ok.status, 200);
    const refusedUpgrade = await rawExchange(
      scope,
      port,
      upgradeRequest(new URLSearchParams({ EIO: "4", transport: "websocket" }).toString()),
    );
    assert.match(refusedUpgrade, /^HTTP\/1\.1 403 /);
    assert.equal(calls, 3);
  });

  it("refused upgrades are answered with the same JSON over the raw socket", async () => {
    const { port, engine } = await startEngine(scope);
    const answer = await rawExchange(scope, port, upgradeRequest("EIO=4&transport=polling"));
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /\{"code":0,"message":"Transport unknown"\}$/);
    const noEio = await rawExchange(scope, port, upgradeRequest("transport=websocket"));
    assert.match(noEio, /\{"code":5,"message":"Unsupported protocol version"\}$/);
    assert.equal(engine.stats.connectionErrors[0], 1);
    assert.equal(engine.stats.connectionErrors[5], 1);
  });
});
