/**
 * Recovery through a socket.io adapter that implements `persistSession` /
 * `restoreSession`: the official `@socket.io/redis-streams-adapter` (from npm, on a real
 * Redis from the harness) on two Switchyard processes. A real socket.io-client 4.8 client
 * reaches node A through a TCP proxy (a balancer); its connection is cut, the proxy now
 * sends new connections to node B, and the client recovers there what A broadcast while
 * it was away: the session persisted by A in Redis, the missed packets read from the
 * stream by B.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePorts,
  httpGet,
  type ManagedProcess,
  type RedisServer,
  startProcess,
  startRedis,
} from "@switchyard/test-harness";
import { client, connected, once, quietPeriod, Scope, waitFor } from "../socketio/helpers.js";
import { TcpProxy } from "./helpers.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/streams-node.ts", import.meta.url));

interface NodeStats {
  stats: { recovered: number; recoveryMisses: number; recoveryMissesError: number };
  sockets: { id: string; recovered: boolean; rooms: string[] }[];
}

async function stats(port: number): Promise<NodeStats> {
  const answer = await httpGet(`http://127.0.0.1:${port}/control/stats`);
  assert.equal(answer.status, 200);
  return JSON.parse(answer.body) as NodeStats;
}

async function broadcast(port: number, from: number, to: number): Promise<void> {
  const answer = await httpGet(`http://127.0.0.1:${port}/control/broadcast?from=${from}&to=${to}`);
  assert.equal(answer.status, 200);
}

describe("recovery through @socket.io/redis-streams-adapter, 2 Switchyard processes", () => {
  const scope = new Scope(8000);
  let redis: RedisServer;
  const ports: number[] = [];

  before(async () => {
    redis = scope.add(await startRedis(), (r) => r.stop());
    ports.push(...(await freePorts(2)));
    for (const [i, port] of ports.entries()) {
      const name = i === 0 ? "A" : "B";
      scope.add(
        await startProcess({
          command: process.execPath,
          args: [
            "--conditions=switchyard-source",
            "--import",
            "tsx",
            FIXTURE,
            name,
            String(port),
            redis.url,
          ],
          name: `streams-node-${name}`,
          ready: async () =>
            (await httpGet(`http://127.0.0.1:${port}/control/stats`)).status === 200,
          readyTimeoutMs: 30_000,
        }),
        (p: ManagedProcess) => p.stop(),
      );
    }
  });
  after(() => scope.close());

  it("a client cut from node A reconnects to node B and recovers what it missed, in order", async () => {
    const [portA, portB] = ports as [number, number];
    const proxy = await TcpProxy.start(scope, portA);
    // A witness on B: A's broadcasts have gone through the stream once it has them.
    const witness = client(scope, `http://127.0.0.1:${portB}`, { transports: ["websocket"] });
    const seen: number[] = [];
    witness.on("n", (m: { i: number }) => seen.push(m.i));
    await connected(witness);
    // The stream reader starts asynchronously: broadcast until B delivers A's packets.
    let warm = 1000;
    await waitFor(
      async () => {
        await broadcast(portA, warm, warm);
        warm++;
        await quietPeriod(50);
        return seen.length > 0;
      },
      20_000,
      "A's broadcasts reaching B",
    );

    const c = client(scope, proxy.url, { transports: ["websocket"] });
    const got: number[] = [];
    c.on("n", (m: { i: number }, offset: unknown) => {
      assert.equal(typeof offset, "string", "a stream id as the offset");
      if (m.i < 1000) got.push(m.i);
    });
    await connected(c);
    const firstId = c.id;
    await broadcast(portA, 1, 3);
    await waitFor(() => got.length === 3, 5000, "the first broadcasts");

    const clientGone = once(c, "disconnect", 5000);
    proxy.target = portB;
    proxy.cut();
    await clientGone;
    await waitFor(async () => (await stats(portA)).sockets.length === 0, 5000, "A to see it go");
    seen.length = 0;
    await broadcast(portA, 4, 6);
    await waitFor(() => seen.includes(6), 5000, "A's missed broadcasts in the stream");

    c.connect();
    await connected(c);
    assert.equal(c.recovered, true, "recovered on B");
    assert.equal(c.id, firstId, "the same socket id");
    await broadcast(portB, 7, 7);
    await waitFor(() => got.length >= 7, 5000, "the replay and the live broadcast");
    await quietPeriod(100);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
    const b = await stats(portB);
    assert.equal(b.stats.recovered, 1);
    const mine = b.sockets.find((s) => s.id === firstId);
    assert.ok(mine?.recovered === true);
    assert.ok(mine.rooms.includes("r"), "rooms restored on B");

    // A forged pid with a well-formed stream offset: a fresh session, a miss with no
    // reason (the adapter rejects with a string), not an error.
    const thief = client(scope, `http://127.0.0.1:${portB}`, {
      transports: ["websocket"],
      auth: { pid: "AAAAAAAAAAAAAAAAAAAA", offset: "1-0" },
    });
    await connected(thief);
    const after = await stats(portB);
    assert.equal(after.stats.recovered, 1);
    assert.equal(after.stats.recoveryMisses, 1);
    assert.equal(after.stats.recoveryMissesError, 0);
    assert.notEqual(thief.id, firstId);
  });
});
