/**
 * Socket.IO protocol v5 packets (the default socket.io-parser wire format):
 *
 *   <type>[<attachments>-][<nsp>,][<ack id>][<JSON payload>]
 *
 * followed, for BINARY_EVENT/BINARY_ACK, by one binary Engine.IO message per
 * attachment. The decoder is strict: real socket.io v4 clients never send anything it
 * rejects, and everything it accepts is safe to hand to user code.
 */
import {
  collectSlots,
  deconstruct,
  exceedsDepth,
  fillSlots,
  hasBinary,
  type Slot,
} from "./binary.js";
import { ProtocolError, ProtocolErrorCode } from "./errors.js";
import {
  checkOutgoing,
  checkShape,
  type DecoderOptions,
  fail,
  isTypeDigit,
  MAX_ACK_ID_DIGITS,
  MAX_NAMESPACE_LENGTH,
  PacketType,
  resolveLimits,
  type SocketPacket,
} from "./packet.js";

export { hasBinary };

/** Attachment counts longer than this are over any sane `maxAttachments`. */
const MAX_ATTACHMENT_DIGITS = 6;

function stringify(data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (cause) {
    // Stack overflow surfaces as RangeError; cycles, BigInt and throwing toJSON as others.
    if (cause instanceof RangeError) {
      throw fail(ProtocolErrorCode.NESTING_TOO_DEEP, "payload nests too deeply to encode", cause);
    }
    if (cause instanceof ProtocolError) throw cause;
    throw fail(ProtocolErrorCode.BAD_PACKET, "payload cannot be encoded as JSON", cause);
  }
  // A top-level toJSON() may return undefined, which has no JSON text at all.
  if (typeof json !== "string") {
    throw fail(ProtocolErrorCode.BAD_PACKET, "payload has no JSON representation");
  }
  return json;
}

function header(
  type: PacketType,
  attachments: number,
  nsp: string,
  id: number | undefined,
): string {
  let out = attachments > 0 ? `${type}${attachments}-` : String(type);
  if (nsp !== "/") out += nsp + ",";
  if (id !== undefined) out += id;
  return out;
}

/**
 * Encodes a packet as its text part followed by its binary attachments, each to be
 * sent as its own Engine.IO binary message. EVENT/ACK data holding binary becomes
 * BINARY_EVENT/BINARY_ACK with placeholders (views are wrapped, not copied).
 * Never throws anything but ProtocolError: bad shape/namespace/id, data too deep or
 * circular (SY_ERR_NESTING_TOO_DEEP), unserializable values such as BigInt (SY_ERR_BAD_PACKET).
 */
export function encodeSocketPacket(packet: SocketPacket): [string, ...Buffer[]] {
  checkOutgoing(packet);
  let type = packet.type;
  if (type === PacketType.BINARY_EVENT) type = PacketType.EVENT;
  else if (type === PacketType.BINARY_ACK) type = PacketType.ACK;
  if ((type === PacketType.EVENT || type === PacketType.ACK) && hasBinary(packet.data)) {
    const { data, buffers } = deconstruct(packet.data);
    const binaryType = type === PacketType.EVENT ? PacketType.BINARY_EVENT : PacketType.BINARY_ACK;
    return [
      header(binaryType, buffers.length, packet.nsp, packet.id) + stringify(data),
      ...buffers,
    ];
  }
  const json = packet.data === undefined ? "" : stringify(packet.data);
  return [header(type, 0, packet.nsp, packet.id) + json];
}

/**
 * Hot-path encoder for packets the caller knows carry no binary (most broadcasts):
 * skips the binary walk and returns just the text. Binary packet types are rejected;
 * binary values slipped into the data would go out as their JSON form, so use
 * {@link encodeSocketPacket} when unsure.
 */
export function encodeSocketPacketString(packet: SocketPacket): string {
  checkOutgoing(packet);
  const type = packet.type;
  if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) {
    throw fail(ProtocolErrorCode.BAD_PACKET, "binary packet types need encodeSocketPacket()");
  }
  const json = packet.data === undefined ? "" : stringify(packet.data);
  return header(type, 0, packet.nsp, packet.id) + json;
}

interface Pending {
  packet: SocketPacket;
  slots: Slot[];
  buffers: Buffer[];
  expected: number;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/**
 * Decodes the Socket.IO packets of one connection, in arrival order. Stateful only
 * for binary packets: their text header is held until all attachments arrived.
 * After any throw the decoder is reset, but the peer should be disconnected anyway.
 */
export class SocketDecoder {
  readonly #maxAttachments: number;
  readonly #maxDepth: number;
  #pending: Pending | undefined;

  constructor(opts?: DecoderOptions) {
    const limits = resolveLimits(opts);
    this.#maxAttachments = limits.maxAttachments;
    this.#maxDepth = limits.maxDepth;
  }

  /** Whether a binary packet's header arrived and attachments are still expected. */
  get awaitingAttachments(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Feeds one Engine.IO message: a string (a packet header) or a Buffer (an
   * attachment). Returns the completed packet, or undefined while attachments are
   * still expected. Throws ProtocolError on anything malformed or out of order.
   */
  add(chunk: string | Buffer): SocketPacket | undefined {
    try {
      if (typeof chunk === "string") return this.#addText(chunk);
      if (Buffer.isBuffer(chunk)) return this.#addBinary(chunk);
      throw fail(ProtocolErrorCode.BAD_PACKET, "chunk must be a string or a Buffer");
    } catch (err) {
      this.#pending = undefined;
      throw err;
    }
  }

  /** Drops a half-received binary packet (e.g. when the connection closes). */
  reset(): void {
    this.#pending = undefined;
  }

  #addBinary(chunk: Buffer): SocketPacket | undefined {
    const pending = this.#pending;
    if (pending === undefined) {
      throw fail(ProtocolErrorCode.BAD_PACKET, "binary frame without a pending binary packet");
    }
    pending.buffers.push(chunk);
    if (pending.buffers.length < pending.expected) return undefined;
    this.#pending = undefined;
    fillSlots(pending.slots, pending.buffers);
    return pending.packet;
  }

  #addText(str: string): SocketPacket | undefined {
    if (this.#pending !== undefined) {
      throw fail(ProtocolErrorCode.BAD_PACKET, "text frame while attachments are pending");
    }
    const len = str.length;
    if (len === 0) throw fail(ProtocolErrorCode.BAD_PACKET, "empty Socket.IO packet");
    const type = str.charCodeAt(0) - 48;
    if (!isTypeDigit(type)) {
      throw fail(
        ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
        `unknown Socket.IO packet type ${JSON.stringify(str.charAt(0))}`,
      );
    }
    let i = 1;

    let attachments = 0;
    if (type === PacketType.BINARY_EVENT || type === PacketType.BINARY_ACK) {
      const start = i;
      while (i < len && isDigit(str.charCodeAt(i)) && i - start <= MAX_ATTACHMENT_DIGITS) i++;
      if (i - start > MAX_ATTACHMENT_DIGITS) {
        throw fail(ProtocolErrorCode.TOO_MANY_ATTACHMENTS, "attachment count too large");
      }
      if (i === start || str.charCodeAt(i) !== 45 /* - */) {
        throw fail(ProtocolErrorCode.BAD_PACKET, "binary packet without a valid attachment count");
      }
      attachments = Number(str.slice(start, i));
      i++;
      // GHSA-2m8v-j782-fhvr: a zero count would leave the packet pending forever.
      if (attachments < 1)
        throw fail(ProtocolErrorCode.BAD_PACKET, "binary packet with 0 attachments");
      if (attachments > this.#maxAttachments) {
        throw fail(
          ProtocolErrorCode.TOO_MANY_ATTACHMENTS,
          `${attachments} attachments announced, at most ${this.#maxAttachments} allowed`,
        );
      }
    }

    let nsp = "/";
    if (str.charCodeAt(i) === 47 /* / */) {
      const start = i;
      const limit = Math.min(len, start + MAX_NAMESPACE_LENGTH + 1);
      while (i < limit && str.charCodeAt(i) !== 44 /* , */) i++;
      if (i - start > MAX_NAMESPACE_LENGTH) {
        throw fail(
          ProtocolErrorCode.BAD_NAMESPACE,
          `namespace longer than ${MAX_NAMESPACE_LENGTH}`,
        );
      }
      nsp = str.slice(start, i);
      if (i < len) i++; // the comma; socket.io-parser also accepts a namespace ending the packet
    }

    let id: number | undefined;
    const idStart = i;
    while (i < len && isDigit(str.charCodeAt(i))) {
      if (++i - idStart > MAX_ACK_ID_DIGITS) {
        throw fail(ProtocolErrorCode.BAD_ACK_ID, `ack id longer than ${MAX_ACK_ID_DIGITS} digits`);
      }
    }
    if (i > idStart) id = Number(str.slice(idStart, i));

    let data: unknown;
    if (i < len) {
      const json = str.slice(i);
      if (exceedsDepth(json, this.#maxDepth)) {
        throw fail(
          ProtocolErrorCode.NESTING_TOO_DEEP,
          `payload nests deeper than ${this.#maxDepth}`,
        );
      }
      try {
        data = JSON.parse(json);
      } catch (cause) {
        throw fail(ProtocolErrorCode.BAD_JSON, "payload is not valid JSON", cause);
      }
    }
    checkShape(type, data, id);

    const packet: SocketPacket = { type, nsp };
    if (data !== undefined) packet.data = data;
    if (id !== undefined) packet.id = id;
    if (attachments === 0) return packet;
    const slots = collectSlots(data, attachments);
    packet.type = type === PacketType.BINARY_EVENT ? PacketType.EVENT : PacketType.ACK;
    this.#pending = { packet, slots, buffers: [], expected: attachments };
    return undefined;
  }
}
