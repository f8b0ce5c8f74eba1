/**
 * `@switchyard/redis`: a Switchyard cluster bus over Redis pub/sub, and a Redis Streams
 * log for connection state recovery across nodes.
 */

export type { RedisRecoveryLogOptions } from "./recovery-log.js";
export { RedisRecoveryLog } from "./recovery-log.js";
export type {
  RedisBusClientOptions,
  RedisBusOptions,
  RedisBusStats,
  RedisBusUrlOptions,
} from "./redis-bus.js";
export { RedisBus } from "./redis-bus.js";
