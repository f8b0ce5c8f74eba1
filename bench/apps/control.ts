/**
 * The benchmark's side channel into a server process, over the IPC channel of `fork()`:
 * the orchestrator asks for CPU time and memory (after a full GC) without touching the
 * app's own port. Also makes sure a server never outlives its orchestrator.
 */
import type { Server as HttpServer } from "node:http";
import { writeHeapSnapshot } from "node:v8";

export interface ServerStats {
  /** process.cpuUsage() in µs. */
  cpu: { user: number; system: number };
  mem: NodeJS.MemoryUsage;
  /** Sockets the HTTP server holds (websocket + polling connections). */
  connections: number;
  /** Time of the snapshot (ms since epoch, sub-ms). */
  at: number;
}

type Request =
  | { id: number; cmd: "stats"; gc?: boolean }
  | { id: number; cmd: "heapsnapshot"; args: { path: string } }
  | { id: number; cmd: "exit" };

const gc = (globalThis as { gc?: () => void }).gc;

async function fullGc(): Promise<void> {
  if (gc === undefined) throw new Error("run the server with --expose-gc");
  // Twice with a turn of the event loop between: weak refs and finalizers settle.
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setTimeout(r, 20));
  gc();
}

function connectionCount(http: HttpServer): Promise<number> {
  return new Promise((resolve) => http.getConnections((_err, n) => resolve(n ?? -1)));
}

/** Announces `ready` with the port and answers the orchestrator's requests. */
export function serveControl(http: HttpServer, impl: string): void {
  if (process.send === undefined) {
    const addr = http.address();
    console.log(`${impl} listening on`, addr);
    return;
  }
  // The orchestrator went away: so do we (no orphaned servers).
  process.on("disconnect", () => process.exit(0));
  process.on("message", async (msg: Request) => {
    if (msg.cmd === "exit") {
      // A normal exit, so that --cpu-prof writes its profile (connections die with the
      // process; closing them here would put teardown work into the profile).
      process.send?.({ id: msg.id, ok: true });
      setTimeout(() => process.exit(0), 50);
      return;
    }
    if (msg.cmd === "heapsnapshot") {
      await fullGc();
      const path = writeHeapSnapshot(msg.args.path);
      process.send?.({ id: msg.id, ok: true, result: { path } });
      return;
    }
    if (msg.cmd === "stats") {
      if (msg.gc === true) await fullGc();
      const stats: ServerStats = {
        cpu: process.cpuUsage(),
        mem: process.memoryUsage(),
        connections: await connectionCount(http),
        at: performance.timeOrigin + performance.now(),
      };
      process.send?.({ id: msg.id, ok: true, result: stats });
    }
  });
  const addr = http.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  process.send({ ready: true, port, impl, pid: process.pid, node: process.version });
}
