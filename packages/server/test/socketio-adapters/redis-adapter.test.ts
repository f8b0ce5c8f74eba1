/**
 * The official `@socket.io/redis-adapter` 8.3 (from npm, unchanged, on ioredis), classic
 * pub/sub (`createAdapter`) and sharded pub/sub (`createShardedAdapter`, Redis ≥ 7), between
 * 3 Switchyard processes over a real Redis started by the harness, with real
 * socket.io-client 4.8 clients on every node (WebSocket, and polling that upgrades): the
 * checks of official-adapter-suite.ts — broadcasts to all / rooms / `except` exactly once
 * and in order, binary, `fetchSockets` across nodes with remote emit/join/leave/disconnect,
 * `socketsJoin`/`socketsLeave`/`disconnectSockets`, `serverSideEmit` with acks, broadcast
 * acks with a timeout counting every node's clients. Each node sets its adapter with
 * `io.adapter(createAdapter(pub, sub))` after `new Server()`, so the main namespace's
 * adapter is replaced as socket.io does.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startRedis } from "@switchyard/test-harness";
import { type SioNode, startSioCluster, type TestCluster } from "./helpers.js";
import { nodeLossTest, officialAdapterTests } from "./official-adapter-suite.js";

for (const adapter of ["redis", "redis-sharded"] as const) {
  describe(`@socket.io/redis-adapter (${adapter === "redis" ? "classic" : "sharded"}) on 3 Switchyard processes`, () => {
    let cluster: TestCluster | undefined;

    before(async () => {
      cluster = await startSioCluster({
        nodes: [0, 1, 2].map(() => ({ server: "switchyard", adapter })),
        async startBroker(scope) {
          const redis = scope.add(await startRedis(), (x) => x.stop());
          return redis.url;
        },
      });
    });
    after(() => cluster?.close());

    const started = () => {
      if (cluster === undefined) throw new Error("cluster did not start");
      return cluster;
    };
    officialAdapterTests(test, started);
    test("a broadcast ack without timeout() ends after socket.io-adapter's 5 s, with the answers", async () => {
      const c = cluster!;
      // The suite's C-silent never answers: every other connected client does.
      const answering = c.clients.filter((x) => x.socket.connected && x.name !== "C-silent");
      assert.ok(c.clients.some((x) => x.name === "C-silent" && x.socket.connected));
      const r = await c.nodes[1]!.call<{ error: string | null; responses: string[]; ms: number }>(
        "ackNoTimeout",
      );
      assert.match(r.error ?? "", /timed out|timeout/i);
      assert.deepEqual([...r.responses].sort(), answering.map((x) => x.name).sort());
      assert.ok(r.ms >= 4900 && r.ms < 9000, `ended after ${r.ms} ms`);
    });
    test("a fetched remote socket's timeout().emitWithAck goes through the adapter", async () => {
      const c = cluster!;
      const [a, , nodeC] = c.nodes as [SioNode, SioNode, SioNode];
      const target = c.clients.find((x) => x.node === nodeC && x.socket.connected);
      assert.ok(target !== undefined);
      const r = await a.call<{ ack?: unknown; error?: string }>("remoteAck", {
        id: target.id,
        timeoutMs: 5000,
      });
      assert.deepEqual(r, { ack: target.name });
      assert.deepEqual(target.received("ask").at(-1), "A", "the client got the emit from node A");
    });
    // Last: it SIGKILLs node C.
    nodeLossTest(test, started as never); // typed for startCluster's nodes; it needs kill()
  });
}
