/**
 * The main side of thread emitters (see thread-emitter.ts): `attachThreadEmitters(io)`
 * adopts workers, child processes and message ports, checks every operation they post,
 * replays it on the public broadcast API of `io` in arrival order, and acknowledges
 * what it delivered once per turn of the event loop (one message per endpoint per
 * turn, whatever the rate). A malformed operation is counted and dropped (and still
 * acknowledged when its id is the next one, so its emitter's window does not leak);
 * nothing a worker posts can throw here.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { Room } from "../adapter/adapter.js";
import { InvalidOptionError } from "../errors.js";
import type { Server } from "../server.js";
import {
  THREAD_EMITTER_TAG,
  type ThreadEmitterAck,
  type ThreadEmitterMessage,
} from "./thread-emitter.js";

/** Counters of a {@link ThreadEmitterHub}. */
export interface ThreadEmitterHubStats {
  /** Endpoints adopted and not yet gone. */
  endpoints: number;
  /** Operations delivered to the server. */
  delivered: number;
  /** Tagged messages refused as malformed (or failing on the server), dropped. */
  malformed: number;
  /** Acknowledgement messages sent back. */
  acks: number;
}

/** What the hub adopts: a `Worker`, a `ChildProcess` with an IPC channel, or a `MessagePort`. */
export interface ThreadEmitterPeer {
  on(ev: "message", fn: (msg: unknown) => void): unknown;
  off(ev: "message", fn: (msg: unknown) => void): unknown;
  once?(ev: string, fn: () => void): unknown;
  postMessage?(msg: unknown): void;
  send?(msg: unknown): boolean;
}

const OPS = new Set(["emit", "join", "leave", "disconnect", "serverSideEmit"]);
const MAX_NAME = 1024;
const MAX_ROOMS = 4096;

function isRoomList(v: unknown): v is Room[] {
  if (!Array.isArray(v) || v.length > MAX_ROOMS) return false;
  for (const r of v) if (typeof r !== "string" || r.length > MAX_NAME) return false;
  return true;
}

/** A checked operation, or the reason it is not one. */
function check(m: Partial<ThreadEmitterMessage>): string | undefined {
  if (typeof m.op !== "string" || !OPS.has(m.op)) return "unknown op";
  if (typeof m.nsp !== "string" || !m.nsp.startsWith("/") || m.nsp.length > MAX_NAME) {
    return "bad namespace";
  }
  if (!isRoomList(m.rooms) || !isRoomList(m.except)) return "bad rooms";
  if (m.volatile !== undefined && typeof m.volatile !== "boolean") return "bad volatile";
  if (m.compress !== undefined && typeof m.compress !== "boolean") return "bad compress";
  if (m.op === "emit" || m.op === "serverSideEmit") {
    if (!Array.isArray(m.data) || typeof m.data[0] !== "string") return "bad event";
  } else if (m.op === "join" || m.op === "leave") {
    if (!isRoomList(m.target)) return "bad target rooms";
  }
  return undefined;
}

/** Per adopted endpoint: the next expected id and the acknowledgement owed. */
class Link {
  next = 1;
  owed = 0;
  scheduled = false;
  live = true;
  constructor(
    readonly reply: (msg: ThreadEmitterAck) => void,
    readonly stats: ThreadEmitterHubStats,
  ) {}
}

/** Sends what `link` owes, once per turn of the event loop (scheduled by `#receive`). */
function sendAck(link: Link): void {
  link.scheduled = false;
  if (!link.live) return;
  link.stats.acks++;
  link.reply({ sy: THREAD_EMITTER_TAG, ack: link.owed });
}

/** `ChildProcess#send` emits "error" (fatal without a listener) unless given a callback. */
function ignoreSendError(): void {}

/**
 * Delivers the operations of thread emitters through `io`. Make one with
 * {@link attachThreadEmitters}.
 */
export class ThreadEmitterHub {
  readonly #io: Server;
  readonly #links = new Map<ThreadEmitterPeer, { link: Link; onMessage: (m: unknown) => void }>();
  readonly #stats: ThreadEmitterHubStats = { endpoints: 0, delivered: 0, malformed: 0, acks: 0 };
  /** Ports made by {@link port}: closed on release (others belong to the caller). */
  readonly #own = new WeakSet<object>();

  /** @internal use {@link attachThreadEmitters} */
  constructor(io: Server) {
    this.#io = io;
  }

  /** Counters. */
  get stats(): Readonly<ThreadEmitterHubStats> {
    return { ...this.#stats, endpoints: this.#links.size };
  }

  /**
   * Adopts a `Worker` (the worker emits on `parentPort`), a `ChildProcess` (the child
   * emits on `process`; fork it with `serialization: "advanced"` for binary) or a
   * `MessagePort`. Messages without the thread-emitter tag pass untouched. Returns a
   * function that stops listening; an endpoint that exits is released by itself.
   */
  adopt(peer: ThreadEmitterPeer): () => void {
    if (typeof peer !== "object" || peer === null || typeof peer.on !== "function") {
      throw new InvalidOptionError("peer", "a Worker, a ChildProcess or a MessagePort", peer);
    }
    const existing = this.#links.get(peer);
    if (existing !== undefined) return () => this.#release(peer);
    let reply: (m: ThreadEmitterAck) => void;
    if (typeof peer.postMessage === "function") {
      const post = peer.postMessage.bind(peer);
      reply = (m) => post(m);
    } else if (typeof peer.send === "function") {
      const send = peer.send.bind(peer);
      reply = (m) => {
        try {
          (send as (m: unknown, cb: () => void) => boolean)(m, ignoreSendError);
        } catch {
          // the child is gone; its exit releases the link
        }
      };
    } else {
      throw new InvalidOptionError(
        "peer",
        "a Worker, a ChildProcess with an IPC channel, or a MessagePort",
        peer,
      );
    }
    const link = new Link(reply, this.#stats);
    const onMessage = (m: unknown): void => this.#receive(link, m);
    this.#links.set(peer, { link, onMessage });
    peer.on("message", onMessage);
    const start = (peer as { start?: unknown }).start;
    if (typeof start === "function") start.call(peer);
    peer.once?.("exit", () => this.#release(peer));
    peer.once?.("close", () => this.#release(peer));
    return () => this.#release(peer);
  }

  /**
   * A new `MessagePort`, already adopted, to transfer to a worker
   * (`new Worker(file, { workerData: { port }, transferList: [port] })`), which emits
   * with `threadEmitter(workerData.port)`.
   */
  port(): MessagePort {
    const { port1, port2 } = new MessageChannel();
    this.#own.add(port1);
    this.adopt(port1);
    return port2;
  }

  /** Stops listening on every endpoint. */
  close(): void {
    for (const peer of [...this.#links.keys()]) this.#release(peer);
  }

  #release(peer: ThreadEmitterPeer): void {
    const entry = this.#links.get(peer);
    if (entry === undefined) return;
    this.#links.delete(peer);
    entry.link.live = false;
    peer.off("message", entry.onMessage);
    if (this.#own.has(peer)) (peer as MessagePort).close();
  }

  #receive(link: Link, msg: unknown): void {
    if (typeof msg !== "object" || msg === null) return;
    const m = msg as Partial<ThreadEmitterMessage>;
    if (m.sy !== THREAD_EMITTER_TAG) return;
    if (m.id !== link.next) {
      // Out of sequence (or no id): not ours to acknowledge.
      this.#stats.malformed++;
      return;
    }
    link.next++;
    const problem = check(m);
    if (problem === undefined) {
      try {
        this.#deliver(m as ThreadEmitterMessage);
        this.#stats.delivered++;
      } catch {
        this.#stats.malformed++; // e.g. a reserved event name
      }
    } else {
      this.#stats.malformed++;
    }
    link.owed = m.id;
    if (!link.scheduled) {
      link.scheduled = true;
      setImmediate(sendAck, link);
    }
  }

  #deliver(m: ThreadEmitterMessage): void {
    const nsp = this.#io.of(m.nsp);
    if (m.op === "serverSideEmit") {
      const data = m.data as unknown[];
      (nsp.serverSideEmit as (ev: string, ...args: unknown[]) => boolean)(
        data[0] as string,
        ...data.slice(1),
      );
      nsp.onServerSideEmit(data);
      return;
    }
    let op = nsp.to(m.rooms).except(m.except);
    if (m.volatile === true) op = op.volatile;
    if (m.compress !== undefined) op = op.compress(m.compress);
    switch (m.op) {
      case "emit": {
        const data = m.data as unknown[];
        (op.emit as (ev: string, ...args: unknown[]) => boolean)(
          data[0] as string,
          ...data.slice(1),
        );
        return;
      }
      case "join":
        op.socketsJoin(m.target as Room[]);
        return;
      case "leave":
        op.socketsLeave(m.target as Room[]);
        return;
      case "disconnect":
        op.disconnectSockets(m.close === true);
        return;
    }
  }
}

/**
 * The main side of thread emitters: `const hub = attachThreadEmitters(io)`, then
 * `hub.adopt(worker)` / `hub.adopt(child)` / `hub.port()`.
 */
export function attachThreadEmitters(io: Server): ThreadEmitterHub {
  if (typeof io !== "object" || io === null || typeof (io as Server).of !== "function") {
    throw new InvalidOptionError("io", "a Server", io);
  }
  return new ThreadEmitterHub(io);
}
