/**
 * Connections, one run per server process:
 * 1. connect storm: 10k WebSocket clients (500 handshakes in flight, below the listen
 *    backlog of 511), each through the Socket.IO CONNECT;
 * 2. idle memory at 10k: heap after a full GC and RSS, per connection, against the
 *    server's own baseline before any client;
 * 3. a second load-generator process adds 9k clients: ~19k, as many as one server
 *    process can hold under the 20,000-fd limit (the 50k needs several server
 *    processes: not possible here); memory again; the 9k then leave;
 * 4. (full mode) many rooms: the 10k join 1,000 rooms (10 each, acked), then flat-out publishing to
 *    every room in turn (50 rooms per POST, 10 ticks each, four POSTs in flight).
 */
import {
  type Impl,
  killEverything,
  type ServerHandle,
  type StartOptions,
  startServer,
  startWorker,
} from "../lib/harness.js";
import {
  connectClients,
  type Figures,
  fanout,
  fanoutMetrics,
  memMetrics,
  memoryPerConnection,
  storm,
  stormMetrics,
} from "./phases.js";
import type { Mode, RunResult, Scenario } from "./types.js";

const G_STORM = "Connect storm, 10k WebSocket clients";
const G_MEM = "Idle memory per connection";
const G_ROOMS = "Many rooms: 10k clients over 1,000 rooms, 64 B";

export const connections: Scenario = {
  name: "connections",
  title: "Connections: storm, idle memory, many rooms",
  impls: ["switchyard", "socketio", "socketio-bun", "bare-ws"],
  metrics: [
    ...stormMetrics(G_STORM),
    ...memMetrics(G_MEM, "10k", "10k"),
    {
      group: G_MEM,
      key: "heldBig",
      label: "idle WebSocket clients held on one process",
      unit: "clients",
      better: "higher",
    },
    ...memMetrics(G_MEM, "Big", "~19k"),
    { group: G_ROOMS, key: "joinsPerSec", label: "joins/s (acked)", unit: "/s", better: "higher" },
    ...fanoutMetrics(G_ROOMS, "rooms", false),
  ],
  async run(impl, mode: Mode): Promise<RunResult> {
    const figures: Figures = {};
    const notes: Record<string, unknown> = {};
    let server: ServerHandle | undefined;
    try {
      server = await startServer(impl);
      const w1 = await startWorker();
      const base = (await server.stats(true)).mem;
      notes.base = base;

      const s = await storm(server, w1, 10_000);
      Object.assign(figures, s.figures);
      notes.storm = s.raw;
      const m10 = await memoryPerConnection(server, base, s.connected, "10k");
      Object.assign(figures, m10.figures);
      notes.mem10k = m10.raw;

      const w2 = await startWorker();
      const more = await connectClients(server, w2, 9_000, "websocket", 500, s.connected);
      notes.second = more;
      const held = s.connected + more.connected;
      figures.heldBig = held;
      const mBig = await memoryPerConnection(server, base, held, "Big");
      Object.assign(figures, mBig.figures);
      notes.memBig = mBig.raw;
      w2.kill();
      // Many rooms in full mode only: it keeps `npm run bench` under five minutes.
      if (mode === "quick") return { metrics: figures, notes };

      const j = await w1.call("join", { rooms: 1000, concurrency: 500 });
      figures.joinsPerSec = j.perSec;
      notes.join = j;
      const r = await fanout(server, w1, "rooms", {
        size: 64,
        n: 10,
        roomsPerPost: 50,
        window: 4,
        flatMs: 10_000,
        bursts: 0,
        burstN: 0,
      });
      Object.assign(figures, r.figures);
      notes.rooms = r.raw;
      return { metrics: figures, notes };
    } finally {
      await server?.stop();
      killEverything();
    }
  },
};

/** Just the connect storm (for profiling). */
export async function runStorm(impl: Impl, start: StartOptions = {}): Promise<RunResult> {
  let server: ServerHandle | undefined;
  try {
    server = await startServer(impl, start);
    const w = await startWorker();
    const s = await storm(server, w, 10_000);
    return { metrics: s.figures, notes: { storm: s.raw } };
  } finally {
    await server?.stop();
    killEverything();
  }
}
