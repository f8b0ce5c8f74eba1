/** Prometheus metrics of `switchyard serve` (area I4). */
export type { InstalledMetrics, MetricsConfig } from "./install.js";
export { installMetrics, metricsSchema } from "./install.js";
export type { SwitchyardMetricsOptions } from "./metrics.js";
export { metricsFor, SwitchyardMetrics } from "./metrics.js";
export type { RecentError } from "./stats.js";
export { ServerStatsReader, statsFor } from "./stats.js";
export type { PrimaryMetrics } from "./workers.js";
export { startPrimaryMetrics } from "./workers.js";
