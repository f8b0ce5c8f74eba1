/**
 * The load-balancer matrix shared by the per-bus test files: one `describe` per shipped
 * config of `deploy/`, one case per transport (polling only, polling → upgrade,
 * WebSocket only) from distinct source addresses, and a "one NAT" case, each with fresh
 * clients and the full check of lb-helpers.ts.
 *
 * The nodes run with session forwarding (docs/forwarding.md): behind a per-request
 * balancer, a polling request or upgrade reaching a node that does not own the session
 * is served through the owner.
 */
import { afterEach, before, describe, test } from "node:test";
import { Scope, startHaproxy, startNginx, waitFor } from "@switchyard/test-harness";
import {
  allConnected,
  assertAcks,
  assertBroadcasts,
  assertNoErrors,
  assertSpread,
  assertTransports,
  type ClientGroup,
  deployFile,
  type LbNode,
  makeClients,
  spread,
} from "./lb-helpers.js";

const TRANSPORTS = ["polling", "upgrade", "websocket"] as const;

/** A running balancer. */
export interface Proxy {
  url: string;
  stop(): Promise<void>;
}

/** What the matrix needs from the test file: its nodes (started in its `before`) and scope. */
export interface MatrixContext {
  /** Closed by the file's `after`: proxies are added to it. */
  suite: Scope;
  nodes(): readonly LbNode[];
  /** Clients per transport case. @default 150 */
  perTransport?: number;
}

/** A shipped config and what it needs. */
export interface Balancer {
  title: string;
  kind: "haproxy" | "nginx";
  /** File name in `deploy/`. */
  file: string;
  /** Clients keep cookies (cookie stickiness). @default false */
  withCredentials?: boolean;
  /** Run the "one NAT" case. @default false */
  nat?: boolean;
  /** Largest share of the sessions one node may hold. @default 0.4 */
  maxShare?: number;
}

/** The full check of one client mix behind `proxy`. */
async function check(
  scope: Scope,
  ctx: MatrixContext,
  proxy: Proxy,
  groups: ClientGroup[],
  withCredentials: boolean,
  maxShare: number,
): Promise<string> {
  const nodes = ctx.nodes();
  const clients = makeClients(scope, proxy.url, groups, { withCredentials });
  await allConnected(clients);
  assertTransports(clients);
  await assertAcks(clients, 3);
  await assertBroadcasts(clients, nodes[0]!, 20);
  assertNoErrors(clients);
  assertSpread(clients, nodes.length, maxShare);
  const per = spread(clients);
  return `sessions per node: ${nodes.map((n) => `${n.name} ${per.get(n.name) ?? 0}`).join(", ")}`;
}

/** Registers the `describe` of one balancer. */
export function behind(ctx: MatrixContext, b: Balancer): void {
  const per = ctx.perTransport ?? 150;
  describe(b.title, () => {
    let proxy: Proxy;
    let scope: Scope | undefined;
    before(async () => {
      const file = deployFile(b.file);
      const upstreams = ctx.nodes().map((n) => ({ port: n.port }));
      const started =
        b.kind === "haproxy"
          ? await startHaproxy({ configFile: file, backends: upstreams })
          : await startNginx({ configFile: file, upstreams });
      proxy = ctx.suite.add(started, (p) => p.stop());
    });
    afterEach(async () => {
      await scope?.close();
      // The next case starts from empty nodes (a least-conn balancer counts what is left).
      await waitFor(
        async () =>
          (await Promise.all(ctx.nodes().map((n) => n.call<number>("count")))).every(
            (c) => c === 0,
          ),
        10_000,
        "every node without sockets after the case",
      );
    });

    for (const transport of TRANSPORTS) {
      test(`${per} ${transport} clients from distinct addresses`, async (t) => {
        scope = new Scope();
        const groups: ClientGroup[] = [{ transport, count: per, source: "distinct" }];
        t.diagnostic(
          await check(scope, ctx, proxy, groups, b.withCredentials ?? false, b.maxShare ?? 0.4),
        );
      });
    }

    if (b.nat === true) {
      test("one NAT: 240 clients of every transport behind one address, 60 others", async (t) => {
        scope = new Scope();
        const nat = "127.9.9.9";
        const groups: ClientGroup[] = [
          { transport: "polling", count: 80, source: nat },
          { transport: "upgrade", count: 80, source: nat },
          { transport: "websocket", count: 80, source: nat },
          { transport: "upgrade", count: 60, source: "distinct" },
        ];
        t.diagnostic(
          await check(scope, ctx, proxy, groups, b.withCredentials ?? false, b.maxShare ?? 0.4),
        );
      });
    }
  });
}

/** Every shipped config. */
export const ALL_BALANCERS: readonly Balancer[] = [
  {
    title: "haproxy round-robin (deploy/haproxy.cfg)",
    kind: "haproxy",
    file: "haproxy.cfg",
    nat: true,
  },
  {
    title: "nginx round-robin (deploy/nginx.conf)",
    kind: "nginx",
    file: "nginx.conf",
    nat: true,
  },
  // Least-conn balances open connections, not sessions: when a burst of clients
  // connects at once, the node that answers fastest wins the ties and gets more
  // handshakes (haproxy put 43–50 % of 60 sessions on one node, nginx up to 45 %).
  // Every node still gets its share; round-robin is the even one.
  {
    title: "haproxy leastconn (deploy/haproxy-leastconn.cfg)",
    kind: "haproxy",
    file: "haproxy-leastconn.cfg",
    maxShare: 0.6,
  },
  {
    title: "nginx least_conn (deploy/nginx-least-conn.conf)",
    kind: "nginx",
    file: "nginx-least-conn.conf",
    maxShare: 0.6,
  },
  // Cookie stickiness, for clients that keep cookies.
  {
    title: "haproxy cookie insert (deploy/haproxy-cookie.cfg)",
    kind: "haproxy",
    file: "haproxy-cookie.cfg",
    withCredentials: true,
  },
  // The handshake carries no cookie yet, so its next request may hash elsewhere:
  // forwarding serves it.
  {
    title: "nginx hash $cookie_io (deploy/nginx-cookie.conf)",
    kind: "nginx",
    file: "nginx-cookie.conf",
    withCredentials: true,
  },
];
