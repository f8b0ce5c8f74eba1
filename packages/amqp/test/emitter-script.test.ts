/**
 * A script that emits through an `Emitter` over a real RabbitMQ and closes it must deliver
 * its events and exit: a child process runs the README's snippet, a real
 * socket.io-client connected to a real Switchyard server (cluster adapter over a
 * AmqpBus) receives them. The scenario is shared with Redis: runEmitterScriptScenario.
 */
import { runEmitterScriptScenario, startRabbitMQ } from "@switchyard/test-harness";
import { AmqpBus } from "../src/index.js";

runEmitterScriptScenario({
  name: "RabbitMQ",
  startBroker: startRabbitMQ,
  createBus: async (url) => {
    const bus = new AmqpBus({ url });
    await bus.ready();
    return bus;
  },
  fixture: new URL("./fixtures/emit-and-exit.ts", import.meta.url).pathname,
  count: 300,
});
