/**
 * Emitting from a `worker_threads` worker or a forked `child_process` of a Switchyard
 * app, through the main thread's server, without a broker. The worker side
 * ({@link threadEmitter}) only describes operations (`emit`, `socketsJoin`, …) and posts
 * them, tagged and numbered, over the thread's port or the child's IPC channel; the main
 * side ({@link ThreadEmitterHub}, `attachThreadEmitters(io)`) validates each one and
 * replays it on the public broadcast API (`io.of(nsp).to(…).emit(…)`), so encoding and
 * delivery happen once, on the main side, in the order the worker posted them.
 *
 * Back-pressure is a bounded in-flight window: the hub acknowledges what it delivered
 * (cumulatively, once per turn of its event loop), and an emitter never has more than
 * `maxInFlight` operations unacknowledged. When the window is full an operation is
 * refused: `emit` returns `false` and the event is not sent (counted in
 * `stats.refused`), like a volatile emit. A producer that must not lose events checks
 * {@link ThreadEmitter.writable} (or the return value) and awaits
 * {@link ThreadEmitter.drain} first. Nothing is queued on either side beyond the window,
 * so a stalled main thread makes the worker wait, never makes its memory grow.
 */
import type { Room } from "../adapter/adapter.js";
import { assertNotReserved } from "../broadcast/broadcast-operator.js";
import { InvalidOptionError } from "../errors.js";
import { checkOptionKeys, type OptionKeys, positiveInt } from "../options.js";
import type { DefaultEventsMap, EventNames, EventParams, EventsMap } from "../typed-events.js";

/** Tag of the messages between thread emitters and their hub (other messages pass untouched). */
export const THREAD_EMITTER_TAG = "switchyard:thread-emitter";

/** An operation posted by a worker. `id` counts from 1 per port, without gaps. */
export interface ThreadEmitterMessage {
  sy: typeof THREAD_EMITTER_TAG;
  id: number;
  op: "emit" | "join" | "leave" | "disconnect" | "serverSideEmit";
  nsp: string;
  rooms: Room[];
  except: Room[];
  volatile?: boolean;
  compress?: boolean;
  /** `[event, ...args]` for `emit` and `serverSideEmit`. */
  data?: unknown[];
  /** Rooms to join/leave. */
  target?: Room[];
  /** For `disconnect`: also close the connection. */
  close?: boolean;
}

/** The hub's cumulative acknowledgement: every operation up to `ack` was delivered. */
export interface ThreadEmitterAck {
  sy: typeof THREAD_EMITTER_TAG;
  ack: number;
}

/**
 * What a thread emitter posts on: `parentPort` of a worker thread, a `MessagePort`, or
 * `process` of a forked child (fork it with `serialization: "advanced"` so binary
 * arguments keep being binary).
 */
export type ThreadEmitterEndpoint =
  | {
      postMessage(msg: unknown): void;
      on(ev: "message", fn: (msg: unknown) => void): unknown;
      off(ev: "message", fn: (msg: unknown) => void): unknown;
    }
  | {
      send?: ((msg: unknown) => boolean) | undefined;
      on(ev: "message", fn: (msg: unknown) => void): unknown;
      off(ev: "message", fn: (msg: unknown) => void): unknown;
    };

/** Options of {@link threadEmitter}. */
export interface ThreadEmitterOptions {
  /** Namespace to emit to. @default "/" */
  namespace?: string;
  /** Operations posted but not yet acknowledged by the main side, at most. @default 256 */
  maxInFlight?: number;
}

const KEYS: OptionKeys = Object.freeze({
  namespace: true,
  maxInFlight: true,
} satisfies Record<keyof ThreadEmitterOptions, true>);

/** Counters of a {@link ThreadEmitter} (shared by emitters made with `of`). */
export interface ThreadEmitterStats {
  /** Operations posted. */
  posted: number;
  /** Operations acknowledged by the main side. */
  acknowledged: number;
  /** Posted, not yet acknowledged (never above `maxInFlight`). */
  inFlight: number;
  /** The largest `inFlight` seen. */
  maxInFlightSeen: number;
  /** Operations refused because the window was full or the emitter closed. */
  refused: number;
}

interface Waiter {
  at: number;
  resolve: () => void;
}

function ignoreSendError(): void {}

/** What emitters of one port share: the window and its waiters. */
class Channel {
  readonly stats: ThreadEmitterStats = {
    posted: 0,
    acknowledged: 0,
    inFlight: 0,
    maxInFlightSeen: 0,
    refused: 0,
  };
  readonly max: number;
  closed = false;
  #waiters: Waiter[] = [];
  readonly #post: (msg: unknown) => void;
  readonly #endpoint: ThreadEmitterEndpoint;
  readonly #onMessage = (msg: unknown): void => {
    if (typeof msg !== "object" || msg === null) return;
    const m = msg as Partial<ThreadEmitterAck>;
    if (m.sy !== THREAD_EMITTER_TAG || typeof m.ack !== "number") return;
    if (!(m.ack > this.stats.acknowledged && m.ack <= this.stats.posted)) return;
    this.stats.acknowledged = m.ack;
    this.stats.inFlight = this.stats.posted - m.ack;
    this.#wake();
  };

  constructor(endpoint: ThreadEmitterEndpoint, max: number) {
    this.#endpoint = endpoint;
    this.max = max;
    if ("postMessage" in endpoint && typeof endpoint.postMessage === "function") {
      this.#post = (m) => endpoint.postMessage(m);
    } else if ("send" in endpoint && typeof endpoint.send === "function") {
      // With a callback, a send on a closed channel reports to it instead of emitting a
      // fatal "error" on `process`; the window then fills and refuses further operations.
      const send = endpoint.send.bind(endpoint) as (m: unknown, cb: () => void) => boolean;
      this.#post = (m) => void send(m, ignoreSendError);
    } else {
      throw new InvalidOptionError(
        "endpoint",
        "parentPort, a MessagePort, or process of a child forked with an IPC channel",
        endpoint,
      );
    }
    endpoint.on("message", this.#onMessage);
    // A MessagePort delivers only once started; parentPort and process need no start.
    const start = (endpoint as { start?: unknown }).start;
    if (typeof start === "function") start.call(endpoint);
  }

  /** Posts `msg` (its id assigned here) unless the window is full; false if refused. */
  post(msg: Omit<ThreadEmitterMessage, "sy" | "id">): boolean {
    const s = this.stats;
    if (this.closed || s.inFlight >= this.max) {
      s.refused++;
      return false;
    }
    s.posted++;
    s.inFlight++;
    if (s.inFlight > s.maxInFlightSeen) s.maxInFlightSeen = s.inFlight;
    this.#post({ sy: THREAD_EMITTER_TAG, id: s.posted, ...msg });
    return true;
  }

  /** Resolves once at most `inFlight` operations are unacknowledged. */
  waitFor(inFlight: number): Promise<void> {
    if (this.stats.inFlight <= inFlight) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ at: inFlight, resolve }));
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.stats.inFlight <= w.at) w.resolve();
      else keep.push(w);
    }
    this.#waiters = keep;
  }

  detach(): void {
    this.#endpoint.off("message", this.#onMessage);
  }
}

function normalizeNamespace(nsp: unknown): string {
  if (typeof nsp !== "string" || nsp.length === 0 || nsp.includes(",")) {
    throw new InvalidOptionError("namespace", 'a namespace name such as "/" or "/chat"', nsp);
  }
  return nsp.startsWith("/") ? nsp : `/${nsp}`;
}

function roomList(room: Room | readonly Room[]): Room[] {
  return typeof room === "string" ? [room] : [...room];
}

interface Target {
  readonly ch: Channel;
  readonly nsp: string;
  readonly rooms: readonly Room[];
  readonly except: readonly Room[];
  readonly volatile: boolean;
  readonly compress: boolean | undefined;
}

function header(t: Target): Pick<ThreadEmitterMessage, "nsp" | "rooms" | "except"> & {
  volatile?: boolean;
  compress?: boolean;
} {
  const h: ReturnType<typeof header> = { nsp: t.nsp, rooms: [...t.rooms], except: [...t.except] };
  if (t.volatile) h.volatile = true;
  if (t.compress !== undefined) h.compress = t.compress;
  return h;
}

function checkEmit(ev: unknown, args: readonly unknown[]): void {
  assertNotReserved(ev);
  if (typeof args[args.length - 1] === "function") {
    throw new TypeError("a thread emitter cannot receive acknowledgements");
  }
}

/** The immutable `to/in/except/volatile/compress` chain of a {@link ThreadEmitter}. */
export class ThreadEmitterOperator<EmitEvents extends EventsMap = DefaultEventsMap> {
  readonly #t: Target;

  /** @internal */
  constructor(t: Target) {
    this.#t = t;
  }

  /** Targets the clients in `room` (union with earlier targets). */
  to(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    const rooms = [...new Set([...this.#t.rooms, ...roomList(room)])];
    return new ThreadEmitterOperator({ ...this.#t, rooms });
  }

  /** Alias of {@link to}. */
  in(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    return this.to(room);
  }

  /** Excludes the clients in `room`. */
  except(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    const except = [...new Set([...this.#t.except, ...roomList(room)])];
    return new ThreadEmitterOperator({ ...this.#t, except });
  }

  /** Clients that are not ready may miss it. */
  get volatile(): ThreadEmitterOperator<EmitEvents> {
    return new ThreadEmitterOperator({ ...this.#t, volatile: true });
  }

  /** Whether the packet may be compressed. */
  compress(compress: boolean): ThreadEmitterOperator<EmitEvents> {
    return new ThreadEmitterOperator({ ...this.#t, compress });
  }

  /**
   * Posts the event to the main side, which emits it with `io.of(nsp).to(…).emit(…)`.
   * Returns false, without sending, when `maxInFlight` operations are unacknowledged
   * (or the emitter is closed); the refusal is counted in `stats.refused`.
   */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    checkEmit(ev, args);
    return this.#t.ch.post({ op: "emit", ...header(this.#t), data: [ev, ...args] });
  }

  /** Makes the targeted sockets join `room`. False if refused (see {@link emit}). */
  socketsJoin(room: Room | readonly Room[]): boolean {
    return this.#t.ch.post({ op: "join", ...header(this.#t), target: roomList(room) });
  }

  /** Makes the targeted sockets leave `room`. False if refused (see {@link emit}). */
  socketsLeave(room: Room | readonly Room[]): boolean {
    return this.#t.ch.post({ op: "leave", ...header(this.#t), target: roomList(room) });
  }

  /** Disconnects the targeted sockets; `close` also closes their connections. */
  disconnectSockets(close = false): boolean {
    return this.#t.ch.post({ op: "disconnect", ...header(this.#t), close: close === true });
  }
}

/**
 * The worker side: `threadEmitter(parentPort)` in a worker thread, `threadEmitter(process)`
 * in a forked child; the main thread adopts the worker with `hub.adopt(worker)`. Same
 * API as {@link Emitter}, except that operations return false when refused (window full).
 */
export class ThreadEmitter<
  EmitEvents extends EventsMap = DefaultEventsMap,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
> {
  /** The namespace this emitter emits to. */
  readonly namespace: string;
  readonly #ch: Channel;

  /** @internal use {@link threadEmitter} */
  constructor(ch: Channel, namespace: string) {
    this.#ch = ch;
    this.namespace = namespace;
  }

  /** Counters (shared with the emitters made with {@link of}). */
  get stats(): Readonly<ThreadEmitterStats> {
    return { ...this.#ch.stats };
  }

  /** Whether an operation would be accepted now (the window has room). */
  get writable(): boolean {
    return !this.#ch.closed && this.#ch.stats.inFlight < this.#ch.max;
  }

  /** Resolves once the window has room again. */
  drain(): Promise<void> {
    return this.#ch.waitFor(this.#ch.max - 1);
  }

  /** Resolves once the main side acknowledged (delivered) everything posted so far. */
  flush(): Promise<void> {
    return this.#ch.waitFor(0);
  }

  /**
   * {@link flush}, then stops listening on the endpoint (so a worker can exit); later
   * operations are refused. Emitters made with {@link of} close with it.
   */
  async close(): Promise<void> {
    await this.flush();
    this.#ch.closed = true;
    this.#ch.detach();
  }

  /** An emitter for another namespace sharing this one's window. */
  of(nsp: string): ThreadEmitter<EmitEvents, ServerSideEvents> {
    return new ThreadEmitter(this.#ch, normalizeNamespace(nsp));
  }

  private op(): ThreadEmitterOperator<EmitEvents> {
    return new ThreadEmitterOperator({
      ch: this.#ch,
      nsp: this.namespace,
      rooms: [],
      except: [],
      volatile: false,
      compress: undefined,
    });
  }

  /** Emits to every client of the namespace. False if refused (window full). */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): boolean {
    return this.op().emit(ev, ...args);
  }

  to(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    return this.op().to(room);
  }

  in(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    return this.op().to(room);
  }

  except(room: Room | readonly Room[]): ThreadEmitterOperator<EmitEvents> {
    return this.op().except(room);
  }

  get volatile(): ThreadEmitterOperator<EmitEvents> {
    return this.op().volatile;
  }

  compress(compress: boolean): ThreadEmitterOperator<EmitEvents> {
    return this.op().compress(compress);
  }

  socketsJoin(room: Room | readonly Room[]): boolean {
    return this.op().socketsJoin(room);
  }

  socketsLeave(room: Room | readonly Room[]): boolean {
    return this.op().socketsLeave(room);
  }

  disconnectSockets(close = false): boolean {
    return this.op().disconnectSockets(close);
  }

  /**
   * Emits to the namespace's listeners (`io.of(nsp).on(ev, …)`) on the main thread's
   * server and, through its adapter, on the other nodes. No acknowledgements.
   */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(
    ev: Ev,
    ...args: EventParams<ServerSideEvents, Ev>
  ): boolean {
    checkEmit(ev, args);
    return this.#ch.post({
      op: "serverSideEmit",
      nsp: this.namespace,
      rooms: [],
      except: [],
      data: [ev, ...args],
    });
  }
}

/**
 * Creates the worker-side emitter on `endpoint` (`parentPort`, a `MessagePort` handed
 * over by `hub.port()`, or `process` in a forked child).
 */
export function threadEmitter<
  EmitEvents extends EventsMap = DefaultEventsMap,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
>(
  endpoint: ThreadEmitterEndpoint | null | undefined,
  opts: ThreadEmitterOptions = {},
): ThreadEmitter<EmitEvents, ServerSideEvents> {
  if (typeof opts !== "object" || opts === null) {
    throw new InvalidOptionError("options", "an object", opts);
  }
  checkOptionKeys(opts, KEYS);
  const max = positiveInt("maxInFlight", opts.maxInFlight ?? 256);
  const nsp = normalizeNamespace(opts.namespace ?? "/");
  if (typeof endpoint !== "object" || endpoint === null) {
    throw new InvalidOptionError(
      "endpoint",
      "parentPort, a MessagePort, or process of a child forked with an IPC channel",
      endpoint,
    );
  }
  return new ThreadEmitter(new Channel(endpoint, max), nsp);
}
