// The cluster one describe() block's tests share: started before them, closed after.
import { after, before } from "node:test";

/**
 * Starts a cluster with `start` before the enclosing suite's tests and closes it after
 * them. Returns its getter, which throws if the cluster did not start (so each test fails
 * with that, not with a TypeError).
 */
export function suiteCluster<C extends { close(): unknown }>(start: () => Promise<C>): () => C {
  let cluster: C | undefined;
  before(async () => {
    cluster = await start();
  });
  after(() => cluster?.close());
  return () => {
    if (cluster === undefined) throw new Error("cluster did not start");
    return cluster;
  };
}
