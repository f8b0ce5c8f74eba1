/** The dashboard page of `switchyard serve` (area I4). */
export type { DashboardConfig, InstalledDashboard } from "./install.js";
export { DASHBOARD_SECRET_PATHS, dashboardSchema, installDashboard } from "./install.js";
export type {
  DashboardSnapshot,
  NodeSummary,
  NodeView,
  Sample,
  SamplerOptions,
} from "./sampler.js";
export { DashboardSampler, PEER_EVENT } from "./sampler.js";
