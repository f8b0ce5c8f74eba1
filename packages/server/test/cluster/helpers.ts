/**
 * Helpers of the in-process cluster tests: N `Server`s on 127.0.0.1:0, each with a
 * ClusterAdapter over its own LocalBus of one LocalHub, and real socket.io-client
 * clients spread over them.
 */

import {
  type ClusterAdapter,
  type ClusterAdapterOptions,
  createAdapter,
  type LocalBus,
  LocalHub,
  type ServerOptions,
  type Socket,
} from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import { pair, type Scope, startServer, type TestServer, waitFor } from "../socketio/helpers.js";

export interface ClusterNode extends TestServer {
  name: string;
  bus: LocalBus;
  /** The main namespace's adapter. */
  adapter: ClusterAdapter;
}

export interface Cluster {
  hub: LocalHub;
  nodes: ClusterNode[];
}

/**
 * Defaults of the tests that are not about membership timing: a second of silence
 * before a node counts as dead, so a starved test process (CI, a loaded machine) does
 * not see nodes die. Membership tests pick their own small intervals.
 */
export const FAST: ClusterAdapterOptions = { heartbeatInterval: 500, requestsTimeout: 3000 };

/** Starts `n` nodes and waits until each counts all of them. */
export async function startCluster(
  scope: Scope,
  n = 3,
  opts: ClusterAdapterOptions = FAST,
  serverOpts: ServerOptions = {},
  hub = new LocalHub(),
): Promise<Cluster> {
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < n; i++)
    nodes.push(await startNode(scope, hub, String.fromCharCode(65 + i), opts, serverOpts));
  await waitCounts(nodes, n);
  return { hub, nodes };
}

export async function startNode(
  scope: Scope,
  hub: LocalHub,
  name: string,
  opts: ClusterAdapterOptions = FAST,
  serverOpts: ServerOptions = {},
): Promise<ClusterNode> {
  const bus = scope.add(hub.bus(), (b) => b.close());
  const srv = await startServer(scope, { ...serverOpts, adapter: createAdapter(bus, opts) });
  const adapter = srv.io.sockets.adapter as ClusterAdapter;
  await adapter.settled();
  return { ...srv, name, bus, adapter };
}

export async function counts(nodes: readonly ClusterNode[]): Promise<number[]> {
  return Promise.all(nodes.map((n) => n.adapter.serverCount()));
}

export async function waitCounts(
  nodes: readonly ClusterNode[],
  n: number,
  timeoutMs = 3000,
): Promise<void> {
  let last: number[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    last = await counts(nodes);
    if (last.every((c) => c === n)) return;
    if (Date.now() > deadline)
      throw new Error(`serverCount ${last} after ${timeoutMs} ms, expected ${n}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A client connected to one node, the server-side socket, and every event it got. */
export interface Peer {
  node: ClusterNode;
  client: ClientSocket;
  socket: Socket;
  got: { ev: string; args: unknown[] }[];
}

const WS = { name: "websocket", opts: { transports: ["websocket" as const] }, upgrade: false };

/** Connects a websocket client to `node` and joins `rooms` (awaiting the subscriptions). */
export async function peer(scope: Scope, node: ClusterNode, rooms: string[] = []): Promise<Peer> {
  const { client, socket } = await pair(scope, node, WS);
  const got: Peer["got"] = [];
  client.onAny((ev: string, ...args: unknown[]) => {
    got.push({ ev, args });
  });
  await socket.join([socket.id, ...rooms]);
  return { node, client, socket, got };
}

/**
 * One peer per entry of `rooms`, round robin over the nodes. Sequential: `pair` takes
 * the namespace's next "connection", so concurrent connects could swap sockets.
 */
export async function spread(
  scope: Scope,
  nodes: readonly ClusterNode[],
  rooms: string[][],
): Promise<Peer[]> {
  const out: Peer[] = [];
  for (let i = 0; i < rooms.length; i++)
    out.push(await peer(scope, nodes[i % nodes.length]!, rooms[i]!));
  return out;
}

export function received(p: Peer, ev: string): unknown[][] {
  return p.got.filter((g) => g.ev === ev).map((g) => g.args);
}

/** Waits until every peer of `peers` got `ev` at least once. */
export function allGot(peers: readonly Peer[], ev: string, timeoutMs = 3000): Promise<void> {
  return waitFor(
    () => peers.every((p) => received(p, ev).length > 0),
    timeoutMs,
    `"${ev}" at every peer`,
  );
}
