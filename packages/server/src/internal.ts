/**
 * What sibling packages (@switchyard/redis, @switchyard/amqp, @switchyard/cli) may use
 * beyond the public API. Never deep-import from src/.
 */
export { BusBase, reconnectDelay } from "./adapter/bus-base.js";
export { EncodedPacket } from "./broadcast/encoded-packet.js";
export { OutboundPacket } from "./engine/outbound-packet.js";
export type { Attachable } from "./http/attach.js";
export { attachEngine } from "./http/attach.js";
export { bool, nonNegativeInt, positiveInt, resolveEngineOptions } from "./options.js";
