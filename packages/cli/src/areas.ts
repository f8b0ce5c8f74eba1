/**
 * The areas `switchyard serve` composes: each contributes a config section (a zod schema,
 * keyed by its name in the configuration) and an installer run once the server exists.
 */
import type { z } from "zod";
import type { Installer } from "./context.js";

/** One area: its configuration section and its installer. */
export interface Area {
  /** The section's key in the configuration, e.g. `"auth"`. */
  readonly key: string;
  readonly schema: z.ZodType;
  readonly install: Installer<never>;
}

/** Installed in this order (auth before client events before the API…), disposed in reverse. */
export const AREAS: readonly Area[] = [];

/** The areas' sections by key. */
export const AREA_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.fromEntries(
  AREAS.map((a) => [a.key, a.schema]),
);
