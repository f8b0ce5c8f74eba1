/**
 * Options of the Socket.IO `Server`: the engine's plus the layer above it. Validated
 * once at construction; bad values throw InvalidOptionError naming the option.
 */
import type { RecoveryOptions } from "./adapter/adapter.js";
import { MemoryAdapter } from "./adapter/memory-adapter.js";
import type { AdapterFactory } from "./adapter/socketio-adapter.js";
import { InvalidOptionError } from "./errors.js";
import type { Codec, SocketIoParser } from "./namespace/parser.js";
import { RECOVERY_DEFAULTS } from "./namespace/recovery.js";
import {
  bool,
  checkOptionKeys,
  ENGINE_OPTION_KEYS,
  type EngineOptions,
  markCheckedByServer,
  type OptionKeys,
  positiveInt,
} from "./options.js";

export interface ServerOptions extends EngineOptions {
  /** Path of the endpoint. @default "/socket.io" */
  path?: string;
  /**
   * Adapter class, one instance per namespace (rooms, broadcasts, cluster): ours, a
   * `socket.io-adapter` subclass, or a factory such as `@socket.io/redis-adapter`'s
   * `createAdapter(pub, sub)`. @default MemoryAdapter
   */
  adapter?: AdapterFactory;
  /** Packet codec: a Switchyard codec or a socket.io parser module such as `socket.io-msgpack-parser`. @default the Socket.IO v5 text parser */
  parser?: Codec | SocketIoParser;
  /** Milliseconds an engine connection may stay without joining any namespace. @default 45000 */
  connectTimeout?: number;
  /** Remove a dynamic child namespace when its last socket leaves. @default false */
  cleanupEmptyChildNamespaces?: boolean;
  /** Largest number of binary attachments one incoming packet may announce. @default 10 */
  maxAttachments?: number;
  /** Deepest nesting of incoming JSON payloads. @default 32 */
  maxDepth?: number;
  /** Serve the browser client (`<path>/socket.io.js`, `.min.js`, `.esm.min.js`, maps) from the installed `socket.io-client` package. @default true */
  serveClient?: boolean;
  /**
   * Connection state recovery (socket.io 4.8's option): a client that lost its connection
   * for a recoverable reason gets back its socket id, rooms and `data`, and the packets it
   * missed, if it reconnects within `maxDisconnectionDuration`. `{}` takes the
   * defaults. @default undefined (off)
   */
  connectionStateRecovery?: ConnectionStateRecoveryOptions;
}

/** Options of `connectionStateRecovery`. */
export interface ConnectionStateRecoveryOptions {
  /** Milliseconds a disconnected session, and the packets it may miss, are kept. @default 120000 */
  maxDisconnectionDuration?: number;
  /** Whether a recovered socket skips the connection middleware (`io.use`). @default true */
  skipMiddlewares?: boolean;
  /** Extension: most packets the in-memory log keeps per namespace; the oldest go first. @default 10000 */
  maxPackets?: number;
  /** Extension: most bytes (encoded size) the in-memory log keeps per namespace. @default 16 MiB */
  maxBytes?: number;
}

const RECOVERY_KEYS = {
  maxDisconnectionDuration: true,
  skipMiddlewares: true,
  maxPackets: true,
  maxBytes: true,
} as const satisfies Record<keyof ConnectionStateRecoveryOptions, true>;

/** The Socket.IO-layer options after validation. */
export interface ResolvedServerOptions {
  readonly adapter: AdapterFactory;
  readonly parser: Codec | SocketIoParser | undefined;
  readonly connectTimeout: number;
  readonly cleanupEmptyChildNamespaces: boolean;
  readonly maxAttachments: number;
  readonly maxDepth: number;
  readonly serveClient: boolean;
  /** undefined when off. */
  readonly connectionStateRecovery: RecoveryOptions | undefined;
}

/** Every key of {@link ServerOptions} beyond the engine's; the type keeps it complete. */
const SERVER_KEYS = {
  adapter: true,
  parser: true,
  connectTimeout: true,
  cleanupEmptyChildNamespaces: true,
  maxAttachments: true,
  maxDepth: true,
  serveClient: true,
  connectionStateRecovery: true,
} as const satisfies Record<Exclude<keyof ServerOptions, keyof EngineOptions>, true>;

/**
 * The keys `new Server()` takes: its own, the engine's, and the socket.io/engine.io
 * options Switchyard refuses as "not supported yet".
 */
export const SERVER_OPTION_KEYS: OptionKeys = Object.freeze({
  ...ENGINE_OPTION_KEYS,
  ...SERVER_KEYS,
});

/**
 * Validates the keys of `opts` (engine ones included) and the Socket.IO-layer fields
 * (the engine validates its own fields' values).
 */
export function resolveServerOptions(opts: ServerOptions): ResolvedServerOptions {
  checkOptionKeys(opts, SERVER_OPTION_KEYS);
  markCheckedByServer(opts);
  const adapter = opts.adapter ?? MemoryAdapter;
  if (typeof adapter !== "function")
    throw new InvalidOptionError("adapter", "an adapter class", adapter);
  return Object.freeze({
    adapter,
    parser: opts.parser,
    connectTimeout: positiveInt("connectTimeout", opts.connectTimeout ?? 45_000),
    cleanupEmptyChildNamespaces: bool(
      "cleanupEmptyChildNamespaces",
      opts.cleanupEmptyChildNamespaces ?? false,
    ),
    maxAttachments: positiveInt("maxAttachments", opts.maxAttachments ?? 10),
    maxDepth: positiveInt("maxDepth", opts.maxDepth ?? 32),
    serveClient: bool("serveClient", opts.serveClient ?? true),
    connectionStateRecovery: resolveRecovery(opts.connectionStateRecovery),
  });
}

function resolveRecovery(
  opts: ConnectionStateRecoveryOptions | undefined,
): RecoveryOptions | undefined {
  if (opts === undefined) return undefined;
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) {
    throw new InvalidOptionError("connectionStateRecovery", "an object", opts);
  }
  checkOptionKeys(opts, RECOVERY_KEYS, "connectionStateRecovery.");
  const d = RECOVERY_DEFAULTS;
  return Object.freeze({
    maxDisconnectionDuration: positiveInt(
      "connectionStateRecovery.maxDisconnectionDuration",
      opts.maxDisconnectionDuration ?? d.maxDisconnectionDuration,
    ),
    skipMiddlewares: bool(
      "connectionStateRecovery.skipMiddlewares",
      opts.skipMiddlewares ?? d.skipMiddlewares,
    ),
    maxPackets: positiveInt("connectionStateRecovery.maxPackets", opts.maxPackets ?? d.maxPackets),
    maxBytes: positiveInt("connectionStateRecovery.maxBytes", opts.maxBytes ?? d.maxBytes),
  });
}
