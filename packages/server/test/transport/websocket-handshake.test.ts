/**
 * The WebSocket connections Switchyard frames itself, against a real engine on 127.0.0.1:
 * the 101 (cookie, header hooks, subprotocol, accept key) leaving with the open packet,
 * ws's refusals of bad upgrade requests, pipelined frames, ping/pong, fragments with
 * control frames between them, both directions of the close handshake, protocol
 * violations answered with their close code, and `ws` still serving permessage-deflate.
 * Raw `node:net` clients write hand-made requests and frames; assertions are on the bytes
 * received, never on how TCP split them.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Socket as NetSocket } from "node:net";
import { after, describe, it } from "node:test";
import { Engine, type Session } from "@switchyard/server";
import { sleep } from "@switchyard/test-harness";
import { WebSocket } from "ws";
import {
  closeReason,
  HOST,
  nextSession,
  once,
  openWebSocket,
  parseOpen,
  pollingHandshake,
  rawConnect,
  rawExchange,
  Scope,
  startEngine,
  type TestServer,
  upgradeRequest,
  waitFor,
  within,
  wsFrame,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

const WS_QUERY = "EIO=4&transport=websocket";
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** A raw TCP client that records everything the server sends and how the connection ends. */
class RawClient {
  readonly socket: NetSocket;
  private data = Buffer.alloc(0);
  /** The server sent FIN. */
  ended = false;
  closed = false;

  constructor(socket: NetSocket) {
    this.socket = socket;
    socket.on("data", (c: Buffer) => {
      this.data = Buffer.concat([this.data, c]);
    });
    socket.on("end", () => {
      this.ended = true;
    });
    socket.on("close", () => {
      this.closed = true;
    });
  }

  static async connect(srv: TestServer, request: string | Buffer): Promise<RawClient> {
    const client = new RawClient(await rawConnect(scope, srv.port));
    client.socket.write(request);
    return client;
  }

  private headEnd(): number {
    return this.data.indexOf("\r\n\r\n");
  }

  /** The response head: status line and header lines. */
  async head(): Promise<{ status: number; lines: string[]; text: string }> {
    await waitFor(() => this.headEnd() !== -1, 3000, "the response head");
    const text = this.data.subarray(0, this.headEnd()).toString("latin1");
    const [statusLine, ...lines] = text.split("\r\n");
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
    assert.ok(m, `not an HTTP response: ${statusLine}`);
    return { status: Number(m[1]), lines, text };
  }

  /** Values of a header (case-insensitive name) in the head. */
  async header(name: string): Promise<string[]> {
    const { lines } = await this.head();
    const prefix = `${name.toLowerCase()}:`;
    return lines
      .filter((l) => l.toLowerCase().startsWith(prefix))
      .map((l) => l.slice(prefix.length).trim());
  }

  /** Every complete server frame received so far (after the 101 head). */
  frames(): ServerFrame[] {
    const end = this.headEnd();
    if (end === -1) return [];
    return parseServerFrames(this.data.subarray(end + 4));
  }

  /** Waits until at least `n` frames arrived; returns all of them. */
  async waitFrames(n: number, timeoutMs = 3000): Promise<ServerFrame[]> {
    await waitFor(
      () => this.frames().length >= n,
      timeoutMs,
      () => `${n} frames (got ${this.frames().length})`,
    );
    return this.frames();
  }

  /** Waits for a frame matching `pred`; returns it. */
  async waitFrame(pred: (f: ServerFrame) => boolean, what: string): Promise<ServerFrame> {
    let found: ServerFrame | undefined;
    await waitFor(
      () => {
        found = this.frames().find(pred);
        return found !== undefined;
      },
      3000,
      what,
    );
    return found!;
  }

  write(frame: Buffer): void {
    this.socket.write(frame);
  }
}

/** Parses unmasked server frames; an incomplete last frame is left out. */
function parseServerFrames(buf: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const b0 = buf[off]!;
    const b1 = buf[off + 1]!;
    assert.equal(b1 & 0x80, 0, "server frames are not masked");
    let size = b1 & 0x7f;
    let header = 2;
    if (size === 126) {
      if (buf.length - off < 4) break;
      size = buf.readUInt16BE(off + 2);
      header = 4;
    } else if (size === 127) {
      if (buf.length - off < 10) break;
      size = Number(buf.readBigUInt64BE(off + 2));
      header = 10;
    }
    if (buf.length - off < header + size) break;
    out.push({
      fin: (b0 & 0x80) !== 0,
      opcode: b0 & 0x0f,
      payload: buf.subarray(off + header, off + header + size),
    });
    off += header + size;
  }
  return out;
}

const text = (f: ServerFrame) => (f.opcode === 1 ? f.payload.toString() : undefined);
const isClose = (f: ServerFrame) => f.opcode === 0x8;
const closeCode = (f: ServerFrame) => (f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);

/** A masked client close frame. */
function closeFrame(code: number, reason = ""): Buffer {
  const body = Buffer.alloc(2 + Buffer.byteLength(reason));
  body.writeUInt16BE(code, 0);
  body.write(reason, 2);
  return wsFrame(0x8, body);
}

/** A fresh WebSocket session over a raw client; returns it once the open packet arrived. */
async function rawSession(
  srv: TestServer,
  extra: Buffer = Buffer.alloc(0),
): Promise<{ client: RawClient; session: Session; sid: string }> {
  const next = nextSession(srv.engine);
  const client = await RawClient.connect(
    srv,
    Buffer.concat([Buffer.from(upgradeRequest(WS_QUERY), "latin1"), extra]),
  );
  const session = await next;
  const [open] = await client.waitFrames(1);
  const sid = parseOpen(text(open!) ?? "").sid;
  assert.equal(sid, session.id);
  return { client, session, sid };
}

function acceptFor(key: string): string {
  return createHash("sha1")
    .update(key + GUID)
    .digest("base64");
}

describe("the 101 response", () => {
  it("carries the session cookie (same id as the open packet) and the hooks' headers; a CR/LF value is left out", async () => {
    const srv = await startEngine(scope, { cookie: true });
    srv.engine.on("initial_headers", (h: Record<string, unknown>) => {
      h["X-Initial"] = "first";
      h["X-Injected"] = "evil\r\nX-Smuggled: yes";
      h["Bad Name"] = "v";
    });
    srv.engine.on("headers", (h: Record<string, unknown>) => {
      h["X-Every"] = ["a", "b"];
    });
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const request = upgradeRequest(WS_QUERY).replace(
      /Sec-WebSocket-Key: [^\r]*/,
      `Sec-WebSocket-Key: ${key}`,
    );
    const client = await RawClient.connect(srv, request);
    const head = await client.head();
    assert.equal(head.status, 101, head.text);
    assert.deepEqual(await client.header("sec-websocket-accept"), [acceptFor(key)]);
    assert.deepEqual(await client.header("upgrade"), ["websocket"]);
    const [open] = await client.waitFrames(1);
    const sid = parseOpen(text(open!) ?? "").sid;
    assert.deepEqual(await client.header("set-cookie"), [
      `io=${encodeURIComponent(sid)}; Path=/; HttpOnly; SameSite=Lax`,
    ]);
    assert.deepEqual(await client.header("x-initial"), ["first"]);
    assert.deepEqual(await client.header("x-every"), ["a", "b"]);
    assert.deepEqual(await client.header("x-injected"), []);
    assert.doesNotMatch(head.text, /Smuggled|Bad Name/);
    // The session works.
    assert.ok(srv.engine.sessions.has(sid));
    client.write(wsFrame(0x1, Buffer.from("4still ok")));
    await client.waitFrame((f) => text(f) === "4still ok", "the echo");
  });

  it("an upgrade from polling carries the headers hook's headers, no cookie and no initial_headers", async () => {
    const srv = await startEngine(scope, { cookie: true });
    srv.engine.on("initial_headers", (h: Record<string, unknown>) => {
      h["X-Initial"] = "first";
    });
    srv.engine.on("headers", (h: Record<string, unknown>) => {
      h["X-Every"] = "yes";
    });
    const hs = await pollingHandshake(srv.port);
    const client = await RawClient.connect(srv, upgradeRequest(`${WS_QUERY}&sid=${hs.sid}`));
    assert.equal((await client.head()).status, 101);
    assert.deepEqual(await client.header("x-every"), ["yes"]);
    assert.deepEqual(await client.header("x-initial"), []);
    assert.deepEqual(await client.header("set-cookie"), []);
    client.write(wsFrame(0x1, Buffer.from("2probe")));
    await client.waitFrame((f) => text(f) === "3probe", "the probe answer");
  });

  it("the 101 is followed by the open packet, nothing else, and a ws client accepts the handshake", async () => {
    const srv = await startEngine(scope, { pingInterval: 10_000 });
    const { client } = await rawSession(srv);
    const frames = client.frames();
    assert.equal(frames.length, 1, "only the open packet");
    assert.equal(frames[0]!.opcode, 1);
    assert.equal(frames[0]!.fin, true);
    const hs = parseOpen(frames[0]!.payload.toString());
    assert.deepEqual(hs.upgrades, []);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    parseOpen(String(await ws.next()));
  });

  it("echoes the first offered subprotocol", async () => {
    const srv = await startEngine(scope);
    const client = await RawClient.connect(
      srv,
      upgradeRequest(WS_QUERY, ["Sec-WebSocket-Protocol: chat.v2, chat.v1"]),
    );
    assert.equal((await client.head()).status, 101);
    assert.deepEqual(await client.header("sec-websocket-protocol"), ["chat.v2"]);
    const ws = scope.add(
      new WebSocket(`ws://${HOST}:${srv.port}/engine.io/?${WS_QUERY}`, ["first", "second"]),
      (w) => w.terminate(),
    );
    ws.on("error", () => {});
    await once(ws, "open");
    assert.equal(ws.protocol, "first");
  });

  it("no subprotocol header when none is offered", async () => {
    const srv = await startEngine(scope);
    const client = await RawClient.connect(srv, upgradeRequest(WS_QUERY));
    assert.equal((await client.head()).status, 101);
    assert.deepEqual(await client.header("sec-websocket-protocol"), []);
  });
});

describe("bad upgrade requests", () => {
  /** An upgrade request with some header lines replaced (a null value removes the header). */
  function requestWith(
    replace: Record<string, string | null>,
    method = "GET",
    query = WS_QUERY,
  ): string {
    const lines = upgradeRequest(query).split("\r\n");
    lines[0] = lines[0]!.replace(/^GET /, `${method} `);
    const out: string[] = [];
    for (const line of lines) {
      const name = line.split(":")[0]!;
      if (name in replace) {
        const v = replace[name];
        if (v !== null) out.push(`${name}: ${v}`);
      } else out.push(line);
    }
    return out.join("\r\n");
  }

  function parse(answer: string): { status: number; head: string; body: string } {
    const i = answer.indexOf("\r\n\r\n");
    assert.ok(i !== -1, `no complete answer: ${JSON.stringify(answer)}`);
    return {
      status: Number(answer.slice(9, 12)),
      head: answer.slice(0, i),
      body: answer.slice(i + 4),
    };
  }

  it("are refused with ws's status and message, counted, and the server keeps serving", async () => {
    const srv = await startEngine(scope);
    const healthy = await rawSession(srv);
    const hs = await pollingHandshake(srv.port);
    const cases: { req: string; status: number; body: string; version?: boolean }[] = [
      {
        req: requestWith({ "Sec-WebSocket-Key": "too-short" }),
        status: 400,
        body: "Missing or invalid Sec-WebSocket-Key header",
      },
      {
        req: requestWith({ "Sec-WebSocket-Key": null }),
        status: 400,
        body: "Missing or invalid Sec-WebSocket-Key header",
      },
      {
        req: requestWith({ "Sec-WebSocket-Version": "12" }),
        status: 400,
        body: "Missing or invalid Sec-WebSocket-Version header",
        version: true,
      },
      {
        req: requestWith({ Upgrade: "h2c" }),
        status: 400,
        body: "Invalid Upgrade header",
      },
      {
        // A POST upgrade of an existing session passes the engine's checks and meets ws's.
        req: requestWith({}, "POST", `${WS_QUERY}&sid=${hs.sid}`),
        status: 405,
        body: "Invalid HTTP method",
      },
    ];
    const before = srv.engine.stats.connectionErrors[3] ?? 0;
    const errors: unknown[] = [];
    srv.engine.on("connection_error", (e: unknown) => errors.push(e));
    for (const c of cases) {
      const answer = parse(await rawExchange(scope, srv.port, c.req));
      assert.equal(answer.status, c.status, `${c.req.split("\r\n")[0]} → ${answer.head}`);
      assert.equal(answer.body, c.body);
      assert.match(answer.head, /\r\nContent-Type: text\/html(\r\n|$)/);
      assert.match(answer.head, new RegExp(`\\r\\nContent-Length: ${c.body.length}(\\r\\n|$)`));
      if (c.version) assert.match(answer.head, /\r\nSec-WebSocket-Version: 13, 8(\r\n|$)/);
    }
    assert.equal(srv.engine.stats.connectionErrors[3], before + cases.length);
    assert.equal(errors.length, cases.length);
    assert.equal(srv.engine.stats.handshakes, 2, "no session was created by a refused request");
    // The polling session was not upgraded by the POST.
    assert.equal(srv.engine.sessions.get(hs.sid)?.transport.name, "polling");
    // Others are still served.
    healthy.client.write(wsFrame(0x1, Buffer.from("4alive")));
    await healthy.client.waitFrame((f) => text(f) === "4alive", "the healthy echo");
    await rawSession(srv);
  });

  it("a missing Upgrade header is a plain request: 400 Bad request from the engine", async () => {
    const srv = await startEngine(scope);
    const req = requestWith({ Upgrade: null, Connection: "close" });
    const answer = parse(await rawExchange(scope, srv.port, req));
    assert.equal(answer.status, 400);
    assert.deepEqual(JSON.parse(answer.body), { code: 3, message: "Bad request" });
    assert.equal(srv.engine.stats.connectionErrors[3], 1);
  });

  it("a POST upgrade without a session is refused by the engine as a bad handshake method", async () => {
    const srv = await startEngine(scope);
    const answer = parse(await rawExchange(scope, srv.port, requestWith({}, "POST")));
    assert.equal(answer.status, 400);
    assert.equal(JSON.parse(answer.body).code, 2);
    assert.equal(srv.engine.stats.connectionErrors[2], 1);
    assert.equal(srv.engine.stats.handshakes, 0);
  });
});

describe("upgrade requests ws refuses since or before 8.18 (one test per advisory class)", () => {
  function answerOf(raw: string): { status: number; head: string; body: string } {
    const i = raw.indexOf("\r\n\r\n");
    assert.ok(i !== -1, `no complete answer: ${JSON.stringify(raw)}`);
    return { status: Number(raw.slice(9, 12)), head: raw.slice(0, i), body: raw.slice(i + 4) };
  }

  it("a Sec-WebSocket-Version that only converts to 13 or 8 is refused, naming the versions (ws 8.18.3, 8.23)", async () => {
    const srv = await startEngine(scope);
    for (const v of ["13.0", "0xd", "013", "+13", "8.0", "1e1"]) {
      const req = upgradeRequest(WS_QUERY).replace(
        "Sec-WebSocket-Version: 13",
        `Sec-WebSocket-Version: ${v}`,
      );
      const answer = answerOf(await rawExchange(scope, srv.port, req));
      assert.equal(answer.status, 400, `version ${v}: ${answer.head}`);
      assert.equal(answer.body, "Missing or invalid Sec-WebSocket-Version header");
      assert.match(answer.head, /\r\nSec-WebSocket-Version: 13, 8(\r\n|$)/);
    }
    assert.equal(srv.engine.stats.handshakes, 0);
  });

  it("a Sec-WebSocket-Protocol list ws would not parse is refused with 400 (not echoed)", async () => {
    const srv = await startEngine(scope);
    for (const list of ["a b", "a,,b", "chat, chat", "chat/1", ",chat", "chat,", "ch\u00e9"]) {
      const req = upgradeRequest(WS_QUERY, [`Sec-WebSocket-Protocol: ${list}`]);
      const answer = answerOf(await rawExchange(scope, srv.port, Buffer.from(req, "latin1")));
      assert.equal(answer.status, 400, `${JSON.stringify(list)}: ${answer.head}`);
      assert.equal(answer.body, "Invalid Sec-WebSocket-Protocol header");
    }
    // Blanks around names are fine; the first name is echoed.
    const ok = await RawClient.connect(
      srv,
      upgradeRequest(WS_QUERY, ["Sec-WebSocket-Protocol: v2 ,\tv1"]),
    );
    assert.equal((await ok.head()).status, 101);
    assert.deepEqual(await ok.header("sec-websocket-protocol"), ["v2"]);
  });

  it("a 12 KB Sec-WebSocket-Protocol of blanks is answered at once (ws 7.4.6 ReDoS class)", async () => {
    const srv = await startEngine(scope);
    const evil = `a${" \t".repeat(6000)}b`;
    const req = upgradeRequest(WS_QUERY, [`Sec-WebSocket-Protocol: ${evil}`]);
    const start = performance.now();
    const answer = answerOf(await rawExchange(scope, srv.port, req));
    assert.equal(answer.status, 400);
    assert.ok(performance.now() - start < 500, `answered in ${performance.now() - start} ms`);
  });

  it("an upgrade whose WebSocket headers are past maxHeadersCount is refused, and the server serves on (ws 8.17.1 class)", async () => {
    const srv = await startEngine(scope);
    // Node keeps the first 2000 header lines; the upgrade's own headers come after them.
    const lines = upgradeRequest(WS_QUERY).split("\r\n");
    const filler = Array.from({ length: 2000 }, (_, i) => `x-${i}: y`);
    const req = [lines[0], lines[1], ...filler, ...lines.slice(2)].join("\r\n");
    const answer = answerOf(await rawExchange(scope, srv.port, req));
    // Node 20 parses the request and we refuse it (400); Node 22+ refuses it in its own
    // HTTP parser (431 Request Header Fields Too Large). Either way no upgrade happens.
    assert.ok([400, 431].includes(answer.status), answer.head.split("\r\n")[0]);
    await rawSession(srv);
  });
});

describe("frames", () => {
  it("processes frames sent in the same TCP write as the upgrade request", async () => {
    const srv = await startEngine(scope);
    const pipelined = Buffer.concat([
      wsFrame(0x1, Buffer.from("4first")),
      wsFrame(0x9, Buffer.from("early ping")),
      wsFrame(0x2, Buffer.from([1, 2, 3])),
    ]);
    const { client } = await rawSession(srv, pipelined);
    const frames = await client.waitFrames(4);
    assert.equal(text(frames[1]!), "4first");
    assert.equal(frames[2]!.opcode, 0xa);
    assert.equal(frames[2]!.payload.toString(), "early ping");
    assert.equal(frames[3]!.opcode, 0x2);
    assert.deepEqual(frames[3]!.payload, Buffer.from([1, 2, 3]));
  });

  it("answers a ping with a pong carrying the same payload (empty and 125 bytes too)", async () => {
    const srv = await startEngine(scope);
    const { client } = await rawSession(srv);
    const payloads = [Buffer.from("hello ping"), Buffer.alloc(0), Buffer.alloc(125, 0xab)];
    for (const p of payloads) client.write(wsFrame(0x9, p));
    const frames = await client.waitFrames(1 + payloads.length);
    const pongs = frames.slice(1);
    assert.deepEqual(
      pongs.map((f) => f.opcode),
      [0xa, 0xa, 0xa],
    );
    assert.deepEqual(
      pongs.map((f) => f.payload),
      payloads,
    );
  });

  it("a message split over fragments with a ping between them arrives whole", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { client, session } = await rawSession(srv);
    const got = once<[string]>(session, "message");
    client.write(wsFrame(0x1, Buffer.from("4hé"), { fin: false }));
    client.write(wsFrame(0x9, Buffer.from("mid")));
    const euro = Buffer.from("€");
    // A UTF-8 character split between two fragments.
    client.write(
      wsFrame(0x0, Buffer.concat([Buffer.from("ll"), euro.subarray(0, 1)]), { fin: false }),
    );
    client.write(wsFrame(0x0, Buffer.concat([euro.subarray(1), Buffer.from("o")])));
    assert.deepEqual(await got, ["héll€o"]);
    const pong = await client.waitFrame((f) => f.opcode === 0xa, "the pong");
    assert.equal(pong.payload.toString(), "mid");
  });

  it("a frame written one byte at a time is read", async () => {
    const srv = await startEngine(scope);
    const { client } = await rawSession(srv);
    const frame = wsFrame(0x1, Buffer.from(`4${"x".repeat(300)}`));
    for (let i = 0; i < frame.length; i++) {
      client.write(frame.subarray(i, i + 1));
      // Let some bytes leave alone (not a synchronisation; any split is fine).
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await client.waitFrame((f) => text(f) === `4${"x".repeat(300)}`, "the echo");
  });
});

describe("closing", () => {
  it("session.close(): queued messages, then a close frame 1000; TCP ends once the client answers", async () => {
    const srv = await startEngine(scope, {}, { echo: false });
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    session.send("a");
    session.send(Buffer.from([9]));
    session.send("c");
    session.close();
    assert.equal(await reason, "forced close");
    const frames = await client.waitFrames(5);
    assert.deepEqual(
      frames.slice(1).map((f) => (f.opcode === 1 ? text(f) : f.opcode)),
      ["4a", 2, "4c", 8],
    );
    assert.equal(closeCode(frames[4]!), 1000);
    // The server waits for the client's answer before ending TCP (not a synchronisation:
    // this proves something does not happen).
    await sleep(100);
    assert.equal(client.ended, false, "the server ended TCP before the client answered the close");
    client.write(closeFrame(1000));
    await waitFor(() => client.ended, 3000, "the server to end TCP");
    assert.equal(client.frames().length, 5, "nothing after the close frame");
  });

  it('a client close frame (4000) is answered with a close frame and the session closes with "transport close"', async () => {
    const srv = await startEngine(scope);
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    client.write(closeFrame(4000, "bye"));
    assert.equal(await reason, "transport close");
    const close = await client.waitFrame(isClose, "the answering close frame");
    assert.equal(closeCode(close), 4000);
    await waitFor(() => client.ended, 3000, "the server to end TCP");
    assert.equal(srv.engine.sessions.has(session.id), false);
  });

  it("an empty client close frame is answered with an empty close frame", async () => {
    const srv = await startEngine(scope);
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    client.write(wsFrame(0x8, Buffer.alloc(0)));
    assert.equal(await reason, "transport close");
    const close = await client.waitFrame(isClose, "the answering close frame");
    assert.equal(close.payload.length, 0);
    await waitFor(() => client.ended, 3000, "the server to end TCP");
  });

  it("a ws client's close() completes the close handshake", async () => {
    const srv = await startEngine(scope);
    const next = nextSession(srv.engine);
    const ws = await openWebSocket(scope, srv.port, { EIO: "4", transport: "websocket" });
    const session = await next;
    const reason = closeReason(session);
    const closed = once<[number, Buffer]>(ws.ws, "close");
    ws.ws.close(4001, "done");
    assert.equal(await reason, "transport close");
    const [code] = await closed;
    assert.equal(code, 4001);
  });
});

describe("refused upgrades", () => {
  it("an upgrade whose session closed meanwhile gets 101 + close 1008, and TCP ends when the client answers", async () => {
    let answerUpgrade: ((err: Error | null, allow?: boolean) => void) | undefined;
    const srv = await startEngine(scope, {
      cors: {
        origin: (_origin, callback) => {
          answerUpgrade = callback;
        },
      },
    });
    // No Origin on the polling handshake: the origin hook is only asked for the upgrade.
    const hs = await pollingHandshake(srv.port);
    const client = await RawClient.connect(
      srv,
      upgradeRequest(`${WS_QUERY}&sid=${hs.sid}`, ["Origin: http://example.test"]),
    );
    await waitFor(() => answerUpgrade !== undefined, 3000, "the origin check");
    srv.engine.sessions.get(hs.sid)!.terminate("gone");
    answerUpgrade!(null, true);
    assert.equal((await client.head()).status, 101);
    const close = await client.waitFrame(isClose, "the close frame");
    assert.equal(closeCode(close), 1008);
    assert.equal(client.frames().length, 1, "nothing but the close frame");
    client.write(closeFrame(1008));
    // Well before the 10 s close timeout.
    await waitFor(() => client.ended || client.closed, 2000, "the server to end TCP");
  });
});

describe("protocol violations", () => {
  it("an unmasked frame gets a close frame 1002 and the connection ends", async () => {
    const srv = await startEngine(scope);
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    const unmasked = Buffer.concat([Buffer.from([0x81, 6]), Buffer.from("4hello")]);
    client.write(unmasked);
    assert.equal(await reason, "transport error");
    const close = await client.waitFrame(isClose, "the close frame");
    assert.equal(closeCode(close), 1002);
    await waitFor(() => client.ended || client.closed, 3000, "the connection to end");
    assert.equal(
      client.frames().filter((f) => text(f) === "4hello").length,
      0,
      "the unmasked message was not echoed",
    );
  });

  it("invalid UTF-8 in a text frame gets 1007", async () => {
    const srv = await startEngine(scope);
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    client.write(wsFrame(0x1, Buffer.from([0x34, 0xff, 0xfe])));
    assert.equal(await reason, "transport error");
    assert.equal(closeCode(await client.waitFrame(isClose, "the close frame")), 1007);
    await waitFor(() => client.ended || client.closed, 3000, "the connection to end");
  });

  it("a message over maxHttpBufferSize gets 1009 as soon as its header arrived", async () => {
    const srv = await startEngine(scope, { maxHttpBufferSize: 1000 });
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    // Header of a 100 kB binary frame (16-bit length 65535 would do, 64-bit is sent here), no payload.
    const header = Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x86, 0xa0, 1, 2, 3, 4]);
    client.write(header);
    assert.equal(await reason, "payload too large");
    assert.equal(closeCode(await client.waitFrame(isClose, "the close frame")), 1009);
    await waitFor(() => client.ended || client.closed, 3000, "the connection to end");
  });

  it("a message over maxHttpBufferSize across fragments gets 1009", async () => {
    const srv = await startEngine(scope, { maxHttpBufferSize: 1000 });
    const { client, session } = await rawSession(srv);
    const reason = closeReason(session);
    client.write(wsFrame(0x1, Buffer.from(`4${"a".repeat(599)}`), { fin: false }));
    client.write(wsFrame(0x0, Buffer.from("b".repeat(401))));
    assert.equal(await reason, "payload too large");
    assert.equal(closeCode(await client.waitFrame(isClose, "the close frame")), 1009);
  });

  it("a violation in the pipelined bytes is answered after the open packet", async () => {
    const srv = await startEngine(scope);
    const next = nextSession(srv.engine);
    const client = await RawClient.connect(
      srv,
      Buffer.concat([
        Buffer.from(upgradeRequest(WS_QUERY), "latin1"),
        wsFrame(0x1, Buffer.from("4x"), { rsv: 4 }),
      ]),
    );
    const session = await next;
    const frames = await client.waitFrames(2);
    assert.equal(parseOpen(text(frames[0]!) ?? "").sid, session.id);
    assert.equal(closeCode(frames[1]!), 1002);
    await waitFor(() => client.ended || client.closed, 3000, "the connection to end");
    await waitFor(() => session.readyState === "closed", 3000, "the session to close");
  });
});

describe("perMessageDeflate: true", () => {
  it("a ws client offering deflate goes through ws and round-trips", async () => {
    const srv = await startEngine(scope, { perMessageDeflate: true });
    const ws = await openWebSocket(
      scope,
      srv.port,
      { EIO: "4", transport: "websocket" },
      { perMessageDeflate: { threshold: 0 } },
    );
    assert.match(ws.ws.extensions, /permessage-deflate/);
    parseOpen(String(await ws.next()));
    const big = `4${"compressible ".repeat(500)}`;
    ws.ws.send(big);
    assert.equal(await ws.next(), big);
  });

  it("a raw client not offering deflate is framed by Switchyard and round-trips", async () => {
    const srv = await startEngine(scope, { perMessageDeflate: true });
    const { client } = await rawSession(srv);
    assert.deepEqual(await client.header("sec-websocket-extensions"), []);
    client.write(wsFrame(0x1, Buffer.from("4plain")));
    const echo = await client.waitFrame((f) => text(f) === "4plain", "the echo");
    assert.equal(echo.fin, true);
  });

  it("a ws client not offering deflate round-trips too", async () => {
    const srv = await startEngine(scope, { perMessageDeflate: true });
    const ws = await openWebSocket(
      scope,
      srv.port,
      { EIO: "4", transport: "websocket" },
      { perMessageDeflate: false },
    );
    assert.equal(ws.ws.extensions, "");
    parseOpen(String(await ws.next()));
    ws.ws.send("4hi");
    assert.equal(await within(ws.next(), 3000, "the echo"), "4hi");
  });
});

describe("floods (ws 8.21.0 – 8.23: fragments, empty fragments, pings)", () => {
  /** `count` masked data frames of one text message ("4" then "a"s, or empty ones). */
  function fragmentFlood(count: number, opts: { empty: boolean }): Buffer {
    const parts: Buffer[] = [wsFrame(0x1, Buffer.from("4"), { fin: false })];
    const piece = Buffer.from(opts.empty ? "" : "a");
    for (let i = 1; i < count; i++) parts.push(wsFrame(0x0, piece, { fin: false }));
    return Buffer.concat(parts);
  }

  for (const empty of [false, true]) {
    const what = empty ? "200,000 empty fragments" : "200,000 one-byte fragments";
    it(`a text message sent as ${what}, never finished, is closed with 1008 at once; other clients are served`, async () => {
      const srv = await startEngine(scope);
      const healthy = await rawSession(srv);
      const { client, session } = await rawSession(srv);
      const reason = closeReason(session);
      const errors: unknown[] = [];
      session.on("error", (e: unknown) => errors.push(e));
      const start = performance.now();
      client.write(fragmentFlood(200_000, { empty }));
      assert.equal(await within(reason, 3000, "the session to close"), "transport error");
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 2000, `closed after ${Math.round(elapsed)} ms`);
      assert.equal(closeCode(await client.waitFrame(isClose, "the close frame")), 1008);
      await waitFor(() => client.ended || client.closed, 3000, "the connection to end");
      // The other client is served, before and after.
      healthy.client.write(wsFrame(0x1, Buffer.from("4still here")));
      await healthy.client.waitFrame((f) => text(f) === "4still here", "the healthy echo");
      await rawSession(srv);
    });
  }

  it("maxFragments is configurable: 10 frames pass, 11 are refused with 1008", async () => {
    const srv = await startEngine(scope, { maxFragments: 10 });
    const ten = Buffer.concat([fragmentFlood(9, { empty: false }), wsFrame(0x0, Buffer.from("z"))]);
    const a = await rawSession(srv);
    a.client.write(ten);
    await a.client.waitFrame((f) => text(f) === `4${"a".repeat(8)}z`, "the 10-frame echo");
    const b = await rawSession(srv);
    const reason = closeReason(b.session);
    b.client.write(
      Buffer.concat([fragmentFlood(10, { empty: false }), wsFrame(0x0, Buffer.from("z"))]),
    );
    assert.equal(await reason, "transport error");
    assert.equal(closeCode(await b.client.waitFrame(isClose, "the close frame")), 1008);
    assert.throws(() => new Engine({ maxFragments: 0 }), /maxFragments/);
    assert.throws(() => new Engine({ maxFragments: 1.5 }), /maxFragments/);
  });

  it("the permessage-deflate path (ws) applies the same maxFragments", async () => {
    const srv = await startEngine(scope, { perMessageDeflate: true, maxFragments: 10 });
    const ws = await openWebSocket(
      scope,
      srv.port,
      { EIO: "4", transport: "websocket" },
      { perMessageDeflate: { threshold: 0 } },
    );
    assert.match(ws.ws.extensions, /permessage-deflate/);
    parseOpen(String(await ws.next()));
    const closed = once<[number]>(ws.ws, "close", 3000);
    ws.ws.send("4", { fin: false });
    for (let i = 0; i < 20; i++) ws.ws.send("a", { fin: i === 19 });
    const [code] = await closed;
    assert.equal(code, 1008);
  });

  it("a peer that floods pings and never reads our pongs is cut off; others are served", async () => {
    const srv = await startEngine(scope);
    const healthy = await rawSession(srv);
    const { client, session } = await rawSession(srv);
    let reason: string | undefined;
    session.on("close", (r: string) => {
      reason = r;
    });
    client.socket.pause(); // read nothing more: the pongs pile up in the kernel, then on our side
    const batch = Buffer.concat(
      Array.from({ length: 1000 }, () => wsFrame(0x9, Buffer.alloc(125, 1))),
    );
    const deadline = performance.now() + 20_000;
    let sent = 0;
    // Bounded: at most 400 batches (52 MB of pings) and 20 s.
    for (; sent < 400 && reason === undefined && performance.now() < deadline; sent++) {
      if (client.socket.destroyed) break;
      if (!client.socket.write(batch)) {
        await Promise.race([
          new Promise((r) => client.socket.once("drain", r)),
          new Promise((r) => client.socket.once("close", r)),
          sleep(200),
        ]);
      }
    }
    await waitFor(() => reason !== undefined, 5000, `the session to close (sent ${sent} batches)`);
    assert.equal(reason, "transport error");
    healthy.client.write(wsFrame(0x1, Buffer.from("4alive")));
    await healthy.client.waitFrame((f) => text(f) === "4alive", "the healthy echo");
  });
});
