/**
 * The cluster adapter's plain parts: its counters and events, the conversions between
 * the adapter's options and the wire's, and the checks on what the bus delivers.
 */
import {
  type ClusterBroadcastOptions,
  type ClusterSocketInfo,
  type ClusterTarget,
  encodeControlMessage,
  PacketType,
  ProtocolError,
  ProtocolErrorCode,
  type SocketPacket,
} from "@switchyard/protocol";
import { InvalidOptionError, RefusedError } from "../errors.js";
import { RESERVED_EVENTS } from "../typed-events.js";
import type { AdapterSocket, BroadcastFlags, BroadcastOptions, Room } from "./adapter.js";
import type { Bus } from "./bus.js";

/** Counters of one cluster adapter (one namespace on one node), read by metrics. */
export interface ClusterStats {
  /** Bus messages handed to this adapter (our own echoes included). */
  received: number;
  /** Messages this adapter published. */
  published: number;
  /** Messages dropped: malformed + unsupported + refused. */
  dropped: number;
  /** Bytes that do not decode or fail validation. */
  malformed: number;
  /** Well-formed messages we do not speak: unknown `v` or type, another namespace's, a foreign adapter's. */
  unsupported: number;
  /** Valid messages refused, e.g. a serverSideEmit of a reserved event name. */
  refused: number;
  /** Exceptions thrown by application listeners run for bus messages (serverSideEmit). */
  handlerErrors: number;
}

/** Events of a {@link ClusterAdapter} (besides MemoryAdapter's room events and `close`). */
export interface ClusterAdapterEvents {
  /** A node of this namespace appeared. */
  "node-joined": [uid: string];
  /** A node left: `"bye"` (clean) or `"timeout"` (silent for heartbeatTimeout). */
  "node-left": [uid: string, reason: "bye" | "timeout"];
  /** The bus lost its broker (once per outage); local delivery goes on. */
  "bus-down": [err: Error | undefined];
  /** The bus is back. */
  "bus-up": [];
  /** A bus message was dropped (counted in `stats` too), or a listener it ran threw. */
  drop: [err: Error, channel: string];
}

/** Event names a serverSideEmit from the bus may not fire on a namespace. */
export const RESERVED_SERVER_EVENTS: ReadonlySet<unknown> = new Set([
  "connect",
  "connection",
  "new_namespace",
  "disconnect",
  "disconnecting",
  "error",
  "newListener",
  "removeListener",
]);

export const NO_ROOMS: ReadonlySet<Room> = new Set();

export function randomId(bytes: number): string {
  return crypto.getRandomValues(Buffer.alloc(bytes)).toString("base64url");
}

export function toTarget(opts: BroadcastOptions): ClusterTarget {
  return { rooms: [...opts.rooms], except: opts.except === undefined ? [] : [...opts.except] };
}

export function fromTarget(t: ClusterTarget, flags?: BroadcastFlags): BroadcastOptions {
  return flags === undefined
    ? { rooms: new Set(t.rooms), except: new Set(t.except) }
    : { rooms: new Set(t.rooms), except: new Set(t.except), flags };
}

/** Flags worth carrying to other nodes (`local` never leaves its node). */
export function wireFlags(flags: BroadcastFlags | undefined): ClusterBroadcastOptions["flags"] {
  const out: ClusterBroadcastOptions["flags"] = {};
  if (flags === undefined) return out;
  if (flags.volatile !== undefined) out.volatile = flags.volatile;
  if (flags.compress !== undefined) out.compress = flags.compress;
  if (flags.timeout !== undefined) out.timeout = flags.timeout;
  return out;
}

/** The packet other nodes deliver: never our node-local ack id. */
export function eventPacket(packet: SocketPacket): SocketPacket {
  return { type: PacketType.EVENT, nsp: packet.nsp, data: packet.data };
}

export function describeSocket(socket: AdapterSocket): ClusterSocketInfo {
  return {
    id: socket.id,
    handshake: socket.handshake as Record<string, unknown>,
    rooms: [...socket.rooms],
    data: socket.data,
  };
}

export function noop(): void {}

/** Fresh counters. */
export function newStats(): ClusterStats {
  return {
    received: 0,
    published: 0,
    dropped: 0,
    malformed: 0,
    unsupported: 0,
    refused: 0,
    handlerErrors: 0,
  };
}

/**
 * Refuses a broadcast from the bus whose event name is reserved (`connect`,
 * `disconnect`, …): the local API never sends one, and socket.io-client treats such a
 * packet as a parse error and drops its connection, so one foreign message would
 * disconnect every client it targets.
 */
export function refuseReservedBroadcast(packet: SocketPacket): void {
  const ev = Array.isArray(packet.data) ? (packet.data as unknown[])[0] : undefined;
  if (typeof ev === "string" && RESERVED_EVENTS.has(ev)) throw new RefusedError(ev, "broadcast");
}

export function otherNamespace(nsp: string): ProtocolError {
  return new ProtocolError(
    ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
    `broadcast for namespace ${JSON.stringify(nsp.slice(0, 64))} on this namespace's channel`,
  );
}

export function assertBus(bus: unknown): asserts bus is Bus {
  const b = bus as Partial<Bus> | null;
  if (
    typeof b !== "object" ||
    b === null ||
    typeof b.publish !== "function" ||
    typeof b.subscribe !== "function" ||
    typeof b.unsubscribe !== "function" ||
    typeof b.on !== "function" ||
    typeof b.off !== "function"
  ) {
    throw new InvalidOptionError("bus", "a Bus (publish, subscribe, unsubscribe, on, off)", bus);
  }
}

/** A `fetch-res`; a socket whose data (or handshake) cannot be encoded goes without it. */
export function encodeFetchResponse(uid: string, rid: string, sockets: AdapterSocket[]): Buffer {
  const infos = sockets.map(describeSocket);
  try {
    return encodeControlMessage({ type: "fetch-res", uid, rid, sockets: infos });
  } catch {
    // Some socket's data (or handshake) cannot travel: send the others in full and
    // that one without data rather than failing the whole request.
    const safe = infos.map((info) => {
      try {
        encodeControlMessage({ type: "fetch-res", uid, rid, sockets: [info] });
        return info;
      } catch {
        return { id: info.id, handshake: {}, rooms: info.rooms, data: null };
      }
    });
    return encodeControlMessage({ type: "fetch-res", uid, rid, sockets: safe });
  }
}
