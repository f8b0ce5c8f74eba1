import type { BusHandler, BusStats, SwitchyardError } from "@switchyard/server";
import { InvalidOptionError } from "@switchyard/server";
import {
  BusBase,
  checkOptionKeys,
  nonNegativeInt,
  type OfflineQueueOptions,
  type OptionKeys,
  reconnectDelay,
} from "@switchyard/server/internal";
import { Redis, type RedisOptions } from "ioredis";

/** Options shared by both ways of building a {@link RedisBus}. */
interface CommonOptions {
  /**
   * First reconnect delay after the connection to Redis is lost (owned clients only);
   * doubles per failed attempt up to `maxReconnectDelayMs`, with ±20 % jitter.
   * @default 50
   */
  initialReconnectDelayMs?: number;
  /**
   * Cap of the reconnect delay (owned clients only). Bounds how long after the broker is
   * back a node stays cut off from the cluster.
   * @default 2000
   */
  maxReconnectDelayMs?: number;
  /**
   * Bounds of the offline queue: publishes made while Redis is not reachable yet, or down
   * and reconnecting, wait there (in order) and are dropped only past these bounds.
   * @default { maxMessages: 10000, maxBytes: 16 MiB, timeout: 10000 }
   */
  offlineQueue?: OfflineQueueOptions;
}

const COMMON_KEYS = {
  initialReconnectDelayMs: true,
  maxReconnectDelayMs: true,
  offlineQueue: true,
} as const satisfies Record<keyof CommonOptions, true>;

const URL_KEYS: OptionKeys = Object.freeze({
  ...COMMON_KEYS,
  url: true,
  redisOptions: true,
} satisfies Record<keyof RedisBusUrlOptions, true>);

const CLIENT_KEYS: OptionKeys = Object.freeze({
  ...COMMON_KEYS,
  pub: true,
  sub: true,
} satisfies Record<keyof RedisBusClientOptions, true>);

/** Build a bus that creates (and closes) its own two connections. */
export interface RedisBusUrlOptions extends CommonOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…`. */
  url: string;
  /**
   * Extra ioredis options for both owned clients (TLS, auth, timeouts…). The bus
   * overrides the options its delivery guarantees depend on: the publisher's offline
   * queue is disabled (the bus keeps its own, bounded: `offlineQueue`), in-flight
   * publishes are never resent, `retryStrategy` follows
   * the reconnect options, and subscriptions are restored by the bus itself.
   * @default {}
   */
  redisOptions?: RedisOptions;
}

/** Build a bus over clients you own (the bus never closes them). */
export interface RedisBusClientOptions extends CommonOptions {
  /** Client used for PUBLISH. */
  pub: Redis;
  /** A separate client used only for SUBSCRIBE (a subscribed connection can't publish in RESP2). */
  sub: Redis;
}

/** Options of {@link RedisBus}: exactly one of `url` or `pub` + `sub`. */
export type RedisBusOptions = RedisBusUrlOptions | RedisBusClientOptions;

/** {@link BusStats} plus Redis-specific counters. */
export interface RedisBusStats extends BusStats {
  /** Messages that arrived on a channel with no handler (e.g. right after `unsubscribe`). */
  ignored: number;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

// Duck-typed rather than `instanceof`: the application may hold another copy of ioredis.
function isRedis(v: unknown): v is Redis {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.publish === "function" &&
    typeof r.subscribe === "function" &&
    typeof r.unsubscribe === "function" &&
    typeof r.on === "function" &&
    typeof r.status === "string"
  );
}

function noop(): void {}

/**
 * A Switchyard cluster {@link Bus} over Redis pub/sub (ioredis).
 *
 * Two connections: one publishes, one only subscribes (a RESP2 connection in
 * subscriber mode can't publish, and a busy subscriber must not delay publishes).
 * Delivery is at-most-once: while either connection is down (or before it is first up),
 * publishes wait in the bounded offline queue (`offlineQueue`) and go out in order once
 * it is back; publishes in flight when the connection breaks are not resent (dropped and
 * counted, as are those past the queue's bounds). `flush()` resolves once Redis answered
 * every PUBLISH made so far; `close()` flushes first. An outage is reported once (`down`,
 * then `up` when both connections are back and every subscription is confirmed again),
 * never per message.
 *
 * ```ts
 * const bus = new RedisBus({ url: "redis://127.0.0.1:6379" });
 * const io = new Server(http, { adapter: createAdapter(bus) });
 * ```
 */
export class RedisBus extends BusBase<RedisBusStats> {
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Whether the bus created the clients (and so configures and closes them). */
  private readonly owned: boolean;
  private readonly handlers = new Map<string, BusHandler>();
  private pubReady = false;
  private subReady = false;
  /** Bumped on every subscriber (re)connection, so a stale restore can't mark it ready. */
  private subGeneration = 0;
  private publishErrorReported = false;
  private subWaiters: Waiter[] = [];
  private readonly detach: Array<() => void> = [];

  constructor(options: RedisBusOptions) {
    super(
      "Redis",
      { published: 0, received: 0, dropped: 0, queued: 0, outages: 0, ignored: 0 },
      checkedOfflineQueue(options),
    );
    const initial = nonNegativeInt(
      "initialReconnectDelayMs",
      options.initialReconnectDelayMs ?? 50,
    );
    const max = nonNegativeInt("maxReconnectDelayMs", options.maxReconnectDelayMs ?? 2000);
    if ("url" in options && options.url !== undefined) {
      if (typeof options.url !== "string" || !/^rediss?:\/\//.test(options.url)) {
        throw new InvalidOptionError("url", "a redis:// or rediss:// URL", options.url);
      }
      if ("pub" in options || "sub" in options) {
        throw new InvalidOptionError("url", "not combined with pub/sub clients", options.url);
      }
      const extra = options.redisOptions ?? {};
      if (typeof extra !== "object" || extra === null) {
        throw new InvalidOptionError("redisOptions", "an object", extra);
      }
      const lo = Math.max(1, initial);
      const hi = Math.max(1, max);
      const retryStrategy = (times: number): number => reconnectDelay(times, lo, hi);
      this.pub = new Redis(options.url, {
        ...extra,
        connectionName: extra.connectionName ?? "switchyard-bus-pub",
        retryStrategy,
        // At-most-once and bounded memory: never queue while disconnected, and fail
        // (not resend) publishes that were in flight when the connection broke.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
      });
      this.sub = new Redis(options.url, {
        ...extra,
        connectionName: extra.connectionName ?? "switchyard-bus-sub",
        retryStrategy,
        // The bus restores subscriptions itself (see restore()), from its own map, so
        // an unsubscribe that raced a disconnect is not resurrected.
        autoResubscribe: false,
        // A SUBSCRIBE in flight when the connection broke is resent (and so settles)
        // after the reconnect rather than failing.
        maxRetriesPerRequest: null,
      });
      this.owned = true;
    } else {
      const { pub, sub } = options as Partial<RedisBusClientOptions>;
      if (!isRedis(pub)) throw new InvalidOptionError("pub", "an ioredis Redis client", pub);
      if (!isRedis(sub)) throw new InvalidOptionError("sub", "an ioredis Redis client", sub);
      if (pub === sub) {
        throw new InvalidOptionError("sub", "a different client than pub", "the same client");
      }
      this.pub = pub;
      this.sub = sub;
      this.owned = false;
    }
    this.attach();
  }

  /** Whether both connections are up and every subscription is confirmed. */
  override get healthy(): boolean {
    return super.healthy;
  }

  protected send(channel: string, payload: Buffer): boolean {
    if (!this.pubReady) return false;
    this.pub.publish(channel, payload).then(this.onPublished, this.onPublishFailed);
    return true;
  }

  /**
   * Subscribes `handler` to the exact channel `channel` (one handler per channel; a
   * second call replaces it). Resolves once Redis confirmed the subscription: while the
   * subscriber is disconnected, that is after the reconnect. Rejects only if the bus is
   * closed first.
   */
  async subscribe(channel: string, handler: BusHandler): Promise<void> {
    if (this.closed) throw this.closedError();
    if (typeof channel !== "string") throw new TypeError("channel must be a string");
    if (typeof handler !== "function") throw new TypeError("handler must be a function");
    this.handlers.set(channel, handler);
    if (this.subReady) {
      const generation = this.subGeneration;
      try {
        await this.sub.subscribe(channel);
        return;
      } catch (err) {
        if (generation === this.subGeneration && !this.closed) {
          // Refused on a healthy connection (e.g. an ACL): the subscription does not exist.
          if (this.handlers.get(channel) === handler) this.handlers.delete(channel);
          throw err;
        }
      }
      // The connection broke meanwhile; a restore() after that includes this channel.
      if (this.closed) throw this.closedError();
      if (this.subReady) return;
    }
    await new Promise<void>((resolve, reject) => this.subWaiters.push({ resolve, reject }));
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.handlers.delete(channel) || !this.subReady) return;
    try {
      await this.sub.unsubscribe(channel);
    } catch {
      // Disconnected: the channel is gone from the map, so restore() won't renew it.
    }
  }

  /**
   * Closes owned clients (QUIT, or disconnect if not connected); for given clients, only
   * unsubscribes the bus's channels and removes its listeners. Emits no `down`.
   * Idempotent.
   */
  override close(): Promise<void> {
    return super.close();
  }

  protected async doClose(err: SwitchyardError): Promise<void> {
    for (const w of this.subWaiters.splice(0)) w.reject(err);
    const channels = [...this.handlers.keys()];
    this.handlers.clear();
    for (const undo of this.detach.splice(0)) undo();
    if (this.owned) {
      // Late errors of closing clients must not reach the process as unhandled events.
      this.pub.on("error", noop);
      this.sub.on("error", noop);
      await Promise.all([quit(this.pub), quit(this.sub)]);
    } else if (channels.length > 0 && this.sub.status === "ready") {
      await this.sub.unsubscribe(...channels).catch(noop);
    }
  }

  private attach(): void {
    const listen = <A extends unknown[]>(
      client: Redis,
      event: string,
      fn: (...args: A) => void,
    ): void => {
      const listener = fn as (...args: unknown[]) => void;
      client.on(event, listener);
      this.detach.push(() => client.off(event, listener));
    };
    listen(this.pub, "ready", () => {
      this.pubReady = true;
      this.maybeUp();
    });
    listen(this.pub, "close", () => {
      this.pubReady = false;
      this.markDown();
    });
    listen(this.pub, "error", (err: Error) => this.onClientError(err));
    listen(this.sub, "ready", () => void this.restore());
    listen(this.sub, "close", () => {
      this.subReady = false;
      this.subGeneration++;
      this.markDown();
    });
    listen(this.sub, "error", (err: Error) => this.onClientError(err));
    listen(this.sub, "messageBuffer", this.onMessage);

    if (this.pub.status === "ready") this.pubReady = true;
    else if (this.pub.status === "wait") this.pub.connect().catch(noop);
    if (this.sub.status === "ready") void this.restore();
    else if (this.sub.status === "wait") this.sub.connect().catch(noop);
  }

  /**
   * Re-subscribes every channel on a fresh subscriber connection, then reports it ready.
   * subscribe()/unsubscribe() calls made meanwhile only change the map (they wait for
   * this), so it repeats until the connection's subscriptions match the map.
   */
  private async restore(): Promise<void> {
    const generation = ++this.subGeneration;
    const done = new Set<string>();
    for (;;) {
      const missing = [...this.handlers.keys()].filter((c) => !done.has(c));
      const stale = [...done].filter((c) => !this.handlers.has(c));
      if (missing.length === 0 && stale.length === 0) break;
      try {
        if (missing.length > 0) await this.sub.subscribe(...missing);
        if (stale.length > 0) await this.sub.unsubscribe(...stale);
      } catch (err) {
        // The connection broke again: its `close` handles that, the next `ready` retries.
        if (generation !== this.subGeneration || this.closed) return;
        // Redis refused (e.g. an ACL on a channel): report it, but don't stay down for it.
        this.emitError(err as Error);
      }
      if (generation !== this.subGeneration || this.closed) return;
      for (const c of missing) done.add(c);
      for (const c of stale) done.delete(c);
    }
    this.subReady = true;
    for (const w of this.subWaiters.splice(0)) w.resolve();
    this.maybeUp();
  }

  /** Reports `up` once both connections are ready and every subscription is restored. */
  private maybeUp(): void {
    if (this.closed || this.healthy || !this.pubReady || !this.subReady) return;
    this.publishErrorReported = false;
    this.markUp();
  }

  protected connectionLostError(): Error {
    return new Error(`lost the connection to Redis at ${describeClient(this.pub)}`);
  }

  /**
   * ioredis emits `error` for socket failures, which either precede a `close` (the
   * outage, reported once by `down` with this error as its cause) or are failed
   * reconnect attempts during an outage: kept for the report, not emitted one by one.
   */
  private onClientError(err: Error): void {
    if (!this.closed) this.lastError = err;
  }

  private readonly onPublished = (): void => {
    this.sent(true);
  };

  private readonly onPublishFailed = (err: Error): void => {
    this.sent(false);
    // Connection failures are the outage's business (`down`); a refusal by the server
    // (e.g. an ACL) is reported, once until the next `up`, not per message.
    if (err.name === "ReplyError" && this.healthy && !this.publishErrorReported) {
      this.publishErrorReported = true;
      this.emitError(err);
    }
  };

  private readonly onMessage = (channel: Buffer, payload: Buffer): void => {
    const name = channel.toString();
    const handler = this.handlers.get(name);
    if (handler === undefined) {
      this.counters.ignored++;
      return;
    }
    this.dispatch(handler, name, payload);
  };
}

/**
 * Checks the option keys (before the base validates `offlineQueue`, so an unknown key
 * is reported first) and returns the `offlineQueue` option.
 */
function checkedOfflineQueue(options: unknown): unknown {
  if (typeof options !== "object" || options === null) {
    throw new InvalidOptionError("options", "an object", options);
  }
  checkOptionKeys(options, "url" in options ? URL_KEYS : CLIENT_KEYS);
  return (options as CommonOptions).offlineQueue;
}

function describeClient(client: Redis): string {
  const o = client.options;
  return o.path ?? `${o.host ?? "localhost"}:${o.port ?? 6379}`;
}

async function quit(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
