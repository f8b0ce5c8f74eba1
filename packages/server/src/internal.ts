/**
 * What sibling packages (@switchyard/redis, @switchyard/amqp, @switchyard/cli) may use
 * beyond the public API. Never deep-import from src/.
 */
export type { OfflineQueueOptions, ResolvedOfflineQueue } from "./adapter/bus-base.js";
export { BusBase, reconnectDelay, resolveOfflineQueue } from "./adapter/bus-base.js";
export { EncodedPacket } from "./broadcast/encoded-packet.js";
export { OutboundPacket } from "./engine/outbound-packet.js";
export type { Attachable } from "./http/attach.js";
export { attachEngine } from "./http/attach.js";
export type { OptionKeys, Unsupported } from "./options.js";
export {
  bool,
  checkOptionKeys,
  nearest,
  nonNegativeInt,
  positiveInt,
  resolveEngineOptions,
} from "./options.js";
export { existingNamespace } from "./server.js";
