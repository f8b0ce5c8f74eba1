/**
 * The outbound counters metrics read: `io.engine.stats` (packets and bytes out, broadcasts
 * and deliveries, bumped by the outbox) and `io.stats` (acks received, ack timeouts,
 * bumped by sockets), moved by real socket.io-client clients.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import type { Socket } from "@switchyard/server";
import type { Socket as ClientSocket } from "socket.io-client";
import { once, pair, Scope, startServer, TRANSPORT_MODES, waitFor } from "./helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

/** Adds up the Engine.IO message payloads (text length + 1, as the server counts) the client reads. */
function meter(c: ClientSocket): { messages: number; bytes: number } {
  const got = { messages: 0, bytes: 0 };
  c.io.engine.on("packet", (p: { type: string; data?: unknown }) => {
    if (p.type !== "message") return;
    got.messages++;
    const d = p.data;
    got.bytes += typeof d === "string" ? d.length + 1 : (d as ArrayBuffer).byteLength;
  });
  return got;
}

for (const mode of TRANSPORT_MODES) {
  describe(`outbound stats (${mode.name})`, () => {
    it("N broadcasts to M clients: N broadcasts, N·M deliveries, bytes out ≥ bytes received", async () => {
      const srv = await startServer(scope);
      const M = 3;
      const N = 7;
      const clients: ClientSocket[] = [];
      for (let i = 0; i < M; i++) clients.push((await pair(scope, srv, mode)).client);
      const meters = clients.map(meter);
      const counts = clients.map(() => 0);
      for (let i = 0; i < M; i++)
        clients[i]!.on("tick", () => {
          counts[i]!++;
        });
      const s = srv.io.engine.stats;
      const before = { ...s };
      const payload = "é".repeat(10) + "x".repeat(200);
      for (let i = 0; i < N; i++) srv.io.emit("tick", i, payload);
      await waitFor(() => counts.every((n) => n === N), 3000, "every client to get every tick");
      assert.equal(s.broadcasts - before.broadcasts, N);
      assert.equal(s.deliveries - before.deliveries, N * M);
      const received = meters.reduce((a, m) => a + m.messages, 0);
      const receivedBytes = meters.reduce((a, m) => a + m.bytes, 0);
      assert.ok(received >= N * M);
      assert.ok(s.packetsOut - before.packetsOut >= received, "packets out ≥ packets received");
      assert.ok(s.bytesOut - before.bytesOut >= receivedBytes, "bytes out ≥ bytes received");
      assert.ok(receivedBytes >= N * M * payload.length);
    });
  });
}

describe("outbound stats: binary and unicast", () => {
  it("a unicast with a binary attachment counts its packets and bytes, not a broadcast", async () => {
    const srv = await startServer(scope);
    const { client: c, socket } = await pair(scope, srv, TRANSPORT_MODES[0]!);
    const m = meter(c);
    const s = srv.io.engine.stats;
    const before = { ...s };
    const got = once<[ArrayBuffer]>(c, "bin");
    socket.emit("bin", Buffer.alloc(5000, 7));
    await got;
    assert.equal(s.broadcasts, before.broadcasts);
    assert.equal(s.deliveries, before.deliveries);
    assert.ok(s.packetsOut - before.packetsOut >= 2, "header and attachment");
    assert.ok(s.bytesOut - before.bytesOut >= 5000);
    assert.ok(s.bytesOut - before.bytesOut >= m.bytes);
  });
});

describe("ack stats", () => {
  it("acks received: from one socket and from every client of a broadcast with ack", async () => {
    const srv = await startServer(scope);
    const pairs: { client: ClientSocket; socket: Socket }[] = [];
    for (let i = 0; i < 2; i++) pairs.push(await pair(scope, srv, TRANSPORT_MODES[0]!));
    for (const { client } of pairs)
      client.on("q", (x: number, ack: (y: number) => void) => ack(x + 1));
    const before = { ...srv.io.stats };
    assert.equal(await pairs[0]!.socket.emitWithAck("q", 1), 2);
    assert.equal(srv.io.stats.acksReceived - before.acksReceived, 1);
    const answers = await srv.io.timeout(3000).emitWithAck("q", 10);
    assert.deepEqual(answers, [11, 11]);
    assert.equal(srv.io.stats.acksReceived - before.acksReceived, 3);
    assert.equal(srv.io.stats.ackTimeouts, before.ackTimeouts);
  });

  it("ack timeouts: a socket emit with timeout(), and each silent client of a timed broadcast", async () => {
    const srv = await startServer(scope);
    const pairs: { client: ClientSocket; socket: Socket }[] = [];
    for (let i = 0; i < 2; i++) pairs.push(await pair(scope, srv, TRANSPORT_MODES[0]!));
    let seen = 0;
    for (const { client } of pairs)
      client.on("silent", () => {
        seen++; // never acks
      });
    const before = { ...srv.io.stats };
    await assert.rejects(pairs[0]!.socket.timeout(50).emitWithAck("silent"), {
      name: "AckTimeoutError",
    });
    assert.equal(srv.io.stats.ackTimeouts - before.ackTimeouts, 1);
    await assert.rejects(srv.io.timeout(50).emitWithAck("silent"));
    await waitFor(
      () => srv.io.stats.ackTimeouts - before.ackTimeouts === 3,
      3000,
      "both silent clients of the broadcast to be counted",
    );
    assert.equal(seen, 3);
    assert.equal(srv.io.stats.acksReceived, before.acksReceived);
  });
});
