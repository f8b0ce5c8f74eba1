/**
 * The Socket.IO packet model and the rules every codec enforces on it, whatever the
 * wire format (text + attachments, msgpack, a foreign parser's output). Keeping them
 * in one place is what makes "accepted by one decoder" mean "accepted by all".
 */
import { ProtocolError, ProtocolErrorCode, SwitchyardError } from "./errors.js";

/** Revision of the Socket.IO protocol these codecs speak. */
export const SOCKET_PROTOCOL = 5;

/** Socket.IO packet types and their wire digits. */
export const PacketType = {
  CONNECT: 0,
  DISCONNECT: 1,
  EVENT: 2,
  ACK: 3,
  CONNECT_ERROR: 4,
  BINARY_EVENT: 5,
  BINARY_ACK: 6,
} as const;
/** One of the {@link PacketType} digits. */
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/**
 * One Socket.IO packet. The decoder returns binary packets as EVENT/ACK with Buffers
 * in place of the placeholders and no `attachments` (as socket.io-parser does), so the
 * layer above handles one shape; the encoder picks the binary type by itself.
 * `attachments` is informational only and ignored by the encoder.
 */
export interface SocketPacket {
  type: PacketType;
  nsp: string;
  data?: unknown;
  id?: number;
  attachments?: number;
}

/** Limits applied to untrusted input by every decoder. */
export interface DecoderOptions {
  /**
   * Most binary values one packet may carry (attachments in the text format, inline
   * binary in msgpack); in the text format each is buffered until the packet
   * completes, so this bounds memory held per connection.
   * @default 10
   */
  maxAttachments?: number;
  /**
   * Deepest nesting of arrays/objects accepted in the payload, checked before the
   * payload is parsed where the format allows, so nothing downstream (validation, user
   * code) meets hostile depth.
   * @default 32
   */
  maxDepth?: number;
}

/** {@link DecoderOptions} after defaults and validation. */
export interface DecodeLimits {
  readonly maxAttachments: number;
  readonly maxDepth: number;
}

/** Longest namespace accepted or produced, "/" included. */
export const MAX_NAMESPACE_LENGTH = 256;
/** 15 digits always fit in a safe integer (2^53 has 16). */
export const MAX_ACK_ID_DIGITS = 15;
/** Largest ack id: what 15 digits can carry, so every format accepts the same ids. */
export const MAX_ACK_ID = 999_999_999_999_999;

/** Shorthand so call sites read as one line; `cause` only when there is one. */
export function fail(code: ProtocolErrorCode, message: string, cause?: unknown): ProtocolError {
  return new ProtocolError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * An object literal or null-prototype dictionary. Prototype-checked rather than
 * "not an array", so Buffers, Dates, class instances and objects whose prototype a
 * decoder let the peer choose are not mistaken for a payload object.
 */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object") return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether `type` is one of the seven defined packet types. */
export function isTypeDigit(type: unknown): type is PacketType {
  return typeof type === "number" && Number.isInteger(type) && type >= 0 && type <= 6;
}

/** Throws SY_ERR_BAD_ACK_ID unless `id` is absent or an integer every format can carry. */
export function checkAckId(id: unknown): asserts id is number | undefined {
  if (id === undefined) return;
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > MAX_ACK_ID) {
    throw fail(ProtocolErrorCode.BAD_ACK_ID, `ack id must be an integer in 0..${MAX_ACK_ID}`);
  }
}

/**
 * Shape rules per type, shared by encoders and decoders so a packet we send is always
 * one we would accept. Binary types are checked as their non-binary twins.
 */
export function checkShape(type: PacketType, data: unknown, id: number | undefined): void {
  switch (type) {
    case PacketType.CONNECT:
      if (data !== undefined && !isPlainObject(data)) {
        throw fail(ProtocolErrorCode.BAD_PACKET, "CONNECT payload must be an object");
      }
      break;
    case PacketType.DISCONNECT:
      if (data !== undefined) {
        throw fail(ProtocolErrorCode.BAD_PACKET, "DISCONNECT takes no payload");
      }
      break;
    case PacketType.CONNECT_ERROR:
      if (typeof data !== "string" && !isPlainObject(data)) {
        throw fail(
          ProtocolErrorCode.BAD_PACKET,
          "CONNECT_ERROR payload must be a string or object",
        );
      }
      break;
    case PacketType.EVENT:
    case PacketType.BINARY_EVENT:
      // CVE-2023-32695: anything but a string name here reached user code as an "event".
      if (!Array.isArray(data) || data.length === 0 || typeof data[0] !== "string") {
        throw fail(ProtocolErrorCode.BAD_EVENT, "EVENT payload must be [name: string, ...args]");
      }
      return;
    case PacketType.ACK:
    case PacketType.BINARY_ACK:
      if (!Array.isArray(data)) {
        throw fail(ProtocolErrorCode.BAD_PACKET, "ACK payload must be an array");
      }
      if (id === undefined) throw fail(ProtocolErrorCode.BAD_ACK_ID, "ACK without an ack id");
      return;
  }
  if (id !== undefined) {
    throw fail(ProtocolErrorCode.BAD_PACKET, `packet type ${type} takes no ack id`);
  }
}

/**
 * Throws SY_ERR_BAD_NAMESPACE unless `nsp` could have come out of the text decoder:
 * leading "/", no "," (the text format's terminator), at most
 * {@link MAX_NAMESPACE_LENGTH} characters. Applied to every format so a namespace
 * valid on one wire is valid on all.
 */
export function checkNamespace(nsp: unknown): asserts nsp is string {
  if (nsp === "/") return;
  if (
    typeof nsp !== "string" ||
    nsp.charCodeAt(0) !== 47 /* / */ ||
    nsp.length > MAX_NAMESPACE_LENGTH ||
    nsp.includes(",")
  ) {
    throw fail(
      ProtocolErrorCode.BAD_NAMESPACE,
      `namespace must start with "/", contain no ",", and be at most ${MAX_NAMESPACE_LENGTH} characters`,
    );
  }
}

/** Every check an encoder makes before writing a packet; data contents are its own job. */
export function checkOutgoing(packet: SocketPacket): void {
  if (packet === null || typeof packet !== "object") {
    throw fail(ProtocolErrorCode.BAD_PACKET, "packet must be an object");
  }
  if (!isTypeDigit(packet.type)) {
    throw fail(
      ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
      `unknown Socket.IO packet type ${String(packet.type)}`,
    );
  }
  checkNamespace(packet.nsp);
  checkAckId(packet.id);
  checkShape(packet.type, packet.data, packet.id);
}

function readOption(value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new SwitchyardError(
      "SY_ERR_INVALID_OPTION",
      `option "${name}" must be an integer >= ${min}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * Applies defaults to {@link DecoderOptions} and validates them; throws SwitchyardError
 * SY_ERR_INVALID_OPTION naming the option. Every decoder goes through here, so the
 * defaults cannot drift apart.
 */
export function resolveLimits(opts: DecoderOptions | undefined): DecodeLimits {
  return {
    maxAttachments: readOption(opts?.maxAttachments, "maxAttachments", 10, 0),
    maxDepth: readOption(opts?.maxDepth, "maxDepth", 32, 1),
  };
}
