import { createAdapter, Server } from "@switchyard/server";
import { type ServerClass, startApp } from "./app.js";

// Cluster scenario: BENCH_BUS=redis|amqp + BENCH_BUS_URL put the node on a shared bus.
const bus = process.env.BENCH_BUS;
const url = process.env.BENCH_BUS_URL ?? "";
let opts: object | undefined;
if (bus === "redis") {
  const { RedisBus } = await import("@switchyard/redis");
  opts = { adapter: createAdapter(new RedisBus({ url })) };
} else if (bus === "amqp") {
  const { AmqpBus } = await import("@switchyard/amqp");
  opts = { adapter: createAdapter(new AmqpBus({ url, exchange: "switchyard-bench" })) };
} else if (bus !== undefined) {
  // The official @socket.io/redis-adapter, or RedisBus with session forwarding on.
  opts = await (await import("./switchyard-cluster.js")).clusterVariantOptions(bus, url);
}

startApp(Server as unknown as ServerClass, "switchyard", opts);
