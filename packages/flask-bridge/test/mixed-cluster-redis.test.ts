/** The mixed cluster (mixed-cluster.ts) on real Redis: SUBSCRIBE/PUBLISH on "flask-socketio". */
import { redisCommand, startRedis, waitFor } from "@switchyard/test-harness";
import { Redis } from "ioredis";
import { mixedCluster } from "./mixed-cluster.js";

mixedCluster({
  name: "Redis",
  modules: ["redis"],
  jsonEmitter: true,
  async start() {
    const redis = await startRedis();
    const raw = new Redis(redis.url);
    const sub = new Redis(redis.url);
    return {
      url: redis.url,
      waitListeners: (channel, n) =>
        waitFor(
          async () => {
            const reply = (await redisCommand(redis.port, [
              "PUBSUB",
              "NUMSUB",
              channel,
            ])) as unknown[];
            return Number(reply[1]) >= n;
          },
          10000,
          `${n} subscribers on ${channel}`,
        ),
      publishRaw: async (channel, body) => {
        await raw.publish(channel, body);
      },
      tap: async (channel, onBody) => {
        sub.on("messageBuffer", (ch: Buffer, body: Buffer) => {
          if (ch.toString() === channel) onBody(body);
        });
        await sub.subscribe(channel);
      },
      stop: async () => {
        sub.disconnect();
        raw.disconnect();
        await redis.stop();
      },
    };
  },
});
