/**
 * Session forwarding over a real RabbitMQ (AmqpBus carries only the announcements):
 * three nodes behind a round-robin balancer, polling → WebSocket clients.
 */
import { after, afterEach, before, describe, it } from "node:test";
import { AmqpBus } from "@switchyard/amqp";
import { type RabbitServer, startRabbitMQ } from "@switchyard/test-harness";
import { Scope, TRANSPORT_MODES } from "../socketio/helpers.js";
import { roundRobinScenario, startNodes } from "./helpers.js";

let rabbit: RabbitServer | undefined;
const scope = new Scope();
before(async () => {
  rabbit = await startRabbitMQ();
});
afterEach(() => scope.close());
after(async () => {
  await scope.close();
  await rabbit?.stop();
});

async function amqpBus(): Promise<AmqpBus> {
  const bus = scope.add(new AmqpBus({ url: rabbit!.url, exchange: "switchyard-fwd-test" }), (b) =>
    b.close(),
  );
  await bus.ready();
  return bus;
}

describe("session forwarding over RabbitMQ behind a round-robin balancer", () => {
  for (const mode of TRANSPORT_MODES.filter((m) => m.name !== "websocket")) {
    it(`${mode.name}: one session per client, acks from it, broadcasts once and in order`, async () => {
      const nodes = await startNodes(scope, [await amqpBus(), await amqpBus(), await amqpBus()]);
      await roundRobinScenario(scope, nodes, mode);
    });
  }
});
