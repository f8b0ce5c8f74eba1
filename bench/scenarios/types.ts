import type { Impl } from "../lib/harness.js";

export type Mode = "quick" | "full";

/** One figure a scenario reports; `better` says which direction wins. */
export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  better: "lower" | "higher" | "info";
  /** Sub-table the figure is shown in. */
  group: string;
}

export interface RunResult {
  /** Numeric figures by MetricDef key. */
  metrics: Record<string, number>;
  /** Anything worth keeping that is not a figure (integrity checks, raw replies). */
  notes: Record<string, unknown>;
}

/**
 * One run = one fresh server process (+ load-generator processes) going through several
 * phases; each phase contributes a group of figures.
 */
export interface Scenario {
  name: string;
  title: string;
  impls: Impl[];
  metrics: MetricDef[];
  /** Left out of quick mode unless named by --only (too long for its 5-minute budget). */
  fullOnly?: boolean;
  run(impl: Impl, mode: Mode): Promise<RunResult>;
}

/** CPU % of one core over a wall-clock window. */
export function pct(cpuMs: number, wallMs: number): number {
  return (cpuMs / wallMs) * 100;
}
