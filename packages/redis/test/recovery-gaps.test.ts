// Connection state recovery over the Redis log, when things go wrong. When the log
// fails: a broadcast that could not be logged still reaches the clients that are there,
// and no client recovers across it (the epoch is reset), so a gap is detected, never
// silent (Redis refuses the log's scripts for a while: an ACL change). Under a flood of
// reconnects with forged ids: one bounded Redis command each, none for a malformed one.
// Without a log: each node recovers its own clients, with its own offsets, warned once.
// Switchyard servers (ClusterAdapter over a real RedisBus, + RedisRecoveryLog), real
// socket.io-clients.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { type ClusterAdapter, createAdapter, Server } from "@switchyard/server";
import { Scope, waitFor } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import { RedisBus, RedisRecoveryLog } from "../src/index.js";
import { redisForFile } from "./redis-for-file.js";

const env = redisForFile();

/** A server with the log on a fresh port; closed by `scope`. */
async function serve(scope: Scope): Promise<{ io: Server; url: string }> {
  const bus = scope.add(new RedisBus({ url: env.redis.url }), (b) => b.close());
  await bus.ready();
  const log = scope.add(new RedisRecoveryLog({ url: env.redis.url }), (l) => l.close());
  const http = createServer();
  const io = scope.add(
    new Server(http, {
      connectionStateRecovery: { maxDisconnectionDuration: 30_000 },
      adapter: createAdapter(bus, { heartbeatInterval: 100_000, recovery: log }),
    }),
    (s) => s.close(),
  );
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return { io, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
}

test("a broadcast the log refused is delivered, and nobody recovers across it (epoch reset, counted)", async () => {
  const scope = new Scope(10_000);
  try {
    const { io, url } = await serve(scope);
    io.on("connection", (socket) => {
      if (!socket.recovered) socket.join("news");
    });

    const away = scope.add(
      connect(url, { forceNew: true, transports: ["websocket"], reconnection: false }),
      (s) => s.close(),
    );
    const here = scope.add(
      connect(url, { forceNew: true, transports: ["websocket"], reconnection: false }),
      (s) => s.close(),
    );
    const gotAway: string[] = [];
    const gotHere: string[] = [];
    away.on("news", (t: string) => gotAway.push(t));
    here.on("news", (t: string) => gotHere.push(t));
    await waitFor(() => away.connected && here.connected, 10_000, "both connected");
    io.to("news").emit("news", "one");
    await waitFor(() => gotAway.length === 1 && gotHere.length === 1, 5000, "one");

    // `away` loses its transport (its session is kept), then the log is refused.
    away.io.engine.close();
    await waitFor(() => io.sockets.sockets.size === 1, 5000, "the server saw it go");
    await env.admin.call("ACL", "SETUSER", "default", "-eval", "-evalsha");
    try {
      io.to("news").emit("news", "two");
      await waitFor(() => gotHere.length === 2, 5000, "two, unlogged, still delivered");
    } finally {
      await env.admin.call("ACL", "SETUSER", "default", "+@all");
    }
    const stats = (io.of("/").adapter as unknown as ClusterAdapter).logRecoveryStats!;
    assert.equal(stats.unlogged, 1, "counted as unlogged");
    assert.equal(gotHere[1], "two");
    // No broadcast and no heartbeat is due: the node retries the reset on its own.
    const before = await env.admin.get("{switchyard:recovery:/}:epoch");
    await waitFor(
      async () => (await env.admin.get("{switchyard:recovery:/}:epoch")) !== before,
      5000,
      "the epoch reset once Redis takes scripts again",
    );

    // `away` missed "two", which is not in the log: it must not recover (it would get
    // what follows and never know about "two").
    away.connect();
    await waitFor(() => away.connected, 5000, "away back");
    assert.equal(away.recovered, false, "no recovery across the unlogged broadcast");
    assert.deepEqual(gotAway, ["one"]);
    assert.equal(io.stats.recoveryMissesEpoch, 1);
    assert.equal(stats.missEpoch, 1);
    io.to("news").emit("news", "three");
    await waitFor(() => gotHere.length === 3 && gotAway.length === 2, 5000, "three");
  } finally {
    await scope.close();
  }
});

/** Scripts Redis ran: every lookup of the log is one (live states are written without). */
async function scriptCalls(): Promise<number> {
  const info = String(await env.admin.call("INFO", "commandstats"));
  let calls = 0;
  for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) calls += Number(m[2]);
  return calls;
}

test("a flood of reconnects with forged ids: fresh sessions, one Redis command each, none for a malformed id", async () => {
  const scope = new Scope(10_000);
  try {
    const { io, url } = await serve(scope);
    const epoch = (await env.admin.get("{switchyard:recovery:/}:epoch")) ?? "x";
    const N = 100;
    const run = async (auth: (i: number) => Record<string, unknown>): Promise<void> => {
      // In batches of 25 clients at a time.
      for (let b = 0; b < N; b += 25) {
        const batch: ClientSocket[] = [];
        for (let i = b; i < b + 25; i++) {
          batch.push(
            scope.add(
              connect(url, {
                forceNew: true,
                transports: ["websocket"],
                reconnection: false,
                auth: auth(i),
              }),
              (s) => s.close(),
            ),
          );
        }
        await waitFor(() => batch.every((s) => s.connected), 10_000, "a batch connected");
        for (const s of batch) {
          assert.equal(s.recovered, false);
          s.close();
        }
      }
    };
    await waitFor(
      async () => (await env.admin.exists("{switchyard:recovery:/}:epoch")) === 1,
      5000,
    );
    const c0 = await scriptCalls();
    // Well-formed: a random pid, an offset of the right epoch.
    await run((i) => ({ pid: `forged-pid-${i}-abcdefgh`, offset: `${epoch}:${i + 1}:${i + 1}-0` }));
    const c1 = await scriptCalls();
    // Malformed: no lookup at all.
    await run((i) => ({ pid: `forged-pid-${i}`, offset: `not an offset ${i}` }));
    const c2 = await scriptCalls();
    // (+1: the first use of the script is an EVALSHA answered NOSCRIPT, then its EVAL.)
    assert.ok(c1 - c0 >= N && c1 - c0 <= N + 1, `${c1 - c0} scripts for ${N} forged reconnects`);
    assert.equal(c2 - c1, 0, "none for a malformed one");
    assert.equal(io.stats.recoveryMissesUnknownSession, N);
    assert.equal(io.stats.recoveryMissesOffset, N);
  } finally {
    await scope.close();
  }
});

test("without a log: a client recovers on the node it left, with that node's offsets only; on another node it gets a fresh session; warned once", async () => {
  const scope = new Scope(10_000);
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => {
    if (w.code === "SY_WARN_RECOVERY_NODE_LOCAL") warnings.push(w.message);
  };
  process.on("warning", onWarning);
  scope.add(undefined, () => process.off("warning", onWarning));
  try {
    const node = async () => {
      const bus = scope.add(new RedisBus({ url: env.redis.url }), (b) => b.close());
      await bus.ready();
      const http = createServer();
      const io = scope.add(
        new Server(http, {
          connectionStateRecovery: { maxDisconnectionDuration: 30_000 },
          adapter: createAdapter(bus, { heartbeatInterval: 100_000 }),
        }),
        (s) => s.close(),
      );
      io.on("connection", (socket) => {
        if (!socket.recovered) socket.join("news");
      });
      await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
      return { io, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
    };
    const a = await node();
    const b = await node();
    const client = scope.add(
      connect(a.url, { forceNew: true, transports: ["websocket"], reconnection: false }),
      (s) => s.close(),
    );
    const got: unknown[][] = [];
    client.on("news", (...args: unknown[]) => got.push(args));
    await waitFor(() => client.connected, 5000, "connected");
    await (a.io.of("/").adapter as unknown as ClusterAdapter).settled();
    await (b.io.of("/").adapter as unknown as ClusterAdapter).settled();
    b.io.to("news").emit("news", "one"); // from the other node
    await waitFor(() => got.length === 1, 5000, "one");
    client.io.engine.close();
    await waitFor(() => a.io.sockets.sockets.size === 0, 5000, "a saw it go");
    b.io.to("news").emit("news", "two");
    // Node A stamps what it receives; it must have "two" before the client comes back.
    await waitFor(
      () =>
        ((a.io.of("/").adapter as unknown as { recoveryStats?: { packets: number } }).recoveryStats
          ?.packets ?? 0) >= 2,
      5000,
      "A logged two",
    );
    client.connect();
    await waitFor(() => client.connected && got.length === 2, 5000, "back on A with two");
    assert.equal(client.recovered, true);
    // One offset each (A's), never B's as well.
    for (const args of got) assert.equal(args.length, 2, JSON.stringify(args));
    assert.deepEqual(
      got.map((x) => x[0]),
      ["one", "two"],
    );
    // The same client, sent to node B instead: B never heard of its session.
    const s = client as unknown as { _pid: string; _lastOffset: string };
    const other = scope.add(
      connect(b.url, {
        forceNew: true,
        transports: ["websocket"],
        reconnection: false,
        auth: { pid: s._pid, offset: s._lastOffset },
      }),
      (x) => x.close(),
    );
    await waitFor(() => other.connected, 5000, "on B");
    assert.equal(other.recovered, false);
    assert.equal(b.io.stats.recoveryMissesUnknownSession, 1);
    assert.ok(warnings.length <= 1, "warned once per process");
  } finally {
    await scope.close();
  }
});
