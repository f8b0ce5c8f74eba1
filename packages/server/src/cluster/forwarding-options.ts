/**
 * Options of session forwarding (`forwarding` of `new Server()` / `new Engine()`): one
 * interface with a doc line and default per field, validated once when the engine is
 * created, then frozen.
 */
import { isIP } from "node:net";
import type { Bus } from "../adapter/bus.js";
import { InvalidOptionError } from "../errors.js";
import { checkOptionKeys, type OptionKeys, positiveInt } from "../options.js";

/** Host and port of a listener. */
export interface ForwardingAddress {
  /** Host name or IP address. @default "127.0.0.1" */
  host?: string;
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
}

/**
 * Session forwarding: a polling request or WebSocket upgrade whose session lives on
 * another node is proxied to that node's internal listener (see `docs/forwarding.md`).
 */
export interface ForwardingOptions {
  /** The bus nodes announce their internal address on (usually the cluster adapter's). Required. */
  bus: Bus;
  /** Shared cluster secret, at least 16 bytes: authenticates announcements and forwarded requests. Required. */
  secret: string | Buffer;
  /** Where the internal listener listens. Only other nodes talk to it. @default { host: "127.0.0.1", port: 0 } */
  listen?: ForwardingAddress;
  /** The address other nodes reach the internal listener at (set it when listening on 0.0.0.0 or behind NAT). @default the listen host and the bound port */
  advertise?: ForwardingAddress;
  /** Milliseconds between a node's announcements on the bus. @default 2000 */
  announceInterval?: number;
  /** Milliseconds without an announcement after which a node is forgotten (no forwards to it: 400). At least announceInterval. @default 3 × announceInterval */
  nodeTimeout?: number;
  /** Most requests and WebSocket pipes this node forwards at once; past it a request gets 503 and an upgrade is refused. Also the internal listener's connection limit. @default 10000 */
  maxForwards?: number;
  /** Milliseconds to connect to the owner before the forwarded request fails with 400 "Session ID unknown". @default 2000 */
  connectTimeout?: number;
  /** Milliseconds an announcement or forwarded request stays valid (clock skew between hosts included); older ones are refused as replays. @default 30000 */
  replayWindow?: number;
}

/** {@link ForwardingOptions} after validation. */
export interface ResolvedForwardingOptions {
  readonly bus: Bus;
  readonly secret: Buffer;
  readonly listen: { readonly host: string; readonly port: number };
  readonly advertise: { readonly host: string | undefined; readonly port: number | undefined };
  readonly announceInterval: number;
  readonly nodeTimeout: number;
  readonly maxForwards: number;
  readonly connectTimeout: number;
  readonly replayWindow: number;
}

const KEYS = {
  bus: true,
  secret: true,
  listen: true,
  advertise: true,
  announceInterval: true,
  nodeTimeout: true,
  maxForwards: true,
  connectTimeout: true,
  replayWindow: true,
} as const satisfies Record<keyof ForwardingOptions, true>;
const ADDRESS_KEYS: OptionKeys = Object.freeze({ host: true, port: true });

const MIN_SECRET_BYTES = 16;

/** Validates `opts` (InvalidOptionError naming the option) and returns the frozen result. */
export function resolveForwardingOptions(opts: ForwardingOptions): ResolvedForwardingOptions {
  if (typeof opts !== "object" || opts === null) {
    throw new InvalidOptionError("forwarding", "an object", opts);
  }
  checkOptionKeys(opts, KEYS, "forwarding.");
  const bus = opts.bus as Partial<Bus> | undefined;
  if (
    typeof bus !== "object" ||
    bus === null ||
    typeof bus.publish !== "function" ||
    typeof bus.subscribe !== "function" ||
    typeof bus.unsubscribe !== "function"
  ) {
    throw new InvalidOptionError("forwarding.bus", "a Bus (LocalBus, RedisBus, AmqpBus)", opts.bus);
  }
  const secret =
    typeof opts.secret === "string"
      ? Buffer.from(opts.secret, "utf8")
      : Buffer.isBuffer(opts.secret)
        ? Buffer.from(opts.secret)
        : undefined;
  if (secret === undefined || secret.length < MIN_SECRET_BYTES) {
    throw new InvalidOptionError(
      "forwarding.secret",
      `a string or Buffer of at least ${MIN_SECRET_BYTES} bytes`,
      // Never the secret itself in a message that may be logged.
      secret === undefined ? opts.secret : `${secret.length} bytes`,
    );
  }
  const listen = address("listen", opts.listen);
  const advertise = address("advertise", opts.advertise);
  const announceInterval = positiveInt(
    "forwarding.announceInterval",
    opts.announceInterval ?? 2000,
  );
  const nodeTimeout = positiveInt(
    "forwarding.nodeTimeout",
    opts.nodeTimeout ?? 3 * announceInterval,
  );
  if (nodeTimeout < announceInterval) {
    throw new InvalidOptionError(
      "forwarding.nodeTimeout",
      `at least announceInterval (${announceInterval})`,
      nodeTimeout,
    );
  }
  return Object.freeze({
    bus: opts.bus,
    secret,
    listen: Object.freeze({ host: listen.host ?? "127.0.0.1", port: listen.port ?? 0 }),
    advertise: Object.freeze(advertise),
    announceInterval,
    nodeTimeout,
    maxForwards: positiveInt("forwarding.maxForwards", opts.maxForwards ?? 10_000),
    connectTimeout: positiveInt("forwarding.connectTimeout", opts.connectTimeout ?? 2000),
    replayWindow: positiveInt("forwarding.replayWindow", opts.replayWindow ?? 30_000),
  });
}

function address(
  name: string,
  a: ForwardingAddress | undefined,
): { host: string | undefined; port: number | undefined } {
  if (a === undefined) return { host: undefined, port: undefined };
  if (typeof a !== "object" || a === null) {
    throw new InvalidOptionError(`forwarding.${name}`, "an object { host, port }", a);
  }
  checkOptionKeys(a, ADDRESS_KEYS, `forwarding.${name}.`);
  if (
    a.host !== undefined &&
    (typeof a.host !== "string" ||
      a.host.length === 0 ||
      a.host.length > 253 ||
      (isIP(a.host) === 0 && !/^[A-Za-z0-9.-]+$/.test(a.host)))
  ) {
    throw new InvalidOptionError(`forwarding.${name}.host`, "a host name or IP address", a.host);
  }
  if (
    a.port !== undefined &&
    (!Number.isInteger(a.port) ||
      a.port < 0 ||
      a.port > 65_535 ||
      (name === "advertise" && a.port === 0))
  ) {
    throw new InvalidOptionError(`forwarding.${name}.port`, "a TCP port number", a.port);
  }
  return { host: a.host, port: a.port };
}
