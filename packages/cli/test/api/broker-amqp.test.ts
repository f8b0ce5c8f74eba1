// The API's broker channel over RabbitMQ: two nodes on AmqpBus; a backend publishing an
// operation on the documented channel (routing key "sy." + base64url(channel)) reaches the
// clients of both nodes once; HTTP through one node reaches the other's clients.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, test } from "node:test";
import { AmqpBus, routingKey } from "@switchyard/amqp";
import { createAdapter } from "@switchyard/server";
import { type RabbitServer, startRabbitMQ, waitFor } from "@switchyard/test-harness";
import { Clients, call, collect, type Node, PUBLISH_KEY, startNode } from "./helpers.ts";

const CHANNEL = "switchyard#api#v1";

describe("api: two nodes over RabbitMQ", () => {
  let rabbit: RabbitServer;
  const buses: AmqpBus[] = [];
  const nodes: Node[] = [];
  const clients = new Clients();

  before(async () => {
    rabbit = await startRabbitMQ();
    for (let i = 0; i < 2; i++) {
      const bus = new AmqpBus({ url: rabbit.url });
      buses.push(bus);
      nodes.push(
        await startNode({
          bus,
          server: {
            adapter: createAdapter(bus, { heartbeatInterval: 200, requestsTimeout: 3000 }),
          },
        }),
      );
    }
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.io.of("/").adapter.serverCount()))).every(
          (c) => c === 2,
        ),
      15_000,
      "both nodes see each other",
    );
  });
  after(async () => {
    clients.closeAll();
    for (const n of nodes) await n.close();
    for (const b of buses) await b.close();
    await rabbit?.stop();
  });
  afterEach(() => clients.closeAll());

  test("the routing key is the documented one", () => {
    assert.equal(routingKey(CHANNEL), `sy.${Buffer.from(CHANNEL).toString("base64url")}`);
  });

  test("an operation published by a backend on the channel reaches both nodes' clients once", async () => {
    const [n0, n1] = nodes as [Node, Node];
    const a = await clients.connect(n0);
    const b = await clients.connect(n1);
    const gotA = collect(a, "amqp-ev");
    const gotB = collect(b, "amqp-ev");
    const backend = new AmqpBus({ url: rabbit.url });
    try {
      backend.publish(
        CHANNEL,
        Buffer.from(JSON.stringify({ op: "join", rooms: [a.id, b.id], join: ["q"] })),
      );
      backend.publish(
        CHANNEL,
        Buffer.from(JSON.stringify({ op: "publish", event: "amqp-ev", data: 1, rooms: ["q"] })),
      );
      await backend.flush();
      await waitFor(() => gotA.length === 1 && gotB.length === 1, 10_000, "both clients got it");
    } finally {
      await backend.close();
    }
    // and HTTP through node 0 to the room on both nodes (joined over the broker)
    const r = await call(n0, "POST", "/api/v1/publish", {
      key: PUBLISH_KEY,
      body: { event: "amqp-ev", data: 2, rooms: ["q"] },
    });
    assert.equal(r.status, 200);
    await waitFor(() => gotA.length === 2 && gotB.length === 2, 10_000, "HTTP publish on both");
    assert.deepEqual(gotA, [[1], [2]]);
    assert.deepEqual(gotB, [[1], [2]]);
  });
});
