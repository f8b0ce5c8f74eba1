/**
 * Session forwarding over LocalBus (in-process nodes, as workers of one host): a
 * round-robin balancer sends each request to another node; every transport path keeps
 * one logical session, acks answer from it, broadcasts arrive once and in order. Plus
 * the hostile cases: bogus, malformed and forged sids, the internal listener's
 * authentication, and an owner that cannot be reached.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { LocalHub } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import { signForward } from "../../src/cluster/forward-auth.js";
import { client, connected, Scope, TRANSPORT_MODES, waitFor } from "../socketio/helpers.js";
import {
  assertUnknownSid,
  type FwdNode,
  get,
  roundRobinScenario,
  SECRET,
  serveEcho,
  startBalancer,
  startNodes,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

function localNodes(n = 3): Promise<FwdNode[]> {
  const hub = new LocalHub();
  const buses = Array.from({ length: n }, () => scope.add(hub.bus(), (b) => b.close()));
  return startNodes(scope, buses);
}

describe("session forwarding over LocalBus behind a round-robin balancer", () => {
  for (const mode of TRANSPORT_MODES) {
    it(`${mode.name}: one session per client, acks from it, broadcasts once and in order`, async () => {
      await roundRobinScenario(scope, await localNodes(), mode);
    });
  }
});

describe("session forwarding: hostile input", () => {
  it("a sid naming an unknown node gets 400 without any forward, also in a flood", async () => {
    const nodes = await localNodes();
    const before = nodes.map((n) => ({ ...n.io.engine.forwarder!.stats }));
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        get(
          nodes[i % 3]!.port,
          `/socket.io/?EIO=4&transport=polling&sid=bogus${i}~AAAAAAAAAAAAAAAAAAAA`,
        ),
      ),
    );
    for (const r of results) assertUnknownSid(r);
    for (const [k, n] of nodes.entries()) {
      const s = n.io.engine.forwarder!.stats;
      assert.equal(s.requests, before[k]!.requests, "a request was forwarded");
      assert.equal(
        s.unknownNode - before[k]!.unknownNode,
        200 / 3 > k ? s.unknownNode - before[k]!.unknownNode : 0,
      );
      assert.equal(s.listener.served, 0);
    }
    assert.equal(
      nodes.reduce((a, n) => a + n.io.engine.forwarder!.stats.unknownNode, 0),
      200,
    );
  });

  it("malformed sids get 400 and are never forwarded", async () => {
    const nodes = await localNodes(2);
    for (const sid of [
      "",
      "~",
      "n1~",
      "n1~short",
      "n1~AAAAAAAAAAAAAAAAAAAAAAAAA",
      "%00~x",
      "n1~AAAA/AAAAAAAAAAAAAAA",
    ]) {
      const r = await get(
        nodes[0]!.port,
        `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`,
      );
      assert.equal(r.status, 400, `${sid}: ${r.body}`);
    }
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.requests, 1); // only "n1~AAAA/…" has the shape
    assert.equal(nodes[1]!.io.engine.forwarder!.stats.listener.notOwned, 0);
  });

  it("a forged sid of a live node costs one forward and gets the owner's 400", async () => {
    const nodes = await localNodes(2);
    const r = await get(
      nodes[0]!.port,
      "/socket.io/?EIO=4&transport=polling&sid=n1~AAAAAAAAAAAAAAAAAAAA",
    );
    assertUnknownSid(r);
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.requests, 1);
    assert.equal(nodes[1]!.io.engine.forwarder!.stats.listener.served, 1);
    assert.equal(nodes[1]!.io.engine.forwarder!.stats.requests, 0, "the owner forwarded again");
  });

  it("the internal listener refuses unauthenticated, replayed, misaddressed and non-session requests", async () => {
    const nodes = await localNodes(2);
    const owner = nodes[1]!.io.engine.forwarder!;
    const port = owner.address!.port;
    const path = "/socket.io/?EIO=4&transport=polling&sid=n1~AAAAAAAAAAAAAAAAAAAA";
    const secret = Buffer.from(SECRET);
    const cases: [string, Record<string, string>][] = [
      ["no token", {}],
      ["garbage", { "x-switchyard-forward": "a.b.c.d" }],
      [
        "wrong secret",
        {
          "x-switchyard-forward": signForward(
            Buffer.from("another-secret-0123456789"),
            "n0",
            "n1",
            "GET",
            path,
          ),
        },
      ],
      [
        "for another node",
        { "x-switchyard-forward": signForward(secret, "n0", "n0", "GET", path) },
      ],
      [
        "another URL",
        { "x-switchyard-forward": signForward(secret, "n0", "n1", "GET", `${path}x`) },
      ],
      [
        "expired (replay)",
        {
          "x-switchyard-forward": signForward(secret, "n0", "n1", "GET", path, Date.now() - 60_000),
        },
      ],
      ["another method", { "x-switchyard-forward": signForward(secret, "n0", "n1", "POST", path) }],
    ];
    for (const [what, headers] of cases) {
      const r = await get(port, path, headers);
      assert.equal(r.status, 403, what);
    }
    assert.equal(owner.stats.listener.unauthorized, cases.length);
    // Authenticated, but a handshake (no sid) or another node's sid: not this listener's.
    const hs = "/socket.io/?EIO=4&transport=polling";
    assertUnknownSid(
      await get(port, hs, { "x-switchyard-forward": signForward(secret, "n0", "n1", "GET", hs) }),
    );
    const other = "/socket.io/?EIO=4&transport=polling&sid=n0~AAAAAAAAAAAAAAAAAAAA";
    assertUnknownSid(
      await get(port, other, {
        "x-switchyard-forward": signForward(secret, "n0", "n1", "GET", other),
      }),
    );
    assert.equal(owner.stats.listener.notOwned, 2);
    assert.equal(owner.stats.listener.served, 0);
    assert.equal(nodes[1]!.io.engine.stats.handshakes, 0);
  });

  it("an owner that cannot be reached: forwards fail fast with 400, the client reconnects to a live node", async () => {
    const nodes = await localNodes(2);
    serveEcho(nodes);
    const ports = nodes.map((n) => n.port);
    const lb = await startBalancer(scope, ports);
    // A polling client whose session lives on n1 (the balancer alternates handshakes).
    let c: ClientSocket | undefined;
    for (let k = 0; k < 4 && c === undefined; k++) {
      const x = client(scope, lb.url, {
        transports: ["polling"],
        reconnection: true,
        reconnectionDelay: 50,
        reconnectionDelayMax: 100,
      });
      await connected(x, 5000);
      if (x.io.engine.id.startsWith("n1~")) c = x;
      else x.disconnect();
    }
    assert.ok(c !== undefined, "no session on n1");
    const sid = c.io.engine.id;
    // n1 becomes unreachable for the others at once (as after a SIGKILL, before its
    // directory entry times out): its internal listener goes, the balancer drops it.
    ports.splice(1, 1);
    (nodes[1]!.io.engine.forwarder as unknown as { listener: { close(): void } }).listener.close();
    const r = await get(nodes[0]!.port, `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
    assertUnknownSid(r);
    assert.ok(r.ms < 2000, `took ${r.ms} ms`);
    assert.ok(nodes[0]!.io.engine.forwarder!.stats.failed >= 1);
    // The client reconnects through the balancer and gets a new session on n0.
    await waitFor(() => c.connected && c.io.engine.id.startsWith("n0~"), 8000);
    const answer = (await c.timeout(3000).emitWithAck("echo", 1)) as { node: string };
    assert.equal(answer.node, "n0");
  });
});
