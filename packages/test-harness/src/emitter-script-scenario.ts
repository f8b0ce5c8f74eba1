/**
 * A script that emits through an `Emitter` over a real broker and closes it must deliver
 * its events and exit: a child process runs the README's snippet (the bus package's
 * `fixtures/emit-and-exit.ts`), a real socket.io-client connected to a real Switchyard
 * server (cluster adapter over the package's bus) receives them.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Bus, Server } from "@switchyard/server";
import { type Socket as ClientSocket, io as connectClient } from "socket.io-client";
import { runFixture, trapUnhandled } from "./bus-helpers.js";
import { waitFor } from "./wait.js";

export interface EmitterScriptScenarioOptions {
  /** Broker name in the suite title: "an Emitter script over <name>". */
  name: string;
  /** Starts the broker; `stop()` runs after the suite. */
  startBroker: () => Promise<{ url: string; stop(): Promise<void> }>;
  /** Builds the bus the server's cluster adapter uses, resolving once it is connected. */
  createBus: (url: string) => Promise<Bus>;
  /** Path of the script run as `<fixture> <broker url> <count>`. */
  fixture: string;
  /** Events `seq` the script emits (between the `tick` and the `bin`). */
  count: number;
}

/** Registers the suite (`trapUnhandled`, `describe`, hooks and the test) in the calling file. */
export function runEmitterScriptScenario(opts: EmitterScriptScenarioOptions): void {
  const { fixture: FIXTURE, count: COUNT } = opts;

  const unhandled = trapUnhandled();
  after(() => {
    unhandled.dispose();
    unhandled.assertNone();
  });

  describe(`an Emitter script over ${opts.name}`, () => {
    let broker: { url: string; stop(): Promise<void> };
    let bus: Bus;
    let io: Server;
    let client: ClientSocket | undefined;
    let port = 0;
    before(async () => {
      const { createAdapter, Server } = await import("@switchyard/server");
      broker = await opts.startBroker();
      bus = await opts.createBus(broker.url);
      const http = createServer();
      io = new Server(http, { adapter: createAdapter(bus) });
      io.on("connection", async (socket) => {
        await socket.join("symbol:ACME");
        socket.emit("joined");
      });
      await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
      port = (http.address() as AddressInfo).port;
    });
    after(async () => {
      client?.close();
      await io?.close();
      await bus?.close();
      await broker?.stop();
    });

    test("emit(); await emitter.close() delivers every event and the process exits", async () => {
      const c = connectClient(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
      client = c;
      const got: Array<[string, unknown]> = [];
      c.onAny((event: string, arg: unknown) => got.push([event, arg]));
      await new Promise<void>((resolve) => c.once("joined", () => resolve()));
      got.length = 0;

      const result = await runFixture(FIXTURE, [broker.url, String(COUNT)], 20_000);
      assert.equal(result.signal, null, `the script had to be killed:\n${result.output}`);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), "closed", "no warning, no drop");

      await waitFor(
        () => got.length >= COUNT + 2,
        5000,
        () => `all events (${got.length})`,
      );
      assert.deepEqual(got[0], ["tick", { price: 12.5 }]);
      assert.deepEqual(
        got.slice(1, COUNT + 1).map(([ev, n]) => `${ev}:${String(n)}`),
        Array.from({ length: COUNT }, (_, i) => `seq:${i}`),
        "every event, in order",
      );
      const [ev, bin] = got[COUNT + 1]!;
      assert.equal(ev, "bin");
      assert.deepEqual([...new Uint8Array(bin as ArrayBuffer)], [1, 2, 3]);
    });
  });
}
