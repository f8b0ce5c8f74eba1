/**
 * Switchyard's public API. Explicit named exports only; sibling packages use
 * `switchyard/internal`.
 */
export { attach, Engine } from "./engine/engine.js";
export type { ConnectionError, EngineStats } from "./engine/engine.js";
export { Session } from "./engine/session.js";
export type { ReadyState, SendOptions } from "./engine/session.js";
export { sessionNode } from "./engine/session-id.js";
export {
  AckTimeoutError,
  ErrorCode,
  EngineErrorCode,
  InvalidOptionError,
  ProtocolError,
  SwitchyardError,
} from "./errors.js";
export type {
  AllowRequest,
  CookieOptions,
  CorsOptions,
  CorsOrigin,
  EngineOptions,
  TransportName,
} from "./options.js";
