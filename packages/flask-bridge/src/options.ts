/**
 * Options of the Flask-SocketIO bridge: one interface, a doc line and default per field,
 * validated once at construction (unknown keys refused with a did-you-mean), then frozen.
 * A plain object, so the standalone server can take it from its config file as is.
 */
import { type AdapterConstructor, InvalidOptionError, MemoryAdapter } from "@switchyard/server";
import { checkOptionKeys, type OptionKeys, positiveInt } from "@switchyard/server/internal";
import { PYTHON_SOCKETIO_VERSIONS, type PythonSocketIOVersion } from "./peer-message.js";

/** Options of {@link FlaskBridge}. */
export interface FlaskBridgeOptions {
  /** Broker URL: `redis://` / `rediss://` (Redis pub/sub, as python-socketio's `RedisManager`) or `amqp://` / `amqps://` (RabbitMQ, as its `KombuManager`). Required. */
  url: string;
  /**
   * `"subscribe"`: read the channels and deliver to this node's sockets (Python publishers
   * reach Switchyard clients). `"peer"`: also publish this node's broadcasts, acks,
   * disconnects and room closes for the Python nodes (a member of a Flask-SocketIO
   * cluster); pass `bridge.adapter` as the server's `adapter`. @default "subscribe"
   */
  mode?: "subscribe" | "peer";
  /** Peer mode (required there): the python-socketio version of the Python nodes, deciding the JSON layout published: `"5.7"` (≤ 5.13, Debian's 5.7.2), `"5.14"` (5.14.0–5.15.0) or `"5.15"` (5.15.1+). */
  pythonSocketIO?: PythonSocketIOVersion;
  /** Peer mode: the adapter class this node uses otherwise (`createAdapter(bus)` for a Switchyard cluster beside the Python nodes). @default MemoryAdapter */
  base?: AdapterConstructor;
  /** Peer mode: how long a broadcast with acks waits for Python replies without `timeout()`, in ms. @default 30000 */
  ackTimeoutMs?: number;
  /** Channels (Redis) or fanout exchanges (RabbitMQ) to read: Flask-SocketIO's default and python-socketio's. Peer mode publishes on the first. @default ["flask-socketio", "socketio"] (peer mode: ["flask-socketio"]) */
  channels?: string[];
  /** `"data-only"` reads the pickle bodies of python-socketio < 5.14 (Debian's 5.7.2) with a restricted, data-opcodes-only reader; `false` drops them (counted, reported once). @default false */
  legacyPickle?: false | "data-only";
  /** How `data` is read when a JSON emit has a `binary` key: `"arguments"` (python-socketio 5.15.1+: the argument list) or `"single"` (5.14.2–5.15.0: one argument). @default "arguments" */
  binaryLayout?: "arguments" | "single";
  /** Longest message in bytes; longer ones are dropped and counted. @default 1048576 */
  maxMessageBytes?: number;
  /** RabbitMQ: prefix of this node's queue (`<prefix><random hex>`), bound to each exchange with key `''`. @default "switchyard-flask." */
  queuePrefix?: string;
  /** RabbitMQ: `x-expires` of this node's queue in ms (as python-socketio's 300000), a backstop if the node vanishes. @default 300000 */
  queueExpires?: number;
  /** Reconnect backoff: first delay in ms. @default 100 */
  reconnectInitialDelay?: number;
  /** Reconnect backoff: longest delay in ms. @default 5000 */
  reconnectMaxDelay?: number;
}

/** The validated, frozen form of {@link FlaskBridgeOptions}. */
export interface ResolvedFlaskBridgeOptions {
  readonly url: string;
  readonly broker: "redis" | "amqp";
  readonly mode: "subscribe" | "peer";
  readonly pythonSocketIO: PythonSocketIOVersion | undefined;
  readonly base: AdapterConstructor;
  readonly ackTimeoutMs: number;
  readonly channels: readonly string[];
  readonly legacyPickle: false | "data-only";
  readonly binaryLayout: "arguments" | "single";
  readonly maxMessageBytes: number;
  readonly queuePrefix: string;
  readonly queueExpires: number;
  readonly reconnectInitialDelay: number;
  readonly reconnectMaxDelay: number;
}

const KEYS: OptionKeys = {
  url: true,
  mode: true,
  pythonSocketIO: true,
  base: true,
  ackTimeoutMs: true,
  channels: true,
  legacyPickle: true,
  binaryLayout: true,
  maxMessageBytes: true,
  queuePrefix: true,
  queueExpires: true,
  reconnectInitialDelay: true,
  reconnectMaxDelay: true,
};

/** Validates `opts` (naming the option in every error) and returns the frozen result. */
export function resolveFlaskBridgeOptions(opts: unknown): ResolvedFlaskBridgeOptions {
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) {
    throw new InvalidOptionError("options", "an object", opts);
  }
  checkOptionKeys(opts, KEYS);
  const o = opts as FlaskBridgeOptions;
  if (typeof o.url !== "string")
    throw new InvalidOptionError("url", "a redis:// or amqp:// URL", o.url);
  const scheme = /^([a-z+]+):\/\//i.exec(o.url)?.[1]?.toLowerCase();
  const broker =
    scheme === "redis" || scheme === "rediss"
      ? "redis"
      : scheme === "amqp" || scheme === "amqps"
        ? "amqp"
        : undefined;
  if (broker === undefined) {
    throw new InvalidOptionError("url", "a redis://, rediss://, amqp:// or amqps:// URL", o.url);
  }
  const mode = o.mode ?? "subscribe";
  if (mode !== "subscribe" && mode !== "peer") {
    throw new InvalidOptionError("mode", '"subscribe" or "peer"', mode);
  }
  const peer = mode === "peer";
  if (
    peer
      ? !PYTHON_SOCKETIO_VERSIONS.includes(o.pythonSocketIO as PythonSocketIOVersion)
      : o.pythonSocketIO !== undefined
  ) {
    throw new InvalidOptionError(
      "pythonSocketIO",
      peer
        ? `one of ${PYTHON_SOCKETIO_VERSIONS.map((v) => `"${v}"`).join(", ")} (required with mode: "peer")`
        : 'absent unless mode is "peer"',
      o.pythonSocketIO,
    );
  }
  if (!peer && (o.base !== undefined || o.ackTimeoutMs !== undefined)) {
    const key = o.base !== undefined ? "base" : "ackTimeoutMs";
    throw new InvalidOptionError(key, 'absent unless mode is "peer"', o[key]);
  }
  const base = o.base ?? MemoryAdapter;
  if (typeof base !== "function") throw new InvalidOptionError("base", "an adapter class", base);
  const channels = o.channels ?? (peer ? ["flask-socketio"] : ["flask-socketio", "socketio"]);
  if (
    !Array.isArray(channels) ||
    channels.length === 0 ||
    !channels.every((c) => typeof c === "string" && c.length > 0 && c.length <= 255) ||
    new Set(channels).size !== channels.length
  ) {
    throw new InvalidOptionError(
      "channels",
      "a non-empty list of distinct channel names",
      channels,
    );
  }
  const legacyPickle = o.legacyPickle ?? false;
  if (legacyPickle !== false && legacyPickle !== "data-only") {
    throw new InvalidOptionError("legacyPickle", 'false or "data-only"', legacyPickle);
  }
  const binaryLayout = o.binaryLayout ?? "arguments";
  if (binaryLayout !== "arguments" && binaryLayout !== "single") {
    throw new InvalidOptionError("binaryLayout", '"arguments" or "single"', binaryLayout);
  }
  const queuePrefix = o.queuePrefix ?? "switchyard-flask.";
  if (typeof queuePrefix !== "string" || queuePrefix.length > 200) {
    throw new InvalidOptionError("queuePrefix", "a string of at most 200 characters", queuePrefix);
  }
  const resolved: ResolvedFlaskBridgeOptions = {
    url: o.url,
    broker,
    mode,
    pythonSocketIO: o.pythonSocketIO,
    base,
    ackTimeoutMs: positiveInt("ackTimeoutMs", o.ackTimeoutMs ?? 30_000),
    channels: Object.freeze([...channels]),
    legacyPickle,
    binaryLayout,
    maxMessageBytes: positiveInt("maxMessageBytes", o.maxMessageBytes ?? 1024 * 1024),
    queuePrefix,
    queueExpires: positiveInt("queueExpires", o.queueExpires ?? 300_000),
    reconnectInitialDelay: positiveInt("reconnectInitialDelay", o.reconnectInitialDelay ?? 100),
    reconnectMaxDelay: positiveInt("reconnectMaxDelay", o.reconnectMaxDelay ?? 5000),
  };
  if (resolved.reconnectMaxDelay < resolved.reconnectInitialDelay) {
    throw new InvalidOptionError(
      "reconnectMaxDelay",
      `at least reconnectInitialDelay (${resolved.reconnectInitialDelay})`,
      resolved.reconnectMaxDelay,
    );
  }
  return Object.freeze(resolved);
}
