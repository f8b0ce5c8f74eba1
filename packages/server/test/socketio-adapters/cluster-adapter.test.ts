/**
 * The official `@socket.io/cluster-adapter` 0.3 (from npm, unchanged) across `node:cluster`
 * workers: a primary forked by the test runs its `setupPrimary()` and forks 3 workers,
 * each a Switchyard server with `io.adapter(createAdapter())` on a port of its own (so
 * polling needs no sticky sessions here), with real socket.io-client 4.8 clients on every
 * worker. The checks of official-adapter-suite.ts. The primary forks its workers with
 * `serialization: "advanced"`: the adapter's messages cross the IPC channels, and the
 * default (JSON) would turn a binary payload's Buffer into `{ type: "Buffer", data }` —
 * on socket.io's own Server as well.
 */
import { after, before, describe, test } from "node:test";
import { startSioCluster, type TestCluster } from "./helpers.js";
import { nodeLossTest, officialAdapterTests } from "./official-adapter-suite.js";

describe("@socket.io/cluster-adapter across 3 node:cluster workers", () => {
  let cluster: TestCluster | undefined;

  before(async () => {
    cluster = await startSioCluster({ nodeCluster: 3 });
  });
  after(() => cluster?.close());

  const started = () => {
    if (cluster === undefined) throw new Error("cluster did not start");
    return cluster;
  };
  officialAdapterTests(test, started);
  // Last: it SIGKILLs node C.
  nodeLossTest(test, started as never); // typed for startCluster's nodes; it needs kill()
});
