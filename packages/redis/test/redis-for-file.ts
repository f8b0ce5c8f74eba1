// One redis-server for a test file, with an admin client for the checks the tests make
// on it (keys, stream lengths, ACLs, INFO).
import { after, before } from "node:test";
import { type RedisServer, startRedis } from "@switchyard/test-harness";
import { Redis } from "ioredis";

export interface RedisForFile {
  /** Set once the file's `before` hook ran. */
  redis: RedisServer;
  /** Set once the file's `before` hook ran. */
  admin: Redis;
}

/** Starts a redis-server and an admin client before the file's tests; stops both after them. */
export function redisForFile(): RedisForFile {
  const env = {} as RedisForFile;
  before(async () => {
    env.redis = await startRedis();
    env.admin = new Redis(env.redis.url);
  });
  after(async () => {
    env.admin?.disconnect();
    await env.redis?.stop();
  });
  return env;
}
