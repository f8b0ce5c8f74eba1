/**
 * Cluster variants of the Switchyard app beyond our own adapter over Redis/RabbitMQ
 * (`apps/switchyard.ts` asks here for any other `BENCH_BUS`):
 *
 * - `sioredis`: the official `@socket.io/redis-adapter` over ioredis, exactly as a
 *   socket.io app configures it (`createAdapter(pub, sub)`): a socket.io cluster that
 *   only changed its import.
 * - `redisfwd`: our ClusterAdapter over RedisBus, with session forwarding on (same bus,
 *   a fixed secret). The bench's clients are WebSocket-only, so nothing is forwarded:
 *   this measures what merely having forwarding on costs the broadcast path.
 */

/** Server options for the cluster variant `bus` on the broker at `url`. */
export async function clusterVariantOptions(bus: string, url: string): Promise<object> {
  if (bus === "sioredis") {
    const { createAdapter } = await import("@socket.io/redis-adapter");
    const { Redis } = await import("ioredis");
    const pub = new Redis(url);
    const sub = pub.duplicate();
    return { adapter: createAdapter(pub, sub) };
  }
  if (bus === "redisfwd") {
    const { createAdapter } = await import("@switchyard/server");
    const { RedisBus } = await import("@switchyard/redis");
    const redisBus = new RedisBus({ url });
    return {
      adapter: createAdapter(redisBus),
      forwarding: { bus: redisBus, secret: "switchyard-bench-cluster-forwarding" },
    };
  }
  throw new Error(`switchyard app: no adapter for BENCH_BUS=${bus}`);
}
