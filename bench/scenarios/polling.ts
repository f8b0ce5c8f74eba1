/**
 * Fan-out to 1,000 clients on the long-polling transport only (64 B): isolated bursts of
 * 100 ticks, then flat out (POSTs of 20 ticks, four in flight): deliveries/s, server CPU
 * per delivery, every client checked.
 */
import {
  type Impl,
  killEverything,
  type ServerHandle,
  type StartOptions,
  startServer,
  startWorker,
} from "../lib/harness.js";
import { connectClients, fanout, fanoutMetrics } from "./phases.js";
import type { Mode, RunResult, Scenario } from "./types.js";

export const polling: Scenario = {
  name: "polling",
  title: "Long-polling only",
  impls: ["switchyard", "socketio", "bare-ws"],
  metrics: fanoutMetrics("Fan-out to 1,000 long-polling clients, 64 B", "poll", true),
  run: (impl, mode) => runPolling(impl, mode),
};

export async function runPolling(
  impl: Impl,
  mode: Mode,
  start: StartOptions = {},
): Promise<RunResult> {
  let server: ServerHandle | undefined;
  try {
    server = await startServer(impl, start);
    const w = await startWorker();
    const c = await connectClients(server, w, 1000, "polling", 200);
    if (c.failed > 0)
      throw new Error(`${c.failed} clients failed to connect: ${JSON.stringify(c.errors)}`);
    await w.call("join", { rooms: 1, concurrency: 200 });
    const f = await fanout(server, w, "poll", {
      size: 64,
      n: 20,
      roomsPerPost: 1,
      window: 4,
      flatMs: mode === "quick" ? 1500 : 10_000,
      bursts: mode === "quick" ? 1 : 5,
      burstN: 100,
    });
    return { metrics: f.figures, notes: { connect: c, fanout: f.raw } };
  } finally {
    await server?.stop();
    killEverything();
  }
}
