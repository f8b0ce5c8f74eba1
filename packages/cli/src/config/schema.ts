/**
 * The configuration of `switchyard serve`: the core's sections (listen, engine, CORS,
 * namespaces, bus, forwarding, Flask bridge, workers, log, shutdown) composed with each
 * area's own section schema (auth, clientEvents, limits, api, metrics, dashboard; see
 * `../areas.ts`). Every object is strict: an unknown key is an error with a did-you-mean.
 */
import { z } from "zod";
import { AREA_SCHEMAS } from "../areas.js";

const port = z.number().int().min(0).max(65_535);
const ms = z.number().int().positive();

function validUrl(s: string, protocols: readonly string[]): boolean {
  try {
    const u = new URL(s);
    return protocols.includes(u.protocol) && u.hostname.length > 0;
  } catch {
    return false;
  }
}

const BROKERS = ["redis:", "rediss:", "amqp:", "amqps:"] as const;
const brokerList = BROKERS.map((p) => `${p}//`).join(", ");

/** A Redis or RabbitMQ URL. */
const brokerUrl = z
  .string()
  .refine((s) => validUrl(s, BROKERS), { message: `a URL starting with ${brokerList}` });

/** `bus`: "memory" (one node), or a Redis / RabbitMQ URL (a cluster). */
const busSchema = z.string().refine((s) => s === "memory" || validUrl(s, BROKERS), {
  message: `"memory" or a URL starting with ${brokerList}`,
});

const address = z.strictObject({
  /** Host name or IP address. */
  host: z.string().min(1).optional(),
  /** TCP port; 0 picks a free one. */
  port: port.optional(),
});

export const coreSchema = {
  /** Where clients and backends connect. */
  listen: z
    .strictObject({
      /** Interface to listen on. @default "0.0.0.0" (all IPv4 interfaces, as socket.io's `listen(port)`) */
      host: z.string().min(1).default("0.0.0.0"),
      /** TCP port; 0 picks a free one (printed in the "listening" log line). @default 3000 */
      port: port.default(3000),
      /** Path of the Socket.IO endpoint. @default "/socket.io" */
      path: z
        .string()
        .regex(/^\/[^?#\s]*$/, "a path starting with /")
        .default("/socket.io"),
    })
    .prefault({}),
  /** Engine and Socket.IO options (the same names as `new Server()`'s; see the root README's Configuration). */
  engine: z
    .strictObject({
      pingInterval: ms.optional(),
      pingTimeout: ms.optional(),
      upgradeTimeout: ms.optional(),
      maxHttpBufferSize: z.number().int().positive().optional(),
      maxFragments: z.number().int().positive().optional(),
      maxBufferedBytes: z.number().int().positive().optional(),
      transports: z
        .array(z.enum(["polling", "websocket"]))
        .min(1)
        .optional(),
      allowUpgrades: z.boolean().optional(),
      cookie: z
        .union([
          z.boolean(),
          z.strictObject({
            name: z.string().min(1).optional(),
            path: z.string().optional(),
            httpOnly: z.boolean().optional(),
            sameSite: z.enum(["strict", "lax", "none"]).optional(),
            secure: z.boolean().optional(),
            maxAge: z.number().int().nonnegative().optional(),
          }),
        ])
        .optional(),
      perMessageDeflate: z
        .union([z.boolean(), z.strictObject({ threshold: z.number().int().nonnegative() })])
        .optional(),
      httpCompression: z
        .union([z.boolean(), z.strictObject({ threshold: z.number().int().nonnegative() })])
        .optional(),
      nodeId: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,16}$/, "1 to 16 characters of [A-Za-z0-9_-]")
        .optional(),
      addTrailingSlash: z.boolean().optional(),
      connectTimeout: ms.optional(),
      cleanupEmptyChildNamespaces: z.boolean().optional(),
      maxAttachments: z.number().int().positive().optional(),
      maxDepth: z.number().int().positive().optional(),
      serveClient: z.boolean().optional(),
      /** "default" (Socket.IO v5 text) or "msgpack" (socket.io-msgpack-parser's format). @default "default" */
      parser: z.enum(["default", "msgpack"]).optional(),
    })
    .prefault({}),
  /** CORS for polling and WebSocket (origin enforced). @default none (no CORS headers, no check) */
  cors: z
    .strictObject({
      origin: z.union([z.boolean(), z.string().min(1), z.array(z.string().min(1))]),
      methods: z.array(z.string()).optional(),
      allowedHeaders: z.array(z.string()).optional(),
      exposedHeaders: z.array(z.string()).optional(),
      credentials: z.boolean().optional(),
      maxAge: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** Namespaces clients may connect to; others are refused with "Invalid namespace". */
  namespaces: z
    .strictObject({
      /** Declared namespaces. @default ["/"] */
      names: z.array(z.string().regex(/^\/\S*$/, "a namespace starting with /")).default(["/"]),
      /** A regular expression (JavaScript syntax, anchored by you) accepting further namespaces, created on first connection. @default none */
      pattern: z
        .string()
        .refine(
          (s) => {
            try {
              new RegExp(s);
              return true;
            } catch {
              return false;
            }
          },
          { message: "a valid regular expression" },
        )
        .optional(),
    })
    .prefault({}),
  /** The cluster bus: "memory" (one node), `redis://…` or `amqp://…`. @default "memory" */
  bus: busSchema.default("memory"),
  /** Session forwarding between nodes (no sticky sessions): needs a broker bus or `workers` > 1. @default off */
  forwarding: z
    .strictObject({
      /** Shared cluster secret, at least 16 characters, the same on every node. */
      secret: z.string().min(16),
      listen: address.optional(),
      advertise: address.optional(),
    })
    .optional(),
  /** The Flask-SocketIO bridge (`@switchyard/flask-bridge`, installed separately): its options as documented there (`url`, `channels`, …). @default off */
  flaskBridge: z.looseObject({ url: brokerUrl }).optional(),
  /** Worker processes sharing the port (`runWorkers`); 1 runs in this process. @default 1 */
  workers: z.number().int().min(1).max(1024).default(1),
  log: z
    .strictObject({
      /** @default "info" */
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      /** "json", "pretty", or "auto" (pretty when stdout is a TTY). @default "auto" */
      format: z.enum(["auto", "json", "pretty"]).default("auto"),
      /** Milliseconds during which one error class is logged once (the rest counted). @default 10000 */
      errorInterval: ms.default(10_000),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** Milliseconds a drain (SIGTERM/SIGINT) may take before the process exits anyway. @default 10000 */
      timeout: ms.default(10_000),
    })
    .prefault({}),
};

/**
 * Each area's section. A section whose schema has a default for everything is on by
 * default (installed with its defaults); one with required keys is off until configured.
 */
function areaSections(): Record<string, z.ZodType> {
  const out: Record<string, z.ZodType> = {};
  for (const [key, schema] of Object.entries(AREA_SCHEMAS)) {
    if (schema.safeParse(undefined).success) out[key] = schema;
    else if (schema.safeParse({}).success) out[key] = schema.prefault({});
    else out[key] = schema.optional();
  }
  return out;
}

/** The whole configuration. */
export const configSchema = z.strictObject({ ...coreSchema, ...areaSections() });

/** The configuration after validation and defaults (areas' sections typed by their own schemas). */
export type Config = z.infer<z.ZodObject<typeof coreSchema>> & Record<string, unknown>;
