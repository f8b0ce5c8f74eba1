/**
 * The Engine.IO v4 server: handshake, request verification, sid routing, transports,
 * the upgrade, and one heartbeat wheel for all sessions. Usable on its own with the
 * shape of the `engine.io` package (`attach(server, opts)`, `connection` event), and
 * the base the Socket.IO layer builds on.
 */
import { EventEmitter } from "node:events";
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
  validateHeaderName,
  validateHeaderValue,
} from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { Forwarder } from "../cluster/forwarder.js";
import { ENGINE_ERROR_MESSAGES, EngineErrorCode } from "../errors.js";
import { attachEngine } from "../http/attach.js";
import { checkOrigin, corsHeaders, preflightHeaders } from "../http/cors.js";
import { abortUpgrade, sendEngineError } from "../http/respond.js";
import {
  type EngineOptions,
  type ResolvedEngineOptions,
  resolveEngineOptions,
} from "../options.js";
import { NO_HEADERS, type PollingContext, PollingTransport } from "../transport/polling.js";
import { DETACHED } from "../transport/transport.js";
import { WebSocketTransport } from "../transport/websocket.js";
import { DeflateWebSocketTransport } from "../transport/websocket-deflate.js";
import {
  acceptResponse,
  checkUpgrade,
  refuseUpgrade,
  type UpgradeCheck,
} from "../transport/websocket-handshake.js";
import { HeartbeatWheel } from "./heartbeat.js";
import { Outbox, type OutboxHost, type OutboxStats } from "./outbox.js";
import { queryParam, urlPath } from "./query.js";
import { hasForeignProperties, PollingRequestRecord, RequestRecord } from "./request-record.js";
import { Session, type SessionHost } from "./session.js";
import { generateSessionId } from "./session-id.js";

/** Payload of the `connection_error` event. */
export interface ConnectionError {
  req: IncomingMessage;
  code: EngineErrorCode;
  message: string;
  context: Record<string, unknown>;
}

/** Counters read by metrics; plain numbers, cheap to bump. */
export interface EngineStats extends OutboxStats {
  handshakes: number;
  upgrades: number;
  droppedVolatile: number;
  /** Closed sessions by reason ("transport close", "ping timeout", "slow consumer", …). */
  closes: Record<string, number>;
  /** Refused requests by Engine.IO error code. */
  connectionErrors: Record<number, number>;
}

const kHeaders = Symbol("switchyard.headers");
type EngineRequest = IncomingMessage & { [kHeaders]?: OutgoingHttpHeaders };

interface Refusal {
  ok: false;
  code: EngineErrorCode;
  message?: string;
  context?: Record<string, unknown>;
  /** Answer without CORS headers (the origin itself was refused). */
  hideFromOrigin?: boolean;
}
type Verdict = { ok: true } | Refusal;
const OK: Verdict = { ok: true };

function badRequest(name: string): Refusal {
  return { ok: false, code: EngineErrorCode.BAD_REQUEST, context: { name } };
}

function originRefused(origin: string | undefined): Refusal {
  return {
    ok: false,
    code: EngineErrorCode.FORBIDDEN,
    context: { name: "ORIGIN_NOT_ALLOWED", origin },
    hideFromOrigin: true,
  };
}

export class Engine extends EventEmitter implements SessionHost, PollingContext, OutboxHost {
  readonly opts: ResolvedEngineOptions;
  readonly wheel: HeartbeatWheel;
  /** The one outbound path of this engine's sessions (its own queues and write scheduler). */
  readonly outbox: Outbox;
  /** Open sessions by id. */
  readonly sessions = new Map<string, Session>();
  readonly stats: EngineStats = {
    handshakes: 0,
    upgrades: 0,
    droppedVolatile: 0,
    packetsOut: 0,
    bytesOut: 0,
    broadcasts: 0,
    deliveries: 0,
    closes: {},
    connectionErrors: {},
  };
  /** Session forwarding (option `forwarding`): serves other nodes' sessions through their owner. */
  readonly forwarder: Forwarder | undefined;
  private readonly wss: WebSocketServer;
  private closed = false;

  /**
   * @param opts engine options (validated here; a bad option throws InvalidOptionError)
   * @param defaults defaults that differ from the engine's own (the Socket.IO server's path)
   */
  constructor(opts: EngineOptions = {}, defaults: Partial<EngineOptions> = {}) {
    super();
    this.opts = resolveEngineOptions(opts, defaults);
    this.wheel = new HeartbeatWheel(this.opts.pingInterval, this.opts.pingTimeout);
    this.outbox = new Outbox(this);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: this.opts.maxHttpBufferSize,
      maxFragments: this.opts.maxFragments,
      perMessageDeflate:
        this.opts.perMessageDeflate === false
          ? false
          : { threshold: this.opts.perMessageDeflate.threshold },
    });
    this.wss.on("headers", (headers: string[], req: IncomingMessage) =>
      this.onWebSocketHeaders(headers, req),
    );
    this.forwarder = this.opts.forwarding === undefined ? undefined : new Forwarder(this);
  }

  /** Number of open sessions. */
  get clientsCount(): number {
    return this.sessions.size;
  }

  get maxHttpBufferSize(): number {
    return this.opts.maxHttpBufferSize;
  }

  get compressionThreshold(): number | false {
    return this.opts.httpCompression === false ? false : this.opts.httpCompression.threshold;
  }

  /**
   * Whether a request is addressed to this engine: as in engine.io, every URL under
   * `<path>/` (so `/socket.io/socket.io.js` is the engine's to answer, never the app's),
   * and the bare path too when addTrailingSlash is false.
   */
  handles(req: IncomingMessage): boolean {
    const pathname = urlPath(req.url ?? "/");
    const p = this.opts.path === "/" ? "" : this.opts.path;
    return pathname.startsWith(`${p}/`) || (!this.opts.addTrailingSlash && pathname === p);
  }

  /** Serves one HTTP request of the endpoint (polling, preflight, errors). */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const r = req as EngineRequest;
    if (req.method === "OPTIONS" && this.opts.cors !== undefined) {
      const cors = this.opts.cors;
      checkOrigin(cors, req.headers.origin, (allowed) => {
        if (!allowed) {
          this.refuse(req, res, originRefused(req.headers.origin));
          return;
        }
        res.writeHead(204, preflightHeaders(cors, req)).end();
      });
      return;
    }
    if (this.forwarder?.request(req, res) === true) return; // another node's session
    this.verify(req, false, (v) => {
      if (!v.ok) {
        this.refuse(req, res, v);
        return;
      }
      const sid = param(req, "sid");
      if (sid !== null) {
        const session = this.sessions.get(sid);
        if (session === undefined || !(session.transport instanceof PollingTransport)) {
          this.refuse(req, res, { ok: false, code: EngineErrorCode.UNKNOWN_SID, context: { sid } });
          return;
        }
        session.transport.onRequest(req, res);
        return;
      }
      this.handshakePolling(r, res);
    });
  }

  /** Serves a WebSocket upgrade request of the endpoint. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removed its own 'error' listener before handing the socket over; until `ws`
    // adds one, a reset from the peer (e.g. while allowRequest or the origin check is
    // pending, or while a refusal is written) would be an uncaught exception
    // (engine.io's CVE-2022-41940).
    socket.on("error", ignoreSocketError);
    if (this.forwarder?.upgrade(req, socket, head) === true) return; // another node's session
    this.verify(req, true, (v) => {
      if (!v.ok) {
        this.countError(req, v.code, v.message ?? ENGINE_ERROR_MESSAGES[v.code], v.context ?? {});
        abortUpgrade(socket, v.code, v.message);
        return;
      }
      if (this.closed || socket.destroyed) {
        socket.destroy();
        return;
      }
      const check = checkUpgrade(req);
      if (!check.ok) {
        this.countError(req, EngineErrorCode.BAD_REQUEST, check.message, {});
        refuseUpgrade(socket, check.status, check.message);
        return;
      }
      // The transport (or `ws`) installs its own error handling from here on.
      socket.off("error", ignoreSocketError);
      if (check.offersDeflate && this.opts.perMessageDeflate !== false) {
        // Compression is `ws`'s: it negotiates the extension and frames these connections.
        this.wss.handleUpgrade(req, socket, head, (ws) => this.onDeflateWebSocket(req, ws));
        return;
      }
      this.onWebSocket(req, socket, head, check);
    });
  }

  /** Attaches to a `node:http` server: requests under `path` are ours, the rest pass through. */
  attach(server: HttpServer): this {
    attachEngine(server, this);
    return this;
  }

  /** Creates an HTTP server for this engine alone and listens on `port`. */
  listen(port: number, host = "127.0.0.1", callback?: () => void): HttpServer {
    const server = createServer((_req, res) => {
      res.writeHead(404).end();
    });
    this.attach(server);
    server.listen(port, host, callback);
    return server;
  }

  /** Closes every session and stops accepting new ones (until {@link reopen}). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.forwarder?.close();
    // Deliver what this engine has queued now, so every session closes behind its packets
    // at once (other engines' queues are theirs).
    this.outbox.drain();
    for (const s of [...this.sessions.values()]) s.close();
    this.wheel.close();
    // The `ws` server has no socket of its own (noServer) and tracks no client: closing
    // it would only make it refuse upgrades after a restart.
  }

  /** Accepts sessions again after {@link close}: `io.close(() => io.listen(port))`. */
  reopen(): void {
    this.closed = false;
    void this.forwarder?.start();
  }

  /** Headers every response of a verified request carries (CORS + user hooks). */
  responseHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const r = req as EngineRequest;
    let h = r[kHeaders];
    if (h === undefined) {
      // Nothing to add (no CORS, no `headers` listener): one shared empty object.
      if (this.opts.cors === undefined && this.listenerCount("headers") === 0) return NO_HEADERS;
      h = corsHeaders(this.opts.cors, req);
      this.emit("headers", h, req);
      r[kHeaders] = h;
    }
    return h;
  }

  // ——— SessionHost ———

  onSessionClosed(session: Session, reason: string): void {
    this.sessions.delete(session.id);
    this.stats.closes[reason] = (this.stats.closes[reason] ?? 0) + 1;
  }

  onSessionUpgraded(): void {
    this.stats.upgrades++;
  }

  // ——— OutboxHost ———

  onVolatileDropped(): void {
    this.stats.droppedVolatile++;
  }

  // ——— PollingContext ———

  onTransportRefusal(req: IncomingMessage, code: EngineErrorCode, name: string): void {
    this.countError(req, code, ENGINE_ERROR_MESSAGES[code], { name });
  }

  // ——— internals ———

  /** Decides whether a request may proceed: the synchronous checks, then origin and allowRequest. */
  private verify(req: IncomingMessage, upgrade: boolean, done: (v: Verdict) => void): void {
    const refusal = this.precheck(req, upgrade);
    if (refusal !== undefined) {
      done(refusal);
      return;
    }
    const origin = req.headers.origin;
    if (
      (this.opts.cors === undefined || origin === undefined) &&
      (this.opts.allowRequest === undefined || param(req, "sid") !== null)
    ) {
      // No origin to check and no hook to ask: the common case, without closures.
      done(OK);
      return;
    }
    if (param(req, "sid") !== null) {
      // allowRequest is asked once, at the handshake.
      checkOrigin(this.opts.cors, origin, (allowed) => done(allowed ? OK : originRefused(origin)));
      return;
    }
    checkOrigin(this.opts.cors, origin, (allowed) => {
      if (!allowed) {
        done(originRefused(origin));
        return;
      }
      const allowRequest = this.opts.allowRequest;
      if (allowRequest === undefined) {
        done(OK);
        return;
      }
      let answered = false;
      const answer = (err: string | null | undefined, success: boolean) => {
        if (answered) return;
        answered = true;
        done(
          success
            ? OK
            : {
                ok: false,
                code: EngineErrorCode.FORBIDDEN,
                message: err ?? undefined,
                context: { name: "FORBIDDEN" },
              },
        );
      };
      try {
        allowRequest(req, answer);
      } catch (error) {
        // A throwing hook refuses the request; its message may hold internals, so the
        // client gets the spec's "Forbidden" and the error goes to `connection_error`.
        if (answered) return;
        answered = true;
        done({ ok: false, code: EngineErrorCode.FORBIDDEN, context: { name: "FORBIDDEN", error } });
      }
    });
  }

  /** The checks that need no callback: transport, protocol, sid and method. */
  private precheck(req: IncomingMessage, upgrade: boolean): Refusal | undefined {
    const transport = param(req, "transport");
    if (transport !== "polling" && transport !== "websocket") {
      return { ok: false, code: EngineErrorCode.UNKNOWN_TRANSPORT, context: { transport } };
    }
    if (!this.opts.transports.includes(transport) || (upgrade && transport !== "websocket")) {
      return { ok: false, code: EngineErrorCode.UNKNOWN_TRANSPORT, context: { transport } };
    }
    if (!upgrade && transport === "websocket") {
      return badRequest("TRANSPORT_MISMATCH");
    }
    if (param(req, "EIO") !== "4") {
      return {
        ok: false,
        code: EngineErrorCode.UNSUPPORTED_PROTOCOL_VERSION,
        context: { protocol: param(req, "EIO") },
      };
    }
    const origin = req.headers.origin;
    if (origin !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(origin)) {
      return badRequest("INVALID_ORIGIN");
    }
    const sid = param(req, "sid");
    if (sid !== null) {
      const session = this.sessions.get(sid);
      // A session past its pong deadline is gone, even if the heartbeat tick is late.
      if (session === undefined || this.wheel.expire(session)) {
        return { ok: false, code: EngineErrorCode.UNKNOWN_SID, context: { sid } };
      }
      if (upgrade) {
        // A session that cannot upgrade now (already on WebSocket, or upgrading) gets the
        // WebSocket handshake and then a close, as engine.io does (see adoptWebSocket).
        if (!this.opts.allowUpgrades) return badRequest("UPGRADE_REFUSED");
      } else if (session.transport.name !== transport) {
        return badRequest("TRANSPORT_MISMATCH");
      }
      return undefined;
    }
    if (req.method !== "GET") {
      return {
        ok: false,
        code: EngineErrorCode.BAD_HANDSHAKE_METHOD,
        context: { method: req.method },
      };
    }
    if (this.closed) {
      return { ok: false, code: EngineErrorCode.FORBIDDEN, message: "Server is closing" };
    }
    return undefined;
  }

  private refuse(req: IncomingMessage, res: ServerResponse, v: Refusal): void {
    const message = v.message ?? ENGINE_ERROR_MESSAGES[v.code];
    this.countError(req, v.code, message, v.context ?? {});
    // A refused origin gets no Access-Control-Allow-Origin: its page may not read the answer.
    const headers = v.hideFromOrigin === true ? {} : corsHeaders(this.opts.cors, req);
    sendEngineError(res, v.code, headers, message);
  }

  private countError(
    req: IncomingMessage,
    code: EngineErrorCode,
    message: string,
    context: Record<string, unknown>,
  ): void {
    this.stats.connectionErrors[code] = (this.stats.connectionErrors[code] ?? 0) + 1;
    if (this.listenerCount("connection_error") > 0) {
      this.emit("connection_error", { req, code, message, context } satisfies ConnectionError);
    }
  }

  private upgradesFor(transport: "polling" | "websocket"): string[] {
    return transport === "polling" &&
      this.opts.allowUpgrades &&
      this.opts.transports.includes("websocket")
      ? ["websocket"]
      : [];
  }

  private newSession(
    req: IncomingMessage | RequestRecord,
    transport: PollingTransport | WebSocketTransport | DeflateWebSocketTransport,
    id = generateSessionId(this.opts.nodeId),
  ): Session {
    const session = new Session(id, req, transport, this);
    this.sessions.set(session.id, session);
    this.stats.handshakes++;
    return session;
  }

  private handshakePolling(req: EngineRequest, res: ServerResponse): void {
    const transport = new PollingTransport(DETACHED, this);
    const kept = this.keepsRequest(req) ? req : new PollingRequestRecord(req);
    const session = this.newSession(kept, transport);
    const headers = { ...this.responseHeaders(req) };
    this.addInitialHeaders(headers, session.id, req);
    req[kHeaders] = headers;
    transport.answerHandshake(req, res, session.open(this.upgradesFor("polling")));
    this.emit("connection", session);
  }

  /**
   * A WebSocket we frame ourselves. A new session gets its id before the 101 so the
   * response can carry the cookie and the `initial_headers`/`headers` hooks' headers; the
   * 101 and the open packet leave in one write.
   */
  private onWebSocket(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    check: UpgradeCheck & { ok: true },
  ): void {
    const id = param(req, "sid") === null ? generateSessionId(this.opts.nodeId) : undefined;
    const headers: OutgoingHttpHeaders = {};
    if (id !== undefined) this.addInitialHeaders(headers, id, req);
    this.emit("headers", headers, req);
    const response = acceptResponse(check.key, check.protocol, headerLines(headers));
    const transport = new WebSocketTransport(
      socket,
      response,
      DETACHED,
      this.opts.maxHttpBufferSize,
      this.opts.maxFragments,
      this.outbox.writes,
    );
    this.adoptWebSocket(req, transport, id);
    // Also after a refusal (close 1008): reading sees the client's answer and ends TCP.
    transport.start(head);
  }

  /** A WebSocket that negotiated permessage-deflate, framed by `ws`. */
  private onDeflateWebSocket(req: IncomingMessage, ws: WebSocket): void {
    this.adoptWebSocket(req, new DeflateWebSocketTransport(ws, DETACHED), undefined);
  }

  /**
   * Gives a new WebSocket transport to the session it upgrades (`sid` in the query; closed
   * with 1008 if that session cannot upgrade), or opens a new session on it.
   */
  private adoptWebSocket(
    req: IncomingMessage,
    transport: WebSocketTransport | DeflateWebSocketTransport,
    id: string | undefined,
  ): void {
    const sid = param(req, "sid");
    if (sid !== null) {
      const session = this.sessions.get(sid);
      if (session === undefined || !session.canUpgrade()) transport.close(1008);
      else session.beginUpgrade(transport);
      return;
    }
    const session = this.newSession(
      this.keepsRequest(req) ? req : new RequestRecord(req),
      transport,
      id,
    );
    transport.send(session.open([]), false);
    this.emit("connection", session);
  }

  /**
   * Whether a new session keeps its opening request whole rather than a
   * {@link RequestRecord}: when a hook was handed the request (`allowRequest`, a
   * `headers` / `initial_headers` listener) or something put a property on it, the
   * session's `request` must be that very object.
   */
  private keepsRequest(req: IncomingMessage): boolean {
    return (
      this.opts.allowRequest !== undefined ||
      this.listenerCount("headers") > 0 ||
      this.listenerCount("initial_headers") > 0 ||
      hasForeignProperties(req)
    );
  }

  /**
   * `initial_headers` of a new permessage-deflate WebSocket session (`ws` asks before the
   * 101). No cookie here: that session's id is made once `ws` has upgraded.
   */
  private onWebSocketHeaders(headers: string[], req: IncomingMessage): void {
    if (param(req, "sid") !== null) return;
    const extra: OutgoingHttpHeaders = {};
    this.emit("initial_headers", extra, req);
    headers.push(...headerLines(extra));
  }

  private addInitialHeaders(headers: OutgoingHttpHeaders, id: string, req: IncomingMessage): void {
    const c = this.opts.cookie;
    if (c !== undefined) {
      let cookie = `${c.name}=${encodeURIComponent(id)}; Path=${c.path}`;
      if (c.httpOnly) cookie += "; HttpOnly";
      cookie += `; SameSite=${c.sameSite[0]!.toUpperCase()}${c.sameSite.slice(1)}`;
      if (c.secure) cookie += "; Secure";
      if (c.maxAge !== undefined) cookie += `; Max-Age=${c.maxAge}`;
      headers["Set-Cookie"] = cookie;
    }
    this.emit("initial_headers", headers, req);
  }
}

function ignoreSocketError(): void {}

/**
 * Header lines for a raw 101 response. Names and values are checked as `node:http` checks
 * them for any response; one that would not pass (e.g. a CR/LF from a hook) is left out.
 */
function headerLines(headers: OutgoingHttpHeaders): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      try {
        validateHeaderName(name);
        validateHeaderValue(name, String(one));
      } catch {
        continue;
      }
      lines.push(`${name}: ${one}`);
    }
  }
  return lines;
}

/** Parameter `name` of the request's query (as URLSearchParams.get). */
function param(req: IncomingMessage, name: string): string | null {
  return queryParam(req.url ?? "/", name);
}

/** Creates an engine and attaches it to `server` (the `engine.io` package's `attach`). */
export function attach(server: HttpServer, opts?: EngineOptions): Engine {
  return new Engine(opts).attach(server);
}
