/**
 * An in-process {@link Bus}: a {@link LocalHub} stands in for the broker, and each
 * `hub.bus()` is one node's connection to it. Delivery is asynchronous (a later
 * macrotask, in publish order), as with a real broker, so code that works on it does
 * not depend on a publish being handled before `publish` returns. Useful to run a
 * cluster of Servers in one process (tests, examples) and to simulate broker outages.
 */
import { EventEmitter } from "node:events";
import { PublishDroppedError } from "../errors.js";
import type { Bus, BusEvents, BusHandler, BusStats } from "./bus.js";

interface Queued {
  readonly channel: string;
  readonly payload: Buffer;
}

/** The shared "broker" of a group of {@link LocalBus}es. */
export class LocalHub {
  private readonly buses = new Set<LocalBus>();
  private queue: Queued[] = [];
  private scheduled = false;

  /** A new node connection to this hub. */
  bus(): LocalBus {
    const bus = new LocalBus(this);
    this.buses.add(bus);
    return bus;
  }

  /** Number of connected buses. */
  get size(): number {
    return this.buses.size;
  }

  /** @internal Called by {@link LocalBus.publish}. */
  enqueue(channel: string, payload: Buffer): void {
    this.queue.push({ channel, payload });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(drain, this);
    }
  }

  /** @internal */
  detach(bus: LocalBus): void {
    this.buses.delete(bus);
  }

  /** @internal Delivers everything queued so far; later publishes wait for the next turn. */
  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const msg of batch) {
      for (const bus of this.buses) bus.deliver(msg.channel, msg.payload);
    }
  }
}

function drain(hub: LocalHub): void {
  hub.flush();
}

/**
 * One node's connection to a {@link LocalHub}. `disconnect()`/`reconnect()` simulate a
 * broker outage (publishes dropped and counted, nothing delivered, `down`/`up` once
 * per outage); `close()` ends the connection for good.
 */
export class LocalBus extends EventEmitter implements Bus {
  private readonly hub: LocalHub;
  private readonly handlers = new Map<string, BusHandler>();
  private readonly counters: BusStats = {
    published: 0,
    received: 0,
    dropped: 0,
    queued: 0,
    outages: 0,
  };
  /** Drops since the last flush() (which reports them). */
  private unflushedDrops = 0;
  private connected = true;
  private closed = false;

  constructor(hub: LocalHub) {
    super();
    this.hub = hub;
  }

  get healthy(): boolean {
    return this.connected && !this.closed;
  }

  get stats(): Readonly<BusStats> {
    return this.counters;
  }

  /** Channels subscribed to now. */
  get channels(): ReadonlySet<string> {
    return new Set(this.handlers.keys());
  }

  publish(channel: string, payload: Buffer): void {
    if (!this.healthy) {
      // A simulated outage drops (no offline queue: the broker buses have one).
      this.counters.dropped++;
      this.unflushedDrops++;
      return;
    }
    this.counters.published++;
    // A broker hands every subscriber its own copy; one snapshot suffices here, and it
    // keeps a publisher that reuses its buffer from changing what was sent.
    this.hub.enqueue(channel, Buffer.from(payload));
  }

  /**
   * Resolves once the hub delivered what was published so far; rejects with a
   * {@link PublishDroppedError} if publishes were dropped (during a simulated outage)
   * since the previous call.
   */
  flush(): Promise<void> {
    const drops = this.unflushedDrops;
    this.unflushedDrops = 0;
    return new Promise((resolve, reject) =>
      setImmediate(() =>
        drops === 0
          ? resolve()
          : reject(new PublishDroppedError("failed", drops, "the local hub was unreachable")),
      ),
    );
  }

  subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (!this.closed) this.handlers.set(channel, handler);
    return new Promise((resolve) => setImmediate(resolve));
  }

  unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Simulates losing the broker: publishes are dropped, nothing is delivered. */
  disconnect(err: Error = new Error("local hub unreachable")): void {
    if (!this.connected || this.closed) return;
    this.connected = false;
    this.counters.outages++;
    this.emit("down", err);
  }

  /** Ends a simulated outage; subscriptions were kept, as a reconnecting bus restores them. */
  reconnect(): void {
    if (this.connected || this.closed) return;
    this.connected = true;
    this.emit("up");
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.handlers.clear();
      this.hub.detach(this);
    }
    return Promise.resolve();
  }

  /** @internal Called by the hub for every message. */
  deliver(channel: string, payload: Buffer): void {
    if (!this.connected) return;
    const handler = this.handlers.get(channel);
    if (handler === undefined) return;
    this.counters.received++;
    try {
      handler(channel, payload);
    } catch (err) {
      // A broker client would report a throwing handler and carry on with the others.
      if (this.listenerCount("error") > 0) this.emit("error", err as Error);
      else process.nextTick(rethrow, err);
    }
  }

  override on<E extends keyof BusEvents>(
    event: E,
    listener: (...args: BusEvents[E]) => void,
  ): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override off<E extends keyof BusEvents>(
    event: E,
    listener: (...args: BusEvents[E]) => void,
  ): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
}

function rethrow(err: unknown): never {
  throw err;
}
