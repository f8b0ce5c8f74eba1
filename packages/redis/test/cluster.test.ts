// The cross-process cluster conformance suite, with RedisBus as the bus: three
// Switchyard server processes over one real redis-server.
import { pathToFileURL } from "node:url";
import { runClusterConformance, startRedis } from "@switchyard/test-harness";

runClusterConformance({
  name: "RedisBus",
  startBroker: async () => {
    const redis = await startRedis();
    return { url: redis.url, stop: () => redis.stop() };
  },
  busModule: pathToFileURL(new URL("./fixtures/conformance-bus.ts", import.meta.url).pathname).href,
  busFactory: "createBus",
});
