/**
 * `@switchyard/redis`: a Switchyard cluster bus over Redis pub/sub.
 */
export type {
  RedisBusClientOptions,
  RedisBusOptions,
  RedisBusStats,
  RedisBusUrlOptions,
} from "./redis-bus.js";
export { RedisBus } from "./redis-bus.js";
