/**
 * Session forwarding: option validation, the per-node forward cap, upgrades with bogus
 * sids, and the `cookie` option through forwarded requests.
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { connect as netConnect } from "node:net";
import { afterEach, describe, it } from "node:test";
import { type Bus, LocalHub, Server } from "@switchyard/server";
import { mac } from "../../src/cluster/forward-auth.js";
import { DIRECTORY_CHANNEL } from "../../src/cluster/node-directory.js";
import { client, connected, Scope, waitFor } from "../socketio/helpers.js";
import { get, SECRET, serveEcho, startBalancer, startNodes } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

function buses(n: number): Bus[] {
  const hub = new LocalHub();
  return Array.from({ length: n }, () => scope.add(hub.bus(), (b) => b.close()));
}

/** The status line of a raw upgrade request. */
function upgradeStatus(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1", () => {
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
      );
    });
    let data = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("no answer"));
    }, 5000);
    s.on("data", (d) => {
      data += d.toString("latin1");
      if (data.includes("\r\n")) {
        clearTimeout(timer);
        s.destroy();
        resolve(data.slice(0, data.indexOf("\r\n")));
      }
    });
    s.on("error", reject);
  });
}

describe("forwarding options", () => {
  const bus = () => new LocalHub().bus();
  const cases: [string, unknown, RegExp][] = [
    [
      "unknown key",
      { bus: bus(), secret: SECRET, secrett: 1 },
      /unknown option "forwarding.secrett"/,
    ],
    [
      "short secret",
      { bus: bus(), secret: "short" },
      /forwarding.secret.*at least 16 bytes.*5 bytes/,
    ],
    ["no bus", { secret: SECRET }, /forwarding.bus/],
    [
      "timeout below interval",
      { bus: bus(), secret: SECRET, announceInterval: 1000, nodeTimeout: 500 },
      /forwarding.nodeTimeout/,
    ],
    [
      "bad listen port",
      { bus: bus(), secret: SECRET, listen: { port: 70000 } },
      /forwarding.listen.port/,
    ],
    [
      "unknown listen key",
      { bus: bus(), secret: SECRET, listen: { hots: "x" } },
      /forwarding.listen.hots/,
    ],
    ["not an object", "yes", /forwarding/],
  ];
  for (const [what, forwarding, message] of cases) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => new Server({ forwarding: forwarding as never }),
        (err: Error & { code?: string }) =>
          message.test(err.message) && (err.code ?? "").startsWith("SY_ERR_"),
      );
    });
  }
  it("the secret never appears in an error message", () => {
    assert.throws(
      () => new Server({ forwarding: { bus: bus(), secret: "hunter2" } }),
      (err: Error) => !err.message.includes("hunter2"),
    );
  });
});

describe("forwarding limits and hostile upgrades", () => {
  it("past maxForwards a forward is refused with 503, and the slot frees up", async () => {
    const nodes = await startNodes(scope, buses(2), {}, { maxForwards: 1 });
    const c = client(scope, nodes[1]!.url, { transports: ["polling"] });
    await connected(c, 5000);
    const path = `/socket.io/?EIO=4&transport=polling&sid=${c.io.engine.id}`;
    const fwd = nodes[0]!.io.engine.forwarder!;
    // A held forward: a POST through node 0 whose body is still coming.
    const held = httpRequest({
      host: "127.0.0.1",
      port: nodes[0]!.port,
      method: "POST",
      path,
      headers: { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": "100" },
    });
    held.on("error", () => {});
    held.write("4");
    await waitFor(() => fwd.stats.active === 1, 3000);
    const refused = await get(nodes[0]!.port, path);
    assert.equal(refused.status, 503, refused.body);
    assert.equal(fwd.stats.overCapacity, 1);
    held.destroy();
    await waitFor(() => fwd.stats.active === 0, 3000);
    const before = fwd.stats.requests;
    // The slot is free again: the next request is forwarded (the owner answers it).
    await get(nodes[0]!.port, "/socket.io/?EIO=4&transport=polling&sid=n1~AAAAAAAAAAAAAAAAAAAA");
    assert.equal(fwd.stats.requests, before + 1);
  });

  it("an upgrade naming an unknown node gets 400 without a forward; a forged live sid one forward", async () => {
    const nodes = await startNodes(scope, buses(2));
    const unknown = await upgradeStatus(
      nodes[0]!.port,
      "/socket.io/?EIO=4&transport=websocket&sid=zz~AAAAAAAAAAAAAAAAAAAA",
    );
    assert.match(unknown, /^HTTP\/1\.1 400/);
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.upgrades, 0);
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.unknownNode, 1);
    // A live node's id with a made-up session: piped once, the owner refuses.
    const forged = await upgradeStatus(
      nodes[0]!.port,
      "/socket.io/?EIO=4&transport=websocket&sid=n1~AAAAAAAAAAAAAAAAAAAA",
    );
    assert.match(forged, /^HTTP\/1\.1 400/);
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.upgrades, 1);
    assert.equal(nodes[1]!.io.engine.forwarder!.stats.listener.served, 1);
    assert.equal(nodes[1]!.io.engine.forwarder!.stats.upgrades, 0);
  });

  it("forged, replayed and malformed announcements on the bus never add a node", async () => {
    const hub = new LocalHub();
    const nodes = await startNodes(scope, [
      scope.add(hub.bus(), (x) => x.close()),
      scope.add(hub.bus(), (x) => x.close()),
    ]);
    const outsider = scope.add(hub.bus(), (x) => x.close());
    const dir = nodes[0]!.io.engine.forwarder!.directory;
    const now = String(Date.now());
    const fields = (k: string, n: string, t: string) => [k, n, "127.0.0.1", "9", t];
    const good = (t: string) =>
      mac(Buffer.from(SECRET), ["announce", ...fields("hello", "evil", t)]);
    const messages: unknown[] = [
      { k: "hello", n: "evil", h: "127.0.0.1", p: 9, t: now, m: "AAAA" },
      {
        k: "hello",
        n: "evil",
        h: "127.0.0.1",
        p: 9,
        t: now,
        m: mac(Buffer.from("x".repeat(32)), ["announce", ...fields("hello", "evil", now)]),
      },
      {
        k: "hello",
        n: "evil",
        h: "127.0.0.1",
        p: 9,
        t: String(Date.now() - 120_000),
        m: good(String(Date.now() - 120_000)),
      },
      { k: "hello", n: "../x", h: "127.0.0.1", p: 9, t: now, m: good(now) },
      { k: "hello", n: "evil", h: "127.0.0.1", p: 70000, t: now, m: good(now) },
      "not json",
      "x".repeat(5000),
    ];
    for (const m of messages)
      outsider.publish(
        DIRECTORY_CHANNEL,
        Buffer.from(typeof m === "string" ? m : JSON.stringify(m)),
      );
    await waitFor(() => dir.stats.refused >= messages.length, 3000);
    assert.equal(dir.get("evil"), undefined);
    assert.deepEqual(dir.peers(), ["n1"]);
    // A sid naming it is still refused without a forward.
    const r = await get(
      nodes[0]!.port,
      "/socket.io/?EIO=4&transport=polling&sid=evil~AAAAAAAAAAAAAAAAAAAA",
    );
    assert.equal(r.status, 400);
    assert.equal(nodes[0]!.io.engine.forwarder!.stats.requests, 0);
  });

  it("the cookie option keeps working through forwarded requests", async () => {
    const nodes = await startNodes(scope, buses(3), { cookie: true });
    serveEcho(nodes);
    const lb = await startBalancer(
      scope,
      nodes.map((n) => n.port),
    );
    // The handshake sets the cookie naming the session; later requests land anywhere.
    const hs = await fetch(`${lb.url}/socket.io/?EIO=4&transport=polling`);
    const cookie = hs.headers.get("set-cookie") ?? "";
    const sid = (JSON.parse((await hs.text()).slice(1)) as { sid: string }).sid;
    assert.match(cookie, new RegExp(`^io=${encodeURIComponent(sid)}; Path=/`));
    const c = client(scope, lb.url, { transports: ["polling"] });
    await connected(c, 5000);
    for (let i = 0; i < 6; i++) {
      const a = (await c.timeout(3000).emitWithAck("echo", i)) as { id: string };
      assert.equal(a.id, c.id);
    }
    const forwarded = nodes.reduce((a, n) => a + n.io.engine.forwarder!.stats.requests, 0);
    assert.ok(forwarded > 0);
  });
});
