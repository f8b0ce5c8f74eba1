/**
 * `@switchyard/protocol`: pure, I/O-free codecs for Engine.IO v4 and Socket.IO v5.
 * Everything here is a function of its input; transports and sessions live in the
 * server package.
 */

export type { EnginePacket, EnginePacketType } from "./engine-io.js";
export {
  decodeEnginePacket,
  decodePayload,
  ENGINE_PROTOCOL,
  encodeEnginePacket,
  encodeEnginePacketText,
  encodePayload,
  RECORD_SEPARATOR,
} from "./engine-io.js";
export { ProtocolError, ProtocolErrorCode, SwitchyardError } from "./errors.js";
export type { DecoderOptions, SocketPacket } from "./socket-io.js";
export {
  encodeSocketPacket,
  encodeSocketPacketString,
  hasBinary,
  PacketType,
  SOCKET_PROTOCOL,
  SocketDecoder,
} from "./socket-io.js";
