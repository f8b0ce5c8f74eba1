/**
 * Session forwarding, the receiving node's side: a polling request or WebSocket upgrade
 * whose sid names another live node of the directory is passed, as it is, to that
 * node's internal listener — a streaming HTTP proxy for polling, a byte pipe for the
 * upgraded connection — so the session never moves and no Socket.IO state crosses
 * nodes. Sids of this node, malformed sids and sids of unknown nodes are left to the
 * engine (served, or refused with 400 "Session ID unknown"), so a bogus sid costs one
 * map lookup and never a forward. See `docs/forwarding.md`.
 */
import {
  Agent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { connect, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { queryParam } from "../engine/query.js";
import { sessionNode } from "../engine/session-id.js";
import { EngineErrorCode } from "../errors.js";
import { corsHeaders } from "../http/cors.js";
import { abortUpgrade, endRawResponse, sendEngineError } from "../http/respond.js";
import type { CorsOptions } from "../options.js";
import { FORWARD_HEADER, signForward } from "./forward-auth.js";
import {
  type ForwardingOptions,
  type ResolvedForwardingOptions,
  resolveForwardingOptions,
} from "./forwarding-options.js";
import {
  type ForwardedRequestHandler,
  InternalListener,
  type InternalListenerStats,
} from "./internal-listener.js";
import { type DirectoryStats, NodeDirectory, type NodeEntry } from "./node-directory.js";

/** What the forwarder needs from its engine (the `Engine` is one). */
export interface ForwardingHost extends ForwardedRequestHandler {
  readonly opts: {
    readonly nodeId: string;
    readonly cors: Readonly<CorsOptions> | undefined;
    readonly pingInterval: number;
    readonly pingTimeout: number;
    readonly forwarding: ForwardingOptions | undefined;
  };
}

/** Counters of session forwarding (read by metrics and tests). */
export interface ForwardingStats {
  /** Polling requests passed to their owner. */
  requests: number;
  /** WebSocket upgrades piped to their owner. */
  upgrades: number;
  /** Forwards open now (requests in flight and WebSocket pipes). */
  active: number;
  /** Forwards that failed before the owner answered (owner gone, unreachable, timeout): the client got 400 "Session ID unknown". */
  failed: number;
  /** Sids naming a node absent from the directory (answered 400 by the engine, never forwarded). */
  unknownNode: number;
  /** Refused because `maxForwards` were open (503). */
  overCapacity: number;
  /** The owner's side. */
  listener: Readonly<InternalListenerStats>;
  directory: Readonly<DirectoryStats>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  FORWARD_HEADER,
]);

export class Forwarder {
  readonly options: ResolvedForwardingOptions;
  readonly directory: NodeDirectory;
  private readonly nodeId: string;
  private listener: InternalListener | undefined;
  private readonly listenerStats: InternalListenerStats = {
    served: 0,
    unauthorized: 0,
    notOwned: 0,
  };
  private readonly counters = {
    requests: 0,
    upgrades: 0,
    failed: 0,
    unknownNode: 0,
    overCapacity: 0,
  };
  private active = 0;
  private readonly agents = new Map<string, Agent>();
  private readonly pipes = new Set<Duplex>();
  private bound: { host: string; port: number } | undefined;
  private starting: Promise<void> | undefined;

  /**
   * Validates `host.opts.forwarding` (InvalidOptionError naming the option) and starts:
   * {@link ready} tells when this node is reachable and in the directory.
   */
  constructor(private readonly host: ForwardingHost) {
    this.options = resolveForwardingOptions(host.opts.forwarding as ForwardingOptions);
    this.nodeId = host.opts.nodeId;
    this.directory = new NodeDirectory({ ...this.options, nodeId: this.nodeId });
    void this.start();
  }

  /** Resolves once listening and announced; rejects if the internal listener could not listen. */
  ready(): Promise<void> {
    return this.start();
  }

  get stats(): ForwardingStats {
    return {
      ...this.counters,
      active: this.active,
      listener: this.listenerStats,
      directory: this.directory.stats,
    };
  }

  /** The advertised internal address, once listening. */
  get address(): { host: string; port: number } | undefined {
    return this.bound;
  }

  /** Listens on the internal address and joins the directory; resolves when both are done. */
  start(): Promise<void> {
    if (this.starting === undefined) {
      // One listener per start: a close() racing a start never closes the next one.
      const listener = new InternalListener(this.host, this.options, this.listenerStats);
      this.listener = listener;
      this.starting = (async () => {
        const a = await listener.listen();
        if (this.listener !== listener) {
          listener.close();
          return;
        }
        const advertised = {
          host: this.options.advertise.host ?? a.host,
          port: this.options.advertise.port ?? a.port,
        };
        this.bound = advertised;
        await this.directory.start(advertised.host, advertised.port);
      })();
      // Not a crash if nobody awaits ready(): a warning, and this node forwards nothing.
      this.starting.catch((err: Error) =>
        process.emitWarning(
          `session forwarding is off on this node: ${err.message}`,
          "SwitchyardWarning",
        ),
      );
    }
    return this.starting;
  }

  /** Leaves the directory ("bye"), stops the internal listener and ends every forward. */
  async close(): Promise<void> {
    const starting = this.starting;
    if (starting === undefined) return;
    this.starting = undefined;
    this.bound = undefined;
    this.listener?.close();
    this.listener = undefined;
    for (const p of this.pipes) p.destroy();
    this.pipes.clear();
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
    await starting.catch(() => {});
    await this.directory.stop();
  }

  /**
   * Forwards `req` if its sid names another live node; false leaves it to the engine
   * (no sid, this node's sid, a malformed one, an unknown node).
   */
  request(req: IncomingMessage, res: ServerResponse): boolean {
    const owner = this.owner(req.url);
    if (owner === undefined) return false;
    if (this.active >= this.options.maxForwards) {
      this.counters.overCapacity++;
      const body = JSON.stringify({
        code: EngineErrorCode.UNKNOWN_SID,
        message: "Too many forwards",
      });
      res.writeHead(503, {
        ...corsHeaders(this.host.opts.cors, req),
        "Retry-After": "1",
        "Content-Type": "application/json",
        "Content-Length": Buffer.byteLength(body),
      });
      res.end(body);
      return true;
    }
    this.counters.requests++;
    this.active++;
    const url = req.url ?? "/";
    const method = req.method ?? "GET";
    const headers = forwardHeaders(req.headers, req.socket.remoteAddress);
    headers[FORWARD_HEADER] = signForward(
      this.options.secret,
      this.nodeId,
      owner.nodeId,
      method,
      url,
    );
    let open = true;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (!open) return;
      open = false;
      this.active--;
      clearTimeout(timer);
    };
    const agent = this.agentFor(owner);
    const attempt = (retried: boolean) => {
      const up = httpRequest({
        host: owner.host,
        port: owner.port,
        method,
        path: url,
        headers,
        agent,
      });
      // Fails fast when the owner cannot be reached; a held GET may last a heartbeat.
      clearTimeout(timer);
      timer = setTimeout(
        () => up.destroy(new Error("forward timed out")),
        this.host.opts.pingInterval + this.host.opts.pingTimeout + this.options.connectTimeout,
      );
      up.on("socket", (s: Socket) => {
        if (!s.connecting) return;
        const t = setTimeout(
          () => up.destroy(new Error("connect timed out")),
          this.options.connectTimeout,
        );
        s.once("connect", () => clearTimeout(t));
        s.once("close", () => clearTimeout(t));
      });
      up.on("response", (ur) => {
        res.writeHead(ur.statusCode ?? 502, responseHeaders(ur.headers));
        ur.pipe(res);
        ur.on("end", finish);
        ur.on("aborted", () => res.destroy());
        ur.on("error", () => res.destroy());
      });
      up.on("error", (err: NodeJS.ErrnoException) => {
        // The owner closed an idle kept-alive connection just as we reused it: it never
        // read the request. A GET has no body to replay, so it is sent once more.
        if (
          !retried &&
          open &&
          method === "GET" &&
          up.reusedSocket &&
          err.code === "ECONNRESET" &&
          !res.headersSent
        ) {
          attempt(true);
          return;
        }
        finish();
        if (res.headersSent) {
          res.destroy();
          return;
        }
        this.counters.failed++;
        // The protocol's answer for a session this node cannot serve: the client drops
        // the session and reconnects (to a live node).
        sendEngineError(res, EngineErrorCode.UNKNOWN_SID, corsHeaders(this.host.opts.cors, req));
      });
      res.once("close", () => {
        if (!res.writableFinished) up.destroy();
      });
      if (method === "GET") up.end();
      else {
        req.on("error", () => up.destroy());
        req.pipe(up);
      }
    };
    res.once("close", finish);
    attempt(false);
    return true;
  }

  /** Pipes an upgrade of another live node's session to it; false leaves it to the engine. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const owner = this.owner(req.url);
    if (owner === undefined) return false;
    if (this.active >= this.options.maxForwards) {
      this.counters.overCapacity++;
      endRawResponse(socket, "503 Service Unavailable", "text/plain", "Too many forwards");
      return true;
    }
    this.counters.upgrades++;
    this.active++;
    const url = req.url ?? "/";
    const token = signForward(
      this.options.secret,
      this.nodeId,
      owner.nodeId,
      req.method ?? "GET",
      url,
    );
    const up = connect(owner.port, owner.host);
    up.setNoDelay(true);
    if (socket instanceof Socket) socket.setNoDelay(true);
    this.pipes.add(up);
    let connected = false;
    let open = true;
    const t = setTimeout(
      () => up.destroy(new Error("connect timed out")),
      this.options.connectTimeout,
    );
    up.once("connect", () => {
      clearTimeout(t);
      connected = true;
      up.write(requestHead(req, url, token));
      if (head.length > 0) up.write(head);
      socket.pipe(up);
      up.pipe(socket);
    });
    up.on("error", () => {
      if (!connected) {
        this.counters.failed++;
        abortUpgrade(socket, EngineErrorCode.UNKNOWN_SID);
      } else socket.destroy();
    });
    up.once("close", () => {
      clearTimeout(t);
      this.pipes.delete(up);
      if (open) {
        open = false;
        this.active--;
      }
      if (connected) socket.destroy();
    });
    socket.on("error", () => up.destroy());
    socket.once("close", () => up.destroy());
    return true;
  }

  /** The live node a request must go to, or undefined when it is this engine's to answer. */
  private owner(url: string | undefined): NodeEntry | undefined {
    if (this.bound === undefined) return undefined;
    const sid = queryParam(url ?? "/", "sid");
    if (sid === null) return undefined;
    const node = sessionNode(sid);
    if (node === undefined || node === this.nodeId) return undefined;
    const entry = this.directory.get(node);
    if (entry === undefined) this.counters.unknownNode++;
    return entry;
  }

  private agentFor(e: NodeEntry): Agent {
    const key = `${e.nodeId}@${e.host}:${e.port}`;
    let a = this.agents.get(key);
    if (a === undefined) {
      a = new Agent({ keepAlive: true, maxSockets: this.options.maxForwards, maxFreeSockets: 256 });
      this.agents.set(key, a);
    }
    return a;
  }
}

/** The client's headers minus hop-by-hop ones, plus X-Forwarded-For. */
function forwardHeaders(h: IncomingHttpHeaders, remote: string | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(h)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  if (remote !== undefined) {
    const prior = h["x-forwarded-for"];
    out["x-forwarded-for"] = prior === undefined ? remote : `${prior}, ${remote}`;
  }
  return out;
}

function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(h)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** The upgrade request as the client sent it (raw header lines), with our token. */
function requestHead(req: IncomingMessage, url: string, token: string): string {
  let head = `${req.method ?? "GET"} ${url} HTTP/1.1\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === FORWARD_HEADER) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return `${head}${FORWARD_HEADER}: ${token}\r\n\r\n`;
}
