/**
 * The official `@socket.io/postgres-adapter` (from npm, unchanged) between 3 Switchyard
 * processes over a real PostgreSQL started by the harness, with real socket.io-client 4.8
 * clients on every node: see official-adapter-suite.ts for what is checked. Then
 * `connectionStateRecovery` with this adapter, which cannot recover (it has no
 * persistSession/restoreSession and publishes no offsets): Switchyard must do exactly what
 * socket.io 4.8 does, compared run against run.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type PostgresServer, Scope, startPostgres, waitFor } from "@switchyard/test-harness";
import { io as connect } from "socket.io-client";
import {
  AdapterNode,
  nodeLossTest,
  officialAdapterTests,
  startCluster,
} from "./official-adapter-suite.js";
import { suiteCluster } from "./suite-cluster.js";

const ATTACHMENTS_TABLE = `
  CREATE TABLE IF NOT EXISTS socket_io_attachments (
      id          bigserial UNIQUE,
      created_at  timestamptz DEFAULT NOW(),
      payload     bytea
  );
`;

describe("@socket.io/postgres-adapter on 3 Switchyard processes", () => {
  const started = suiteCluster(() =>
    startCluster({
      adapter: "postgres",
      async startBroker(scope) {
        const db = scope.add(await startPostgres(), (x) => x.stop());
        // The table for binary and large payloads, as the adapter's README creates it.
        await db.query(ATTACHMENTS_TABLE);
        return db.url;
      },
      // Requests wait for every node the heartbeats have seen: make them quick.
      options: { heartbeatInterval: 1000, heartbeatTimeout: 3000 },
    }),
  );
  officialAdapterTests(test, started);
  nodeLossTest(test, started);
});

/** What one client saw around a cut of its transport, on 2 nodes with recovery on. */
interface RecoveryTranscript {
  recoveredAtFirst: boolean;
  recoveredAfterCut: boolean;
  sameIdAfterCut: boolean;
  disconnectReason: string;
  /** Full argument lists of `tick` (before the cut) and `after` (after it), sorted. */
  ticks: string[];
  after: string[];
}

async function recoveryTranscript(
  db: PostgresServer,
  server: "switchyard" | "socketio",
): Promise<RecoveryTranscript> {
  const scope = new Scope(8000);
  try {
    const nodes = ["A", "B"].map((name) =>
      scope.add(
        new AdapterNode({
          name,
          adapter: "postgres",
          url: db.url,
          server,
          // A channel of its own per run: the two runs never hear each other.
          options: { heartbeatInterval: 1000, heartbeatTimeout: 3000, channelPrefix: server },
          connectionStateRecovery: { maxDisconnectionDuration: 30_000 },
        }),
        (n) => n.stop(),
      ),
    );
    const [a, b] = nodes as [AdapterNode, AdapterNode];
    await Promise.all(nodes.map((n) => n.ready));
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.call<number>("serverCount")))).every((x) => x === 2),
      20_000,
      "both nodes counting 2 servers",
    );
    const client = scope.add(
      connect(a.url, {
        transports: ["websocket"],
        forceNew: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 200,
      }),
      (c) => c.close(),
    );
    const seen: { event: string; args: unknown[] }[] = [];
    client.onAny((event: string, ...args: unknown[]) => seen.push({ event, args }));
    let connects = 0;
    let disconnectReason = "";
    client.on("connect", () => {
      connects++;
    });
    client.on("disconnect", (reason) => {
      disconnectReason = reason;
    });
    await waitFor(() => connects === 1, 10_000, "first connect");
    const recoveredAtFirst = client.recovered;
    const firstId = client.id;
    const from = (event: string, node: string) =>
      seen.filter((e) => e.event === event && (e.args[0] as { node?: string })?.node === node);
    await waitFor(
      async () => {
        await Promise.all(nodes.map((n) => n.call("broadcast", { event: "warm", n: 1 })));
        await new Promise((r) => setTimeout(r, 100));
        return from("warm", "A").length > 0 && from("warm", "B").length > 0;
      },
      20_000,
      "broadcasts of both nodes reaching the client",
    );
    const all = (event: string) =>
      seen
        .filter((e) => e.event === event)
        .map((e) => JSON.stringify(e.args))
        .sort();

    await a.call("broadcast", { event: "tick", n: 2 });
    await b.call("broadcast", { event: "tick", n: 2 });
    await waitFor(() => all("tick").length === 4, 10_000, "4 ticks");

    // The cut: the client's WebSocket closes under it; it reconnects by itself.
    client.io.engine.close();
    await waitFor(() => connects === 2, 15_000, "reconnect");
    const recoveredAfterCut = client.recovered;
    const sameIdAfterCut = client.id === firstId;
    await a.call("broadcast", { event: "after", n: 1 });
    await b.call("broadcast", { event: "after", n: 1 });
    await waitFor(() => all("after").length === 2, 10_000, "2 broadcasts after the cut");
    return {
      recoveredAtFirst,
      recoveredAfterCut,
      sameIdAfterCut,
      disconnectReason,
      ticks: all("tick"),
      after: all("after"),
    };
  } finally {
    await scope.close();
  }
}

describe("connectionStateRecovery with @socket.io/postgres-adapter (which cannot recover)", () => {
  test("Switchyard does what socket.io 4.8 does: a fresh session after a cut, the same arguments", async (t) => {
    const db = await startPostgres();
    t.after(() => db.stop());
    await db.query(ATTACHMENTS_TABLE);
    const reference = await recoveryTranscript(db, "socketio");
    const ours = await recoveryTranscript(db, "switchyard");
    t.diagnostic(`socket.io: ${JSON.stringify(reference)}`);
    assert.deepEqual(ours, reference);
    // What that is: never recovered, a new id, the payload first in every event.
    assert.equal(ours.recoveredAfterCut, false);
    assert.equal(ours.sameIdAfterCut, false);
    assert.equal(ours.ticks.length, 4);
  });
});
