/**
 * The checks every official socket.io adapter must pass on Switchyard: 3 Switchyard
 * processes (fixtures/official-adapter-node.ts) on one real broker, real socket.io-client
 * 4.8 clients on every node (WebSocket and polling-then-upgrade), driven over IPC.
 * Broadcasts to all / rooms / `except` exactly once and in order, binary and large
 * payloads, `fetchSockets` across nodes with working remote emit/join/leave/disconnect,
 * `socketsJoin`/`socketsLeave`/`disconnectSockets`, `serverSideEmit` with acks, and
 * broadcast acks with a timeout.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { NodeProcess, Scope, waitFor } from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import type { NodeCommand, OfficialAdapterNodeConfig } from "./fixtures/official-adapter-node.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/official-adapter-node.ts", import.meta.url));

/** What the checks need of a node: its name, its URL, and its commands. */
export interface SuiteNode {
  readonly name: string;
  readonly url: string;
  call<T>(cmd: NodeCommand["cmd"], args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
}

/** What {@link officialAdapterTests} run on: 3 nodes or more, 2 clients per node. */
export interface SuiteCluster {
  readonly nodes: readonly SuiteNode[];
  readonly clients: Client[];
  addClient(
    name: string,
    node: SuiteNode,
    transports?: ("websocket" | "polling")[],
    answersAcks?: boolean,
  ): Client;
  client(name: string): Client;
}

/** One forked Switchyard node on an official adapter. */
export class AdapterNode extends NodeProcess implements SuiteNode {
  /** Resolves once the node listens; rejects if it exits first or after 30 s. */
  readonly ready: Promise<void>;

  constructor(config: OfficialAdapterNodeConfig) {
    super({ name: config.name, fixture: FIXTURE, config, killTimeoutMs: 10_000 });
    this.ready = this.whenReady(30_000).then(() => undefined);
    this.ready.catch(() => undefined);
  }

  override call<T>(
    cmd: NodeCommand["cmd"],
    args: Record<string, unknown> = {},
    timeoutMs?: number,
  ): Promise<T> {
    return super.call<T>(cmd, args, timeoutMs);
  }
}

/** A real socket.io-client and everything it received. */
export class Client {
  readonly socket: ClientSocket;
  /** Payloads per event name, in arrival order. */
  readonly events = new Map<string, unknown[]>();
  disconnectReason: string | undefined;

  constructor(
    readonly name: string,
    readonly node: SuiteNode,
    transports: ("websocket" | "polling")[],
    answersAcks = true,
  ) {
    this.socket = connect(node.url, { transports, forceNew: true, reconnection: false });
    this.socket.onAny((event: string, ...args: unknown[]) => {
      const list = this.events.get(event) ?? [];
      list.push(args[0]);
      this.events.set(event, list);
    });
    if (answersAcks) {
      this.socket.on("ask", (_from: unknown, ack: (name: string) => void) => ack(this.name));
    }
    this.socket.on("disconnect", (reason) => {
      this.disconnectReason = reason;
    });
  }

  /** The server-side socket id (socket.io v4 clients learn it in the CONNECT reply). */
  get id(): string {
    const id = this.socket.id;
    assert.ok(id !== undefined, `${this.name} is not connected`);
    return id;
  }

  received(event: string): unknown[] {
    return this.events.get(event) ?? [];
  }

  /** The `i` of each `{ node, i }` payload of `event` sent by `node`. */
  sequence(event: string, node: string): number[] {
    return this.received(event)
      .filter((p) => (p as { node: string }).node === node)
      .map((p) => (p as { i: number }).i);
  }
}

/** What a test file supplies: its broker and the adapter's name in the fixture. */
export interface OfficialAdapterSuiteOptions {
  readonly adapter: OfficialAdapterNodeConfig["adapter"];
  /** Starts the broker (and whatever schema the adapter needs); returns its URL and a stop. */
  startBroker(scope: Scope): Promise<string>;
  /** Adapter options, e.g. shorter heartbeats. */
  readonly options?: Record<string, unknown>;
}

/** 1..n */
export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/**
 * Starts the broker, 3 nodes and 2 clients per node (one WebSocket, one polling that
 * upgrades), waits until every node counts 3 servers and broadcasts from every node reach
 * every client; `close()` stops everything (also when a test failed).
 */
export async function startCluster(options: OfficialAdapterSuiteOptions) {
  const scope = new Scope(8000);
  try {
    const url = await options.startBroker(scope);
    const nodes = ["A", "B", "C"].map((name) =>
      scope.add(
        new AdapterNode({
          name,
          adapter: options.adapter,
          url,
          ...(options.options === undefined ? {} : { options: options.options }),
          ...(process.env.SY_ADAPTER_REFERENCE === "socketio" ? { server: "socketio" } : {}),
        }),
        (n) => n.stop(),
      ),
    );
    await Promise.all(nodes.map((n) => n.ready));
    return await withClients(scope, nodes, [["websocket"], ["polling", "websocket"]], 3);
  } catch (error) {
    await scope.close();
    throw error;
  }
}

/**
 * Connects a client per entry of `transports` to every node (named A0, A1, …, closed by
 * `scope`), waits for their hellos, for every node counting `servers` servers (unless
 * false), and for broadcasts from every node reaching every client; returns the cluster
 * the checks run on, whose `close()` closes `scope`.
 */
export async function withClients<N extends SuiteNode>(
  scope: Scope,
  nodes: N[],
  transports: readonly (readonly ("websocket" | "polling")[])[],
  servers: number | false,
) {
  const clients: Client[] = [];
  const addClient = (
    name: string,
    node: N,
    transports: ("websocket" | "polling")[] = ["websocket"],
    answersAcks = true,
  ): Client => {
    const c = scope.add(new Client(name, node, transports, answersAcks), (x) => x.socket.close());
    clients.push(c);
    return c;
  };
  for (const node of nodes) {
    for (const [k, t] of transports.entries()) addClient(`${node.name}${k}`, node, [...t]);
  }
  await waitFor(
    () => clients.every((c) => c.received("hello").length === 1),
    15_000,
    () => `every client's hello (${clients.map((c) => c.received("hello").length)})`,
  );
  if (servers !== false) {
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.call<number>("serverCount")))).every(
          (x) => x === servers,
        ),
      20_000,
      `every node counting ${servers} servers`,
    );
  }
  await warmUp(nodes, clients);
  return {
    nodes,
    clients,
    addClient,
    client: (name: string): Client => {
      const c = clients.find((x) => x.name === name);
      assert.ok(c !== undefined, `no client ${name}`);
      return c;
    },
    close: () => scope.close(),
  };
}

/**
 * Subscriptions (and stream readers) start asynchronously: broadcasts from every node
 * until each one reached every client, before anything is measured.
 */
export async function warmUp(
  nodes: readonly SuiteNode[],
  clients: readonly Client[],
): Promise<void> {
  await waitFor(
    async () => {
      await Promise.all(nodes.map((n) => n.call("broadcast", { event: "warm", n: 1 })));
      await new Promise((r) => setTimeout(r, 100));
      return clients.every((c) => nodes.every((n) => c.sequence("warm", n.name).length > 0));
    },
    20_000,
    "broadcasts from every node reaching every client",
  );
}

/** The first three nodes (the checks use A, B and C). */
function abc(cluster: SuiteCluster): [SuiteNode, SuiteNode, SuiteNode] {
  const [a, b, c] = cluster.nodes;
  assert.ok(a !== undefined && b !== undefined && c !== undefined, "3 nodes or more");
  return [a, b, c];
}

/**
 * Sends a fence broadcast from `node` to everyone and waits until every client of
 * `clients` has it: whatever `node` broadcast before has then arrived (per-node order).
 */
export async function fence(node: SuiteNode, clients: readonly Client[]): Promise<void> {
  const before = clients.map((c) => c.sequence("fence", node.name).length);
  await node.call("broadcast", { event: "fence", n: 1 });
  await waitFor(
    () => clients.every((c, k) => c.sequence("fence", node.name).length > before[k]!),
    15_000,
    `fence from ${node.name}`,
  );
}

/** Registers the suite's tests (inside the caller's `describe`). */
export function officialAdapterTests(
  test: (name: string, fn: () => Promise<void>) => unknown,
  cluster: () => SuiteCluster,
): void {
  test("broadcasts from every node reach every client once, in order", async () => {
    const { nodes, clients } = cluster();
    const n = 100;
    await Promise.all(nodes.map((node) => node.call("broadcast", { event: "all", n })));
    await waitFor(
      () => clients.every((c) => nodes.every((node) => c.sequence("all", node.name).length >= n)),
      20_000,
      "every broadcast at every client",
    );
    for (const node of nodes) await fence(node, clients);
    for (const c of clients) {
      for (const node of nodes) {
        assert.deepEqual(c.sequence("all", node.name), range(n), `${c.name} from ${node.name}`);
      }
    }
  });

  test("rooms and except: only the members outside the excepted room receive", async () => {
    const c = cluster();
    const [a, b, nodeC] = abc(c);
    const red = ["A0", "A1", "B0", "C0"].map(c.client);
    const blue = [c.client("B0")];
    // Cluster-wide joins, each socket addressed by its own id room, issued from node A.
    await a.call("socketsJoin", { to: red.map((x) => x.id), room: "red" });
    await a.call("socketsJoin", { to: blue.map((x) => x.id), room: "blue" });
    await waitFor(
      async () => {
        const all = (await Promise.all(c.nodes.map((n) => n.call<LocalSocket[]>("local")))).flat();
        const has = (x: Client, room: string) =>
          all.find((s) => s.id === x.id)?.rooms.includes(room) === true;
        return red.every((x) => has(x, "red")) && blue.every((x) => has(x, "blue"));
      },
      10_000,
      "red and blue joined on every node",
    );
    await b.call("broadcast", { event: "room", n: 20, to: ["red"], except: ["blue"] });
    await b.call("broadcast", { event: "toBlue", n: 5, to: ["blue"] });
    await fence(b, c.clients);
    const expected = new Set(["A0", "A1", "C0"]);
    for (const x of c.clients) {
      assert.deepEqual(
        x.sequence("room", "B"),
        expected.has(x.name) ? range(20) : [],
        `${x.name} (room red except blue)`,
      );
      assert.deepEqual(x.sequence("toBlue", "B"), x.name === "B0" ? range(5) : [], x.name);
    }

    // socketsLeave from node C removes the room on every node.
    await nodeC.call("socketsLeave", { to: ["red"], room: "red" });
    await waitFor(
      async () => {
        const all = (await Promise.all(c.nodes.map((n) => n.call<LocalSocket[]>("local")))).flat();
        return all.every((s) => !s.rooms.includes("red"));
      },
      10_000,
      "red left on every node",
    );
    await a.call("broadcast", { event: "afterLeave", n: 3, to: ["red"] });
    await fence(a, c.clients);
    for (const x of c.clients) assert.deepEqual(x.received("afterLeave"), [], x.name);
  });

  test("binary and large payloads cross the broker intact", async () => {
    const { clients } = cluster();
    const [a] = abc(cluster());
    // 20 kB: over the postgres adapter's 8,000-byte NOTIFY threshold (attachments table).
    for (const size of [16, 20_000]) {
      const event = `bin${size}`;
      await a.call("broadcast", { event, n: 5, binary: size });
      await waitFor(
        () => clients.every((c) => c.received(event).length >= 5),
        20_000,
        `${event} at every client`,
      );
      await fence(a, clients);
      for (const c of clients) {
        const got = c.received(event) as { node: string; i: number; pad: Uint8Array }[];
        assert.deepEqual(
          got.map((p) => p.i),
          range(5),
          c.name,
        );
        for (const p of got) {
          assert.equal(p.pad.byteLength, size, `${c.name} ${event} #${p.i}`);
          assert.ok(
            new Uint8Array(p.pad).every((x) => x === p.i % 256),
            `${c.name} ${event} bytes`,
          );
        }
      }
    }
  });

  test("fetchSockets returns every node's sockets; remote emit, join, leave work", async () => {
    const c = cluster();
    const [a, b, nodeC] = abc(c);
    const target = c.client("C1");
    await nodeC.call("setData", { id: target.id, data: { user: "carol" } });
    const fetched = await a.call<{ id: string; rooms: string[]; data: unknown }[]>("fetchSockets");
    const ids = c.clients.map((x) => x.id);
    assert.deepEqual(
      fetched
        .map((s) => s.id)
        .filter((id) => ids.includes(id))
        .sort(),
      [...ids].sort(),
    );
    const remote = fetched.find((s) => s.id === target.id);
    assert.deepEqual(remote?.data, { user: "carol" }, "data of a socket on another node");
    assert.ok(remote?.rooms.includes(target.id), "rooms include the socket's own id room");

    await a.call("remote", { id: target.id, op: "emit", value: "psst" });
    await waitFor(() => target.received("direct").length === 1, 10_000, "remote emit");
    assert.deepEqual(target.received("direct"), [{ node: "A", value: "psst" }]);

    await a.call("remote", { id: target.id, op: "join", value: "green" });
    await waitFor(
      async () =>
        (await nodeC.call<LocalSocket[]>("local"))
          .find((s) => s.id === target.id)
          ?.rooms.includes("green") === true,
      10_000,
      "remote join on node C",
    );
    const inGreen = await b.call<{ id: string }[]>("fetchSockets", { to: ["green"] });
    assert.deepEqual(
      inGreen.map((s) => s.id),
      [target.id],
      "io.in(room).fetchSockets() from a third node",
    );
    await a.call("remote", { id: target.id, op: "leave", value: "green" });
    await waitFor(
      async () =>
        (await nodeC.call<LocalSocket[]>("local"))
          .find((s) => s.id === target.id)
          ?.rooms.includes("green") === false,
      10_000,
      "remote leave on node C",
    );
  });

  test("remote disconnect and disconnectSockets reach sockets on other nodes", async () => {
    const c = cluster();
    const [a, b, nodeC] = abc(c);
    const lone = c.addClient("C-lone", nodeC);
    const doomed = [c.addClient("B-doomed", b), c.addClient("C-doomed", nodeC, ["polling"])];
    await waitFor(
      () => [lone, ...doomed].every((x) => x.socket.connected),
      10_000,
      "extra clients connected",
    );
    await a.call("remote", { id: lone.id, op: "disconnect" });
    await waitFor(() => lone.disconnectReason !== undefined, 10_000, "remote disconnect");
    assert.equal(lone.disconnectReason, "io server disconnect");

    await a.call("socketsJoin", { to: doomed.map((x) => x.id), room: "doomed" });
    await waitFor(
      async () => (await a.call<{ id: string }[]>("fetchSockets", { to: ["doomed"] })).length === 2,
      10_000,
      "both doomed sockets in the room",
    );
    await a.call("disconnectSockets", { to: ["doomed"] });
    await waitFor(
      () => doomed.every((x) => x.disconnectReason !== undefined),
      10_000,
      "disconnectSockets across nodes",
    );
    for (const x of doomed) assert.equal(x.disconnectReason, "io server disconnect", x.name);
    // Nobody else was touched.
    for (const x of c.clients.filter((y) => ![lone, ...doomed].includes(y))) {
      assert.equal(x.socket.connected, true, `${x.name} still connected`);
    }
  });

  test("serverSideEmit with acks collects one answer from every other node", async () => {
    const { nodes } = cluster();
    for (const node of nodes) {
      const r = await node.call<AckResult>("serverSideEmit");
      assert.equal(r.error, null, `from ${node.name}`);
      assert.deepEqual(
        [...r.responses].sort(),
        nodes.map((n) => n.name).filter((x) => x !== node.name),
        `from ${node.name}`,
      );
    }
  });

  test("broadcast with ack and timeout counts clients of every node", async () => {
    const c = cluster();
    const [, b, nodeC] = abc(c);
    const everyone = c.clients.filter((x) => x.socket.connected).map((x) => x.name);
    const all = await b.call<AckResult>("broadcastWithAck", { event: "ask", timeoutMs: 5000 });
    assert.equal(all.error, null);
    assert.deepEqual([...all.responses].sort(), [...everyone].sort());

    // A client that never answers: the callback gets the timeout and the others' answers.
    const silent = c.addClient("C-silent", nodeC, ["websocket"], false);
    await waitFor(() => silent.socket.connected, 10_000, "silent client connected");
    const started = Date.now();
    const partial = await b.call<AckResult>("broadcastWithAck", {
      event: "ask",
      timeoutMs: 1000,
    });
    const took = Date.now() - started;
    assert.match(partial.error ?? "", /timed out|timeout/i);
    assert.deepEqual([...partial.responses].sort(), [...everyone].sort());
    assert.ok(took >= 900 && took < 8000, `callback after ${took} ms`);
    assert.equal(silent.received("ask").length, 1, "the silent client got the event");
  });
}

/**
 * The last test of a cluster of {@link startCluster} (it kills node C): the two others
 * drop it from their count, keep broadcasting to each other in order, and their requests
 * (fetchSockets, serverSideEmit) answer without it.
 */
export function nodeLossTest(
  test: (name: string, fn: () => Promise<void>) => unknown,
  cluster: () => Awaited<ReturnType<typeof startCluster>>,
): void {
  test("a SIGKILLed node drops out; the other two keep working together", async () => {
    const c = cluster();
    const [a, b, nodeC] = c.nodes as [AdapterNode, AdapterNode, AdapterNode];
    const survivors = c.clients.filter((x) => x.node !== nodeC && x.socket.connected);
    const lost = c.clients.filter((x) => x.node === nodeC && x.socket.connected);
    assert.ok(survivors.length >= 4 && lost.length >= 1, "clients on every node");
    await nodeC.kill();
    await waitFor(
      () => lost.every((x) => x.disconnectReason !== undefined),
      10_000,
      "node C's clients notice",
    );
    await waitFor(
      async () =>
        (await Promise.all([a, b].map((n) => n.call<number>("serverCount")))).every((x) => x === 2),
      20_000,
      "A and B counting 2 servers",
    );

    await a.call("broadcast", { event: "afterLoss", n: 30 });
    await b.call("broadcast", { event: "afterLoss", n: 30 });
    await fence(a, survivors);
    await fence(b, survivors);
    for (const x of survivors) {
      assert.deepEqual(x.sequence("afterLoss", "A"), range(30), `${x.name} from A`);
      assert.deepEqual(x.sequence("afterLoss", "B"), range(30), `${x.name} from B`);
    }
    const fetched = await b.call<{ id: string }[]>("fetchSockets");
    assert.deepEqual(
      fetched.map((s) => s.id).sort(),
      survivors.map((x) => x.id).sort(),
      "fetchSockets: the survivors' sockets, nothing of node C",
    );
    const sse = await a.call<AckResult>("serverSideEmit");
    assert.equal(sse.error, null);
    assert.deepEqual(sse.responses, ["B"]);
  });
}

interface LocalSocket {
  id: string;
  rooms: string[];
}

interface AckResult {
  error: string | null;
  responses: unknown[];
}
