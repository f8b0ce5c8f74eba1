/**
 * The Python publishers reach real Socket.IO clients: a Switchyard Server with the
 * cluster adapter over a real broker, socket.io-client sockets in rooms, and
 * /usr/bin/python3 running publish_redis.py / publish_amqp.py (redis-py, pika).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { AmqpBus, routingKey } from "@switchyard/amqp";
import { RedisBus } from "@switchyard/redis";
import { type Bus, createAdapter, Server } from "@switchyard/server";
import {
  PYTHON,
  type RabbitServer,
  type RedisServer,
  startRabbitMQ,
  startRedis,
  waitFor,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connectClient } from "socket.io-client";

const DIR = new URL("..", import.meta.url).pathname;
const notepack = createRequire(import.meta.url)("notepack.io") as {
  encode(value: unknown): Buffer;
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function python(script: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      PYTHON,
      [`${DIR}${script}`, ...args],
      { cwd: DIR, timeout: 20000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function pythonOk(script: string, args: readonly string[]): Promise<string> {
  const run = await python(script, args);
  assert.equal(run.code, 0, `${script} ${args.join(" ")} failed:\n${run.stderr}${run.stdout}`);
  return run.stdout;
}

interface Received {
  event: string;
  args: unknown[];
}

/** A Switchyard node over `bus` with clients joined to rooms given in the query. */
class Node {
  readonly clients: ClientSocket[] = [];
  readonly inboxes = new Map<string, Received[]>();
  private constructor(
    readonly io: Server,
    readonly url: string,
    readonly bus: Bus,
  ) {}

  static async start(bus: Bus): Promise<Node> {
    const http = createServer();
    const io = new Server(http, { adapter: createAdapter(bus) });
    for (const nsp of ["/", "/chat"]) {
      io.of(nsp).on("connection", (socket) => {
        const rooms = String(socket.handshake.query.rooms ?? "");
        for (const room of rooms.split(",").filter(Boolean)) void socket.join(room);
        socket.emit("joined");
      });
    }
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const { port } = http.address() as AddressInfo;
    return new Node(io, `http://127.0.0.1:${port}`, bus);
  }

  /** Connects a client named `name` to `nsp`, in `rooms`; resolves once it joined. */
  async client(name: string, nsp: string, rooms: string[]): Promise<ClientSocket> {
    const socket = connectClient(`${this.url}${nsp}`, {
      transports: ["websocket"],
      query: { rooms: rooms.join(",") },
      forceNew: true,
      reconnection: false,
    });
    this.clients.push(socket);
    const inbox: Received[] = [];
    this.inboxes.set(name, inbox);
    socket.onAny((event: string, ...args: unknown[]) => {
      if (event !== "joined") inbox.push({ event, args });
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("joined", () => resolve());
      socket.once("connect_error", reject);
    });
    return socket;
  }

  received(name: string, event: string): unknown[][] {
    return (this.inboxes.get(name) ?? []).filter((r) => r.event === event).map((r) => r.args);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.disconnect();
    await this.io.close();
    await this.bus.close();
  }
}

/**
 * The adapter subscribes to a room's channel when its first socket joins, which the
 * client can't observe: publish a probe until it arrives, then the bus is ready.
 */
async function untilSubscribed(
  node: Node,
  script: string,
  urlArgs: string[],
  nsp: string,
  room: string,
  client: string,
): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    await pythonOk(script, [...urlArgs, "--nsp", nsp, "--room", room, "probe"]);
    try {
      await waitFor(() => node.received(client, "probe").length > 0, 250, "probe");
      return;
    } catch {
      // not subscribed yet
    }
  }
  throw new Error(`room ${room} never received a probe`);
}

/** Scenarios shared by both brokers. */
function scenarios(
  script: string,
  urlArgs: () => string[],
  makeBus: () => Bus,
  ensureSubscribed: (node: Node, nsp: string, room: string, client: string) => Promise<void>,
): void {
  let node: Node;
  before(async () => {
    node = await Node.start(makeBus());
    await node.client("btc", "/", ["btc"]);
    await node.client("eth", "/", ["eth"]);
    await node.client("both", "/", ["btc", "eth"]);
    await node.client("chat", "/chat", ["lobby"]);
    await ensureSubscribed(node, "/", "btc", "btc");
    await ensureSubscribed(node, "/", "eth", "eth");
    await ensureSubscribed(node, "/chat", "lobby", "chat");
  });
  after(() => node?.close());

  test("an event to one room reaches its clients with text, JSON and binary args", async () => {
    const out = await pythonOk(script, [
      ...urlArgs(),
      "--room",
      "btc",
      "tick",
      "--json",
      '{"symbol": "BTC", "price": 67012.5, "volume": 12, "tags": ["a", null, true]}',
      "--text",
      "héllo ✓",
      "--hex",
      "00ff10",
      "--json",
      "-7",
    ]);
    assert.match(out, /published \d+ bytes on socket\.io#\/#btc#/);
    await waitFor(
      () => node.received("both", "tick").length === 1,
      10000,
      "tick to btc+eth client",
    );
    await waitFor(() => node.received("btc", "tick").length === 1, 10000, "tick to btc client");
    const [args] = node.received("btc", "tick");
    assert.deepEqual(args!.slice(0, 2), [
      { symbol: "BTC", price: 67012.5, volume: 12, tags: ["a", null, true] },
      "héllo ✓",
    ]);
    const bin = args![2];
    assert.ok(bin instanceof Uint8Array || bin instanceof ArrayBuffer, "binary arrives as binary");
    assert.deepEqual([...new Uint8Array(bin as ArrayBuffer)], [0x00, 0xff, 0x10]);
    assert.equal(args![3], -7);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(node.received("eth", "tick").length, 0, "not in the room: nothing");
    assert.equal(node.received("chat", "tick").length, 0, "other namespace: nothing");
  });

  test("namespace-wide, several rooms, and except", async () => {
    await pythonOk(script, [...urlArgs(), "all", "--json", "1"]);
    await pythonOk(script, [...urlArgs(), "--room", "btc", "--room", "eth", "two", "--json", "2"]);
    await pythonOk(script, [...urlArgs(), "--except", "btc", "notbtc", "--json", "3"]);
    for (const c of ["btc", "eth", "both"]) {
      await waitFor(() => node.received(c, "all").length === 1, 10000, `all → ${c}`);
      await waitFor(() => node.received(c, "two").length === 1, 10000, `two → ${c}`);
    }
    await waitFor(() => node.received("eth", "notbtc").length === 1, 10000, "notbtc → eth");
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(node.received("both", "two"), [[2]], "once, though in both rooms");
    assert.equal(node.received("btc", "notbtc").length, 0);
    assert.equal(node.received("both", "notbtc").length, 0);
    assert.equal(node.received("chat", "all").length, 0);
  });

  test("another namespace", async () => {
    await pythonOk(script, [
      ...urlArgs(),
      "--nsp",
      "/chat",
      "--room",
      "lobby",
      "msg",
      "--text",
      "hi",
    ]);
    await waitFor(() => node.received("chat", "msg").length === 1, 10000, "msg → /chat lobby");
    assert.deepEqual(node.received("chat", "msg"), [["hi"]]);
    assert.equal(node.received("btc", "msg").length, 0);
  });
}

describe("wire format", () => {
  test("payload bytes equal @socket.io/redis-emitter's (notepack.io) encoding", async () => {
    const cases: Array<{
      args: string[];
      nsp: string;
      rooms: string[];
      except: string[];
      data: unknown[];
    }> = [
      {
        args: [
          "--room",
          "btc",
          "tick",
          "--json",
          '{"price": 1.5, "n": -3}',
          "--text",
          "hé",
          "--hex",
          "00ff",
        ],
        nsp: "/",
        rooms: ["btc"],
        except: [],
        data: ["tick", { price: 1.5, n: -3 }, "hé", Buffer.from([0, 255])],
      },
      {
        args: [
          "--nsp",
          "/chat",
          "--room",
          "a",
          "--room",
          "b",
          "--except",
          "c",
          "hi",
          "--json",
          "[0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, 0.25, null, true, false]",
          "--text",
          "x".repeat(31),
          "--text",
          "y".repeat(32),
          "--text",
          "z".repeat(256),
          "--text",
          "w".repeat(70000),
          "--hex",
          "ab".repeat(300),
          "--json",
          JSON.stringify(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))),
          "--json",
          JSON.stringify(Array.from({ length: 20 }, (_, i) => i)),
        ],
        nsp: "/chat",
        rooms: ["a", "b"],
        except: ["c"],
        data: [
          "hi",
          [
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            4294967295,
            4294967296,
            -1,
            -32,
            -33,
            -128,
            -129,
            -32768,
            -32769,
            -2147483648,
            -2147483649,
            0.25,
            null,
            true,
            false,
          ],
          "x".repeat(31),
          "y".repeat(32),
          "z".repeat(256),
          "w".repeat(70000),
          Buffer.from("ab".repeat(300), "hex"),
          Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
          Array.from({ length: 20 }, (_, i) => i),
        ],
      },
    ];
    for (const c of cases) {
      const out = await pythonOk("publish_redis.py", ["--dry-run", ...c.args]);
      const field = (name: string): string =>
        out.match(new RegExp(`^${name}\\s+(\\S*)$`, "m"))![1]!;
      const channel =
        c.rooms.length === 1 ? `socket.io#${c.nsp}#${c.rooms[0]}#` : `socket.io#${c.nsp}#`;
      assert.equal(field("channel"), channel);
      assert.equal(field("routing key"), routingKey(channel));
      // The emitter's own construction (packages/…/redis-emitter emit()).
      const expected = notepack.encode([
        "emitter",
        { type: 2, data: c.data, nsp: c.nsp },
        { rooms: c.rooms, flags: {}, except: c.except },
      ]);
      assert.equal(field("payload"), expected.toString("hex"));
    }
  });

  test("routing keys match @switchyard/amqp, hashed form included", async () => {
    const long = "r".repeat(200);
    const out = await pythonOk("publish_amqp.py", ["--dry-run", "--room", long, "e"]);
    assert.match(out, new RegExp(`^routing key ${routingKey(`socket.io#/#${long}#`)}$`, "m"));
    assert.match(out, /^routing key sy\.h\.[0-9a-f]{64}$/m);
  });

  test("bad arguments fail with a message, not a traceback", async () => {
    const run = await python("publish_redis.py", ["ev", "--json", "{nope"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--json/);
    assert.doesNotMatch(run.stderr, /Traceback/);
  });
});

describe("publish_redis.py → RedisBus → socket.io-client", () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  scenarios(
    "publish_redis.py",
    () => ["--url", redis.url],
    () => new RedisBus({ url: redis.url }),
    (node, nsp, room, client) =>
      untilSubscribed(node, "publish_redis.py", ["--url", redis.url], nsp, room, client),
  );
  // After the node's own `after` (hooks run in order): the bus closes before its broker.
  after(() => redis?.stop());
});

describe("publish_amqp.py → AmqpBus → socket.io-client", () => {
  let rabbit: RabbitServer;
  before(async () => {
    rabbit = await startRabbitMQ();
  });
  scenarios(
    "publish_amqp.py",
    () => ["--url", rabbit.url],
    () => new AmqpBus({ url: rabbit.url }),
    (node, nsp, room, client) =>
      untilSubscribed(node, "publish_amqp.py", ["--url", rabbit.url], nsp, room, client),
  );
  after(() => rabbit?.stop());
});
