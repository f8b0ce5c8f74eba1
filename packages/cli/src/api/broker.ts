/**
 * The API over the broker: backends that already talk to Redis or RabbitMQ publish JSON
 * operations on one bus channel (default `switchyard#api#v1`) instead of calling HTTP.
 * Every node receives each message and applies it to its own sockets, so together the
 * cluster applies it once per socket. There is no answer (publish-and-forget, as the bus
 * is at-most-once); read operations are HTTP only.
 *
 * Message: UTF-8 JSON `{ "op": "publish" | "batch" | "join" | "leave" | "disconnect", ...body }`
 * where body is the HTTP body of that operation. An invalid message is counted and logged
 * once per interval, never applied in part.
 */
import type { Bus } from "@switchyard/server";
import type { Logger } from "pino";
import type { ZodError } from "zod";
import type { IdempotencyWindow } from "./idempotency.js";
import type { ApiOperations } from "./operations.js";
import { BROKER_OPS } from "./schemas.js";

/** Counters of the broker channel (read by metrics). */
export interface ApiBrokerStats {
  /** Operations applied. */
  applied: number;
  /** Messages refused (not JSON, unknown op, invalid body, unknown namespace, too large). */
  invalid: number;
}

/** The channel other nodes tell each other about idempotency keys seen over HTTP. */
export function idempotencyChannel(channel: string): string {
  return `${channel}#idempotency`;
}

function describe(err: ZodError): string {
  const i = err.issues[0];
  if (i === undefined) return "invalid";
  const path = i.path.map(String).join(".");
  return i.code === "unrecognized_keys"
    ? `unknown field ${i.keys.join(", ")}`
    : `${path || "body"}: ${i.message}`;
}

export interface BrokerApiDeps {
  readonly bus: Bus;
  readonly channel: string;
  readonly ops: ApiOperations;
  readonly idem: IdempotencyWindow;
  readonly maxBytes: number;
  readonly batchLimit: number;
  readonly log: Logger;
  readonly limiter: (key: string) => boolean;
  readonly stats: ApiBrokerStats;
}

/** Subscribes to the operations channel and the idempotency channel; resolves once both are. */
export async function startBrokerApi(deps: BrokerApiDeps): Promise<() => Promise<void>> {
  const refuse = (reason: string): void => {
    deps.stats.invalid++;
    if (deps.limiter("api:broker-invalid")) {
      deps.log.warn(
        { channel: deps.channel, reason },
        "api: broker message refused (logged once per interval)",
      );
    }
  };
  const onMessage = (_channel: string, payload: Buffer): void => {
    if (payload.length > deps.maxBytes) {
      refuse(`larger than ${deps.maxBytes} bytes (api.bodyLimit)`);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString("utf8"));
    } catch {
      refuse("not JSON");
      return;
    }
    if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
      refuse("not a JSON object");
      return;
    }
    const { op, ...body } = msg as Record<string, unknown>;
    if (typeof op !== "string" || !Object.hasOwn(BROKER_OPS, op)) {
      refuse(`op must be one of ${Object.keys(BROKER_OPS).join(", ")}`);
      return;
    }
    try {
      const reason = apply(deps, op, body);
      if (reason !== undefined) refuse(reason);
      else deps.stats.applied++;
    } catch (err) {
      // Unknown namespace on this node: other nodes may have it; nothing to do here.
      refuse(err instanceof Error ? err.message : String(err));
    }
  };
  const idemChannel = idempotencyChannel(deps.channel);
  const onIdem = (_channel: string, payload: Buffer): void => {
    if (payload.length > 2048) return;
    deps.idem.record(payload.toString("utf8"));
  };
  await deps.bus.subscribe(deps.channel, onMessage);
  await deps.bus.subscribe(idemChannel, onIdem);
  return async () => {
    await deps.bus.unsubscribe(deps.channel);
    await deps.bus.unsubscribe(idemChannel);
  };
}

/** Applies one operation to this node's sockets; returns why it was refused, if it was. */
function apply(deps: BrokerApiDeps, op: string, body: unknown): string | undefined {
  switch (op) {
    case "publish": {
      const r = BROKER_OPS.publish.safeParse(body);
      if (!r.success) return describe(r.error);
      deps.ops.publish(r.data, "broker", true);
      return undefined;
    }
    case "batch": {
      const r = BROKER_OPS.batch.safeParse(body);
      if (!r.success) return describe(r.error);
      if (r.data.messages.length > deps.batchLimit) return `more than ${deps.batchLimit} messages`;
      for (const m of r.data.messages) deps.ops.namespace(m.namespace);
      for (const m of r.data.messages) deps.ops.publish(m, "broker", true);
      return undefined;
    }
    case "join": {
      const r = BROKER_OPS.join.safeParse(body);
      if (!r.success) return describe(r.error);
      deps.ops.join(r.data, true);
      return undefined;
    }
    case "leave": {
      const r = BROKER_OPS.leave.safeParse(body);
      if (!r.success) return describe(r.error);
      deps.ops.leave(r.data, true);
      return undefined;
    }
    default: {
      const r = BROKER_OPS.disconnect.safeParse(body);
      if (!r.success) return describe(r.error);
      deps.ops.disconnect(r.data, true);
      return undefined;
    }
  }
}
