/**
 * What the idle-memory work changed in representation must not change in behaviour:
 * handshake fields and `socket.data` built on first read, one connection holding sockets
 * of several namespaces without a Map, the own-id room Set shared between the adapter's
 * two maps, and socket ids drawn from the pooled CSPRNG.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import { randomId } from "../../src/engine/session-id.js";
import { once, pair, rawClient, Scope, startServer, TRANSPORT_MODES } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());
const WS = TRANSPORT_MODES[0]!;

describe("idle memory: lazy fields", () => {
  it("handshake.auth, query and time are built once, assignable, and serialized", async () => {
    const srv = await startServer(scope);
    const raw = await rawClient(scope, srv.port);
    const conn = once<[Socket]>(srv.io, "connection");
    raw.send("40");
    const [socket] = await conn;
    const h = socket.handshake;
    assert.deepEqual(h.auth, {}, "no CONNECT payload reads as {}");
    assert.equal(h.auth, h.auth, "the same object on every read");
    h.auth.added = 1;
    assert.deepEqual(h.auth, { added: 1 });
    assert.equal(h.query, h.query);
    assert.equal(h.query.EIO, "4");
    assert.equal(h.time, new Date(h.issued).toString());
    const json = JSON.parse(JSON.stringify(h)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json).sort(), [
      "address",
      "auth",
      "headers",
      "issued",
      "query",
      "secure",
      "time",
      "url",
      "xdomain",
    ]);
    assert.deepEqual(json.auth, { added: 1 });
    assert.equal((json.query as Record<string, string>).transport, "websocket");
    h.auth = { replaced: true };
    assert.deepEqual(h.auth, { replaced: true });
    h.query = { q: "1" };
    assert.deepEqual(h.query, { q: "1" });
    assert.equal(socket.data, socket.data, "data: the same object on every read");
    (socket.data as Record<string, unknown>).x = 1;
    assert.deepEqual(socket.data, { x: 1 });
  });

  it("a CONNECT payload is handshake.auth itself", async () => {
    const srv = await startServer(scope);
    const { socket } = await pair(scope, srv, WS, { auth: { token: "t" } });
    assert.deepEqual(socket.handshake.auth, { token: "t" });
  });
});

describe("idle memory: several namespaces on one connection", () => {
  it("routes by namespace after the first socket leaves and comes back", async () => {
    const srv = await startServer(scope);
    const admin = srv.io.of("/admin");
    const raw = await rawClient(scope, srv.port);
    const main = once<[Socket]>(srv.io, "connection");
    raw.send("40");
    const [first] = await main;
    const adm = once<[Socket]>(admin, "connection");
    raw.send("40/admin,");
    const [second] = await adm;
    await raw.next((m) => String(m).startsWith("40/admin,"));
    const gotAdmin = once(second, "ping-admin");
    raw.send('42/admin,["ping-admin",1]');
    assert.deepEqual(await gotAdmin, [1]);
    // The first namespace's socket leaves; the other keeps receiving.
    const gone = once(first, "disconnect");
    raw.send("41");
    await gone;
    const again = once(second, "ping-admin");
    raw.send('42/admin,["ping-admin",2]');
    assert.deepEqual(await again, [2]);
    // And "/" may be joined again on the same connection.
    const back = once<[Socket]>(srv.io, "connection");
    raw.send("40");
    const [third] = await back;
    assert.notEqual(third.id, first.id);
    const got = once(third, "hello");
    raw.send('42["hello"]');
    await got;
    // Closing the session disconnects both.
    const d1 = once(third, "disconnect");
    const d2 = once(second, "disconnect");
    raw.ws.close();
    await Promise.all([d1, d2]);
    assert.equal(srv.io.engine.clientsCount, 0);
  });
});

describe("idle memory: the own-id room", () => {
  it("reads as separate Sets in adapter.rooms and adapter.sids through joins and leaves", async () => {
    const srv = await startServer(scope);
    const adapter = srv.io.of("/").adapter;
    const events: string[] = [];
    for (const ev of ["create-room", "join-room", "leave-room", "delete-room"]) {
      adapter.on(ev, (room: string, id?: string) => events.push(`${ev} ${room} ${id ?? ""}`));
    }
    const a = (await pair(scope, srv, WS)).socket;
    const bp = await pair(scope, srv, WS);
    const b = bp.socket;
    assert.deepEqual([...a.rooms], [a.id]);
    assert.deepEqual([...adapter.rooms.get(a.id)!], [a.id]);
    assert.deepEqual([...adapter.sids.get(a.id)!], [a.id]);
    assert.ok(events.includes(`create-room ${a.id} `));
    assert.ok(events.includes(`join-room ${a.id} ${a.id}`));

    await a.join("r");
    assert.deepEqual([...a.rooms], [a.id, "r"]);
    assert.deepEqual([...adapter.rooms.get(a.id)!], [a.id], "a's own room did not gain 'r'");
    assert.deepEqual([...adapter.rooms.get("r")!], [a.id]);

    // b joins a's own room: a's rooms do not change, a's own room gains b.
    await b.join(a.id);
    assert.deepEqual([...adapter.rooms.get(a.id)!].sort(), [a.id, b.id].sort());
    assert.deepEqual([...a.rooms], [a.id, "r"]);
    assert.deepEqual([...b.rooms], [b.id, a.id]);
    assert.deepEqual([...adapter.sids.get(b.id)!], [b.id, a.id]);
    assert.deepEqual([...adapter.rooms.get(b.id)!], [b.id]);

    // b leaves its own room: its rooms and its room's members both change.
    await b.leave(b.id);
    assert.deepEqual([...b.rooms], [a.id]);
    assert.equal(adapter.rooms.has(b.id), false);
    assert.ok(events.includes(`delete-room ${b.id} `));

    // Broadcasts to a's id reach b, which joined it.
    const ev = once(bp.client, "x");
    srv.io.to(a.id).emit("x", 1);
    assert.deepEqual(await ev, [1]);
    // A socket only in its own room disconnects cleanly.
    const c = await pair(scope, srv, WS);
    const cid = c.socket.id;
    events.length = 0;
    const gone = once(c.socket, "disconnect");
    c.client.disconnect();
    await gone;
    assert.deepEqual(events, [`leave-room ${cid} ${cid}`, `delete-room ${cid} `]);
    assert.equal(adapter.rooms.has(cid), false);
    assert.equal(adapter.sids.has(cid), false);
  });

  it("leaves no trace in either map once every socket is gone", async () => {
    const srv = await startServer(scope);
    const adapter = srv.io.of("/").adapter;
    const x = await pair(scope, srv, WS);
    const y = await pair(scope, srv, WS);
    await x.socket.join(["r", y.socket.id]);
    await y.socket.join(x.socket.id);
    await y.socket.leave(y.socket.id);
    await y.socket.join(y.socket.id);
    const gone = Promise.all([once(x.socket, "disconnect"), once(y.socket, "disconnect")]);
    x.client.disconnect();
    y.client.disconnect();
    await gone;
    assert.equal(adapter.rooms.size, 0);
    assert.equal(adapter.sids.size, 0);
  });
});

describe("socket ids", () => {
  it("are 20 base64url characters and unique across pool refills", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = randomId();
      assert.match(id, /^[\w-]{20}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 5000);
  });
});
