/**
 * The client side of `switchyard serve`: who may connect (JWT, connect webhook), which rooms
 * they may join, client events forwarded to the backend, and per-connection rate limits.
 */
export type { AuthHandle } from "./auth.js";
export { installAuth, REFRESH_EVENT } from "./auth.js";
export type { ClientEventsHandle } from "./client-events.js";
export { installClientEvents } from "./client-events.js";
export { ClientErrorCode, DISCONNECT_NOTICE_EVENT } from "./codes.js";
export type { LimitsHandle } from "./limits.js";
export { installLimits } from "./limits.js";
export { JOIN_EVENT, LEAVE_EVENT } from "./rooms.js";
export type { AuthConfig, ClientEventsConfig, LimitsConfig } from "./schema.js";
export { authSchema, clientEventsSchema, limitsSchema, SECRET_PATHS } from "./schema.js";
export type { WebhookStats } from "./webhook-client.js";
