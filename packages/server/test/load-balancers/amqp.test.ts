/**
 * Switchyard behind real haproxy and nginx, over RabbitMQ: the round-robin configs of
 * `deploy/` in front of three node processes whose adapters talk over a real
 * rabbitmq-server, with the checks of lb-suite.ts (redis.test.ts runs every config).
 */
import { after, before } from "node:test";
import { type RabbitServer, Scope, startRabbitMQ } from "@switchyard/test-harness";
import { type LbNode, SECRET, startNodes } from "./lb-helpers.js";
import { ALL_BALANCERS, behind, type MatrixContext } from "./lb-suite.js";

let rabbit: RabbitServer;
let nodes: LbNode[] = [];
const suite = new Scope(15_000);

before(async () => {
  rabbit = suite.add(await startRabbitMQ(), (r) => r.stop());
  nodes = await startNodes(suite, 3, {
    bus: "amqp",
    url: rabbit.url,
    exchange: `switchyard-lb-${process.pid}`,
    secret: SECRET,
  });
});
after(() => suite.close());

const ctx: MatrixContext = { suite, nodes: () => nodes, perTransport: 100 };
for (const balancer of ALL_BALANCERS.filter(
  (b) => b.file === "haproxy.cfg" || b.file === "nginx.conf",
)) {
  behind(ctx, balancer);
}
