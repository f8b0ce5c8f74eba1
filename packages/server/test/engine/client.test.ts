/**
 * The engine against the real `engine.io-client`: every transport path, binary both
 * ways, and both directions of closing.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Session } from "@switchyard/server";
import type { Socket as ClientSocket } from "engine.io-client";
import {
  closeReason,
  nextSession,
  once,
  openClient,
  roundTrip,
  Scope,
  startEngine,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

/** Collects a client's messages. */
function inbox(socket: ClientSocket): unknown[] {
  const got: unknown[] = [];
  socket.on("message", (d: unknown) => got.push(d));
  return got;
}

describe("engine.io-client", () => {
  it("connects over websocket only and exchanges text both ways", async () => {
    const { url, engine } = await startEngine(scope);
    const session = nextSession(engine);
    const client = await openClient(scope, url, { transports: ["websocket"] });
    const s = await session;
    assert.equal(client.transport.name, "websocket");
    assert.equal(s.transport.name, "websocket");
    assert.equal(s.id, client.id);
    assert.equal(s.upgraded, true);
    await roundTrip(client);
    const received = once<[string]>(client, "message");
    s.send("from server");
    assert.deepEqual(await received, ["from server"]);
  });

  it("connects over polling only and keeps message order", async () => {
    const { url, engine } = await startEngine(scope, {}, { echo: false });
    const session = nextSession(engine);
    const client = await openClient(scope, url, { transports: ["polling"] });
    const s = await session;
    assert.equal(client.transport.name, "polling");
    assert.equal(s.transport.name, "polling");
    const got = inbox(client);
    for (let i = 0; i < 20; i++) s.send(`m${i}`);
    await waitFor(() => got.length === 20, 3000, "20 messages");
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    const fromClient: unknown[] = [];
    s.on("message", (d: unknown) => fromClient.push(d));
    for (let i = 0; i < 20; i++) client.send(`c${i}`);
    await waitFor(() => fromClient.length === 20, 3000, "20 client messages");
    assert.deepEqual(
      fromClient,
      Array.from({ length: 20 }, (_, i) => `c${i}`),
    );
  });

  it("upgrades from polling to websocket without losing messages", async () => {
    const { url, engine } = await startEngine(scope, {}, { echo: false });
    const session = nextSession(engine);
    const client = await openClient(scope, url);
    const s = await session;
    assert.equal(client.transport.name, "polling");
    const got = inbox(client);
    const serverUpgrade = once(s, "upgrade");
    const clientUpgrade = once(client, "upgrade");
    // Messages sent while the upgrade is in flight must arrive once and in order.
    for (let i = 0; i < 10; i++) s.send(`before${i}`);
    await Promise.all([serverUpgrade, clientUpgrade]);
    for (let i = 0; i < 10; i++) s.send(`after${i}`);
    assert.equal(client.transport.name, "websocket");
    assert.equal(s.transport.name, "websocket");
    assert.equal(s.upgraded, true);
    assert.equal(engine.stats.upgrades, 1);
    await waitFor(() => got.length === 20, 3000, "20 messages");
    assert.deepEqual(got, [
      ...Array.from({ length: 10 }, (_, i) => `before${i}`),
      ...Array.from({ length: 10 }, (_, i) => `after${i}`),
    ]);
    const back = once<[unknown]>(s, "message");
    client.send("over ws");
    assert.deepEqual(await back, ["over ws"]);
  });

  for (const transport of ["websocket", "polling"] as const) {
    it(`carries binary both ways over ${transport} (Buffer and Uint8Array)`, async () => {
      const { url, engine } = await startEngine(scope, {}, { echo: false });
      const session = nextSession(engine);
      const client = await openClient(scope, url, { transports: [transport] });
      const s = await session;
      const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);

      const atServer = once<[unknown]>(s, "message");
      client.send(bytes);
      const [fromClient] = await atServer;
      assert.ok(Buffer.isBuffer(fromClient), "server receives a Buffer");
      assert.deepEqual(fromClient, bytes);

      const got = inbox(client);
      assert.equal(s.send(bytes), true);
      assert.equal(s.send(new Uint8Array([9, 8, 7])), true);
      const view = new Uint8Array(new Uint8Array([0xaa, 1, 2, 3, 0xbb]).buffer, 1, 3);
      assert.equal(s.send(view), true);
      await waitFor(() => got.length === 3, 3000, "three binary messages");
      const asBytes = got.map((d) => (Buffer.isBuffer(d) ? [...d] : d));
      assert.deepEqual(asBytes, [[...bytes], [9, 8, 7], [1, 2, 3]]);
    });
  }

  for (const transport of ["websocket", "polling"] as const) {
    it(`session.close() closes the ${transport} client after flushing what was queued`, async () => {
      const { url, engine } = await startEngine(scope, { perMessageDeflate: { threshold: 0 } });
      const session = nextSession(engine);
      const client = await openClient(scope, url, { transports: [transport] });
      const s: Session = await session;
      const got = inbox(client);
      const clientClosed = once<[string]>(client, "close");
      const serverReason = closeReason(s);
      s.send("last words 1");
      s.send("last words 2");
      s.close();
      const [reason] = await clientClosed;
      assert.equal(reason, "transport close");
      assert.equal(await serverReason, "forced close");
      assert.deepEqual(got, ["last words 1", "last words 2"]);
      assert.equal(engine.clientsCount, 0);
      assert.equal(engine.stats.closes["forced close"], 1);
    });
  }

  for (const transport of ["websocket", "polling"] as const) {
    it(`client.close() over ${transport} closes the session with "transport close"`, async () => {
      const { url, engine } = await startEngine(scope);
      const session = nextSession(engine);
      const client = await openClient(scope, url, { transports: [transport] });
      const s = await session;
      const reason = closeReason(s);
      client.close();
      assert.equal(await reason, "transport close");
      assert.equal(engine.clientsCount, 0);
      assert.equal(s.readyState, "closed");
      assert.equal(s.send("too late"), false);
    });
  }
});
