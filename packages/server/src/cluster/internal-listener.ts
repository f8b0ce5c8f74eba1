/**
 * The owner's side of session forwarding: a separate HTTP listener (loopback and an
 * ephemeral port by default) that takes only authenticated requests and upgrades of
 * this node's own sessions from other nodes, and hands them to the engine exactly as if
 * the client had sent them here. Handshakes, other nodes' sids, bad tokens: refused,
 * never forwarded again (no loops).
 */
import {
  createServer,
  type Server as HttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { queryParam } from "../engine/query.js";
import { sessionNode } from "../engine/session-id.js";
import { EngineErrorCode } from "../errors.js";
import { abortUpgrade, endRawResponse, sendEngineError } from "../http/respond.js";
import { FORWARD_HEADER, verifyForward } from "./forward-auth.js";
import type { ResolvedForwardingOptions } from "./forwarding-options.js";

/** What the internal listener needs from the engine it serves. */
export interface ForwardedRequestHandler {
  readonly opts: { readonly nodeId: string };
  handles(req: IncomingMessage): boolean;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** Counters of the internal listener. */
export interface InternalListenerStats {
  /** Forwarded requests and upgrades served for other nodes. */
  served: number;
  /** Refused: missing, malformed, expired or badly signed token (403). */
  unauthorized: number;
  /** Refused: authenticated, but not a session of this node (400 "Session ID unknown"). */
  notOwned: number;
}

/** One listening period of the internal listener (a new one after each close). */
export class InternalListener {
  private readonly server: HttpServer;
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(
    private readonly handler: ForwardedRequestHandler,
    private readonly o: ResolvedForwardingOptions,
    readonly stats: InternalListenerStats,
  ) {
    this.server = createServer((req, res) => this.onRequest(req, res));
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.once("close", () => this.sockets.delete(s));
    });
    this.server.on("clientError", (_err, socket: Duplex) => socket.destroy());
    this.server.maxConnections = o.maxForwards;
    // Idle forwarding connections are kept for reuse (the sender's agent follows the
    // Keep-Alive hint); headers must come quickly, bodies are small.
    this.server.keepAliveTimeout = 30_000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      // exclusive: in a node:cluster worker, a shared listen (port 0 included) would hand
      // this node's forwards to every worker round-robin; each node needs its own port.
      const { port, host } = this.o.listen;
      this.server.listen({ port, host, exclusive: true }, () => {
        this.server.off("error", reject);
        if (this.closed) this.server.close();
        const a = this.server.address() as AddressInfo;
        resolve({ host: this.o.listen.host, port: a.port });
      });
    });
  }

  /** Stops listening and ends every connection (piped WebSockets included). */
  close(): void {
    this.closed = true;
    if (this.server.listening) this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private check(req: IncomingMessage): "ok" | "unauthorized" | "not owned" {
    const url = req.url ?? "/";
    const token = req.headers[FORWARD_HEADER];
    const from = verifyForward(
      this.o.secret,
      this.handler.opts.nodeId,
      token,
      req.method ?? "GET",
      url,
      this.o.replayWindow,
    );
    if (from === undefined) {
      this.stats.unauthorized++;
      return "unauthorized";
    }
    delete req.headers[FORWARD_HEADER];
    const sid = queryParam(url, "sid");
    if (
      sid === null ||
      sessionNode(sid) !== this.handler.opts.nodeId ||
      !this.handler.handles(req)
    ) {
      this.stats.notOwned++;
      return "not owned";
    }
    this.stats.served++;
    return "ok";
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const verdict = this.check(req);
    if (verdict === "ok") {
      this.handler.handleRequest(req, res);
    } else if (verdict === "unauthorized") {
      res.writeHead(403, { Connection: "close" }).end();
    } else {
      sendEngineError(res, EngineErrorCode.UNKNOWN_SID);
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on("error", ignoreError);
    const verdict = this.check(req);
    if (verdict === "ok") {
      socket.off("error", ignoreError);
      this.handler.handleUpgrade(req, socket, head);
    } else if (verdict === "unauthorized") {
      endRawResponse(socket, "403 Forbidden", "text/plain", "");
    } else {
      abortUpgrade(socket, EngineErrorCode.UNKNOWN_SID);
    }
  }
}

function ignoreError(): void {}
