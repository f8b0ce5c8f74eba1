/**
 * The cluster adapter: the in-memory adapter's local step, plus every cluster protocol
 * detail, held once for all brokers. A broker package only implements {@link Bus}.
 *
 * - Broadcasts are delivered locally and published once (socket.io's format, so
 *   emitters interoperate) on the room's own channel when they target one room; nodes
 *   subscribe to the channel of each room they hold a socket in, so a node holding no
 *   socket of a room never receives (let alone decodes) its broadcasts.
 * - Requests (fetchSockets, serverSideEmit with ack, broadcast acks) go to the nodes
 *   alive when they start and complete as soon as each answered or died
 *   (cluster-requests.ts).
 * - Membership is by heartbeat (cluster-membership.ts); `bye` removes a node at once.
 * - Nothing from the bus is trusted: undecodable, foreign or unsupported messages are
 *   dropped and counted in {@link ClusterAdapter.stats}; none can throw out of the
 *   bus handler.
 *
 * docs/wire-format.md describes the messages.
 */
import {
  broadcastChannel,
  broadcastChannelFor,
  broadcastPrefix,
  type ClusterBroadcastOptions,
  type ControlMessage,
  controlChannel,
  decodeClusterBroadcast,
  decodeControlMessage,
  decodeEmitterRequest,
  emitterRequestChannel,
  encodeClusterBroadcast,
  encodeControlMessage,
  PacketType,
  ProtocolError,
  ProtocolErrorCode,
  type SocketPacket,
} from "@switchyard/protocol";
import { ErrorCode, RefusedError, SwitchyardError } from "../errors.js";
import type {
  AdapterConstructor,
  AdapterNamespace,
  AdapterSocket,
  BroadcastFlags,
  BroadcastOptions,
  PersistedSession,
  RecoveredSession,
  Room,
  SocketId,
} from "./adapter.js";
import type { Bus } from "./bus.js";
import { type BusWatcher, unwatchBus, watchBus } from "./bus-watch.js";
import { ChannelSubscriptions } from "./channel-subscriptions.js";
import { Membership } from "./cluster-membership.js";
import {
  type ClusterAdapterOptions,
  type ResolvedClusterOptions,
  resolveClusterOptions,
} from "./cluster-options.js";
import { ClusterRequests } from "./cluster-requests.js";
import {
  assertBus,
  type ClusterStats,
  encodeFetchResponse,
  eventPacket,
  fromTarget,
  NO_ROOMS,
  newStats,
  noop,
  otherNamespace,
  RESERVED_SERVER_EVENTS,
  randomId,
  refuseReservedBroadcast,
  toTarget,
  wireFlags,
} from "./cluster-support.js";
import { MemoryAdapter } from "./memory-adapter.js";
import {
  LogRecovery,
  type LogRecoveryHost,
  type LogRecoveryStats,
} from "./recovery-log-adapter.js";
import {
  type RemoteAckCallback,
  RemoteSocket,
  type RemoteSocketHost,
  remoteAckOnce,
} from "./remote-socket.js";

export type { ClusterAdapterEvents, ClusterStats } from "./cluster-support.js";
export type { ClusterAdapterOptions, LogRecoveryStats };

/** Warned once per process: recovery on a cluster without a log stays on each node. */
let warnedNoLog = false;

export class ClusterAdapter
  extends MemoryAdapter
  implements RemoteSocketHost, BusWatcher, LogRecoveryHost
{
  /** This node's id on the bus (shared by the namespaces of one Server when built by createAdapter). */
  readonly uid: string;
  readonly bus: Bus;
  readonly options: ResolvedClusterOptions;
  readonly stats: ClusterStats = newStats();

  private readonly members: Membership;
  private readonly requests: ClusterRequests;
  private readonly subs: ChannelSubscriptions;
  private readonly chBroadcast: string;
  private readonly chRequest: string;
  private readonly chControl: string;
  private readonly chSelf: string;
  /** `[uid, …` as msgpack: our own broadcast echoes are recognised without decoding. */
  private readonly ownPrefix: Buffer;
  /** Rooms of this node's disconnected sessions (no log): subscriptions kept for the window. */
  private readonly pinned = new Map<Room, number>();
  private readonly pins: { readonly rooms: readonly Room[]; readonly until: number }[] = [];
  private pinTimer: NodeJS.Timeout | undefined;
  /** Recovery across nodes over the `recovery` log (when it and connectionStateRecovery are on). */
  private readonly logged: LogRecovery | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private ready = false;
  private closed = false;

  /**
   * One adapter per namespace; prefer {@link createAdapter}, which validates the options
   * once and shares one uid among the namespaces of a server.
   */
  constructor(nsp: AdapterNamespace, bus: Bus, opts: ClusterAdapterOptions = {}, uid?: string) {
    super(nsp);
    assertBus(bus);
    this.bus = bus;
    this.options = resolveClusterOptions(opts);
    this.uid = uid ?? randomId(9);
    this.members = new Membership(this.options.heartbeatTimeout);
    this.requests = new ClusterRequests(
      this.uid,
      this.options.requestsTimeout,
      (from, info) => new RemoteSocket(this, from, info) as unknown as AdapterSocket,
    );
    const name = nsp.name;
    this.chBroadcast = broadcastChannel(name);
    this.chRequest = emitterRequestChannel(name);
    this.chControl = controlChannel(name);
    this.chSelf = controlChannel(name, this.uid);
    this.ownPrefix = broadcastPrefix(this.uid);
    this.subs = new ChannelSubscriptions(bus, (channel, payload) => this.handle(channel, payload));
    this.on("create-room", this.onCreateRoom);
    this.on("delete-room", this.onDeleteRoom);
    const recovery = nsp.recovery;
    const log = this.options.recovery;
    if (recovery !== undefined && log !== undefined) {
      // The log replaces the in-memory one: offsets and sessions live there.
      this.recoveryLog?.close();
      this.recoveryLog = undefined;
      this.logged = new LogRecovery(
        this,
        log,
        recovery.maxDisconnectionDuration,
        this.options.heartbeatTimeout,
      );
    } else if (recovery !== undefined && !warnedNoLog) {
      warnedNoLog = true;
      process.emitWarning(
        "connectionStateRecovery on a cluster adapter without a recovery log: a client recovers only when it comes back to the node it left (createAdapter(bus, { recovery }) recovers on any node; see docs/recovery.md)",
        { code: "SY_WARN_RECOVERY_NODE_LOCAL" },
      );
    }
  }

  /** Counters of recovery over the `recovery` log; undefined without one. */
  get logRecoveryStats(): LogRecoveryStats | undefined {
    return this.logged?.stats;
  }

  /**
   * Subscribes the namespace's channels, starts the heartbeat and says hello. Never
   * rejects. Called again after {@link close} when the server restarts.
   */
  override async init(): Promise<void> {
    this.closed = false;
    watchBus(this);
    const channels = [this.chBroadcast, this.chRequest, this.chControl, this.chSelf];
    // Rooms created before init (none with the Server, which inits at once) count too.
    for (const room of this.rooms.keys()) channels.push(broadcastChannel(this.nsp.name, room));
    await Promise.all(channels.map((c) => this.subs.subscribe(c)));
    if (this.closed) return;
    this.ready = true;
    const { heartbeatInterval, heartbeatTimeout } = this.options;
    this.heartbeatTimer = setInterval(beat, heartbeatInterval, this);
    this.heartbeatTimer.unref();
    // A tenth of the timeout: a dead node leaves pending requests at most that late;
    // serverCount() and new requests check liveness exactly, at call time.
    this.sweepTimer = setInterval(sweep, Math.max(5, Math.ceil(heartbeatTimeout / 10)), this);
    this.sweepTimer.unref();
    this.sendControl({ type: "hello", uid: this.uid });
  }

  /** Says bye, ends pending requests with what they have, and unsubscribes. Idempotent. */
  override async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ready) this.sendControl({ type: "bye", uid: this.uid });
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    clearTimeout(this.pinTimer);
    this.pinTimer = undefined;
    this.logged?.close();
    this.requests.finishAll();
    this.members.clear();
    unwatchBus(this);
    const channels = [this.chBroadcast, this.chRequest, this.chControl, this.chSelf];
    for (const room of this.rooms.keys()) channels.push(broadcastChannel(this.nsp.name, room));
    for (const room of this.pinned.keys()) {
      if (!this.rooms.has(room)) channels.push(broadcastChannel(this.nsp.name, room));
    }
    this.pinned.clear();
    this.pins.length = 0;
    const unsubscribed = Promise.all(channels.map((c) => this.subs.unsubscribe(c)));
    // A bus that is down may confirm only after reconnecting: io.close() must not hang on it.
    if (this.bus.healthy) await bounded(unsubscribed, this.options.requestsTimeout);
    this.emit("close");
  }

  /** This node plus every other node heard from within `heartbeatTimeout`. */
  override serverCount(): Promise<number> {
    return Promise.resolve(1 + this.liveNodes().size);
  }

  /** Uids of the other nodes heard from within heartbeatTimeout (none while the bus is down). */
  liveNodes(): Set<string> {
    return this.closed || !this.bus.healthy ? new Set() : this.members.live();
  }

  /** Resolves once every subscription change issued so far is confirmed by the broker. */
  async settled(): Promise<void> {
    await this.subs.settled();
  }

  // ——— rooms: one bus subscription per room held ———

  /**
   * Joins locally, and returns a promise while a room's subscription is on its way to
   * the broker (a new room, or one another socket just created): after
   * `await socket.join(room)`, broadcasts to the room from other nodes reach the socket.
   */
  override addAll(id: SocketId, rooms: Iterable<Room>): Promise<void> | void {
    const list = Array.isArray(rooms) ? (rooms as Room[]) : [...rooms];
    super.addAll(id, list);
    this.logged?.changed(id);
    // While the broker is away there is nothing to wait for; the bus restores on `up`.
    if (this.closed || !this.bus.healthy) return;
    const pending: Promise<void>[] = [];
    for (const room of list) {
      const op = this.subs.pending(broadcastChannel(this.nsp.name, room));
      if (op !== undefined) pending.push(op);
    }
    return pending.length === 0 ? undefined : Promise.all(pending).then(noop);
  }

  override del(id: SocketId, room: Room): void {
    super.del(id, room);
    this.logged?.changed(id);
  }

  override delAll(id: SocketId): void {
    super.delAll(id);
    this.logged?.gone(id);
  }

  // ——— connection state recovery ———

  override persistSession(session: PersistedSession): void | Promise<void> {
    if (this.logged !== undefined) return this.logged.persist(session);
    super.persistSession(session);
    if (this.recoveryOptions !== undefined) this.pin(session.rooms);
  }

  /**
   * Without a log, this node's memory log keeps what its disconnected sessions miss: it
   * must go on receiving their rooms' broadcasts after their last socket here left, for
   * the window. The rooms' subscriptions are kept (pinned) until then.
   */
  private pin(rooms: readonly Room[]): void {
    for (const room of rooms) this.pinned.set(room, (this.pinned.get(room) ?? 0) + 1);
    this.pins.push({ rooms, until: Date.now() + this.recoveryOptions!.maxDisconnectionDuration });
    if (this.pinTimer === undefined) this.schedulePins();
  }

  private schedulePins(): void {
    const head = this.pins[0];
    if (head === undefined || this.closed) return;
    this.pinTimer = setTimeout(unpinDue, Math.max(0, head.until - Date.now()) + 10, this);
    this.pinTimer.unref();
  }

  /** @internal The pin timer: releases the rooms of sessions past the window. */
  unpinDue(): void {
    this.pinTimer = undefined;
    const now = Date.now();
    while (this.pins.length > 0 && this.pins[0]!.until <= now) {
      for (const room of this.pins.shift()!.rooms) {
        const n = (this.pinned.get(room) ?? 1) - 1;
        if (n > 0) {
          this.pinned.set(room, n);
          continue;
        }
        this.pinned.delete(room);
        if (!this.rooms.has(room) && !this.closed) {
          void this.subs.unsubscribe(broadcastChannel(this.nsp.name, room));
        }
      }
    }
    this.schedulePins();
  }

  override recoveryMark(): string | undefined {
    if (this.logged === undefined) return super.recoveryMark();
    return this.logged.mark();
  }

  override restoreSession(
    pid: string,
    offset: string,
  ): Promise<RecoveredSession | null> | RecoveredSession | null {
    if (this.logged === undefined) return super.restoreSession(pid, offset);
    return this.logged.restore(pid, offset);
  }

  private readonly onCreateRoom = (room: Room): void => {
    void this.subs.subscribe(broadcastChannel(this.nsp.name, room));
  };

  private readonly onDeleteRoom = (room: Room): void => {
    // Kept while a disconnected session of this node may still recover (see pin()).
    if (this.pinned.size > 0 && this.pinned.has(room)) return;
    void this.subs.unsubscribe(broadcastChannel(this.nsp.name, room));
  };

  // ——— broadcasts ———

  override broadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    if (this.logged !== undefined) {
      this.logged.broadcast(packet, opts);
      return;
    }
    if (
      opts.flags?.local === true ||
      this.closed ||
      (this.recoveryOptions !== undefined && this.isLocalUnicast(opts))
    ) {
      super.broadcast(packet, opts);
      return;
    }
    // Encoded before the local step: with per-node recovery on, that step appends this
    // node's offset to the packet, which other nodes must not receive.
    const bytes = encodeClusterBroadcast({
      uid: this.uid,
      packet: eventPacket(packet),
      opts: { ...toTarget(opts), flags: wireFlags(opts.flags) },
    });
    super.broadcast(packet, opts);
    this.publish(broadcastChannelFor(this.nsp.name, opts.rooms), bytes);
  }

  /**
   * With recovery on, `socket.emit` goes through the adapter to the socket's own room
   * (as in socket.io, so it gets an offset): when that socket is here, no other node
   * has it, and the bus is skipped.
   */
  private isLocalUnicast(opts: BroadcastOptions): boolean {
    if (opts.rooms.size !== 1 || (opts.except !== undefined && opts.except.size > 0)) return false;
    const [room] = opts.rooms as ReadonlySet<Room>;
    return this.nsp.sockets.has(room!);
  }

  /** @internal Recovery over the log: see {@link LogRecoveryHost.watchRooms}. */
  watchRooms(rooms: readonly Room[]): { ready: Promise<void>; release(): void } {
    const added = rooms.filter((room) => !this.rooms.has(room));
    const ready = Promise.all(
      added.map((room) => this.subs.subscribe(broadcastChannel(this.nsp.name, room))),
    ).then(noop);
    const release = (): void => {
      for (const room of added) {
        if (!this.rooms.has(room) && !this.closed) {
          void this.subs.unsubscribe(broadcastChannel(this.nsp.name, room));
        }
      }
    };
    return { ready, release };
  }

  /**
   * @internal Recovery over the log: delivers a broadcast (stamped already, or not
   * recoverable) here as it is and, unless local, publishes it.
   */
  sendBroadcast(packet: SocketPacket, opts: BroadcastOptions): void {
    this.deliverLocal(packet, opts);
    if (opts.flags?.local === true || this.closed || this.isLocalUnicast(opts)) return;
    this.publish(
      broadcastChannelFor(this.nsp.name, opts.rooms),
      encodeClusterBroadcast({
        uid: this.uid,
        packet: eventPacket(packet),
        opts: { ...toTarget(opts), flags: wireFlags(opts.flags) },
      }),
    );
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
    this.broadcastWithAckTo(undefined, packet, opts, clientCountCallback, ack);
  }

  /** Broadcast with acks to every live node (`node` undefined) or to one node. */
  private broadcastWithAckTo(
    node: string | undefined,
    packet: SocketPacket,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void {
    const live = this.liveNodes();
    const asked = node === undefined ? live : live.has(node) ? new Set([node]) : new Set<string>();
    if (asked.size === 0) {
      super.broadcastWithAck(packet, opts, clientCountCallback, ack);
      return;
    }
    const rid = this.requests.newRid();
    // Encoded before the local step stamps `packet` with this node's ack id.
    const bytes = encodeControlMessage({
      type: "broadcast",
      uid: this.uid,
      rid,
      packet: eventPacket(packet),
      opts: { ...toTarget(opts), flags: wireFlags(opts.flags) },
    });
    const lifetime = opts.flags?.timeout ?? this.options.requestsTimeout;
    const req = this.requests.broadcast(rid, asked, lifetime, clientCountCallback, ack);
    this.publish(controlChannel(this.nsp.name, node), bytes);
    super.broadcastWithAck(
      packet,
      opts,
      (n) => {
        req.localCount += n;
      },
      ack,
    );
  }

  // ——— socket sets ———

  override async fetchSockets(opts: BroadcastOptions): Promise<AdapterSocket[]> {
    const local = await super.fetchSockets(opts);
    if (opts.flags?.local === true) return local;
    const targets = this.liveNodes();
    if (targets.size === 0) return local;
    const rid = this.requests.newRid();
    const result = this.requests.fetch(rid, targets, local);
    this.sendControl({ type: "fetch", uid: this.uid, rid, opts: toTarget(opts) });
    return result;
  }

  override addSockets(opts: BroadcastOptions, rooms: Room[]): void {
    super.addSockets(opts, rooms);
    if (opts.flags?.local !== true)
      this.sendControl({ type: "join", uid: this.uid, opts: toTarget(opts), rooms });
  }

  override delSockets(opts: BroadcastOptions, rooms: Room[]): void {
    super.delSockets(opts, rooms);
    if (opts.flags?.local !== true)
      this.sendControl({ type: "leave", uid: this.uid, opts: toTarget(opts), rooms });
  }

  override disconnectSockets(opts: BroadcastOptions, close: boolean): void {
    super.disconnectSockets(opts, close);
    if (opts.flags?.local !== true)
      this.sendControl({ type: "disconnect", uid: this.uid, opts: toTarget(opts), close });
  }

  /** To the other nodes' listeners; a trailing `(err, responses)` gathers one response per live node. */
  override serverSideEmit(args: unknown[]): void {
    const last = args[args.length - 1];
    const withAck = typeof last === "function";
    const data = withAck ? args.slice(0, -1) : args;
    const ev = data[0];
    if (typeof ev !== "string" || RESERVED_SERVER_EVENTS.has(ev)) {
      throw new SwitchyardError(
        ErrorCode.RESERVED_EVENT,
        `"${String(ev)}" is a reserved event name`,
      );
    }
    if (!withAck) {
      this.sendControl({ type: "emit", uid: this.uid, data });
      return;
    }
    const ack = last as (err: Error | null, responses: unknown[]) => void;
    const targets = this.liveNodes();
    if (targets.size === 0) {
      process.nextTick(ack, null, []);
      return;
    }
    const rid = this.requests.newRid();
    const bytes = encodeControlMessage({ type: "emit", uid: this.uid, rid, data });
    this.requests.emit(rid, targets, ack);
    this.publish(this.chControl, bytes);
  }

  // ——— RemoteSocket operations: addressed to the node holding the socket ———

  /** @internal */
  remoteEmit(id: SocketId, data: unknown[]): void {
    // On the socket id's room channel: only the node holding the socket receives it.
    this.broadcast({ type: PacketType.EVENT, nsp: this.nsp.name, data }, { rooms: new Set([id]) });
  }

  /** @internal */
  remoteEmitWithAck(
    node: string,
    id: SocketId,
    data: unknown[],
    timeout: number | undefined,
    callback: RemoteAckCallback,
  ): void {
    const flags: BroadcastFlags = { timeout: timeout ?? this.options.requestsTimeout };
    this.broadcastWithAckTo(
      node,
      { type: PacketType.EVENT, nsp: this.nsp.name, data },
      { rooms: new Set([id]), except: NO_ROOMS, flags },
      noop,
      remoteAckOnce(timeout, callback),
    );
  }

  /** @internal */
  remoteJoin(node: string, id: SocketId, rooms: Room[]): void {
    const opts = { rooms: [id], except: [] };
    this.sendControl({ type: "join", uid: this.uid, opts, rooms }, node);
  }

  /** @internal */
  remoteLeave(node: string, id: SocketId, rooms: Room[]): void {
    const opts = { rooms: [id], except: [] };
    this.sendControl({ type: "leave", uid: this.uid, opts, rooms }, node);
  }

  /** @internal */
  remoteDisconnect(node: string, id: SocketId, close: boolean): void {
    const opts = { rooms: [id], except: [] };
    this.sendControl({ type: "disconnect", uid: this.uid, opts, close }, node);
  }

  // ——— membership and bus health ———

  /** @internal Heartbeat timer. */
  heartbeat(): void {
    if (this.closed) return;
    this.sendControl({ type: "heartbeat", uid: this.uid });
    this.logged?.heartbeat();
  }

  /** @internal Sweep timer: forgets silent nodes and stops waiting for them. */
  sweep(): void {
    for (const uid of this.members.expired()) this.forget(uid, "timeout");
  }

  private forget(uid: string, reason: "bye" | "timeout"): void {
    if (!this.members.forget(uid)) return;
    this.requests.nodeGone(uid);
    this.emit("node-left", uid, reason);
  }

  /** @internal Relayed by the bus watch. Answers cannot arrive now: pending requests end with what they have. */
  onBusDown(err: Error | undefined): void {
    for (const uid of this.members.live()) this.requests.nodeGone(uid);
    this.emit("bus-down", err);
  }

  /** @internal The broker is back: announce ourselves again so peers answer at once. */
  onBusUp(): void {
    if (this.ready && !this.closed) this.sendControl({ type: "hello", uid: this.uid });
    this.emit("bus-up");
  }

  // ——— receiving ———

  private handle(channel: string, payload: Buffer): void {
    this.stats.received++;
    if (this.closed) return;
    try {
      if (channel === this.chControl || channel === this.chSelf) this.onControl(payload);
      else if (channel === this.chRequest) this.onEmitterRequest(payload);
      else if (channel.startsWith(this.chBroadcast)) this.onBroadcast(payload);
      else throw new ProtocolError(ProtocolErrorCode.UNKNOWN_PACKET_TYPE, "not our channel");
    } catch (err) {
      this.dropped(err, channel);
    }
  }

  private dropped(err: unknown, channel: string): void {
    const s = this.stats;
    if (err instanceof ProtocolError) {
      if (err.code === ProtocolErrorCode.UNKNOWN_PACKET_TYPE) s.unsupported++;
      else s.malformed++;
      s.dropped++;
    } else if (err instanceof RefusedError) {
      s.refused++;
      s.dropped++;
    } else {
      // Thrown by application code (a serverSideEmit listener), not by the message.
      s.handlerErrors++;
    }
    if (this.listenerCount("drop") > 0) this.emit("drop", err as Error, channel);
  }

  private onBroadcast(payload: Buffer): void {
    const own = this.ownPrefix;
    if (payload.length > own.length && payload.compare(own, 0, own.length, 0, own.length) === 0) {
      return;
    }
    const msg = decodeClusterBroadcast(payload);
    if (msg.uid === this.uid) return;
    if (msg.packet.nsp !== this.nsp.name) throw otherNamespace(msg.packet.nsp);
    refuseReservedBroadcast(msg.packet);
    const { rooms, except, flags } = msg.opts;
    const packet = eventPacket(msg.packet);
    const opts: BroadcastOptions = {
      rooms: new Set(rooms),
      except: new Set(except),
      flags: { volatile: flags.volatile === true, compress: flags.compress !== false },
    };
    // With the log, the packet carries its offset from its node: delivered as it is.
    if (this.logged !== undefined) this.deliverLocal(packet, this.logged.received(packet, opts));
    else super.broadcast(packet, opts);
  }

  private onEmitterRequest(payload: Buffer): void {
    const req = decodeEmitterRequest(payload);
    switch (req.type) {
      case "join":
        super.addSockets(fromTarget(req.opts), req.rooms);
        return;
      case "leave":
        super.delSockets(fromTarget(req.opts), req.rooms);
        return;
      case "disconnect":
        super.disconnectSockets(fromTarget(req.opts), req.close);
        return;
      case "serverSideEmit":
        this.deliverServerSideEmit(req.data, undefined, undefined);
        return;
    }
  }

  private onControl(payload: Buffer): void {
    const msg = decodeControlMessage(payload);
    const from = msg.uid;
    if (from === this.uid) return;
    switch (msg.type) {
      case "hello":
        if (this.members.seen(from, true)) this.emit("node-joined", from);
        this.sendControl({ type: "heartbeat", uid: this.uid }, from);
        return;
      case "heartbeat":
        if (this.members.seen(from, true)) this.emit("node-joined", from);
        return;
      case "bye":
        this.forget(from, "bye");
        return;
    }
    this.members.seen(from, false);
    switch (msg.type) {
      case "fetch":
        this.publish(
          controlChannel(this.nsp.name, from),
          encodeFetchResponse(this.uid, msg.rid, this.collect(fromTarget(msg.opts))),
        );
        return;
      case "join":
        super.addSockets(fromTarget(msg.opts), msg.rooms);
        return;
      case "leave":
        super.delSockets(fromTarget(msg.opts), msg.rooms);
        return;
      case "disconnect":
        super.disconnectSockets(fromTarget(msg.opts), msg.close);
        return;
      case "emit":
        this.deliverServerSideEmit(msg.data, from, msg.rid);
        return;
      case "broadcast":
        refuseReservedBroadcast(msg.packet);
        this.answerBroadcast(from, msg.rid, msg.packet, msg.opts);
        return;
      default:
        this.requests.onResponse(msg);
        return;
    }
  }

  private deliverServerSideEmit(data: unknown[], to?: string, rid?: string): void {
    if (RESERVED_SERVER_EVENTS.has(data[0])) throw new RefusedError(String(data[0]));
    if (to === undefined || rid === undefined) {
      this.nsp.onServerSideEmit(data);
      return;
    }
    let replied = false;
    const reply = (...args: unknown[]): void => {
      if (replied || this.closed) return;
      replied = true;
      this.sendControl({ type: "emit-res", uid: this.uid, rid, args }, to);
    };
    this.nsp.onServerSideEmit([...data, reply]);
  }

  private answerBroadcast(
    to: string,
    rid: string,
    packet: SocketPacket,
    opts: ClusterBroadcastOptions,
  ): void {
    super.broadcastWithAck(
      packet,
      // The asking node stops waiting at its timeout (requestsTimeout without one):
      // the callbacks of clients that have not answered by then are released here too.
      fromTarget(opts, {
        compress: opts.flags.compress !== false,
        timeout: opts.flags.timeout ?? this.options.requestsTimeout,
      }),
      (count) => this.sendControl({ type: "broadcast-count", uid: this.uid, rid, count }, to),
      (...args: unknown[]) => {
        if (!this.closed) this.sendControl({ type: "broadcast-ack", uid: this.uid, rid, args }, to);
      },
    );
  }

  // ——— publishing ———

  private sendControl(msg: ControlMessage, to?: string): void {
    this.publish(controlChannel(this.nsp.name, to), encodeControlMessage(msg));
  }

  private publish(channel: string, bytes: Buffer): void {
    this.stats.published++;
    this.bus.publish(channel, bytes);
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void p.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function unpinDue(adapter: ClusterAdapter): void {
  adapter.unpinDue();
}

function beat(adapter: ClusterAdapter): void {
  adapter.heartbeat();
}

function sweep(adapter: ClusterAdapter): void {
  adapter.sweep();
}

/**
 * The adapter option of `new Server()` for a cluster over `bus`:
 * `new Server(http, { adapter: createAdapter(bus, { heartbeatInterval: 2000 }) })`.
 * Options are validated here (InvalidOptionError names the option). One call per
 * Server: its namespaces share one node uid. The bus stays the caller's to close,
 * after `io.close()` (which says bye).
 */
export function createAdapter(bus: Bus, opts: ClusterAdapterOptions = {}): AdapterConstructor {
  assertBus(bus);
  const resolved = resolveClusterOptions(opts);
  const uid = randomId(9);
  const taken = new Set<string>();
  return class BoundClusterAdapter extends ClusterAdapter {
    constructor(nsp: AdapterNamespace) {
      // Two Servers built from one createAdapter() would otherwise share a uid per
      // namespace and ignore each other's messages as their own.
      const shared = !taken.has(nsp.name);
      super(nsp, bus, resolved, shared ? uid : undefined);
      if (shared) {
        taken.add(nsp.name);
        this.once("close", () => taken.delete(nsp.name));
      }
    }
  };
}
