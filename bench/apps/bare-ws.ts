/**
 * The ceiling reference: a bare `ws` server with no framework, speaking just enough
 * Engine.IO / Socket.IO for the same load generator (open packet, CONNECT, `echo` and
 * `join` acks, no heartbeat), with the same HTTP routes. A publish builds each tick's
 * complete WebSocket frame (header + `42["tick",{...}]`) once and writes that Buffer
 * straight to every member's TCP socket, corked for the whole burst so each client gets
 * one write per burst: the least work Node can do to deliver the same bytes.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { serveControl } from "./control.js";

const API_BODY = '{"result":"OK"}';
const CORK = process.env.BARE_CORK !== "0";

type Client = WebSocket & { _socket: Socket; sid: string };

const rooms = new Map<string, Set<Client>>();
const seqs = new Map<string, number>();

/** An unmasked, final text frame around `payload`. */
function textFrame(payload: string): Buffer {
  const len = Buffer.byteLength(payload);
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x81;
  if (len < 126) frame[1] = len;
  else if (len < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  frame.write(payload, head, "utf8");
  return frame;
}

const http = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = req.url ?? "/";
  if (req.method === "GET" && url === "/api") {
    res.writeHead(200, { "content-type": "application/json" }).end(API_BODY);
    return;
  }
  if (req.method === "POST" && url.startsWith("/publish?")) {
    const q = new URL(url, "http://x").searchParams;
    const names = (q.get("room") ?? "").split(",");
    const n = Number(q.get("n") ?? 1);
    const pad = "x".repeat(Number(q.get("size") ?? 0));
    for (const room of names) {
      let seq = seqs.get(room) ?? 0;
      const members = rooms.get(room);
      if (members !== undefined && CORK) for (const c of members) c._socket.cork();
      for (let i = 0; i < n; i++) {
        seq++;
        const text = `42${JSON.stringify(["tick", { seq, t: performance.timeOrigin + performance.now(), pad }])}`;
        if (members === undefined) continue;
        if (CORK) {
          const frame = textFrame(text);
          for (const c of members) c._socket.write(frame);
        } else {
          // BARE_CORK=0: plain ws.send of one shared payload per tick (ws frames it per client).
          const payload = Buffer.from(text);
          for (const c of members) c.send(payload, { binary: false });
        }
      }
      if (members !== undefined && CORK) for (const c of members) c._socket.uncork();
      seqs.set(room, seq);
    }
    req.resume();
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(`{"result":"OK","emitted":${n * names.length}}`);
    return;
  }
  res.writeHead(404).end();
});

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
});
http.on("upgrade", (req, socket, head) => {
  if (!(req.url ?? "").startsWith("/socket.io/")) {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws as Client));
});

function onConnection(ws: Client): void {
  ws.sid = randomBytes(15).toString("base64url");
  ws.send(
    `0{"sid":"${ws.sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
  );
  (ws as WebSocket).on("message", onMessage as (this: WebSocket, data: Buffer) => void);
  (ws as WebSocket).on("close", onClose as (this: WebSocket) => void);
  ws.on("error", () => {});
}

function onMessage(this: Client, data: Buffer): void {
  const s = data.toString();
  if (s === "40") {
    this.send(`40{"sid":"${randomBytes(15).toString("base64url")}"}`);
    return;
  }
  if (!s.startsWith("42")) return; // "3" (pong) and the rest
  let i = 2;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  const id = s.slice(2, i);
  const args = JSON.parse(s.slice(i)) as unknown[];
  if (args[0] === "echo") {
    this.send(`43${id}${JSON.stringify([args[1]])}`);
  } else if (args[0] === "join") {
    const room = String(args[1]);
    let members = rooms.get(room);
    if (members === undefined) {
      members = new Set();
      rooms.set(room, members);
    }
    members.add(this);
    this.send(`43${id}[]`);
  }
}

function onClose(this: Client): void {
  for (const members of rooms.values()) members.delete(this);
}

http.listen(Number(process.env.PORT ?? 0), "0.0.0.0", () => serveControl(http, "bare-ws"));
