/** The Flask bridge over real RabbitMQ: see bridge-helpers.ts for the scenarios. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AmqpBus } from "@switchyard/amqp";
import { type RabbitServer, requirePythonModules, startRabbitMQ } from "@switchyard/test-harness";
import amqp from "amqplib";
import { scenarios, survivesRestart } from "./bridge-helpers.js";

describe("Flask bridge over real RabbitMQ", { timeout: 180_000 }, () => {
  let rabbit: RabbitServer;
  let conn: amqp.ChannelModel;
  let ch: amqp.Channel;
  before(async () => {
    requirePythonModules(["socketio", "flask_socketio", "kombu"]);
    rabbit = await startRabbitMQ();
    conn = await amqp.connect(rabbit.url);
    ch = await conn.createChannel();
  });
  after(async () => {
    await cluster.close();
    await conn?.close().catch(() => {});
    await rabbit?.stop();
  });
  const cluster = scenarios(
    () => ({
      url: rabbit.url,
      makeBus: () => new AmqpBus({ url: rabbit.url }),
      publishRaw: async (exchange, body) => {
        ch.publish(exchange, "", Buffer.from(body), {
          contentType: "text/plain",
          contentEncoding: "utf-8",
        });
      },
    }),
    "flask-socketio",
  );

  test("declares the fanout exchange exactly as kombu does, one x-expires queue per node bound with ''", async () => {
    const exchanges = await rabbit.rabbitmqctl([
      "list_exchanges",
      "name",
      "type",
      "durable",
      "auto_delete",
      "internal",
      "arguments",
    ]);
    const line = exchanges.split("\n").find((l) => l.startsWith("flask-socketio\t"));
    assert.equal(line?.trim(), "flask-socketio\tfanout\tfalse\tfalse\tfalse\t[]");
    const queues = (await rabbit.rabbitmqctl(["list_queues", "name", "arguments", "consumers"]))
      .split("\n")
      .filter((l) => l.startsWith("switchyard-flask."));
    assert.equal(queues.length, 2, queues.join("\n"));
    for (const q of queues) assert.match(q, /x-expires.*300000.*\t1$/);
    const [a] = cluster.nodes();
    assert.equal(a.bridge.connected, true);
  });
  test("reconnects after a RabbitMQ restart: a new queue, bound again, delivers again", (t) =>
    survivesRestart(
      t,
      rabbit.url,
      () => rabbit.restart(),
      async (exchange, body) => {
        // The test's own connection died with the broker: publish on a fresh one.
        const c = await amqp.connect(rabbit.url);
        try {
          const pc = await c.createConfirmChannel();
          pc.publish(exchange, "", Buffer.from(body));
          await pc.waitForConfirms();
        } finally {
          await c.close().catch(() => {});
        }
      },
    ));
});
