/**
 * A {@link Bus} between the processes of one host, over their IPC channels to a common
 * parent: each worker's {@link IpcBus} talks to the {@link IpcRelay} in the primary
 * (node:cluster, or any parent that `child_process.fork`ed its workers), which hands
 * every publish to the workers subscribed to its channel (the publisher included, as a
 * broker does). No Redis needed for several cores of one machine; several machines still
 * need a broker bus (each worker then uses a `RedisBus`/`AmqpBus` instead).
 *
 * IPC messages are tagged objects (`{ sy: "ipc-bus", … }`) so the application's own
 * `process.send` traffic passes untouched. Payloads travel as binary with
 * `serialization: "advanced"` (what {@link cluster} sets up) and as Node's JSON form of a
 * Buffer otherwise; both are accepted.
 */
import type { Serializable } from "node:child_process";
import { ErrorCode, SwitchyardError } from "../errors.js";
import { checkOptionKeys, positiveInt } from "../options.js";
import type { BusHandler, BusStats } from "./bus.js";
import { BusBase, type OfflineQueueOptions } from "./bus-base.js";

/** Tag of every IPC message of the bus protocol. */
export const IPC_BUS_TAG = "ipc-bus";

/** Options of an {@link IpcBus}. */
export interface IpcBusOptions {
  /** Bounds of the queue of publishes waiting for the IPC channel (see `OfflineQueueOptions`). @default { maxMessages: 10000, maxBytes: 16 MiB, timeout: 10000 } */
  offlineQueue?: OfflineQueueOptions;
  /** Publishes handed to the IPC channel and not yet written; more wait in the offline queue. @default 1024 */
  maxInFlight?: number;
}

const IPC_BUS_KEYS = Object.freeze({
  offlineQueue: true,
  maxInFlight: true,
} as const satisfies Record<keyof IpcBusOptions, true>);

/** The message shapes of the protocol (worker → primary: hello, sub, unsub, pub, bye; primary → worker: ok, msg). */
interface IpcBusMessage {
  sy: typeof IPC_BUS_TAG;
  t: "hello" | "sub" | "unsub" | "pub" | "bye" | "ok" | "msg";
  /** Request id (hello, sub, ok). */
  id?: number;
  /** Channel (sub, unsub, pub, msg). */
  c?: string;
  /** Payload (pub, msg). */
  p?: unknown;
}

/** The IPC endpoint a bus or relay talks through: `process` in a worker, a `Worker`/`ChildProcess` in the primary. */
export interface IpcEndpoint {
  readonly connected: boolean;
  send(message: Serializable, callback?: (err: Error | null) => void): boolean;
  on(event: "message", listener: (message: unknown) => void): unknown;
  on(event: "disconnect", listener: () => void): unknown;
  off(event: "message", listener: (message: unknown) => void): unknown;
  off(event: "disconnect", listener: () => void): unknown;
}

function isBusMessage(m: unknown): m is IpcBusMessage {
  return typeof m === "object" && m !== null && (m as { sy?: unknown }).sy === IPC_BUS_TAG;
}

/** The payload as a Buffer (advanced serialization gives a Uint8Array, JSON `{ type: "Buffer", data }`), or undefined if it is neither. */
function toBuffer(p: unknown): Buffer | undefined {
  if (Buffer.isBuffer(p)) return p;
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (typeof p === "object" && p !== null) {
    const o = p as { type?: unknown; data?: unknown };
    if (o.type === "Buffer" && Array.isArray(o.data) && o.data.length <= 64 * 1024 * 1024) {
      return Buffer.from(o.data as number[]);
    }
  }
  return undefined;
}

/** {@link BusStats} of an {@link IpcBus} plus what it ignored. */
export interface IpcBusStats extends BusStats {
  /** Bus messages from the primary that were malformed or for a channel without handler. */
  ignored: number;
}

/**
 * One worker's connection to the {@link IpcRelay} of its primary. Built on the same
 * offline queue as the broker buses: publishes wait (bounded) until the relay answered
 * the bus's hello, while more than `maxInFlight` are unwritten, and are dropped and
 * counted once the channel to the primary is gone. `flush()` resolves once every publish
 * was written to the channel.
 *
 * ```ts
 * const io = new Server(http, { adapter: createAdapter(new IpcBus()) }); // in a worker
 * ```
 */
export class IpcBus extends BusBase<IpcBusStats> {
  private readonly endpoint: IpcEndpoint;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private readonly handlers = new Map<string, BusHandler>();
  private nextId = 1;
  private readonly pending = new Map<number, () => void>();
  private helloId = 0;

  /**
   * @param options See {@link IpcBusOptions}.
   * @param endpoint The channel to the primary; `process` (which must have an IPC channel).
   */
  constructor(options: IpcBusOptions = {}, endpoint?: IpcEndpoint) {
    if (typeof options !== "object" || options === null) {
      throw new SwitchyardError(ErrorCode.INVALID_OPTION, "IpcBus options must be an object");
    }
    checkOptionKeys(options, IPC_BUS_KEYS);
    super(
      "IPC",
      { published: 0, received: 0, dropped: 0, queued: 0, outages: 0, ignored: 0 },
      options.offlineQueue,
    );
    this.maxInFlight = positiveInt("maxInFlight", options.maxInFlight ?? 1024);
    const ep = endpoint ?? (process as unknown as IpcEndpoint);
    if (typeof (ep as { send?: unknown }).send !== "function") {
      throw new SwitchyardError(
        ErrorCode.INVALID_OPTION,
        "IpcBus needs an IPC channel to its primary: run it in a node:cluster worker or a child_process.fork()ed process",
      );
    }
    this.endpoint = ep;
    ep.on("message", this.onMessage);
    ep.on("disconnect", this.onDisconnect);
    this.helloId = this.nextId++;
    this.pending.set(this.helloId, () => this.markUp());
    if (ep.connected) this.write({ sy: IPC_BUS_TAG, t: "hello", id: this.helloId });
    else queueMicrotask(this.onDisconnect);
  }

  protected send(channel: string, payload: Buffer): boolean {
    if (!this.endpoint.connected || this.inFlight >= this.maxInFlight) return false;
    this.inFlight++;
    // A write that fails reports it through onWritten (sent(false): dropped, counted).
    this.write({ sy: IPC_BUS_TAG, t: "pub", c: channel, p: payload }, this.onWritten);
    return true;
  }

  /** Subscribes `handler` to `channel` (one handler per channel); resolves once the relay confirmed it. */
  subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (typeof channel !== "string")
      return Promise.reject(new TypeError("channel must be a string"));
    if (typeof handler !== "function") {
      return Promise.reject(new TypeError("handler must be a function"));
    }
    this.handlers.set(channel, handler);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.write({ sy: IPC_BUS_TAG, t: "sub", id, c: channel });
    });
  }

  unsubscribe(channel: string): Promise<void> {
    if (this.handlers.delete(channel)) this.write({ sy: IPC_BUS_TAG, t: "unsub", c: channel });
    return Promise.resolve();
  }

  protected async doClose(): Promise<void> {
    this.handlers.clear();
    this.write({ sy: IPC_BUS_TAG, t: "bye" });
    for (const resolve of this.pending.values()) resolve();
    this.pending.clear();
    this.endpoint.off("message", this.onMessage);
    this.endpoint.off("disconnect", this.onDisconnect);
  }

  protected connectionLostError(): Error {
    return new SwitchyardError(ErrorCode.CLOSED, "the IPC channel to the primary is closed");
  }

  /** Writes a protocol message if the channel is open; never throws. */
  private write(msg: IpcBusMessage, cb?: (err: Error | null) => void): boolean {
    if (!this.endpoint.connected) {
      if (cb !== undefined) queueMicrotask(() => cb(this.connectionLostError()));
      return false;
    }
    try {
      this.endpoint.send(msg as unknown as Serializable, cb);
      return true;
    } catch (err) {
      if (cb !== undefined) queueMicrotask(() => cb(err as Error));
      return false;
    }
  }

  private readonly onWritten = (err: Error | null): void => {
    const wasFull = this.inFlight >= this.maxInFlight;
    this.inFlight--;
    this.sent(err === null || err === undefined);
    if (wasFull) this.drainQueue();
  };

  private readonly onMessage = (m: unknown): void => {
    if (!isBusMessage(m)) return; // the application's own IPC traffic
    if (m.t === "ok") {
      const done = typeof m.id === "number" ? this.pending.get(m.id) : undefined;
      if (done === undefined) {
        this.counters.ignored++;
        return;
      }
      this.pending.delete(m.id!);
      done();
      return;
    }
    if (m.t !== "msg" || typeof m.c !== "string") {
      this.counters.ignored++;
      return;
    }
    const handler = this.handlers.get(m.c);
    const payload = toBuffer(m.p);
    if (handler === undefined || payload === undefined) {
      this.counters.ignored++;
      return;
    }
    this.dispatch(handler, m.c, payload);
  };

  private readonly onDisconnect = (): void => {
    this.markDown();
  };
}

/** Counters of an {@link IpcRelay}. */
export interface IpcRelayStats {
  /** Publishes received from workers. */
  published: number;
  /** Copies handed to subscribed workers. */
  delivered: number;
  /** Bus messages from workers that were malformed (counted, ignored). */
  malformed: number;
  /** Workers attached now. */
  workers: number;
}

interface Peer {
  readonly endpoint: IpcEndpoint;
  readonly channels: Set<string>;
  readonly onMessage: (m: unknown) => void;
  readonly onGone: () => void;
}

/** Longest channel name a worker may subscribe to or publish on. */
const MAX_CHANNEL_LENGTH = 4096;

/**
 * The broker of a host's {@link IpcBus}es, living in the primary: `attach(worker)` for
 * every forked worker (the {@link cluster} helper does it). Keeps each worker's
 * subscriptions and hands every publish to the workers subscribed to its channel, in the
 * order each publisher sent them. A worker's subscriptions end with its IPC channel.
 * Malformed bus messages are counted and ignored, never thrown.
 */
export class IpcRelay {
  private readonly peers = new Map<IpcEndpoint, Peer>();
  /** Channel → the workers subscribed to it. */
  private readonly subscribers = new Map<string, Set<Peer>>();
  private readonly counters: Omit<IpcRelayStats, "workers"> = {
    published: 0,
    delivered: 0,
    malformed: 0,
  };

  /** A snapshot of the counters. */
  get stats(): IpcRelayStats {
    return { ...this.counters, workers: this.peers.size };
  }

  /** Relays the bus messages of `worker` (a `cluster.Worker` or a forked `ChildProcess`) until it disconnects. */
  attach(worker: IpcEndpoint): void {
    if (this.peers.has(worker)) return;
    const peer: Peer = {
      endpoint: worker,
      channels: new Set(),
      onMessage: (m) => this.onMessage(peer, m),
      onGone: () => this.detach(worker),
    };
    this.peers.set(worker, peer);
    worker.on("message", peer.onMessage);
    worker.on("disconnect", peer.onGone);
  }

  /** Stops relaying for `worker` and drops its subscriptions. */
  detach(worker: IpcEndpoint): void {
    const peer = this.peers.get(worker);
    if (peer === undefined) return;
    this.peers.delete(worker);
    worker.off("message", peer.onMessage);
    worker.off("disconnect", peer.onGone);
    for (const c of peer.channels) this.removeSubscriber(c, peer);
    peer.channels.clear();
  }

  private onMessage(peer: Peer, m: unknown): void {
    if (!isBusMessage(m)) return;
    switch (m.t) {
      case "hello":
        if (typeof m.id !== "number") break;
        reply(peer, { sy: IPC_BUS_TAG, t: "ok", id: m.id });
        return;
      case "sub": {
        if (typeof m.id !== "number" || !validChannel(m.c)) break;
        if (!peer.channels.has(m.c)) {
          peer.channels.add(m.c);
          let set = this.subscribers.get(m.c);
          if (set === undefined) {
            set = new Set();
            this.subscribers.set(m.c, set);
          }
          set.add(peer);
        }
        reply(peer, { sy: IPC_BUS_TAG, t: "ok", id: m.id });
        return;
      }
      case "unsub":
        if (!validChannel(m.c)) break;
        if (peer.channels.delete(m.c)) this.removeSubscriber(m.c, peer);
        return;
      case "bye":
        for (const c of peer.channels) this.removeSubscriber(c, peer);
        peer.channels.clear();
        return;
      case "pub": {
        if (!validChannel(m.c) || toBuffer(m.p) === undefined) break;
        this.counters.published++;
        const set = this.subscribers.get(m.c);
        if (set === undefined) return;
        const out: IpcBusMessage = { sy: IPC_BUS_TAG, t: "msg", c: m.c, p: m.p };
        for (const p of set) {
          if (reply(p, out)) this.counters.delivered++;
        }
        return;
      }
    }
    this.counters.malformed++;
  }

  private removeSubscriber(channel: string, peer: Peer): void {
    const set = this.subscribers.get(channel);
    if (set === undefined) return;
    set.delete(peer);
    if (set.size === 0) this.subscribers.delete(channel);
  }
}

function validChannel(c: unknown): c is string {
  return typeof c === "string" && c.length > 0 && c.length <= MAX_CHANNEL_LENGTH;
}

/** Sends to a worker unless its channel is gone; never throws. */
function reply(peer: Peer, msg: IpcBusMessage): boolean {
  if (!peer.endpoint.connected) return false;
  try {
    peer.endpoint.send(msg as unknown as Serializable);
    return true;
  } catch {
    return false;
  }
}
