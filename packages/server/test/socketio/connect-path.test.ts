/**
 * The namespace CONNECT path: the reply's exact bytes, namespaces without middleware
 * (joined synchronously), sync and async middleware running in order, refusals,
 * repeated and concurrent CONNECTs on one engine connection.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import {
  client,
  connect,
  connectError,
  quietPeriod,
  rawClient,
  Scope,
  startServer,
  TRANSPORT_MODES,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const WS = TRANSPORT_MODES[0]!;

describe("CONNECT path", () => {
  it("replies with the socket id, for the main and a named namespace", async () => {
    const srv = await startServer(scope);
    const seen: Socket[] = [];
    const events: string[] = [];
    srv.io.on("connection", (s) => {
      assert.equal(s.connected, true);
      seen.push(s);
    });
    srv.io.of("/chat").on("connect", () => events.push("connect"));
    srv.io.of("/chat").on("connection", (s) => {
      events.push("connection");
      seen.push(s);
    });
    const raw = await rawClient(scope, srv.port);
    raw.send("40");
    assert.equal(await raw.next(), `40{"sid":"${seen[0]!.id}"}`);
    raw.send("40/chat,");
    assert.equal(await raw.next(), `40/chat,{"sid":"${seen[1]!.id}"}`);
    assert.deepEqual(events, ["connect", "connection"]);
    assert.equal(srv.io.of("/chat").sockets.get(seen[1]!.id), seen[1]);
    // A repeated CONNECT is ignored and counted.
    raw.send("40/chat,");
    await quietPeriod(50);
    assert.equal(raw.queued.length, 0);
    assert.equal(seen.length, 2);
    assert.equal(srv.io.stats.unexpectedPackets, 1);
  });

  it("sync and async middleware run in order; each kind of failure refuses", async () => {
    const srv = await startServer(scope);
    const order: string[] = [];
    const nsp = srv.io.of("/guarded");
    nsp.use((socket, next) => {
      order.push("sync1");
      if (socket.handshake.auth.fail === "sync") next(new Error("sync no"));
      else next();
    });
    nsp.use((socket, next) => {
      order.push("async");
      setTimeout(() => {
        if (socket.handshake.auth.fail === "async") {
          next(Object.assign(new Error("async no"), { data: { code: 7 } }));
        } else next();
      }, 5);
    });
    nsp.use((socket, next) => {
      order.push("sync2");
      if (socket.handshake.auth.fail === "throw") throw new Error("thrown");
      next();
    });
    let connections = 0;
    nsp.on("connection", () => {
      order.push("connection");
      connections++;
    });
    const url = `${srv.url}/guarded`;

    const e1 = await connectError(client(scope, url, { ...WS.opts, auth: { fail: "sync" } }));
    assert.equal(e1.message, "sync no");
    assert.deepEqual(order.splice(0), ["sync1"]);

    const e2 = await connectError(client(scope, url, { ...WS.opts, auth: { fail: "async" } }));
    assert.equal(e2.message, "async no");
    assert.deepEqual(e2.data, { code: 7 });
    assert.deepEqual(order.splice(0), ["sync1", "async"]);

    const e3 = await connectError(client(scope, url, { ...WS.opts, auth: { fail: "throw" } }));
    assert.equal(e3.message, "thrown");
    assert.deepEqual(order.splice(0), ["sync1", "async", "sync2"]);

    const ok = await connect(scope, url, WS.opts);
    assert.equal(ok.connected, true);
    assert.deepEqual(order.splice(0), ["sync1", "async", "sync2", "connection"]);
    assert.equal(connections, 1);
    assert.equal(nsp.sockets.size, 1);
    assert.equal(srv.io.stats.connectRefusals, 3);
  });

  it("a refused CONNECT may be retried on the same engine connection", async () => {
    const srv = await startServer(scope);
    let allow = false;
    srv.io.of("/door").use((_socket, next) => next(allow ? undefined : new Error("closed")));
    const raw = await rawClient(scope, srv.port);
    raw.send("40/door,");
    assert.equal(await raw.next(), '44/door,{"message":"closed"}');
    allow = true;
    raw.send("40/door,");
    assert.match(String(await raw.next()), /^40\/door,\{"sid":"[\w-]{20}"\}$/);
  });

  it("several namespaces may be pending at once; a CONNECT repeated while pending is ignored", async () => {
    const srv = await startServer(scope);
    const release: (() => void)[] = [];
    for (const name of ["/a", "/b", "/c"]) {
      srv.io.of(name).use((_socket, next) => {
        release.push(() => next());
      });
    }
    const raw = await rawClient(scope, srv.port);
    raw.send("40/a,");
    raw.send("40/b,");
    raw.send("40/c,");
    raw.send("40/b,");
    await quietPeriod(50);
    assert.equal(release.length, 3);
    assert.equal(srv.io.stats.unexpectedPackets, 1);
    // Settled out of order.
    release[1]!();
    assert.match(String(await raw.next()), /^40\/b,\{"sid":/);
    release[2]!();
    assert.match(String(await raw.next()), /^40\/c,\{"sid":/);
    release[0]!();
    assert.match(String(await raw.next()), /^40\/a,\{"sid":/);
    // Joined now: a further CONNECT to each is ignored, the main namespace still joins.
    raw.send("40/a,");
    raw.send("40/c,");
    raw.send("40");
    assert.match(String(await raw.next()), /^40\{"sid":/);
    assert.equal(srv.io.stats.unexpectedPackets, 3);
    for (const name of ["/a", "/b", "/c", "/"]) assert.equal(srv.io.of(name).sockets.size, 1);
  });
});
