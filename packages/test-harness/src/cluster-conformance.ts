/**
 * The cluster conformance suite: the same cluster semantics, checked for every broker.
 * A broker package (RedisBus, AmqpBus, …) calls {@link runClusterConformance} from one
 * of its test files; the suite starts the broker, forks three Switchyard server
 * processes (fixtures/cluster-node.ts) whose adapters talk over the bus under test,
 * spreads real `socket.io-client` clients over them, and asserts what a single node
 * would do: broadcasts (all / room / except / local / volatile / compress — the flags
 * checked where the receiving node hands the packet to its socket), fetchSockets
 * with remote emit / join / leave / disconnect / timeout().emitWithAck, socketsJoin /
 * socketsLeave / disconnectSockets (cluster-wide, and with `local` on one node only),
 * serverSideEmit with and without acks, broadcast
 * acks counting clients of every node, an Emitter in the test process, and membership:
 * a SIGKILLed node leaves the counts within two heartbeat intervals and requests stop
 * waiting for it; a node that closes cleanly leaves at once (bye).
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, afterEach, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Socket as ClientSocket, io as ioClient } from "socket.io-client";
import { type ForkedFixture, forkFixture, type NodeReply } from "./node-process.js";
import { waitFor } from "./wait.js";

/** A broker started for the suite. */
export interface ConformanceBroker {
  /** Passed to the bus factory as its first argument (e.g. `redis://127.0.0.1:6380`). */
  readonly url: string;
  stop(): Promise<void> | void;
}

/** Options of {@link runClusterConformance}. */
export interface ClusterConformanceOptions {
  /** Title of the `describe` block, e.g. "RedisBus". */
  name: string;
  /** Starts a fresh broker for the suite; stopped in the suite's `after` hook. */
  startBroker(): Promise<ConformanceBroker>;
  /**
   * Import specifier of the module exporting the bus factory, resolved from
   * packages/test-harness/fixtures (a workspace package name such as
   * "@switchyard/redis", or an absolute file URL).
   */
  busModule: string;
  /**
   * Name of the export that builds a bus: a function `(url, busOptions?) => Bus |
   * Promise<Bus>` or a class `new (url, busOptions?) => Bus`. It is also used in the
   * test process for the Emitter test.
   */
  busFactory: string;
  /** Second argument of the factory (must survive JSON). @default none */
  busOptions?: unknown;
  /** Heartbeat interval of the nodes, ms (timeout is twice this). @default 300 */
  heartbeatInterval?: number;
  /** requestsTimeout of the nodes, ms. @default 5000 */
  requestsTimeout?: number;
}

const FIXTURE = fileURLToPath(new URL("../fixtures/cluster-node.ts", import.meta.url));
const HOST = "127.0.0.1";

/** A message of a node: answers, `ready` (with its adapter's uid), and `event`s. */
type Reply = NodeReply & { uid?: string; name?: string; args?: unknown[] };

/** One forked server process of the cluster. */
class ClusterNode {
  readonly name: string;
  readonly child: ChildProcess;
  port = 0;
  uid = "";
  /** Server-side events (serverSideEmit) this node's listeners received. */
  readonly events: { name: string; args: unknown[] }[] = [];
  private nextId = 0;
  private closeSent = false;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private readonly exited: Promise<void>;
  private readonly forked: ForkedFixture;

  constructor(name: string, config: Record<string, unknown>) {
    this.name = name;
    this.forked = forkFixture(FIXTURE, { ...config, name }, { serialization: "advanced" });
    this.child = this.forked.child;
    this.exited = this.forked.exited.then(() => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited\n${this.output}`));
      this.pending.clear();
    });
    this.child.on("message", (m: Reply) => {
      if (m.type === "event") this.events.push({ name: m.name ?? "", args: m.args ?? [] });
      if (m.id === undefined) return;
      const p = this.pending.get(m.id);
      if (p === undefined) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
  }

  private get output(): string {
    return this.forked.output();
  }

  get url(): string {
    return `http://${HOST}:${this.port}`;
  }

  ready(timeoutMs: number): Promise<void> {
    return bounded(
      new Promise<void>((resolve, reject) => {
        const onMessage = (m: Reply) => {
          if (m.type !== "ready") return;
          this.port = m.port ?? 0;
          this.uid = m.uid ?? "";
          this.child.off("message", onMessage);
          resolve();
        };
        this.child.on("message", onMessage);
        this.child.once("exit", (code) =>
          reject(new Error(`${this.name} exited (${code})\n${this.output}`)),
        );
      }),
      timeoutMs,
      () => `${this.name} was not ready within ${timeoutMs} ms\n${this.output}`,
    );
  }

  /** Sends a fixture command and resolves with its result. */
  call<T = unknown>(
    cmd: string,
    args: Record<string, unknown> = {},
    timeoutMs = 10_000,
  ): Promise<T> {
    const id = this.nextId++;
    const p = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    try {
      this.child.send({ id, cmd, args });
    } catch (err) {
      this.pending.delete(id);
      return Promise.reject(err);
    }
    return bounded(
      p,
      timeoutMs,
      () => `${this.name}: "${cmd}" got no answer within ${timeoutMs} ms`,
    );
  }

  /** SIGKILL: no bye, no cleanup, as a crash. */
  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** Clean shutdown through the fixture's `close` (io.close() + bus.close()), SIGKILL as fallback. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      if (!this.closeSent) {
        this.closeSent = true;
        // The answer may lose the race with the exit that follows it.
        await this.call("close", {}, 5000).catch(() => {});
      }
      await bounded(this.exited, 5000, () => `${this.name} did not exit`);
    } catch {
      await this.kill();
    }
  }
}

function bounded<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(what())), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** A connected test client and what it received. */
interface Peer {
  client: ClientSocket;
  node: string;
  id: string;
  got: { ev: string; args: unknown[] }[];
}

function received(p: Peer, ev: string): unknown[][] {
  return p.got.filter((g) => g.ev === ev).map((g) => g.args);
}

/**
 * Registers the conformance suite (node:test `describe`/`it`) for one broker. Call it
 * at the top level of a test file:
 *
 * ```ts
 * // test/cluster.test.ts
 * import { pathToFileURL } from "node:url";
 * import { runClusterConformance, startRedis } from "@switchyard/test-harness";
 * runClusterConformance({
 *   name: "RedisBus",
 *   startBroker: async () => {
 *     const redis = await startRedis();
 *     return { url: redis.url, stop: () => redis.stop() };
 *   },
 *   busModule: pathToFileURL(new URL("./fixtures/conformance-bus.ts", import.meta.url).pathname).href,
 *   busFactory: "createBus",
 * });
 *
 * // test/fixtures/conformance-bus.ts: resolves with a connected bus
 * export async function createBus(url: string) {
 *   const bus = new RedisBus({ url });
 *   await bus.ready();
 *   return bus;
 * }
 * ```
 *
 * Each test's diagnostics report the measured membership times (how long a SIGKILLed
 * node stayed counted, how soon a closing node left).
 *
 * Takes ~10-20 s (three node processes plus two short-lived ones for the membership
 * tests). Each test's clients (and extra nodes) are closed in `afterEach`, which waits
 * until the cluster holds none of them, so a failing test does not leave clients behind
 * for the next one to count; the three nodes and the broker are closed in `after`, and
 * everything is killed at exit of the test process whatever happens.
 */
export function runClusterConformance(opts: ClusterConformanceOptions): void {
  // 1 s (dead after 2 s): short enough to test membership, long enough that a loaded
  // CI machine never starves a live node's heartbeats into a false "dead".
  const interval = opts.heartbeatInterval ?? 1000;
  const requestsTimeout = opts.requestsTimeout ?? 5000;

  describe(`cluster conformance: ${opts.name}`, () => {
    let broker: ConformanceBroker | undefined;
    const nodes: ClusterNode[] = [];
    const extra: ClusterNode[] = [];
    const clients: ClientSocket[] = [];
    let A!: ClusterNode;
    let B!: ClusterNode;
    let C!: ClusterNode;
    let tag = 0;

    function config(): Record<string, unknown> {
      return {
        url: broker?.url,
        busModule: opts.busModule,
        busFactory: opts.busFactory,
        busOptions: opts.busOptions,
        heartbeatInterval: interval,
        requestsTimeout,
      };
    }

    async function startNode(name: string): Promise<ClusterNode> {
      const node = new ClusterNode(name, config());
      await node.ready(30_000);
      return node;
    }

    async function counts(list: readonly ClusterNode[]): Promise<number[]> {
      return Promise.all(list.map((n) => n.call<number>("serverCount")));
    }

    async function waitCounts(list: readonly ClusterNode[], n: number, ms: number): Promise<void> {
      await waitFor(
        async () => (await counts(list)).every((c) => c === n),
        ms,
        `serverCount ${n} on ${list.map((x) => x.name)}`,
      );
    }

    /** Connects one client to `node` in `rooms`; resolves after the node confirmed the joins. */
    async function connect(node: ClusterNode, rooms: string[] = []): Promise<Peer> {
      const client = ioClient(node.url, {
        forceNew: true,
        reconnection: false,
        transports: ["websocket"],
        auth: { rooms, tag: `t${tag++}` },
      });
      clients.push(client);
      const got: Peer["got"] = [];
      client.onAny((ev: string, ...args: unknown[]) => {
        got.push({ ev, args });
      });
      client.on("q", (x: unknown, cb: (r: unknown) => void) => cb({ id: client.id, x }));
      const joined = await bounded(
        new Promise<{ id: string }>((resolve, reject) => {
          client.once("joined", resolve);
          client.once("connect_error", reject);
        }),
        5000,
        () => `client of ${node.name} did not join`,
      );
      return { client, node: node.name, id: joined.id, got };
    }

    /** One client per node, in the given rooms. */
    async function spread(roomsPerClient: string[][]): Promise<Peer[]> {
      const all = [A, B, C];
      return Promise.all(roomsPerClient.map((rooms, i) => connect(all[i % 3]!, rooms)));
    }

    function closeClients(): void {
      for (const c of clients.splice(0)) c.disconnect();
    }

    before(async () => {
      broker = await opts.startBroker();
      [A, B, C] = await Promise.all([startNode("A"), startNode("B"), startNode("C")]);
      nodes.push(A, B, C);
      await waitCounts(nodes, 3, 4 * interval + 5000);
    });

    afterEach(async () => {
      closeClients();
      const stopping = extra.splice(0);
      await Promise.allSettled(stopping.map((n) => n.stop()));
      // The next test starts from a cluster of A, B, C without sockets, also when this
      // one failed half-way.
      const live = nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
      if (live.length < nodes.length) return; // the suite is broken anyway; `after` cleans up
      if (stopping.length > 0) await waitCounts(nodes, 3, 10 * interval);
      await waitFor(
        async () => (await A.call<unknown[]>("fetchSockets", {})).length === 0,
        5000,
        "the previous test's sockets to leave every node",
      );
    });

    after(async () => {
      closeClients();
      await Promise.allSettled([...nodes, ...extra].map((n) => n.stop()));
      await broker?.stop();
    });

    it("every node counts three servers", async () => {
      assert.deepEqual(await counts(nodes), [3, 3, 3]);
    });

    it("broadcast to all reaches the clients of every node, binary included", async () => {
      const peers = await spread([[], [], [], [], [], []]);
      await A.call("emit", { ev: "all", args: [1, { b: Buffer.from([1, 2, 3]) }] });
      await waitFor(
        () => peers.every((p) => received(p, "all").length === 1),
        5000,
        "every client",
      );
      for (const p of peers) {
        const [n, obj] = received(p, "all")[0]!;
        assert.equal(n, 1);
        assert.deepEqual(
          Buffer.from((obj as { b: ArrayBuffer | Buffer }).b as ArrayBuffer),
          Buffer.from([1, 2, 3]),
        );
      }
    });

    it("rooms, several rooms and except select the same clients as on one node", async () => {
      const [a, b, c, d, e, f] = await spread([["r1"], ["r1", "r2"], ["r2"], ["r3"], ["r1"], []]);
      const all = [a!, b!, c!, d!, e!, f!];
      await B.call("emit", { ev: "one", rooms: ["r1"], args: ["r1"] });
      await C.call("emit", { ev: "two", rooms: ["r1", "r2"], args: ["r1|r2"] });
      await A.call("emit", { ev: "exc", rooms: ["r1"], except: ["r2"], args: ["r1-r2"] });
      await A.call("emit", { ev: "allbut", except: ["r1"], args: ["all-r1"] });
      await B.call("emit", { ev: "sock", rooms: [d!.id], args: ["to d"] });
      await C.call("emit", { ev: "done", args: [] });
      await waitFor(
        () => all.every((p) => received(p, "done").length === 1),
        5000,
        "the final broadcast",
      );
      const who = (ev: string) =>
        all.filter((p) => received(p, ev).length > 0).map((p) => all.indexOf(p));
      assert.deepEqual(who("one"), [0, 1, 4]);
      assert.deepEqual(who("two"), [0, 1, 2, 4]);
      for (const p of all)
        assert.ok(received(p, "two").length <= 1, "a client in two rooms gets it once");
      assert.deepEqual(who("exc"), [0, 4]);
      assert.deepEqual(who("allbut"), [2, 3, 5]);
      assert.deepEqual(who("sock"), [3]);
    });

    it("local stays on its node; volatile and compress cross the bus to the receiving node's sockets", async () => {
      const peers = await spread([[], [], [], [], [], []]);
      await A.call("emit", { ev: "local", flags: { local: true }, args: [] });
      await A.call("emit", { ev: "vol", flags: { volatile: true }, args: [] });
      await A.call("emit", { ev: "nocomp", flags: { compress: false }, args: [] });
      await A.call("emit", {
        ev: "volnocomp",
        flags: { volatile: true, compress: false },
        args: [],
      });
      await A.call("emit", { ev: "done", args: [] });
      await waitFor(
        () => peers.every((p) => received(p, "done").length === 1),
        5000,
        "the final broadcast",
      );
      const byNode = { A, B, C } as Record<string, ClusterNode>;
      for (const p of peers) {
        assert.equal(received(p, "local").length, p.node === "A" ? 1 : 0, `local on ${p.node}`);
        assert.equal(received(p, "nocomp").length, 1);
        // What each node was asked to deliver to its socket: the flags as emitted on A,
        // whether the broadcast came from this node or over the bus.
        const log = await byNode[p.node]!.call<
          { ev: string; volatile: boolean; compress: boolean }[] | null
        >("deliveries", { socketId: p.id });
        assert.ok(log !== null, `${p.node} holds no socket ${p.id}`);
        assert.deepEqual(
          log.filter((d) => d.ev !== "joined"),
          [
            ...(p.node === "A" ? [{ ev: "local", volatile: false, compress: true }] : []),
            { ev: "vol", volatile: true, compress: true },
            { ev: "nocomp", volatile: false, compress: false },
            { ev: "volnocomp", volatile: true, compress: false },
            { ev: "done", volatile: false, compress: true },
          ],
          `flags delivered on ${p.node}`,
        );
      }
    });

    it("local socketsJoin / socketsLeave / disconnectSockets act on their own node only", async () => {
      // One client per node in "src"; D is on A and in no room.
      const [a, b, c, d] = await spread([["src"], ["src"], ["src"], []]);
      const members = async (room: string): Promise<string[]> =>
        (await C.call<{ id: string }[]>("fetchSockets", { rooms: [room] })).map((s) => s.id).sort();
      /**
       * A cluster-wide join issued by `node` after a local operation: once every node
       * applied it, the local operation would have been applied too had it been
       * published (one node's messages reach each other node in order).
       */
      const barrier = async (node: ClusterNode, room: string, n = 3): Promise<void> => {
        await node.call("socketsJoin", { rooms: ["src"], room });
        await waitFor(
          async () => (await members(room)).length === n,
          5000,
          `the cluster-wide join of ${room}`,
        );
        await Promise.all(nodes.map((n) => n.call("settled")));
      };

      await A.call("socketsJoin", { rooms: ["src"], room: "only-a", flags: { local: true } });
      await barrier(A, "barrier-1");
      assert.deepEqual(await members("only-a"), [a!.id], "local socketsJoin on A");

      await A.call("socketsJoin", { rooms: ["src"], room: "everyone" });
      await waitFor(async () => (await members("everyone")).length === 3, 5000, "everyone");
      await B.call("socketsLeave", { rooms: ["src"], room: "everyone", flags: { local: true } });
      await barrier(B, "barrier-2");
      assert.deepEqual(await members("everyone"), [a!.id, c!.id].sort(), "local socketsLeave on B");

      const gone = new Promise<string>((r) => c!.client.once("disconnect", r));
      await C.call("disconnectSockets", { rooms: ["src"], flags: { local: true } });
      assert.equal(await bounded(gone, 5000, () => "no disconnect"), "io server disconnect");
      await barrier(C, "barrier-3", 2); // C's client is gone
      assert.equal(a!.client.connected, true, "A's client survives C's local disconnect");
      assert.equal(b!.client.connected, true, "B's client survives C's local disconnect");
      assert.equal(d!.client.connected, true);
    });

    it("fetchSockets returns the sockets of every node with id, rooms, data, handshake", async () => {
      const peers = await spread([["x"], ["x"], ["x"], []]);
      const got = await A.call<
        {
          id: string;
          rooms: string[];
          data: { node: string };
          auth: { rooms: string[] };
          remote: boolean;
        }[]
      >("fetchSockets", { rooms: ["x"] });
      assert.deepEqual(
        got.map((s) => s.id).sort(),
        peers
          .slice(0, 3)
          .map((p) => p.id)
          .sort(),
      );
      for (const s of got) {
        const p = peers.find((x) => x.id === s.id)!;
        assert.equal(s.data.node, p.node);
        assert.equal(s.remote, p.node !== "A");
        assert.deepEqual(s.rooms, [s.id, "x"].sort());
        assert.deepEqual(s.auth.rooms, ["x"]);
      }
      const everyone = await B.call<unknown[]>("fetchSockets", {});
      assert.equal(everyone.length, 4);
    });

    it("remote sockets: emit, timeout().emitWithAck, join, leave, disconnect", async () => {
      const [, b] = await spread([[], []]); // b is on node B
      await A.call("remoteEmit", { socketId: b!.id, ev: "hi", args: ["from A"] });
      await waitFor(() => received(b!, "hi").length === 1, 5000, "the remote emit");
      assert.deepEqual(received(b!, "hi")[0], ["from A"]);
      const acked = await C.call<{ ok?: { id: string; x: unknown } }>("remoteEmitWithAck", {
        socketId: b!.id,
        ev: "q",
        args: [42],
        timeout: 3000,
      });
      assert.deepEqual(acked.ok, { id: b!.id, x: 42 });
      await A.call("remoteJoin", { socketId: b!.id, room: "joined-remotely" });
      await waitFor(
        async () =>
          ((await B.call<string[] | null>("localRooms", { socketId: b!.id })) ?? []).includes(
            "joined-remotely",
          ),
        5000,
        "the remote join",
      );
      await C.call("emit", { ev: "room-msg", rooms: ["joined-remotely"], args: [] });
      await waitFor(
        () => received(b!, "room-msg").length === 1,
        5000,
        "a broadcast to the joined room",
      );
      await A.call("remoteLeave", { socketId: b!.id, room: "joined-remotely" });
      await waitFor(
        async () =>
          !((await B.call<string[] | null>("localRooms", { socketId: b!.id })) ?? []).includes(
            "joined-remotely",
          ),
        5000,
        "the remote leave",
      );
      const disconnected = new Promise<string>((resolve) => b!.client.once("disconnect", resolve));
      await C.call("remoteDisconnect", { socketId: b!.id });
      assert.equal(
        await bounded(disconnected, 5000, () => "no disconnect"),
        "io server disconnect",
      );
    });

    it("socketsJoin, socketsLeave and disconnectSockets act on every node", async () => {
      const peers = await spread([["src"], ["src"], ["src"], []]);
      await A.call("socketsJoin", { rooms: ["src"], room: "dst" });
      await waitFor(
        async () => (await B.call<unknown[]>("fetchSockets", { rooms: ["dst"] })).length === 3,
        5000,
        "three sockets in dst",
      );
      await Promise.all(nodes.map((n) => n.call("settled")));
      await C.call("emit", { ev: "dst", rooms: ["dst"], args: [] });
      await waitFor(
        () => peers.slice(0, 3).every((p) => received(p, "dst").length === 1),
        5000,
        "dst members",
      );
      await B.call("socketsLeave", { rooms: ["src"], room: "dst" });
      await waitFor(
        async () => (await C.call<unknown[]>("fetchSockets", { rooms: ["dst"] })).length === 0,
        5000,
        "dst to empty",
      );
      const gone = peers
        .slice(0, 3)
        .map((p) => new Promise<string>((r) => p.client.once("disconnect", r)));
      await C.call("disconnectSockets", { rooms: ["src"] });
      for (const g of gone)
        assert.equal(await bounded(g, 5000, () => "no disconnect"), "io server disconnect");
      assert.equal(peers[3]!.client.connected, true);
    });

    it("serverSideEmit reaches the other nodes only; with ack it gathers one response per node", async () => {
      const before = nodes.map((n) => n.events.length);
      await A.call("serverSideEmit", { ev: "sse", args: [1, "two"] });
      await waitFor(
        () => B.events.length > before[1]! && C.events.length > before[2]!,
        5000,
        "B and C",
      );
      assert.deepEqual(B.events.at(-1), { name: "sse", args: [1, "two"] });
      assert.equal(A.events.length, before[0]);
      const res = await B.call<{ ok?: { node: string; args: unknown[] }[] }>(
        "serverSideEmitWithAck",
        { ev: "sse-ack", args: ["p"] },
      );
      assert.deepEqual(res.ok?.map((r) => r.node).sort(), ["A", "C"]);
      assert.deepEqual(res.ok?.[0]?.args, ["p"]);
    });

    it("broadcast acks count the clients of every node", async () => {
      const peers = await spread([[], [], [], [], [], []]);
      const res = await B.call<{ ok?: { id: string; x: unknown }[]; error?: string }>(
        "emitWithAck",
        {
          ev: "q",
          args: ["all"],
          timeout: 3000,
        },
      );
      assert.equal(res.error, undefined);
      assert.deepEqual(res.ok?.map((r) => r.id).sort(), peers.map((p) => p.id).sort());
      // A client that never acks: the ack ends in a timeout error with the others' responses.
      peers[4]!.client.off("q");
      const partial = await B.call<{ error: string | null; responses: unknown[] }>(
        "emitWithAckPartial",
        {
          ev: "q",
          args: ["partial"],
          timeout: 800,
        },
      );
      assert.match(String(partial.error), /timed out/);
      assert.equal(partial.responses.length, 5);
    });

    it("an Emitter in another process reaches clients through the bus", async () => {
      const { Emitter } = (await import(
        "@switchyard/server"
      )) as typeof import("@switchyard/server");
      const mod = (await import(opts.busModule)) as Record<string, unknown>;
      const factory = mod[opts.busFactory] as (...a: unknown[]) => unknown;
      const args = opts.busOptions === undefined ? [broker!.url] : [broker!.url, opts.busOptions];
      const isClass = /^class[\s{]/.test(Function.prototype.toString.call(factory));
      const bus = (await (isClass
        ? Reflect.construct(factory, args)
        : factory(...args))) as import("@switchyard/server").Bus;
      try {
        const peers = await spread([["e"], [], ["e"]]);
        const emitter = new Emitter(bus);
        emitter.to("e").emit("from-emitter", "hello");
        emitter.except("e").emit("not-e", 1);
        await waitFor(
          () =>
            received(peers[0]!, "from-emitter").length === 1 &&
            received(peers[2]!, "from-emitter").length === 1 &&
            received(peers[1]!, "not-e").length === 1,
          5000,
          "emitter broadcasts",
        );
        assert.equal(received(peers[1]!, "from-emitter").length, 0);
        emitter.socketsJoin("e2");
        await waitFor(
          async () => (await A.call<unknown[]>("fetchSockets", { rooms: ["e2"] })).length === 3,
          5000,
          "emitter socketsJoin",
        );
        const before = C.events.length;
        emitter.serverSideEmit("sse", "emitted");
        await waitFor(() => C.events.length > before, 5000, "emitter serverSideEmit");
        assert.deepEqual(C.events.at(-1), { name: "sse", args: ["emitted"] });
      } finally {
        await bus.close();
      }
    });

    it("a SIGKILLed node drops out of the counts within two heartbeat intervals; requests stop waiting for it", async (t) => {
      const D = await startNode("D");
      extra.push(D);
      await waitCounts([...nodes, D], 4, 4 * interval + 5000);
      await D.kill();
      const killedAt = Date.now();
      // A request issued while D still counts as alive must complete when D is found
      // dead, not at requestsTimeout.
      const pending = A.call<{ ok?: unknown[]; ms: number }>("serverSideEmitWithAck", {
        ev: "sse-ack",
        args: [],
      });
      await waitCounts(nodes, 3, 10 * interval);
      const dropMs = Date.now() - killedAt;
      const res = await pending;
      t.diagnostic(`dropped out after ${dropMs} ms; a request pending meanwhile took ${res.ms} ms`);
      assert.ok(
        dropMs <= 2 * interval + Math.max(150, interval / 2),
        `dropped after ${dropMs} ms (heartbeat interval ${interval} ms)`,
      );
      assert.deepEqual(res.ok?.length, 2);
      assert.ok(res.ms < requestsTimeout, `the request took ${res.ms} ms`);
      const after = await A.call<{ ok?: unknown[]; ms: number }>("serverSideEmitWithAck", {
        ev: "sse-ack",
        args: [],
      });
      assert.equal(after.ok?.length, 2);
      assert.ok(after.ms < requestsTimeout / 2);
    });

    it("a node that closes cleanly says bye and leaves the counts at once", async (t) => {
      const E = await startNode("E");
      extra.push(E);
      await waitCounts([...nodes, E], 4, 4 * interval + 5000);
      const started = Date.now();
      const closing = E.stop();
      await waitCounts(nodes, 3, 2 * interval);
      const leftMs = Date.now() - started;
      t.diagnostic(`left the counts ${leftMs} ms after close()`);
      // Found dead by timeout it could not leave before a heartbeat interval had passed.
      assert.ok(leftMs < interval, `left after ${leftMs} ms: no bye?`);
      await closing;
    });
  });
}
