/**
 * The contract between `switchyard serve` (core) and each area's installer (auth, client
 * events, limits, API, metrics, dashboard). Every installer receives one `ServeContext` and
 * its own section of the resolved configuration, and returns something that can be disposed
 * of at shutdown.
 */
import type http from "node:http";
import type { Bus, Server } from "@switchyard/server";
import type { Logger } from "pino";

/** A request handler for a route registered with {@link ServeContext.route}. */
export type RouteHandler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
) => void | Promise<void>;

/** What an installer may return: cleaned up, in reverse order of installation, at shutdown. */
export type Disposable =
  | undefined
  | void
  | (() => void | Promise<void>)
  | { close(): void | Promise<void> }
  | { dispose(): void | Promise<void> };

/** The HTTP methods a route may be registered for ("*" matches any). */
export type RouteMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS" | "*";

export interface ServeContext {
  /** The Switchyard server (already attached to `http`). */
  io: Server;
  /** The HTTP server that socket.io, the API, metrics and health routes share. */
  http: http.Server;
  /** The cluster bus when one is configured (`redis://`, `amqp://`); undefined for `memory`. */
  bus?: Bus;
  /** The process logger (pino). Areas should use `log.child({ area: "…" })`. */
  log: Logger;
  /**
   * Once-per-interval gate for noisy log lines: returns true the first time `key` is seen in
   * the current interval (log it then), false afterwards (count, don't log). Use one key per
   * error class, e.g. `"auth:expired"`, never per client.
   */
  limiter: (key: string) => boolean;
  /**
   * Registers an HTTP route on the shared port, answered before socket.io's handler.
   * `pathPrefix` matches the request path exactly or followed by "/" or "?" (so
   * "/api/v1" matches "/api/v1/publish" but not "/api/v10"). Longer prefixes win. Paths
   * under the Socket.IO path are the engine's. Registering the same method and prefix twice
   * throws.
   */
  route(method: RouteMethod, pathPrefix: string, handler: RouteHandler): void;
  /** Registers a function run when the server starts draining (SIGTERM/SIGINT), before close. */
  onDrain(fn: () => void | Promise<void>): void;
  /** The whole resolved (validated, defaults applied) configuration. */
  config: ResolvedConfig;
}

/**
 * The resolved configuration. Each area's section is typed by that area's zod schema; the
 * core keeps this loose here so that areas do not import each other's types.
 */
export type ResolvedConfig = Record<string, unknown> & {
  listen: { host: string; port: number; path: string };
};

/** An area installer: `installX(ctx, sectionConfig)`. */
export type Installer<C> = (ctx: ServeContext, config: C) => Promise<Disposable>;
