/**
 * The API's request and response bodies as zod schemas: the single source for request
 * validation (HTTP and broker) and for the OpenAPI document (`openapi.ts`).
 */
import { z } from "zod";

/** Event names a client reserves; publishing them is refused (as socket.io's emit() throws). */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

/** Deepest nesting of published data (the server's encoder refuses 1000 levels). */
export const MAX_DEPTH = 500;

/** Whether `value` nests at most `max` arrays/objects deep (iterative: no recursion on input). */
export function nestsWithin(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [v, depth] = item;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= max) return false;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return true;
}

const namespace = z
  .string()
  .min(1)
  .max(256)
  .regex(/^\//, 'starts with "/"')
  .default("/")
  .describe("Namespace name.");
const name = z.string().min(1).max(256);
const rooms = z.array(name).max(1000);

const event = z
  .string()
  .min(1)
  .max(256)
  .refine((e) => !RESERVED_EVENTS.has(e), { message: "a reserved event name" })
  .describe("Event name the clients receive.");

/** Body of POST /api/v1/publish (and one item of a batch). */
export const publishRequest = z
  .strictObject({
    namespace,
    event,
    data: z.unknown().optional().describe("The one argument the clients' handler receives."),
    args: z.array(z.unknown()).max(64).optional().describe("Several arguments instead of data."),
    rooms: rooms.optional().describe("Deliver to sockets in any of these rooms."),
    sockets: rooms.optional().describe("Deliver to these socket ids."),
    except: rooms.optional().describe("Skip sockets in any of these rooms (or with these ids)."),
    volatile: z
      .boolean()
      .default(false)
      .describe("May be dropped for clients not ready to receive."),
    idempotencyKey: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        "A retried publish with the same key (and API key) is not delivered twice within the window.",
      ),
  })
  .refine((p) => p.data === undefined || p.args === undefined, {
    message: "data and args together (give one)",
    path: ["args"],
  })
  .refine((p) => nestsWithin(p.args ?? p.data, MAX_DEPTH), {
    message: `nests deeper than ${MAX_DEPTH} levels`,
    path: ["data"],
  });
/** A validated publish. */
export type PublishRequest = z.output<typeof publishRequest>;

/** Body of POST /api/v1/publish/batch. */
export const batchRequest = z.strictObject({
  messages: z.array(publishRequest).min(1).describe("Publishes, delivered in this order."),
});

const selector = {
  namespace,
  sockets: rooms.optional().describe("These socket ids."),
  rooms: rooms.optional().describe("Sockets in any of these rooms."),
  except: rooms.optional().describe("Minus sockets in any of these rooms."),
};
function hasTarget(s: { sockets?: string[] | undefined; rooms?: string[] | undefined }): boolean {
  return (s.sockets?.length ?? 0) + (s.rooms?.length ?? 0) > 0;
}
const targetMessage = { message: "no target: give sockets and/or rooms", path: ["sockets"] };

/** Body of POST /api/v1/join. */
export const joinRequest = z
  .strictObject({ ...selector, join: rooms.min(1).describe("Rooms to join.") })
  .refine(hasTarget, targetMessage);
/** Body of POST /api/v1/leave. */
export const leaveRequest = z
  .strictObject({ ...selector, leave: rooms.min(1).describe("Rooms to leave.") })
  .refine(hasTarget, targetMessage);
/** Body of POST /api/v1/disconnect. */
export const disconnectRequest = z
  .strictObject({
    ...selector,
    close: z.boolean().default(false).describe("Also close the underlying connection."),
  })
  .refine(hasTarget, targetMessage);

export type JoinRequest = z.output<typeof joinRequest>;
export type LeaveRequest = z.output<typeof leaveRequest>;
export type DisconnectRequest = z.output<typeof disconnectRequest>;

/** The operations the broker channel accepts, each with the HTTP body schema it uses. */
export const BROKER_OPS = {
  publish: publishRequest,
  batch: batchRequest,
  join: joinRequest,
  leave: leaveRequest,
  disconnect: disconnectRequest,
} as const;

// ——— responses ———

/** Every 4xx/5xx answer. */
export const errorResponse = z.strictObject({
  error: z.strictObject({
    code: z.string().describe("Stable code, e.g. SY_API_INVALID_BODY."),
    message: z.string().describe("What is wrong, naming the field or header."),
    path: z.string().optional().describe("The offending field (dot path), for body errors."),
  }),
});

export const publishResponse = z.strictObject({
  ok: z.literal(true),
  duplicate: z.boolean().describe("True when the idempotency key was seen: nothing was sent."),
});

export const batchResponse = z.strictObject({
  results: z.array(publishResponse),
});

export const okResponse = z.strictObject({ ok: z.literal(true) });

export const roomsResponse = z.strictObject({
  namespace: z.string(),
  rooms: z.array(z.strictObject({ name: z.string(), size: z.number().int().min(0) })),
});

export const socketsResponse = z.strictObject({
  namespace: z.string(),
  room: z.string().nullable(),
  sockets: z.array(
    z.strictObject({
      id: z.string(),
      rooms: z.array(z.string()).describe("Rooms besides the socket's own id."),
      data: z.unknown().describe("socket.data as JSON (values JSON cannot hold are left out)."),
    }),
  ),
  truncated: z.boolean(),
});

export const presenceResponse = z.strictObject({
  namespace: z.string(),
  counts: z.record(z.string(), z.number().int().min(0)),
});
