/**
 * The load-balancer matrix shared by the per-bus test files: one `describe` per shipped
 * config of `deploy/`, one case per transport (polling only, polling → upgrade,
 * WebSocket only) from distinct source addresses, and a "one NAT" case, each with fresh
 * clients and the full check of lb-helpers.ts.
 *
 * Cases a balancer can only pass with session forwarding (a polling request or upgrade
 * reaching a node that does not own the session) are marked `todo` until it lands.
 */
import { afterEach, before, describe, test } from "node:test";
import { Scope, startHaproxy, startNginx } from "@switchyard/test-harness";
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
} from "./lb-helpers.js";

const TODO = { todo: "needs session forwarding" } as const;

/** Each transport's case, and whether a per-request balancer needs forwarding for it. */
const TRANSPORTS = [
  { transport: "polling", forwarding: true },
  { transport: "upgrade", forwarding: true },
  { transport: "websocket", forwarding: false },
] as const;

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
  /** Clients per transport case. @default 60 */
  perTransport?: number;
}

/** A shipped config and what it needs. */
export interface Balancer {
  title: string;
  kind: "haproxy" | "nginx";
  /** File name in `deploy/`. */
  file: string;
  /** A per-request balancer: polling and upgrade need session forwarding. */
  perRequest: boolean;
  /** Clients keep cookies (cookie stickiness). @default false */
  withCredentials?: boolean;
  /** Run the "one NAT" case. @default false */
  nat?: boolean;
}

/** The full check of one client mix behind `proxy`. */
async function check(
  scope: Scope,
  ctx: MatrixContext,
  proxy: Proxy,
  groups: ClientGroup[],
  withCredentials: boolean,
): Promise<void> {
  const nodes = ctx.nodes();
  const clients = makeClients(scope, proxy.url, groups, { withCredentials });
  await allConnected(clients);
  assertTransports(clients);
  await assertAcks(clients, 3);
  await assertBroadcasts(clients, nodes[0]!, 20);
  assertNoErrors(clients);
  assertSpread(clients, nodes.length);
}

/** Registers the `describe` of one balancer. */
export function behind(ctx: MatrixContext, b: Balancer): void {
  const per = ctx.perTransport ?? 60;
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
    afterEach(() => scope?.close());

    for (const { transport, forwarding } of TRANSPORTS) {
      const todo = forwarding && b.perRequest ? TODO : {};
      test(`${per} ${transport} clients from distinct addresses`, todo, async () => {
        scope = new Scope();
        const groups: ClientGroup[] = [{ transport, count: per, source: "distinct" }];
        await check(scope, ctx, proxy, groups, b.withCredentials ?? false);
      });
    }

    if (b.nat === true) {
      const todo = b.perRequest ? TODO : {};
      test(
        "one NAT: 120 clients of every transport behind one address, 30 others",
        todo,
        async () => {
          scope = new Scope();
          const nat = "127.9.9.9";
          const groups: ClientGroup[] = [
            { transport: "polling", count: 40, source: nat },
            { transport: "upgrade", count: 40, source: nat },
            { transport: "websocket", count: 40, source: nat },
            { transport: "upgrade", count: 30, source: "distinct" },
          ];
          await check(scope, ctx, proxy, groups, b.withCredentials ?? false);
        },
      );
    }
  });
}

/** Every shipped config. */
export const ALL_BALANCERS: readonly Balancer[] = [
  {
    title: "haproxy round-robin (deploy/haproxy.cfg)",
    kind: "haproxy",
    file: "haproxy.cfg",
    perRequest: true,
    nat: true,
  },
  {
    title: "nginx round-robin (deploy/nginx.conf)",
    kind: "nginx",
    file: "nginx.conf",
    perRequest: true,
    nat: true,
  },
  {
    title: "haproxy leastconn (deploy/haproxy-leastconn.cfg)",
    kind: "haproxy",
    file: "haproxy-leastconn.cfg",
    perRequest: true,
  },
  {
    title: "nginx least_conn (deploy/nginx-least-conn.conf)",
    kind: "nginx",
    file: "nginx-least-conn.conf",
    perRequest: true,
  },
  // Cookie stickiness works without forwarding, for clients that keep cookies.
  {
    title: "haproxy cookie insert (deploy/haproxy-cookie.cfg)",
    kind: "haproxy",
    file: "haproxy-cookie.cfg",
    perRequest: false,
    withCredentials: true,
  },
  // The handshake carries no cookie yet, so its next request may hash elsewhere.
  {
    title: "nginx hash $cookie_io (deploy/nginx-cookie.conf)",
    kind: "nginx",
    file: "nginx-cookie.conf",
    perRequest: true,
    withCredentials: true,
  },
];
