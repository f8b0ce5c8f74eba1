/**
 * The inbound bridge: reads python-socketio's message queue (Redis channel or RabbitMQ
 * fanout exchange, every namespace on one channel) and applies each message to this
 * node's local sockets. Each Switchyard node runs its own bridge and handles only its
 * own sockets, as Flask-SocketIO nodes do, so a message reaches every client once.
 * Anything unreadable is dropped and counted; nothing from the bus can crash the node.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Server } from "@switchyard/server";
import { reconnectDelay } from "@switchyard/server/internal";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { Redis } from "ioredis";
import { deliverFlaskMessage, type FlaskDeliveryOutcome } from "./deliver.js";
import {
  decodeFlaskMessage,
  type FlaskDecodeOptions,
  type FlaskMessage,
  FlaskMessageError,
} from "./format.js";
import {
  type FlaskBridgeOptions,
  type ResolvedFlaskBridgeOptions,
  resolveFlaskBridgeOptions,
} from "./options.js";

/** Counters of a {@link FlaskBridge}. Every message received ends in exactly one of the others. */
export interface FlaskBridgeStats {
  /** Messages read from the broker. */
  received: number;
  /** Applied to local sockets (an emit may have matched none here). */
  applied: number;
  /** For a namespace or socket that does not exist on this node. */
  notLocal: number;
  /** Well-formed but not for local delivery (`callback`). */
  ignored: number;
  /** Dropped: not a JSON object / pickled dict, or fields of the wrong type. */
  malformed: number;
  /** Dropped: an unknown `method`, or a pickle body while `legacyPickle` is off. */
  unsupported: number;
  /** Dropped: a pickle the restricted reader refused (code opcodes, limits, cycles). */
  pickleRefused: number;
  /** Dropped: an emit of a reserved event name (`connect`, `disconnect`, …). */
  reservedEvent: number;
  /** Dropped: longer than `maxMessageBytes`. */
  tooLarge: number;
  /** Dropped: local delivery threw (e.g. an argument the packet encoder refused). */
  failed: number;
}

/** Events of a {@link FlaskBridge}. */
export interface FlaskBridgeEvents {
  /** Subscribed (Redis) / consuming (RabbitMQ) on every channel; again after each reconnect. */
  up: [];
  /** The broker connection was lost (the bridge reconnects with backoff) or could not be set up. */
  down: [err: Error | undefined];
  /** A message was dropped; `err.reason` is its stats category. */
  dropped: [err: FlaskMessageError];
  /** `close()` was called. */
  close: [];
  /** A message was read and handed to local delivery. */
  message: [msg: FlaskMessage, outcome: FlaskDeliveryOutcome];
}

const PICKLE_WARNING =
  "[switchyard] flask-bridge: dropping pickle messages (python-socketio < 5.14, e.g. Debian's 5.7.2). " +
  "Fix: upgrade the publisher to python-socketio >= 5.14 (JSON), or publish JSON, " +
  'or opt in with legacyPickle: "data-only" (a restricted, data-only reader). Counted in stats.unsupported.';

interface Transport {
  close(): Promise<void>;
}

/**
 * Reads the python-socketio / Flask-SocketIO message queue into the local sockets of
 * `io`. Create one per Switchyard node: `createFlaskBridge(io, { url })`.
 */
export class FlaskBridge extends EventEmitter<FlaskBridgeEvents> {
  /** The validated options. */
  readonly options: ResolvedFlaskBridgeOptions;
  /** Counters; see {@link FlaskBridgeStats}. */
  readonly stats: FlaskBridgeStats = {
    received: 0,
    applied: 0,
    notLocal: 0,
    ignored: 0,
    malformed: 0,
    unsupported: 0,
    pickleRefused: 0,
    reservedEvent: 0,
    tooLarge: 0,
    failed: 0,
  };
  private readonly io: Server;
  private readonly decodeOptions: FlaskDecodeOptions;
  private readonly transport: Transport;
  private isUp = false;
  private closed = false;
  private warnedPickle = false;
  private warnedDown = false;

  constructor(io: Server, options: FlaskBridgeOptions) {
    super();
    this.options = resolveFlaskBridgeOptions(options);
    this.io = io;
    this.decodeOptions = {
      legacyPickle: this.options.legacyPickle,
      binaryLayout: this.options.binaryLayout,
      maxMessageBytes: this.options.maxMessageBytes,
    };
    this.transport = this.options.broker === "redis" ? new RedisSource(this) : new AmqpSource(this);
  }

  /** Whether the bridge currently reads every channel. */
  get connected(): boolean {
    return this.isUp;
  }

  /** Resolves once the bridge reads every channel (at once if it does); rejects if closed first. */
  ready(): Promise<void> {
    if (this.isUp) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error("the flask bridge is closed"));
    return new Promise((resolve, reject) => {
      const onUp = () => {
        this.off("close", onClosed);
        resolve();
      };
      const onClosed = () => {
        this.off("up", onUp);
        reject(new Error("the flask bridge is closed"));
      };
      this.once("up", onUp);
      this.once("close", onClosed);
    });
  }

  /** Stops reading and closes the broker connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.isUp = false;
    this.emit("close");
    await this.transport.close();
  }

  /**
   * Handles one message body as if read from the broker: decode, deliver to the local
   * sockets, count. Never throws.
   */
  receive(body: Buffer | string): void {
    this.stats.received++;
    const r = decodeFlaskMessage(body, this.decodeOptions);
    if (!r.ok) {
      this.drop(r.error);
      return;
    }
    let outcome: FlaskDeliveryOutcome;
    try {
      outcome = deliverFlaskMessage(this.io, r.message);
    } catch (err) {
      this.stats.failed++;
      this.emit(
        "dropped",
        new FlaskMessageError("malformed", `delivery failed: ${(err as Error).message}`, {
          cause: err,
        }),
      );
      return;
    }
    if (outcome === "applied") this.stats.applied++;
    else if (outcome === "not-here") this.stats.notLocal++;
    else this.stats.ignored++;
    if (this.listenerCount("message") > 0) this.emit("message", r.message, outcome);
  }

  private drop(err: FlaskMessageError): void {
    switch (err.reason) {
      case "malformed":
        this.stats.malformed++;
        break;
      case "unsupported":
        this.stats.unsupported++;
        break;
      case "pickle-refused":
        this.stats.pickleRefused++;
        break;
      case "reserved-event":
        this.stats.reservedEvent++;
        break;
      case "too-large":
        this.stats.tooLarge++;
        break;
    }
    if (err.isPickle && !this.warnedPickle) {
      this.warnedPickle = true;
      console.warn(PICKLE_WARNING);
    }
    this.emit("dropped", err);
  }

  /** @internal transports report here. */
  markUp(): void {
    if (this.closed) return;
    this.isUp = true;
    this.warnedDown = false;
    this.emit("up");
  }

  /** @internal transports report here. */
  markDown(err: Error | undefined): void {
    if (this.closed) return;
    const was = this.isUp;
    this.isUp = false;
    if (!this.warnedDown) {
      this.warnedDown = true;
      console.warn(
        `[switchyard] flask-bridge: broker ${was ? "connection lost" : "unavailable"}${
          err === undefined ? "" : ` (${err.message})`
        }; reconnecting. Python messages published meanwhile are not received.`,
      );
    }
    this.emit("down", err);
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }
}

/** Creates a {@link FlaskBridge} for `io` (the form a config file maps to: `flaskSocketIO: {…}`). */
export function createFlaskBridge(io: Server, options: FlaskBridgeOptions): FlaskBridge {
  return new FlaskBridge(io, options);
}

// ——— Redis: SUBSCRIBE <channel>, as python-socketio's RedisManager listener ———

class RedisSource implements Transport {
  private readonly sub: Redis;

  constructor(private readonly bridge: FlaskBridge) {
    const o = bridge.options;
    const channels = new Set(o.channels);
    this.sub = new Redis(o.url, {
      lazyConnect: true,
      connectionName: "switchyard-flask-bridge",
      retryStrategy: (times) => reconnectDelay(times, o.reconnectInitialDelay, o.reconnectMaxDelay),
      // Subscriptions are made on every "ready" here, so "up" means subscribed (ioredis'
      // own re-subscription would run after "ready" without telling when it is done).
      autoResubscribe: false,
      maxRetriesPerRequest: null,
    });
    this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      if (channels.has(channel.toString("utf8"))) bridge.receive(message);
    });
    this.sub.on("error", noop); // reported through "close" / "down"
    this.sub.on("close", () => bridge.markDown(undefined));
    this.sub.on("ready", () => this.subscribe());
    // A first connection that fails is retried by ioredis (retryStrategy); "ready" then subscribes.
    this.sub.connect().catch((err: Error) => bridge.markDown(err));
  }

  private subscribe(): void {
    this.sub.subscribe(...this.bridge.options.channels).then(
      () => {
        if (this.sub.status === "ready") this.bridge.markUp();
      },
      (err: Error) => this.bridge.markDown(err),
    );
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}

// ——— RabbitMQ: the fanout exchange exactly as kombu declares it, our own queue ———

class AmqpSource implements Transport {
  private conn: ChannelModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;

  constructor(private readonly bridge: FlaskBridge) {
    this.connect();
  }

  private connect(): void {
    this.open().then(
      () => {
        this.attempt = 0;
        this.bridge.markUp();
      },
      (err: Error) => {
        this.bridge.markDown(err);
        this.retry();
      },
    );
  }

  private retry(): void {
    if (this.bridge.isClosed || this.timer !== undefined) return;
    const o = this.bridge.options;
    const ms = reconnectDelay(++this.attempt, o.reconnectInitialDelay, o.reconnectMaxDelay);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.bridge.isClosed) this.connect();
    }, ms);
  }

  private async open(): Promise<void> {
    const o = this.bridge.options;
    const conn = await amqp.connect(o.url, {
      clientProperties: { connection_name: "switchyard-flask-bridge" },
    });
    conn.on("error", noop); // followed by "close"
    try {
      if (this.bridge.isClosed) throw new Error("closed");
      const ch: Channel = await conn.createChannel();
      ch.on("error", noop);
      for (const exchange of o.channels) {
        // Exactly kombu's declaration: any other type or flag fails with 406
        // PRECONDITION_FAILED for whoever declares second, Python publishers included.
        await ch.assertExchange(exchange, "fanout", {
          durable: false,
          autoDelete: false,
          internal: false,
        });
      }
      const queue = `${o.queuePrefix}${randomBytes(16).toString("hex")}`;
      await ch.assertQueue(queue, {
        durable: false,
        autoDelete: false,
        exclusive: true,
        arguments: { "x-expires": o.queueExpires },
      });
      for (const exchange of o.channels) await ch.bindQueue(queue, exchange, "");
      await ch.consume(
        queue,
        (msg) => {
          if (msg !== null) this.bridge.receive(msg.content);
        },
        { noAck: true, exclusive: true },
      );
      if (this.bridge.isClosed) throw new Error("closed");
      this.conn = conn;
      conn.on("close", (err?: Error) => {
        if (this.conn !== conn) return;
        this.conn = undefined;
        this.bridge.markDown(err);
        this.retry();
      });
    } catch (err) {
      await conn.close().catch(noop);
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) await conn.close().catch(noop);
  }
}

function noop(): void {}
