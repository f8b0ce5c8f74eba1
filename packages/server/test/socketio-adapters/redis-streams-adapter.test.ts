/**
 * The official `@socket.io/redis-streams-adapter` (from npm, unchanged, on ioredis)
 * between 3 Switchyard processes over a real Redis started by the harness, with real
 * socket.io-client 4.8 clients on every node: see official-adapter-suite.ts for what is
 * checked.
 */
import { describe, test } from "node:test";
import { startRedis } from "@switchyard/test-harness";
import { nodeLossTest, officialAdapterTests, startCluster } from "./official-adapter-suite.js";
import { suiteCluster } from "./suite-cluster.js";

describe("@socket.io/redis-streams-adapter on 3 Switchyard processes", () => {
  const started = suiteCluster(() =>
    startCluster({
      adapter: "redis-streams",
      async startBroker(scope) {
        const redis = scope.add(await startRedis(), (x) => x.stop());
        return redis.url;
      },
      // Short blocking reads, so a closing node's reader ends quickly.
      options: { blockTimeInMs: 1000 },
    }),
  );
  officialAdapterTests(test, started);
  nodeLossTest(test, started);
});
