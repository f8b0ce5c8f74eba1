/**
 * A Switchyard node as a peer of Flask-SocketIO / python-socketio nodes on their message
 * queue channel (mixed clusters, rolling migration). Opt-in: the peer wraps an adapter
 * class (a subclass of `base`, as `createAdapter` does), so servers without it keep their
 * broadcast path unchanged.
 *
 * - This node's broadcasts are delivered locally by `base` and published once, as JSON in
 *   the layout of `pythonSocketIO`, through the single encoder {@link encodePeerMessage}.
 *   What that layout cannot carry is refused for the Python nodes, counted and reported
 *   once (`stats.refused`, the `refused` event, one console warning per reason kind).
 * - Messages on the channel from Python nodes are applied to this node's local sockets
 *   only (each node handles its own, as Python nodes do): emit (with Python acks),
 *   close_room, disconnect, enter_room/leave_room; `callback` messages carrying this
 *   node's host id complete this node's broadcast acks. Own echoes are dropped.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { PacketType, type SocketPacket } from "@switchyard/protocol";
import type {
  Adapter,
  AdapterConstructor,
  AdapterNamespace,
  BroadcastOptions,
  Room,
} from "../adapter/adapter.js";
import type { Bus } from "../adapter/bus.js";
import { MemoryAdapter } from "../adapter/memory-adapter.js";
import { InvalidOptionError } from "../errors.js";
import { checkOptionKeys, type OptionKeys } from "../options.js";
import {
  encodePeerMessage,
  type PeerMessage,
  type PeerTarget,
  PYTHON_SOCKETIO_VERSIONS,
  type PythonSocketIOVersion,
} from "./peer-message.js";

/** Options of {@link FlaskPeer}. */
export interface FlaskPeerOptions {
  /**
   * The bus on the Python nodes' broker: its channel `channel` is their message queue
   * channel (a `RedisBus` publishes and subscribes Redis channels by their plain name).
   */
  bus: Bus;
  /** The python-socketio version of the Python nodes: decides the JSON layout of emits. */
  pythonSocketIO: PythonSocketIOVersion;
  /** The channel (Flask-SocketIO's default is `flask-socketio`, python-socketio's `socketio`). @default "flask-socketio" */
  channel?: string;
  /**
   * The adapter class this node uses otherwise: `MemoryAdapter`, or `createAdapter(bus)` for
   * a Switchyard cluster beside the Python nodes (then broadcasts between Switchyard nodes
   * travel on the Switchyard bus, and Switchyard nodes ignore each other's copies on the
   * Python channel). @default MemoryAdapter
   */
  base?: AdapterConstructor;
  /** How long a broadcast with acks waits for Python replies without `timeout()`. @default 30000 */
  ackTimeoutMs?: number;
}

const KEYS: OptionKeys = Object.freeze({
  bus: true,
  pythonSocketIO: true,
  channel: true,
  base: true,
  ackTimeoutMs: true,
} satisfies Record<keyof FlaskPeerOptions, true>);

/** Counters of a {@link FlaskPeer}. */
export interface FlaskPeerStats {
  /** Messages published on the Python channel. */
  published: number;
  /** Publications refused because the Python layout cannot express them (nothing was published). */
  refused: number;
  /** Messages received on the channel. */
  received: number;
  /** Own messages coming back, dropped. */
  echoes: number;
  /** Other Switchyard nodes' messages, dropped (they arrive on the Switchyard bus). */
  switchyardPeers: number;
  /** Not a JSON object with a known `method`, or fields of the wrong type: dropped. */
  malformed: number;
  /** Pickle bodies (python-socketio < 5.14 publishers): dropped, see the warning. */
  unsupported: number;
  /** Python emits delivered to this node's sockets (per message, not per client). */
  delivered: number;
  /** Acks of Python clients matched to this node's broadcasts. */
  acks: number;
  /** Shapes Python nodes understand differently (except rooms that are not socket ids): published, reported once. */
  degraded: number;
}

/** Marks the host ids of Switchyard peers (the rest is random), so Switchyard nodes know each other's copies. */
const SWITCHYARD_HOST_PREFIX = "5791c4a0";

interface PendingAck {
  count: (n: number) => void;
  ack: (...args: unknown[]) => void;
  timer: NodeJS.Timeout;
}

const RESERVED = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

function noop(): void {}

function targetOf(rooms: ReadonlySet<Room>): PeerTarget {
  if (rooms.size === 0) return null;
  if (rooms.size === 1) return [...rooms][0] as string;
  return [...rooms];
}

function isStr(v: unknown): v is string {
  return typeof v === "string" && v.length > 0;
}

function roomSet(v: unknown): Set<Room> | undefined {
  if (v === null || v === undefined) return new Set();
  if (isStr(v)) return new Set([v]);
  if (Array.isArray(v) && v.every(isStr)) return new Set(v as string[]);
  return undefined;
}

/** The emit's arguments as Python nodes meant them, or undefined if malformed. */
function argsOf(msg: Record<string, unknown>): unknown[] | undefined {
  const data = msg.data;
  if (!("binary" in msg)) return data === null || data === undefined ? [] : [data];
  if (!Array.isArray(data)) return undefined;
  if (msg.binary !== true) return data;
  // 5.15.1+: [args with placeholders, ...base64 attachments]
  const [args, ...b64] = data as unknown[];
  if (!Array.isArray(args) || !b64.every((s) => typeof s === "string")) return undefined;
  const buffers = (b64 as string[]).map((s) => Buffer.from(s, "base64"));
  const fill = (v: unknown, depth: number): unknown => {
    if (depth > 32 || v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map((x) => fill(x, depth + 1));
    const o = v as Record<string, unknown>;
    if (o._placeholder === true && typeof o.num === "number") return buffers[o.num] ?? null;
    const out: Record<string, unknown> = Object.create(null);
    for (const k of Object.keys(o)) out[k] = fill(o[k], depth + 1);
    return out;
  };
  return fill(args, 0) as unknown[];
}

/** The operations the peer needs from each namespace's wrapped adapter. */
interface PeerAdapter extends Adapter {
  readonly peerNamespace: string;
  deliverLocal(
    packet: SocketPacket,
    opts: BroadcastOptions,
    ack: ((...args: unknown[]) => void) | undefined,
  ): void;
  closeRoomLocal(room: Room): void;
  disconnectLocal(sid: string): void;
  joinLocal(sid: string, room: Room, join: boolean): void;
}

/**
 * A Switchyard node as a peer of python-socketio / Flask-SocketIO nodes. Pass
 * `peer.adapter` as the server's `adapter`.
 */
export class FlaskPeer extends EventEmitter {
  /** This node's host id on the Python channel (32 hex digits). */
  readonly hostId: string;
  readonly stats: FlaskPeerStats = {
    published: 0,
    refused: 0,
    received: 0,
    echoes: 0,
    switchyardPeers: 0,
    malformed: 0,
    unsupported: 0,
    delivered: 0,
    acks: 0,
    degraded: 0,
  };
  /** The adapter class to pass as `new Server(http, { adapter })`. */
  readonly adapter: AdapterConstructor;
  /** Resolves once the channel subscription is confirmed. */
  readonly ready: Promise<void>;
  readonly version: PythonSocketIOVersion;
  readonly channel: string;
  private readonly bus: Bus;
  private readonly clustered: boolean;
  private readonly ackTimeoutMs: number;
  private readonly namespaces = new Map<string, PeerAdapter>();
  private readonly pending = new Map<number, PendingAck>();
  private readonly reported = new Set<string>();
  private closed = false;

  constructor(options: FlaskPeerOptions) {
    super();
    if (options === null || typeof options !== "object") {
      throw new InvalidOptionError("options", "an object", options);
    }
    checkOptionKeys(options, KEYS);
    const bus = options.bus;
    if (bus === null || typeof bus !== "object" || typeof bus.publish !== "function") {
      throw new InvalidOptionError("bus", "a Bus (RedisBus, …)", bus);
    }
    if (!PYTHON_SOCKETIO_VERSIONS.includes(options.pythonSocketIO)) {
      throw new InvalidOptionError(
        "pythonSocketIO",
        `one of ${PYTHON_SOCKETIO_VERSIONS.map((v) => `"${v}"`).join(", ")}`,
        options.pythonSocketIO,
      );
    }
    const channel = options.channel ?? "flask-socketio";
    if (typeof channel !== "string" || channel === "") {
      throw new InvalidOptionError("channel", "a non-empty string", channel);
    }
    const base = options.base ?? MemoryAdapter;
    if (typeof base !== "function") throw new InvalidOptionError("base", "an adapter class", base);
    const ackTimeoutMs = options.ackTimeoutMs ?? 30000;
    if (!Number.isSafeInteger(ackTimeoutMs) || ackTimeoutMs <= 0) {
      throw new InvalidOptionError("ackTimeoutMs", "a positive integer", ackTimeoutMs);
    }
    this.bus = bus;
    this.version = options.pythonSocketIO;
    this.channel = channel;
    this.clustered = base !== MemoryAdapter;
    this.ackTimeoutMs = ackTimeoutMs;
    this.hostId = SWITCHYARD_HOST_PREFIX + randomBytes(12).toString("hex");
    this.adapter = peerAdapterClass(base, this);
    this.ready = bus.subscribe(channel, (_channel, payload) => this.onMessage(payload));
    this.ready.catch(noop);
  }

  /** Stops handling the channel; broadcasts stay local. Does not close the bus. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    await this.bus.unsubscribe(this.channel).catch(noop);
  }

  /** @internal */
  attach(adapter: PeerAdapter): void {
    this.namespaces.set(adapter.peerNamespace, adapter);
  }

  /** @internal */
  detach(adapter: PeerAdapter): void {
    if (this.namespaces.get(adapter.peerNamespace) === adapter) {
      this.namespaces.delete(adapter.peerNamespace);
    }
  }

  /** @internal Publishes through the one encoder; refusals are counted and reported once per kind. */
  publish(msg: PeerMessage): boolean {
    if (this.closed) return false;
    const out = encodePeerMessage(msg, this.version);
    if (!out.ok) {
      this.stats.refused++;
      this.reportOnce(
        `refused:${out.reason.replace(/\d+/g, "N")}`,
        `not published to the python-socketio ${this.version} nodes on "${this.channel}": ${out.reason}`,
        "refused",
      );
      return false;
    }
    this.stats.published++;
    this.bus.publish(this.channel, out.bytes);
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
    const timer = setTimeout(() => this.pending.delete(id), timeoutMs ?? this.ackTimeoutMs).unref();
    this.pending.set(id, { count, ack, timer });
  }

  private reportOnce(
    key: string,
    text: string,
    event: "refused" | "degraded" | "unsupported",
  ): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    console.warn(`switchyard flask peer: ${text}`);
    if (this.listenerCount(event) > 0) this.emit(event, text);
  }

  private onMessage(payload: Buffer): void {
    if (this.closed) return;
    this.stats.received++;
    if (payload[0] === 0x80) {
      this.stats.unsupported++;
      this.reportOnce(
        "pickle",
        `dropped a pickle message on "${this.channel}" (python-socketio < 5.14 publisher): upgrade it to python-socketio >= 5.14 or publish JSON`,
        "unsupported",
      );
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString("utf8"));
    } catch {
      this.stats.malformed++;
      return;
    }
    if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
      this.stats.malformed++;
      return;
    }
    try {
      this.dispatch(msg as Record<string, unknown>);
    } catch {
      this.stats.malformed++;
    }
  }

  private dispatch(msg: Record<string, unknown>): void {
    const method = msg.method;
    const hostId = msg.host_id;
    if (method === "callback") {
      if (hostId === this.hostId) this.onCallback(msg);
      return;
    }
    if (hostId === this.hostId) {
      this.stats.echoes++;
      return;
    }
    if (this.clustered && typeof hostId === "string" && hostId.startsWith(SWITCHYARD_HOST_PREFIX)) {
      this.stats.switchyardPeers++;
      return;
    }
    const nsName = msg.namespace ?? "/";
    if (typeof nsName !== "string") {
      this.stats.malformed++;
      return;
    }
    const nsp = this.namespaces.get(nsName);
    switch (method) {
      case "emit":
        this.onEmit(msg, nsp);
        return;
      case "close_room":
        if (!isStr(msg.room)) this.stats.malformed++;
        else nsp?.closeRoomLocal(msg.room);
        return;
      case "disconnect":
        if (!isStr(msg.sid)) this.stats.malformed++;
        else nsp?.disconnectLocal(msg.sid);
        return;
      case "enter_room":
      case "leave_room":
        if (!isStr(msg.sid) || !isStr(msg.room)) this.stats.malformed++;
        else nsp?.joinLocal(msg.sid, msg.room, method === "enter_room");
        return;
      default:
        this.stats.malformed++;
    }
  }

  private onEmit(msg: Record<string, unknown>, nsp: PeerAdapter | undefined): void {
    const event = msg.event;
    const rooms = roomSet(msg.room);
    const except = roomSet(msg.skip_sid);
    const args = argsOf(msg);
    if (!isStr(event) || RESERVED.has(event) || !rooms || !except || !args) {
      this.stats.malformed++;
      return;
    }
    if (nsp === undefined) return;
    const cb = msg.callback;
    let ack: ((...a: unknown[]) => void) | undefined;
    if (Array.isArray(cb) && cb.length === 3 && isStr(msg.host_id)) {
      // A Python node asked for an ack: the first client answer goes back to it.
      const [room, ns, id] = cb as unknown[];
      const host = msg.host_id;
      let answered = false;
      if (isStr(room) && isStr(ns) && typeof id === "number") {
        ack = (...replyArgs: unknown[]) => {
          if (answered) return;
          answered = true;
          this.publish({
            method: "callback",
            hostId: host,
            sid: room,
            namespace: ns,
            id,
            args: replyArgs,
          });
        };
      }
    }
    this.stats.delivered++;
    nsp.deliverLocal(
      { type: PacketType.EVENT, nsp: nsp.peerNamespace, data: [event, ...args] },
      { rooms, except, flags: { local: true } },
      ack,
    );
  }

  private onCallback(msg: Record<string, unknown>): void {
    const id = msg.id;
    const args = msg.args;
    if (typeof id !== "number" || !Array.isArray(args)) {
      this.stats.malformed++;
      return;
    }
    const p = this.pending.get(id);
    if (p === undefined) return;
    this.stats.acks++;
    p.count(1);
    p.ack(...args);
  }
}

/** One adapter class per peer: `base` plus publishing to, and applying from, the Python channel. */
function peerAdapterClass(base: AdapterConstructor, peer: FlaskPeer): AdapterConstructor {
  return class FlaskPeerAdapter extends base implements PeerAdapter {
    readonly peerNamespace: string;
    private readonly peerNsp: AdapterNamespace;

    constructor(nsp: AdapterNamespace) {
      super(nsp);
      this.peerNsp = nsp;
      this.peerNamespace = nsp.name;
      peer.attach(this);
    }

    override close(): Promise<void> | void {
      peer.detach(this);
      return super.close();
    }

    override broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
      super.broadcast(packet, opts);
      if (opts.flags?.local !== true) this.publishEmit(packet, opts, null);
    }

    override broadcastWithAck(
      packet: SocketPacket,
      opts: BroadcastOptions,
      clientCountCallback: (clientCount: number) => void,
      ack: (...args: unknown[]) => void,
    ): void {
      if (opts.flags?.local === true) {
        super.broadcastWithAck(packet, opts, clientCountCallback, ack);
        return;
      }
      if (opts.rooms.size !== 1) {
        peer.degraded(
          "ack-rooms",
          "broadcast acks reach Python nodes only for one room (or socket id): published without asking Python clients for acks",
        );
        this.publishEmit(packet, opts, null);
        super.broadcastWithAck(packet, opts, clientCountCallback, ack);
        return;
      }
      const id = this.peerNsp.nextAckId();
      const [room] = opts.rooms as ReadonlySet<Room>;
      if (!this.publishEmit(packet, opts, [room as string, this.peerNamespace, id])) {
        super.broadcastWithAck(packet, opts, clientCountCallback, ack);
        return;
      }
      // Python nodes send no client count: their clients' acks count as they arrive, and
      // while no Switchyard client was reached the broadcast waits for the first of them.
      let counted = false;
      const count = (n: number): void => {
        if (n === 0 && !counted) return;
        counted = true;
        clientCountCallback(n);
      };
      peer.expectAcks(id, count, ack, opts.flags?.timeout);
      super.broadcastWithAck(packet, opts, count, ack);
    }

    override delSockets(opts: BroadcastOptions, rooms: Room[]): void {
      super.delSockets(opts, rooms);
      if (opts.flags?.local === true) return;
      // `io.in(room).socketsLeave(room)` is python's close_room; other selections are not expressible.
      const [only] = opts.rooms as ReadonlySet<Room>;
      if (opts.rooms.size === 1 && rooms.length === 1 && rooms[0] === only && !opts.except?.size) {
        peer.publish({
          method: "close_room",
          room: only as string,
          namespace: this.peerNamespace,
          hostId: peer.hostId,
        });
      } else {
        peer.degraded(
          "sockets-leave",
          "socketsLeave reaches Python nodes only as io.in(room).socketsLeave(room) (close_room)",
        );
      }
    }

    override disconnectSockets(opts: BroadcastOptions, close: boolean): void {
      super.disconnectSockets(opts, close);
      if (opts.flags?.local === true) return;
      // Python nodes disconnect by socket id: `io.in(sid).disconnectSockets()`.
      if (opts.rooms.size > 0 && !opts.except?.size) {
        for (const sid of opts.rooms) {
          peer.publish({
            method: "disconnect",
            sid,
            namespace: this.peerNamespace,
            hostId: peer.hostId,
          });
        }
      } else {
        peer.degraded(
          "disconnect",
          "disconnectSockets reaches Python nodes only with socket ids (io.in(sid).disconnectSockets())",
        );
      }
    }

    deliverLocal(
      packet: SocketPacket,
      opts: BroadcastOptions,
      ack: ((...args: unknown[]) => void) | undefined,
    ): void {
      if (ack === undefined) super.broadcast(packet, opts);
      else super.broadcastWithAck(packet, opts, noop, ack);
    }

    closeRoomLocal(room: Room): void {
      super.delSockets({ rooms: new Set([room]), flags: { local: true } }, [room]);
    }

    disconnectLocal(sid: string): void {
      super.disconnectSockets({ rooms: new Set([sid]), flags: { local: true } }, false);
    }

    joinLocal(sid: string, room: Room, join: boolean): void {
      const opts = { rooms: new Set([sid]), flags: { local: true } };
      if (join) super.addSockets(opts, [room]);
      else super.delSockets(opts, [room]);
    }

    /** Publishes this node's broadcast for the Python nodes; false if refused. */
    private publishEmit(
      packet: SocketPacket,
      opts: BroadcastOptions,
      callback: [string, string, number] | null,
    ): boolean {
      const data = packet.data as unknown[];
      if (opts.except !== undefined && opts.except.size > 0) {
        peer.degraded(
          "except",
          "except() reaches Python nodes as skip_sid: only socket ids are excluded there, not rooms",
        );
      }
      return peer.publish({
        method: "emit",
        event: data[0] as string,
        args: data.slice(1),
        namespace: this.peerNamespace,
        room: targetOf(opts.rooms),
        skipSid: opts.except === undefined || opts.except.size === 0 ? null : [...opts.except],
        callback,
        hostId: peer.hostId,
      });
    }
  };
}
