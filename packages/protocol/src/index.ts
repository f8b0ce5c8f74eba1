/**
 * `@switchyard/protocol`: pure, I/O-free codecs for Engine.IO v4 and Socket.IO v5.
 * Everything here is a function of its input; transports and sessions live in the
 * server package.
 */

export type {
  ClusterBroadcast,
  ClusterBroadcastFlags,
  ClusterBroadcastOptions,
  ClusterDecodeOptions,
  ClusterSocketInfo,
  ClusterTarget,
  ControlMessage,
  ControlMessageType,
  EmitterRequest,
} from "./cluster.js";
export {
  broadcastChannel,
  broadcastChannelFor,
  broadcastPrefix,
  CLUSTER_WIRE_VERSION,
  controlChannel,
  decodeClusterBroadcast,
  decodeControlMessage,
  decodeEmitterRequest,
  EMITTER_UID,
  emitterRequestChannel,
  encodeClusterBroadcast,
  encodeControlMessage,
  encodeEmitterRequest,
} from "./cluster.js";
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
export type {
  MsgpackChunk,
  MsgpackCodec,
  MsgpackCodecDecoder,
  MsgpackParser,
} from "./msgpack.js";
export { MsgpackDecoder, MsgpackEncoder, msgpackCodec, msgpackParser } from "./msgpack.js";
export type { DecoderOptions, SocketPacket } from "./packet.js";
export { PacketType, SOCKET_PROTOCOL } from "./packet.js";
export {
  encodeSocketPacket,
  encodeSocketPacketString,
  hasBinary,
  SocketDecoder,
} from "./socket-io.js";
export { validateSocketPacket } from "./validate.js";
