import type { BusHandler, BusStats } from "@switchyard/server";
import { InvalidOptionError } from "@switchyard/server";
import {
  BusBase,
  checkOptionKeys,
  nonNegativeInt,
  type OfflineQueueOptions,
  reconnectDelay,
} from "@switchyard/server/internal";
import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { routingKey } from "./routing-key.js";

/** Options of {@link AmqpBus}. */
export interface AmqpBusOptions {
  /** `amqp://user:pass@host:port/vhost` or `amqps://…`. */
  url: string;
  /**
   * Topic exchange every node publishes to (declared durable, not auto-delete, so it
   * outlives broker restarts and external publishers never hit a missing exchange).
   * @default "switchyard"
   */
  exchange?: string;
  /**
   * First reconnect delay after the connection is lost; doubles per failed attempt up to
   * `maxReconnectDelayMs`, with ±20 % jitter.
   * @default 100
   */
  initialReconnectDelayMs?: number;
  /**
   * Cap of the reconnect delay: bounds how long after the broker is back a node stays
   * cut off from the cluster.
   * @default 2000
   */
  maxReconnectDelayMs?: number;
  /**
   * AMQP heartbeat in seconds: detects a broker that vanished without closing the TCP
   * connection (host down, network partition) within about twice this. `0` disables.
   * Ignored if the URL has a `heartbeat` parameter.
   * @default 10
   */
  heartbeatSeconds?: number;
  /** TCP connect timeout of each attempt. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * Publishes written into amqplib's buffer while the socket is congested (the buffer is
   * over its high-water mark) before further ones wait in the offline queue until it
   * drains.
   * @default 10000
   */
  maxBufferedPublishes?: number;
  /**
   * Bounds of the offline queue: publishes made while RabbitMQ is not reachable yet, down
   * and reconnecting, blocking publishers or congested wait there (in order) and are
   * dropped only past these bounds.
   * @default { maxMessages: 10000, maxBytes: 16 MiB, timeout: 10000 }
   */
  offlineQueue?: OfflineQueueOptions;
}

const OPTION_KEYS = Object.freeze({
  url: true,
  exchange: true,
  initialReconnectDelayMs: true,
  maxReconnectDelayMs: true,
  heartbeatSeconds: true,
  connectTimeoutMs: true,
  maxBufferedPublishes: true,
  offlineQueue: true,
} as const satisfies Record<keyof AmqpBusOptions, true>);

/** {@link BusStats} plus AMQP-specific counters. */
export interface AmqpBusStats extends BusStats {
  /** Deliveries for a routing key with no subscription (e.g. right after `unsubscribe`). */
  ignored: number;
  /** Times the broker blocked publishing (a resource alarm); publishes wait in the offline queue meanwhile. */
  blocked: number;
}

interface Subscription {
  readonly key: string;
  handler: BusHandler;
}

/** One connection, its channel and its server-named exclusive queue. */
interface Session {
  readonly conn: ChannelModel;
  readonly ch: ConfirmChannel;
  readonly queue: string;
  /** Routing keys bound to `queue`. */
  readonly bound: Set<string>;
  /** Set once the session is the bus's current one (before: still being opened). */
  live: boolean;
  /** amqplib's write buffer is above its high-water mark (publish returned false). */
  congested: boolean;
  /** Publishes accepted while congested. */
  buffered: number;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function noop(): void {}

/** Routing keys of recently published channels; cleared wholesale when full. */
const KEY_CACHE_LIMIT = 10_000;

/**
 * A Switchyard cluster {@link Bus} over RabbitMQ (amqplib).
 *
 * Every node publishes to one topic exchange; each node consumes from its own
 * exclusive, auto-delete, server-named queue, bound once per subscribed channel, so a
 * node receives only the channels it has listeners for. Channel names map to routing
 * keys with {@link routingKey} (they contain `#`, a topic wildcard).
 *
 * Delivery is at-most-once (no consumer acks, nothing resent): while the broker is
 * unreachable, blocks publishing or the socket is congested, publishes wait in the
 * bounded offline queue (`offlineQueue`) and go out in order once it can take them.
 * Publishes go out on a confirm channel: `flush()` resolves once RabbitMQ confirmed
 * every publish made so far, `close()` flushes first, and publishes unconfirmed when the
 * channel breaks are dropped and counted, not resent.
 * amqplib does not restore channels, queues or bindings, so on connection or channel
 * loss the bus reconnects with capped exponential backoff, re-declares the exchange
 * and a fresh queue and re-binds every subscription before reporting `up`. An outage
 * is reported once (`down` … `up`), never per message or per failed attempt.
 */
export class AmqpBus extends BusBase<AmqpBusStats> {
  private readonly url: string;
  private readonly exchange: string;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private readonly connectTimeout: number;
  private readonly maxBuffered: number;
  private readonly subs = new Map<string, Subscription>();
  /** routing key → channel, for the subscribed channels. */
  private readonly channels = new Map<string, string>();
  private readonly keyCache = new Map<string, string>();
  private session: Session | undefined;
  private isBlocked = false;
  /** The running connect loop, if any (at most one). */
  private connecting: Promise<void> | undefined;
  /** A session was lost while the connect loop was finishing: run it again. */
  private reconnectPending = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;

  constructor(options: AmqpBusOptions) {
    super(
      "AMQP",
      { published: 0, received: 0, dropped: 0, queued: 0, outages: 0, ignored: 0, blocked: 0 },
      checkedOfflineQueue(options),
    );
    if (typeof options.url !== "string" || !/^amqps?:\/\//.test(options.url)) {
      throw new InvalidOptionError("url", "an amqp:// or amqps:// URL", options.url);
    }
    const exchange = options.exchange ?? "switchyard";
    if (typeof exchange !== "string" || exchange === "" || exchange.startsWith("amq.")) {
      throw new InvalidOptionError(
        "exchange",
        'a non-empty name not starting with "amq."',
        exchange,
      );
    }
    this.exchange = exchange;
    this.initialDelay = Math.max(
      1,
      nonNegativeInt("initialReconnectDelayMs", options.initialReconnectDelayMs ?? 100),
    );
    this.maxDelay = Math.max(
      this.initialDelay,
      nonNegativeInt("maxReconnectDelayMs", options.maxReconnectDelayMs ?? 2000),
    );
    const heartbeat = nonNegativeInt("heartbeatSeconds", options.heartbeatSeconds ?? 10);
    this.connectTimeout = nonNegativeInt("connectTimeoutMs", options.connectTimeoutMs ?? 5000);
    this.maxBuffered = nonNegativeInt(
      "maxBufferedPublishes",
      options.maxBufferedPublishes ?? 10_000,
    );
    const url = new URL(options.url);
    if (!url.searchParams.has("heartbeat")) url.searchParams.set("heartbeat", String(heartbeat));
    this.url = url.toString();
    this.startConnecting();
  }

  /** Whether connected with the exchange, queue and every binding in place. */
  override get healthy(): boolean {
    return super.healthy;
  }

  /** Whether the broker currently blocks publishing (resource alarm). */
  get blocked(): boolean {
    return this.isBlocked;
  }

  protected send(channel: string, payload: Buffer): boolean {
    const s = this.session;
    if (s === undefined || !s.live || this.isBlocked) return false;
    if (s.congested && s.buffered >= this.maxBuffered) return false;
    let flushed: boolean;
    try {
      flushed = s.ch.publish(this.exchange, this.keyOf(channel), payload, {}, this.onConfirm);
    } catch {
      // The channel is closing: its `close` starts the reconnect, and this publish waits
      // in the offline queue for the next session.
      return false;
    }
    if (s.congested) s.buffered++;
    else if (!flushed) s.congested = true;
    return true;
  }

  /** One shared confirm callback: amqplib calls them in publish order (ack: `null`). */
  private readonly onConfirm = (err: unknown): void => {
    this.sent(err === null || err === undefined);
  };

  /**
   * Subscribes `handler` to the exact channel `channel` (one handler per channel; a
   * second call replaces it) by binding this node's queue to the channel's routing key.
   * Resolves once the broker confirmed the binding: while disconnected, that is after
   * the reconnect. Rejects only if the bus is closed first.
   */
  async subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.closed) throw this.closedError();
    if (typeof channel !== "string") throw new TypeError("channel must be a string");
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    const existing = this.subs.get(channel);
    if (existing !== undefined) {
      existing.handler = handler;
    } else {
      const key = routingKey(channel);
      this.subs.set(channel, { key, handler });
      this.channels.set(key, channel);
    }
    const key = this.subs.get(channel)!.key;
    for (;;) {
      if (this.subs.get(channel)?.key !== key) return; // unsubscribed meanwhile
      const s = this.session;
      if (s !== undefined && this.healthy) {
        if (s.bound.has(key)) return;
        try {
          await s.ch.bindQueue(s.queue, this.exchange, key);
          s.bound.add(key);
          // Unsubscribed while the bind was in flight: undo it.
          if (!this.subs.has(channel)) await this.unbind(s, key);
          return;
        } catch (err) {
          if (this.closed) throw this.closedError();
          // A failed channel RPC closes the channel: the session is replaced and the next
          // one binds every subscription. Wait for that one (not the dying one).
          this.lastError = toError(err);
          await this.nextUp();
          continue;
        }
      }
      await this.ready();
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    const sub = this.subs.get(channel);
    if (sub === undefined) return;
    this.subs.delete(channel);
    this.channels.delete(sub.key);
    const s = this.session;
    if (s !== undefined && this.healthy && s.bound.has(sub.key)) await this.unbind(s, sub.key);
  }

  /**
   * Stops reconnecting and closes the connection (the broker then deletes the exclusive
   * queue and its bindings). Emits no `down`. Idempotent.
   */
  override close(): Promise<void> {
    return super.close();
  }

  protected async doClose(): Promise<void> {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const s = this.session;
    this.session = undefined;
    if (s !== undefined) await closeQuietly(s.conn);
    // A connection being opened right now is closed by the loop once it notices.
    await this.connecting;
  }

  private keyOf(channel: string): string {
    const sub = this.subs.get(channel);
    if (sub !== undefined) return sub.key;
    let key = this.keyCache.get(channel);
    if (key === undefined) {
      if (this.keyCache.size >= KEY_CACHE_LIMIT) this.keyCache.clear();
      key = routingKey(channel);
      this.keyCache.set(channel, key);
    }
    return key;
  }

  private async unbind(s: Session, key: string): Promise<void> {
    s.bound.delete(key);
    try {
      await s.ch.unbindQueue(s.queue, this.exchange, key);
    } catch (err) {
      // The channel is gone: so is the queue, and the next session won't bind the key.
      this.lastError = toError(err);
    }
  }

  private startConnecting(): void {
    if (this.closed) return;
    if (this.connecting !== undefined) {
      // The running loop may already be past its last attempt (its session just died).
      this.reconnectPending = true;
      return;
    }
    this.reconnectPending = false;
    this.connecting = this.connectLoop().finally(() => {
      this.connecting = undefined;
      if (this.reconnectPending && this.session === undefined) this.startConnecting();
    });
  }

  private async connectLoop(): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.open();
        return;
      } catch (err) {
        if (this.closed) return;
        this.lastError = toError(err);
        this.markDown();
        await this.pause(reconnectDelay(attempt, this.initialDelay, this.maxDelay));
      }
    }
  }

  /** Sleeps `ms`; close() cuts it short. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(resolve, ms);
    }).then(() => {
      this.retryTimer = undefined;
      this.wakeRetry = undefined;
    });
  }

  /** Connects and sets everything up; throws (after closing what it opened) on failure. */
  private async open(): Promise<void> {
    const conn = await amqp.connect(this.url, {
      timeout: this.connectTimeout,
      noDelay: true,
      clientProperties: { connection_name: "switchyard-bus" },
    });
    // From here on, errors surface through `close` (and the awaited calls below); the
    // listeners exist so that an `error` event never goes unhandled.
    conn.on("error", (err: Error) => {
      this.lastError = err;
    });
    try {
      if (this.closed) throw this.closedError();
      const ch = await conn.createConfirmChannel();
      ch.on("error", (err: Error) => {
        this.lastError = err;
      });
      await ch.assertExchange(this.exchange, "topic", { durable: true, autoDelete: false });
      const { queue } = await ch.assertQueue("", {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      const s: Session = {
        conn,
        ch,
        queue,
        bound: new Set(),
        live: false,
        congested: false,
        buffered: 0,
      };
      conn.on("close", (err?: Error) => this.lost(s, err));
      conn.on("blocked", (reason: string) => this.onBlocked(s, reason));
      conn.on("unblocked", () => this.onUnblocked(s));
      ch.on("close", () => this.lost(s, undefined));
      ch.on("drain", () => {
        s.congested = false;
        s.buffered = 0;
        if (this.session === s) this.drainQueue();
      });
      // Bind until the bindings match the subscriptions: subscribe()/unsubscribe() calls
      // made meanwhile wait for `up`, so the loop converges.
      for (;;) {
        if (this.closed) throw this.closedError();
        const missing = [...this.channels.keys()].filter((k) => !s.bound.has(k));
        const stale = [...s.bound].filter((k) => !this.channels.has(k));
        if (missing.length === 0 && stale.length === 0) break;
        await Promise.all([
          ...missing.map(async (k) => {
            await ch.bindQueue(queue, this.exchange, k);
            s.bound.add(k);
          }),
          ...stale.map(async (k) => {
            await ch.unbindQueue(queue, this.exchange, k);
            s.bound.delete(k);
          }),
        ]);
      }
      await ch.consume(queue, (msg) => this.onDelivery(s, msg), { noAck: true, exclusive: true });
      if (this.closed) throw this.closedError();
      s.live = true;
      this.session = s;
      this.isBlocked = false;
      this.markUp();
    } catch (err) {
      await closeQuietly(conn);
      throw err;
    }
  }

  private lost(s: Session, err: Error | undefined): void {
    if (!s.live) return;
    s.live = false;
    if (this.session === s) this.session = undefined;
    if (err !== undefined) this.lastError = err;
    // A channel closed by the broker leaves the connection (and the queue) open: close it
    // so the next session starts clean.
    void closeQuietly(s.conn);
    if (this.closed) return;
    this.markDown();
    this.startConnecting();
  }

  private onDelivery(s: Session, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled our consumer (queue deleted): start over.
      this.lost(s, new Error("the broker cancelled the consumer"));
      return;
    }
    const channel = this.channels.get(msg.fields.routingKey);
    const sub = channel === undefined ? undefined : this.subs.get(channel);
    if (channel === undefined || sub === undefined) {
      this.counters.ignored++;
      return;
    }
    this.dispatch(sub.handler, channel, msg.content);
  }

  private onBlocked(s: Session, reason: string): void {
    if (this.session !== s || this.isBlocked) return;
    this.isBlocked = true;
    this.counters.blocked++;
    this.emitError(
      new Error(`RabbitMQ blocked publishing (${reason}); publishes wait in the offline queue`),
    );
  }

  private onUnblocked(s: Session): void {
    if (this.session !== s) return;
    this.isBlocked = false;
    this.drainQueue();
  }

  protected connectionLostError(): Error {
    return new Error("lost the connection to RabbitMQ");
  }
}

/**
 * Checks the option keys (before the base validates `offlineQueue`, so an unknown key
 * is reported first) and returns the `offlineQueue` option.
 */
function checkedOfflineQueue(options: unknown): unknown {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError("options", "an object", options);
  }
  checkOptionKeys(options, OPTION_KEYS);
  return (options as AmqpBusOptions).offlineQueue;
}

async function closeQuietly(conn: ChannelModel): Promise<void> {
  try {
    await conn.close();
  } catch {
    // Already closed or closing.
  }
  conn.on("error", noop);
}
