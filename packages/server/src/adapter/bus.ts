/**
 * The only thing a broker package implements: move opaque bytes between nodes on named
 * channels. Every cluster protocol detail (broadcasts, requests, membership) lives once
 * in the ClusterAdapter; a Bus knows nothing of Socket.IO.
 *
 * Delivery is at-most-once: while the broker is unreachable, `publish` drops (and the
 * bus counts the drop and reports the outage through `down`/`up`, once per outage).
 */

/** Receives every message published on a subscribed channel (including our own). */
export type BusHandler = (channel: string, payload: Buffer) => void;

/** Health and error events of a bus. */
export interface BusEvents {
  /** Connected (again) and subscriptions restored. */
  up: [];
  /** Lost the broker; publishes are dropped until `up`. Emitted once per outage. */
  down: [err: Error | undefined];
  /** A non-fatal error worth logging (the bus keeps reconnecting). */
  error: [err: Error];
}

/** Counters every bus keeps (read by metrics). */
export interface BusStats {
  published: number;
  received: number;
  /** Publishes dropped because the broker was unreachable. */
  dropped: number;
  /** Outages seen (`down` events). */
  outages: number;
}

export interface Bus {
  /** Whether the broker is reachable now. */
  readonly healthy: boolean;
  readonly stats: Readonly<BusStats>;
  /** Publishes `payload` on `channel`; never throws (a failed publish is dropped and counted). */
  publish(channel: string, payload: Buffer): void;
  /** Subscribes to an exact channel name; resolves once the broker confirmed it. */
  subscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Ends a subscription. */
  unsubscribe(channel: string): Promise<void>;
  /** Closes the connections; idempotent. */
  close(): Promise<void>;
  on<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this;
  off<E extends keyof BusEvents>(event: E, listener: (...args: BusEvents[E]) => void): this;
}
