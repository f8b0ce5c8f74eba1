/**
 * Engine options: one interface with a doc line and default per field, a fresh
 * defaults object, validation once at construction, then frozen.
 */
import type { IncomingMessage } from "node:http";
import type { ForwardingOptions } from "./cluster/forwarding-options.js";
import { InvalidOptionError } from "./errors.js";

/** Which transports a client may use. */
export type TransportName = "polling" | "websocket";

/** Decides whether a request may open (or continue) a session: `callback(errorCode | null, allowed)`. */
export type AllowRequest = (
  req: IncomingMessage,
  callback: (err: string | null | undefined, success: boolean) => void,
) => void;

/** Origin check of the CORS options: same forms as the `cors` package's `origin`. */
export type CorsOrigin =
  | boolean
  | string
  | RegExp
  | ReadonlyArray<string | RegExp>
  | ((origin: string | undefined, callback: (err: Error | null, allow?: boolean) => void) => void);

/** Cross-origin options (a subset of the `cors` package's, which is what socket.io takes). */
export interface CorsOptions {
  /** Allowed origins. `true` reflects any origin. Requests (polling *and* WebSocket) from other origins are refused with 403. @default undefined (no CORS headers, no check) */
  origin?: CorsOrigin;
  /** Methods allowed in preflight answers. @default ["GET", "POST"] */
  methods?: string[];
  /** Headers allowed in preflight answers. @default the request's Access-Control-Request-Headers */
  allowedHeaders?: string[];
  /** Headers exposed to the page. @default [] */
  exposedHeaders?: string[];
  /** Whether to send Access-Control-Allow-Credentials. @default false */
  credentials?: boolean;
  /** Preflight cache time in seconds. @default undefined */
  maxAge?: number;
}

/** The session cookie used by load balancers for stickiness. */
export interface CookieOptions {
  /** @default "io" */
  name?: string;
  /** @default "/" */
  path?: string;
  /** @default true */
  httpOnly?: boolean;
  /** @default "lax" */
  sameSite?: "strict" | "lax" | "none";
  /** @default false */
  secure?: boolean;
  /** Max-Age in seconds. @default undefined (session cookie) */
  maxAge?: number;
}

/** Options of the Engine.IO server (also accepted by `new Server()`). */
export interface EngineOptions {
  /** Path the endpoint is served under; requests elsewhere pass through to the HTTP server's own listeners. @default "/engine.io" ("/socket.io" for the Socket.IO Server) */
  path?: string;
  /** Milliseconds between server pings. @default 25000 */
  pingInterval?: number;
  /** Milliseconds to wait for a pong before closing the session with "ping timeout". @default 20000 */
  pingTimeout?: number;
  /** Milliseconds a polling → WebSocket upgrade may take. @default 10000 */
  upgradeTimeout?: number;
  /** Largest message or polling request body in bytes; bigger ones close the session with reason "payload too large". @default 1e6 */
  maxHttpBufferSize?: number;
  /** Most WebSocket frames one message may arrive in (empty ones count); past it the connection is closed with 1008 and reason "transport error". Bounds the work of a peer sending a message as a flood of tiny or empty fragments. @default 16384 (as `ws`) */
  maxFragments?: number;
  /** Bytes a session may hold unsent (our buffer plus the socket's); past that volatile packets are dropped and others close the session with reason "slow consumer". @default 4 MiB */
  maxBufferedBytes?: number;
  /** Allowed transports, in the order a client should try upgrades. @default ["polling", "websocket"] */
  transports?: TransportName[];
  /** Whether polling sessions may upgrade to WebSocket. @default true */
  allowUpgrades?: boolean;
  /** Hook to refuse requests (403 with code 4). @default undefined */
  allowRequest?: AllowRequest;
  /** CORS; see {@link CorsOptions}. @default undefined */
  cors?: CorsOptions;
  /** Set a cookie with the session id on the handshake (for load-balancer stickiness). `true` uses the defaults of {@link CookieOptions}. @default false */
  cookie?: boolean | CookieOptions;
  /** WebSocket permessage-deflate: `false`, `true`, or `{ threshold }` (bytes below which frames are not compressed). @default false */
  perMessageDeflate?: boolean | { threshold?: number };
  /** gzip/deflate of polling responses: `false`, `true`, or `{ threshold }` in bytes. @default { threshold: 1024 } */
  httpCompression?: boolean | { threshold?: number };
  /** A message packet (string or Buffer) appended to the handshake. @default undefined */
  initialPacket?: string | Buffer;
  /** Short identifier of this node, embedded in every session id so other nodes can route to the owner ([A-Za-z0-9_-]{1,16}). @default random 6 characters */
  nodeId?: string;
  /** As engine.io: `true` serves everything under `<path>/` only; `false` also the bare `<path>` (for clients with `addTrailingSlash: false`). @default true */
  addTrailingSlash?: boolean;
  /** Session forwarding: a request or upgrade for a session of another node is served through that node (no sticky sessions needed); see `docs/forwarding.md`. Validated when the engine is created. @default undefined (off: such requests get 400 "Session ID unknown") */
  forwarding?: ForwardingOptions;
}

/** The validated, frozen form of {@link EngineOptions}. */
export interface ResolvedEngineOptions {
  readonly path: string;
  readonly pingInterval: number;
  readonly pingTimeout: number;
  readonly upgradeTimeout: number;
  readonly maxHttpBufferSize: number;
  readonly maxFragments: number;
  readonly maxBufferedBytes: number;
  readonly transports: readonly TransportName[];
  readonly allowUpgrades: boolean;
  readonly allowRequest: AllowRequest | undefined;
  readonly cors: Readonly<CorsOptions> | undefined;
  readonly cookie:
    | Readonly<Required<Omit<CookieOptions, "maxAge">> & { maxAge?: number }>
    | undefined;
  readonly perMessageDeflate: false | { threshold: number };
  readonly httpCompression: false | { threshold: number };
  readonly initialPacket: string | Buffer | undefined;
  readonly nodeId: string;
  readonly addTrailingSlash: boolean;
  /** Validated by the engine's forwarder (`resolveForwardingOptions`). */
  readonly forwarding: ForwardingOptions | undefined;
}

function defaults(): Omit<ResolvedEngineOptions, "nodeId"> {
  return {
    path: "/engine.io",
    pingInterval: 25_000,
    pingTimeout: 20_000,
    upgradeTimeout: 10_000,
    maxHttpBufferSize: 1e6,
    maxFragments: 16_384,
    maxBufferedBytes: 4 * 1024 * 1024,
    transports: ["polling", "websocket"],
    allowUpgrades: true,
    allowRequest: undefined,
    cors: undefined,
    cookie: undefined,
    perMessageDeflate: false,
    httpCompression: { threshold: 1024 },
    initialPacket: undefined,
    addTrailingSlash: true,
    forwarding: undefined,
  };
}

const NODE_ID = /^[A-Za-z0-9_-]{1,16}$/;

// ——— option keys: unknown ones are refused with a did-you-mean ———

/** A socket.io/engine.io option Switchyard does not implement yet. */
export interface Unsupported {
  /** Why, or what to use instead (appended to "not supported yet: "). */
  readonly note: string;
  /** Values that ask for nothing beyond what Switchyard does (e.g. `allowEIO3: false`); accepted. */
  readonly accepts?: (value: unknown) => boolean;
}

/**
 * The keys an options object may have: `true` for an implemented option, an
 * {@link Unsupported} entry for a known option that is refused as "not supported yet".
 */
export type OptionKeys = Readonly<Record<string, true | Unsupported>>;

/**
 * Refuses the keys of `opts` that `keys` does not implement: an unknown key throws
 * `InvalidOptionError` with code `SY_ERR_UNKNOWN_OPTION` and the nearest known key
 * (`unknown option "pingIntervall" — did you mean "pingInterval"?`), an unsupported one
 * `SY_ERR_UNSUPPORTED_OPTION` naming it (unless its value is `undefined` or one it
 * accepts). `prefix` names nested objects in messages (`"cors."`).
 */
export function checkOptionKeys(opts: object, keys: OptionKeys, prefix = ""): void {
  for (const key of Object.keys(opts)) {
    const entry = Object.hasOwn(keys, key) ? keys[key] : undefined;
    if (entry === true) continue;
    if (entry !== undefined) {
      const value = (opts as Record<string, unknown>)[key];
      if (value === undefined || entry.accepts?.(value) === true) continue;
      throw InvalidOptionError.unsupported(prefix + key, entry.note);
    }
    const near = nearest(key, Object.keys(keys));
    throw InvalidOptionError.unknown(prefix + key, near === undefined ? undefined : prefix + near);
  }
}

/**
 * The candidate closest to `key`, if it is close enough to be a typo: by
 * Damerau–Levenshtein distance (optimal string alignment, case-insensitive), at most 1
 * edit for names up to 5 characters, 2 up to 11, else 3 (`pingIntervall`,
 * `pinginterval`, `maxHttpBufferSzie`); failing that, a name one of 5+ characters starts
 * with the other (`maxHttpBuffer`, `pingIntervalMs`). `port` or `origin` find nothing.
 */
export function nearest(key: string, candidates: readonly string[]): string | undefined {
  const limit = key.length <= 5 ? 1 : key.length <= 11 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = limit + 1;
  const k = key.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(k, c.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best !== undefined) return best;
  let bestGap = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const lc = c.toLowerCase();
    const [short, long] = lc.length <= k.length ? [lc, k] : [k, lc];
    if (short.length < 5 || !long.startsWith(short)) continue;
    const gap = long.length - short.length;
    if (gap < bestGap) {
      best = c;
      bestGap = gap;
    }
  }
  return best;
}

/** Optimal string alignment distance of `a` and `b`; any result ≥ `cap` means "too far". */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  // Three rows: the one before last (transpositions), the last and the current.
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, prev2[j - 2]! + 1);
      }
      row.push(d);
      if (d < rowMin) rowMin = d;
    }
    if (rowMin >= cap) return cap;
    prev2 = prev;
    prev = row;
  }
  return Math.min(prev[b.length]!, cap);
}

const notEio3: Unsupported = {
  note: "Switchyard speaks Engine.IO v4 only (socket.io-client ≥ 3); remove it or set it to false",
  accepts: (v) => v === false,
};

/**
 * Options of engine.io's `ServerOptions` and `AttachOptions` Switchyard does not
 * implement (its own are the keys of {@link EngineOptions}).
 */
export const UNSUPPORTED_ENGINE_OPTIONS: Readonly<Record<string, Unsupported>> = Object.freeze({
  allowEIO3: notEio3,
  wsEngine: {
    note: "WebSocket framing is built in (and `ws` is used for permessage-deflate); remove it",
  },
  destroyUpgrade: {
    note: "upgrades outside `path` are left to the HTTP server's other `upgrade` listeners and destroyed only when there is none",
  },
  destroyUpgradeTimeout: {
    note: "upgrades outside `path` are left to the HTTP server's other `upgrade` listeners and destroyed only when there is none",
  },
});

/** Every key of {@link EngineOptions}; the type makes a new option without its key a compile error. */
const ENGINE_KEYS = {
  path: true,
  pingInterval: true,
  pingTimeout: true,
  upgradeTimeout: true,
  maxHttpBufferSize: true,
  maxBufferedBytes: true,
  transports: true,
  allowUpgrades: true,
  allowRequest: true,
  cors: true,
  cookie: true,
  perMessageDeflate: true,
  httpCompression: true,
  initialPacket: true,
  nodeId: true,
  addTrailingSlash: true,
  maxFragments: true,
  forwarding: true,
} as const satisfies Record<keyof EngineOptions, true>;

/** The keys `attach()` / `new Engine()` take: the engine's own plus engine.io's unsupported ones. */
export const ENGINE_OPTION_KEYS: OptionKeys = Object.freeze({
  ...ENGINE_KEYS,
  ...UNSUPPORTED_ENGINE_OPTIONS,
});

const CORS_KEYS: OptionKeys = Object.freeze({
  origin: true,
  methods: true,
  allowedHeaders: true,
  exposedHeaders: true,
  credentials: true,
  maxAge: true,
  preflightContinue: {
    note: "preflights are always answered by Switchyard",
    accepts: (v: unknown) => v === false,
  },
  optionsSuccessStatus: {
    note: "preflights are answered with 204",
    accepts: (v: unknown) => v === 204,
  },
} satisfies Record<keyof CorsOptions, true | Unsupported> & OptionKeys);

const COOKIE_KEYS: OptionKeys = Object.freeze({
  name: true,
  path: true,
  httpOnly: true,
  sameSite: true,
  secure: true,
  maxAge: true,
  domain: { note: "the cookie is set for the request's host" },
  expires: { note: "use maxAge" },
  encode: { note: "the session id needs no encoding" },
  priority: { note: "" },
  partitioned: { note: "" },
} satisfies Record<keyof CookieOptions, true | Unsupported> & OptionKeys);

/**
 * `perMessageDeflate` / `httpCompression` objects: `threshold` is ours, any other key is
 * a `ws` or zlib setting engine.io would pass on and Switchyard does not take yet.
 */
function checkThresholdKeys(opts: object, name: string): void {
  for (const key of Object.keys(opts)) {
    if (key === "threshold" || (opts as Record<string, unknown>)[key] === undefined) continue;
    throw InvalidOptionError.unsupported(
      `${name}.${key}`,
      "only `threshold` is configurable (the other settings keep their defaults)",
    );
  }
}

/**
 * Options objects a Server already checked against its full key set (engine keys plus
 * its own): the engine it creates from the same object does not refuse the server's keys.
 */
const checkedByServer = new WeakSet<object>();

/** @internal Called by `resolveServerOptions` once it checked every key of `opts`. */
export function markCheckedByServer(opts: object): void {
  checkedByServer.add(opts);
}

/** Validates `opts` against the engine's options and returns the frozen result. */
export function resolveEngineOptions(
  opts: EngineOptions = {},
  overrides: Partial<EngineOptions> = {},
): ResolvedEngineOptions {
  if (typeof opts !== "object" || opts === null)
    throw new InvalidOptionError("options", "an object", opts);
  if (!checkedByServer.has(opts)) checkOptionKeys(opts, ENGINE_OPTION_KEYS);
  const d = defaults();
  const o = { ...overrides, ...stripUndefined(opts) };
  const path = o.path ?? d.path;
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new InvalidOptionError("path", 'a string starting with "/"', path);
  }
  const transports = o.transports ?? d.transports;
  if (Array.isArray(transports) && transports.includes("webtransport" as TransportName)) {
    throw InvalidOptionError.unsupported(
      "transports",
      '"webtransport" (HTTP/3); use "polling" and "websocket"',
    );
  }
  if (
    !Array.isArray(transports) ||
    transports.length === 0 ||
    !transports.every((t) => t === "polling" || t === "websocket")
  ) {
    throw new InvalidOptionError(
      "transports",
      'a non-empty array of "polling" | "websocket"',
      transports,
    );
  }
  const nodeId = o.nodeId ?? randomNodeId();
  if (typeof nodeId !== "string" || !NODE_ID.test(nodeId)) {
    throw new InvalidOptionError("nodeId", "1-16 characters of [A-Za-z0-9_-]", nodeId);
  }
  if (o.allowRequest !== undefined && typeof o.allowRequest !== "function") {
    throw new InvalidOptionError("allowRequest", "a function", o.allowRequest);
  }
  if (
    o.initialPacket !== undefined &&
    typeof o.initialPacket !== "string" &&
    !Buffer.isBuffer(o.initialPacket)
  ) {
    throw new InvalidOptionError("initialPacket", "a string or Buffer", o.initialPacket);
  }
  const resolved: ResolvedEngineOptions = {
    path: path.replace(/\/$/, "") || "/",
    pingInterval: positiveInt("pingInterval", o.pingInterval ?? d.pingInterval),
    pingTimeout: positiveInt("pingTimeout", o.pingTimeout ?? d.pingTimeout),
    upgradeTimeout: positiveInt("upgradeTimeout", o.upgradeTimeout ?? d.upgradeTimeout),
    maxHttpBufferSize: positiveInt("maxHttpBufferSize", o.maxHttpBufferSize ?? d.maxHttpBufferSize),
    maxFragments: positiveInt("maxFragments", o.maxFragments ?? d.maxFragments),
    maxBufferedBytes: positiveInt("maxBufferedBytes", o.maxBufferedBytes ?? d.maxBufferedBytes),
    transports: Object.freeze([...transports]),
    allowUpgrades: bool("allowUpgrades", o.allowUpgrades ?? d.allowUpgrades),
    allowRequest: o.allowRequest,
    cors: o.cors === undefined ? undefined : Object.freeze(validateCors(o.cors)),
    cookie: resolveCookie(o.cookie),
    perMessageDeflate: threshold(
      "perMessageDeflate",
      o.perMessageDeflate ?? d.perMessageDeflate,
      1024,
    ),
    httpCompression: threshold("httpCompression", o.httpCompression ?? d.httpCompression, 1024),
    initialPacket: o.initialPacket,
    nodeId,
    addTrailingSlash: bool("addTrailingSlash", o.addTrailingSlash ?? d.addTrailingSlash),
    forwarding: o.forwarding,
  };
  return Object.freeze(resolved);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function randomNodeId(): string {
  return crypto.getRandomValues(Buffer.alloc(5)).toString("base64url").slice(0, 6);
}

/** Validates a positive integer option (milliseconds, bytes). */
export function positiveInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw new InvalidOptionError(name, "a positive integer", v);
  }
  return v;
}

/** Validates a non-negative integer option (delays, limits where 0 means "none"). */
export function nonNegativeInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new InvalidOptionError(name, "a non-negative integer", v);
  }
  return v;
}

/** Validates a boolean option. */
export function bool(name: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new InvalidOptionError(name, "a boolean", v);
  return v;
}

function threshold(name: string, v: unknown, fallback: number): false | { threshold: number } {
  if (v === false) return false;
  if (v === true) return Object.freeze({ threshold: fallback });
  if (typeof v === "object" && v !== null) {
    checkThresholdKeys(v, name);
    const t = (v as { threshold?: unknown }).threshold ?? fallback;
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw new InvalidOptionError(`${name}.threshold`, "a non-negative integer", t);
    }
    return Object.freeze({ threshold: t });
  }
  throw new InvalidOptionError(name, "a boolean or { threshold }", v);
}

function validateCors(c: unknown): CorsOptions {
  if (typeof c === "function") {
    throw InvalidOptionError.unsupported(
      "cors",
      "a per-request options function (the `cors` package's delegate); pass an object, with `origin` as a function if it depends on the request's origin",
    );
  }
  if (typeof c !== "object" || c === null) throw new InvalidOptionError("cors", "an object", c);
  checkOptionKeys(c, CORS_KEYS, "cors.");
  const cors = c as CorsOptions;
  const origin = cors.origin;
  const okOrigin =
    origin === undefined ||
    typeof origin === "boolean" ||
    typeof origin === "string" ||
    origin instanceof RegExp ||
    typeof origin === "function" ||
    (Array.isArray(origin) && origin.every((x) => typeof x === "string" || x instanceof RegExp));
  if (!okOrigin) {
    throw new InvalidOptionError(
      "cors.origin",
      "a boolean, string, RegExp, array of those, or function",
      origin,
    );
  }
  for (const k of ["methods", "allowedHeaders", "exposedHeaders"] as const) {
    const v = cors[k];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
      throw new InvalidOptionError(`cors.${k}`, "an array of strings", v);
    }
  }
  if (cors.credentials !== undefined) bool("cors.credentials", cors.credentials);
  if (cors.maxAge !== undefined && (typeof cors.maxAge !== "number" || cors.maxAge < 0)) {
    throw new InvalidOptionError("cors.maxAge", "a non-negative number", cors.maxAge);
  }
  return { ...cors };
}

function resolveCookie(c: unknown): ResolvedEngineOptions["cookie"] {
  if (c === undefined || c === false) return undefined;
  const base = { name: "io", path: "/", httpOnly: true, sameSite: "lax" as const, secure: false };
  if (c === true) return Object.freeze(base);
  if (typeof c !== "object" || c === null)
    throw new InvalidOptionError("cookie", "a boolean or an object", c);
  checkOptionKeys(c, COOKIE_KEYS, "cookie.");
  const merged = { ...base, ...stripUndefined(c as CookieOptions) };
  if (typeof merged.name !== "string" || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(merged.name)) {
    throw new InvalidOptionError("cookie.name", "a cookie token", merged.name);
  }
  if (!["strict", "lax", "none"].includes(merged.sameSite)) {
    throw new InvalidOptionError("cookie.sameSite", '"strict" | "lax" | "none"', merged.sameSite);
  }
  return Object.freeze(merged);
}
