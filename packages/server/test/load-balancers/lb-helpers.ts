/**
 * Helpers of the load-balancer tests: Switchyard node processes (fixtures/lb-node.ts)
 * over a real broker, the shipped `deploy/` configs run by real haproxy/nginx in front
 * of them, and many real `socket.io-client` clients, each from its own 127.x.y.z source
 * address ("many users") or all from one ("one NAT"), checked for what a load balancer
 * must not break: every client connects, acks come from the client's own session,
 * broadcasts arrive exactly once and in order, and sessions spread evenly.
 */
import assert from "node:assert/strict";
import { Agent } from "node:http";
import { fileURLToPath } from "node:url";
import {
  NodeProcess,
  type Scope,
  startNamedNodes,
  waitFor,
  waitForPeers,
  within,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import type { LbNodeConfig } from "./fixtures/lb-node.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/lb-node.ts", import.meta.url));

/** A shipped config of `deploy/`. */
export function deployFile(name: string): string {
  return fileURLToPath(new URL(`../../../../deploy/${name}`, import.meta.url));
}

/** One forked Switchyard node. */
export class LbNode extends NodeProcess {
  constructor(config: LbNodeConfig) {
    super({ name: config.name, fixture: FIXTURE, config });
  }
}

/** A cluster secret for the tests' forwarding (≥ 16 bytes). */
export const SECRET = "load-balancer-tests-cluster-secret";

/**
 * Starts `n` nodes (A, B, C, …) over one broker, each stopped by `scope`; with a
 * `secret`, waits until their forwarding directories are complete.
 */
export async function startNodes(
  scope: Scope,
  n: number,
  config: Omit<LbNodeConfig, "name">,
): Promise<LbNode[]> {
  const nodes = await startNamedNodes(scope, n, (name) => new LbNode({ ...config, name }));
  // Forwarding: every node has heard every other one before a client arrives.
  if (config.secret !== undefined) await waitForPeers(nodes);
  return nodes;
}

/** How a group of clients connects. */
export type Transport = "polling" | "upgrade" | "websocket";

/** A group of clients of one transport. */
export interface ClientGroup {
  transport: Transport;
  count: number;
  /**
   * Source addresses: "distinct" gives each client its own 127.x.y.z ("many users"),
   * a string binds them all to that one address ("one NAT").
   */
  source: "distinct" | string;
}

/** One client and what it saw. */
export interface LbClient {
  readonly group: ClientGroup;
  readonly address: string;
  readonly socket: ClientSocket;
  /** The `hello` of the session: which node created it, and its socket id. */
  hello: { node: string; id: string; from?: string } | undefined;
  readonly ticks: number[];
  readonly errors: string[];
  disconnects: number;
  connects: number;
  upgraded: boolean;
}

/** 127.<a>.<b>.<c> for the i-th distinct client (never 127.0.0.1, never .0 or .255). */
export function distinctAddress(i: number): string {
  const n = i + 1;
  return `127.${20 + Math.floor(n / 64516)}.${1 + (Math.floor(n / 254) % 254)}.${1 + (n % 254)}`;
}

export interface ConnectOptions {
  /** Reconnect after a failure (the crash test); otherwise a failure stays visible. @default false */
  reconnection?: boolean;
  /** Keep cookies (haproxy cookie insert, nginx hash $cookie_io). @default false */
  withCredentials?: boolean;
}

/** Creates (and connects) the clients of `groups`; each is closed by `scope`. */
export function makeClients(
  scope: Scope,
  url: string,
  groups: readonly ClientGroup[],
  options: ConnectOptions = {},
): LbClient[] {
  const clients: LbClient[] = [];
  let distinct = 0;
  for (const group of groups) {
    for (let i = 0; i < group.count; i++) {
      const address = group.source === "distinct" ? distinctAddress(distinct++) : group.source;
      // One agent per client: its sockets leave from the client's own address. Both
      // transports take it (engine.io-client hands `agent` to xmlhttprequest-ssl and to
      // ws), and ws also takes `localAddress` for the upgrade request itself.
      const agent = scope.add(new Agent({ localAddress: address }), (a) => a.destroy());
      const socket = connect(url, {
        forceNew: true,
        reconnection: options.reconnection ?? false,
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
        randomizationFactor: 0.5,
        timeout: 10_000,
        withCredentials: options.withCredentials ?? false,
        transports: group.transport === "websocket" ? ["websocket"] : ["polling", "websocket"],
        upgrade: group.transport === "upgrade",
        // engine.io-client types `agent` as string | boolean (its browser meaning) but
        // hands it as is to Node's http and ws, which take an http.Agent.
        agent: agent as unknown as string,
        localAddress: address,
      } as Parameters<typeof connect>[1]);
      scope.add(socket, (s) => s.close());
      const client: LbClient = {
        group,
        address,
        socket,
        hello: undefined,
        ticks: [],
        errors: [],
        disconnects: 0,
        connects: 0,
        upgraded: false,
      };
      socket.on("connect", () => {
        client.connects++;
      });
      // "open" (the Engine.IO handshake) comes before any upgrade of that engine.
      socket.io.on("open", () => {
        socket.io.engine.once("upgrade", () => {
          client.upgraded = true;
        });
      });
      socket.on("hello", (h: { node: string; id: string; from?: string }) => {
        client.hello = h;
      });
      socket.on("tick", (n: number) => client.ticks.push(n));
      socket.on("connect_error", (e: Error) => client.errors.push(`connect_error: ${e.message}`));
      socket.on("disconnect", (reason: string) => {
        client.disconnects++;
        client.errors.push(`disconnect: ${reason}`);
      });
      clients.push(client);
    }
  }
  return clients;
}

/** Sessions per node name, counted from the `hello`s. */
export function spread(clients: readonly LbClient[]): Map<string, number> {
  const per = new Map<string, number>();
  for (const c of clients) {
    if (c.hello !== undefined) per.set(c.hello.node, (per.get(c.hello.node) ?? 0) + 1);
  }
  return per;
}

function summary(clients: readonly LbClient[]): string {
  const ok = clients.filter(
    (c) => c.hello !== undefined && c.socket.connected && c.errors.length === 0,
  ).length;
  const errors = new Map<string, number>();
  for (const c of clients) for (const e of c.errors) errors.set(e, (errors.get(e) ?? 0) + 1);
  return `${ok}/${clients.length} connected; spread ${JSON.stringify([...spread(clients)])}; errors ${JSON.stringify([...errors])}`;
}

/**
 * Waits until every client is connected and got its `hello` (and upgraded, for
 * "upgrade") or has failed (they do not reconnect here), then fails if any failed, with
 * the counts (connected, per node, errors by kind).
 */
export async function allConnected(
  clients: readonly LbClient[],
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    () =>
      clients.every(
        (c) =>
          c.errors.length > 0 ||
          (c.socket.connected &&
            c.hello !== undefined &&
            (c.group.transport !== "upgrade" || c.upgraded)),
      ),
    timeoutMs,
    () => `every client connected: ${summary(clients)}`,
  );
  const failed = clients.filter(
    (c) => !c.socket.connected || c.hello === undefined || c.errors.length > 0,
  );
  assert.equal(failed.length, 0, `clients that failed: ${summary(clients)}`);
  // The balancer saw each client's own source address (X-Forwarded-For).
  const spoofed = clients.filter((c) => c.hello?.from !== c.address);
  assert.deepEqual(
    spoofed.slice(0, 3).map((c) => [c.address, c.hello?.from]),
    [],
    "clients seen from another address than they bound",
  );
}

/** Every client's transport is the one its group asked for. */
export function assertTransports(clients: readonly LbClient[]): void {
  for (const c of clients) {
    const name = c.socket.io.engine.transport.name;
    const want = c.group.transport === "polling" ? "polling" : "websocket";
    assert.equal(name, want, `${c.group.transport} client on ${name}`);
  }
}

/**
 * `rounds` acked requests per client, sequential per client and concurrent across
 * clients: every answer must come from the client's own session (same socket id as its
 * `hello` and as the client sees) and carry the request's own payload.
 */
export async function assertAcks(
  clients: readonly LbClient[],
  rounds: number,
  timeoutMs = 30_000,
): Promise<void> {
  const wrong: string[] = [];
  await within(
    Promise.all(
      clients.map(async (c, i) => {
        for (let r = 0; r < rounds; r++) {
          const x = `${i}:${r}`;
          const answer = (await c.socket.timeout(10_000).emitWithAck("echo", x)) as {
            node: string;
            id: string;
            x: string;
          };
          if (answer.id !== c.socket.id || answer.id !== c.hello?.id || answer.x !== x) {
            wrong.push(
              `${c.address} sent ${x} as ${c.socket.id}, answered ${JSON.stringify(answer)}`,
            );
          }
        }
      }),
    ),
    timeoutMs,
    `${rounds} acked requests from each of ${clients.length} clients`,
  );
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} answers from another session`);
}

/** `count` broadcasts from `from` reach every client exactly once, in order. */
export async function assertBroadcasts(
  clients: readonly LbClient[],
  from: LbNode,
  count: number,
  timeoutMs = 30_000,
): Promise<void> {
  for (const c of clients) c.ticks.length = 0;
  await from.call("tick", { count, intervalMs: 5 });
  await waitFor(
    () => clients.every((c) => c.ticks.length >= count),
    timeoutMs,
    () =>
      `${count} ticks at every client (${clients.filter((c) => c.ticks.length < count).length} short)`,
  );
  const want = Array.from({ length: count }, (_, i) => i + 1);
  const bad = clients.filter((c) => c.ticks.join() !== want.join());
  assert.deepEqual(
    bad.slice(0, 3).map((c) => c.ticks),
    [],
    `${bad.length} clients got the ticks duplicated, lost or out of order`,
  );
}

/** No node holds more than `maxShare` of the sessions. */
export function assertSpread(clients: readonly LbClient[], nodes: number, maxShare = 0.4): void {
  const per = spread(clients);
  const total = clients.length;
  assert.equal(per.size, nodes, `sessions on ${per.size} of ${nodes} nodes: ${summary(clients)}`);
  for (const [node, n] of per) {
    assert.ok(
      n / total <= maxShare,
      `node ${node} holds ${n} of ${total} sessions (${Math.round((100 * n) / total)} %, limit ${100 * maxShare} %)`,
    );
  }
}

/** No client disconnected or saw an error since it connected. */
export function assertNoErrors(clients: readonly LbClient[]): void {
  const bad = clients.filter((c) => c.errors.length > 0 || c.connects !== 1);
  assert.equal(bad.length, 0, `clients with errors or reconnects: ${summary(clients)}`);
}
