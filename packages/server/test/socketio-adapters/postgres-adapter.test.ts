/**
 * The official `@socket.io/postgres-adapter` (from npm, unchanged) between 3 Switchyard
 * processes over a real PostgreSQL started by the harness, with real socket.io-client 4.8
 * clients on every node: see official-adapter-suite.ts for what is checked.
 */
import { after, before, describe, test } from "node:test";
import { startPostgres } from "@switchyard/test-harness";
import { nodeLossTest, officialAdapterTests, startCluster } from "./official-adapter-suite.js";

describe("@socket.io/postgres-adapter on 3 Switchyard processes", () => {
  let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;

  before(async () => {
    cluster = await startCluster({
      adapter: "postgres",
      async startBroker(scope) {
        const db = scope.add(await startPostgres(), (x) => x.stop());
        // The table for binary and large payloads, as the adapter's README creates it.
        await db.query(`
          CREATE TABLE IF NOT EXISTS socket_io_attachments (
              id          bigserial UNIQUE,
              created_at  timestamptz DEFAULT NOW(),
              payload     bytea
          );
        `);
        return db.url;
      },
      // Requests wait for every node the heartbeats have seen: make them quick.
      options: { heartbeatInterval: 1000, heartbeatTimeout: 3000 },
    });
  });
  after(() => cluster?.close());

  const started = () => {
    if (cluster === undefined) throw new Error("cluster did not start");
    return cluster;
  };
  officialAdapterTests(test, started);
  nodeLossTest(test, started);
});
