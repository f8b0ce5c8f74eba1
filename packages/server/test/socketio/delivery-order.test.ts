/**
 * Broadcasts to many sockets are delivered over several event-loop turns (the delivery
 * queue); these tests check what that must not change: each client's order of packets
 * (broadcasts, unicasts, acks, DISCONNECT) is the order the server sent them in, a
 * `disconnect(true)` or session close never overtakes what was sent before it, sockets
 * that leave the room after the emit still get it, later joiners do not, and volatile
 * broadcasts still skip a polling client that is not ready.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import {
  connect,
  once,
  pair,
  reason,
  Scope,
  startServer,
  TRANSPORT_MODES,
  waitFor,
} from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** More than the queue's threshold (256), so room broadcasts go through the queue. */
const ROOM_SIZE = 300;

/** Connects `n` websocket clients in parallel (bounded), each joining `room` and recording `log`. */
async function crowd(
  url: string,
  n: number,
  room: string,
  io: import("@switchyard/server").Server,
) {
  const logs = new Map<ClientSocket, unknown[]>();
  io.on("connection", (s: Socket) => {
    s.join(room);
  });
  const clients: ClientSocket[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, () =>
        connect(scope, url, { transports: ["websocket"] }, 10_000),
      ),
    );
    for (const c of batch) {
      const log: unknown[] = [];
      c.onAny((ev: string, v: unknown) => log.push(`${ev}:${String(v)}`));
      logs.set(c, log);
      clients.push(c);
    }
  }
  await waitFor(() => (io.of("/").adapter.rooms.get(room)?.size ?? 0) === n, 5000, "all joined");
  return { clients, logs };
}

describe("delivery queue", () => {
  it("keeps each client's order across queued broadcasts, unicasts and disconnect(true)", async () => {
    const srv = await startServer(scope);
    const { clients, logs } = await crowd(srv.url, ROOM_SIZE, "r", srv.io);
    const victim = clients[7]!;
    const victimSocket = srv.io.of("/").sockets.get(victim.id!)!;
    const closed = reason(victim, 5000);
    // One synchronous block: the first broadcast queues, everything after it must follow.
    srv.io.to("r").emit("b", 1);
    victimSocket.emit("u", 2);
    srv.io.to("r").emit("b", 3);
    victimSocket.emit("u", 4);
    victimSocket.disconnect(true);
    srv.io.to("r").emit("b", 5);
    assert.equal(await closed, "io server disconnect");
    assert.deepEqual(logs.get(victim), ["b:1", "u:2", "b:3", "u:4"]);
    const others = clients.filter((c) => c !== victim);
    await waitFor(() => others.every((c) => logs.get(c)!.length === 3), 5000, "all got 3");
    for (const c of others) assert.deepEqual(logs.get(c), ["b:1", "b:3", "b:5"]);
  });

  it("recipients are fixed at emit: a socket leaving afterwards still gets it, a later joiner does not", async () => {
    const srv = await startServer(scope);
    const { clients, logs } = await crowd(srv.url, ROOM_SIZE, "r", srv.io);
    const leaver = srv.io.of("/").sockets.get(clients[3]!.id!)!;
    const late = await connect(scope, srv.url, { transports: ["websocket"] });
    const lateLog: unknown[] = [];
    late.onAny((ev: string, v: unknown) => lateLog.push(`${ev}:${String(v)}`));
    const lateSocket = srv.io.of("/").sockets.get(late.id!)!;
    lateSocket.leave("r"); // the crowd's connection handler joined it
    srv.io.to("r").emit("b", 1);
    leaver.leave("r");
    lateSocket.join("r");
    srv.io.to("r").emit("b", 2);
    await waitFor(() => lateLog.length === 1, 5000, "late joiner got the second");
    assert.deepEqual(lateLog, ["b:2"]);
    await waitFor(() => logs.get(clients[3]!)!.length === 1, 5000, "leaver got the first");
    assert.deepEqual(logs.get(clients[3]!), ["b:1"]);
  });

  it("acks and server close behind a queued broadcast; polling clients are served from the queue", async () => {
    const srv = await startServer(scope);
    const { logs } = await crowd(srv.url, ROOM_SIZE, "r", srv.io);
    const poller = await pair(scope, srv, TRANSPORT_MODES[1]!);
    poller.socket.join("r");
    const pollLog: unknown[] = [];
    poller.client.onAny((ev: string, v: unknown) => pollLog.push(`${ev}:${String(v)}`));
    poller.socket.on("ping?", (ack: (x: string) => void) => {
      srv.io.to("r").emit("b", "before-ack");
      ack("pong");
    });
    const answer = await poller.client.timeout(5000).emitWithAck("ping?");
    assert.equal(answer, "pong");
    // The ack was sent after the broadcast was queued, so the broadcast reached the client first.
    assert.deepEqual(pollLog, ["b:before-ack"]);
    await waitFor(
      () => [...logs.values()].every((l) => l.length === 1),
      5000,
      "websocket clients got it",
    );
    // Closing the server delivers what is queued, then closes every session.
    const closed = once(poller.client, "disconnect", 5000);
    srv.io.to("r").emit("b", "last");
    await srv.io.close();
    await closed;
    assert.deepEqual(pollLog, ["b:before-ack", "b:last"]);
  });
});
