/**
 * Connection state recovery on one node (memory adapter), with real socket.io-client 4.8
 * clients — they implement the client side: they keep the `pid` of the CONNECT reply and
 * the last offset they received, and present both when they connect again. Clients go
 * through a TCP proxy the test cuts or pauses; reconnection is off, so each test decides
 * when the client comes back (`client.connect()`), after the server saw it go.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { MemoryAdapter, Socket } from "@switchyard/server";
import { sleep } from "@switchyard/test-harness";
import type { Socket as ClientSocket } from "socket.io-client";
import { WebSocket } from "ws";
import {
  type ClientOptions,
  client,
  connected,
  once,
  quietPeriod,
  reason,
  Scope,
  startServer,
  type TestServer,
  TRANSPORT_MODES,
  upgraded,
  waitFor,
  within,
} from "../socketio/helpers.js";
import { TcpProxy } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const MODES = TRANSPORT_MODES;
const RECOVERABLE = ["transport close", "transport error", "ping timeout"];

interface Setup {
  srv: TestServer;
  proxy: TcpProxy;
}

/** A server (recovery on with `recovery`, off with null) behind a proxy. */
async function setup(recovery: Record<string, unknown> | null = {}): Promise<Setup> {
  const srv = await startServer(scope, {
    // Short enough for the pause test, long enough that a loaded machine does not time
    // out a healthy client.
    pingInterval: 800,
    pingTimeout: 800,
    ...(recovery === null ? {} : { connectionStateRecovery: recovery }),
  });
  const proxy = await TcpProxy.start(scope, srv.port);
  return { srv, proxy };
}

/** A connected client through the proxy, with its server-side socket. */
async function join(
  { srv, proxy }: Setup,
  opts: ClientOptions = {},
): Promise<{ c: ClientSocket; socket: Socket }> {
  const serverSide = once<[Socket]>(srv.io, "connection");
  const c = client(scope, proxy.url, opts);
  await connected(c);
  const [socket] = await serverSide;
  return { c, socket };
}

/** Reconnects `c` (same pid and last offset) and resolves with its new server-side socket. */
async function reconnect(srv: TestServer, c: ClientSocket): Promise<Socket> {
  const serverSide = once<[Socket]>(srv.io, "connection");
  c.connect();
  await connected(c);
  const [socket] = await serverSide;
  return socket;
}

/** Records the first argument of every `n` event, and checks the offset socket.io appends. */
function recordN(c: ClientSocket): unknown[] {
  const got: unknown[] = [];
  c.on("n", (...args: unknown[]) => got.push(args[0]));
  return got;
}

/**
 * A websocket client through the proxy that received its first `n` event (0, sent by
 * `emitFirst`, a broadcast to all unless told), with every `n` it gets recorded.
 */
async function joinAndReceive(
  env: Setup,
  emitFirst: () => void = () => env.srv.io.emit("n", 0),
): Promise<{ c: ClientSocket; socket: Socket; got: unknown[] }> {
  const { c, socket } = await join(env, { transports: ["websocket"] });
  const got = recordN(c);
  emitFirst();
  await waitFor(() => got.length === 1, 3000, "the first broadcast");
  return { c, socket, got };
}

/**
 * Takes the client's connection away and waits until both sides saw it go: "cut" closes
 * it; "down" also refuses new connections until then, and lets them in again after.
 * Resolves with the server's disconnect reason.
 */
async function lose(
  proxy: TcpProxy,
  c: ClientSocket,
  socket: Socket,
  how: "cut" | "down",
): Promise<string> {
  const serverGone = reason(socket, 10_000);
  const clientGone = once(c, "disconnect", 10_000);
  proxy[how]();
  const why = await serverGone;
  await clientGone;
  if (how === "down") proxy.up();
  return why;
}

function privateState(c: ClientSocket): { pid: string | undefined; offset: string | undefined } {
  const raw = c as unknown as { _pid?: string; _lastOffset?: string };
  return { pid: raw._pid, offset: raw._lastOffset };
}

function logStats(srv: TestServer): { packets: number; bytes: number; sessions: number } {
  const stats = (srv.io.of("/").adapter as MemoryAdapter).recoveryStats;
  assert.ok(stats !== undefined, "the memory adapter keeps a recovery log");
  return stats;
}

for (const mode of MODES) {
  describe(`recovery over ${mode.name}`, () => {
    it("a client whose TCP connection is cut recovers every missed broadcast, in order, exactly once, with rooms and data", async () => {
      const env = await setup();
      const { srv, proxy } = env;
      srv.io.on("connection", (s) => {
        if (s.recovered) return;
        s.join("r");
        s.data = { user: "ada" };
      });
      const { c, socket } = await join(env, mode.opts);
      if (mode.upgrade) await upgraded(c, socket);
      const got = recordN(c);
      const bins: Buffer[] = [];
      c.on("bin", (b: ArrayBuffer, offset: unknown) => {
        assert.equal(typeof offset, "string", "the offset follows the binary argument");
        bins.push(Buffer.from(b));
      });
      const offsets: unknown[] = [];
      c.on("n", (_n: unknown, offset: unknown) => offsets.push(offset));
      for (let i = 0; i < 3; i++) srv.io.to("r").emit("n", i);
      await waitFor(() => got.length === 3, 3000, "the first broadcasts");
      assert.ok(offsets.every((o) => typeof o === "string" && o.length > 20));
      const firstId = socket.id;
      assert.equal(c.id, firstId);
      assert.equal(typeof privateState(c).pid, "string", "the CONNECT reply carried a pid");

      assert.ok(RECOVERABLE.includes(await lose(proxy, c, socket, "down")));
      // Missed while away: room broadcasts, a binary one, a unicast to the old socket;
      // not for it: another room, volatile, and a broadcast with ack.
      for (let i = 3; i < 10; i++) srv.io.to("r").emit("n", i);
      srv.io.to("other").emit("n", -1);
      srv.io.volatile.emit("n", -2);
      srv.io.timeout(50).emit("n", -3, () => {});
      srv.io.emit("bin", Buffer.from([1, 2, 3]));
      socket.emit("n", 10);
      assert.equal(logStats(srv).sessions, 1);
      // 3 + 7 to the room, 1 to another room, the binary one, the unicast: not the
      // volatile one nor the one with an ack.
      assert.equal(logStats(srv).packets, 13);

      const again = await reconnect(srv, c);
      assert.equal(c.recovered, true);
      assert.equal(again.recovered, true);
      assert.equal(again.id, firstId, "the socket keeps its id");
      assert.equal(c.id, firstId);
      assert.ok(again.rooms.has("r"), "rooms restored");
      assert.deepEqual(again.data, { user: "ada" }, "data restored");
      srv.io.to("r").emit("n", 11);
      await waitFor(() => got.length >= 12 && bins.length >= 1, 3000, "the replay");
      await quietPeriod(100);
      assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.deepEqual(bins, [Buffer.from([1, 2, 3])]);
      assert.equal(srv.io.stats.recovered, 1);
      assert.equal(srv.io.stats.recoveryMisses, 0);
      assert.equal(logStats(srv).sessions, 0, "the session was consumed");
    });

    it("a client paused past the ping timeout recovers what it missed", async () => {
      const env = await setup();
      const { srv, proxy } = env;
      srv.io.on("connection", (s) => {
        if (!s.recovered) s.join("r");
      });
      const { c, socket } = await join(env, mode.opts);
      if (mode.upgrade) await upgraded(c, socket);
      const got = recordN(c);
      srv.io.to("r").emit("n", 0);
      await waitFor(() => got.length === 1, 3000, "the first broadcast");
      const serverGone = reason(socket, 10_000);
      const clientGone = once(c, "disconnect", 10_000);
      proxy.pause();
      srv.io.to("r").emit("n", 1); // written into the paused connection: never arrives
      assert.equal(await serverGone, "ping timeout");
      srv.io.to("r").emit("n", 2);
      proxy.resume();
      await clientGone;
      const again = await reconnect(srv, c);
      assert.equal(again.recovered, true);
      assert.equal(c.recovered, true);
      await waitFor(() => got.length >= 3, 3000, "the replay");
      await quietPeriod(100);
      assert.deepEqual(got, [0, 1, 2]);
    });
  });
}

describe("recovery: when it must not recover", () => {
  it("window exceeded: a fresh session, recovered === false, counted as expired", async () => {
    const env = await setup({ maxDisconnectionDuration: 200 });
    const { srv, proxy } = env;
    const { c, socket, got } = await joinAndReceive(env);
    await lose(proxy, c, socket, "cut");
    srv.io.emit("n", 1);
    // The window passing is what this test is about.
    await sleep(350);
    const again = await reconnect(srv, c);
    assert.equal(again.recovered, false);
    assert.equal(c.recovered, false);
    assert.notEqual(again.id, socket.id);
    await quietPeriod(100);
    assert.deepEqual(got, [0], "nothing replayed");
    assert.equal(srv.io.stats.recoveryMisses, 1);
    assert.ok(
      srv.io.stats.recoveryMissesExpired + srv.io.stats.recoveryMissesUnknownSession === 1,
      "expired, or already swept as unknown",
    );
  });

  it("a replayed pid recovers nothing: the session is consumed by its first use", async () => {
    const env = await setup();
    const { srv, proxy } = env;
    let first = true;
    srv.io.on("connection", (s) => {
      if (first) s.join("secret");
      first = false;
    });
    const { c, socket } = await joinAndReceive(env, () => srv.io.to("secret").emit("n", 0));
    await lose(proxy, c, socket, "cut");
    srv.io.to("secret").emit("n", 1);
    const stolen = privateState(c);
    const again = await reconnect(srv, c);
    assert.equal(again.recovered, true);
    // A second client presents the same pid and offset.
    const thiefSide = once<[Socket]>(srv.io, "connection");
    const thief = client(scope, proxy.url, { transports: ["websocket"], auth: stolen });
    const thiefGot = recordN(thief);
    await connected(thief);
    const [thiefSocket] = await thiefSide;
    assert.equal(thiefSocket.recovered, false);
    assert.notEqual(thiefSocket.id, socket.id);
    assert.ok(!thiefSocket.rooms.has("secret"));
    await quietPeriod(100);
    assert.deepEqual(thiefGot, []);
    assert.equal(srv.io.stats.recoveryMissesUnknownSession, 1);
    assert.equal(srv.io.stats.recovered, 1);
  });

  it("1,000 forged pid/offset pairs: each a bounded miss; a real session survives the flood", async () => {
    const env = await setup();
    const { srv, proxy } = env;
    const { c, socket, got } = await joinAndReceive(env);
    const { offset } = privateState(c);
    await lose(proxy, c, socket, "cut");
    srv.io.emit("n", 1);

    // One raw WebSocket connects and leaves the main namespace 1,000 times.
    const ws = scope.add(
      new WebSocket(`ws://127.0.0.1:${srv.port}/socket.io/?EIO=4&transport=websocket`),
      (w) => w.terminate(),
    );
    const replies: string[] = [];
    let wake: (() => void) | undefined;
    ws.on("message", (data) => {
      const text = String(data);
      if (text === "2") ws.send("3");
      else if (text.startsWith("40")) {
        replies.push(text);
        wake?.();
      }
    });
    await once(ws, "open");
    const started = Date.now();
    await within(
      (async () => {
        for (let i = 0; i < 1000; i++) {
          const forged =
            i % 4 === 0
              ? { pid: "x".repeat(10_000), offset: "y".repeat(10_000) }
              : i % 4 === 1
                ? { pid: `${i}`, offset: offset ?? "" }
                : i % 4 === 2
                  ? {
                      pid: "AAAAAAAAAAAAAAAAAAAA",
                      offset: `${i.toString(36)}.AAAAAAAAAAAAAAAAAAAA`,
                    }
                  : { pid: String(i), offset: `${Number.MAX_SAFE_INTEGER}.xxxxxxxxxxxxxxxxxxxx` };
          const before = replies.length;
          const answered = new Promise<void>((resolve) => {
            wake = resolve;
          });
          ws.send(`40${JSON.stringify(forged)}`);
          if (replies.length === before) await answered;
          ws.send("41");
        }
      })(),
      15_000,
      "the flood",
    );
    const elapsed = Date.now() - started;
    assert.equal(replies.length, 1000);
    for (const r of replies) {
      const body = JSON.parse(r.slice(2)) as { sid: string; pid: string };
      assert.equal(typeof body.pid, "string", "a fresh pid each time");
    }
    assert.equal(srv.io.stats.recoveryMisses, 1000);
    assert.equal(srv.io.stats.recoveryMissesUnknownSession, 1000);
    assert.equal(srv.io.stats.recovered, 0);
    assert.equal(logStats(srv).sessions, 1, "the flood persisted nothing");
    assert.ok(elapsed < 10_000, `1,000 forged reconnects took ${elapsed} ms`);

    await waitFor(() => !c.connected, 5000, "the client to notice the cut");
    const again = await reconnect(srv, c);
    assert.equal(again.recovered, true);
    await waitFor(() => got.length >= 2, 3000, "the replay");
    assert.deepEqual(got, [0, 1]);
  });

  it("sessions ended on purpose are not kept: server disconnect(), client disconnect()", async () => {
    const env = await setup();
    const { srv } = env;
    const first = await join(env, { transports: ["websocket"] });
    srv.io.emit("n", 0);
    await waitFor(() => privateState(first.c).offset !== undefined, 3000, "an offset");
    const clientGone = once(first.c, "disconnect");
    first.socket.disconnect();
    await clientGone;
    const again = await reconnect(srv, first.c);
    assert.equal(again.recovered, false);

    const second = await join(env, { transports: ["websocket"] });
    srv.io.emit("n", 1);
    await waitFor(() => privateState(second.c).offset !== undefined, 3000, "an offset");
    const serverGone = reason(second.socket);
    second.c.disconnect();
    assert.equal(await serverGone, "client namespace disconnect");
    const back = await reconnect(srv, second.c);
    assert.equal(back.recovered, false);
    assert.equal(srv.io.stats.recoveryMisses, 2);
    assert.equal(srv.io.stats.recoveryMissesUnknownSession, 2);
    assert.equal(logStats(srv).sessions, 0);
  });

  it("maxPackets bounds the log: a client whose offset was trimmed gets a fresh session", async () => {
    const env = await setup({ maxPackets: 5 });
    const { srv, proxy } = env;
    const { c, socket, got } = await joinAndReceive(env);
    await lose(proxy, c, socket, "cut");
    for (let i = 1; i <= 20; i++) srv.io.emit("n", i);
    assert.equal(logStats(srv).packets, 5);
    const again = await reconnect(srv, c);
    assert.equal(again.recovered, false);
    assert.equal(srv.io.stats.recoveryMissesOffset, 1);
    await quietPeriod(100);
    assert.deepEqual(got, [0]);
  });
});

describe("recovery: extension", () => {
  it("a client that received nothing before its cut (no offset) recovers from where it connected", async () => {
    const env = await setup();
    const { srv, proxy } = env;
    srv.io.emit("n", -1); // before the client exists: never its packet
    const { c, socket } = await join(env, { transports: ["websocket"] });
    const got = recordN(c);
    assert.equal(privateState(c).offset, undefined, "no packet received, so no offset");
    await lose(proxy, c, socket, "down");
    srv.io.emit("n", 1);
    srv.io.emit("n", 2);
    const again = await reconnect(srv, c);
    assert.equal(again.recovered, true);
    assert.equal(c.recovered, true);
    assert.equal(again.id, socket.id);
    await waitFor(() => got.length >= 2, 3000, "the replay");
    await quietPeriod(100);
    assert.deepEqual(got, [1, 2]);
  });

  it("a client-sent offset is never taken for a mark", async () => {
    const env = await setup();
    const { srv, proxy } = env;
    const { c, socket } = await join(env, { transports: ["websocket"] });
    const serverGone = reason(socket, 10_000);
    proxy.down();
    await serverGone;
    proxy.up();
    const { pid } = privateState(c);
    const forger = client(scope, proxy.url, {
      transports: ["websocket"],
      auth: { pid, offset: "#0" },
    });
    const side = once<[Socket]>(srv.io, "connection");
    await connected(forger);
    const [s] = await side;
    assert.equal(s.recovered, false);
    assert.equal(srv.io.stats.recoveryMissesOffset, 1);
  });
});

describe("recovery: dynamic namespaces", () => {
  it("a parent's broadcast reaches each child's clients with one offset, the child's own", async () => {
    const env = await setup();
    const { srv, proxy } = env;
    const parent = srv.io.of(/^\/dyn-\d+$/);
    const clients = ["/dyn-1", "/dyn-2"].map((nsp) =>
      client(scope, proxy.url + nsp, { transports: ["websocket"] }),
    );
    await Promise.all(clients.map((c) => connected(c)));
    const args: unknown[][][] = clients.map(() => []);
    for (const [i, c] of clients.entries()) {
      c.on("n", (...a: unknown[]) => {
        args[i]!.push(a);
      });
    }
    parent.emit("n", 1);
    await waitFor(() => args.every((a) => a.length === 1), 3000, "both children");
    for (const [a] of args) {
      assert.equal(a!.length, 2, "the value and one offset");
      assert.equal(a![0], 1);
      assert.equal(typeof a![1], "string");
    }
  });
});

describe("recovery: middleware", () => {
  for (const skipMiddlewares of [true, false]) {
    it(`skipMiddlewares: ${skipMiddlewares}`, async () => {
      const env = await setup({ skipMiddlewares });
      const { srv, proxy } = env;
      const seen: boolean[] = [];
      srv.io.use((s, next) => {
        seen.push(s.recovered);
        next();
      });
      const { c, socket, got } = await joinAndReceive(env);
      await lose(proxy, c, socket, "cut");
      srv.io.emit("n", 1);
      const again = await reconnect(srv, c);
      assert.equal(again.recovered, true);
      assert.deepEqual(seen, skipMiddlewares ? [false] : [false, true]);
      await waitFor(() => got.length >= 2, 3000, "the replay");
      assert.deepEqual(got, [0, 1]);
    });
  }
});

describe("recovery: asynchronous middleware", () => {
  it("what is broadcast while a restored socket's middleware runs is replayed after the missed packets", async () => {
    const env = await setup({ skipMiddlewares: false });
    const { srv, proxy } = env;
    let entered = false;
    let open: (() => void) | undefined;
    srv.io.use((s, next) => {
      if (!s.recovered) return next();
      entered = true;
      open = () => next();
    });
    const { c, socket, got } = await joinAndReceive(env);
    await lose(proxy, c, socket, "down");
    srv.io.emit("n", 1);
    const again = once<[Socket]>(srv.io, "connection");
    c.connect();
    await waitFor(() => entered, 3000, "the middleware of the restored socket");
    srv.io.emit("n", 2); // while the middleware runs
    srv.io.emit("n", 3);
    open!();
    const [s] = await again;
    assert.equal(s.recovered, true);
    await waitFor(() => got.length >= 4, 3000, "the replay");
    srv.io.emit("n", 4);
    await waitFor(() => got.length >= 5, 3000, "a live broadcast");
    await quietPeriod(100);
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
  });
});

describe("recovery off", () => {
  it("no pid in the CONNECT reply, no offset on events, nothing kept", async () => {
    const env = await setup(null);
    const { srv } = env;
    const { c, socket } = await join(env, { transports: ["websocket"] });
    const args: unknown[][] = [];
    c.on("n", (...a: unknown[]) => args.push(a));
    srv.io.emit("n", "a");
    socket.emit("n", "b");
    await waitFor(() => args.length === 2, 3000, "the events");
    assert.deepEqual(args, [["a"], ["b"]]);
    assert.equal(privateState(c).pid, undefined);
    assert.equal(socket.pid, undefined);
    assert.equal(socket.recovered, false);
    assert.equal((srv.io.of("/").adapter as MemoryAdapter).recoveryStats, undefined);
  });
});

describe("connectionStateRecovery option", () => {
  it("validated: defaults as socket.io's, bad values and unknown keys refused", async () => {
    const { Server } = await import("@switchyard/server");
    assert.throws(
      () => new Server({ connectionStateRecovery: { maxDisconnectionDuration: -1 } }),
      /connectionStateRecovery\.maxDisconnectionDuration/,
    );
    assert.throws(
      () =>
        new Server({ connectionStateRecovery: { skipMiddlewares: "yes" as unknown as boolean } }),
      /connectionStateRecovery\.skipMiddlewares/,
    );
    assert.throws(
      () => new Server({ connectionStateRecovery: { maxPacket: 5 } as never }),
      /did you mean "connectionStateRecovery\.maxPackets"/,
    );
    assert.throws(
      () => new Server({ connectionStateRecovery: true as never }),
      /connectionStateRecovery/,
    );
    const io = new Server({ connectionStateRecovery: {} });
    const nsp = io.of("/");
    assert.deepEqual(nsp.recovery, {
      maxDisconnectionDuration: 120_000,
      skipMiddlewares: true,
      maxPackets: 10_000,
      maxBytes: 16 * 1024 * 1024,
    });
    await io.close();
  });
});
