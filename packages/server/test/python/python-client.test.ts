/**
 * Interoperability with the official Python client (python-socketio 5.7 / python-engineio
 * 4.3, Debian's python3-socketio) over both transports: connect with auth, acks both
 * ways, rooms, binary, middleware refusal, namespaces and disconnections. The server
 * runs in this process; each client is `clients/sio_client.py` in a child process.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Socket } from "@switchyard/server";
import { type Fixture, key, SERVER_BYTES, startFixture } from "./fixture.js";
import {
  bytesWire,
  type ClientLine,
  linesOf,
  PyClient,
  received,
  stopAllClients,
  TRANSPORTS,
  type Wire,
} from "./py-client.js";

const CLIENT_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const UNICODE = 'héllo ✓ 🚂 \u2028 "quoted" \\ \n';

let fx: Fixture;
/** Pings every 150 ms: the python client must answer them to stay connected. */
let fast: Fixture;

before(async () => {
  [fx, fast] = await Promise.all([
    startFixture(),
    startFixture({ pingInterval: 150, pingTimeout: 1000 }),
  ]);
});

after(async () => {
  await stopAllClients();
  await Promise.all([fx?.close(), fast?.close()]);
});

/**
 * `socket.timeout(10 s).emitWithAck(ev, ...args)` on an untyped socket. Called through
 * a loosened type: with the default event map Switchyard types the arguments as `never`
 * (`AllButLast<any[]>` in src/typed-events.ts falls back to `never` where socket.io's
 * falls back to `any[]`), so the plain call does not compile, unlike with socket.io.
 */
function emitWithAck(socket: Socket, ev: string, ...args: unknown[]): Promise<unknown> {
  const op = socket.timeout(10000) as unknown as {
    emitWithAck(ev: string, ...args: unknown[]): Promise<unknown>;
  };
  return op.emitWithAck(ev, ...args);
}

function only(lines: readonly ClientLine[], event: string): ClientLine {
  const found = linesOf(lines, event);
  assert.equal(found.length, 1, `expected one ${event} line in ${JSON.stringify(lines)}`);
  return found[0]!;
}

test("python-socketio's default: polling, then upgraded to websocket", async () => {
  const auth = { id: "default-upgrade" };
  const client = await PyClient.start({
    url: fx.url,
    transports: ["polling", "websocket"],
    auth,
    steps: [{ op: "connect" }, { op: "call", name: "echo", args: ["after"] }, { op: "disconnect" }],
  });
  await client.line("connected");
  const { socket } = await fx.connected.wait(key("/", auth.id));
  const lines = await client.finish();
  assert.deepEqual(only(lines, "ack").result, { nsp: "/", args: ["after"] });
  // python-engineio upgrades synchronously inside connect(): by now it is on websocket.
  assert.equal(only(lines, "connected").transport, "websocket");
  assert.equal(socket.conn.transport.name, "websocket");
  assert.equal(
    (await fx.disconnected.wait(key("/", auth.id))).reason,
    "client namespace disconnect",
  );
});

for (const transport of TRANSPORTS) {
  describe(`python-socketio client over ${transport}`, { concurrency: true }, () => {
    const id = (name: string) => `${transport}-${name}`;
    const start = (spec: Omit<Parameters<typeof PyClient.start>[0], "url" | "transports">) =>
      PyClient.start({ url: fx.url, transports: [transport], ...spec });

    test("connects; the server sees its auth, query and headers in the handshake", async () => {
      const auth = { id: id("auth"), token: "good", user: "ada", n: 7, tags: ["a", "b"] };
      const client = await PyClient.start({
        url: `${fx.url}?client=python&lang=${encodeURIComponent("é")}`,
        transports: [transport],
        headers: { "X-Client-Kind": "python-socketio" },
        auth,
        steps: [{ op: "connect" }, { op: "disconnect" }],
      });
      const lines = await client.finish();
      const connected = only(lines, "connected");
      assert.equal(connected.transport, transport);
      const seen = await fx.connected.wait(key("/", auth.id));
      assert.deepEqual(seen.auth, auth);
      assert.equal(seen.socket.conn.transport.name, transport);
      assert.deepEqual(connected.sids, { "/": seen.socket.id });
      const { query, headers } = seen.socket.handshake;
      assert.equal(query.client, "python");
      assert.equal(query.lang, "é");
      assert.equal(query.transport, transport);
      assert.equal(query.EIO, "4");
      assert.equal(headers["x-client-kind"], "python-socketio");
    });

    test("emit with ack: client.call() gets the server's ack", async () => {
      const args: Wire[] = [UNICODE, 42, { nested: [1, null, true, 2.5] }];
      const client = await start({
        auth: { id: id("ack") },
        steps: [
          { op: "connect" },
          { op: "call", name: "echo", args: ["one"] },
          { op: "call", name: "echo", args },
          { op: "call", name: "echo" },
          { op: "disconnect" },
        ],
      });
      const acks = linesOf(await client.finish(), "ack").map((l) => l.result);
      assert.deepEqual(acks, [
        { nsp: "/", args: ["one"] },
        { nsp: "/", args },
        { nsp: "/", args: [] },
      ]);
    });

    test("server emitWithAck is answered by the python handler's return value", async () => {
      const client = await start({
        auth: { id: id("server-ack") },
        replies: {
          "/": { ask: { answer: 42, text: UNICODE }, "ask-bin": bytesWire(CLIENT_BYTES) },
        },
        steps: [
          { op: "connect" },
          { op: "wait", name: "ask" },
          { op: "wait", name: "ask-bin" },
          { op: "disconnect" },
        ],
      });
      await client.line("connected");
      const { socket } = await fx.connected.wait(key("/", id("server-ack")));
      const answer = await emitWithAck(socket, "ask", "q", 1);
      assert.deepEqual(answer, { answer: 42, text: UNICODE });
      // A BINARY_ACK from the client.
      const binary = await emitWithAck(socket, "ask-bin");
      assert.ok(Buffer.isBuffer(binary), `not a Buffer: ${String(binary)}`);
      assert.equal(binary.toString("hex"), CLIENT_BYTES.toString("hex"));
      const lines = await client.finish();
      assert.deepEqual(
        linesOf(lines, "recv").map((l) => [l.name, l.args]),
        [
          ["ask", ["q", 1]],
          ["ask-bin", []],
        ],
      );
    });

    test("large payloads both ways", async () => {
      const client = await start({
        auth: { id: id("large") },
        steps: [
          { op: "connect" },
          { op: "call", name: "echo", args: [[{ $repeat: "x", times: 300_000 }, UNICODE]] },
          { op: "call", name: "bin", args: [{ $bytes: "07", times: 200_000 }, null] },
          { op: "disconnect" },
        ],
      });
      const acks = linesOf(await client.finish(), "ack").map((l) => l.result);
      assert.deepEqual(acks[0], { nsp: "/", args: [["x".repeat(300_000), UNICODE]] });
      assert.deepEqual(acks[1], bytesWire(Buffer.alloc(200_000, 7)));
    });

    test("a room broadcast reaches the members only", async () => {
      const room = id("room");
      const elsewhere = id("elsewhere");
      const spec = (who: string, joins: string) => ({
        auth: { id: id(who) },
        listen: { "/": ["tick", "done"] },
        steps: [
          { op: "connect" as const },
          { op: "call" as const, name: "join", args: [joins] },
          { op: "wait" as const, name: "done" },
          { op: "disconnect" as const },
        ],
      });
      const [a, b, c] = await Promise.all([
        start(spec("a", room)),
        start(spec("b", room)),
        start(spec("c", elsewhere)),
      ]);
      // The join acks come after socket.join(): every client is where it should be.
      const joined = await Promise.all([a!, b!, c!].map((cl) => cl.line("ack")));
      const sidOf = async (who: string) => (await fx.connected.wait(key("/", id(who)))).socket.id;
      assert.deepEqual(joined[0]!.result, { rooms: [await sidOf("a"), room].sort() });
      assert.deepEqual(joined[2]!.result, { rooms: [await sidOf("c"), elsewhere].sort() });

      // With a Buffer: the broadcast path encodes once, for both members, with an attachment.
      fx.io.to(room).emit("tick", { seq: 1, room, raw: Buffer.from([0, 1, 254, 255]) });
      // Sent after the tick on every connection: whoever sees "done" without a tick never got one.
      fx.io.to([room, elsewhere]).emit("done");

      const [la, lb, lc] = await Promise.all([a!.finish(), b!.finish(), c!.finish()]);
      assert.deepEqual(received(la), ["tick", "done"]);
      assert.deepEqual(received(lb), ["tick", "done"]);
      assert.deepEqual(received(lc), ["done"]);
      const tick = [{ seq: 1, room, raw: bytesWire(Buffer.from([0, 1, 254, 255])) }];
      assert.deepEqual(linesOf(la, "recv")[0]!.args, tick);
      assert.deepEqual(linesOf(lb, "recv")[0]!.args, tick);
    });

    test("binary round trip: bytes arrive as Buffers, Buffers arrive as bytes", async () => {
      const client = await start({
        auth: { id: id("binary") },
        listen: { "/": ["bin_back"] },
        steps: [
          { op: "connect" },
          {
            op: "call",
            name: "bin",
            args: [bytesWire(CLIENT_BYTES), { payload: bytesWire(CLIENT_BYTES.subarray(0, 3)) }],
          },
          { op: "wait", name: "bin_back" },
          { op: "disconnect" },
        ],
      });
      const lines = await client.finish();
      assert.deepEqual(await fx.binary.wait(id("binary")), {
        isBuffer: true,
        hex: CLIENT_BYTES.toString("hex"),
        nestedIsBuffer: true,
        nestedHex: "000102",
      });
      // The ack (BINARY_ACK) carries the client's bytes reversed.
      assert.deepEqual(only(lines, "ack").result, bytesWire(Buffer.from(CLIENT_BYTES).reverse()));
      // The event (BINARY_EVENT) carries two attachments, one nested in an object.
      assert.deepEqual(only(lines, "recv").args, [
        bytesWire(SERVER_BYTES),
        { label: "nested", payload: bytesWire(SERVER_BYTES) },
      ]);
    });

    test("a middleware refusal: ConnectionError, connect_error has the server's message", async () => {
      const auth = { id: id("refused"), token: "bad" };
      const client = await start({ auth, connect_wait_s: 1.5, steps: [{ op: "connect" }] });
      const lines = await client.finish();
      assert.deepEqual(await fx.refused.wait(auth.id), auth);
      const failed = only(lines, "connect_failed");
      assert.equal(failed.type, "socketio.exceptions.ConnectionError");
      // python-socketio 5.7's exception only says "One or more namespaces failed to
      // connect"; it hands the CONNECT_ERROR payload to the connect_error handler, so that
      // is where the server's message must be.
      const errors = linesOf(lines, "connect_error");
      assert.deepEqual(
        errors.map((l) => l.data),
        [[{ message: "not authorized" }]],
      );
      assert.equal(linesOf(lines, "connected").length, 0);
      assert.equal(fx.connected.has(key("/", auth.id)), false);
    });

    test("connects to a custom namespace only, with its own auth and handlers", async () => {
      const auth = { id: id("chat"), room: "lobby" };
      const client = await start({
        auth,
        namespaces: ["/chat"],
        steps: [
          { op: "connect" },
          { op: "call", name: "echo", args: ["in chat"], ns: "/chat" },
          // BINARY_EVENT and BINARY_ACK with a namespace: "51-/chat,1[...]".
          { op: "call", name: "echo", args: [bytesWire(CLIENT_BYTES)], ns: "/chat" },
          { op: "disconnect" },
        ],
      });
      const lines = await client.finish();
      const seen = await fx.connected.wait(key("/chat", auth.id));
      assert.equal(seen.nsp, "/chat");
      assert.deepEqual(seen.auth, auth);
      assert.deepEqual(only(lines, "connected").sids, { "/chat": seen.socket.id });
      assert.deepEqual(
        linesOf(lines, "ack").map((l) => l.result),
        [
          { nsp: "/chat", args: ["in chat"] },
          { nsp: "/chat", args: [bytesWire(CLIENT_BYTES)] },
        ],
      );
      assert.equal(fx.connected.has(key("/", auth.id)), false, "joined the main namespace too");
      assert.deepEqual(await fx.disconnected.wait(key("/chat", auth.id)), {
        nsp: "/chat",
        reason: "client namespace disconnect",
      });
    });

    test("several namespaces share one connection", async () => {
      const auth = { id: id("multi") };
      const client = await start({
        auth,
        namespaces: ["/", "/chat"],
        listen: { "/": ["where"], "/chat": ["where"] },
        steps: [
          { op: "connect" },
          { op: "call", name: "echo", args: ["main"], ns: "/" },
          { op: "call", name: "echo", args: ["chat"], ns: "/chat" },
          { op: "wait", name: "where", ns: "/" },
          { op: "wait", name: "where", ns: "/chat" },
          { op: "disconnect" },
        ],
      });
      await client.line("connected");
      const main = await fx.connected.wait(key("/", auth.id));
      const chat = await fx.connected.wait(key("/chat", auth.id));
      assert.equal(main.socket.conn, chat.socket.conn, "one engine session for both");
      main.socket.emit("where", "main");
      chat.socket.emit("where", "chat");
      const lines = await client.finish();
      assert.deepEqual(
        linesOf(lines, "ack").map((l) => l.result),
        [
          { nsp: "/", args: ["main"] },
          { nsp: "/chat", args: ["chat"] },
        ],
      );
      assert.deepEqual(
        linesOf(lines, "recv").map((l) => [l.ns, l.args]),
        [
          ["/", ["main"]],
          ["/chat", ["chat"]],
        ],
      );
      for (const nsp of ["/", "/chat"]) {
        assert.equal(
          (await fx.disconnected.wait(key(nsp, auth.id))).reason,
          "client namespace disconnect",
        );
      }
    });

    test("an unknown namespace is refused with 'Invalid namespace'", async () => {
      const client = await start({
        auth: { id: id("nope") },
        namespaces: ["/nope"],
        connect_wait_s: 1.5,
        steps: [{ op: "connect" }],
      });
      const lines = await client.finish();
      assert.equal(only(lines, "connect_failed").type, "socketio.exceptions.ConnectionError");
      assert.deepEqual(
        linesOf(lines, "connect_error").map((l) => l.data),
        [[{ message: "Invalid namespace" }]],
      );
    });

    test("a burst of text and binary events arrives complete and in order", async () => {
      const auth = { id: id("burst") };
      const client = await start({
        auth,
        // python-engineio 4.3 refuses polling payloads of more than 16 packets (with
        // socket.io's server too); its documented workaround raises the limit.
        max_decode_packets: 1000,
        listen: { "/": ["n", "end"] },
        steps: [{ op: "connect" }, { op: "wait", name: "end" }, { op: "disconnect" }],
      });
      await client.line("connected");
      const { socket } = await fx.connected.wait(key("/", auth.id));
      // Written in one go: over polling they queue up and leave as a few payloads.
      for (let i = 0; i < 200; i++) {
        if (i % 3 === 0) socket.emit("n", i, Buffer.from([i & 255, 0xff]));
        else socket.emit("n", i, `${UNICODE}${i}`);
      }
      socket.emit("end");
      const lines = await client.finish();
      const got = linesOf(lines, "recv").filter((l) => l.name === "n");
      assert.equal(got.length, 200);
      got.forEach((l, i) => {
        const second = i % 3 === 0 ? bytesWire(Buffer.from([i & 255, 0xff])) : `${UNICODE}${i}`;
        assert.deepEqual(l.args, [i, second], `event ${i}`);
      });
    });

    test("answers the server's pings (heartbeat)", async () => {
      const auth = { id: id("heartbeat") };
      const client = await PyClient.start({
        url: fast.url,
        transports: [transport],
        auth,
        listen: { "/": ["done"] },
        steps: [{ op: "connect" }, { op: "wait", name: "done" }, { op: "disconnect" }],
      });
      await client.line("connected");
      const { socket } = await fast.connected.wait(key("/", auth.id));
      // Five pongs ≈ 750 ms of pings, several client poll cycles.
      let pongs = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${pongs} pongs in 10 s`)), 10000);
        socket.conn.on("heartbeat", () => {
          if (++pongs < 5) return;
          clearTimeout(timer);
          resolve();
        });
      });
      assert.equal(socket.connected, true);
      socket.emit("done");
      await client.finish();
      assert.equal(
        (await fast.disconnected.wait(key("/", auth.id))).reason,
        "client namespace disconnect",
      );
    });

    test("socket.disconnect() on the server is seen by the python client", async () => {
      const client = await start({
        auth: { id: id("kicked") },
        steps: [{ op: "connect" }, { op: "wait_disconnect" }],
      });
      await client.line("connected");
      const { socket } = await fx.connected.wait(key("/", id("kicked")));
      socket.disconnect();
      const lines = await client.finish();
      assert.deepEqual(
        lines.filter((l) => l.event === "disconnect").map((l) => l.ns),
        ["/"],
      );
      only(lines, "server_disconnected");
      assert.deepEqual(await fx.disconnected.wait(key("/", id("kicked"))), {
        nsp: "/",
        reason: "server namespace disconnect",
      });
    });

    test("socket.disconnect(true) closes the connection under the python client", async () => {
      const auth = { id: id("closed") };
      const client = await start({ auth, steps: [{ op: "connect" }, { op: "wait_disconnect" }] });
      await client.line("connected");
      const { socket } = await fx.connected.wait(key("/", auth.id));
      socket.disconnect(true);
      const lines = await client.finish();
      only(lines, "server_disconnected");
      assert.equal(
        (await fx.disconnected.wait(key("/", auth.id))).reason,
        "server namespace disconnect",
      );
    });

    test("io.close() disconnects the python client", async () => {
      const own = await startFixture();
      try {
        const auth = { id: id("shutdown") };
        const client = await PyClient.start({
          url: own.url,
          transports: [transport],
          auth,
          steps: [{ op: "connect" }, { op: "wait_disconnect" }],
        });
        await client.line("connected");
        await own.connected.wait(key("/", auth.id));
        await own.close();
        const lines = await client.finish();
        only(lines, "server_disconnected");
        assert.equal(
          (await own.disconnected.wait(key("/", auth.id))).reason,
          "server shutting down",
        );
      } finally {
        await own.close();
      }
    });

    test("the client's namespace DISCONNECT gives 'client namespace disconnect'", async () => {
      const client = await start({
        auth: { id: id("leaves") },
        steps: [{ op: "connect" }, { op: "emit", name: "echo" }, { op: "disconnect" }],
      });
      const lines = await client.finish();
      assert.equal(only(lines, "client_disconnected").flushed, true);
      assert.deepEqual(await fx.disconnected.wait(key("/", id("leaves"))), {
        nsp: "/",
        reason: "client namespace disconnect",
      });
    });

    test("a plain sio.disconnect() is noticed promptly", async () => {
      // python-engineio 4.3 may close the WebSocket before its DISCONNECT leaves, and over
      // polling may send neither DISCONNECT nor CLOSE and leave no poll pending (see
      // clients/sio_client.py). The server must notice anyway: at once over websocket, by
      // the heartbeat over polling (hence the fast-pinging server there).
      const server = transport === "websocket" ? fx : fast;
      const reasons = ["client namespace disconnect", "transport close"];
      if (transport === "polling") reasons.push("ping timeout");
      const auth = { id: id("leaves-raw") };
      const client = await PyClient.start({
        url: server.url,
        transports: [transport],
        auth,
        steps: [{ op: "connect" }, { op: "call", name: "echo" }, { op: "disconnect_raw" }],
      });
      only(await client.finish(), "client_disconnected");
      const gone = await server.disconnected.wait(key("/", auth.id), 5000);
      assert.ok(reasons.includes(gone.reason), `unexpected reason ${gone.reason}`);
    });
  });
}
