/**
 * Clusters for the socket.io adapter tests: nodes that are Switchyard or real socket.io
 * 4.8 processes (fixtures/socketio-node.ts) on `@socket.io/redis-adapter` (classic,
 * sharded) or Switchyard's own adapter over Redis, or Switchyard workers of one
 * `node:cluster` primary on `@socket.io/cluster-adapter`
 * (fixtures/node-cluster-primary.ts). Each node answers the commands of
 * official-adapter-suite.ts, so its checks (and its `Client`) run on these clusters too.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  forkFixture,
  type NodeReply,
  registerExitCleanup,
  Scope,
  stopByDisconnect,
  waitFor,
  within,
} from "@switchyard/test-harness";
import type { NodeCommand } from "./fixtures/official-adapter-node.js";
import type { ExtraCommand, SocketIoNodeConfig } from "./fixtures/socketio-node.js";
import {
  Client,
  fence,
  range,
  type SuiteNode,
  warmUp,
  withClients,
} from "./official-adapter-suite.js";

export { Client, fence, range, warmUp };

const NODE_FIXTURE = fileURLToPath(new URL("./fixtures/socketio-node.ts", import.meta.url));
const PRIMARY_FIXTURE = fileURLToPath(
  new URL("./fixtures/node-cluster-primary.ts", import.meta.url),
);

/** A message of a node; `ready` also carries its pid. */
type Reply = NodeReply & { pid?: number };

/** One node of a test cluster, whatever carries its messages. */
export class SioNode implements SuiteNode {
  readonly name: string;
  readonly kind: string;
  port = 0;
  pid = 0;
  private nextId = 0;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private readonly send: (msg: object) => void;
  private readonly output: () => string;
  private markReady!: () => void;
  private markExited!: () => void;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  constructor(
    name: string,
    kind: string,
    send: (msg: object) => void,
    output: () => string,
    readonly stopFn: () => Promise<void>,
  ) {
    this.name = name;
    this.kind = kind;
    this.send = send;
    this.output = output;
    this.exited = new Promise((resolve) => {
      this.markExited = resolve;
    });
    const started = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      void this.exited.then(() => reject(new Error(`${name} exited\n${this.output()}`)));
    });
    this.ready = within(started, 30_000, `node ${name} start`);
    this.ready.catch(() => undefined);
  }

  /** A message from the node's process. */
  receive(m: Reply): void {
    if (m.type === "ready") {
      this.port = m.port ?? 0;
      this.pid = m.pid ?? 0;
      this.markReady();
      return;
    }
    if (m.type === "exit") {
      this.onExit();
      return;
    }
    if (m.id === undefined) return;
    this.pending.get(m.id)?.(m);
    this.pending.delete(m.id);
  }

  onExit(): void {
    for (const p of this.pending.values()) p({ ok: false, error: `${this.name} exited` });
    this.pending.clear();
    this.markExited();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async call<T>(
    cmd: NodeCommand["cmd"] | ExtraCommand["cmd"],
    args: Record<string, unknown> = {},
    timeoutMs = 20_000,
  ): Promise<T> {
    const id = ++this.nextId;
    const reply = await within(
      new Promise<Reply>((resolve) => {
        this.pending.set(id, resolve);
        this.send({ id, cmd, args });
      }),
      timeoutMs,
      `${this.name} ${cmd}`,
    );
    if (!reply.ok) throw new Error(`${this.name} ${cmd}: ${reply.error}\n${this.output()}`);
    return reply.result as T;
  }

  /** SIGKILL, and waits until the process is gone. */
  async kill(): Promise<void> {
    assert.ok(this.pid > 0, `${this.name} has no pid`);
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // already gone
    }
    await within(this.exited, 10_000, `${this.name} exit after SIGKILL`);
  }

  stop(): Promise<void> {
    return this.stopFn();
  }
}

/** Forks one node process (fixtures/socketio-node.ts). */
export function forkNode(config: SocketIoNodeConfig): SioNode {
  const { child, output, exited } = forkFixture(NODE_FIXTURE, config);
  const node: SioNode = new SioNode(
    config.name,
    `${config.server}/${config.adapter}`,
    (msg) => child.send(msg),
    output,
    (): Promise<void> => stopByDisconnect(child, node.exited),
  );
  child.on("message", (m: Reply) => node.receive(m));
  void exited.then(() => node.onExit());
  return node;
}

/**
 * Forks a `node:cluster` primary with `workers` Switchyard workers on
 * `@socket.io/cluster-adapter`; `stop()` stops the primary, whose workers then exit.
 */
export function forkNodeCluster(workers: number): { nodes: SioNode[]; stop(): Promise<void> } {
  const { child, output, exited } = forkFixture(PRIMARY_FIXTURE, { workers });
  const nodes: SioNode[] = [];
  // The primary is SIGKILLed by forkFixture's cleanup; its workers by this one.
  const unregister = registerExitCleanup(() => {
    for (const n of nodes) if (n.pid > 0) tryKill(n.pid);
  });
  for (let i = 0; i < workers; i++) {
    nodes.push(
      new SioNode(
        String.fromCharCode(65 + i),
        "switchyard/node-cluster",
        (msg) => child.send({ worker: i, msg }),
        output,
        async () => {},
      ),
    );
  }
  child.on("message", (m: { worker: number; msg: Reply }) => nodes[m.worker]?.receive(m.msg));
  void exited.then(() => {
    unregister();
    for (const n of nodes) n.onExit();
  });
  return {
    nodes,
    async stop() {
      await stopByDisconnect(child, exited);
      // Workers notice their primary's channel closing; make sure none outlives the test.
      for (const n of nodes) if (n.pid > 0) await waitForGone(n.pid);
    },
  };
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitForGone(pid: number): Promise<void> {
  try {
    await waitFor(() => !alive(pid), 6000, `pid ${pid} gone`);
  } catch {
    tryKill(pid);
  }
}

export type TestCluster = Awaited<ReturnType<typeof startSioCluster>>;

/** What a test cluster is made of. */
export interface SioClusterOptions {
  /** One entry per node (named A, B, C, …), or `nodeCluster` workers. */
  readonly nodes?: readonly Omit<SocketIoNodeConfig, "name" | "url">[];
  /** Switchyard workers of one node:cluster primary on @socket.io/cluster-adapter. */
  readonly nodeCluster?: number;
  /** Starts the broker; returns its URL (not needed for nodeCluster). */
  startBroker?(scope: Scope): Promise<string>;
  /** Transports of each node's two clients. @default WebSocket, and polling-then-upgrade */
  readonly transports?: readonly ("websocket" | "polling")[][];
  /** Servers every node must count. @default the number of nodes */
  readonly serverCount?: number | false;
}

/**
 * Starts the broker and the nodes, two clients per node, waits until every node counts
 * the servers and a broadcast from every node reached every client; `close()` stops
 * everything, also when a test failed. The result has the shape official-adapter-suite.ts's
 * tests expect.
 */
export async function startSioCluster(options: SioClusterOptions) {
  const scope = new Scope(8000);
  try {
    let nodes: SioNode[];
    if (options.nodeCluster !== undefined) {
      const c = scope.add(forkNodeCluster(options.nodeCluster), (x) => x.stop());
      nodes = c.nodes;
    } else {
      const url = options.startBroker === undefined ? "" : await options.startBroker(scope);
      nodes = (options.nodes ?? []).map((cfg, i) =>
        scope.add(forkNode({ ...cfg, name: String.fromCharCode(65 + i), url }), (n) => n.stop()),
      );
    }
    await Promise.all(nodes.map((n) => n.ready));
    const transports = options.transports ?? [["websocket"], ["polling", "websocket"]];
    return await withClients(scope, nodes, transports, options.serverCount ?? nodes.length);
  } catch (error) {
    await scope.close();
    throw error;
  }
}
