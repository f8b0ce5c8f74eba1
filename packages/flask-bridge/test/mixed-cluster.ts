/**
 * The mixed-cluster scenarios of mixed-cluster-redis.test.ts and mixed-cluster-amqp.test.ts.
 * A mixed cluster on a real broker (Redis or RabbitMQ): two stock Debian Flask-SocketIO 5.3 nodes (python-socketio
 * 5.7.2, threading, long-polling, publishing pickle) and two Switchyard nodes with a bridge
 * in peer mode (`legacyPickle: "data-only"`) on the same channel, real socket.io-client clients on every node, and real write-only Python
 * emitters. Every event reaches every intended client exactly once, in order; acks cross
 * both ways; disconnect and close_room both ways; a SIGKILLed Python node disturbs nobody.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Server } from "@switchyard/server";
import {
  freePorts,
  type ManagedProcess,
  runPython,
  startPython,
  waitFor,
} from "@switchyard/test-harness";
import fc from "fast-check";
import { type Socket as ClientSocket, io as ioClient } from "socket.io-client";
import { createFlaskBridge, encodePeerMessage, type FlaskBridge } from "../src/index.js";

const PY = (f: string) => fileURLToPath(new URL(`./py/${f}`, import.meta.url));
const CHANNEL = "flask-socketio";

/** What a scenario needs from its broker. */
export interface MixedBroker {
  readonly name: string;
  /** Python modules the nodes need besides flask_socketio. */
  readonly modules: readonly string[];
  /** Also run the JSON-publishing write-only subclass (a Redis manager subclass). */
  readonly jsonEmitter: boolean;
  start(): Promise<{
    url: string;
    /** Resolves once `n` listeners (Python and Switchyard) read the channel. */
    waitListeners(channel: string, n: number): Promise<void>;
    /** Publishes raw bytes on the channel as a foreign publisher would. */
    publishRaw(channel: string, body: Buffer): Promise<void>;
    /** Records every body published on the channel from now on (a listener of its own). */
    tap(channel: string, onBody: (body: Buffer) => void): Promise<void>;
    stop(): Promise<void>;
  }>;
}

export function mixedCluster(broker: MixedBroker): void {
  describe(`mixed cluster on real ${broker.name}`, { timeout: 180_000 }, () => {
    const MODULES = ["flask_socketio", ...broker.modules];
    let bus: Awaited<ReturnType<MixedBroker["start"]>>;
    const tapped: Buffer[] = [];
    const pythons: ManagedProcess[] = [];
    const servers: { io: Server; peer: FlaskBridge; url: string }[] = [];
    const clients: ClientSocket[] = [];
    const pyUrls: string[] = [];

    /** What each client received, per event name. */
    const got = new Map<ClientSocket, Map<string, unknown[][]>>();

    function record(c: ClientSocket): void {
      const per = new Map<string, unknown[][]>();
      got.set(c, per);
      c.onAny((ev: string, ...args: unknown[]) => {
        if (typeof args[args.length - 1] === "function") return; // an ack request: answered below
        let list = per.get(ev);
        if (list === undefined) {
          list = [];
          per.set(ev, list);
        }
        list.push(args);
      });
    }

    function received(c: ClientSocket, ev: string): unknown[][] {
      return got.get(c)?.get(ev) ?? [];
    }

    async function client(url: string, polling: boolean): Promise<ClientSocket> {
      const c = ioClient(`${url}/ws`, {
        forceNew: true,
        reconnection: false,
        transports: polling ? ["polling"] : ["websocket"],
      });
      clients.push(c);
      record(c);
      c.on("q", (data: unknown, ack: (v: unknown) => void) => ack({ answer: 42, echo: data }));
      await new Promise<void>((resolve, reject) => {
        c.once("connect", () => resolve());
        c.once("connect_error", reject);
      });
      return c;
    }

    async function join(c: ClientSocket, room: string): Promise<void> {
      assert.equal(await c.timeout(5000).emitWithAck("join", room), "joined");
    }

    async function switchyardNode(): Promise<(typeof servers)[number]> {
      const peer = createFlaskBridge({
        url: bus.url,
        mode: "peer",
        pythonSocketIO: "5.7",
        channels: [CHANNEL],
        legacyPickle: "data-only",
      });
      const http = createServer();
      const io = new Server(http, { adapter: peer.adapter });
      io.of("/ws").on("connection", (s) => {
        s.on("join", (room: string, ack: (v: string) => void) => {
          s.join(room);
          ack("joined");
        });
      });
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      await peer.ready();
      const node = { io, peer, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` };
      servers.push(node);
      return node;
    }

    // Clients: a* on Switchyard A, b* on B, p* on Python P, q* on Python Q; *r are members of room r.
    let A: (typeof servers)[number];
    let B: (typeof servers)[number];
    let ar: ClientSocket,
      ax: ClientSocket,
      br: ClientSocket,
      pr: ClientSocket,
      px: ClientSocket,
      qr: ClientSocket;
    const members = () => [ar, br, pr, qr];

    before(async () => {
      bus = await broker.start();
      await bus.tap(CHANNEL, (body) => tapped.push(body));
      const ports = await freePorts(2);
      for (const port of ports) {
        const p = await startPython(
          PY("flask_node.py"),
          [String(port), bus.url, CHANNEL, "pickle"],
          {
            requireModules: MODULES,
          },
        );
        pythons.push(p);
        await p.waitForOutput("READY", { timeoutMs: 15000 });
        pyUrls.push(`http://127.0.0.1:${port}`);
      }
      A = await switchyardNode();
      B = await switchyardNode();
      // Python nodes bind their HTTP port a moment after READY: retry the first connects.
      const connectPy = async (url: string) => {
        for (let i = 0; i < 50; i++) {
          try {
            return await client(url, true);
          } catch {
            clients.pop();
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        throw new Error(`cannot connect to ${url}`);
      };
      pr = await connectPy(pyUrls[0]!);
      px = await connectPy(pyUrls[0]!);
      qr = await connectPy(pyUrls[1]!);
      ar = await client(A.url, false);
      ax = await client(A.url, true);
      br = await client(B.url, false);
      for (const c of [ar, br, pr, qr]) await join(c, "r");
      // The Python listeners subscribe on their first client connect.
      await bus.waitListeners(CHANNEL, 5); // 2 Python nodes, 2 Switchyard nodes, the tap
    });

    after(async () => {
      for (const c of clients) c.close();
      for (const s of servers) {
        await s.peer.close();
        await s.io.close();
      }
      for (const p of pythons) await p.stop().catch(() => p.kill());
      await bus?.stop();
    });

    async function allGot(ev: string, n: number, who = members()): Promise<void> {
      await waitFor(
        () => who.every((c) => received(c, ev).length >= n),
        10000,
        () => `${ev}: ${who.map((c) => received(c, ev).length).join("/")} of ${n}`,
      );
    }

    test("Switchyard's io.to(room).emit reaches every member on every node once, in order", async () => {
      for (let i = 0; i < 20; i++) A.io.of("/ws").to("r").emit("tick", { seq: i });
      await allGot("tick", 20);
      A.io.of("/ws").emit("end", 1); // everyone, last: the non-members had their chance
      await allGot("end", 1, [...members(), ax, px]);
      for (const c of members()) {
        assert.deepEqual(
          received(c, "tick").map(([d]) => (d as { seq: number }).seq),
          [...Array(20).keys()],
        );
      }
      assert.equal(received(ax, "tick").length, 0);
      assert.equal(received(px, "tick").length, 0);
      assert.equal(A.peer.stats.echoes, 21, "own echoes dropped");
      assert.equal(A.peer.stats.refused, 0);
    });

    test("a Python node's room emit reaches Switchyard's clients once, in order", async () => {
      for (let i = 0; i < 10; i++) {
        await pr.timeout(5000).emitWithAck("py_emit", { event: "py", data: { i }, room: "r" });
      }
      await allGot("py", 10);
      for (const c of members()) {
        assert.deepEqual(
          received(c, "py").map(([d]) => (d as { i: number }).i),
          [...Array(10).keys()],
        );
      }
    });

    test("several arguments cannot reach 5.7.2 nodes: refused, counted and reported once", async () => {
      const warned: string[] = [];
      A.peer.once("refused", (text: string) => warned.push(text));
      const before = A.peer.stats.refused;
      A.io.of("/ws").to("r").emit("multi", 1, 2);
      A.io.of("/ws").to("r").emit("multi", 1, 2);
      assert.equal(A.peer.stats.refused, before + 2);
      assert.equal(warned.length, 1);
      assert.match(warned[0]!, /2 arguments/);
      await waitFor(() => received(ar, "multi").length === 2, 5000, "local clients still get it");
    });

    test("write-only Python emitters (stock pickle read data-only, and the JSON subclass) reach every member once, in order", async () => {
      const expected: string[] = [];
      if (broker.jsonEmitter) {
        const res = await runPython(PY("emitter.py"), [bus.url, CHANNEL, "r", "5", "json"], {
          requireModules: MODULES,
          timeoutMs: 30000,
        });
        assert.equal(res.code, 0, res.stderr);
        for (const by of ["manager", "flask"])
          for (let i = 0; i < 5; i++) expected.push(`${by}${i}`);
      }
      const pickled = await runPython(PY("emitter.py"), [bus.url, CHANNEL, "r", "3", "pickle"], {
        requireModules: MODULES,
        timeoutMs: 30000,
      });
      assert.equal(pickled.code, 0, pickled.stderr);
      expected.push("flask0", "flask1", "flask2");
      await allGot("w", expected.length);
      for (const c of members()) {
        assert.deepEqual(
          received(c, "w").map(([d]) => `${(d as { by: string }).by}${(d as { seq: number }).seq}`),
          expected,
        );
      }
      assert.equal(A.peer.stats.unsupported, 0);
      assert.equal(A.peer.stats.pickleRefused, 0);
    });

    test("acks cross both ways", async () => {
      // Python → Switchyard client → back to the Python node → its client.
      assert.equal(
        await pr.timeout(5000).emitWithAck("py_ask", { sid: ar.id, data: { n: 1 } }),
        "asked",
      );
      await waitFor(
        () => received(pr, "answer").length === 1,
        5000,
        "answer from the Switchyard client",
      );
      assert.deepEqual(received(pr, "answer")[0], [[{ answer: 42, echo: { n: 1 } }]]);
      // Switchyard → Python client (held by another process) → back.
      const replies = await A.io.of("/ws").to(qr.id!).timeout(5000).emitWithAck("q", { n: 2 });
      assert.deepEqual(replies, [{ answer: 42, echo: { n: 2 } }]);
    });

    test("the encoder's output is accepted by real 5.7.2 nodes (fast-check sample), and they stay alive", async () => {
      const samples = fc.sample(fc.jsonValue({ maxDepth: 3 }), { numRuns: 25, seed: 12 });
      const seen = received(qr, "fc").length;
      for (const value of samples) {
        const out = encodePeerMessage(
          {
            method: "emit",
            event: "fc",
            args: [value],
            namespace: "/ws",
            room: qr.id!,
            skipSid: null,
            callback: null,
            hostId: B.peer.hostId,
          },
          "5.7",
        );
        assert.ok(out.ok);
        await bus.publishRaw(CHANNEL, out.bytes);
      }
      await waitFor(
        () => received(qr, "fc").length === seen + samples.length,
        10000,
        "all samples at the Python client",
      );
      const norm = (v: unknown) => JSON.parse(JSON.stringify(v ?? null));
      assert.deepEqual(
        received(qr, "fc")
          .slice(seen)
          .map((args) => norm(args.length === 0 ? null : args[0])),
        samples.map(norm),
      );
    });

    test("disconnect and close_room both ways", async () => {
      const py = await client(pyUrls[1]!, true);
      await join(py, "gone");
      const sy = await client(B.url, false);
      await join(sy, "gone");
      const bounded = (c: ClientSocket) =>
        Promise.race([
          new Promise((r) => c.once("disconnect", r)),
          new Promise((_, j) => setTimeout(() => j(new Error("no disconnect")), 5000).unref()),
        ]);
      const pyReason = bounded(py);
      A.io.of("/ws").in(py.id!).disconnectSockets();
      assert.equal(await pyReason, "io server disconnect");
      const syReason = bounded(sy);
      assert.equal(await px.timeout(5000).emitWithAck("py_disconnect", sy.id), "done");
      assert.equal(await syReason, "io server disconnect");
      // close_room from Switchyard empties the room on the Python nodes.
      const room = await client(pyUrls[0]!, true);
      await join(room, "closing");
      A.io.of("/ws").in("closing").socketsLeave("closing");
      A.io.of("/ws").to("closing").emit("late", 1);
      A.io.of("/ws").to(room.id!).emit("marker", 1);
      await waitFor(() => received(room, "marker").length === 1, 5000, "marker");
      assert.equal(received(room, "late").length, 0);
    });

    test("SIGKILL of a Python node does not disturb the Switchyard nodes", async () => {
      await pythons[1]!.kill();
      const n = received(ar, "after").length;
      for (let i = 0; i < 5; i++) B.io.of("/ws").to("r").emit("after", i);
      await allGot("after", n + 5, [ar, br, pr]);
      for (const c of [ar, br, pr])
        assert.deepEqual(
          received(c, "after").map(([d]) => d),
          [0, 1, 2, 3, 4],
        );
    });
    test("everything on the channel is a Python pickle or a JSON object with a method; all Switchyard output got there", async () => {
      const published = A.peer.stats.published + B.peer.stats.published;
      await waitFor(
        () => tapped.filter((b) => b[0] !== 0x80).length >= published,
        10000,
        () => `${tapped.filter((b) => b[0] !== 0x80).length} JSON bodies tapped of ${published}`,
      );
      const methods = new Set([
        "emit",
        "callback",
        "disconnect",
        "close_room",
        "enter_room",
        "leave_room",
      ]);
      let json = 0;
      for (const body of tapped) {
        if (body[0] === 0x80) continue;
        json++;
        const text = body.toString("utf8");
        // Switchyard writes `{"method":"…`, Python's json.dumps `{"method": "…`.
        assert.match(text, /^\{"method": ?"/, text.slice(0, 80));
        const msg = JSON.parse(text) as { method: unknown };
        assert.ok(msg !== null && typeof msg === "object" && !Array.isArray(msg));
        assert.ok(methods.has(msg.method as string), text.slice(0, 80));
      }
      assert.ok(json >= published && published > 0, `${json} JSON bodies, ${published} published`);
    });
  });
}
