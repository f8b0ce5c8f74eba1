/**
 * The ceiling reference: a bare `ws` server with no framework, speaking just enough
 * Engine.IO / Socket.IO for the same load generator (open packet, CONNECT, `echo` and
 * `join` acks, no heartbeat), over WebSocket and over HTTP long-polling, with the same
 * HTTP routes. The least work Node can do to deliver the same bytes:
 *
 * - WebSocket: the 101 response and the open packet go out in one write (socket corked
 *   around `handleUpgrade`); the open packet, the CONNECT reply and every tick are
 *   complete frames written straight to the TCP socket. A publish builds each tick's frame
 *   once and writes that Buffer to every member, corked for the whole burst (one `writev`
 *   per client per burst). `BARE_CORK=0`: plain `ws.send()` per client per tick instead.
 * - Long-polling: each tick's packet is built once and queued (by reference) for every
 *   member; a poll is answered with everything queued, once per event-loop turn
 *   (`setImmediate`), with a Content-Length body.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { serveControl } from "./control.js";

const API_BODY = '{"result":"OK"}';
const CORK = process.env.BARE_CORK !== "0";

type WsMember = WebSocket & { _socket: Socket; sid: string };

/** A long-polling session: packets queued until the pending poll (if any) is answered. */
interface PollMember {
  sid: string;
  queue: Buffer[];
  poll: ServerResponse | undefined;
  rooms: string[];
}

const rooms = new Map<string, Set<WsMember>>();
const pollRooms = new Map<string, Set<PollMember>>();
const pollSessions = new Map<string, PollMember>();
const seqs = new Map<string, number>();

// Session and socket ids from a counter (unique per process; ~20 characters like
// Engine.IO's): no random-number system call per connection in the ceiling.
const idPrefix = Math.random().toString(36).slice(2, 10).padEnd(8, "0");
let idCount = 0;
const nextId = () => `${idPrefix}${(++idCount).toString(36).padStart(12, "0")}`;

const openPacket = (sid: string) =>
  `0{"sid":"${sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`;
const connectReply = () => `40{"sid":"${nextId()}"}`;

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

function publish(url: string): number {
  const q = new URL(url, "http://x").searchParams;
  const names = (q.get("room") ?? "").split(",");
  const n = Number(q.get("n") ?? 1);
  const pad = "x".repeat(Number(q.get("size") ?? 0));
  for (const room of names) {
    let seq = seqs.get(room) ?? 0;
    const members = rooms.get(room);
    const pollers = pollRooms.get(room);
    if (members !== undefined && CORK) for (const c of members) c._socket.cork();
    for (let i = 0; i < n; i++) {
      seq++;
      const text = `42${JSON.stringify(["tick", { seq, t: performance.timeOrigin + performance.now(), pad }])}`;
      if (members !== undefined) {
        if (CORK) {
          const frame = textFrame(text);
          for (const c of members) c._socket.write(frame);
        } else {
          // BARE_CORK=0: plain ws.send of one shared payload per tick (ws frames it per client).
          const payload = Buffer.from(text);
          for (const c of members) c.send(payload, { binary: false });
        }
      }
      if (pollers !== undefined) {
        const packet = Buffer.from(text);
        for (const p of pollers) enqueue(p, packet);
      }
    }
    if (members !== undefined && CORK) for (const c of members) c._socket.uncork();
    seqs.set(room, seq);
  }
  return n * names.length;
}

const http = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = req.url ?? "/";
  if (url.startsWith("/socket.io/?")) {
    polling(req, res, url);
    return;
  }
  if (req.method === "GET" && url === "/api") {
    res.writeHead(200, { "content-type": "application/json" }).end(API_BODY);
    return;
  }
  if (req.method === "POST" && url.startsWith("/publish?")) {
    const emitted = publish(url);
    req.resume();
    res
      .writeHead(200, { "content-type": "application/json" })
      .end(`{"result":"OK","emitted":${emitted}}`);
    return;
  }
  res.writeHead(404, { "content-length": 0 }).end();
});

// ——— WebSocket ———

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  clientTracking: false,
});
http.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
  if (!(req.url ?? "").startsWith("/socket.io/")) {
    socket.destroy();
    return;
  }
  // ws writes the 101 response synchronously; the open packet joins it in one write.
  socket.cork();
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws as WsMember));
  socket.uncork();
});

function onConnection(ws: WsMember): void {
  ws.sid = nextId();
  ws._socket.write(textFrame(openPacket(ws.sid)));
  (ws as WebSocket).on("message", onMessage as (this: WebSocket, data: Buffer) => void);
  (ws as WebSocket).on("close", onClose as (this: WebSocket) => void);
  ws.on("error", () => {});
}

function onMessage(this: WsMember, data: Buffer): void {
  const reply = handle(data.toString(), (room) => join(rooms, room, this));
  if (reply !== undefined) this._socket.write(textFrame(reply));
}

function onClose(this: WsMember): void {
  for (const members of rooms.values()) members.delete(this);
}

function join<M>(map: Map<string, Set<M>>, room: string, m: M): void {
  let members = map.get(room);
  if (members === undefined) {
    members = new Set();
    map.set(room, members);
  }
  members.add(m);
}

/** One Socket.IO packet from a client; returns the reply packet, if any. */
function handle(s: string, onJoin: (room: string) => void): string | undefined {
  if (s === "40") return connectReply();
  if (!s.startsWith("42")) return undefined; // "3" (pong) and the rest
  let i = 2;
  while (i < s.length && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
  const id = s.slice(2, i);
  const args = JSON.parse(s.slice(i)) as unknown[];
  if (args[0] === "echo") return `43${id}${JSON.stringify([args[1]])}`;
  if (args[0] === "join") {
    onJoin(String(args[1]));
    return `43${id}[]`;
  }
  return undefined;
}

// ——— HTTP long-polling ———

const SEP = Buffer.from([0x1e]);
const dirty = new Set<PollMember>();
let flushScheduled = false;

function enqueue(p: PollMember, packet: Buffer): void {
  p.queue.push(packet);
  if (p.poll === undefined || dirty.has(p)) return;
  dirty.add(p);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushDirty);
  }
}

function flushDirty(): void {
  flushScheduled = false;
  for (const p of dirty) answerPoll(p);
  dirty.clear();
}

function answerPoll(p: PollMember): void {
  const res = p.poll;
  if (res === undefined || p.queue.length === 0) return;
  p.poll = undefined;
  const q = p.queue;
  p.queue = [];
  let body: Buffer;
  if (q.length === 1) body = q[0]!;
  else {
    const parts: Buffer[] = new Array(q.length * 2 - 1);
    for (let i = 0; i < q.length; i++) {
      if (i > 0) parts[i * 2 - 1] = SEP;
      parts[i * 2] = q[i]!;
    }
    body = Buffer.concat(parts);
  }
  res.writeHead(200, {
    "Content-Type": "text/plain; charset=UTF-8",
    "Content-Length": body.length,
  });
  res.end(body);
}

function polling(req: IncomingMessage, res: ServerResponse, url: string): void {
  const at = url.indexOf("&sid=");
  if (at < 0) {
    // Handshake.
    if (req.method !== "GET" || !url.includes("transport=polling")) {
      res.writeHead(400, { "content-length": 0 }).end();
      return;
    }
    const p: PollMember = { sid: nextId(), queue: [], poll: undefined, rooms: [] };
    pollSessions.set(p.sid, p);
    const body = openPacket(p.sid);
    res.writeHead(200, {
      "Content-Type": "text/plain; charset=UTF-8",
      "Content-Length": Buffer.byteLength(body),
    });
    res.end(body);
    return;
  }
  const end = url.indexOf("&", at + 5);
  const p = pollSessions.get(decodeURIComponent(url.slice(at + 5, end < 0 ? url.length : end)));
  if (p === undefined) {
    res.writeHead(400, { "content-length": 0 }).end();
    return;
  }
  if (req.method === "GET") {
    if (p.poll !== undefined) {
      res.writeHead(400, { "content-length": 0 }).end();
      return;
    }
    p.poll = res;
    if (p.queue.length > 0) answerPoll(p);
    else req.once("close", () => onPollClosed(p, res));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.once("end", () => {
    res.writeHead(200, { "Content-Type": "text/html", "Content-Length": 2 }).end("ok");
    const body = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
    for (const packet of body.split("\x1e")) {
      const reply = handle(packet, (room) => {
        join(pollRooms, room, p);
        p.rooms.push(room);
      });
      if (reply !== undefined) enqueue(p, Buffer.from(reply));
    }
  });
}

/** The poll's connection went away before it was answered: the client is gone. */
function onPollClosed(p: PollMember, res: ServerResponse): void {
  if (p.poll !== res || res.writableEnded) return;
  p.poll = undefined;
  pollSessions.delete(p.sid);
  dirty.delete(p);
  for (const room of p.rooms) pollRooms.get(room)?.delete(p);
}

http.listen(Number(process.env.PORT ?? 0), "0.0.0.0", () => serveControl(http, "bare-ws"));
