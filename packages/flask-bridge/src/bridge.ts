/**
 * The bridge: reads python-socketio's message queue (Redis channel or RabbitMQ
 * fanout exchange, every namespace on one channel) and applies each message to this
 * node's local sockets. Each Switchyard node runs its own bridge and handles only its
 * own sockets, as Flask-SocketIO nodes do, so a message reaches every client once.
 * In peer mode (`mode: "peer"`) the node is also a member of the Flask-SocketIO cluster:
 * its broadcasts, acks, disconnects and room closes are published on the same transport
 * (peer.ts), and the same receive path hands Python nodes' messages to the peer adapters.
 * Anything unreadable is dropped and counted; nothing from the bus can crash the node.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import type { AdapterConstructor, Server } from "@switchyard/server";
import { InvalidOptionError, MemoryAdapter } from "@switchyard/server";
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
import { type PeerHost, PeerState, peerAdapterClass, SWITCHYARD_HOST_PREFIX } from "./peer.js";
import { encodePeerMessage, type PeerMessage } from "./peer-message.js";

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
  /** Peer mode: own messages coming back, dropped. */
  echoes: number;
  /** Peer mode with a clustered `base`: other Switchyard nodes' messages, dropped (they arrive on the Switchyard bus). */
  switchyardPeers: number;
  /** Peer mode: `callback` messages (Python clients' acks) matched to this node's broadcasts. */
  acks: number;
  /** Peer mode: messages published on the Python channel (first of `channels`). */
  published: number;
  /** Peer mode: publications refused because the Python layout cannot express them (nothing was published). */
  refused: number;
  /** Peer mode: published in a shape Python nodes read differently (e.g. `except()` of rooms), reported once per kind. */
  degraded: number;
  /** Peer mode: publications lost because the broker was unreachable. */
  unsent: number;
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
  /** Peer mode: a publication the Python layout cannot express was refused (once per kind). */
  refused: [text: string];
  /** Peer mode: a publication Python nodes read differently was sent anyway (once per kind). */
  degraded: [text: string];
}

const PICKLE_WARNING =
  "[switchyard] flask-bridge: dropping pickle messages (python-socketio < 5.14, e.g. Debian's 5.7.2). " +
  "Fix: upgrade the publisher to python-socketio >= 5.14 (JSON), or publish JSON, " +
  'or opt in with legacyPickle: "data-only" (a restricted, data-only reader). Counted in stats.unsupported.';

interface Transport {
  /** Peer mode: publishes `body` on `channel`; false if it could not be handed to the broker. */
  publish(channel: string, body: Buffer): boolean;
  close(): Promise<void>;
}

/**
 * Reads the python-socketio / Flask-SocketIO message queue into the local sockets of
 * `io`. Create one per Switchyard node: `createFlaskBridge(io, { url })`; or, as a peer
 * of Flask-SocketIO nodes, `createFlaskBridge({ url, mode: "peer", pythonSocketIO })` and
 * `new Server(http, { adapter: bridge.adapter })`.
 */
export class FlaskBridge extends EventEmitter<FlaskBridgeEvents> implements PeerHost {
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
    echoes: 0,
    switchyardPeers: 0,
    acks: 0,
    published: 0,
    refused: 0,
    degraded: 0,
    unsent: 0,
  };
  /** This node's `host_id` on the Python channel (32 hex digits). */
  readonly hostId: string;
  private readonly io: Server | undefined;
  private readonly peer: PeerState | undefined;
  private readonly peerAdapter: AdapterConstructor | undefined;
  private readonly clustered: boolean;
  private readonly reported = new Set<string>();
  private readonly decodeOptions: FlaskDecodeOptions;
  private readonly transport: Transport;
  private isUp = false;
  private closed = false;
  private warnedPickle = false;
  private warnedDown = false;

  constructor(io: Server | undefined, options: FlaskBridgeOptions) {
    super();
    this.options = resolveFlaskBridgeOptions(options);
    const peer = this.options.mode === "peer";
    if (peer === (io !== undefined)) {
      throw new InvalidOptionError(
        "mode",
        peer
          ? "createFlaskBridge(options) without a server in peer mode (pass bridge.adapter to new Server(…, { adapter }))"
          : 'createFlaskBridge(io, options) with a server unless mode is "peer"',
        this.options.mode,
      );
    }
    this.io = io;
    this.hostId = SWITCHYARD_HOST_PREFIX + randomBytes(12).toString("hex");
    this.clustered = this.options.base !== MemoryAdapter;
    if (peer) {
      this.peer = new PeerState(this.options.ackTimeoutMs);
      this.peerAdapter = peerAdapterClass(this.options.base, this.peer, this);
    }
    this.decodeOptions = {
      legacyPickle: this.options.legacyPickle,
      binaryLayout: this.options.binaryLayout,
      maxMessageBytes: this.options.maxMessageBytes,
    };
    this.transport = this.options.broker === "redis" ? new RedisSource(this) : new AmqpSource(this);
  }

  /**
   * Peer mode: the adapter class to pass as `new Server(http, { adapter })` (a subclass
   * of `base`). Throws in subscribe mode.
   */
  get adapter(): AdapterConstructor {
    if (this.peerAdapter === undefined) {
      throw new Error('bridge.adapter exists in peer mode only (mode: "peer")');
    }
    return this.peerAdapter;
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
    this.peer?.close();
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
      if (this.peer !== undefined) {
        const o = this.receivePeer(r.message, this.peer);
        if (o === undefined) return;
        outcome = o;
      } else outcome = deliverFlaskMessage(this.io as Server, r.message);
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

  /** Peer mode: echoes, other Switchyard nodes and acks; the rest to the peer adapters. */
  private receivePeer(msg: FlaskMessage, peer: PeerState): FlaskDeliveryOutcome | undefined {
    if (msg.method === "callback") {
      if (msg.hostId === this.hostId && peer.onCallback(msg)) {
        this.stats.acks++;
        return undefined;
      }
      return "ignored";
    }
    if (msg.hostId === this.hostId) {
      this.stats.echoes++;
      return undefined;
    }
    if (this.clustered && msg.hostId?.startsWith(SWITCHYARD_HOST_PREFIX)) {
      this.stats.switchyardPeers++;
      return undefined;
    }
    return peer.deliver(msg, this) ? "applied" : "not-here";
  }

  /** @internal Publishes through the one encoder; refusals are counted and reported once per kind. */
  publish(msg: PeerMessage): boolean {
    if (this.closed || this.peer === undefined) return false;
    const version = this.options.pythonSocketIO ?? "5.15";
    const channel = this.options.channels[0] as string;
    const out = encodePeerMessage(msg, version);
    if (!out.ok) {
      this.stats.refused++;
      this.reportOnce(
        `refused:${out.reason.replace(/\d+/g, "N")}`,
        `not published to the python-socketio ${version} nodes on "${channel}": ${out.reason}`,
        "refused",
      );
      return false;
    }
    if (!this.transport.publish(channel, out.bytes)) {
      this.stats.unsent++;
      return false;
    }
    this.stats.published++;
    return true;
  }

  /** @internal A shape Python nodes read differently: published anyway, reported once. */
  degraded(kind: string, text: string): void {
    this.stats.degraded++;
    this.reportOnce(`degraded:${kind}`, text, "degraded");
  }

  /** @internal Registers a broadcast-with-acks sent to Python nodes under ack id `id`. */
  expectAcks(
    id: number,
    count: (n: number) => void,
    ack: (...args: unknown[]) => void,
    timeoutMs: number | undefined,
  ): void {
    this.peer?.expectAcks(id, count, ack, timeoutMs);
  }

  private reportOnce(key: string, text: string, event: "refused" | "degraded"): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    console.warn(`[switchyard] flask-bridge peer: ${text}`);
    this.emit(event, text);
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

/**
 * Creates a {@link FlaskBridge}: `createFlaskBridge(io, { url })` reads Python publishers
 * into the sockets of `io`; `createFlaskBridge({ url, mode: "peer", pythonSocketIO })`
 * makes the node a peer of Flask-SocketIO nodes (then `new Server(http, { adapter:
 * bridge.adapter })`). The options are the form a config file maps to.
 */
export function createFlaskBridge(io: Server, options: FlaskBridgeOptions): FlaskBridge;
export function createFlaskBridge(options: FlaskBridgeOptions & { mode: "peer" }): FlaskBridge;
export function createFlaskBridge(
  ioOrOptions: Server | FlaskBridgeOptions,
  options?: FlaskBridgeOptions,
): FlaskBridge {
  if (options === undefined) return new FlaskBridge(undefined, ioOrOptions as FlaskBridgeOptions);
  return new FlaskBridge(ioOrOptions as Server, options);
}

// ——— Redis: SUBSCRIBE <channel>, as python-socketio's RedisManager listener ———

class RedisSource implements Transport {
  private readonly sub: Redis;
  /** Peer mode: a second connection (a subscribed one cannot PUBLISH). */
  private readonly pub: Redis | undefined;

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
    if (o.mode === "peer") {
      this.pub = new Redis(o.url, {
        connectionName: "switchyard-flask-peer",
        retryStrategy: (times) =>
          reconnectDelay(times, o.reconnectInitialDelay, o.reconnectMaxDelay),
        maxRetriesPerRequest: 1,
      });
      this.pub.on("error", noop); // the subscriber reports outages
    }
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

  publish(channel: string, body: Buffer): boolean {
    const pub = this.pub;
    if (pub === undefined || pub.status === "end") return false;
    // Order is kept: one connection, commands in order (queued while reconnecting).
    pub.publish(channel, body).catch(() => this.bridge.stats.unsent++);
    return true;
  }

  async close(): Promise<void> {
    this.sub.disconnect();
    this.pub?.disconnect();
  }
}

// ——— RabbitMQ: the fanout exchange exactly as kombu declares it, our own queue ———

class AmqpSource implements Transport {
  private conn: ChannelModel | undefined;
  private ch: Channel | undefined;
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
      this.ch = ch;
      conn.on("close", (err?: Error) => {
        if (this.conn !== conn) return;
        this.conn = undefined;
        this.ch = undefined;
        this.bridge.markDown(err);
        this.retry();
      });
    } catch (err) {
      await conn.close().catch(noop);
      throw err;
    }
  }

  publish(exchange: string, body: Buffer): boolean {
    const ch = this.ch;
    if (ch === undefined) return false;
    // application/json: kombu hands python-socketio an already-parsed dict (every version reads it).
    ch.publish(exchange, "", body, {
      contentType: "application/json",
      contentEncoding: "utf-8",
      deliveryMode: 2,
      priority: 0,
      headers: {},
    });
    return true;
  }

  async close(): Promise<void> {
    this.ch = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) await conn.close().catch(noop);
  }
}

function noop(): void {}
