// The cross-process cluster conformance suite, with AmqpBus as the bus: three
// Switchyard server processes over one real RabbitMQ node.
import { pathToFileURL } from "node:url";
import { runClusterConformance, startRabbitMQ } from "@switchyard/test-harness";

runClusterConformance({
  name: "AmqpBus",
  startBroker: async () => {
    const rabbit = await startRabbitMQ();
    return { url: rabbit.url, stop: () => rabbit.stop() };
  },
  busModule: pathToFileURL(new URL("./fixtures/conformance-bus.ts", import.meta.url).pathname).href,
  busFactory: "createBus",
});
