/**
 * The server API area of `switchyard serve`: HTTP `/api/v1/…` (publish, batch, join, leave,
 * disconnect, rooms, sockets, presence; OpenAPI 3.1 at `/api/v1/openapi.json`) with scoped
 * API keys, and the same write operations over the broker channel.
 */
import type { ServeContext } from "../context.js";
import { metricsFor } from "../metrics/index.js";
import { type ApiBrokerStats, idempotencyChannel, startBrokerApi } from "./broker.js";
import type { ApiConfig } from "./config.js";
import { type ApiHttpStats, createApiHandler } from "./http.js";
import { IdempotencyWindow } from "./idempotency.js";
import { BadKeyLimiter, KeyRing } from "./keys.js";
import { API_PREFIX, openApiDocument } from "./openapi.js";
import { ApiOperations, type OperationStats } from "./operations.js";

export type { ApiBrokerStats } from "./broker.js";
export { idempotencyChannel } from "./broker.js";
export type { ApiConfig, ApiScope } from "./config.js";
export { API_SCOPES, apiSchema } from "./config.js";
export { ApiError, ApiErrorCode } from "./errors.js";
export type { ApiHttpStats } from "./http.js";
export type { ApiRoute } from "./openapi.js";
export { API_PREFIX, API_ROUTES, openApiDocument } from "./openapi.js";
export type { OperationStats } from "./operations.js";

/** The version of the API document (`info.version`); bumped when the API changes. */
export const API_VERSION = "1.0.0";

/** Every counter of the API area (read by metrics). */
export interface ApiStats {
  readonly http: ApiHttpStats;
  readonly broker: ApiBrokerStats;
  readonly operations: OperationStats;
}

/** What {@link installApi} returns: the counters, the document, and close(). */
export interface ApiHandle {
  readonly stats: ApiStats;
  readonly document: Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * Installs the API on `ctx`: registers `/api/v1` with `ctx.route` and, when a bus is
 * configured and `broker.enabled`, subscribes to the operations channel. Throws (naming
 * the key) when a `keyEnv` variable is unset.
 */
export async function installApi(ctx: ServeContext, config: ApiConfig): Promise<ApiHandle> {
  const log = ctx.log.child({ area: "api" });
  const stats: ApiStats = {
    http: { requests: {}, unauthorized: 0, rateLimited: 0, forbidden: 0 },
    broker: { applied: 0, invalid: 0 },
    operations: { published: 0, duplicates: 0, joins: 0, leaves: 0, disconnects: 0 },
  };
  const document = openApiDocument(API_VERSION);
  if (!config.enabled) return { stats, document, close: async () => {} };

  const keys = new KeyRing(config.keys);
  if (keys.size === 0)
    log.warn("api: no API keys configured (api.keys); every API request will be refused");
  const idem = new IdempotencyWindow(config.idempotency.windowMs, config.idempotency.maxKeys);
  const ops = new ApiOperations(ctx.io, idem);
  (stats as { operations: OperationStats }).operations = ops.stats;

  const bus = ctx.bus;
  let stopBroker: (() => Promise<void>) | undefined;
  if (bus !== undefined) {
    const channel = idempotencyChannel(config.broker.channel);
    ops.onNewKey = (key) => bus.publish(channel, Buffer.from(key, "utf8"));
    if (config.broker.enabled) {
      stopBroker = await startBrokerApi({
        bus,
        channel: config.broker.channel,
        ops,
        idem,
        maxBytes: config.bodyLimit,
        batchLimit: config.batchLimit,
        log,
        limiter: ctx.limiter,
        stats: stats.broker,
      });
    } else {
      await bus.subscribe(channel, (_c, payload) => {
        if (payload.length <= 2048) idem.record(payload.toString("utf8"));
      });
      stopBroker = () => bus.unsubscribe(channel);
    }
  }

  ctx.route(
    "*",
    API_PREFIX,
    createApiHandler({
      config,
      keys,
      badKeys: new BadKeyLimiter(config.badKeys.limit, config.badKeys.intervalMs),
      ops,
      log,
      limiter: ctx.limiter,
      document,
      stats: stats.http,
      observe: (route, method, status, seconds) =>
        metricsFor(ctx.io)?.observeApiRequest(route, method, status, seconds),
    }),
  );
  log.info(
    { prefix: API_PREFIX, keys: keys.size, broker: bus !== undefined && config.broker.enabled },
    "api: installed",
  );
  return {
    stats,
    document,
    close: async () => {
      ops.onNewKey = undefined;
      await stopBroker?.();
    },
  };
}
