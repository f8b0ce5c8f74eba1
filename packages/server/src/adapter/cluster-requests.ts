/**
 * Pending cluster requests of one adapter: who still has to answer, what came back, and
 * when to give up. Requests are addressed to the nodes alive when they start; each
 * completes as soon as every one of them answered or died, otherwise at its deadline.
 * No I/O here: the adapter publishes, this table keeps score.
 */
import type { ClusterSocketInfo } from "@switchyard/protocol";
import { AckTimeoutError } from "../errors.js";
import type { AdapterSocket } from "./adapter.js";

/** A response, as the adapter decoded it. */
export type ClusterResponse =
  | { type: "fetch-res"; uid: string; rid: string; sockets: ClusterSocketInfo[] }
  | { type: "emit-res"; uid: string; rid: string; args: unknown[] }
  | { type: "broadcast-count"; uid: string; rid: string; count: number }
  | { type: "broadcast-ack"; uid: string; rid: string; args: unknown[] };

interface FetchRequest {
  readonly kind: "fetch";
  readonly waiting: Set<string>;
  readonly total: number;
  readonly timer: NodeJS.Timeout;
  readonly sockets: AdapterSocket[];
  readonly resolve: (sockets: AdapterSocket[]) => void;
  readonly reject: (err: Error) => void;
}

interface EmitRequest {
  readonly kind: "emit";
  readonly waiting: Set<string>;
  readonly total: number;
  readonly timer: NodeJS.Timeout;
  readonly responses: unknown[];
  readonly ack: (err: Error | null, responses: unknown[]) => void;
}

/** The running count of a broadcast with acks; the adapter adds its local clients. */
export interface BroadcastRequest {
  readonly kind: "broadcast";
  /** Nodes whose client count is still due. */
  readonly waiting: Set<string>;
  /** Nodes asked (their acks count even after their count arrived). */
  readonly asked: ReadonlySet<string>;
  readonly timer: NodeJS.Timeout;
  /** Ends the count phase at requestsTimeout when acks may come later than that. */
  readonly countTimer: NodeJS.Timeout | undefined;
  localCount: number;
  remoteCount: number;
  remoteAcks: number;
  counted: boolean;
  readonly clientCountCallback: (clientCount: number) => void;
  readonly ack: (...args: unknown[]) => void;
}

type PendingRequest = FetchRequest | EmitRequest | BroadcastRequest;

/** Turns a socket described by node `uid` into what fetchSockets returns. */
export type RemoteSocketFactory = (uid: string, info: ClusterSocketInfo) => AdapterSocket;

let ridCounter = 0;

export class ClusterRequests {
  private readonly pending = new Map<string, PendingRequest>();
  private readonly prefix: string;
  private readonly requestsTimeout: number;
  private readonly makeSocket: RemoteSocketFactory;

  constructor(uid: string, requestsTimeout: number, makeSocket: RemoteSocketFactory) {
    this.prefix = `${uid}:`;
    this.requestsTimeout = requestsTimeout;
    this.makeSocket = makeSocket;
  }

  /** A request id unique to this node. */
  newRid(): string {
    ridCounter = (ridCounter + 1) % Number.MAX_SAFE_INTEGER;
    return this.prefix + ridCounter.toString(36);
  }

  /** fetchSockets: resolves with `local` plus every answering node's sockets. */
  fetch(rid: string, targets: Set<string>, local: AdapterSocket[]): Promise<AdapterSocket[]> {
    return new Promise((resolve, reject) => {
      this.pending.set(rid, {
        kind: "fetch",
        waiting: targets,
        total: targets.size,
        timer: setTimeout(expire, this.requestsTimeout, this, rid),
        sockets: local,
        resolve,
        reject,
      });
    });
  }

  /** serverSideEmit with ack: `ack(err, responses)` once. */
  emit(
    rid: string,
    targets: Set<string>,
    ack: (err: Error | null, responses: unknown[]) => void,
  ): void {
    this.pending.set(rid, {
      kind: "emit",
      waiting: targets,
      total: targets.size,
      timer: setTimeout(expire, this.requestsTimeout, this, rid),
      responses: [],
      ack,
    });
  }

  /**
   * A broadcast with acks to `asked`. The client count is reported once, for the whole
   * cluster, when every asked node counted (or died, or requestsTimeout passed): the
   * broadcast operator completes once it has as many acks as the count, so a partial
   * count would end it early. Acks are routed until `lifetime` ms.
   */
  broadcast(
    rid: string,
    asked: Set<string>,
    lifetime: number,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): BroadcastRequest {
    const req: BroadcastRequest = {
      kind: "broadcast",
      waiting: new Set(asked),
      asked,
      timer: setTimeout(expire, lifetime, this, rid),
      countTimer:
        lifetime > this.requestsTimeout
          ? setTimeout(endCount, this.requestsTimeout, this, rid)
          : undefined,
      localCount: 0,
      remoteCount: 0,
      remoteAcks: 0,
      counted: false,
      clientCountCallback,
      ack,
    };
    this.pending.set(rid, req);
    return req;
  }

  /** Records a response; a late one (request done or expired) is ignored. */
  onResponse(msg: ClusterResponse): void {
    const req = this.pending.get(msg.rid);
    if (req === undefined) return;
    const from = msg.uid;
    switch (msg.type) {
      case "fetch-res":
        if (req.kind !== "fetch" || !req.waiting.delete(from)) return;
        for (const info of msg.sockets) req.sockets.push(this.makeSocket(from, info));
        break;
      case "emit-res":
        if (req.kind !== "emit" || !req.waiting.delete(from)) return;
        req.responses.push(msg.args[0]);
        break;
      case "broadcast-count":
        if (req.kind !== "broadcast" || !req.waiting.delete(from)) return;
        req.remoteCount += msg.count;
        break;
      case "broadcast-ack":
        if (req.kind !== "broadcast" || !req.asked.has(from)) return;
        req.remoteAcks++;
        req.ack(...msg.args);
        break;
    }
    this.progress(msg.rid, req);
  }

  /** Node `uid` died or left: nothing more is awaited from it. */
  nodeGone(uid: string): void {
    for (const [rid, req] of this.pending) {
      if (req.waiting.delete(uid)) this.progress(rid, req);
    }
  }

  /** Completes every request with what it has (the adapter closes). */
  finishAll(): void {
    for (const rid of [...this.pending.keys()]) this.finish(rid, false);
  }

  /** Count phase over (all counted, or requestsTimeout): report the total once. */
  reportCount(rid: string): void {
    const req = this.pending.get(rid);
    if (req?.kind !== "broadcast" || req.counted) return;
    req.counted = true;
    clearTimeout(req.countTimer);
    req.clientCountCallback(req.localCount + req.remoteCount);
    if (req.waiting.size === 0 && req.remoteAcks >= req.remoteCount) this.finish(rid, false);
  }

  /** Ends a request: complete, or (`timedOut`) at its deadline. */
  finish(rid: string, timedOut: boolean): void {
    const req = this.pending.get(rid);
    if (req === undefined) return;
    this.pending.delete(rid);
    clearTimeout(req.timer);
    switch (req.kind) {
      case "fetch":
        if (timedOut) req.reject(new AckTimeoutError(missing("fetchSockets", req)));
        else req.resolve(req.sockets);
        return;
      case "emit":
        req.ack(
          timedOut ? new AckTimeoutError(missing("serverSideEmit", req)) : null,
          req.responses,
        );
        return;
      case "broadcast":
        // Acks still due after the deadline are dropped; the operator's own timeout
        // (the same deadline) reports them missing.
        if (!req.counted) {
          req.counted = true;
          clearTimeout(req.countTimer);
          req.clientCountCallback(req.localCount + req.remoteCount);
        }
        return;
    }
  }

  private progress(rid: string, req: PendingRequest): void {
    if (req.kind !== "broadcast") {
      if (req.waiting.size === 0) this.finish(rid, false);
    } else if (!req.counted) {
      if (req.waiting.size === 0) this.reportCount(rid);
    } else if (req.remoteAcks >= req.remoteCount) {
      this.finish(rid, false);
    }
  }
}

function missing(what: string, req: FetchRequest | EmitRequest): string {
  return `${what} timed out: ${req.total - req.waiting.size} of ${req.total} nodes answered`;
}

function expire(table: ClusterRequests, rid: string): void {
  table.finish(rid, true);
}

function endCount(table: ClusterRequests, rid: string): void {
  table.reportCount(rid);
}
