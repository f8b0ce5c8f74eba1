// `bus: amqp://…`: two servers over a real RabbitMQ form one cluster; /readyz follows the bus.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { type RabbitServer, startRabbitMQ, waitFor, within } from "@switchyard/test-harness";
import { pino } from "pino";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { type RunningServer, startServer, validateConfig } from "../../src/index.ts";

const silent = pino({ level: "silent" });
const servers: RunningServer[] = [];
const clients: ClientSocket[] = [];
let rabbit: RabbitServer | undefined;

after(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.allSettled(servers.splice(0).map((s) => s.drain()));
  await rabbit?.stop();
});

test("two servers on one RabbitMQ: a broadcast from one reaches the other's clients", async () => {
  rabbit = await startRabbitMQ();
  for (let i = 0; i < 2; i++) {
    const config = validateConfig({
      listen: { host: "127.0.0.1", port: 0 },
      bus: rabbit.url,
      shutdown: { timeout: 3000 },
    });
    servers.push(await startServer(config, { log: silent }));
  }
  const [a, b] = servers as [RunningServer, RunningServer];
  await waitFor(() => a.ready && b.ready, 15_000, "both buses up");
  const c = ioc(`http://127.0.0.1:${a.address.port}`, {
    reconnection: false,
    transports: ["websocket"],
  });
  clients.push(c);
  await within(
    new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("connect_error", reject);
    }),
    5000,
    "connect",
  );
  let received: unknown;
  c.on("news", (x: unknown) => {
    received = x;
  });
  let last = 0;
  await waitFor(
    () => {
      if (received === undefined && Date.now() - last >= 100) {
        last = Date.now();
        b.io.emit("news", "over amqp");
      }
      return received !== undefined;
    },
    10_000,
    "broadcast across RabbitMQ",
  );
  assert.equal(received, "over amqp");
  const res = await fetch(`http://127.0.0.1:${a.address.port}/readyz`);
  assert.equal(res.status, 200);
  await res.text();
});
