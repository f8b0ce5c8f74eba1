/**
 * `@switchyard/amqp`: a Switchyard cluster bus over RabbitMQ (AMQP 0-9-1).
 */
export type { AmqpBusOptions, AmqpBusStats } from "./amqp-bus.js";
export { AmqpBus } from "./amqp-bus.js";
export { routingKey } from "./routing-key.js";
