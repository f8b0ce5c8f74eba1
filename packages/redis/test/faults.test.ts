// Broker faults and hostile bus traffic for a cluster over RedisBus: three Servers in
// this process, real clients, a real redis-server killed and restarted mid-traffic,
// junk PUBLISHed straight to Redis (see the harness's cluster-faults.ts).
import { redisCommand, runClusterFaults, startRedis } from "@switchyard/test-harness";
import { RedisBus } from "../src/index.js";

runClusterFaults({
  name: "RedisBus",
  startBroker: () => startRedis(),
  createBus: (url) => new RedisBus({ url, maxReconnectDelayMs: 200 }),
  rawPublisher: async (broker) => ({
    async publish(channel, payload) {
      await redisCommand(broker.port, ["PUBLISH", channel, payload]);
    },
    close() {},
  }),
  upTimeoutMs: 5000,
});
