/**
 * Self-test of the load generator's hand-written protocol clients (`npm run selftest`,
 * a few seconds): fake servers on 127.0.0.1 that write their bytes all at once
 * (coalesced) or in small pieces across many reads (split), checked against what the
 * clients must see. WebSocket: 101 + open packet in one read, ping → pong (also between
 * fragments), a fragmented message, 16- and 64-bit lengths, a binary frame, an ack, masked
 * client frames. Polling: handshake, CONNECT, bodies with several packets (multi-byte
 * UTF-8 included), `Connection: close` (reconnect), and `Transfer-Encoding: chunked`
 * refused with a clear error.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { type Client, PollingClient, setTickSink, WsClient } from "./clients.js";

const seen: number[] = [];
setTickSink({
  onTick(_c: Client, seq: number, t: number) {
    assert.equal(t, 1234.5);
    seen.push(seq);
  },
});

const tick = (seq: number, pad: string) =>
  Buffer.from(`42["tick",{"seq":${seq},"t":1234.5,"pad":"${pad}"}]`);

function serverFrame(op: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const f = Buffer.alloc(head + len);
  f[0] = (fin ? 0x80 : 0) | op;
  if (len < 126) f[1] = len;
  else if (len < 65536) {
    f[1] = 126;
    f.writeUInt16BE(len, 2);
  } else {
    f[1] = 127;
    f.writeBigUInt64BE(BigInt(len), 2);
  }
  payload.copy(f, head);
  return f;
}

/** One masked client frame from the front of `b`, or undefined if incomplete. */
function readClientFrame(b: Buffer): { op: number; text: string; used: number } | undefined {
  if (b.length < 2) return undefined;
  assert.ok((b[1]! & 0x80) !== 0, "client frame not masked");
  let len = b[1]! & 0x7f;
  let h = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    h = 4;
  }
  if (b.length < h + 4 + len) return undefined;
  const p = Buffer.alloc(len);
  for (let i = 0; i < len; i++) p[i] = b[h + 4 + i]! ^ b[h + (i & 3)]!;
  return { op: b[0]! & 0x0f, text: p.toString(), used: h + 4 + len };
}

/** Writes `b` whole (step 0) or `step` bytes at a time, one event-loop turn apart. */
async function writeSplit(s: net.Socket, b: Buffer, step: number): Promise<void> {
  if (step === 0) {
    s.write(b);
    return;
  }
  for (let i = 0; i < b.length && !s.destroyed; ) {
    // Small steps at both ends of the buffer, bigger ones in the middle (70 KB frames).
    const n = i > 300 && i < b.length - 300 ? 997 : step;
    s.write(b.subarray(i, i + n));
    i += n;
    await new Promise((r) => setImmediate(r));
  }
}

function listen(srv: net.Server): Promise<number> {
  return new Promise((resolve) =>
    srv.listen(0, "127.0.0.1", () => resolve((srv.address() as net.AddressInfo).port)),
  );
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function websocket(step: number): Promise<void> {
  const fromClient: string[] = [];
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    let got = Buffer.alloc(0);
    let upgraded = false;
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (!upgraded) {
        const e = got.indexOf("\r\n\r\n");
        if (e < 0) return;
        assert.match(got.toString("latin1", 0, e), /\r\nSec-WebSocket-Key: [A-Za-z0-9+/]{22}==/);
        got = got.subarray(e + 4);
        upgraded = true;
        void writeSplit(
          s,
          Buffer.concat([
            Buffer.from(
              "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            ),
            serverFrame(1, Buffer.from('0{"sid":"a"}')),
          ]),
          step,
        );
      }
      for (let f = readClientFrame(got); f !== undefined; f = readClientFrame(got)) {
        got = got.subarray(f.used);
        fromClient.push(`${f.op}:${f.text}`);
        if (f.text.startsWith("420["))
          void writeSplit(s, serverFrame(1, Buffer.from('430["hi"]')), step);
        if (f.op !== 1 || f.text !== "40") continue;
        const t3 = tick(3, "b");
        void writeSplit(
          s,
          Buffer.concat([
            serverFrame(1, Buffer.from('40{"sid":"s"}')),
            serverFrame(9, Buffer.from("p1")),
            serverFrame(1, tick(1, "a")),
            serverFrame(1, tick(2, "é".repeat(150))), // 16-bit length
            serverFrame(1, t3.subarray(0, 10), false),
            serverFrame(0, t3.subarray(10, 20), false),
            serverFrame(9, Buffer.from("p2")), // control frame between fragments
            serverFrame(0, t3.subarray(20), true),
            serverFrame(1, tick(4, "y".repeat(70_000))), // 64-bit length
            serverFrame(2, tick(5, "c")),
          ]),
          step,
        );
      }
    });
  });
  const port = await listen(srv);
  try {
    const c = new WsClient(0);
    seen.length = 0;
    await c.connect(`ws://127.0.0.1:${port}/`, undefined, 5000);
    await until("five ticks", () => seen.length === 5);
    assert.equal(await c.emitWithAck("join", "room-0"), '["hi"]');
    await until("two pongs", () => fromClient.filter((x) => x.startsWith("10:")).length === 2);
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    assert.deepEqual(fromClient, ["1:40", "10:p1", "10:p2", '1:420["join","room-0"]']);
    assert.equal(c.closed, false);
    c.close();
  } finally {
    srv.close();
  }
}

async function polling(step: number, mode: "keep-alive" | "close" | "chunked"): Promise<string> {
  let polls = 0;
  let connected = false;
  let waiting: (() => void) | undefined;
  const srv = net.createServer((s) => {
    s.on("error", () => {});
    let got = "";
    const respond = (body: string) => {
      const chunked = mode === "chunked" && polls > 1;
      const head = chunked
        ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        : `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}${mode === "close" ? "\r\nConnection: close" : ""}\r\n\r\n`;
      const b = chunked ? `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n` : body;
      void writeSplit(s, Buffer.from(head + b), step);
    };
    s.on("data", (d: Buffer) => {
      got += d.toString();
      for (;;) {
        const e = got.indexOf("\r\n\r\n");
        if (e < 0) return;
        const head = got.slice(0, e);
        const n = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (got.length < e + 4 + n) return;
        const body = got.slice(e + 4, e + 4 + n);
        got = got.slice(e + 4 + n);
        if (!head.includes("sid=")) respond('0{"sid":"S1","upgrades":[]}');
        else if (head.startsWith("POST")) {
          respond("ok");
          if (body === "40") connected = true;
          waiting?.();
        } else if (++polls === 1) {
          waiting = () => {
            if (!connected) return;
            waiting = undefined;
            respond(`40{"sid":"x"}\x1e${tick(1, "é")}`);
          };
          waiting();
        } else if (polls === 2)
          respond(`${[2, 3, 4].map((i) => tick(i, "x".repeat(i * 500))).join("\x1e")}\x1e2`);
        else if (polls === 3) setTimeout(() => respond(tick(5, "q").toString()), 20);
      }
    });
  });
  const port = await listen(srv);
  const c = new PollingClient(0, new URL(`http://127.0.0.1:${port}`), undefined);
  let failure = "";
  const fail = c.fail.bind(c);
  c.fail = (err: Error) => {
    failure ||= err.message;
    fail(err);
  };
  try {
    seen.length = 0;
    await c.connect(5000);
    if (mode === "chunked") {
      await until("the chunked response to be refused", () => c.closed);
      assert.deepEqual(seen, [1]);
    } else {
      await until("five ticks", () => seen.length === 5);
      assert.deepEqual(seen, [1, 2, 3, 4, 5]);
      assert.equal(c.closed, false, failure);
    }
    return failure;
  } finally {
    c.close();
    srv.close();
  }
}

const t0 = Date.now();
for (const step of [0, 1, 3, 7]) await websocket(step);
for (const step of [0, 1, 5]) await polling(step, "keep-alive");
await polling(0, "close");
const refused = await polling(0, "chunked");
assert.match(refused, /Transfer-Encoding chunked/);
process.stdout.write(`load generator self-test passed (${Date.now() - t0} ms)\n`);
process.exit(0);
