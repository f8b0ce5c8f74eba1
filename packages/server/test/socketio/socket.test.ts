/**
 * The server-side `Socket` against the real socket.io-client over each transport path
 * (WebSocket only, polling only, polling → WebSocket): identity and handshake, rooms,
 * emitting with its flags, acks with timeouts, and every disconnect path with the
 * reasons both ends report.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { AckTimeoutError, type Socket } from "@switchyard/server";
import {
  client,
  connect,
  connected,
  freeze,
  httpGet,
  httpRequest,
  once,
  pair,
  quietPeriod,
  reason,
  Scope,
  startServer,
  TRANSPORT_MODES,
  waitFor,
  within,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

for (const mode of TRANSPORT_MODES) {
  describe(`socket over ${mode.name}`, () => {
    it("has its own id, the handshake, data, rooms and the transport", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode, {
        query: { room: "lobby" },
        auth: { token: "t0k" },
        extraHeaders: { "x-test": "yes" },
      });
      assert.equal(socket.id, client.id);
      assert.notEqual(socket.id, socket.conn.id, "socket id must differ from the engine sid");
      assert.equal(client.io.engine.id, socket.conn.id);
      assert.match(socket.id, /^[\w-]{20}$/);
      assert.equal(socket.connected, true);
      assert.equal(socket.disconnected, false);
      assert.equal(
        socket.conn.transport.name,
        mode.upgrade ? "websocket" : mode.opts.transports?.[0],
      );
      const h = socket.handshake;
      assert.equal(h.query.room, "lobby");
      assert.equal(h.query.EIO, "4");
      assert.deepEqual(h.auth, { token: "t0k" });
      // Polling clients send extraHeaders; Node's WebSocket client does too.
      assert.equal(h.headers["x-test"], "yes");
      assert.equal(h.headers.host, `127.0.0.1:${srv.port}`);
      assert.match(h.address, /127\.0\.0\.1$/);
      assert.equal(typeof h.issued, "number");
      assert.ok(Math.abs(Date.now() - h.issued) < 5000);
      assert.equal(h.time, new Date(h.issued).toString());
      assert.match(h.url, /^\/socket\.io\/\?/);
      assert.equal(h.secure, false);
      assert.equal(h.xdomain, false);
      assert.deepEqual([...socket.rooms], [socket.id]);
      assert.deepEqual(socket.data, {});
      socket.data = { user: "ann" };
      const [fetched] = await srv.io.fetchSockets();
      assert.deepEqual(fetched?.data, { user: "ann" });
      assert.equal(srv.io.sockets.sockets.get(socket.id), socket);
    });

    it("emits, sends and receives events with several arguments", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const got = once(client, "hello");
      assert.equal(socket.emit("hello", 1, "two", { three: [3] }, null), true);
      assert.deepEqual(await got, [1, "two", { three: [3] }, null]);
      const msg = once(client, "message");
      socket.send("via send");
      assert.deepEqual(await msg, ["via send"]);
      const up = once(socket, "up");
      client.emit("up", { a: 1 }, [2]);
      assert.deepEqual(await up, [{ a: 1 }, [2]]);
      const m = once(socket, "message");
      client.send("client message");
      assert.deepEqual(await m, ["client message"]);
    });

    it("joins and leaves rooms (string and array) and targets them, excluding the sender", async () => {
      const srv = await startServer(scope);
      const a = await pair(scope, srv, mode);
      const b = await pair(scope, srv, mode);
      const c = await pair(scope, srv, mode);
      await a.socket.join("r1");
      await a.socket.join(["r2", "r3"]);
      await b.socket.join(["r1", "r2"]);
      assert.deepEqual([...a.socket.rooms].sort(), [a.socket.id, "r1", "r2", "r3"].sort());
      assert.deepEqual(
        [...srv.io.sockets.adapter.rooms.get("r1")!].sort(),
        [a.socket.id, b.socket.id].sort(),
      );

      const gotA: unknown[] = [];
      const gotB: unknown[] = [];
      const gotC: unknown[] = [];
      a.client.on("ev", (x: unknown) => gotA.push(x));
      b.client.on("ev", (x: unknown) => gotB.push(x));
      c.client.on("ev", (x: unknown) => gotC.push(x));

      // From a socket: its rooms minus itself.
      a.socket.to("r1").emit("ev", "to-r1");
      a.socket.in(["r2", "r3"]).emit("ev", "in-r2-r3");
      c.socket.except("r2").emit("ev", "c-except-r2");
      c.socket.broadcast.emit("ev", "c-broadcast");
      // A private message to another socket's own room.
      c.socket.to(a.socket.id).emit("ev", "private");
      await waitFor(() => gotB.length === 3 && gotA.length === 2, 3000, "room messages");
      await quietPeriod(50);
      assert.deepEqual(gotA, ["c-broadcast", "private"]);
      assert.deepEqual(gotB, ["to-r1", "in-r2-r3", "c-broadcast"]);
      assert.deepEqual(gotC, []);

      await a.socket.leave("r1");
      assert.equal(a.socket.rooms.has("r1"), false);
      assert.equal(a.socket.rooms.has("r2"), true);
      srv.io.to("r1").emit("ev", "r1-again");
      await waitFor(() => gotB.length === 4, 3000, "r1 message");
      await quietPeriod(50);
      assert.deepEqual(gotA, ["c-broadcast", "private"]);
    });

    it("a client in two targeted rooms receives a broadcast once", async () => {
      const srv = await startServer(scope);
      const a = await pair(scope, srv, mode);
      const b = await pair(scope, srv, mode);
      await a.socket.join(["x", "y"]);
      await b.socket.join("y");
      const gotA: unknown[] = [];
      const gotB: unknown[] = [];
      a.client.on("ev", (v: unknown) => gotA.push(v));
      b.client.on("ev", (v: unknown) => gotB.push(v));
      srv.io.to("x").to("y").emit("ev", 1);
      srv.io.to(["x", "y"]).except("nothing").emit("ev", 2);
      await waitFor(() => gotA.length >= 2 && gotB.length >= 2, 3000, "broadcasts");
      await quietPeriod(50);
      assert.deepEqual(gotA, [1, 2]);
      assert.deepEqual(gotB, [1, 2]);
    });

    it("volatile and compress emits reach a ready client, with the flags passed down", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const seen: { compress: boolean; volatile: boolean }[] = [];
      const conn = socket.conn;
      const original = conn.sendPacket.bind(conn);
      conn.sendPacket = (packet, volatile, compress) => {
        if (packet.type === "message") seen.push({ volatile, compress });
        return original(packet, volatile, compress);
      };
      const got = once(client, "v");
      if (mode.opts.transports?.[0] === "polling" && !mode.upgrade) {
        // A polling client is "ready" only while its GET is pending.
        await waitFor(() => conn.transport.writable, 3000, "a pending poll");
      }
      socket.volatile.emit("v", 1);
      assert.deepEqual(await got, [1]);
      const c1 = once(client, "c");
      socket.compress(false).emit("c", 2);
      assert.deepEqual(await c1, [2]);
      const c2 = once(client, "c");
      socket.emit("c", 3);
      assert.deepEqual(await c2, [3]);
      assert.deepEqual(seen, [
        { volatile: true, compress: true },
        { volatile: false, compress: false },
        { volatile: false, compress: true },
      ]);
      // Flags apply to one emit only.
      const b = once(client, "b");
      socket.compress(false).broadcast.emit("nobody");
      socket.emit("b", 4);
      assert.deepEqual(await b, [4]);
      assert.deepEqual(seen.at(-1), { volatile: false, compress: true });
    });

    it("acks both ways, with timeout() and emitWithAck()", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      client.on("ask", (x: number, cb: (r: number) => void) => cb(x * 2));
      client.on("ignore", () => {});
      const answer = await new Promise((resolve) => socket.emit("ask", 21, resolve));
      assert.equal(answer, 42);
      assert.equal(await within(socket.emitWithAck("ask", 5), 2000, "the ack"), 10);
      assert.equal(await socket.timeout(1000).emitWithAck("ask", 6), 12);
      const [err, value] = await new Promise<unknown[]>((resolve) =>
        socket.timeout(1000).emit("ask", 7, (...args: unknown[]) => resolve(args)),
      );
      assert.equal(err, null);
      assert.equal(value, 14);

      const t0 = Date.now();
      const [timeoutErr] = await new Promise<unknown[]>((resolve) =>
        socket.timeout(50).emit("ignore", (...args: unknown[]) => resolve(args)),
      );
      assert.ok(timeoutErr instanceof Error);
      assert.ok(timeoutErr instanceof AckTimeoutError);
      assert.ok(Date.now() - t0 >= 45);
      await assert.rejects(socket.timeout(50).emitWithAck("ignore"), AckTimeoutError);

      socket.on("sum", (a: number, b: number, cb: (s: number) => void) => cb(a + b));
      assert.equal(await within(client.emitWithAck("sum", 2, 3), 2000, "the ack"), 5);
      assert.equal(await client.timeout(1000).emitWithAck("sum", 4, 5), 9);
    });

    it("disconnect() is seen as 'io server disconnect' / 'server namespace disconnect'", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      await socket.join("room");
      const reasons: string[] = [];
      let roomsAtDisconnecting: string[] = [];
      socket.on("disconnecting", (reason: string) => {
        roomsAtDisconnecting = [...socket.rooms];
        reasons.push(`disconnecting:${reason}`);
      });
      socket.on("disconnect", (reason: string) => reasons.push(`disconnect:${reason}`));
      const clientReason = reason(client);
      socket.disconnect();
      assert.equal(await clientReason, "io server disconnect");
      assert.deepEqual(reasons, [
        "disconnecting:server namespace disconnect",
        "disconnect:server namespace disconnect",
      ]);
      assert.deepEqual(roomsAtDisconnecting.sort(), [socket.id, "room"].sort());
      assert.equal(socket.connected, false);
      assert.equal(socket.rooms.size, 0);
      assert.equal(srv.io.sockets.sockets.has(socket.id), false);
      assert.equal(srv.io.sockets.adapter.rooms.has("room"), false);
      // The engine session stays open: the client may connect again on it.
      assert.equal(socket.conn.readyState, "open");
      const again = once(srv.io, "connection");
      client.connect();
      await again;
      assert.equal(srv.io.engine.clientsCount, 1);
    });

    it("disconnect(true) closes the whole connection", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const other = srv.io.of("/other");
      const otherSide = once<[Socket]>(other, "connection");
      const c2 = client.io.socket("/other");
      c2.connect();
      const [s2] = await otherSide;
      const serverReasons = Promise.all([reason(socket), reason(s2)]);
      const clientReason = reason(client);
      socket.disconnect(true);
      assert.deepEqual(await serverReasons, [
        "server namespace disconnect",
        "server namespace disconnect",
      ]);
      assert.equal(await clientReason, "io server disconnect");
      await waitFor(() => srv.io.engine.clientsCount === 0, 3000, "the session to close");
    });

    it("a client's disconnect() is 'client namespace disconnect'", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const why = reason(socket);
      client.disconnect();
      assert.equal(await why, "client namespace disconnect");
    });

    it("a closed client engine is 'transport close'", async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, mode);
      const why = reason(socket);
      client.io.engine.close();
      assert.equal(await why, "transport close");
    });

    it("a frozen client is 'ping timeout'", async () => {
      const srv = await startServer(scope, { pingInterval: 50, pingTimeout: 100 });
      const { client, socket } = await pair(scope, srv, mode);
      const why = reason(socket);
      freeze(client);
      assert.equal(await why, "ping timeout");
    });
  });
}

describe("socket (transport-independent)", () => {
  it("an event that arrives with the client's DISCONNECT reaches onAny, not the handlers", async () => {
    const srv = await startServer(scope);
    const log: string[] = [];
    srv.io.on("connection", (socket: Socket) => {
      socket.onAny((ev: string) => log.push(`any:${ev}`));
      socket.on("bye", () => log.push(`handler:bye:${socket.connected}`));
      socket.on("disconnect", (r: string) => log.push(`disconnect:${r}`));
    });
    /** A polling session joined to "/"; `post` sends one payload (packets joined by \x1e). */
    const session = async () => {
      const open = await httpGet(srv.port, "/socket.io/?EIO=4&transport=polling");
      const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
      const url = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
      const post = async (...packets: string[]) =>
        assert.equal(
          (await httpRequest(srv.port, url, { method: "POST", body: packets.join("\x1e") })).status,
          200,
        );
      const connectedNow = once(srv.io, "connection");
      await post("40");
      await connectedNow;
      return post;
    };
    // One payload: the event and the DISCONNECT are read together.
    const together = await session();
    await together('42["bye"]', "41");
    await waitFor(() => log.includes("disconnect:client namespace disconnect"), 3000, "disconnect");
    await quietPeriod(50);
    assert.deepEqual(log, ["any:bye", "disconnect:client namespace disconnect"]);

    // Two payloads: the handler runs before the socket leaves.
    log.length = 0;
    const apart = await session();
    await apart('42["bye"]');
    await waitFor(() => log.length === 2, 3000, "the handler");
    await apart("41");
    await waitFor(() => log.length === 3, 3000, "disconnect");
    assert.deepEqual(log, [
      "any:bye",
      "handler:bye:true",
      "disconnect:client namespace disconnect",
    ]);
  });

  it("join() in a middleware takes effect; a refused socket leaves no room behind", async () => {
    const srv = await startServer(scope);
    srv.io.use((socket, next) => {
      void socket.join(["from-middleware", String(socket.handshake.auth.team)]);
      if (socket.handshake.auth.refuse === true) next(new Error("no"));
      else next();
    });
    const refused = connect(scope, srv.url, { auth: { team: "red", refuse: true } });
    await assert.rejects(refused, /no/);
    assert.equal(srv.io.sockets.adapter.rooms.has("red"), false, "refused socket's rooms leaked");
    const side = once<[Socket]>(srv.io, "connection");
    await connect(scope, srv.url, { auth: { team: "blue" } });
    const [socket] = await side;
    assert.deepEqual([...socket.rooms].sort(), [socket.id, "blue", "from-middleware"].sort());
  });

  it("emits from a middleware and from the connection handler arrive after connect, in order", async () => {
    const srv = await startServer(scope);
    srv.io.use((socket, next) => {
      socket.emit("ev", "from-middleware");
      next();
    });
    srv.io.on("connection", (socket: Socket) => socket.emit("ev", "from-connection"));
    for (const mode of TRANSPORT_MODES) {
      const c = client(scope, srv.url, mode.opts);
      const got: string[] = [];
      c.on("ev", (v: string) => got.push(`${c.connected}:${v}`));
      await connected(c);
      await waitFor(() => got.length === 2, 3000, "both events");
      assert.deepEqual(got, ["true:from-middleware", "true:from-connection"], mode.name);
    }
  });

  it("disconnect() inside the connection handler", async () => {
    const srv = await startServer(scope);
    const reasons: string[] = [];
    srv.io.on("connection", (socket: Socket) => {
      socket.on("disconnect", (r: string) => reasons.push(r));
      socket.disconnect();
    });
    const c = client(scope, srv.url, TRANSPORT_MODES[0]!.opts);
    const why = reason(c);
    assert.equal(await why, "io server disconnect");
    assert.deepEqual(reasons, ["server namespace disconnect"]);
    assert.equal(srv.io.sockets.sockets.size, 0);
  });

  it("a middleware calling next twice connects once", async () => {
    const srv = await startServer(scope);
    srv.io.use((_socket, next) => {
      next();
      next(new Error("late"));
    });
    let connections = 0;
    srv.io.on("connection", () => connections++);
    await connect(scope, srv.url, TRANSPORT_MODES[0]!.opts);
    await quietPeriod(30);
    assert.equal(connections, 1);
    assert.equal(srv.io.stats.connectRefusals, 0);
  });

  it("join() after disconnect is a no-op", async () => {
    const srv = await startServer(scope);
    const { socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    socket.disconnect();
    await socket.join("late");
    assert.equal(srv.io.sockets.adapter.rooms.has("late"), false);
  });

  it("emitting a reserved event name throws", async () => {
    const srv = await startServer(scope);
    const { socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    for (const ev of ["connect", "connect_error", "disconnect", "disconnecting"]) {
      assert.throws(() => socket.emit(ev), /reserved/, `socket.emit(${ev})`);
      assert.throws(() => srv.io.emit(ev), /reserved/, `io.emit(${ev})`);
      assert.throws(() => srv.io.of("/x").emit(ev), /reserved/, `nsp.emit(${ev})`);
      await assert.rejects(
        within(socket.emitWithAck(ev), 1000),
        /reserved/,
        `socket.emitWithAck(${ev})`,
      );
    }
    // EventEmitter itself emits these two on sockets and namespaces, so only the
    // broadcast operators (which are not emitters) can refuse them.
    for (const ev of [
      "connect",
      "connect_error",
      "disconnect",
      "disconnecting",
      "newListener",
      "removeListener",
    ]) {
      assert.throws(() => srv.io.to("r").emit(ev), /reserved/, `io.to().emit(${ev})`);
      assert.throws(() => socket.broadcast.emit(ev), /reserved/, `socket.broadcast.emit(${ev})`);
      await assert.rejects(srv.io.timeout(10).emitWithAck(ev), /reserved/, `emitWithAck(${ev})`);
    }
  });
});
