/**
 * Load-generator clients that speak Engine.IO v4 / Socket.IO v5 directly on bare
 * `node:net` sockets: a lean WebSocket client (one pre-built upgrade request, frames read
 * and written by hand) and a lean HTTP/1.1 keep-alive long-polling client (pre-built
 * request heads, a minimal response parser). No socket.io-client, no `ws`, no `node:http`:
 * the client side stays cheap and identical against every server. Ticks are recognised
 * and parsed from the raw bytes (no string decoding, no JSON.parse per delivery).
 */
import net from "node:net";

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

  /** Handles one Engine.IO packet given as bytes. */
  onPacketBytes(b: Buffer): void {
    this.onPacket(b, 0, b.length);
  }

  /** Handles the Engine.IO packet in `b[start, end)` (no copy, no string unless needed). */
  onPacket(b: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const b0 = b[start];
    if (b0 === 0x34 /* 4 message */) {
      const b1 = end - start > 1 ? b[start + 1] : -1;
      if (b1 === 0x32 /* 2 EVENT */) {
        if (!parseTick(this, b, start, end)) this.onOtherEvent(b.toString("utf8", start, end));
      } else if (b1 === 0x33 /* 3 ACK */) this.onAck(b.toString("utf8", start, end));
      else if (b1 === 0x30 /* 0 CONNECT */) this.onConnect();
      else if (b1 === 0x34 /* 4 CONNECT_ERROR */)
        this.fail(new Error(`connect_error ${b.toString("utf8", start, end)}`));
      return;
    }
    if (b0 === 0x32 /* 2 ping */) this.send("3");
    else if (b0 === 0x30 /* 0 open */) this.send("40");
    else if (b0 === 0x31 /* 1 close */) this.fail(new Error("closed by server"));
  }

  protected onConnect(): void {
    this.connected = true;
    const cb = this.onConnected;
    this.onConnected = undefined;
    cb?.();
  }

  /**
   * The Socket.IO CONNECT as a promise: resolves when it is acknowledged; on a failure, or
   * after `timeoutMs` (when `onTimeout` runs), closes the client and rejects.
   */
  protected whenConnected(timeoutMs: number, onTimeout: (err: Error) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => onTimeout(new Error("connect timeout")), timeoutMs);
      this.onConnected = (err) => {
        clearTimeout(timer);
        if (err === undefined) resolve();
        else {
          this.close();
          reject(err);
        }
      };
    });
  }

  /** Marks the client closed and rejects a pending connect. Idempotent. */
  fail(err: Error): void {
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

/** Parses `42["tick",{"seq":N,"t":T,…}]` in `b[start, end)`; false if it is not a tick. */
function parseTick(c: Client, b: Buffer, start: number, end: number): boolean {
  if (
    end - start < P + 8 ||
    b[start + 4] !== 0x74 ||
    b[start + P - 1] !== 0x3a ||
    b.compare(TICK_PREFIX, 0, P, start, start + P) !== 0
  )
    return false;
  let i = start + P;
  let seq = 0;
  for (let x = b[i]!; i < end && x >= 48 && x <= 57; x = b[++i]!) seq = seq * 10 + (x - 48);
  // `,"t":`
  i += 5;
  let t = 0;
  for (let x = b[i]!; i < end && x >= 48 && x <= 57; x = b[++i]!) t = t * 10 + (x - 48);
  if (i < end && b[i] === 0x2e) {
    let scale = 0.1;
    for (let x = b[++i]!; i < end && x >= 48 && x <= 57; x = b[++i]!) {
      t += (x - 48) * scale;
      scale /= 10;
    }
  }
  sink.onTick(c, seq, t);
  return true;
}

/**
 * Bytes of a stream not consumed yet, and how many are needed before parsing again:
 * chunks are only concatenated once enough of them arrived, so a frame or a response body
 * split over many reads costs one copy, not one per read.
 */
class Pending {
  private chunks: Buffer[] = [];
  have = 0;
  need = 0;

  /** Returns the bytes to parse (pending + chunk), or undefined if still short of `need`. */
  add(chunk: Buffer): Buffer | undefined {
    if (this.have === 0) return chunk;
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return undefined;
    const all = Buffer.concat(this.chunks, this.have);
    this.chunks = [];
    this.have = 0;
    return all;
  }

  /** Keeps `buf[off…]`, to be parsed again once `need` bytes (counted from `off`) are in. */
  keep(buf: Buffer, off: number, need: number): void {
    this.chunks = [off === 0 ? buf : buf.subarray(off)];
    this.have = buf.length - off;
    this.need = need;
  }

  clear(): void {
    this.chunks = [];
    this.have = 0;
  }
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
/** Longest response head accepted (both clients): anything longer is a protocol error. */
const MAX_HEAD = 16 * 1024;

// ——— WebSocket ———

// A fixed, valid Sec-WebSocket-Key (RFC 6455's own example). The server's
// Sec-WebSocket-Accept is not checked: the 101 status line is enough for a load generator.
const WS_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const upgradeRequests = new Map<string, Buffer>();

function upgradeRequest(host: string, port: number): Buffer {
  const key = `${host}:${port}`;
  let b = upgradeRequests.get(key);
  if (b === undefined) {
    b = Buffer.from(
      "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n" +
        `Host: ${key}\r\n` +
        "Connection: Upgrade\r\n" +
        "Upgrade: websocket\r\n" +
        "Sec-WebSocket-Version: 13\r\n" +
        `Sec-WebSocket-Key: ${WS_KEY}\r\n\r\n`,
      "latin1",
    );
    upgradeRequests.set(key, b);
  }
  return b;
}

// RFC 6455 requires every client frame to be masked (a server must close the connection
// otherwise). The key is supposed to be unpredictable, to keep a page's script from
// steering the bytes an intermediary proxy sees; a load generator on loopback has no proxy
// to fool, so one fixed, non-zero key serves every frame (the server still unmasks every
// byte, as it would for a browser).
const MASK = [0x5a, 0x1c, 0xe3, 0x97] as const;

/** A final, masked client frame. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const f = Buffer.allocUnsafe(head + 4 + len);
  f[0] = 0x80 | opcode;
  if (len < 126) f[1] = 0x80 | len;
  else if (len < 65536) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(len, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    f.writeUInt32BE(len >>> 0, 6);
  }
  f[head] = MASK[0];
  f[head + 1] = MASK[1];
  f[head + 2] = MASK[2];
  f[head + 3] = MASK[3];
  const o = head + 4;
  for (let i = 0; i < len; i++) f[o + i] = payload[i]! ^ MASK[i & 3]!;
  return f;
}

/** Frames every client sends many times, built once. */
const PREBUILT = new Map<string, Buffer>(
  ["40", "3"].map((s) => [s, clientFrame(0x1, Buffer.from(s))]),
);

const kClient = Symbol("client");
type Tagged<C> = net.Socket & { [kClient]: C };

export class WsClient extends Client {
  private sock: Tagged<WsClient> | undefined;
  private upgraded = false;
  private readonly pending = new Pending();
  /** A fragmented message being assembled (continuation frames). */
  private frags: Buffer[] | undefined;

  /** Opens the WebSocket and resolves once the Socket.IO CONNECT is acknowledged. */
  connect(url: string, localAddress: string | undefined, timeoutMs: number): Promise<void> {
    const u = new URL(url);
    const port = Number(u.port);
    const connected = this.whenConnected(timeoutMs, (err) => this.abort(err));
    const sock = net.connect({
      host: u.hostname,
      port,
      localAddress,
      noDelay: true,
    }) as Tagged<WsClient>;
    sock[kClient] = this;
    sock.on("data", onWsData);
    sock.on("error", onSockError);
    sock.on("close", onSockClose);
    // Queued by the socket until the TCP connection is up.
    sock.write(upgradeRequest(u.hostname, port));
    this.sock = sock;
    return connected;
  }

  send(text: string): void {
    const s = this.sock;
    if (s === undefined || !this.upgraded || this.closed) return;
    s.write(PREBUILT.get(text) ?? clientFrame(0x1, Buffer.from(text)));
  }

  close(): void {
    this.closed = true;
    this.sock?.destroy();
  }

  /** Fails the client and drops the connection (protocol error, timeout). */
  abort(err: Error): void {
    this.fail(err);
    this.sock?.destroy();
  }

  /** Bytes from the socket: the 101 response first, then server frames. */
  onData(chunk: Buffer): void {
    if (this.closed) return;
    const buf = this.pending.add(chunk);
    if (buf === undefined) return;
    let off = 0;
    if (!this.upgraded) {
      const e = buf.indexOf(CRLFCRLF);
      if (e < 0) {
        if (buf.length > MAX_HEAD) this.abort(new Error("upgrade response head too long"));
        else this.pending.keep(buf, 0, buf.length + 1);
        return;
      }
      if (buf.toString("latin1", 0, 13) !== "HTTP/1.1 101 ") {
        const line = buf.toString("latin1", 0, Math.min(e, buf.indexOf("\r\n")));
        this.abort(new Error(`upgrade refused: ${line}`));
        return;
      }
      this.upgraded = true;
      off = e + 4;
    }
    const len = buf.length;
    while (off < len) {
      const avail = len - off;
      if (avail < 2) {
        this.pending.keep(buf, off, 2);
        return;
      }
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      if ((b1 & 0x80) !== 0) {
        this.abort(new Error("masked frame from the server"));
        return;
      }
      if ((b0 & 0x70) !== 0) {
        this.abort(new Error("RSV bits set (no extension agreed)"));
        return;
      }
      let size = b1 & 0x7f;
      let head = 2;
      if (size === 126) {
        if (avail < 4) {
          this.pending.keep(buf, off, 4);
          return;
        }
        size = buf.readUInt16BE(off + 2);
        head = 4;
      } else if (size === 127) {
        if (avail < 10) {
          this.pending.keep(buf, off, 10);
          return;
        }
        const hi = buf.readUInt32BE(off + 2);
        if (hi > 0x1fffff) {
          this.abort(new Error("frame length beyond 2^53"));
          return;
        }
        size = hi * 2 ** 32 + buf.readUInt32BE(off + 6);
        head = 10;
      }
      if (avail < head + size) {
        this.pending.keep(buf, off, head + size);
        return;
      }
      const s = off + head;
      const e = s + size;
      off = e;
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      if (op === 0x1 || op === 0x2) {
        if (this.frags !== undefined) {
          this.abort(new Error("new data frame inside a fragmented message"));
          return;
        }
        if (fin) this.onPacket(buf, s, e);
        else this.frags = [buf.subarray(s, e)];
      } else if (op === 0x0) {
        const frags = this.frags;
        if (frags === undefined) {
          this.abort(new Error("continuation frame without a start"));
          return;
        }
        frags.push(buf.subarray(s, e));
        if (fin) {
          this.frags = undefined;
          const m = Buffer.concat(frags);
          this.onPacket(m, 0, m.length);
        }
      } else if (op === 0x8) {
        // Close: answer with the same status code (first two bytes), then hang up.
        this.sock?.end(clientFrame(0x8, buf.subarray(s, Math.min(e, s + 2))));
        const code = size >= 2 ? buf.readUInt16BE(s) : 1005;
        this.fail(new Error(`closed by server (close frame ${code})`));
        return;
      } else if (op === 0x9) {
        this.sock?.write(clientFrame(0xa, buf.subarray(s, e)));
      } else if (op !== 0xa) {
        this.abort(new Error(`unknown opcode ${op}`));
        return;
      }
      if (this.closed) return;
    }
    this.pending.clear();
  }
}

function onWsData(this: Tagged<WsClient>, chunk: Buffer): void {
  this[kClient].onData(chunk);
}

function onSockError(this: Tagged<Client>, err: Error): void {
  this[kClient].fail(err);
}

function onSockClose(this: Tagged<Client>): void {
  this[kClient].fail(new Error("socket closed"));
}

// ——— HTTP long-polling ———

type ResponseCb = (
  err: Error | undefined,
  status: number,
  b: Buffer,
  start: number,
  end: number,
) => void;

/**
 * One HTTP/1.1 keep-alive connection, one request at a time (as a browser uses its
 * connection for the long-poll GET, and another for POSTs). Requests are written as one
 * pre-built string; the response parser reads the status line and Content-Length and
 * fails loudly on what it does not support (Transfer-Encoding, Content-Encoding, a body
 * without Content-Length) rather than misparse it. Reconnects lazily when the server
 * closed the connection while idle; a request that died on a reused connection before any
 * response byte came back is sent once more on a fresh one (it never reached the app).
 */
class HttpConn {
  private sock: Tagged<HttpConn> | undefined;
  private readonly pending = new Pending();
  private cb: ResponseCb | undefined;
  private request = "";
  private reused = false;
  private gotBytes = false;
  private sockError: Error | undefined;
  // The response being read: status, body length (-1: head not parsed yet), keep-alive.
  private status = 0;
  private bodyLen = -1;
  private keepAlive = true;
  private dead = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly localAddress: string | undefined,
  ) {}

  send(request: string, cb: ResponseCb): void {
    if (this.cb !== undefined) throw new Error("HttpConn: request already in flight");
    if (this.dead) {
      cb(new Error("connection closed by the client"), 0, Buffer.alloc(0), 0, 0);
      return;
    }
    this.cb = cb;
    this.request = request;
    this.reused = this.sock !== undefined;
    this.write();
  }

  private write(): void {
    this.gotBytes = false;
    this.bodyLen = -1;
    this.pending.clear();
    let s = this.sock;
    if (s === undefined) {
      s = net.connect({
        host: this.host,
        port: this.port,
        localAddress: this.localAddress,
        noDelay: true,
      }) as Tagged<HttpConn>;
      s[kClient] = this;
      s.on("data", onHttpData);
      s.on("error", onHttpError);
      s.on("close", onHttpClose);
      this.sockError = undefined;
      this.sock = s;
    }
    s.write(this.request);
  }

  destroy(): void {
    this.dead = true;
    this.sock?.destroy();
  }

  onError(err: Error): void {
    this.sockError = err;
  }

  onClose(sock: net.Socket): void {
    if (sock !== this.sock) return;
    this.sock = undefined;
    const cb = this.cb;
    if (cb === undefined) return; // closed while idle: the next request reconnects
    if (this.reused && !this.gotBytes && !this.dead) {
      this.reused = false;
      this.write();
      return;
    }
    this.cb = undefined;
    const why = this.sockError?.message ?? "connection closed";
    cb(new Error(`${why} before the response was complete`), 0, Buffer.alloc(0), 0, 0);
  }

  private fail(msg: string): void {
    const cb = this.cb;
    this.cb = undefined;
    this.sock?.destroy();
    this.sock = undefined;
    cb?.(new Error(msg), 0, Buffer.alloc(0), 0, 0);
  }

  onData(chunk: Buffer): void {
    this.gotBytes = true;
    if (this.cb === undefined) {
      this.fail("data from the server with no request in flight");
      return;
    }
    const buf = this.pending.add(chunk);
    if (buf === undefined) return;
    let off = 0;
    if (this.bodyLen < 0) {
      const e = buf.indexOf(CRLFCRLF);
      if (e < 0) {
        if (buf.length > MAX_HEAD) this.fail("response head too long");
        else this.pending.keep(buf, 0, buf.length + 1);
        return;
      }
      const head = buf.toString("latin1", 0, e + 2).toLowerCase();
      if (!head.startsWith("http/1.1 ")) {
        this.fail(`not an HTTP/1.1 response: ${head.slice(0, 40)}`);
        return;
      }
      this.status = Number(head.slice(9, 12));
      const what = `unsupported response (HTTP ${this.status})`;
      if (head.includes("\r\ntransfer-encoding:")) {
        this.fail(
          `${what}: Transfer-Encoding ${headerValue(head, "transfer-encoding")} (this client reads Content-Length bodies only)`,
        );
        return;
      }
      if (head.includes("\r\ncontent-encoding:")) {
        this.fail(`${what}: Content-Encoding ${headerValue(head, "content-encoding")}`);
        return;
      }
      if (this.status < 200) {
        this.fail(`${what}: interim responses are not supported`);
        return;
      }
      const cl = headerValue(head, "content-length");
      if (cl === undefined) {
        if (this.status !== 204 && this.status !== 304) {
          this.fail(`${what}: no Content-Length`);
          return;
        }
        this.bodyLen = 0;
      } else {
        const n = Number(cl);
        if (!Number.isSafeInteger(n) || n < 0) {
          this.fail(`bad Content-Length: ${cl}`);
          return;
        }
        this.bodyLen = n;
      }
      this.keepAlive = headerValue(head, "connection") !== "close";
      off = e + 4;
    }
    const end = off + this.bodyLen;
    if (buf.length < end) {
      this.pending.keep(buf, off, this.bodyLen);
      return;
    }
    if (buf.length > end) {
      this.fail("bytes after the response (pipelining not supported)");
      return;
    }
    this.pending.clear();
    this.bodyLen = -1;
    const cb = this.cb;
    this.cb = undefined;
    if (!this.keepAlive) {
      this.sock?.destroy();
      this.sock = undefined;
    }
    cb(undefined, this.status, buf, off, end);
  }
}

/** The value of header `name` in a lower-cased response head, trimmed. */
function headerValue(head: string, name: string): string | undefined {
  const i = head.indexOf(`\r\n${name}:`);
  if (i < 0) return undefined;
  const s = i + name.length + 3;
  const e = head.indexOf("\r\n", s);
  return head.slice(s, e < 0 ? head.length : e).trim();
}

function onHttpData(this: Tagged<HttpConn>, chunk: Buffer): void {
  this[kClient].onData(chunk);
}

function onHttpError(this: Tagged<HttpConn>, err: Error): void {
  this[kClient].onError(err);
}

function onHttpClose(this: Tagged<HttpConn>): void {
  this[kClient].onClose(this);
}

const HANDSHAKE_PATH = "/socket.io/?EIO=4&transport=polling";

export class PollingClient extends Client {
  private readonly host: string;
  private readonly getConn: HttpConn;
  private readonly postConn: HttpConn;
  private pollRequest = "";
  private postPrefix = "";
  private outbox: string[] = [];
  private posting = false;

  constructor(index: number, base: URL, localAddress: string | undefined) {
    super(index);
    const port = Number(base.port);
    this.host = `${base.hostname}:${port}`;
    this.getConn = new HttpConn(base.hostname, port, localAddress);
    this.postConn = new HttpConn(base.hostname, port, localAddress);
  }

  /** Handshake GET, then CONNECT (POST) and the first poll; resolves on the CONNECT reply. */
  connect(timeoutMs: number): Promise<void> {
    const connected = this.whenConnected(timeoutMs, (err) => this.fail(err));
    this.getConn.send(
      `GET ${HANDSHAKE_PATH} HTTP/1.1\r\nHost: ${this.host}\r\n\r\n`,
      (err, status, b, s, e) => {
        if (err !== undefined) {
          this.fail(err);
          return;
        }
        const text = b.toString("utf8", s, e);
        if (status !== 200) {
          this.fail(new Error(`HTTP ${status}: ${text.slice(0, 100)}`));
          return;
        }
        const first = text.split("\x1e")[0] ?? "";
        if (first[0] !== "0") {
          this.fail(new Error(`bad handshake: ${text.slice(0, 80)}`));
          return;
        }
        const sid = (JSON.parse(first.slice(1)) as { sid: string }).sid;
        const path = `${HANDSHAKE_PATH}&sid=${encodeURIComponent(sid)}`;
        this.pollRequest = `GET ${path} HTTP/1.1\r\nHost: ${this.host}\r\n\r\n`;
        this.postPrefix = `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: `;
        this.send("40");
        this.poll();
      },
    );
    return connected;
  }

  send(text: string): void {
    if (this.closed || this.postPrefix === "") return;
    this.outbox.push(text);
    if (!this.posting) this.flushOutbox();
  }

  close(): void {
    this.closed = true;
    this.getConn.destroy();
    this.postConn.destroy();
  }

  private flushOutbox(): void {
    if (this.outbox.length === 0 || this.closed) return;
    const body = this.outbox.length === 1 ? this.outbox[0]! : this.outbox.join("\x1e");
    this.outbox = [];
    this.posting = true;
    this.postConn.send(
      `${this.postPrefix}${Buffer.byteLength(body)}\r\n\r\n${body}`,
      (err, status, b, s, e) => {
        if (err !== undefined) {
          this.fail(err);
          return;
        }
        if (status !== 200) {
          this.fail(new Error(`POST: HTTP ${status}: ${b.toString("utf8", s, e)}`));
          return;
        }
        this.posting = false;
        this.flushOutbox();
      },
    );
  }

  private poll(): void {
    if (this.closed) return;
    this.getConn.send(this.pollRequest, (err, status, b, s, e) => {
      if (err !== undefined) {
        this.fail(err);
        return;
      }
      if (status !== 200) {
        this.fail(new Error(`poll: HTTP ${status}: ${b.toString("utf8", s, e)}`));
        return;
      }
      // Packets separated by \x1e (one byte in UTF-8, never inside a multi-byte sequence).
      let i = s;
      while (i < e && !this.closed) {
        let j = b.indexOf(0x1e, i);
        if (j < 0 || j > e) j = e;
        this.onPacket(b, i, j);
        i = j + 1;
      }
      this.poll();
    });
  }
}
