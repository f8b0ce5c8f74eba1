/**
 * A script that emits through an `Emitter` over a real Redis and closes it must deliver
 * its events and exit: a child process runs the README's snippet, a real
 * socket.io-client connected to a real Switchyard server (cluster adapter over a
 * RedisBus) receives them. The scenario is shared with RabbitMQ: runEmitterScriptScenario.
 */
import { runEmitterScriptScenario, startRedis } from "@switchyard/test-harness";
import { RedisBus } from "../src/index.js";

runEmitterScriptScenario({
  name: "Redis",
  startBroker: startRedis,
  createBus: async (url) => {
    const bus = new RedisBus({ url });
    await bus.ready();
    return bus;
  },
  fixture: new URL("./fixtures/emit-and-exit.ts", import.meta.url).pathname,
  count: 300,
});
