/**
 * The `metrics` section of `switchyard serve`'s configuration and its installer: `/metrics`
 * on the shared port, or on a port of its own (`metrics.port`), in Prometheus text format.
 */
import http from "node:http";
import { z } from "zod";
import type { ServeContext } from "../context.js";
import { SwitchyardMetrics } from "./metrics.js";
import { isClusterWorker, shareWithPrimary } from "./workers.js";

/** What a worker's shared-port `/metrics` answers with `--workers` (one worker's numbers would mislead). */
const WORKERS_HINT =
  "with --workers, set metrics.port: the primary serves the workers' metrics aggregated there";

const PATH = /^\/[A-Za-z0-9._~\-/]*$/;

/** The `metrics` section. */
export const metricsSchema = z.strictObject({
  /** Serve Prometheus metrics. @default true */
  enabled: z.boolean().default(true).describe("serve Prometheus metrics"),
  /** The path of the exposition. @default "/metrics" */
  path: z
    .string()
    .regex(PATH, "a path starting with / (letters, digits, . _ ~ - /)")
    .default("/metrics")
    .describe("path of the Prometheus exposition"),
  /** A port of its own for the metrics (e.g. not exposed publicly); unset: the shared port. @default undefined */
  port: z
    .number()
    .int()
    .min(0)
    .max(65535)
    .optional()
    .describe("separate metrics port (unset: the shared port)"),
  /** Address of the separate metrics port. @default "127.0.0.1" */
  host: z.string().min(1).default("127.0.0.1").describe("address of the separate metrics port"),
  /** Prefix of Switchyard's series. @default "switchyard_" */
  prefix: z
    .string()
    .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "a Prometheus metric name prefix")
    .default("switchyard_")
    .describe("prefix of Switchyard's series"),
  /** prom-client's process and Node.js metrics (event-loop lag, GC, heap, CPU). @default true */
  defaultMetrics: z
    .boolean()
    .default(true)
    .describe("collect process/Node.js metrics (event-loop lag, GC)"),
  /** Event-loop lag sampling precision in ms. @default 10 */
  eventLoopMonitoringPrecision: z.number().int().min(1).max(1000).default(10),
  /** Webhook latency histogram buckets in seconds, ascending. @default [0.005, …, 10] */
  webhookBuckets: z
    .array(z.number().positive())
    .min(1)
    .refine(
      (b) => b.every((x, i) => i === 0 || x > (b[i - 1] as number)),
      "ascending bucket bounds",
    )
    .optional(),
});

/** The resolved `metrics` section. */
export type MetricsConfig = z.output<typeof metricsSchema>;

/** What {@link installMetrics} returns. */
export interface InstalledMetrics {
  readonly metrics: SwitchyardMetrics | undefined;
  /** The separate metrics server's address, if `port` was set. */
  readonly address: { host: string; port: number } | undefined;
  close(): Promise<void>;
}

/** Answers one scrape (GET or HEAD); anything else is 405. */
async function answer(
  metrics: SwitchyardMetrics,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "method_not_allowed", message: "use GET" } }));
    return;
  }
  try {
    const { contentType, body } = await metrics.render();
    res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (err) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "metrics_failed", message: (err as Error).message } }));
  }
}

/**
 * Installs the metrics: registers `path` on the shared port, or listens on `port`. Other
 * areas record their series through `metricsFor(ctx.io)`.
 */
export async function installMetrics(
  ctx: ServeContext,
  config: MetricsConfig,
): Promise<InstalledMetrics> {
  if (!config.enabled) return { metrics: undefined, address: undefined, close: async () => {} };
  const log = ctx.log.child({ area: "metrics" });
  const metrics = new SwitchyardMetrics(ctx.io, {
    bus: ctx.bus,
    prefix: config.prefix,
    defaultMetrics: config.defaultMetrics,
    eventLoopMonitoringPrecision: config.eventLoopMonitoringPrecision,
    webhookBuckets: config.webhookBuckets,
  });
  metrics.stats.addConfiguredNamespaces(ctx.config);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> =>
    answer(metrics, req, res);
  if (isClusterWorker()) {
    // --workers: the primary serves every worker's series, aggregated, on metrics.port.
    shareWithPrimary(metrics.registry);
    // The shared port reaches one worker at random: say where the metrics are instead.
    ctx.route("*", config.path, (_req, res) => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "metrics_on_primary", message: WORKERS_HINT } }));
    });
    return { metrics, address: undefined, close: async () => metrics.close() };
  }
  if (config.port === undefined) {
    ctx.route("*", config.path, handler);
    log.info({ path: config.path }, "metrics on the shared port");
    return { metrics, address: undefined, close: async () => metrics.close() };
  }
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === config.path) void handler(req, res);
    else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ error: { code: "not_found", message: `metrics are at ${config.path}` } }),
      );
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    metrics.close();
    throw new Error(
      `metrics.port: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`,
    );
  }
  const addr = server.address();
  const address =
    typeof addr === "object" && addr !== null ? { host: config.host, port: addr.port } : undefined;
  log.info({ ...address, path: config.path }, "metrics on a separate port");
  return {
    metrics,
    address,
    close: async () => {
      metrics.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
