/**
 * Never trust the bus: malformed, foreign, future-version and hostile messages on
 * every channel a node listens to are dropped and counted, application listeners that
 * throw are counted, and the node keeps serving.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import {
  broadcastChannel,
  controlChannel,
  emitterRequestChannel,
  encodeClusterBroadcast,
  encodeControlMessage,
} from "@switchyard/protocol";
import * as notepack from "notepack.io";
import { Scope, waitFor } from "../socketio/helpers.js";
import { peer, received, startCluster } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const np = notepack as unknown as { encode(v: unknown): Buffer };
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

describe("cluster robustness", () => {
  it("drops and counts malformed, unsupported and refused messages; keeps working", async () => {
    const { nodes, hub } = await startCluster(scope, 2, { heartbeatInterval: 60_000 });
    const [A, B] = nodes;
    const a = await peer(scope, A!, ["room"]);
    const drops: string[] = [];
    A!.adapter.on("drop", (err: Error) => drops.push(err.message));
    let sseCalls = 0;
    A!.io.on("connection", () => {
      sseCalls += 100; // must never run for a bus message
    });
    A!.io.on("legit", () => {
      sseCalls++;
    });
    const evil = hub.bus();
    scope.add(evil, (b) => b.close());
    const bc = broadcastChannel("/");
    const room = broadcastChannel("/", "room");
    const ctl = controlChannel("/");
    const self = controlChannel("/", A!.adapter.uid);
    const req = emitterRequestChannel("/");
    const malformed: [string, Buffer][] = [
      [bc, Buffer.alloc(0)],
      [bc, hex("c1")],
      [room, hex("c9 ff ff ff ff 00")],
      [bc, np.encode({ not: "an array" })],
      [bc, np.encode(["u", { type: 0, nsp: "/" }, {}])],
      [bc, np.encode(["u", { type: 2, data: [{}], nsp: "/" }, {}])],
      [
        room,
        np.encode([
          "u",
          JSON.parse('{"type":2,"data":["x"],"nsp":"/","__proto__":{"polluted":1}}'),
          {},
        ]),
      ],
      [
        bc,
        Buffer.concat([
          hex("93 a1 75 83 a4 74797065 02 a3 6e7370 a1 2f a4 64617461 92 a1 65"),
          Buffer.alloc(3000, 0x91),
          hex("c0 80"),
        ]),
      ],
      [ctl, hex("ff ff ff")],
      [ctl, np.encode({ v: 1, type: "fetch", uid: "x" })],
      [self, np.encode({ v: 1, type: "fetch-res", uid: "x", rid: "r", sockets: "nope" })],
      [req, Buffer.from("{not json")],
      [req, Buffer.from('{"type":2,"opts":{},"rooms":[1]}')],
    ];
    const unsupported: [string, Buffer][] = [
      [ctl, np.encode({ v: 2, type: "heartbeat", uid: "future-node" })],
      [ctl, np.encode({ v: 1, type: "gossip", uid: "x" })],
      [req, Buffer.from('{"uid":"sio-node","type":0,"requestId":"1","opts":{}}')],
      [
        bc,
        encodeClusterBroadcast({
          uid: "x",
          packet: { type: 2, nsp: "/other", data: ["leak"] },
          opts: { rooms: [], except: [], flags: {} },
        }),
      ],
    ];
    const refused: [string, Buffer][] = [
      [ctl, encodeControlMessage({ type: "emit", uid: "x", data: ["connection", 1] })],
      [ctl, encodeControlMessage({ type: "emit", uid: "x", data: ["error", 1] })],
      [req, Buffer.from('{"uid":"emitter","type":6,"data":["newListener","x"]}')],
    ];
    const before = { ...A!.adapter.stats };
    for (const [ch, bytes] of [...malformed, ...unsupported, ...refused]) evil.publish(ch, bytes);
    // A late response for a request nobody made is normal, not a drop.
    evil.publish(
      self,
      encodeControlMessage({ type: "emit-res", uid: "x", rid: "no-such", args: [] }),
    );
    evil.publish(ctl, encodeControlMessage({ type: "emit", uid: "x", data: ["legit"] }));
    await waitFor(() => sseCalls === 1, 3000, "the legit serverSideEmit");
    const s = A!.adapter.stats;
    assert.equal(s.malformed - before.malformed, malformed.length, drops.join("\n"));
    assert.equal(s.unsupported - before.unsupported, unsupported.length, drops.join("\n"));
    assert.equal(s.refused - before.refused, refused.length);
    assert.equal(
      s.dropped - before.dropped,
      malformed.length + unsupported.length + refused.length,
    );
    assert.equal(drops.length, malformed.length + unsupported.length + refused.length);
    assert.equal(sseCalls, 1);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(received(a, "leak").length, 0);
    // Nothing was delivered from the junk, and the cluster still works both ways.
    B!.io.to("room").emit("still-alive");
    await waitFor(
      () => received(a, "still-alive").length === 1,
      3000,
      "a broadcast after the junk",
    );
    assert.deepEqual(
      a.got.map((g) => g.ev).filter((e) => e !== "still-alive"),
      [],
    );
    assert.equal(await A!.adapter.serverCount(), 2, "the future-version node was not counted");
  });

  it("a throwing serverSideEmit listener is counted, not fatal", async () => {
    const { nodes } = await startCluster(scope, 2);
    const [A, B] = nodes;
    B!.io.on("boom", () => {
      throw new Error("app bug");
    });
    const errors: string[] = [];
    B!.adapter.on("drop", (err: Error) => errors.push(err.message));
    A!.io.serverSideEmit("boom");
    await waitFor(() => B!.adapter.stats.handlerErrors === 1, 3000, "the handler error");
    assert.deepEqual(errors, ["app bug"]);
    let ok = false;
    B!.io.on("fine", () => {
      ok = true;
    });
    A!.io.serverSideEmit("fine");
    await waitFor(() => ok, 3000, "the next serverSideEmit");
  });

  it("a socket whose data cannot travel is still fetched (without its data)", async () => {
    const { nodes } = await startCluster(scope, 2);
    const [A, B] = nodes;
    const good = await peer(scope, B!);
    const bad = await peer(scope, B!);
    good.socket.data = { ok: 1 };
    bad.socket.data = { big: 10n };
    const found = await A!.io.fetchSockets();
    const byId = new Map(found.map((s) => [s.id, s]));
    assert.deepEqual(byId.get(good.socket.id)?.data, { ok: 1 });
    assert.equal(byId.get(bad.socket.id)?.data, null);
    assert.deepEqual([...byId.get(bad.socket.id)!.rooms], [bad.socket.id]);
  });
});
