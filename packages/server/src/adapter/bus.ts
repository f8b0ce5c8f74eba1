/**
 * The only thing a broker package implements: move opaque bytes between nodes on named
 * channels. Every cluster protocol detail (broadcasts, requests, membership) lives once
 * in the ClusterAdapter; a Bus knows nothing of Socket.IO.
 *
 * Delivery is at-most-once, but publishes are not lost silently: the broker buses
 * (`BusBase`) hold what the broker cannot take yet in a bounded offline queue
 * (`offlineQueue`), `flush()` waits for it, and whatever is dropped (queue full, too
 * old, in flight when the connection broke) is counted and reported once.
 */

/** Receives every message published on a subscribed channel (including our own). */
export type BusHandler = (channel: string, payload: Buffer) => void;

/** Health and error events of a bus. */
export interface BusEvents {
  /** Connected (again) and subscriptions restored. */
  up: [];
  /** Lost the broker; publishes wait in the offline queue until `up`. Emitted once per outage. */
  down: [err: Error | undefined];
  /** A non-fatal error worth logging (the bus keeps reconnecting), e.g. the first `PublishDroppedError` of an episode. */
  error: [err: Error];
}

/** Counters every bus keeps (read by metrics). */
export interface BusStats {
  /** Publishes handed to the broker (Redis answered / RabbitMQ confirmed). */
  published: number;
  received: number;
  /** Publishes dropped: offline queue full, waited past its timeout, in flight when the connection broke, or made after `close()`. */
  dropped: number;
  /** Publishes waiting in the offline queue now. */
  queued: number;
  /** Outages seen (`down` events). */
  outages: number;
}

export interface Bus {
  /** Whether the broker is reachable now. */
  readonly healthy: boolean;
  readonly stats: Readonly<BusStats>;
  /** Publishes `payload` on `channel`; never throws (held while the broker is away; a publish that cannot be held is dropped and counted). */
  publish(channel: string, payload: Buffer): void;
  /** Resolves once everything published so far was handed to the broker; rejects with a `PublishDroppedError` if some of it was dropped. */
  flush(): Promise<void>;
  /** Subscribes to an exact channel name; resolves once the broker confirmed it. */
  subscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Ends a subscription. */
  unsubscribe(channel: string): Promise<void>;
  /** Waits for what is queued (bounded), then closes the connections; idempotent. */
  close(): Promise<void>;
  on<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this;
  off<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this;
}
