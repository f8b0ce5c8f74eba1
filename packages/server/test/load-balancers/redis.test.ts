/**
 * Switchyard behind real haproxy and nginx, over Redis: three node processes, the
 * shipped `deploy/` configs (rewritten only for addresses), and real socket.io-client
 * clients with polling only, polling → upgrade and WebSocket only, each from its own
 * 127.x.y.z address, or many behind one address (one NAT). Every client connects, every
 * ack comes from the client's own session, every broadcast arrives once and in order,
 * and with round-robin and least-conn no node holds more than 40 % of the sessions.
 *
 * Cases a balancer can only pass with session forwarding (a polling request or upgrade
 * reaching a node that does not own the session) are marked `todo` until it lands.
 */
import { after, afterEach, before, describe, test } from "node:test";
import {
  type HaproxyServer,
  type NginxServer,
  type RedisServer,
  Scope,
  startHaproxy,
  startNginx,
  startRedis,
} from "@switchyard/test-harness";
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
  startNodes,
} from "./lb-helpers.js";

const TODO = { todo: "needs session forwarding" } as const;
const PER_TRANSPORT = 60;

/** Each transport's own case, and what it needs of the balancer. */
const TRANSPORTS = [
  { transport: "polling", forwarding: true },
  { transport: "upgrade", forwarding: true },
  { transport: "websocket", forwarding: false },
] as const;

interface Proxy {
  url: string;
  stop(): Promise<void>;
}

let redis: RedisServer;
let nodes: LbNode[];
const suite = new Scope(15_000);

before(async () => {
  redis = suite.add(await startRedis(), (r) => r.stop());
  nodes = await startNodes(suite, 3, { bus: "redis", url: redis.url, cookie: true });
});
after(() => suite.close());

/** The full check for one client mix behind `proxy`. */
async function check(
  scope: Scope,
  proxy: Proxy,
  groups: ClientGroup[],
  opts: { withCredentials?: boolean; spread?: boolean } = {},
): Promise<void> {
  const clients = makeClients(scope, proxy.url, groups, {
    withCredentials: opts.withCredentials ?? false,
  });
  await allConnected(clients);
  assertTransports(clients);
  await assertAcks(clients, 3);
  await assertBroadcasts(clients, nodes[0]!, 20);
  assertNoErrors(clients);
  if (opts.spread ?? true) assertSpread(clients, nodes.length);
}

/** One describe per shipped config: the proxy is started once, each case gets fresh clients. */
function behind(
  title: string,
  start: () => Promise<Proxy>,
  cases: { forwarding: boolean; withCredentials?: boolean; nat?: boolean },
): void {
  describe(title, () => {
    let proxy: Proxy;
    let scope: Scope;
    before(async () => {
      proxy = suite.add(await start(), (p) => p.stop());
    });
    afterEach(() => scope.close());

    for (const { transport, forwarding } of TRANSPORTS) {
      const todo = forwarding && cases.forwarding ? TODO : {};
      test(`${PER_TRANSPORT} ${transport} clients from distinct addresses`, todo, async () => {
        scope = new Scope();
        await check(scope, proxy, [{ transport, count: PER_TRANSPORT, source: "distinct" }], {
          withCredentials: cases.withCredentials ?? false,
        });
      });
    }

    if (cases.nat === true) {
      test(
        "one NAT: 120 clients of every transport behind one address, 30 others",
        TODO,
        async () => {
          scope = new Scope();
          const nat = "127.9.9.9";
          await check(scope, proxy, [
            { transport: "polling", count: 40, source: nat },
            { transport: "upgrade", count: 40, source: nat },
            { transport: "websocket", count: 40, source: nat },
            { transport: "upgrade", count: 30, source: "distinct" },
          ]);
        },
      );
    }
  });
}

const upstreams = () => nodes.map((n) => ({ port: n.port }));

function haproxy(file: string): () => Promise<HaproxyServer> {
  return () => startHaproxy({ configFile: deployFile(file), backends: upstreams() });
}
function nginx(file: string): () => Promise<NginxServer> {
  return () => startNginx({ configFile: deployFile(file), upstreams: upstreams() });
}

behind("haproxy round-robin (deploy/haproxy.cfg)", haproxy("haproxy.cfg"), {
  forwarding: true,
  nat: true,
});
behind("nginx round-robin (deploy/nginx.conf)", nginx("nginx.conf"), {
  forwarding: true,
  nat: true,
});
behind("haproxy leastconn (deploy/haproxy-leastconn.cfg)", haproxy("haproxy-leastconn.cfg"), {
  forwarding: true,
});
behind("nginx least_conn (deploy/nginx-least-conn.conf)", nginx("nginx-least-conn.conf"), {
  forwarding: true,
});
// Cookie stickiness works without forwarding, for clients that keep cookies.
behind("haproxy cookie insert (deploy/haproxy-cookie.cfg)", haproxy("haproxy-cookie.cfg"), {
  forwarding: false,
  withCredentials: true,
});
behind("nginx hash $cookie_io (deploy/nginx-cookie.conf)", nginx("nginx-cookie.conf"), {
  forwarding: true,
  withCredentials: true,
});
