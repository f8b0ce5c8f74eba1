/**
 * The WebSocket transport: framing of text and binary both ways, base64 binary from
 * `forceBase64` clients, and a peer that vanishes without a close frame.
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
  rawWsSession,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

describe("websocket transport", () => {
  it("sends text as text frames and binary as raw binary frames", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const s = await next;
    parseOpen(String(await ws.next()));
    s.send("txt");
    s.send(Buffer.from([7, 8]));
    assert.equal(await ws.next(), "4txt");
    assert.deepEqual(await ws.next(), Buffer.from([7, 8]));
  });

  it("accepts binary as raw frames and as b<base64> text", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const s = await next;
    const got: unknown[] = [];
    s.on("message", (d: unknown) => got.push(d));
    ws.ws.send(Buffer.from([1, 2]));
    ws.ws.send("bAwQ=");
    await waitFor(() => got.length === 2, 1000, "two messages");
    assert.deepEqual(got, [Buffer.from([1, 2]), Buffer.from([3, 4])]);
  });

  it("works with a forceBase64 engine.io-client", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const next = nextSession(srv.engine);
    const client = await openClient(scope, srv.url, {
      transports: ["websocket"],
      forceBase64: true,
    });
    const s = await next;
    const got = once<[unknown]>(s, "message");
    client.send(Buffer.from([5, 6, 7]));
    assert.deepEqual(await got, [Buffer.from([5, 6, 7])]);
  });

  it('a peer that vanishes without a close frame ends the session with "transport close"', async () => {
    const srv = await startEngine(scope);
    const { socket, session } = await rawWsSession(scope, srv);
    const reason = closeReason(session);
    socket.destroy();
    assert.equal(await reason, "transport close");
  });
});
