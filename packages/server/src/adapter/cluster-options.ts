/**
 * Options of the cluster adapter: one interface with a doc line and default per field,
 * validated once in `createAdapter()`, then frozen.
 */
import { InvalidOptionError } from "../errors.js";
import { checkOptionKeys, type OptionKeys, positiveInt } from "../options.js";
import type { RecoveryLog } from "./recovery-log.js";

/** Options of {@link createAdapter} / `ClusterAdapter`. */
export interface ClusterAdapterOptions {
  /** Milliseconds between the heartbeats a node publishes for each of its namespaces. @default 5000 */
  heartbeatInterval?: number;
  /**
   * Milliseconds without any message from a node after which it counts as dead (left
   * out of `serverCount()` and of requests). At least `heartbeatInterval`.
   * @default 2 × heartbeatInterval
   */
  heartbeatTimeout?: number;
  /** Milliseconds a request (fetchSockets, serverSideEmit with ack, broadcast-ack count) waits for live nodes. @default 5000 */
  requestsTimeout?: number;
  /**
   * A durable log for connection state recovery across nodes (e.g. `@switchyard/redis`'s
   * `RedisRecoveryLog`): with `connectionStateRecovery` on, a client whose node died
   * recovers on another node. Without it, a client recovers only on the node it left
   * (docs/recovery.md). @default undefined
   */
  recovery?: RecoveryLog;
}

const CLUSTER_KEYS: OptionKeys = Object.freeze({
  heartbeatInterval: true,
  heartbeatTimeout: true,
  requestsTimeout: true,
  recovery: true,
  key: {
    note: 'channels use the "socket.io" prefix (the default of @socket.io/redis-adapter), so emitters interoperate',
    accepts: (v: unknown) => v === "socket.io",
  },
} satisfies Record<keyof ClusterAdapterOptions, true> & OptionKeys);

/** {@link ClusterAdapterOptions} after validation. */
export interface ResolvedClusterOptions {
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly requestsTimeout: number;
  /** Absent without a log. */
  readonly recovery?: RecoveryLog;
}

/** Validates `opts` (InvalidOptionError naming the option) and returns the frozen result. */
export function resolveClusterOptions(opts: ClusterAdapterOptions = {}): ResolvedClusterOptions {
  if (typeof opts !== "object" || opts === null) {
    throw new InvalidOptionError("options", "an object", opts);
  }
  checkOptionKeys(opts, CLUSTER_KEYS);
  const heartbeatInterval = positiveInt("heartbeatInterval", opts.heartbeatInterval ?? 5000);
  const heartbeatTimeout = positiveInt(
    "heartbeatTimeout",
    opts.heartbeatTimeout ?? 2 * heartbeatInterval,
  );
  if (heartbeatTimeout < heartbeatInterval) {
    throw new InvalidOptionError(
      "heartbeatTimeout",
      `at least heartbeatInterval (${heartbeatInterval})`,
      heartbeatTimeout,
    );
  }
  const requestsTimeout = positiveInt("requestsTimeout", opts.requestsTimeout ?? 5000);
  const recovery = opts.recovery;
  if (
    recovery !== undefined &&
    (typeof recovery !== "object" || recovery === null || typeof recovery.open !== "function")
  ) {
    throw new InvalidOptionError(
      "recovery",
      "a RecoveryLog (e.g. new RedisRecoveryLog(…))",
      recovery,
    );
  }
  const resolved: ResolvedClusterOptions = { heartbeatInterval, heartbeatTimeout, requestsTimeout };
  return Object.freeze(recovery === undefined ? resolved : { ...resolved, recovery });
}
