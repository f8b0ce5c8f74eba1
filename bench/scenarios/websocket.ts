/**
 * WebSocket traffic, one run per server process, 1,000 clients in one room:
 * 1. echo acks: 100 of them, one `echo` (32 B) in flight each;
 * 2. fan-out 64 B: isolated bursts of 200 ticks (burst latency), then flat out (POSTs
 *    of 20 ticks, four in flight): deliveries/s, server CPU per delivery, loss/order
 *    checked on every client;
 * 3. the same with 1 KB;
 * 4. GET /api latency from a separate process, idle and while 64 B fan-out runs flat out.
 * The bare-ws ceiling runs the same phases.
 */

import type { Impl } from "../lib/harness.js";
import {
  killEverything,
  type ServerHandle,
  type StartOptions,
  startServer,
  startWorker,
} from "../lib/harness.js";
import {
  connectClients,
  echo,
  echoMetrics,
  type FanoutPlan,
  type Figures,
  fanout,
  fanoutMetrics,
  restMetrics,
  restUnderFanout,
} from "./phases.js";
import type { Mode, RunResult, Scenario } from "./types.js";

export function plans(mode: Mode) {
  const quick = mode === "quick";
  const plan = (size: number): FanoutPlan => ({
    size,
    // Flat out: POSTs of 20 ticks, four in flight, keep the server saturated.
    n: 20,
    roomsPerPost: 1,
    window: 4,
    flatMs: quick ? 1500 : 10_000,
    // Isolated bursts of 200 ticks for burst latency.
    bursts: quick ? 1 : 10,
    burstN: 200,
  });
  return {
    clients: 1000,
    echoClients: 100,
    echoMs: quick ? 1500 : 10_000,
    f64: plan(64),
    f1k: plan(1024),
    rest: { ...plan(64), flatMs: quick ? 2500 : 12_000, bursts: 0 },
    restIdleMs: quick ? 1000 : 5000,
  };
}

/** `only`: run just that phase (for profiling). */
export async function runWebsocket(
  impl: Impl,
  mode: Mode,
  start: StartOptions = {},
  only?: "f64" | "echo",
): Promise<RunResult> {
  const p = plans(mode);
  const figures: Figures = {};
  const notes: Record<string, unknown> = {};
  let server: ServerHandle | undefined;
  try {
    server = await startServer(impl, start);
    const w = await startWorker();
    const c = await connectClients(server, w, p.clients, "websocket", 200);
    if (c.failed > 0)
      throw new Error(`${c.failed} clients failed to connect: ${JSON.stringify(c.errors)}`);
    await w.call("join", { rooms: 1, concurrency: 200 });
    if (only === undefined || only === "echo") {
      const e = await echo(server, w, p.echoClients, p.echoMs);
      Object.assign(figures, e.figures);
      notes.echo = e.raw;
    }
    if (only === "echo") return { metrics: figures, notes };
    const f64 = await fanout(server, w, "f64", p.f64);
    Object.assign(figures, f64.figures);
    notes.f64 = f64.raw;
    if (only === undefined) {
      const f1k = await fanout(server, w, "f1k", p.f1k);
      Object.assign(figures, f1k.figures);
      notes.f1k = f1k.raw;
      const probe = await startWorker();
      const r = await restUnderFanout(server, w, probe, p.rest, p.restIdleMs);
      Object.assign(figures, r.figures);
      notes.rest = r.raw;
    }
    return { metrics: figures, notes };
  } finally {
    // A clean exit, so that a --cpu-prof profile gets written.
    await server?.stop();
    killEverything();
  }
}

export const websocket: Scenario = {
  name: "websocket",
  title: "WebSocket traffic, 1,000 clients: echo, fan-out, REST",
  impls: ["switchyard", "socketio", "socketio-bun", "bare-ws"],
  metrics: [
    ...echoMetrics("Echo acks: 100 clients, one in flight each, 32 B"),
    ...fanoutMetrics("Fan-out: 1,000 clients in one room, 64 B", "f64", true),
    ...fanoutMetrics("Fan-out: 1,000 clients in one room, 1 KB", "f1k", true),
    ...restMetrics("GET /api while 64 B fan-out runs flat out"),
  ],
  run: (impl, mode) => runWebsocket(impl, mode),
};
