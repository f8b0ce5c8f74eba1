/**
 * The adapter seam (same shape as socket.io-adapter): room bookkeeping and delivery of
 * broadcasts. The in-memory adapter serves one node; the cluster adapter adds a bus
 * without changing anything above this interface. Adapters reach sockets only through
 * {@link AdapterSocket} / {@link PacketSink}, and hand their local deliveries to the
 * engine's outbox through {@link BroadcastSink}: they never write to a connection
 * themselves.
 */
import type { EventEmitter } from "node:events";
import type { SocketPacket } from "@switchyard/protocol";
import type { EncodedPacket } from "../broadcast/encoded-packet.js";

export type SocketId = string;
export type Room = string;

/** Per-broadcast flags. */
export interface BroadcastFlags {
  /** Drop for clients that are not ready instead of queueing. */
  volatile?: boolean;
  /** Allow compression. @default true */
  compress?: boolean;
  /** Stay on this node (cluster adapters skip the bus). */
  local?: boolean;
  /** Milliseconds to wait for acks. */
  timeout?: number;
}

/** Who a broadcast reaches: the union of `rooms` (all sockets if empty) minus the members of `except`. */
export interface BroadcastOptions {
  rooms: ReadonlySet<Room>;
  except?: ReadonlySet<Room>;
  flags?: BroadcastFlags;
}

/**
 * What an adapter needs from the engine: the outbox that delivers a broadcast to the
 * local recipients it collected (implemented by the engine's `Outbox`, one per engine).
 * The outbox applies the volatile, slow-consumer and order rules; the adapter only says
 * who and what.
 */
export interface BroadcastSink {
  /**
   * Delivers `packet` to every recipient, behind what is already queued for each. The
   * outbox may keep `recipients` until it has delivered to all of them, so the list must
   * not change afterwards (a snapshot; handing the same list again for consecutive
   * broadcasts lets the outbox write them to each connection together).
   */
  broadcast(
    packet: EncodedPacket,
    recipients: readonly Recipient[],
    volatile: boolean,
    compress: boolean,
  ): void;
}

/**
 * A socket's connection as the adapter sees it (the engine's session): opaque, except
 * for the outbox that writes to it. An adapter collects recipients from
 * {@link PacketSink.conn} and hands them back to that outbox.
 */
export interface Recipient {
  readonly outbox: BroadcastSink;
}

/** The narrow view of a socket a broadcast reaches. */
export interface PacketSink {
  readonly id: SocketId;
  /** The connection the socket writes to: broadcasts collect it as a recipient. */
  readonly conn: Recipient;
  /** Registers the callback of a broadcast ack under the packet's id. */
  expectAck(id: number, callback: (...args: unknown[]) => void): void;
  /** Forgets the callback of ack `id`: its broadcast timed out, the answer is no longer awaited. */
  releaseAck(id: number): void;
  /**
   * Shows a broadcast's `[event, ...args]` to the socket's `onAnyOutgoing` listeners.
   * Adapters call it only while {@link AdapterNamespace.outgoingListeners} is non-zero.
   */
  notifyOutgoing(data: unknown[]): void;
}

/** What adapters may do with a local socket (fetchSockets, socketsJoin, …). */
export interface AdapterSocket extends PacketSink {
  /** The private session id of connection state recovery (undefined when it is off). */
  readonly pid?: string | undefined;
  readonly handshake: unknown;
  readonly rooms: Set<Room>;
  readonly data: unknown;
  join(rooms: Room | Room[]): Promise<void> | void;
  leave(room: Room): Promise<void> | void;
  disconnect(close?: boolean): unknown;
}

/** What adapters see of their namespace. */
export interface AdapterNamespace {
  readonly name: string;
  /** Connected sockets by id. */
  readonly sockets: ReadonlyMap<SocketId, AdapterSocket>;
  /** Encodes with the server's parser. */
  encode(packet: SocketPacket): EncodedPacket;
  /** Next ack id of this namespace (shared by sockets and broadcasts, so ids never collide). */
  nextAckId(): number;
  /**
   * How many of the namespace's sockets have `onAnyOutgoing` listeners: while none has,
   * a broadcast does no per-recipient work for them.
   */
  readonly outgoingListeners: number;
  /** Delivers a `serverSideEmit` from another node to this namespace's listeners. */
  onServerSideEmit(args: unknown[]): void;
  /**
   * Connection state recovery as configured on the server (`connectionStateRecovery`),
   * undefined when it is off: adapters log eligible broadcasts only while it is set.
   */
  readonly recovery: RecoveryOptions | undefined;
  /**
   * An adapter tells why it could not restore a session (counted in `io.stats`); the
   * namespace counts the miss itself, adapters that do not call this leave it unexplained.
   */
  recoveryMiss(reason: RecoveryMissReason): void;
}

/**
 * Why a session could not be recovered: `unknown-session` (pid never issued, already
 * used, or swept), `expired` (disconnected longer than `maxDisconnectionDuration`),
 * `offset` (the client's offset is not in the log: trimmed, too old or forged), `error`
 * (the adapter's restore failed), `epoch` (the log was reset since the offset was
 * issued: a durable log wiped or restarted).
 */
export type RecoveryMissReason = "unknown-session" | "expired" | "offset" | "error" | "epoch";

/**
 * The adapter interface. Methods may be sync or async; callers await where it matters.
 * An adapter is an EventEmitter, as socket.io's is: apps listen to its room events
 * (`io.of("/").adapter.on("join-room", (room, id) => …)`; also `create-room`,
 * `leave-room`, `delete-room`).
 */
export interface Adapter extends EventEmitter {
  /** Sockets by room. */
  readonly rooms: Map<Room, Set<SocketId>>;
  /** Rooms by socket. */
  readonly sids: Map<SocketId, Set<Room>>;
  init(): Promise<void> | void;
  close(): Promise<void> | void;
  /** Number of nodes serving this namespace. */
  serverCount(): Promise<number>;
  addAll(id: SocketId, rooms: Iterable<Room>): Promise<void> | void;
  del(id: SocketId, room: Room): Promise<void> | void;
  delAll(id: SocketId): void;
  broadcast(packet: SocketPacket, opts: BroadcastOptions): void;
  /** Broadcasts a packet expecting one ack per client; reports how many clients it reached. */
  broadcastWithAck(
    packet: SocketPacket,
    opts: BroadcastOptions,
    clientCountCallback: (clientCount: number) => void,
    ack: (...args: unknown[]) => void,
  ): void;
  /** Ids of the sockets in `rooms` (all if empty). */
  sockets(rooms: ReadonlySet<Room>): Promise<Set<SocketId>>;
  socketRooms(id: SocketId): Set<Room> | undefined;
  fetchSockets(opts: BroadcastOptions): Promise<AdapterSocket[]>;
  addSockets(opts: BroadcastOptions, rooms: Room[]): void;
  delSockets(opts: BroadcastOptions, rooms: Room[]): void;
  disconnectSockets(opts: BroadcastOptions, close: boolean): void;
  /** Emits to the other nodes' namespace listeners; a trailing function is the ack `(err, responses)`. */
  serverSideEmit(args: unknown[]): void;
  /**
   * Connection state recovery (optional, socket.io-adapter's names): keeps the state of a
   * socket that lost its connection for a recoverable reason.
   */
  persistSession?(session: PersistedSession): void | Promise<void>;
  /**
   * Returns the session `pid` with the broadcasts it missed after `offset`, consuming it,
   * or null when it cannot be recovered (unknown or expired pid, offset no longer held).
   */
  restoreSession?(
    pid: string,
    offset: string,
  ): Promise<RecoveredSession | null | undefined> | RecoveredSession | null | undefined;
  /**
   * Extension: where the log stands now, taken when a socket connects and kept in its
   * session as {@link PersistedSession.mark}. A client that received no packet before it
   * lost its connection presents a pid without offset; `restoreSession(pid, "")` then
   * replays from the session's mark (socket.io cannot recover such a client).
   */
  recoveryMark?(): string | undefined;
  /**
   * Extension: the kept packets after `mark` that reach `rooms`, without consuming
   * anything; undefined if some of them are no longer held. A socket restored before its
   * connection middleware ran gets what was broadcast meanwhile (it was in its rooms but
   * not yet connected, so nothing reached it live).
   */
  missedSince?(mark: string, rooms: readonly Room[]): unknown[][] | undefined;
}

/**
 * A disconnected socket's state, kept for connection state recovery (socket.io's
 * `Session` shape, so socket.io adapters that implement `persistSession` interoperate).
 */
export interface PersistedSession {
  /** The socket id, reused by the recovered socket. */
  sid: SocketId;
  /** The private session id the client presents on reconnect (never broadcast). */
  pid: string;
  rooms: Room[];
  data: unknown;
  /** Extension: the adapter's {@link Adapter.recoveryMark} when the socket connected. */
  mark?: string;
}

/** A restored session: its state and the broadcasts it missed, oldest first. */
export interface RecoveredSession extends PersistedSession {
  /** The `data` arrays (`[event, ...args, offset]`) of the missed EVENT packets, in order. */
  missedPackets: unknown[][];
}

/** Connection state recovery as configured on the server (socket.io 4.8's option). */
export interface RecoveryOptions {
  /** Milliseconds a disconnected session (and the packets it may miss) is kept. */
  readonly maxDisconnectionDuration: number;
  /** Whether a recovered socket skips the connection middleware. */
  readonly skipMiddlewares: boolean;
  /** Extension: most packets the in-memory log keeps per namespace (oldest dropped first). */
  readonly maxPackets: number;
  /** Extension: most bytes (encoded size) the in-memory log keeps per namespace. */
  readonly maxBytes: number;
}

/** How `new Server({ adapter })` builds one adapter per namespace. */
export type AdapterConstructor = new (nsp: AdapterNamespace) => Adapter;
