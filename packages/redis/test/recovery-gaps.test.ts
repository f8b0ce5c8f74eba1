// Connection state recovery over the Redis log, when the log fails: a broadcast that
// could not be logged still reaches the clients that are there, and no client recovers
// across it (the epoch is reset), so a gap is detected, never silent. One Switchyard
// server (ClusterAdapter over a real RedisBus + RedisRecoveryLog), a real
// socket.io-client; Redis refuses the log's scripts for a while (an ACL change).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { type ClusterAdapter, createAdapter, Server } from "@switchyard/server";
import { type RedisServer, Scope, startRedis, waitFor } from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { io as connect } from "socket.io-client";
import { RedisBus, RedisRecoveryLog } from "../src/index.js";

let redis: RedisServer;
let admin: Redis;
before(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
after(async () => {
  admin.disconnect();
  await redis.stop();
});

test("a broadcast the log refused is delivered, and nobody recovers across it (epoch reset, counted)", async () => {
  const scope = new Scope(10_000);
  try {
    const bus = scope.add(new RedisBus({ url: redis.url }), (b) => b.close());
    await bus.ready();
    const log = scope.add(new RedisRecoveryLog({ url: redis.url }), (l) => l.close());
    const http = createServer();
    const io = scope.add(
      new Server(http, {
        connectionStateRecovery: { maxDisconnectionDuration: 30_000 },
        adapter: createAdapter(bus, { heartbeatInterval: 100_000, recovery: log }),
      }),
      (s) => s.close(),
    );
    io.on("connection", (socket) => {
      if (!socket.recovered) socket.join("news");
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const { port } = http.address() as AddressInfo;
    const url = `http://127.0.0.1:${port}`;

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
    await admin.call("ACL", "SETUSER", "default", "-eval", "-evalsha");
    try {
      io.to("news").emit("news", "two");
      await waitFor(() => gotHere.length === 2, 5000, "two, unlogged, still delivered");
    } finally {
      await admin.call("ACL", "SETUSER", "default", "+@all");
    }
    const stats = (io.of("/").adapter as unknown as ClusterAdapter).logRecoveryStats!;
    assert.equal(stats.unlogged, 1, "counted as unlogged");
    assert.equal(gotHere[1], "two");
    // No broadcast and no heartbeat is due: the node retries the reset on its own.
    const before = await admin.get("{switchyard:recovery:/}:epoch");
    await waitFor(
      async () => (await admin.get("{switchyard:recovery:/}:epoch")) !== before,
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
