/**
 * Feeds this area's events to the Prometheus metrics when they are installed (area
 * metrics, `metricsFor(io)`); a no-op otherwise. Looked up per event, so the order in which
 * serve installs the areas does not matter.
 */
import type { Server } from "@switchyard/server";
import { metricsFor } from "../metrics/index.js";

/** A connection refused by auth (JWT or connect webhook), by stable code. */
export function reportRefusal(io: Server, code: string): void {
  metricsFor(io)?.countAuthRefusal(code);
}

/** A socket disconnected by a policy (token expiry, rate limit), by stable code. */
export function reportPolicyDisconnect(io: Server, code: string): void {
  metricsFor(io)?.countPolicyDisconnect(code);
}

/** A latency observer for a webhook client (`hook`: connect, subscribe, events). */
export function webhookObserver(io: Server, hook: string): (ms: number, outcome: string) => void {
  return (ms, outcome) => metricsFor(io)?.observeWebhook(hook, outcome, ms / 1000);
}
