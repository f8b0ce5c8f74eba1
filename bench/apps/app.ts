/**
 * The benchmark app, written once against the socket.io v4 server API and run on
 * either implementation: `apps/switchyard.ts` and `apps/socketio.ts` differ only in the
 * import of `Server`.
 *
 * - socket events: `echo` (ack returns the argument), `join` (joins a room, acks)
 * - `GET /api` → `{"result":"OK"}`
 * - `POST /publish?room=&n=&size=` → emits `n` `tick` events `{seq, t, pad}` to the room
 *   (`pad` is `size` bytes of "x"; `seq` counts per room from 1; `t` is the wall-clock
 *   ms at emit time). `room` may be a comma-separated list: each room gets its `n` ticks.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { serveControl } from "./control.js";

/** The part of the socket.io v4 `Server` API this app uses. */
export interface ServerLike {
  on(ev: "connection", fn: (socket: SocketLike) => void): unknown;
  to(room: string): { emit(ev: string, ...args: unknown[]): unknown };
}
export interface SocketLike {
  on(ev: string, fn: (...args: never[]) => void): unknown;
  join(room: string): unknown;
}
export type ServerClass = new (srv: import("node:http").Server, opts?: object) => ServerLike;

const API_BODY = '{"result":"OK"}';

function onEcho(arg: unknown, ack: (x: unknown) => void): void {
  ack(arg);
}

export function startApp(Server: ServerClass, impl: string, opts?: object): void {
  const seqs = new Map<string, number>();
  const http = createServer();
  // socket.io-style attach: requests the engine does not claim reach the app's listener.
  const io = new Server(http, opts);
  http.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "/";
    if (url.startsWith("/socket.io/")) return; // the engine's
    if (req.method === "GET" && url === "/api") {
      res.writeHead(200, { "content-type": "application/json" }).end(API_BODY);
      return;
    }
    if (req.method === "POST" && url.startsWith("/publish?")) {
      const q = new URL(url, "http://x").searchParams;
      const rooms = (q.get("room") ?? "").split(",");
      const n = Number(q.get("n") ?? 1);
      const pad = "x".repeat(Number(q.get("size") ?? 0));
      for (const room of rooms) {
        let seq = seqs.get(room) ?? 0;
        const to = io.to(room);
        for (let i = 0; i < n; i++) {
          seq++;
          to.emit("tick", { seq, t: performance.timeOrigin + performance.now(), pad });
        }
        seqs.set(room, seq);
      }
      req.resume();
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(`{"result":"OK","emitted":${n * rooms.length}}`);
      return;
    }
    res.writeHead(404).end();
  });

  io.on("connection", (socket) => {
    socket.on("echo", onEcho);
    socket.on("join", function onJoin(room: string, ack: () => void) {
      socket.join(room);
      ack();
    });
  });

  http.listen(Number(process.env.PORT ?? 0), "0.0.0.0", () => serveControl(http, impl));
}
