/**
 * The areas `switchyard serve` composes: each contributes a config section (a zod schema,
 * keyed by its name in the configuration) and an installer run once the server exists.
 */
import type { z } from "zod";
import { apiSchema, installApi } from "./api/index.js";
import {
  SECRET_PATHS as AUTH_SECRET_PATHS,
  authSchema,
  clientEventsSchema,
  installAuth,
  installClientEvents,
  installLimits,
  limitsSchema,
} from "./auth/index.js";
import type { Installer } from "./context.js";
import { DASHBOARD_SECRET_PATHS, dashboardSchema, installDashboard } from "./dashboard/index.js";
import { installMetrics, metricsSchema } from "./metrics/index.js";

/** One area: its configuration section and its installer. */
export interface Area {
  /** The section's key in the configuration, e.g. `"auth"`. */
  readonly key: string;
  readonly schema: z.ZodType;
  readonly install: Installer<never>;
}

/**
 * Installed in this order, disposed in reverse: metrics first (the others record into
 * it), then who may connect (auth), what a connection may send (limits), where its events
 * go (clientEvents), the backends' API, and the dashboard.
 */
export const AREAS: readonly Area[] = [
  { key: "metrics", schema: metricsSchema, install: installMetrics as Installer<never> },
  { key: "auth", schema: authSchema, install: installAuth as Installer<never> },
  { key: "limits", schema: limitsSchema, install: installLimits as Installer<never> },
  {
    key: "clientEvents",
    schema: clientEventsSchema,
    install: installClientEvents as Installer<never>,
  },
  { key: "api", schema: apiSchema, install: installApi as Installer<never> },
  { key: "dashboard", schema: dashboardSchema, install: installDashboard as Installer<never> },
];

/** The areas' sections by key. */
export const AREA_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.fromEntries(
  AREAS.map((a) => [a.key, a.schema]),
);

/** Dotted configuration paths whose whole value is secret (masked by --print-config). */
export const AREA_SECRET_PATHS: readonly string[] = [
  ...AUTH_SECRET_PATHS,
  ...DASHBOARD_SECRET_PATHS,
];
