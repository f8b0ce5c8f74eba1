/**
 * One engine session as the Socket.IO layer sees it: decodes its messages, demultiplexes
 * packets to its namespace sockets (at most one per namespace), handles CONNECT, and
 * closes sessions that never join a namespace within `connectTimeout`.
 */
import { PacketType, ProtocolError, type SocketPacket } from "@switchyard/protocol";
import { EncodedPacket } from "../broadcast/encoded-packet.js";
import type { Session } from "../engine/session.js";
import { type DisconnectReason, RESERVED_EVENTS } from "../typed-events.js";
import type { Namespace, NamespaceClient } from "./namespace.js";
import type { PacketDecoder } from "./parser.js";
import type { Socket } from "./socket.js";

/** What a connection needs from the server. */
export interface ConnectionHost {
  readonly connectTimeout: number;
  readonly counters: { parseErrors: number; invalidNamespaces: number; unexpectedPackets: number };
  createDecoder(): PacketDecoder;
  encode(packet: SocketPacket): (string | Buffer)[];
  /** Finds or creates (dynamic) the namespace `name`; calls back with undefined if none matches. */
  resolveNamespace(
    name: string,
    auth: Record<string, unknown>,
    done: (nsp: Namespace | undefined) => void,
  ): void;
  onConnectionClosed(connection: Connection): void;
}

const kConnection = Symbol("switchyard.connection");
type TaggedSession = Session & { [kConnection]?: Connection };

export class Connection implements NamespaceClient {
  readonly conn: Session;
  private readonly host: ConnectionHost;
  private readonly decoder: PacketDecoder;
  private readonly sockets = new Map<string, Socket>();
  private readonly pending = new Set<string>();
  private connectTimer: NodeJS.Timeout | undefined;

  constructor(host: ConnectionHost, conn: Session) {
    this.host = host;
    this.conn = conn;
    this.decoder = host.createDecoder();
    (conn as TaggedSession)[kConnection] = this;
    conn.on("message", onMessage);
    conn.once("close", onClose);
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
    // Same path as a broadcast's: a volatile packet is dropped whole, never split.
    new EncodedPacket(this.host.encode(packet)).writeTo(this.conn, volatile, compress);
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
    const name = socket.nsp.name;
    if (this.sockets.get(name) === socket) this.sockets.delete(name);
  }

  /** Disconnects every socket ("server namespace disconnect") and closes the session. */
  disconnect(): void {
    for (const socket of [...this.sockets.values()]) socket.disconnect();
    this.sockets.clear();
    this.conn.close();
  }

  /** Called with every decoded message of the session. */
  onData(data: string | Buffer): void {
    let packet: SocketPacket | undefined;
    try {
      packet = this.decoder.add(data);
    } catch (err) {
      this.host.counters.parseErrors++;
      const reason =
        err instanceof ProtocolError ? `${err.code}: ${err.message}` : "malformed packet";
      this.conn.terminate("parse error", reason);
      return;
    }
    if (packet !== undefined) this.onPacket(packet);
  }

  private onPacket(packet: SocketPacket): void {
    const socket = this.sockets.get(packet.nsp);
    if (packet.type === PacketType.CONNECT) {
      // At most one socket per namespace: a repeated CONNECT is ignored.
      if (socket !== undefined || this.pending.has(packet.nsp)) {
        this.host.counters.unexpectedPackets++;
        return;
      }
      this.connect(packet.nsp, (packet.data as Record<string, unknown> | undefined) ?? {});
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
      this.host.counters.parseErrors++;
      this.conn.terminate("parse error", "reserved event name from the client");
      return;
    }
    socket.onPacket(packet);
  }

  private connect(name: string, auth: Record<string, unknown>): void {
    this.pending.add(name);
    this.host.resolveNamespace(name, auth, (nsp) => {
      if (!this.isOpen()) return;
      if (nsp === undefined) {
        this.pending.delete(name);
        this.host.counters.invalidNamespaces++;
        this.refuse(name, "Invalid namespace");
        return;
      }
      nsp.add(this, auth, (socket) => {
        this.pending.delete(name);
        if (socket === undefined) return;
        this.sockets.set(name, socket as unknown as Socket);
        if (this.connectTimer !== undefined) {
          clearTimeout(this.connectTimer);
          this.connectTimer = undefined;
        }
      });
    });
  }

  /** Connect timeout: an engine session that joined no namespace is closed. */
  onConnectTimeout(): void {
    this.connectTimer = undefined;
    if (this.sockets.size === 0) this.conn.close();
  }

  /** The session closed: every socket disconnects with the session's reason. */
  onClose(reason: string, description?: unknown): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    for (const socket of [...this.sockets.values()])
      socket.onClose(reason as DisconnectReason, description);
    this.sockets.clear();
    this.pending.clear();
    this.decoder.destroy();
    this.conn.removeListener("message", onMessage);
    this.host.onConnectionClosed(this);
  }
}

function onMessage(this: TaggedSession, data: string | Buffer): void {
  this[kConnection]?.onData(data);
}

function onClose(this: TaggedSession, reason: string, description?: unknown): void {
  this[kConnection]?.onClose(reason, description);
}

function connectTimedOut(connection: Connection): void {
  connection.onConnectTimeout();
}
