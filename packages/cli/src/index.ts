/**
 * `@switchyard/cli`: the standalone server (`switchyard serve`). Public exports only.
 */
export type { Area } from "./areas.js";
export type { ConfigSources } from "./config/load.js";
export { ConfigError, loadConfig, maskSecrets, validateConfig } from "./config/load.js";
export type { Config } from "./config/schema.js";
export { configSchema } from "./config/schema.js";
export type {
  Disposable,
  Installer,
  ResolvedConfig,
  RouteHandler,
  RouteMethod,
  ServeContext,
} from "./context.js";
export type { Limiter, LogOptions } from "./log.js";
export { createLimiter, createLogger, formatPretty } from "./log.js";
export { main } from "./main.js";
export type { RunningServer, StartOptions } from "./serve.js";
export { startServer } from "./serve.js";
export type { Drainable } from "./shutdown.js";
export { installSignals } from "./shutdown.js";
export { CLI_VERSION } from "./version.js";
