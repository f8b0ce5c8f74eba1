/**
 * One engine session as the Socket.IO layer sees it: decodes its messages, demultiplexes
 * packets to its namespace sockets (at most one per namespace), handles CONNECT, and
 * closes sessions that never join a namespace within `connectTimeout`.
 */
import {
  PacketType,
  ProtocolError,
  ProtocolErrorCode,
  type SocketPacket,
} from "@switchyard/protocol";
import { writeParts } from "../broadcast/encoded-packet.js";
import type { Session, SessionSink } from "../engine/session.js";
import { type DisconnectReason, RESERVED_EVENTS } from "../typed-events.js";
import { type EngineWriteOptions, writeEncoded } from "./engine-write.js";
import type { Namespace, NamespaceClient } from "./namespace.js";
import type { PacketDecoder } from "./parser.js";
import type { Socket } from "./socket.js";

/** What a connection needs from the server. */
export interface ConnectionHost {
  readonly connectTimeout: number;
  readonly counters: { parseErrors: number; invalidNamespaces: number; unexpectedPackets: number };
  createDecoder(): PacketDecoder;
  encode(packet: SocketPacket): (string | Buffer)[];
  /** The namespace `name` if it exists (static, or a dynamic child already created). */
  namespaceOf(name: string): Namespace | undefined;
  /**
   * Finds or creates (dynamic) the namespace `name`; calls back with undefined if none
   * matches. `auth` is the CONNECT payload (undefined if the client sent none); `done`
   * gets the auth object the namespace was matched with (`{}` made for a dynamic match).
   */
  resolveNamespace(
    name: string,
    auth: Record<string, unknown> | undefined,
    done: (nsp: Namespace | undefined, auth: Record<string, unknown> | undefined) => void,
  ): void;
}

/**
 * Most connections hold one socket, in one namespace, for their whole life: that socket
 * sits in a field, and a Map exists only while there are more (an empty Map or Set
 * costs ~250 bytes of hash table per idle connection).
 */
export class Connection implements NamespaceClient, SessionSink {
  readonly conn: Session;
  private readonly host: ConnectionHost;
  private readonly decoder: PacketDecoder;
  /** The socket of the first namespace joined (most connections have only this one). */
  private socket: Socket | undefined = undefined;
  /** Sockets of further namespaces, by namespace name. */
  private others: Map<string, Socket> | undefined = undefined;
  /**
   * The namespace whose CONNECT is being resolved (middleware running), and further ones
   * if several are: a connection joining one namespace needs no Set for this.
   */
  private pendingOne: string | undefined = undefined;
  private pendingMore: Set<string> | undefined = undefined;
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(host: ConnectionHost, conn: Session) {
    this.host = host;
    this.conn = conn;
    this.decoder = host.createDecoder();
    // Called directly by the session, not through listeners: no listener table per session.
    conn.sink = this;
    this.connectTimer = setTimeout(connectTimedOut, host.connectTimeout, this);
  }

  get id(): string {
    return this.conn.id;
  }

  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }

  isOpen(): boolean {
    return this.conn.readyState === "open";
  }

  /** Encodes and writes one packet to this connection. */
  writePacket(packet: SocketPacket, volatile: boolean, compress: boolean): void {
    if (this.conn.readyState !== "open") return;
    writeParts(this.conn, this.host.encode(packet), volatile, compress);
  }

  writeText(text: string, volatile: boolean, compress: boolean): void {
    if (this.conn.readyState !== "open") return;
    writeParts(this.conn, [text], volatile, compress);
  }

  // ——— socket.io-adapter contract ———

  /**
   * socket.io-adapter contract (`socket.client.writeToEngine`): writes packets a socket.io
   * adapter encoded with `server.encoder` (see adapter/socketio-adapter.ts).
   */
  writeToEngine(encoded: readonly (string | Buffer)[], opts?: EngineWriteOptions): void {
    if (this.conn.readyState !== "open") return;
    writeEncoded(this.conn, encoded, opts);
  }

  refuse(nsp: string, message: string, data?: unknown): void {
    this.writePacket(
      {
        type: PacketType.CONNECT_ERROR,
        nsp,
        data: data === undefined ? { message } : { message, data },
      },
      false,
      true,
    );
  }

  remove(socket: { readonly nsp: { readonly name: string } }): void {
    if (this.socket === socket) {
      this.socket = undefined;
      return;
    }
    const others = this.others;
    if (others === undefined) return;
    const name = socket.nsp.name;
    if (others.get(name) === socket) others.delete(name);
    if (others.size === 0) this.others = undefined;
  }

  /** Disconnects every socket ("server namespace disconnect") and closes the session. */
  disconnect(): void {
    for (const socket of this.allSockets()) socket.disconnect();
    this.socket = undefined;
    this.others = undefined;
    this.conn.close();
  }

  /** The socket of namespace `name`, if this connection has one. */
  private socketOf(name: string): Socket | undefined {
    const first = this.socket;
    if (first !== undefined && first.nsp.name === name) return first;
    return this.others?.get(name);
  }

  /** A copy: sockets remove themselves while the caller iterates. */
  private allSockets(): Socket[] {
    const out: Socket[] = [];
    if (this.socket !== undefined) out.push(this.socket);
    if (this.others !== undefined) for (const s of this.others.values()) out.push(s);
    return out;
  }

  /** Called with every decoded message of the session. */
  onData(data: string | Buffer): void {
    let packet: SocketPacket | undefined;
    try {
      packet = this.decoder.add(data);
    } catch (err) {
      const reason =
        err instanceof ProtocolError ? `${err.code}: ${err.message}` : "malformed packet";
      this.parseError(err instanceof Error ? err : new Error(reason), reason);
      return;
    }
    if (packet !== undefined) this.onPacket(packet);
  }

  /**
   * Undecodable input: as socket.io does, every socket of the connection gets an `error`
   * event with the decoder's error first; then the session closes with `parse error`.
   */
  private parseError(err: Error, reason: string): void {
    this.host.counters.parseErrors++;
    for (const socket of this.allSockets()) socket.onError(err);
    // A clean close, as socket.io's: what was queued (the CONNECT reply) still goes out.
    this.conn.end("parse error", reason);
  }

  private onPacket(packet: SocketPacket): void {
    const socket = this.socketOf(packet.nsp);
    if (packet.type === PacketType.CONNECT) {
      // At most one socket per namespace: a repeated CONNECT is ignored.
      if (socket !== undefined || this.isPending(packet.nsp)) {
        this.host.counters.unexpectedPackets++;
        return;
      }
      this.connect(packet.nsp, packet.data as Record<string, unknown> | undefined);
      return;
    }
    if (socket === undefined) {
      // Events for a namespace we are not (yet) in: dropped and counted, the rest goes on.
      this.host.counters.unexpectedPackets++;
      return;
    }
    if (
      packet.type === PacketType.EVENT &&
      RESERVED_EVENTS.has((packet.data as unknown[])[0] as string)
    ) {
      // A client "emitting" disconnect/connect/… would fire the server's own lifecycle
      // listeners with forged arguments. socket.io-parser refuses these names as a
      // decode error; so do we, whatever parser decoded the packet.
      const reason = "reserved event name from the client";
      this.parseError(new ProtocolError(ProtocolErrorCode.BAD_PACKET, reason), reason);
      return;
    }
    socket.onPacket(packet);
  }

  /** @param auth the CONNECT payload, undefined if the client sent none */
  private connect(name: string, auth: Record<string, unknown> | undefined): void {
    this.markPending(name);
    // An existing namespace (the common case) is joined at once: no callback chain.
    const nsp = this.host.namespaceOf(name);
    if (nsp !== undefined) {
      if (this.isOpen()) nsp.add(this, auth);
      return;
    }
    this.host.resolveNamespace(name, auth, (found, matchedAuth) => {
      if (!this.isOpen()) {
        // Gone while a function matcher decided: a child created for it alone goes too.
        found?.checkEmpty();
        return;
      }
      if (found === undefined) {
        this.settle(name);
        this.host.counters.invalidNamespaces++;
        this.refuse(name, "Invalid namespace");
        return;
      }
      found.add(this, matchedAuth);
    });
  }

  /** Called by the namespace once a CONNECT is settled: `socket` joined, or undefined (refused). */
  added(name: string, socket: Socket | undefined): void {
    this.settle(name);
    if (socket === undefined) return;
    if (this.socket === undefined) this.socket = socket;
    else {
      if (this.others === undefined) this.others = new Map();
      this.others.set(name, socket);
    }
    if (this.connectTimer !== undefined) {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    }
  }

  private isPending(name: string): boolean {
    return this.pendingOne === name || this.pendingMore?.has(name) === true;
  }

  private markPending(name: string): void {
    if (this.pendingOne === undefined) this.pendingOne = name;
    else {
      if (this.pendingMore === undefined) this.pendingMore = new Set();
      this.pendingMore.add(name);
    }
  }

  private settle(name: string): void {
    if (this.pendingOne === name) {
      this.pendingOne = undefined;
      return;
    }
    const more = this.pendingMore;
    if (more === undefined) return;
    more.delete(name);
    if (more.size === 0) this.pendingMore = undefined;
  }

  /** Connect timeout: an engine session that joined no namespace is closed. */
  onConnectTimeout(): void {
    this.connectTimer = undefined;
    if (this.socket === undefined && this.others === undefined) this.conn.close();
  }

  // ——— SessionSink ———

  onSessionMessage(data: string | Buffer): void {
    this.onData(data);
  }

  onSessionClose(reason: string, description: string | undefined): void {
    this.onClose(reason, description);
  }

  /** The session closed: every socket disconnects with the session's reason. */
  onClose(reason: string, description?: unknown): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    for (const socket of this.allSockets()) socket.onClose(reason as DisconnectReason, description);
    this.socket = undefined;
    this.others = undefined;
    this.pendingOne = undefined;
    this.pendingMore = undefined;
    this.decoder.destroy();
    if (this.conn.sink === this) this.conn.sink = undefined;
  }
}

function connectTimedOut(connection: Connection): void {
  connection.onConnectTimeout();
}
