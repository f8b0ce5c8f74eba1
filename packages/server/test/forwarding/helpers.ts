/**
 * Helpers of the session-forwarding tests: N Switchyard nodes (in-process `Server`s on
 * 127.0.0.1:0) with a cluster adapter and forwarding over the given buses, and a tiny
 * round-robin HTTP balancer that sends every request and every upgrade to the next
 * node — the worst case for a session: each request of a polling client lands on
 * another node than the one before.
 */
import assert from "node:assert/strict";
import {
  Agent,
  createServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingMessage,
} from "node:http";
import { type Socket as NetSocket, connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import {
  type Bus,
  type ClusterAdapterOptions,
  createAdapter,
  type ForwardingOptions,
  type ServerOptions,
  type Socket,
} from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  client,
  connected,
  listen,
  portOf,
  type Scope,
  startServer,
  type TestServer,
  type TransportMode,
  waitFor,
} from "../socketio/helpers.js";

export const SECRET = "forwarding-test-secret-0123456789";

export interface FwdNode extends TestServer {
  name: string;
  bus: Bus;
}

export const FAST: ClusterAdapterOptions = { heartbeatInterval: 500, requestsTimeout: 3000 };

/** Starts one node per bus (node ids `n0`, `n1`, …) and waits until each knows the others. */
export async function startNodes(
  scope: Scope,
  buses: readonly Bus[],
  serverOpts: ServerOptions = {},
  forwarding: Partial<ForwardingOptions> = {},
): Promise<FwdNode[]> {
  const nodes: FwdNode[] = [];
  for (const [i, bus] of buses.entries()) {
    const name = `n${i}`;
    const srv = await startServer(scope, {
      ...serverOpts,
      nodeId: name,
      adapter: createAdapter(bus, FAST),
      forwarding: { bus, secret: SECRET, announceInterval: 500, ...forwarding },
    });
    await srv.io.engine.forwarder?.ready();
    nodes.push({ ...srv, name, bus });
  }
  await waitFor(
    () => nodes.every((n) => n.io.engine.forwarder?.directory.peers().length === nodes.length - 1),
    5000,
  );
  return nodes;
}

export interface Balancer {
  url: string;
  /** Requests and upgrades sent to each backend, by index. */
  hits: number[];
  server: HttpServer;
}

/**
 * A round-robin balancer: each HTTP request and each upgrade goes to the next port (no
 * stickiness of any kind, not even per TCP connection).
 */
export async function startBalancer(scope: Scope, ports: number[]): Promise<Balancer> {
  let next = 0;
  const hits = ports.map(() => 0);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Duplex>();
  // `ports` stays the caller's: a test may take a backend out.
  const pick = () => {
    const i = next++ % ports.length;
    hits[i]!++;
    return ports[i]!;
  };
  const server = createServer((req, res) => {
    const up = httpRequest(
      {
        host: "127.0.0.1",
        port: pick(),
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent,
      },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
        ur.on("error", () => res.destroy());
      },
    );
    up.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    const up: NetSocket = netConnect(pick(), "127.0.0.1");
    sockets.add(up);
    up.once("connect", () => {
      let h = `${req.method} ${req.url} HTTP/1.1\r\n`;
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
        h += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      up.write(`${h}\r\n`);
      if (head.length > 0) up.write(head);
      socket.pipe(up);
      up.pipe(socket);
    });
    const end = () => {
      up.destroy();
      socket.destroy();
      sockets.delete(up);
      sockets.delete(socket);
    };
    up.on("error", end);
    up.on("close", end);
    socket.on("error", end);
    socket.on("close", end);
  });
  await listen(server);
  scope.add(server, (s) => {
    for (const x of sockets) x.destroy();
    agent.destroy();
    s.closeAllConnections();
    return new Promise<void>((r) => s.close(() => r()));
  });
  return { url: `http://127.0.0.1:${portOf(server)}`, hits, server };
}

/** A raw HTTP GET; resolves with status, body and elapsed milliseconds. */
export function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0 }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Asserts the protocol's "Session ID unknown" answer. */
export function assertUnknownSid(r: { status: number; body: string }): void {
  assert.equal(r.status, 400, r.body);
  assert.deepEqual(JSON.parse(r.body), { code: 1, message: "Session ID unknown" });
}

/** Answers `join` (room, ack) and `echo` (i, ack → { i, id, node }) on every node. */
export function serveEcho(nodes: readonly FwdNode[]): void {
  for (const n of nodes) {
    n.io.on("connection", (socket: Socket) => {
      socket.on("join", async (room: string, ack: (ok: boolean) => void) => {
        await socket.join(room);
        ack(true);
      });
      socket.on("echo", (i: number, ack: (r: unknown) => void) =>
        ack({ i, id: socket.id, node: n.name }),
      );
    });
  }
}

/**
 * The round-robin case: 6 clients over `mode` through a balancer that sends every request
 * to the next node. Every ack comes from the client's own socket on the node its sid
 * names, broadcasts from every node reach each client exactly once and in order (per
 * sender), and the traffic was spread and (except WebSocket-only) forwarded.
 */
export async function roundRobinScenario(
  scope: Scope,
  nodes: readonly FwdNode[],
  mode: TransportMode,
): Promise<void> {
  serveEcho(nodes);
  const lb = await startBalancer(
    scope,
    nodes.map((n) => n.port),
  );
  const clients: ClientSocket[] = [];
  for (let i = 0; i < 6; i++) {
    const c = client(scope, lb.url, { ...mode.opts });
    await connected(c, 5000);
    clients.push(c);
  }
  for (const c of clients) assert.equal(await c.timeout(3000).emitWithAck("join", "r"), true);
  // Every ack comes from the client's own socket on its owner node.
  for (const c of clients) {
    const owners = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = (await c.timeout(3000).emitWithAck("echo", i)) as {
        i: number;
        id: string;
        node: string;
      };
      assert.equal(r.i, i);
      assert.equal(r.id, c.id);
      owners.add(r.node);
    }
    assert.equal(owners.size, 1);
    assert.equal([...owners][0], c.io.engine.id.split("~")[0]);
  }
  if (mode.upgrade) {
    await waitFor(() => clients.every((c) => c.io.engine.transport.name === "websocket"), 5000);
  }
  // Broadcasts from each node reach every client exactly once, in order.
  const got = clients.map(() => [] as number[]);
  for (const [k, c] of clients.entries()) c.on("tick", (i: number) => got[k]!.push(i));
  const N = 30;
  for (let i = 0; i < N; i++) nodes[i % nodes.length]!.io.to("r").emit("tick", i);
  await waitFor(() => got.every((g) => g.length >= N), 5000);
  // A last ack round trip per client: anything duplicated would have arrived by now.
  for (const c of clients) await c.timeout(3000).emitWithAck("echo", -1);
  const expected = Array.from({ length: N }, (_, i) => i);
  // Order per sending node (the bus orders one publisher's messages).
  for (const g of got) {
    assert.equal(g.length, N);
    for (let s = 0; s < nodes.length; s++) {
      assert.deepEqual(
        g.filter((i) => i % nodes.length === s),
        expected.filter((i) => i % nodes.length === s),
      );
    }
  }
  // The balancer spread the traffic, and some of it was forwarded.
  assert.ok(
    lb.hits.every((h) => h > 0),
    `hits ${lb.hits}`,
  );
  const forwarded = nodes.reduce((a, n) => {
    const s = n.io.engine.forwarder!.stats;
    return a + s.requests + s.upgrades;
  }, 0);
  // A WebSocket-only client has no sid on its one request: nothing to forward.
  if (mode.name !== "websocket") assert.ok(forwarded > 0, "nothing was forwarded");
  if (mode.name === "polling") {
    const served = nodes.reduce((a, n) => a + n.io.engine.forwarder!.stats.listener.served, 0);
    assert.ok(served >= clients.length * 10, `served ${served}`);
  }
}
