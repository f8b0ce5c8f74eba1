/**
 * Load-generator clients that speak Engine.IO v4 / Socket.IO v5 directly: over a `ws`
 * WebSocket, or over HTTP long-polling with a keep-alive agent. No socket.io-client: the
 * client side stays cheap and identical against every server. Ticks are recognised and
 * parsed from the raw bytes (no JSON.parse per delivery).
 */
import http from "node:http";
import WebSocket from "ws";

/** Receives every parsed `tick` (set by the worker per command). */
export interface TickSink {
  onTick(client: Client, seq: number, t: number): void;
}

let sink: TickSink = { onTick() {} };
export function setTickSink(s: TickSink): void {
  sink = s;
}

type AckFn = (args: string) => void;

export abstract class Client {
  readonly index: number;
  /** Index of the room this client joined (-1: none). */
  room = -1;
  /** Last tick seq seen, ticks received, ticks skipped over, ticks out of order. */
  last = 0;
  received = 0;
  gaps = 0;
  disorder = 0;
  connected = false;
  closed = false;
  protected nextAck = 0;
  protected readonly acks = new Map<number, AckFn>();
  protected onConnected: ((err?: Error) => void) | undefined;

  constructor(index: number) {
    this.index = index;
  }

  abstract send(text: string): void;
  abstract close(): void;

  /** Emits `ev` with one argument and resolves with the raw ack arguments (JSON text). */
  emitWithAck(ev: string, arg: unknown): Promise<string> {
    const id = this.nextAck++;
    return new Promise((resolve) => {
      this.acks.set(id, resolve);
      this.send(`42${id}${JSON.stringify([ev, arg])}`);
    });
  }

  /** Handles one Engine.IO packet given as bytes (WebSocket). */
  onPacketBytes(b: Buffer): void {
    const b0 = b[0];
    if (b0 === 0x34 /* 4 message */) {
      const b1 = b[1];
      if (b1 === 0x32 /* 2 EVENT */) {
        if (!parseTickBytes(this, b)) this.onOtherEvent(b.toString());
      } else if (b1 === 0x33 /* 3 ACK */) this.onAck(b.toString());
      else if (b1 === 0x30 /* 0 CONNECT */) this.onConnect();
      else if (b1 === 0x34 /* 4 CONNECT_ERROR */)
        this.fail(new Error(`connect_error ${b.toString()}`));
      return;
    }
    if (b0 === 0x32 /* 2 ping */) this.send("3");
    else if (b0 === 0x30 /* 0 open */) this.send("40");
    else if (b0 === 0x31 /* 1 close */) this.fail(new Error("closed by server"));
  }

  /** Handles one Engine.IO packet given as text (polling). */
  onPacketText(s: string): void {
    const c0 = s.charCodeAt(0);
    if (c0 === 0x34) {
      const c1 = s.charCodeAt(1);
      if (c1 === 0x32) {
        if (!parseTickText(this, s)) this.onOtherEvent(s);
      } else if (c1 === 0x33) this.onAck(s);
      else if (c1 === 0x30) this.onConnect();
      else if (c1 === 0x34) this.fail(new Error(`connect_error ${s}`));
      return;
    }
    if (c0 === 0x32) this.send("3");
    else if (c0 === 0x31) this.fail(new Error("closed by server"));
  }

  protected onConnect(): void {
    this.connected = true;
    const cb = this.onConnected;
    this.onConnected = undefined;
    cb?.();
  }

  protected fail(err: Error): void {
    const cb = this.onConnected;
    this.onConnected = undefined;
    this.closed = true;
    cb?.(err);
  }

  private onAck(s: string): void {
    let i = 2;
    let id = 0;
    for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i))
      id = id * 10 + (c - 48);
    const fn = this.acks.get(id);
    if (fn === undefined) return;
    this.acks.delete(id);
    fn(s.slice(i));
  }

  protected onOtherEvent(_s: string): void {}
}

// `42["tick",{"seq":` — the fixed prefix of every tick (JSON.stringify keeps key order).
const TICK_PREFIX = Buffer.from('42["tick",{"seq":');
const P = TICK_PREFIX.length;

function parseTickBytes(c: Client, b: Buffer): boolean {
  if (
    b.length < P + 8 ||
    b[4] !== 0x74 ||
    b[P - 1] !== 0x3a ||
    b.compare(TICK_PREFIX, 0, P, 0, P) !== 0
  )
    return false;
  let i = P;
  let seq = 0;
  for (let x = b[i]!; x >= 48 && x <= 57; x = b[++i]!) seq = seq * 10 + (x - 48);
  // `,"t":`
  i += 5;
  let t = 0;
  for (let x = b[i]!; x >= 48 && x <= 57; x = b[++i]!) t = t * 10 + (x - 48);
  if (b[i] === 0x2e) {
    let scale = 0.1;
    for (let x = b[++i]!; x >= 48 && x <= 57; x = b[++i]!) {
      t += (x - 48) * scale;
      scale /= 10;
    }
  }
  sink.onTick(c, seq, t);
  return true;
}

const TICK_PREFIX_TEXT = '42["tick",{"seq":';

function parseTickText(c: Client, s: string): boolean {
  if (!s.startsWith(TICK_PREFIX_TEXT)) return false;
  let i = P;
  let seq = 0;
  for (let x = s.charCodeAt(i); x >= 48 && x <= 57; x = s.charCodeAt(++i))
    seq = seq * 10 + (x - 48);
  i += 5;
  let t = 0;
  for (let x = s.charCodeAt(i); x >= 48 && x <= 57; x = s.charCodeAt(++i)) t = t * 10 + (x - 48);
  if (s.charCodeAt(i) === 0x2e) {
    let scale = 0.1;
    for (let x = s.charCodeAt(++i); x >= 48 && x <= 57; x = s.charCodeAt(++i)) {
      t += (x - 48) * scale;
      scale /= 10;
    }
  }
  sink.onTick(c, seq, t);
  return true;
}

// ——— WebSocket ———

const kClient = Symbol("client");
type TaggedWs = WebSocket & { [kClient]: WsClient };

export class WsClient extends Client {
  private ws: WebSocket | undefined;

  /** Opens the WebSocket and resolves once the Socket.IO CONNECT is acknowledged. */
  connect(url: string, localAddress: string | undefined, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error("connect timeout")), timeoutMs);
      this.onConnected = (err) => {
        clearTimeout(timer);
        if (err === undefined) resolve();
        else {
          this.close();
          reject(err);
        }
      };
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        localAddress,
        handshakeTimeout: timeoutMs,
      });
      (ws as TaggedWs)[kClient] = this;
      ws.binaryType = "nodebuffer";
      ws.on("message", onWsMessage as (this: WebSocket, data: Buffer) => void);
      ws.on("error", onWsError as (this: WebSocket, err: Error) => void);
      ws.on("close", onWsClose as (this: WebSocket) => void);
      this.ws = ws;
    });
  }

  send(text: string): void {
    if (this.ws?.readyState === 1) this.ws.send(text);
  }

  close(): void {
    this.closed = true;
    this.ws?.terminate();
  }
}

function onWsMessage(this: TaggedWs, data: Buffer): void {
  this[kClient].onPacketBytes(data);
}

function onWsError(this: TaggedWs, err: Error): void {
  (this[kClient] as unknown as { fail(e: Error): void }).fail(err);
}

function onWsClose(this: TaggedWs): void {
  (this[kClient] as unknown as { fail(e: Error): void }).fail(new Error("socket closed"));
}

// ——— HTTP long-polling ———

export class PollingClient extends Client {
  private readonly agent: http.Agent;
  private readonly localAddress: string | undefined;
  private host = "";
  private port = 0;
  private path = "";
  private outbox: string[] = [];
  private posting = false;

  constructor(index: number, agent: http.Agent, localAddress: string | undefined) {
    super(index);
    this.agent = agent;
    this.localAddress = localAddress;
  }

  async connect(base: URL, timeoutMs: number): Promise<void> {
    this.host = base.hostname;
    this.port = Number(base.port);
    const open = await this.request("GET", "/socket.io/?EIO=4&transport=polling", undefined);
    const first = open.split("\x1e")[0] ?? "";
    if (first[0] !== "0") throw new Error(`bad handshake: ${open.slice(0, 80)}`);
    const sid = (JSON.parse(first.slice(1)) as { sid: string }).sid;
    this.path = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error("connect timeout")), timeoutMs);
      this.onConnected = (err) => {
        clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(err);
      };
      this.send("40");
      this.poll();
    });
  }

  send(text: string): void {
    if (this.closed) return;
    this.outbox.push(text);
    if (!this.posting) this.flushOutbox();
  }

  close(): void {
    this.closed = true;
  }

  private flushOutbox(): void {
    if (this.outbox.length === 0 || this.closed) return;
    const body = this.outbox.join("\x1e");
    this.outbox = [];
    this.posting = true;
    this.request("POST", this.path, body).then(
      () => {
        this.posting = false;
        this.flushOutbox();
      },
      (err: Error) => this.fail(err),
    );
  }

  private poll(): void {
    if (this.closed) return;
    this.request("GET", this.path, undefined).then(
      (payload) => {
        const packets = payload.split("\x1e");
        for (const p of packets) this.onPacketText(p);
        this.poll();
      },
      (err: Error) => this.fail(err),
    );
  }

  private request(method: "GET" | "POST", path: string, body: string | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          agent: this.agent,
          localAddress: this.localAddress,
          headers:
            body === undefined
              ? undefined
              : {
                  "content-type": "text/plain;charset=UTF-8",
                  "content-length": Buffer.byteLength(body),
                },
        },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            data += chunk;
          });
          res.on("end", () => {
            if (res.statusCode !== 200)
              reject(new Error(`HTTP ${res.statusCode}: ${data.slice(0, 100)}`));
            else resolve(data);
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}
