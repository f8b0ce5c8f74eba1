/**
 * The benchmark app on **socket.io 4.8 running on Bun** with `@socket.io/bun-engine`
 * (Bun's native HTTP/WebSocket server under socket.io: the fastest socket.io a user can
 * run today). Same events and routes as `app.ts` (`echo`, `join`, `GET /api`,
 * `POST /publish`), and the same IPC side channel as `control.ts` (stats with a full GC,
 * exit), so the orchestrator drives it like the Node impls. Run by Bun from the npm
 * package `bun` (see `bunPath()` in lib/harness.ts), never by Node.
 */
import { Server as Engine } from "@socket.io/bun-engine";
import { Server } from "socket.io";

/** The part of Bun's global this file uses (bench has no bun-types). */
interface BunServer {
  readonly port: number;
  pendingWebSockets: number;
  pendingRequests: number;
}
interface BunGlobal {
  serve(options: {
    port: number;
    hostname: string;
    idleTimeout?: number;
    fetch(req: Request, server: BunServer): Response | Promise<Response> | undefined;
    websocket: unknown;
  }): BunServer;
  gc(force: boolean): void;
}
const Bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

const API_BODY = '{"result":"OK"}';
const seqs = new Map<string, number>();

const io = new Server();
const engine = new Engine({ path: "/socket.io/" });
io.bind(engine as never);

io.on("connection", (socket) => {
  socket.on("echo", (arg: unknown, ack: (x: unknown) => void) => ack(arg));
  socket.on("join", (room: string, ack: () => void) => {
    socket.join(room);
    ack();
  });
});

async function publish(url: URL): Promise<Response> {
  const rooms = (url.searchParams.get("room") ?? "").split(",");
  const n = Number(url.searchParams.get("n") ?? 1);
  const pad = "x".repeat(Number(url.searchParams.get("size") ?? 0));
  for (const room of rooms) {
    let seq = seqs.get(room) ?? 0;
    const to = io.to(room);
    for (let i = 0; i < n; i++) {
      seq++;
      to.emit("tick", { seq, t: performance.timeOrigin + performance.now(), pad });
    }
    seqs.set(room, seq);
  }
  return new Response(`{"result":"OK","emitted":${n * rooms.length}}`, {
    headers: { "content-type": "application/json" },
  });
}

const handler = engine.handler() as unknown as {
  fetch(req: Request, server: BunServer): Response | Promise<Response> | undefined;
  websocket: unknown;
  idleTimeout?: number;
};
const server = Bun.serve({
  ...handler,
  port: Number(process.env.PORT ?? 0),
  hostname: "0.0.0.0",
  fetch(req, srv) {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/socket.io/")) return handler.fetch(req, srv);
    if (req.method === "GET" && url.pathname === "/api") {
      return new Response(API_BODY, { headers: { "content-type": "application/json" } });
    }
    if (req.method === "POST" && url.pathname === "/publish") return publish(url);
    return new Response(null, { status: 404 });
  },
});

// ——— the side channel (control.ts's protocol) ———

function fullGc(): void {
  Bun.gc(true);
  Bun.gc(true);
}

type Request_ = { id: number; cmd: "stats" | "heapsnapshot" | "exit"; gc?: boolean };
if (process.send !== undefined) {
  process.on("disconnect", () => process.exit(0));
  process.on("message", (msg: Request_) => {
    if (msg.cmd === "exit") {
      process.send?.({ id: msg.id, ok: true });
      setTimeout(() => process.exit(0), 50);
      return;
    }
    if (msg.cmd === "heapsnapshot") {
      process.send?.({ id: msg.id, ok: false, error: "no heap snapshots on Bun" });
      return;
    }
    if (msg.gc === true) fullGc();
    process.send?.({
      id: msg.id,
      ok: true,
      result: {
        cpu: process.cpuUsage(),
        mem: process.memoryUsage(),
        connections: io.engine.clientsCount,
        at: performance.timeOrigin + performance.now(),
      },
    });
  });
  process.send({ ready: true, port: server.port, impl: "socketio-bun", pid: process.pid });
} else {
  console.log(`socket.io on Bun listening on ${server.port}`);
}
