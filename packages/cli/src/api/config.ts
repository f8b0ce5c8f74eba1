/**
 * The `api` section of the configuration: the HTTP API for backends (`/api/v1/…`), its
 * API keys and limits, and the same operations over the broker.
 */
import { z } from "zod";

/** What an API key may do: publish (publish, batch), manage (join, leave, disconnect), read (rooms, sockets, presence). */
export const API_SCOPES = ["publish", "manage", "read"] as const;
/** One of {@link API_SCOPES}. */
export type ApiScope = (typeof API_SCOPES)[number];

const keySchema = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, '_', '.', '-'")
      .describe("A name for logs and idempotency scoping (never the key itself)."),
    key: z
      .string()
      .min(16, "at least 16 characters")
      .max(512)
      .optional()
      .describe("The secret itself (or use keyEnv)."),
    keyEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name")
      .optional()
      .describe("Name of the environment variable that holds the secret."),
    scopes: z.array(z.enum(API_SCOPES)).min(1).describe("publish, manage and/or read."),
  })
  .refine((k) => (k.key === undefined) !== (k.keyEnv === undefined), {
    message: "exactly one of key or keyEnv",
  });

/**
 * The `api` configuration section (zod schema; parse output is {@link ApiConfig}).
 * Unknown keys are refused.
 */
export const apiSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe("Serve /api/v1 and listen on the broker channel."),
    keys: z.array(keySchema).max(1000).default([]).describe("API keys with scopes."),
    bodyLimit: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024)
      .describe("Largest request body in bytes (413 above it)."),
    batchLimit: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe("Most messages in one batch publish."),
    socketsLimit: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe("Most sockets one GET /sockets lists (the answer says truncated)."),
    idempotency: z
      .strictObject({
        windowMs: z
          .number()
          .int()
          .min(1000)
          .max(24 * 3600_000)
          .default(300_000)
          .describe("How long a publish's idempotency key is remembered."),
        maxKeys: z
          .number()
          .int()
          .min(100)
          .max(10_000_000)
          .default(100_000)
          .describe("Most keys remembered; the oldest are forgotten first above it."),
      })
      .prefault({}),
    badKeys: z
      .strictObject({
        limit: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(10)
          .describe("Failed key checks per client address per interval before 429."),
        intervalMs: z.number().int().min(100).max(3600_000).default(60_000),
      })
      .prefault({}),
    broker: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe("Apply operations published on the bus channel."),
        channel: z
          .string()
          .min(1)
          .max(200)
          .default("switchyard#api#v1")
          .describe("The bus channel backends publish operations on (JSON)."),
      })
      .prefault({}),
  })
  .prefault({});

/**
 * The resolved `api` section.
 */
export interface ApiConfig {
  /** Serve `/api/v1` and listen on the broker channel. @default true */
  enabled: boolean;
  /** API keys: `{ name, key | keyEnv, scopes }`; none means every request is refused (401). @default [] */
  keys: {
    name: string;
    key?: string | undefined;
    keyEnv?: string | undefined;
    scopes: ApiScope[];
  }[];
  /** Largest request body in bytes; larger bodies get 413. @default 1048576 */
  bodyLimit: number;
  /** Most messages in one `POST /api/v1/publish/batch`. @default 100 */
  batchLimit: number;
  /** Most sockets one `GET /api/v1/sockets` lists. @default 1000 */
  socketsLimit: number;
  idempotency: {
    /** How long an idempotency key is remembered, in ms. @default 300000 */
    windowMs: number;
    /** Most keys remembered (oldest forgotten first). @default 100000 */
    maxKeys: number;
  };
  badKeys: {
    /** Failed key checks per client address per interval before requests get 429. @default 10 */
    limit: number;
    /** The interval, in ms. @default 60000 */
    intervalMs: number;
  };
  broker: {
    /** Apply operations that backends publish on the bus channel (needs a redis/amqp bus). @default true */
    enabled: boolean;
    /** The bus channel. @default "switchyard#api#v1" */
    channel: string;
  };
}

// The interface and the schema must describe the same thing.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _same: Same<z.output<typeof apiSchema>, ApiConfig> = true;
void _same;
