/**
 * Metrics with `--workers N`: every worker keeps its own registry, and a scrape of the
 * shared port would reach one worker at random. So the primary serves the workers' series
 * aggregated (prom-client's AggregatorRegistry over node:cluster IPC: counters and most
 * gauges summed, node counts as max, bus health as min) on `metrics.port`, and a worker's
 * `/metrics` on the shared port says where to look instead of answering for itself.
 */
import cluster from "node:cluster";
import http from "node:http";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { MetricsConfig } from "./install.js";

/** Whether this process is a node:cluster worker (`--workers N`). */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** Worker side: answers the primary's metric requests with this registry. */
export function shareWithPrimary(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one installs the worker's IPC listener (idempotent).
  new AggregatorRegistry();
}

/** What {@link startPrimaryMetrics} returns. */
export interface PrimaryMetrics {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Primary side (`--workers N`): serves the workers' metrics, aggregated, on `metrics.port`.
 * Undefined when metrics are disabled or no `metrics.port` is set (the shared port
 * belongs to the workers).
 */
export async function startPrimaryMetrics(
  config: MetricsConfig,
): Promise<PrimaryMetrics | undefined> {
  if (!config.enabled || config.port === undefined) return undefined;
  const aggregator = new AggregatorRegistry();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== config.path) {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ error: { code: "not_found", message: `metrics are at ${config.path}` } }),
      );
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "method_not_allowed", message: "use GET" } }));
      return;
    }
    aggregator.clusterMetrics().then(
      (body) => {
        res.writeHead(200, { "content-type": aggregator.contentType, "cache-control": "no-store" });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: Error) => {
        res.writeHead(503, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { code: "workers_unavailable", message: err.message } }));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(
        new Error(`metrics.port: cannot listen on ${config.host}:${config.port}: ${err.message}`),
      ),
    );
    server.listen(config.port, config.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : (config.port ?? 0);
  return {
    address: { host: config.host, port },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
