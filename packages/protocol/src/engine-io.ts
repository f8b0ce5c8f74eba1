/**
 * Engine.IO protocol v4 packets and HTTP long-polling payloads.
 *
 * A packet is `<type digit><data>` as text; a binary message travels as a raw binary
 * WebSocket frame (no type byte in v4), or as `b<base64>` where only text can go (the
 * polling body, or a WebSocket client with `forceBase64`). A polling payload is packets
 * in their text form joined by the ASCII record separator.
 */
import { ProtocolError, ProtocolErrorCode } from "./errors.js";

/** Revision of the Engine.IO protocol these codecs speak (the `EIO` query parameter). */
export const ENGINE_PROTOCOL = 4;

/**
 * Separates packets in a polling payload. JSON.stringify escapes it, so Socket.IO
 * packets never contain it raw.
 */
export const RECORD_SEPARATOR = "\x1e";

/** Engine.IO packet types, in wire-digit order. */
export type EnginePacketType = "open" | "close" | "ping" | "pong" | "message" | "upgrade" | "noop";

/**
 * One Engine.IO packet. `data` is a Buffer only for a binary `message`; a missing
 * `data` and an empty string are the same on the wire and decode as missing.
 */
export interface EnginePacket {
  type: EnginePacketType;
  data?: string | Buffer;
}

const TYPES: readonly EnginePacketType[] = [
  "open",
  "close",
  "ping",
  "pong",
  "message",
  "upgrade",
  "noop",
];

const DIGIT: Readonly<Record<EnginePacketType, string>> = Object.freeze({
  open: "0",
  close: "1",
  ping: "2",
  pong: "3",
  message: "4",
  upgrade: "5",
  noop: "6",
});

const CODE_0 = 48;
const CODE_B = 98;
/** Standard base64 alphabet (no URL-safe variant), optional padding only at the end. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function digitOf(packet: EnginePacket): string {
  // Own-property lookup: a type such as "toString" must not resolve through the prototype.
  const type = packet.type;
  if (typeof type !== "string" || !Object.hasOwn(DIGIT, type)) {
    throw new ProtocolError(
      ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
      `unknown Engine.IO packet type ${JSON.stringify(String(type))}`,
    );
  }
  return DIGIT[type];
}

function binaryData(packet: EnginePacket): Buffer | undefined {
  const data = packet.data;
  if (data === undefined || typeof data === "string") return undefined;
  if (!Buffer.isBuffer(data)) {
    throw new ProtocolError(
      ProtocolErrorCode.BAD_PACKET,
      "Engine.IO packet data must be a string or a Buffer",
    );
  }
  if (packet.type !== "message") {
    // v4 frames binary without a type byte, so only a message can be binary.
    throw new ProtocolError(
      ProtocolErrorCode.BAD_PACKET,
      `Engine.IO "${packet.type}" packet cannot carry binary data`,
    );
  }
  return data;
}

/**
 * Encodes a packet for a WebSocket frame: a text packet as `"<digit><data>"`, a binary
 * message as its Buffer itself (no copy, no prefix) to be sent as a binary frame.
 */
export function encodeEnginePacket(packet: EnginePacket): string | Buffer {
  const digit = digitOf(packet);
  const binary = binaryData(packet);
  if (binary !== undefined) return binary;
  const data = packet.data;
  return data === undefined ? digit : digit + data;
}

/**
 * Encodes a packet for a text-only channel (polling payloads): binary messages become
 * `"b" + base64`.
 */
export function encodeEnginePacketText(packet: EnginePacket): string {
  const digit = digitOf(packet);
  const binary = binaryData(packet);
  if (binary !== undefined) return "b" + binary.toString("base64");
  const data = packet.data;
  return data === undefined ? digit : digit + data;
}

function decodeBase64(text: string, code: ProtocolErrorCode): Buffer {
  const body = text.slice(1);
  // Buffer.from(…, "base64") silently skips garbage; validate first so a mangled body is
  // reported instead of turning into different bytes.
  const misaligned = body.endsWith("=") ? body.length % 4 !== 0 : body.length % 4 === 1;
  if (misaligned || !BASE64.test(body)) {
    throw new ProtocolError(code, "malformed base64 in binary packet");
  }
  return Buffer.from(body, "base64");
}

function decodeText(text: string, badBase64: ProtocolErrorCode): EnginePacket {
  if (text.length === 0) {
    throw new ProtocolError(ProtocolErrorCode.BAD_PACKET, "empty Engine.IO packet");
  }
  const code = text.charCodeAt(0);
  if (code === CODE_B) return { type: "message", data: decodeBase64(text, badBase64) };
  const type = TYPES[code - CODE_0];
  if (type === undefined) {
    throw new ProtocolError(
      ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
      `unknown Engine.IO packet type ${JSON.stringify(text.charAt(0))}`,
    );
  }
  return text.length === 1 ? { type } : { type, data: text.slice(1) };
}

/**
 * Decodes one WebSocket frame. A Buffer is a binary message (returned as is, not
 * copied); a string is a text packet, where `b<base64>` is also accepted because
 * clients configured with `forceBase64` send binary that way.
 */
export function decodeEnginePacket(data: string | Buffer): EnginePacket {
  if (typeof data === "string") return decodeText(data, ProtocolErrorCode.BAD_PACKET);
  if (Buffer.isBuffer(data)) return { type: "message", data };
  throw new ProtocolError(ProtocolErrorCode.BAD_PACKET, "frame must be a string or a Buffer");
}

/**
 * Encodes packets as one polling payload (text form, separated by
 * {@link RECORD_SEPARATOR}). Throws SY_ERR_BAD_PACKET when a text packet contains the
 * separator, since the peer would split it into garbage.
 */
export function encodePayload(packets: readonly EnginePacket[]): string {
  let out = "";
  for (let i = 0; i < packets.length; i++) {
    const encoded = encodeEnginePacketText(packets[i] as EnginePacket);
    if (encoded.includes(RECORD_SEPARATOR)) {
      throw new ProtocolError(
        ProtocolErrorCode.BAD_PACKET,
        "a packet in a polling payload cannot contain the record separator",
      );
    }
    out = i === 0 ? encoded : out + RECORD_SEPARATOR + encoded;
  }
  return out;
}

/**
 * Decodes a polling request body. Everything malformed throws: an empty body or empty
 * segment, bad base64 (SY_ERR_BAD_PAYLOAD), an unknown type (SY_ERR_UNKNOWN_PACKET_TYPE).
 * `maxPackets` caps the packet count before any packet is built, so a body made of
 * millions of one-byte packets costs one cheap scan (SY_ERR_PAYLOAD_TOO_LARGE).
 *
 * @param maxPackets Most packets accepted in one body. @default Infinity
 */
export function decodePayload(body: string, maxPackets = Number.POSITIVE_INFINITY): EnginePacket[] {
  if (typeof body !== "string") {
    throw new ProtocolError(ProtocolErrorCode.BAD_PAYLOAD, "polling payload must be a string");
  }
  if (maxPackets !== Number.POSITIVE_INFINITY) {
    let count = 1;
    let at = body.indexOf(RECORD_SEPARATOR);
    for (;;) {
      if (!(count <= maxPackets)) {
        throw new ProtocolError(
          ProtocolErrorCode.PAYLOAD_TOO_LARGE,
          `polling payload holds more than ${maxPackets} packets`,
        );
      }
      if (at === -1) break;
      count++;
      at = body.indexOf(RECORD_SEPARATOR, at + 1);
    }
  }
  const packets: EnginePacket[] = [];
  let start = 0;
  for (;;) {
    const end = body.indexOf(RECORD_SEPARATOR, start);
    const segment = end === -1 ? body.slice(start) : body.slice(start, end);
    if (segment.length === 0) {
      throw new ProtocolError(ProtocolErrorCode.BAD_PAYLOAD, "empty packet in polling payload");
    }
    packets.push(decodeText(segment, ProtocolErrorCode.BAD_PAYLOAD));
    if (end === -1) return packets;
    start = end + 1;
  }
}
