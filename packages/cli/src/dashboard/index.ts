/** The dashboard page of `switchyard serve` (area I4). */
export type { DashboardConfig, InstalledDashboard } from "./install.js";
export { DASHBOARD_SECRET_PATHS, dashboardSchema, installDashboard } from "./install.js";
export type { DashboardSnapshot, Sample, SamplerOptions } from "./sampler.js";
export { DashboardSampler } from "./sampler.js";
