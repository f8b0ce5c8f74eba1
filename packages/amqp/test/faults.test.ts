// Broker faults and hostile bus traffic for a cluster over AmqpBus: three Servers in
// this process, real clients, a real RabbitMQ node killed and restarted mid-traffic,
// junk published straight to the exchange with plain amqplib (see the harness's
// cluster-faults.ts).
import assert from "node:assert/strict";
import { runClusterFaults, startRabbitMQ } from "@switchyard/test-harness";
import amqp from "amqplib";
import { AmqpBus } from "../src/index.js";

runClusterFaults({
  name: "AmqpBus",
  startBroker: () => startRabbitMQ(),
  createBus: (url) => new AmqpBus({ url, maxReconnectDelayMs: 500, connectTimeoutMs: 2000 }),
  rawPublisher: async (broker) => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    return {
      async publish(channel, payload) {
        // docs/wire-format.md: "sy." + base64url(utf8(channel)) for channels up to 189 bytes.
        const key = `sy.${Buffer.from(channel, "utf8").toString("base64url")}`;
        assert.ok(key.length <= 255);
        ch.publish("switchyard", key, payload);
        await ch.waitForConfirms();
      },
      async close() {
        await conn.close();
      },
    };
  },
  upTimeoutMs: 15_000,
});
