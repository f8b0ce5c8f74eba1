/**
 * Hostile or broken input at the Socket.IO layer, spoken with raw Engine.IO WebSocket
 * clients: repeated CONNECTs, malformed packets (each closes only its own session with
 * "parse error" and is counted), packets for namespaces never joined, and data the
 * server cannot encode (the caller gets a SwitchyardError, the process keeps serving).
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { ProtocolError, type Socket, SwitchyardError } from "@switchyard/server";
import {
  once,
  pair,
  quietPeriod,
  rawClient,
  reason,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const WS = TRANSPORT_MODES[0]!;

/** A raw client connected to "/" (its CONNECT acknowledged); returns it and its socket. */
async function rawConnected(srv: TestServer) {
  const raw = await rawClient(scope, srv.port);
  const side = once<[Socket]>(srv.io, "connection");
  raw.send("40");
  const ack = await raw.next();
  assert.match(String(ack), /^40\{"sid":"[\w-]+"\}$/);
  const [socket] = await side;
  return { raw, socket };
}

/** Proves a healthy client still gets answers. */
async function stillServing(srv: TestServer): Promise<void> {
  const { client, socket } = await pair(scope, srv, WS);
  socket.on("ping?", (cb: (v: string) => void) => cb("pong"));
  assert.equal(await client.timeout(2000).emitWithAck("ping?"), "pong");
}

describe("raw protocol safety", () => {
  it("a repeated CONNECT for a namespace does not create a second socket", async () => {
    const srv = await startServer(scope);
    srv.io.of("/chat");
    const { raw, socket } = await rawConnected(srv);
    let connections = 0;
    srv.io.on("connection", () => connections++);
    raw.send("40");
    raw.send('40{"token":"again"}');
    raw.send("40/chat,");
    const chatAck = await raw.next();
    assert.match(String(chatAck), /^40\/chat,\{"sid":/);
    raw.send("40/chat,");
    // The socket still works and no second one appeared.
    const got = once<unknown[]>(socket, "hello");
    raw.send('42["hello",1]');
    assert.deepEqual(await got, [1]);
    await quietPeriod(50);
    assert.equal(connections, 0);
    assert.equal(srv.io.sockets.sockets.size, 1);
    assert.equal(srv.io.of("/chat").sockets.size, 1);
    assert.ok(srv.io.stats.unexpectedPackets >= 3);
    assert.equal(raw.queued.filter((m) => String(m).startsWith("40")).length, 0);
  });

  it("events for a namespace never joined are dropped and counted; the session stays", async () => {
    const srv = await startServer(scope);
    const admin = srv.io.of("/admin");
    let adminEvents = 0;
    admin.on("connection", (s: Socket) => s.onAny(() => adminEvents++));
    const { raw, socket } = await rawConnected(srv);
    const before = srv.io.stats.unexpectedPackets;
    raw.send('42/admin,["steal",1]');
    raw.send('42/admin,7["steal",2]');
    raw.send("43/admin,0[]");
    raw.send("41/admin,");
    const got = once<unknown[]>(socket, "fine");
    raw.send('42["fine"]');
    await got;
    assert.equal(srv.io.stats.unexpectedPackets - before, 4);
    assert.equal(adminEvents, 0);
    assert.equal(socket.connected, true);
  });

  const malformed: [string, string | (string | Buffer)[]][] = [
    ["bad JSON", '42["x"'],
    ["a bad ack id", '42abc["x"]'],
    ["a non-array event", '42{"a":1}'],
    ["an empty event array", "42[]"],
    ["a numeric event name", "42[1,2]"],
    ["an ack without id", "43[1]"],
    ["a huge attachment count", '451000000-["x",{"_placeholder":true,"num":0}]'],
    ["more attachments than allowed", '411-["x",{"_placeholder":true,"num":0}]'],
    ["an unknown packet type", "49"],
    ["a reserved event name", '42["disconnect","spoofed"]'],
    ["an orphan binary frame", "<binary>"],
    ["a DISCONNECT with a payload", "41[1]"],
    ["payload nested too deep", `42["x",${"[".repeat(100)}${"]".repeat(100)}]`],
    ["an empty binary frame", [Buffer.alloc(0)]],
    [
      "an attachment the header does not count",
      ['451-["x",{"_placeholder":true,"num":1}]', Buffer.from([1])],
    ],
    ["a binary header with a bad attachment count", ['45x-["x"]']],
  ];
  for (const [what, packet] of malformed) {
    it(`${what} closes that session with "parse error"; others unaffected`, async () => {
      const srv = await startServer(scope);
      const victim = await rawConnected(srv);
      const bystander = await pair(scope, srv, WS);
      let handled = 0;
      victim.socket.onAny(() => handled++);
      // As socket.io: the socket hears the decoder's error before it is disconnected.
      const events: string[] = [];
      victim.socket.on("error", (err: Error) => events.push(`error:${err.name}`));
      victim.socket.on("disconnect", (r: string) => events.push(`disconnect:${r}`));
      const why = reason(victim.socket);
      const before = srv.io.stats.parseErrors;
      for (const m of typeof packet === "string" ? [packet] : packet) {
        victim.raw.send(m === "<binary>" ? Buffer.from([1, 2, 3]) : m);
      }
      assert.equal(await why, "parse error");
      assert.deepEqual(events, ["error:ProtocolError", "disconnect:parse error"]);
      await victim.raw.closed;
      assert.equal(srv.io.stats.parseErrors, before + 1);
      assert.equal(handled, 0);
      const echo = once(bystander.client, "ok");
      bystander.socket.emit("ok");
      await echo;
      assert.equal(bystander.socket.connected, true);
    });
  }

  it("an ack for an unknown id is ignored", async () => {
    const srv = await startServer(scope);
    const { raw, socket } = await rawConnected(srv);
    raw.send('43999["nobody asked"]');
    const got = once<unknown[]>(socket, "after");
    raw.send('42["after"]');
    await got;
    assert.equal(socket.connected, true);
  });
});

describe("unencodable data", () => {
  function circular(): unknown {
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    return o;
  }
  function deep(n: number): unknown {
    let v: unknown = "leaf";
    for (let i = 0; i < n; i++) v = [v];
    return v;
  }
  function deepWithBinary(n: number): unknown {
    let v: unknown = Buffer.from([1]);
    for (let i = 0; i < n; i++) v = { v };
    return v;
  }

  for (const [what, make] of [
    ["circular", circular],
    ["10k-deep", () => deep(10_000)],
    ["10k-deep with binary", () => deepWithBinary(10_000)],
    ["BigInt", () => ({ n: 10n })],
  ] as const) {
    it(`${what} data throws a SwitchyardError to the caller; the server keeps serving`, async () => {
      const srv = await startServer(scope);
      const { client, socket } = await pair(scope, srv, WS);
      const data = make();
      const isOurs = (err: unknown) => {
        assert.ok(err instanceof SwitchyardError, `got ${String(err)}`);
        assert.ok(err instanceof ProtocolError);
        assert.match(err.code, /^SY_ERR_/);
        return true;
      };
      assert.throws(() => socket.emit("x", data), isOurs, "socket.emit");
      assert.throws(() => srv.io.emit("x", data), isOurs, "io.emit");
      assert.throws(() => socket.broadcast.emit("x", data), isOurs, "socket.broadcast.emit");
      assert.throws(() => srv.io.to(socket.id).emit("x", data), isOurs, "io.to().emit");
      assert.throws(
        () => srv.io.timeout(100).emit("x", data, () => {}),
        isOurs,
        "broadcast with ack",
      );
      await assert.rejects(
        srv.io.timeout(100).emitWithAck("x", data),
        isOurs,
        "broadcast emitWithAck",
      );
      await assert.rejects(
        socket.timeout(100).emitWithAck("x", data),
        isOurs,
        "socket emitWithAck",
      );
      // An ack answer that cannot be encoded throws in the handler that answers.
      const ackErrors: unknown[] = [];
      socket.on("ask", (cb: (v: unknown) => void) => {
        try {
          cb(data);
        } catch (err) {
          ackErrors.push(err);
          cb("fallback");
        }
      });
      assert.equal(await client.timeout(2000).emitWithAck("ask"), "fallback");
      assert.equal(ackErrors.length, 1);
      isOurs(ackErrors[0]);
      // The connection is intact and nothing half-written reached the client.
      const ok = once(client, "ok");
      socket.emit("ok", "fine");
      assert.deepEqual(await ok, ["fine"]);
      await stillServing(srv);
    });
  }
});
