/**
 * What a session keeps of the request that opened it (the WebSocket upgrade, or the
 * polling handshake GET — which an upgraded session otherwise keeps for its whole life).
 *
 * engine.io keeps the whole `IncomingMessage` for the session's life (`conn.request`,
 * `socket.request`): ~0.9 KiB per idle connection (the message, its stream state, raw
 * header arrays, version strings), of which an app typically reads a few headers and the
 * address. When nothing can have been attached to the request (no `allowRequest`, no
 * `headers` / `initial_headers` listener, no property that Node does not put there
 * itself), a session keeps a {@link RequestRecord} instead: the parsed headers object,
 * URL, HTTP minor version and the socket — the same objects the request held.
 * The first read of `request` builds an `IncomingMessage` from it once (see
 * {@link materialize}); what differs from the original is documented there.
 */
import { type IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";

/**
 * The part of the opening request that the Socket.IO handshake reads: satisfied by the
 * request itself and by a {@link RequestRecord}, so reading it never builds a request.
 */
export interface RequestInfo {
  readonly headers: IncomingHttpHeaders;
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly socket: Duplex | Socket;
}

/** The slim stand-in for a dropped upgrade request (see the module comment). */
export class RequestRecord implements RequestInfo {
  /** Always GET: a handshake with another method is refused before a session exists. */
  get method(): "GET" {
    return "GET";
  }

  /** Whether the request was a WebSocket upgrade (on the prototype: no field). */
  get upgrade(): boolean {
    return true;
  }

  readonly headers: IncomingHttpHeaders;
  readonly url: string;
  readonly socket: Socket;
  /** `httpVersionMinor` (the major is 1: Node's HTTP/1 server parsed it). */
  readonly minor: number;

  constructor(req: IncomingMessage) {
    this.headers = shareHeaderValues(req.headers);
    this.url = req.url ?? "/";
    this.socket = req.socket;
    this.minor = req.httpVersionMinor;
  }
}

/** What is kept of a polling handshake GET. */
export class PollingRequestRecord extends RequestRecord {
  override get upgrade(): boolean {
    return false;
  }
}

/**
 * Headers whose values repeat from one connection to the next (the same host, browser,
 * origin, WebSocket version and extensions). Node's parser makes a new string for every
 * value of every request; a kept record holds them for the connection's life.
 */
const REPEATING = [
  "host",
  "upgrade",
  "connection",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "user-agent",
  "origin",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "pragma",
] as const;
/** Values shared between connections; bounded: cleared when full (never grows past it). */
const shared = new Map<string, string>();
/** How many distinct values {@link shared} holds at most. */
export const SHARED_VALUES_MAX = 1024;
/**
 * Longer values are left alone (rare, and each would pin that much): the table holds at
 * most ~0.3 MB whatever clients send, and a flood of distinct values only clears it.
 */
const SHARED_VALUE_MAX_LENGTH = 256;

/**
 * Replaces the values of {@link REPEATING} headers by an equal string already held for an
 * earlier connection, so 10,000 connections from one kind of client hold one "websocket",
 * one user agent, one host… instead of 10,000 copies (~0.1 KiB per idle connection for a
 * bare client, more for a browser). Invisible to readers: equal strings are
 * indistinguishable in JavaScript. Only for a record, whose request (and its `rawHeaders`,
 * which hold the originals) is let go.
 */
export function shareHeaderValues(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const name of REPEATING) {
    const value = headers[name];
    if (typeof value !== "string" || value.length > SHARED_VALUE_MAX_LENGTH) continue;
    const held = shared.get(value);
    if (held !== undefined) {
      (headers as Record<string, string>)[name] = held;
      continue;
    }
    if (shared.size >= SHARED_VALUES_MAX) shared.clear();
    shared.set(value, value);
  }
  return headers;
}

/** Distinct header values held for sharing (for tests: bounded by {@link SHARED_VALUES_MAX}). */
export function sharedHeaderValueCount(): number {
  return shared.size;
}

/** Own string-named properties Node itself puts on a server-side request (built once). */
let nodeKeys: Set<string> | undefined;

/**
 * Whether an upgrade request carries properties Node did not put there (an `upgrade`
 * listener before ours, e.g. one setting `req.user`), in which case it is kept whole.
 * String-named properties only: a symbol-keyed one is not seen. The common case costs one
 * `Object.keys` (a copy of V8's enum cache) and a length compare; a request with another
 * count of keys is checked key by key, so a key a future Node version adds errs the safe
 * way (the request is kept).
 */
export function hasForeignProperties(req: IncomingMessage): boolean {
  if (nodeKeys === undefined) {
    nodeKeys = new Set(Object.keys(new IncomingMessage(new Socket())));
    // Set by the HTTP parser (and nulled when it is freed after an upgrade).
    nodeKeys.add("parser");
  }
  const keys = Object.keys(req);
  if (keys.length === nodeKeys.size) return false;
  for (const key of keys) if (!nodeKeys.has(key)) return true;
  return false;
}

/**
 * An `IncomingMessage` rebuilt from a record, for code that reads `conn.request` /
 * `socket.request` of a session that dropped its upgrade request. Same `headers` object
 * (also `socket.handshake.headers`), `url`, `method`, `httpVersion*`, `socket` /
 * `connection` (so `remoteAddress`, `encrypted` and the peer certificate read as before),
 * `upgrade` (true for a WebSocket's, false for a polling handshake's), `complete` true. What differs: `rawHeaders` is rebuilt from `headers`
 * (lower-case names, repeated headers joined as Node joins them in `headers`), and it is
 * another object than the one `allowRequest` or a `headers` listener would have seen —
 * which is why a request is kept whole whenever such a hook exists.
 */
export function materialize(r: RequestRecord): IncomingMessage {
  const req = new IncomingMessage(r.socket);
  req.method = r.method;
  req.url = r.url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = r.minor;
  req.httpVersion = `1.${r.minor}`;
  req.headers = r.headers;
  const raw: string[] = [];
  for (const [name, value] of Object.entries(r.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) raw.push(name, v);
    else raw.push(name, value);
  }
  req.rawHeaders = raw;
  req.complete = true;
  // Node sets it on every request it parses; @types/node does not declare it.
  (req as IncomingMessage & { upgrade: boolean }).upgrade = r.upgrade;
  return req;
}
