/**
 * The mixed cluster (mixed-cluster.ts) on real RabbitMQ: the Flask nodes use
 * `message_queue="amqp://…"` (kombu: the "flask-socketio" fanout exchange, one queue per
 * node), the Switchyard peers the same exchange through the bridge.
 */
import { startRabbitMQ, waitFor } from "@switchyard/test-harness";
import amqp from "amqplib";
import { mixedCluster } from "./mixed-cluster.js";

mixedCluster({
  name: "RabbitMQ",
  modules: ["kombu"],
  jsonEmitter: false,
  async start() {
    const rabbit = await startRabbitMQ();
    const conn = await amqp.connect(rabbit.url);
    const ch = await conn.createChannel();
    return {
      url: rabbit.url,
      // Every listener (kombu's `flask-socketio.<uuid>` queues, the bridges' own) is a
      // queue bound to the exchange with a consumer.
      waitListeners: (channel, n) =>
        waitFor(
          async () => {
            const out = await rabbit.rabbitmqctl([
              "list_bindings",
              "source_name",
              "destination_name",
              "--no-table-headers",
              "--quiet",
            ]);
            const queues = out
              .split("\n")
              .map((l) => l.trim().split(/\s+/))
              .filter(([src]) => src === channel);
            if (queues.length < n) return false;
            const consumers = await rabbit.rabbitmqctl([
              "list_queues",
              "name",
              "consumers",
              "--no-table-headers",
              "--quiet",
            ]);
            const live = new Set(
              consumers
                .split("\n")
                .map((l) => l.trim().split(/\s+/))
                .filter(([, c]) => Number(c) > 0)
                .map(([q]) => q),
            );
            return queues.filter(([, q]) => live.has(q ?? "")).length >= n;
          },
          20000,
          `${n} consuming queues bound to ${channel}`,
        ),
      publishRaw: async (channel, body) => {
        ch.publish(channel, "", body, {
          contentType: "application/json",
          contentEncoding: "utf-8",
        });
      },
      tap: async (channel, onBody) => {
        // The exchange as kombu declares it (fanout, not durable), an exclusive queue of our own.
        await ch.assertExchange(channel, "fanout", { durable: false, autoDelete: false });
        const { queue } = await ch.assertQueue("", { exclusive: true });
        await ch.bindQueue(queue, channel, "");
        await ch.consume(queue, (m) => m && onBody(m.content), { noAck: true });
      },
      stop: async () => {
        await conn.close().catch(() => {});
        await rabbit.stop();
      },
    };
  },
});
