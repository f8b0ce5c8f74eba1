/**
 * The scenarios of bridge-redis.test.ts and bridge-amqp.test.ts. Write-only Python
 * publishers reach Switchyard clients: Debian's real Flask-SocketIO `SocketIO(message_queue=…)` and python-socketio's `RedisManager` / `KombuManager`
 * (`write_only=True`, 5.7.2: pickle) publish on real Redis and RabbitMQ; two Switchyard
 * nodes (a cluster over the same broker), each with its own bridge, deliver to their
 * real socket.io-client clients: every event reaches every intended client exactly
 * once, in order. Raw JSON bodies of the newer layouts, junk and hostile bodies go over
 * the same brokers.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { before, type TestContext, test } from "node:test";
import { type Bus, createAdapter, Server } from "@switchyard/server";
import { PYTHON, waitFor } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connectClient } from "socket.io-client";
import { createFlaskBridge, type FlaskBridge, type FlaskBridgeOptions } from "../src/index.js";

const EMITTER = new URL("./fixtures/py_emitter.py", import.meta.url).pathname;

export type Op =
  | {
      op: "emit";
      event: string;
      data: unknown;
      ns?: string;
      to?: string | string[];
      skip?: string | string[];
    }
  | { op: "close_room"; room: string; ns?: string }
  | { op: "disconnect"; sid: string; ns?: string };

export function runEmitter(
  kind: "flask" | "manager",
  url: string,
  channel: string,
  ops: Op[],
): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      [EMITTER, kind, url, channel, JSON.stringify(ops)],
      { timeout: 30_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } },
      (err, stdout, stderr) => {
        if (err !== null)
          reject(new Error(`py_emitter ${kind} failed: ${err.message}\n${stderr}${stdout}`));
        else if (!stdout.includes(`published ${ops.length}`))
          reject(new Error(`py_emitter: ${stdout}${stderr}`));
        else resolve();
      },
    );
  });
}

interface Received {
  event: string;
  args: unknown[];
}

/** A Switchyard node: cluster adapter over the broker, a Flask bridge, clients in "/ws". */
export class Node {
  readonly clients = new Map<string, ClientSocket>();
  readonly inboxes = new Map<string, Received[]>();
  readonly disconnects = new Map<string, string>();

  private constructor(
    readonly io: Server,
    readonly url: string,
    readonly bus: Bus,
    readonly bridge: FlaskBridge,
  ) {}

  static async start(bus: Bus, bridgeOptions: FlaskBridgeOptions): Promise<Node> {
    const http = createServer();
    const io = new Server(http, { adapter: createAdapter(bus) });
    for (const nsp of ["/", "/ws"]) {
      io.of(nsp).on("connection", (socket) => {
        socket.on("join", async (room: string, ack: () => void) => {
          await socket.join(room);
          ack();
        });
      });
    }
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const bridge = createFlaskBridge(io, bridgeOptions);
    await bridge.ready();
    return new Node(io, `http://127.0.0.1:${(http.address() as AddressInfo).port}`, bus, bridge);
  }

  async client(name: string, nsp = "/ws"): Promise<ClientSocket> {
    const socket = connectClient(`${this.url}${nsp}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
    });
    this.clients.set(name, socket);
    const inbox: Received[] = [];
    this.inboxes.set(name, inbox);
    socket.onAny((event: string, ...args: unknown[]) => inbox.push({ event, args }));
    socket.on("disconnect", (reason) => this.disconnects.set(name, reason));
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", reject);
    });
    return socket;
  }

  id(name: string): string {
    const id = this.clients.get(name)?.id;
    assert.ok(id !== undefined, name);
    return id;
  }

  async join(name: string, room: string): Promise<void> {
    await this.clients.get(name)?.timeout(5000).emitWithAck("join", room);
  }

  /** Events of `name` since the last take, as [event, ...args]. */
  take(name: string): unknown[][] {
    const inbox = this.inboxes.get(name) ?? [];
    const out = inbox.map((r) => [r.event, ...r.args].map(bytesAsList));
    inbox.length = 0;
    return out;
  }

  got(name: string, event: string): boolean {
    return (this.inboxes.get(name) ?? []).some((r) => r.event === event);
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.disconnect();
    await this.bridge.close();
    await this.io.close();
    await this.bus.close();
  }
}

const bin = (b: unknown): number[] => [...new Uint8Array(b as ArrayBuffer)];

/** Binary values (Buffer in Node's socket.io-client) as { bytes: [...] }, for deepEqual. */
function bytesAsList(v: unknown): unknown {
  if (v instanceof Uint8Array || v instanceof ArrayBuffer) return { bytes: bin(v) };
  if (Array.isArray(v)) return v.map(bytesAsList);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesAsList(x)]));
  }
  return v;
}

/**
 * A bridge on a node of its own survives a broker restart: `down`, then `up` with its
 * subscription (Redis) or a new queue and bindings (RabbitMQ) restored, and delivers again.
 */
export async function survivesRestart(
  t: TestContext,
  url: string,
  restart: () => Promise<void>,
  publishRaw: (channel: string, body: string) => Promise<void>,
): Promise<void> {
  t.mock.method(console, "warn", () => {});
  const http = createServer();
  const io = new Server(http);
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const bridge = createFlaskBridge(io, { url, channels: ["restart-test"], reconnectMaxDelay: 500 });
  const client = connectClient(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`, {
    transports: ["websocket"],
    forceNew: true,
  });
  t.after(async () => {
    client.disconnect();
    await bridge.close();
    await io.close();
  });
  const got: unknown[] = [];
  client.on("after", (n: unknown) => got.push(n));
  const connected = new Promise<void>((resolve) => client.once("connect", () => resolve()));
  await bridge.ready();
  await connected;
  let downs = 0;
  let ups = 0;
  bridge.on("down", () => downs++);
  bridge.on("up", () => ups++);
  await restart();
  await waitFor(() => downs > 0 && ups > 0 && bridge.connected, 60_000, "down, then up again");
  // "up" means subscribed (Redis) / bound and consuming (RabbitMQ): one publish is enough.
  await publishRaw(
    "restart-test",
    '{"method": "emit", "event": "after", "data": [1], "binary": false, "namespace": "/"}',
  );
  await waitFor(() => got.length > 0, 5000, "delivered after the restart");
  assert.deepEqual(got, [1]);
}

export function scenarios(
  broker: () => {
    url: string;
    makeBus: () => Bus;
    publishRaw: (channel: string, body: Buffer | string) => Promise<void>;
  },
  channel: string,
): { nodes: () => [Node, Node]; close: () => Promise<void> } {
  let a: Node;
  let b: Node;
  before(async () => {
    const { url, makeBus } = broker();
    a = await Node.start(makeBus(), { url, channels: [channel], legacyPickle: "data-only" });
    b = await Node.start(makeBus(), { url, channels: [channel], legacyPickle: "data-only" });
    await a.client("a1");
    await a.client("a2");
    await b.client("b1");
    await b.client("b2");
    await b.client("root", "/");
  });
  const all = ["a1", "a2", "b1", "b2"] as const;
  const node = (n: string) => (n.startsWith("a") ? a : b);
  const untilEnd = (names: readonly string[], ev: string) =>
    waitFor(() => names.every((n) => node(n).got(n, ev)), 15_000, `"${ev}" at ${names.join(", ")}`);

  test("Flask-SocketIO's write-only SocketIO(message_queue=…): all, rooms, room lists, skip_sid, sid, tuple, bytes, close_room — once each, in order", async () => {
    for (const [n, room] of [
      ["a1", "r"],
      ["b1", "r"],
      ["a2", "s"],
      ["a1", "s"],
    ] as const) {
      await node(n).join(n, room);
    }
    await runEmitter("flask", broker().url, channel, [
      { op: "emit", event: "tick", data: { seq: 1 }, ns: "/ws" },
      { op: "emit", event: "tick", data: { seq: 2 }, ns: "/ws", to: "r" },
      { op: "emit", event: "multi", data: { $tuple: [1, "two", [3]] }, ns: "/ws", to: ["r", "s"] },
      { op: "emit", event: "tick", data: { seq: 4 }, ns: "/ws", to: "r", skip: a.id("a1") },
      { op: "emit", event: "direct", data: "hi", ns: "/ws", to: b.id("b2") },
      { op: "emit", event: "bin", data: { b: { $bytes: "AAH/" } }, ns: "/ws", to: "s" },
      {
        op: "emit",
        event: "tick",
        data: { seq: 7 },
        ns: "/ws",
        to: ["r"],
        skip: [a.id("a1"), b.id("b1")],
      },
      { op: "emit", event: "list", data: [1, 2], ns: "/ws", to: a.id("a2") },
      { op: "close_room", room: "r", ns: "/ws" },
      { op: "emit", event: "tick", data: { seq: 9 }, ns: "/ws", to: "r" },
      { op: "emit", event: "end", data: null, ns: "/ws" },
      { op: "emit", event: "end", data: null, ns: "/" },
    ]);
    await untilEnd([...all, "root"], "end");
    const a1 = a.take("a1");
    const a2 = a.take("a2");
    const b1 = b.take("b1");
    const b2 = b.take("b2");
    const bytes = { b: { bytes: [0, 1, 255] } };
    assert.deepEqual(a1, [
      ["tick", { seq: 1 }],
      ["tick", { seq: 2 }],
      ["multi", 1, "two", [3]],
      ["bin", bytes],
      ["end"],
    ]);
    assert.deepEqual(a2, [
      ["tick", { seq: 1 }],
      ["multi", 1, "two", [3]],
      ["bin", bytes],
      ["list", [1, 2]],
      ["end"],
    ]);
    assert.deepEqual(b1, [
      ["tick", { seq: 1 }],
      ["tick", { seq: 2 }],
      ["multi", 1, "two", [3]],
      ["tick", { seq: 4 }],
      ["end"],
    ]);
    assert.deepEqual(b2, [["tick", { seq: 1 }], ["direct", "hi"], ["end"]]);
    assert.deepEqual(b.take("root"), [["end"]], "other namespaces get nothing of /ws");
    for (const n of [a, b]) {
      assert.equal(n.bridge.stats.received, 12);
      assert.equal(n.bridge.stats.applied, 12);
      assert.equal(
        n.bridge.stats.malformed + n.bridge.stats.unsupported + n.bridge.stats.failed,
        0,
      );
    }
  });

  test("python-socketio's write-only manager: emits and disconnect(sid) of a client on either node", async () => {
    await runEmitter("manager", broker().url, channel, [
      { op: "emit", event: "m", data: { $tuple: [] }, ns: "/ws" },
      { op: "disconnect", sid: b.id("b2"), ns: "/ws" },
      { op: "emit", event: "m2", data: { $tuple: ["x", { $bytes: "AQI=" }] }, ns: "/ws" },
    ]);
    await untilEnd(["a1", "a2", "b1"], "m2");
    await waitFor(() => b.disconnects.has("b2"), 10_000, "b2 disconnected");
    assert.equal(b.disconnects.get("b2"), "io server disconnect");
    for (const n of ["a1", "a2", "b1"]) {
      const got = node(n).take(n);
      assert.equal(got.length, 2, `${n}: ${JSON.stringify(got)}`);
      assert.deepEqual(got[0], ["m"]);
      assert.deepEqual(got[1], ["m2", "x", { bytes: [1, 2] }]);
    }
    assert.deepEqual(b.take("b2"), [["m"]], "b2 got what came before its disconnect only");
  });

  test("JSON layouts (5.14.0, 5.14.2, 5.15.1, enter/leave_room) and junk over the broker: junk dropped and counted, the rest in order", async () => {
    const { publishRaw } = broker();
    const before = { ...a.bridge.stats };
    const h = '"host_id": "a11793578a834f59bf6c88cc540b6ac1"';
    const bodies: (string | Buffer)[] = [
      `{"method": "enter_room", "sid": "${a.id("a2")}", "room": "t", "namespace": "/ws", ${h}}`,
      '["method"]',
      `{"method": "emit", "event": "j1", "data": [{"seq": 1}, "two"], "binary": false, "namespace": "/ws", "room": "t", "skip_sid": null, "callback": null, ${h}}`,
      Buffer.from([0xff, 0x00, 0x80]),
      `{"method": "emit", "event": "connect", "data": [1], "binary": false, "namespace": "/ws", "room": null, ${h}}`,
      Buffer.from([
        0x80, 0x04, 0x63, 0x6f, 0x73, 0x0a, 0x73, 0x79, 0x73, 0x74, 0x65, 0x6d, 0x0a, 0x52, 0x2e,
      ]),
      `{"method": "emit", "event": "j2", "data": [[{"b": {"_placeholder": true, "num": 0}}], "AAH/"], "binary": true, "namespace": "/ws", "room": "t", ${h}}`,
      `{"method": "emit", "event": "j3", "data": [1, 2], "namespace": "/ws", "room": "t", "skip_sid": null, "callback": null, ${h}}`,
      `{"method": "leave_room", "sid": "${a.id("a2")}", "room": "t", "namespace": "/ws", ${h}}`,
      `{"method": "emit", "event": "j4", "data": ["gone"], "binary": false, "namespace": "/ws", "room": "t", ${h}}`,
      '{"method": "publish", "data": 1}',
      `{"method": "emit", "event": "j5", "data": ["ok"], "binary": false, "namespace": "/ws", "room": "${a.id("a2")}", ${h}}`,
    ];
    for (const body of bodies) await publishRaw(channel, body);
    await untilEnd(["a2"], "j5");
    const got = a.take("a2");
    assert.deepEqual(got[0], ["j1", { seq: 1 }, "two"]);
    assert.deepEqual(got[1], ["j2", { b: { bytes: [0, 1, 255] } }]);
    assert.deepEqual(got.slice(2), [
      ["j3", [1, 2]],
      ["j5", "ok"],
    ]);
    await waitFor(
      () => a.bridge.stats.received - before.received === bodies.length,
      5000,
      "all received",
    );
    assert.equal(a.bridge.stats.malformed - before.malformed, 2, "array body and non-UTF-8 bytes");
    assert.equal(a.bridge.stats.reservedEvent - before.reservedEvent, 1);
    assert.equal(
      a.bridge.stats.pickleRefused - before.pickleRefused,
      1,
      "GLOBAL os.system + REDUCE",
    );
    assert.equal(a.bridge.stats.unsupported - before.unsupported, 1, "unknown method");
    assert.deepEqual(a.take("a1"), [], "a1 never was in t");
  });

  return {
    nodes: () => [a, b],
    close: async () => {
      await a?.close();
      await b?.close();
    },
  };
}
