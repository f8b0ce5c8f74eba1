/**
 * `except` on the big-broadcast path: a broadcast reaching 256 or more sockets goes
 * through the delivery queue with a recipient list fixed at emit time (and reused while
 * a room's membership stays the same). What a user notices if that list forgets the
 * exclusions: `socket.to(room)` / `socket.broadcast` in a big room echo back to the
 * sender, and `io.except(...)` reaches the excluded. 300 real clients, one room.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Server, Socket } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import { connect, Scope, startServer, waitFor } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** More than the delivery queue's threshold (256). */
const ROOM_SIZE = 300;
/** Clients also in the room "muted". */
const MUTED = 10;

interface Member {
  client: ClientSocket;
  socket: Socket;
  got: string[];
}

async function crowd(url: string, io: Server): Promise<Member[]> {
  io.on("connection", (s: Socket) => {
    s.join("big");
  });
  const clients: ClientSocket[] = [];
  for (let i = 0; i < ROOM_SIZE; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, ROOM_SIZE - i) }, () =>
        connect(scope, url, { transports: ["websocket"] }, 10_000),
      ),
    );
    clients.push(...batch);
  }
  await waitFor(
    () => (io.of("/").adapter.rooms.get("big")?.size ?? 0) === ROOM_SIZE,
    5000,
    "every client in the room",
  );
  return clients.map((client, i) => {
    const socket = io.of("/").sockets.get(client.id!);
    assert.ok(socket, `server-side socket of client ${i}`);
    if (i < MUTED) socket.join("muted");
    const got: string[] = [];
    client.onAny((ev: string) => got.push(ev));
    return { client, socket, got };
  });
}

function who(members: readonly Member[], ev: string): number[] {
  return members.flatMap((m, i) => (m.got.includes(ev) ? [i] : []));
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

describe("except on broadcasts to 256+ sockets (the delivery queue)", () => {
  it("socket.to(room), socket.broadcast, io.except and to().except leave out the excluded", async () => {
    const srv = await startServer(scope);
    const members = await crowd(srv.url, srv.io);
    const sender = members[42]!;
    const other = members[200]!;

    // A plain broadcast first: the room's recipient list now exists and is reused while
    // membership stays the same — an exclusion must not take that shortcut.
    srv.io.to("big").emit("warm");
    sender.socket.to("big").emit("from-sender");
    sender.socket.broadcast.emit("broadcast");
    srv.io.except("muted").emit("not-muted");
    srv.io.to("big").except("muted").emit("big-not-muted");
    srv.io.to("big").except(other.socket.id).emit("not-other");
    srv.io.except([sender.socket.id, other.socket.id]).emit("neither");
    srv.io.to("big").emit("end");

    await waitFor(
      () => members.every((m) => m.got.includes("end")),
      10_000,
      "the final broadcast at every client",
    );
    const all = range(0, ROOM_SIZE);
    assert.deepEqual(who(members, "warm"), all);
    assert.deepEqual(
      who(members, "from-sender"),
      all.filter((i) => i !== 42),
      "socket.to(room) must not reach the sender",
    );
    assert.deepEqual(
      who(members, "broadcast"),
      all.filter((i) => i !== 42),
      "socket.broadcast must not reach the sender",
    );
    assert.deepEqual(who(members, "not-muted"), range(MUTED, ROOM_SIZE));
    assert.deepEqual(who(members, "big-not-muted"), range(MUTED, ROOM_SIZE));
    assert.deepEqual(
      who(members, "not-other"),
      all.filter((i) => i !== 200),
    );
    assert.deepEqual(
      who(members, "neither"),
      all.filter((i) => i !== 42 && i !== 200),
    );
    // Each event once, in the order it was sent.
    for (const m of members) {
      assert.equal(new Set(m.got).size, m.got.length, "no event twice");
      assert.equal(m.got[0], "warm");
      assert.equal(m.got.at(-1), "end");
    }
  });
});
