/**
 * Peer mode of the bridge: a Switchyard node as a member of a Flask-SocketIO /
 * python-socketio cluster (mixed clusters, rolling migration).
 *
 * The bridge's `adapter` (a subclass of `base`, as `createAdapter` returns) is passed to
 * `new Server(http, { adapter: bridge.adapter })`. This node's broadcasts are delivered
 * locally by `base` and published once on the Python channel, as JSON in the layout of
 * `pythonSocketIO`, through the single encoder {@link encodePeerMessage}; what that layout
 * cannot carry is refused for the Python nodes, counted and reported once. Messages read
 * from the channel come through the bridge's one receive path (decodeFlaskMessage, the
 * restricted pickle reader behind `legacyPickle`) and are applied here to this node's
 * local sockets, with Python acks; `callback` messages carrying this node's host id
 * complete this node's broadcast acks.
 */
import { PacketType, type SocketPacket } from "@switchyard/protocol";
import type {
  Adapter,
  AdapterConstructor,
  AdapterNamespace,
  BroadcastOptions,
  Room,
} from "@switchyard/server";
import type { FlaskCallback, FlaskEmit, FlaskMessage } from "./format.js";
import type { PeerMessage } from "./peer-message.js";

/** Marks the host ids of Switchyard peers (the rest is random), so Switchyard nodes know each other's copies. */
export const SWITCHYARD_HOST_PREFIX = "5791c4a0";

/** What the peer adapters need from the bridge. */
export interface PeerHost {
  readonly hostId: string;
  /** Publishes through the one encoder; false if refused or not sent. */
  publish(msg: PeerMessage): boolean;
  /** A shape Python nodes read differently: published anyway, counted and reported once. */
  degraded(kind: string, text: string): void;
  expectAcks(
    id: number,
    count: (n: number) => void,
    ack: (...args: unknown[]) => void,
    timeoutMs: number | undefined,
  ): void;
}

/** The operations the peer needs from each namespace's wrapped adapter. */
export interface PeerAdapter extends Adapter {
  readonly peerNamespace: string;
  deliverFromPeer(
    packet: SocketPacket,
    opts: BroadcastOptions,
    ack: ((...args: unknown[]) => void) | undefined,
  ): void;
  closeRoomLocal(room: Room): void;
  /** False if the socket is not on this node. */
  disconnectLocal(sid: string): boolean;
  /** False if the socket is not on this node. */
  joinLocal(sid: string, room: Room, join: boolean): boolean;
}

interface PendingAck {
  count: (n: number) => void;
  ack: (...args: unknown[]) => void;
  timer: NodeJS.Timeout;
}

/** The per-node state of peer mode: namespaces' adapters and pending broadcast acks. */
export class PeerState {
  private readonly namespaces = new Map<string, PeerAdapter>();
  private readonly pending = new Map<number, PendingAck>();

  constructor(private readonly ackTimeoutMs: number) {}

  attach(adapter: PeerAdapter): void {
    this.namespaces.set(adapter.peerNamespace, adapter);
  }

  detach(adapter: PeerAdapter): void {
    if (this.namespaces.get(adapter.peerNamespace) === adapter) {
      this.namespaces.delete(adapter.peerNamespace);
    }
  }

  expectAcks(
    id: number,
    count: (n: number) => void,
    ack: (...args: unknown[]) => void,
    timeoutMs: number | undefined,
  ): void {
    const timer = setTimeout(() => this.pending.delete(id), timeoutMs ?? this.ackTimeoutMs).unref();
    this.pending.set(id, { count, ack, timer });
  }

  /** A `callback` addressed to this node: true if it matched a pending broadcast. */
  onCallback(msg: FlaskCallback): boolean {
    const p = this.pending.get(msg.id);
    if (p === undefined) return false;
    p.count(1);
    p.ack(...msg.args.map(plain));
    return true;
  }

  /**
   * Applies a Python node's message to this node's sockets; `publish` sends the ack
   * reply of an emit with a `callback`. Returns false when the namespace or socket is
   * not on this node.
   */
  deliver(msg: Exclude<FlaskMessage, FlaskCallback>, host: PeerHost): boolean {
    const nsp = this.namespaces.get(msg.namespace);
    if (nsp === undefined) return false;
    switch (msg.method) {
      case "emit":
        return this.deliverEmit(msg, nsp, host);
      case "close_room":
        nsp.closeRoomLocal(msg.room);
        return true;
      case "disconnect":
        return nsp.disconnectLocal(msg.sid);
      case "enter_room":
      case "leave_room":
        return nsp.joinLocal(msg.sid, msg.room, msg.method === "enter_room");
    }
  }

  private deliverEmit(msg: FlaskEmit, nsp: PeerAdapter, host: PeerHost): boolean {
    // An empty room list in Python reaches nobody (the union of no rooms).
    if (msg.rooms !== undefined && msg.rooms.length === 0) return true;
    let ack: ((...a: unknown[]) => void) | undefined;
    const cb = msg.callback;
    const asker = msg.hostId;
    if (cb !== undefined && asker !== undefined) {
      // A Python node asked for an ack: the first client answer goes back to it.
      let answered = false;
      ack = (...replyArgs: unknown[]) => {
        if (answered) return;
        answered = true;
        host.publish({
          method: "callback",
          hostId: asker,
          sid: cb.room,
          namespace: cb.namespace,
          id: cb.id,
          args: replyArgs,
        });
      };
    }
    nsp.deliverFromPeer(
      { type: PacketType.EVENT, nsp: nsp.peerNamespace, data: [msg.event, ...msg.args] },
      {
        rooms: new Set(msg.rooms ?? []),
        except: new Set(msg.skipSids),
        flags: { local: true },
      },
      ack,
    );
    return true;
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}

function noop(): void {}

/**
 * Ack arguments handed to app code as `JSON.parse` would give them: plain objects (the
 * pickle reader builds null-prototype ones), keys defined, never assigned, so a
 * `__proto__` key stays an own key. Depth is bounded by the decoder.
 */
function plain(value: unknown): unknown {
  if (value === null || typeof value !== "object" || Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(plain);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    Object.defineProperty(out, key, {
      value: plain((value as Record<string, unknown>)[key]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function targetOf(rooms: ReadonlySet<Room>): string | string[] | null {
  if (rooms.size === 0) return null;
  if (rooms.size === 1) return [...rooms][0] as string;
  return [...rooms] as string[];
}

/** One adapter class per bridge: `base` plus publishing to, and applying from, the Python channel. */
export function peerAdapterClass(
  base: AdapterConstructor,
  state: PeerState,
  host: PeerHost,
): AdapterConstructor {
  return class FlaskPeerAdapter extends base implements PeerAdapter {
    readonly peerNamespace: string;
    private readonly peerNsp: AdapterNamespace;

    constructor(nsp: AdapterNamespace) {
      super(nsp);
      this.peerNsp = nsp;
      this.peerNamespace = nsp.name;
      state.attach(this);
    }

    override close(): Promise<void> | void {
      state.detach(this);
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
        host.degraded(
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
      host.expectAcks(id, count, ack, opts.flags?.timeout);
      super.broadcastWithAck(packet, opts, count, ack);
    }

    override delSockets(opts: BroadcastOptions, rooms: Room[]): void {
      super.delSockets(opts, rooms);
      if (opts.flags?.local === true) return;
      // `io.in(room).socketsLeave(room)` is python's close_room; other selections are not expressible.
      const [only] = opts.rooms as ReadonlySet<Room>;
      if (opts.rooms.size === 1 && rooms.length === 1 && rooms[0] === only && !opts.except?.size) {
        host.publish({
          method: "close_room",
          room: only as string,
          namespace: this.peerNamespace,
          hostId: host.hostId,
        });
      } else {
        host.degraded(
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
          host.publish({
            method: "disconnect",
            sid,
            namespace: this.peerNamespace,
            hostId: host.hostId,
          });
        }
      } else {
        host.degraded(
          "disconnect",
          "disconnectSockets reaches Python nodes only with socket ids (io.in(sid).disconnectSockets())",
        );
      }
    }

    deliverFromPeer(
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

    disconnectLocal(sid: string): boolean {
      if (!this.peerNsp.sockets.has(sid)) return false;
      super.disconnectSockets({ rooms: new Set([sid]), flags: { local: true } }, false);
      return true;
    }

    joinLocal(sid: string, room: Room, join: boolean): boolean {
      if (!this.peerNsp.sockets.has(sid)) return false;
      const opts = { rooms: new Set([sid]), flags: { local: true } };
      const done: unknown = join ? super.addSockets(opts, [room]) : super.delSockets(opts, [room]);
      if (done instanceof Promise) done.catch(noop);
      return true;
    }

    /** Publishes this node's broadcast for the Python nodes; false if refused. */
    private publishEmit(
      packet: SocketPacket,
      opts: BroadcastOptions,
      callback: [string, string, number] | null,
    ): boolean {
      const data = packet.data as unknown[];
      if (opts.except !== undefined && opts.except.size > 0) {
        host.degraded(
          "except",
          "except() reaches Python nodes as skip_sid: only socket ids are excluded there, not rooms",
        );
      }
      return host.publish({
        method: "emit",
        event: data[0] as string,
        args: data.slice(1),
        namespace: this.peerNamespace,
        room: targetOf(opts.rooms),
        skipSid: opts.except === undefined || opts.except.size === 0 ? null : [...opts.except],
        callback,
        hostId: host.hostId,
      });
    }
  };
}
