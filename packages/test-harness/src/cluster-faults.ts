/**
 * Cluster fault tests, the same for every broker. A broker package calls
 * {@link runClusterFaults} from a test file; the suite starts the real broker, runs
 * three Switchyard `Server`s in the test process (each on its own node:http server at
 * 127.0.0.1:0, each with its own bus), spreads real `socket.io-client` clients over
 * them in one room, and checks:
 *
 * - the broker SIGKILLed (and, separately, restarted gracefully) while node A
 *   broadcasts every 20 ms: no crash, no unhandled rejection, no uncaught exception;
 *   A's own clients get every broadcast; each adapter reports `bus-down` then `bus-up`
 *   once, `console.warn` runs once per bus (not per namespace, not per message); after
 *   the restart the buses reconnect, membership comes back and B's and C's clients get
 *   A's broadcasts again, rooms joined during the outage included; the bus counters
 *   show one outage and the publishes dropped meanwhile;
 * - malformed and foreign messages published straight to the broker (garbage, wrong
 *   shapes, huge declared lengths, a control message of version 99, socket.io packets
 *   with reserved event names, other namespaces, socket.io adapter requests) on the
 *   namespace, room, control and request channels: every node stays up, each message
 *   is counted in `adapter.stats` (malformed / unsupported / refused), clients receive
 *   none of it, and a valid broadcast published after them still arrives.
 *
 * Every client, server and bus is closed after each test, the broker after the suite,
 * also when an assertion fails.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import {
  broadcastChannel,
  controlChannel,
  emitterRequestChannel,
  encodeClusterBroadcast,
  encodeControlMessage,
  PacketType,
  type SocketPacket,
} from "@switchyard/protocol";
import {
  type Bus,
  type ClusterAdapter,
  type ClusterAdapterOptions,
  createAdapter,
  Server,
  type Socket,
} from "@switchyard/server";
import { type Socket as ClientSocket, io as ioClient } from "socket.io-client";
import type { RestartableControl } from "./service.js";
import { Scope, waitFor, within } from "./wait.js";

/** A broker started by the suite (the handles of startRedis() / startRabbitMQ() fit). */
export interface FaultBroker extends RestartableControl {
  readonly url: string;
  readonly port: number;
}

/** A plain client of the broker that publishes bytes on a cluster channel, bypassing any Bus. */
export interface RawPublisher {
  /** Resolves once the broker took the message (published in call order). */
  publish(channel: string, payload: Buffer): Promise<void>;
  close(): Promise<void> | void;
}

/** Options of {@link runClusterFaults}. */
export interface ClusterFaultsOptions {
  /** Title of the `describe` block, e.g. "RedisBus". */
  name: string;
  /** Starts the broker for the suite; stopped in the suite's `after` hook. */
  startBroker(): Promise<FaultBroker>;
  /** A new bus on `url`, with reconnect delays short enough for a test. */
  createBus(url: string): Bus;
  /** Opens an external publisher on the broker (redis PUBLISH, an amqplib channel, …). */
  rawPublisher(broker: FaultBroker): Promise<RawPublisher>;
  /** How long every bus may take to be back up once `restart()` resolved. @default 15000 */
  upTimeoutMs?: number;
}

const HOST = "127.0.0.1";
const NAMESPACES = ["/", "/admin"] as const;
type Nsp = (typeof NAMESPACES)[number];
/** Membership is checked (dead while the bus is down, back after it): short heartbeats. */
const CLUSTER: ClusterAdapterOptions = {
  heartbeatInterval: 200,
  heartbeatTimeout: 1500,
  requestsTimeout: 3000,
};
const TICK_MS = 20;
/** The stream of broadcasts ends by itself after this many (about a minute). */
const MAX_TICKS = 3000;

// ——— small utilities ———

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");

/** A minimal msgpack encoder (nil, bool, small ints, str, array, map) for hand-made junk. */
function msgpack(value: unknown): Buffer {
  const parts: Buffer[] = [];
  const head = (...bytes: number[]): void => {
    parts.push(Buffer.from(bytes));
  };
  const size = (n: number, fix: number, fixMax: number, b16: number): void => {
    if (n <= fixMax) head(fix | n);
    else head(b16, n >> 8, n & 0xff);
  };
  const put = (v: unknown): void => {
    if (v === null) head(0xc0);
    else if (typeof v === "boolean") head(v ? 0xc3 : 0xc2);
    else if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 128) head(v);
    else if (typeof v === "string") {
      const b = Buffer.from(v);
      size(b.length, 0xa0, 31, 0xda);
      parts.push(b);
    } else if (Array.isArray(v)) {
      size(v.length, 0x90, 15, 0xdc);
      for (const x of v) put(x);
    } else if (typeof v === "object") {
      const entries = Object.entries(v);
      size(entries.length, 0x80, 15, 0xde);
      for (const [k, x] of entries) {
        put(k);
        put(x);
      }
    } else throw new TypeError(`msgpack(): cannot encode ${typeof v}`);
  };
  put(value);
  return Buffer.concat(parts);
}

/** What the process reported that it should not have. */
interface Trap {
  readonly seen: string[];
  dispose(): void;
}

function trapProcessErrors(): Trap {
  const seen: string[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(`unhandledRejection: ${String(reason)}`);
  };
  const onException = (err: unknown): void => {
    seen.push(`uncaughtException: ${String(err)}`);
  };
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    seen,
    dispose() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

// ——— nodes and clients ———

interface Node {
  name: string;
  bus: Bus;
  io: Server;
  url: string;
  /** Adapters of the main namespace and of /admin (two adapters on one bus). */
  adapters: Record<Nsp, ClusterAdapter>;
  /** `bus-down` / `bus-up` events of each adapter, in order. */
  health: Record<Nsp, string[]>;
  /** `drop` events of the main namespace's adapter. */
  drops: string[];
  /** Server-side sockets of the main namespace by id. */
  sockets: Map<string, Socket>;
}

interface Peer {
  node: Node;
  client: ClientSocket;
  id: string;
  got: { ev: string; args: unknown[] }[];
  disconnects: string[];
}

function received(p: Peer, ev: string): unknown[][] {
  return p.got.filter((g) => g.ev === ev).map((g) => g.args);
}

function ticks(p: Peer): number[] {
  return received(p, "tick").map((args) => args[0] as number);
}

async function startNode(scope: Scope, name: string, broker: FaultBroker, make: () => Bus) {
  const bus = scope.add(make(), (b) => b.close());
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(bus, CLUSTER) });
  scope.add(io, async (s) => {
    http.closeAllConnections();
    await s.close();
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(0, HOST, () => {
      http.off("error", reject);
      resolve();
    });
  });
  const port = (http.address() as AddressInfo).port;
  const sockets = new Map<string, Socket>();
  io.on("connection", async (socket) => {
    sockets.set(socket.id, socket);
    socket.on("disconnect", () => sockets.delete(socket.id));
    const rooms = (socket.handshake.auth as { rooms?: unknown }).rooms;
    await socket.join(Array.isArray(rooms) ? rooms.filter((r) => typeof r === "string") : []);
    socket.emit("joined");
  });
  const adapters = {
    "/": io.of("/").adapter as unknown as ClusterAdapter,
    "/admin": io.of("/admin").adapter as unknown as ClusterAdapter,
  };
  const health: Record<Nsp, string[]> = { "/": [], "/admin": [] };
  const drops: string[] = [];
  for (const nsp of NAMESPACES) {
    adapters[nsp].on("bus-down", () => health[nsp].push("bus-down"));
    adapters[nsp].on("bus-up", () => health[nsp].push("bus-up"));
  }
  adapters["/"].on("drop", (err: Error) => drops.push(err.message));
  await waitFor(() => bus.healthy, 15_000, `${name}'s bus to connect to ${broker.url}`);
  await Promise.all(NAMESPACES.map((n) => adapters[n].settled()));
  return { name, bus, io, url: `http://${HOST}:${port}`, adapters, health, drops, sockets };
}

async function connect(scope: Scope, node: Node, rooms: string[]): Promise<Peer> {
  const client = ioClient(node.url, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    auth: { rooms },
  });
  scope.add(client, (c) => {
    c.disconnect();
  });
  const got: Peer["got"] = [];
  const disconnects: string[] = [];
  client.onAny((ev: string, ...args: unknown[]) => {
    got.push({ ev, args });
  });
  client.on("disconnect", (reason) => disconnects.push(reason));
  await within(
    new Promise<void>((resolve, reject) => {
      client.once("joined", () => resolve());
      client.once("connect_error", reject);
    }),
    5000,
    `a client of ${node.name} joining ${JSON.stringify(rooms)}`,
  );
  return { node, client, id: client.id!, got, disconnects };
}

async function counts(nodes: readonly Node[]): Promise<number[]> {
  return Promise.all(nodes.map((n) => n.adapters["/"].serverCount()));
}

async function waitCounts(nodes: readonly Node[], n: number, ms: number): Promise<void> {
  let last: number[] = [];
  await waitFor(
    async () => {
      last = await counts(nodes);
      return last.every((c) => c === n);
    },
    ms,
    () => `serverCount ${n} on every node (have ${last})`,
  );
}

function adaptersOf(nodes: readonly Node[]): { label: string; health: string[] }[] {
  return nodes.flatMap((n) =>
    NAMESPACES.map((nsp) => ({ label: `${n.name}${nsp}`, health: n.health[nsp] })),
  );
}

/** Strictly increasing: no duplicate and no reordering. */
function assertIncreasing(list: number[], what: string): void {
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i - 1]! < list[i]!, `${what}: ${list[i - 1]} then ${list[i]}`);
  }
}

// ——— the suite ———

/**
 * Registers the fault suite (node:test `describe`/`it`) for one broker. Call it at the
 * top level of a test file:
 *
 * ```ts
 * runClusterFaults({
 *   name: "RedisBus",
 *   startBroker: () => startRedis(),
 *   createBus: (url) => new RedisBus({ url, maxReconnectDelayMs: 200 }),
 *   rawPublisher: async (broker) => ({
 *     publish: async (ch, bytes) => void (await redisCommand(broker.port, ["PUBLISH", ch, bytes])),
 *     close: () => {},
 *   }),
 * });
 * ```
 */
export function runClusterFaults(opts: ClusterFaultsOptions): void {
  const upTimeout = opts.upTimeoutMs ?? 15_000;

  describe(`cluster faults: ${opts.name}`, () => {
    let broker: FaultBroker | undefined;
    let trap: Trap | undefined;
    const warnings: string[] = [];
    const realWarn = console.warn;
    let scope = new Scope(5000);

    before(async () => {
      trap = trapProcessErrors();
      console.warn = (...args: unknown[]) => {
        warnings.push(args.map(String).join(" "));
      };
      broker = await opts.startBroker();
    });

    afterEach(async () => {
      await scope.close();
      scope = new Scope(5000);
      // A test that failed during an outage leaves the broker down for the next one.
      if (broker !== undefined && broker.process === undefined) await broker.restart();
    });

    after(async () => {
      console.warn = realWarn;
      trap?.dispose();
      await broker?.stop();
    });

    function make(): Bus {
      return opts.createBus(broker!.url);
    }

    for (const mode of ["SIGKILL", "graceful restart"] as const) {
      it(`${mode} of the broker mid-traffic: local delivery goes on, one down/up per adapter, one warning per bus, cluster delivery resumes`, async (t) => {
        warnings.length = 0;
        const errorsBefore = trap!.seen.length;
        const nodes = await Promise.all(
          ["A", "B", "C"].map((n) => startNode(scope, n, broker!, make)),
        );
        const [A, B, C] = nodes as [Node, Node, Node];
        await waitCounts(nodes, 3, 10_000);
        const a1 = await connect(scope, A, ["r"]);
        const a2 = await connect(scope, A, ["r"]);
        const b1 = await connect(scope, B, ["r"]);
        const c1 = await connect(scope, C, ["r"]);
        const peers = [a1, a2, b1, c1];

        // A steady stream from A to room r, bounded in count (and so in time).
        let seq = 0;
        let outageTicks = 0;
        const stream = scope.add(
          setInterval(() => {
            if (seq >= MAX_TICKS) return;
            if (!A.bus.healthy) outageTicks++;
            A.io.to("r").emit("tick", seq++);
          }, TICK_MS),
          clearInterval,
        );
        await waitFor(
          () => ticks(b1).length >= 5 && ticks(c1).length >= 5,
          5000,
          "A's broadcasts on B and C before the fault",
        );
        for (const n of nodes) for (const nsp of NAMESPACES) n.health[nsp].length = 0;
        const outagesBefore = nodes.map((n) => n.bus.stats.outages);
        const droppedBefore = A.bus.stats.dropped;
        assert.deepEqual(warnings, [], "nothing logged while healthy");

        const faultAt = Date.now();
        let restarting: Promise<void> | undefined;
        if (mode === "SIGKILL") await broker!.kill();
        else restarting = broker!.restart();
        const everyAdapter = adaptersOf(nodes);
        await waitFor(
          () => everyAdapter.every((a) => a.health.includes("bus-down")),
          10_000,
          () => `bus-down on every adapter (${JSON.stringify(everyAdapter)})`,
        );
        const downMs = Date.now() - faultAt;

        let downSeq = -1;
        let b2: Peer | undefined;
        if (mode === "SIGKILL") {
          downSeq = seq;
          // Local delivery continues: A's own clients keep receiving.
          await waitFor(
            () => [a1, a2].every((p) => ticks(p).some((s) => s >= downSeq + 10)),
            3000,
            "ten more broadcasts on A's clients during the outage",
          );
          assert.ok(
            nodes.every((n) => !n.bus.healthy),
            "the broker is still down",
          );
          // No peer counts while the bus is down; requests answer from this node at once.
          assert.deepEqual(await counts(nodes), [1, 1, 1]);
          const local = await within(
            A.io.in("r").fetchSockets(),
            1000,
            "fetchSockets during the outage",
          );
          assert.deepEqual(local.map((s) => s.id).sort(), [a1.id, a2.id].sort());
          // Rooms joined during the outage: a new client on B, a new room for c1 on C.
          b2 = await connect(scope, B, ["r", "late-b"]);
          await within(
            Promise.resolve(C.sockets.get(c1.id)!.join("late-c")),
            3000,
            "join() during the outage",
          );
          assert.ok(
            nodes.every((n) => !n.bus.healthy),
            "the joins happened during the outage",
          );
          assert.ok(outageTicks > 0, "A broadcast into the outage");
          // Not dropped: held in A's bus's offline queue until the broker is back.
          assert.ok(
            A.bus.stats.queued >= 10,
            `A's bus holds the broadcasts of the outage (queued: ${A.bus.stats.queued})`,
          );
          await broker!.restart();
        } else {
          await restarting;
        }
        const brokerBackMs = Date.now() - faultAt;
        await waitFor(
          () => everyAdapter.every((a) => a.health.includes("bus-up")),
          upTimeout,
          () => `bus-up on every adapter (${JSON.stringify(everyAdapter)})`,
        );
        const upMs = Date.now() - faultAt;
        await waitCounts(nodes, 3, 5000);
        const countsMs = Date.now() - faultAt;

        // Cross-node delivery resumes.
        const resumeFrom = seq;
        await waitFor(
          () => [b1, c1].every((p) => ticks(p).some((s) => s >= resumeFrom)),
          5000,
          "A's broadcasts on B and C after the restart",
        );
        if (b2 !== undefined) {
          A.io.to("late-b").emit("late", "b");
          A.io.to("late-c").emit("late", "c");
          await waitFor(
            () => received(b2!, "late").length === 1 && received(c1, "late").length === 1,
            5000,
            "broadcasts to the rooms joined during the outage",
          );
          assert.deepEqual(received(b2, "late"), [["b"]]);
          assert.deepEqual(received(c1, "late"), [["c"]]);
          await waitFor(
            () => ticks(b2!).some((s) => s >= resumeFrom),
            5000,
            "room r on the client that joined during the outage",
          );
          peers.push(b2);
        }
        // B's publisher works too.
        B.io.to("r").emit("from-b");
        clearInterval(stream);
        const total = seq;
        A.io.to("r").emit("done");
        await waitFor(
          () =>
            peers.every(
              (p) => received(p, "done").length === 1 && received(p, "from-b").length === 1,
            ),
          5000,
          "the final broadcasts on every client",
        );

        t.diagnostic(
          `${mode}: down on every adapter after ${downMs} ms, broker back after ${brokerBackMs} ms, ` +
            `every adapter up after ${upMs} ms, counts back after ${countsMs} ms; ` +
            `${total} broadcasts, ${outageTicks} into the outage; ` +
            `B got ${ticks(b1).length}, C got ${ticks(c1).length}`,
        );

        // Local delivery never lost a message; remote delivery is in order, without duplicates.
        const all = Array.from({ length: total }, (_, i) => i);
        assert.deepEqual(ticks(a1), all, "a1 got every broadcast");
        assert.deepEqual(ticks(a2), all, "a2 got every broadcast");
        for (const p of [b1, c1]) {
          const got = ticks(p);
          assertIncreasing(got, `${p.node.name}'s client`);
          // Nothing is lost once every bus is back.
          const missing = all.filter((s) => s >= resumeFrom && !got.includes(s));
          assert.deepEqual(missing, [], `${p.node.name}'s client after the restart`);
          // What A published while its bus was down waited in its offline queue and went
          // out on reconnect: whichever of it reached B and C (it races their
          // re-subscription) arrived in order and once, as checked above.
        }
        // Nothing else reached the clients, and none was disconnected.
        const expected = new Set(["joined", "tick", "late", "from-b", "done"]);
        for (const p of peers) {
          assert.deepEqual(
            p.got.filter((g) => !expected.has(g.ev)),
            [],
            `unexpected events on ${p.node.name}'s client`,
          );
          assert.deepEqual(p.disconnects, [], `a client of ${p.node.name} was disconnected`);
        }

        // The outage was surfaced once: one down and one up per adapter, one warning per bus.
        for (const a of everyAdapter) assert.deepEqual(a.health, ["bus-down", "bus-up"], a.label);
        // One "down" warning per bus; a bus whose publishes were in flight when the broker
        // died, or (a slow restart on a loaded machine) waited past offlineQueue.timeout,
        // also reports that, once.
        const downWarnings = warnings.filter((w) => /cluster bus down/.test(w));
        assert.equal(
          downWarnings.length,
          nodes.length,
          `one warning per bus:\n${warnings.join("\n")}`,
        );
        for (const w of warnings.filter((x) => !downWarnings.includes(x))) {
          assert.match(
            w,
            /cluster bus error: \d+ publish(es)? dropped: the broker (connection broke|did not take them within offlineQueue\.timeout)/,
          );
        }
        assert.ok(
          warnings.length <= 2 * nodes.length,
          `at most two warnings per bus:\n${warnings.join("\n")}`,
        );
        for (const [i, n] of nodes.entries()) {
          assert.equal(n.bus.stats.outages - outagesBefore[i]!, 1, `${n.name}: outages`);
          assert.equal(n.bus.healthy, true);
        }
        // Only publishes in flight when the connection broke may be lost: counted, and
        // reported (the warnings above allow no other drop); the rest were queued.
        if (A.bus.stats.dropped > droppedBefore) {
          assert.ok(
            warnings.some((w) => /publish(es)? dropped: the broker connection broke/.test(w)),
            `A's ${A.bus.stats.dropped - droppedBefore} drops were reported`,
          );
        }
        assert.equal(A.bus.stats.queued, 0, "A's offline queue drained");
        assert.deepEqual(trap!.seen.slice(errorsBefore), [], "no crash");
      });
    }

    it("malformed and foreign messages on the bus are dropped and counted; nodes stay up, clients get none", async () => {
      const errorsBefore = trap!.seen.length;
      const nodes = await Promise.all(["A", "B"].map((n) => startNode(scope, n, broker!, make)));
      const [A, B] = nodes as [Node, Node];
      await waitCounts(nodes, 2, 10_000);
      const a1 = await connect(scope, A, ["r"]);
      const b1 = await connect(scope, B, ["r"]);
      const raw = scope.add(await opts.rawPublisher(broker!), (p) => p.close());

      const ns = broadcastChannel("/");
      const room = broadcastChannel("/", "r");
      const ctl = controlChannel("/");
      const req = emitterRequestChannel("/");
      const selfA = controlChannel("/", A.adapters["/"].uid);
      const none = { rooms: [], except: [], flags: {} };
      const event = (data: unknown[], nsp = "/"): SocketPacket => ({
        type: PacketType.EVENT,
        nsp,
        data,
      });
      type Kind = "malformed" | "unsupported" | "refused";
      const KINDS = ["malformed", "unsupported", "refused"] as const;
      const sent = (data: unknown[]) =>
        encodeClusterBroadcast({ uid: "x", packet: event(data), opts: none });
      // [expected counter, channel, description, bytes]
      const cases: [Kind, string, string, Buffer][] = [
        // Garbage bytes.
        ["malformed", ns, "garbage", Buffer.from("\xc1 not msgpack", "latin1")],
        ["malformed", ns, "empty", Buffer.alloc(0)],
        ["malformed", ns, "truncated broadcast", sent(["cut", "short"]).subarray(0, 20)],
        ["malformed", room, "garbage (room)", hex("c1 ff 00")],
        ["malformed", ctl, "garbage (control)", hex("c1")],
        ["malformed", selfA, "garbage (to A only)", hex("ff ff ff")],
        ["malformed", req, "not JSON (emitter request)", Buffer.from("{not json")],
        // Valid msgpack of the wrong shape.
        ["malformed", ns, "a map for a broadcast", msgpack({ not: "an array" })],
        ["malformed", room, "numbers for a broadcast", msgpack([1, 2, 3])],
        ["malformed", room, "event name not a string", msgpack(["x", event([{}]), {}])],
        [
          "malformed",
          ns,
          "a CONNECT packet",
          msgpack(["x", { type: 0, nsp: "/", data: {} }, none]),
        ],
        ["malformed", ctl, "an array for a control message", msgpack(["v", 1])],
        ["malformed", ctl, "fetch without rid", msgpack({ v: 1, type: "fetch", uid: "x" })],
        // Huge declared lengths.
        ["malformed", ns, "array32 of 4G items", hex("dd ffffffff 01")],
        ["malformed", ns, "map32 of 4G pairs", hex("93 a1 78 df ffffffff")],
        ["malformed", room, "bin32 of 2 GB", hex("93 a1 78 c6 7fffffff 00 01")],
        ["malformed", ctl, "str32 of 4 GB", hex("81 a1 76 db ffffffff 61")],
        // Versions, types and namespaces this node does not speak.
        ["unsupported", ctl, "v: 99", msgpack({ v: 99, type: "heartbeat", uid: "future" })],
        ["unsupported", ctl, "no v", msgpack({ type: "heartbeat", uid: "nov" })],
        ["unsupported", ctl, "unknown type", msgpack({ v: 1, type: "gossip", uid: "x" })],
        [
          "unsupported",
          ns,
          "another namespace's broadcast",
          encodeClusterBroadcast({ uid: "foreign", packet: event(["leak"], "/admin"), opts: none }),
        ],
        [
          "unsupported",
          req,
          "a socket.io adapter request",
          Buffer.from('{"uid":"sio-node","type":0,"requestId":"1","opts":{}}'),
        ],
        // Foreign socket.io packets with reserved event names: socket.io-client takes
        // one for a parse error and drops the connection.
        ["refused", ns, "broadcast of 'disconnect'", sent(["disconnect", "forged"])],
        [
          "refused",
          room,
          "room broadcast of 'connect'",
          encodeClusterBroadcast({
            uid: "emitter",
            packet: event(["connect"]),
            opts: { rooms: ["r"], except: [], flags: {} },
          }),
        ],
        [
          "refused",
          ctl,
          "acked broadcast of 'connect_error'",
          encodeControlMessage({
            type: "broadcast",
            uid: "foreign",
            rid: "r1",
            packet: event(["connect_error", { message: "forged" }]),
            opts: none,
          }),
        ],
        [
          "refused",
          ctl,
          "serverSideEmit of 'connection'",
          encodeControlMessage({ type: "emit", uid: "foreign", data: ["connection", 1] }),
        ],
        [
          "refused",
          req,
          "emitter serverSideEmit of 'disconnect'",
          Buffer.from('{"uid":"emitter","type":6,"data":["disconnect","x"]}'),
        ],
      ];
      const reaches = (channel: string, n: Node) => channel !== selfA || n === A;
      const stats = (n: Node) => ({ ...n.adapters["/"].stats });
      const before = nodes.map(stats);
      const dropsBefore = nodes.map((n) => n.drops.length);
      let lifecycle = 0;
      for (const n of nodes) {
        n.io.on("connection", () => {
          lifecycle++;
        });
      }
      // One at a time, so that a miscounted message is named.
      for (const [kind, channel, what, bytes] of cases) {
        const prev = nodes.map(stats);
        const drops = nodes.map((n) => n.drops.length);
        await raw.publish(channel, bytes);
        const want = nodes.map((n) => (reaches(channel, n) ? 1 : 0));
        await waitFor(
          () => nodes.every((n, i) => n.adapters["/"].stats.dropped - prev[i]!.dropped >= want[i]!),
          3000,
          `"${what}" dropped on ${nodes.filter((n) => reaches(channel, n)).map((n) => n.name)}`,
        );
        for (const [i, n] of nodes.entries()) {
          const now = stats(n);
          const moved = Object.fromEntries(KINDS.map((k) => [k, now[k] - prev[i]![k]]));
          const expected = Object.fromEntries(KINDS.map((k) => [k, k === kind ? want[i]! : 0]));
          assert.deepEqual(
            moved,
            expected,
            `"${what}" on ${n.name}: ${n.drops.slice(drops[i]).join("; ")}`,
          );
        }
      }
      // A valid broadcast after the junk, from an external publisher, still arrives.
      await raw.publish(
        room,
        encodeClusterBroadcast({
          uid: "emitter",
          packet: event(["valid", 1]),
          opts: { rooms: ["r"], except: [], flags: {} },
        }),
      );
      await waitFor(
        () => received(a1, "valid").length === 1 && received(b1, "valid").length === 1,
        5000,
        () =>
          `the valid broadcast after the junk (${[a1, b1]
            .map(
              (p) => `${p.node.name}: got ${JSON.stringify(p.got)}, disconnects ${p.disconnects}`,
            )
            .join("; ")})`,
      );
      for (const [i, n] of nodes.entries()) {
        const total = cases.filter(([, channel]) => reaches(channel, n)).length;
        const now = stats(n);
        assert.equal(now.dropped - before[i]!.dropped, total, `${n.name}: dropped`);
        assert.equal(
          KINDS.reduce((sum, k) => sum + now[k] - before[i]![k], 0),
          total,
          `${n.name}: malformed + unsupported + refused`,
        );
        assert.equal(n.drops.length - dropsBefore[i]!, total, `${n.name}: drop events`);
        assert.equal(now.handlerErrors, before[i]!.handlerErrors, `${n.name}: handlerErrors`);
      }

      // The nodes still serve, both ways, and count only each other.
      A.io.to("r").emit("after-a");
      B.io.emit("after-b");
      await waitFor(
        () =>
          [a1, b1].every(
            (p) => received(p, "after-a").length === 1 && received(p, "after-b").length === 1,
          ),
        5000,
        "broadcasts between the nodes after the junk",
      );
      assert.deepEqual(await counts(nodes), [2, 2], "no foreign uid counted as a node");
      const a2 = await connect(scope, A, ["r"]);
      assert.ok(a2.client.connected);
      assert.equal(
        lifecycle,
        1,
        "no lifecycle listener ran for a bus message (one real connection)",
      );
      for (const p of [a1, b1]) {
        assert.deepEqual(
          p.got.map((g) => g.ev).sort(),
          ["after-a", "after-b", "joined", "valid"],
          `${p.node.name}'s client got something bogus`,
        );
        assert.deepEqual(p.disconnects, []);
        assert.ok(p.client.connected);
      }
      assert.deepEqual(trap!.seen.slice(errorsBefore), [], "no crash");
    });
  });
}
