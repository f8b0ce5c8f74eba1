/**
 * The configuration sections of the client side of `switchyard serve`: `auth`,
 * `clientEvents` and `limits`. Every object is strict (unknown keys are refused) and every
 * field has a description; defaults are applied by the schema.
 */
import { z } from "zod";

const HMAC_ALGS = ["HS256", "HS384", "HS512"] as const;
const ASYM_ALGS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** A backend URL (http or https), from configuration only. */
const backendUrl = z
  .url({ protocol: /^https?$/, error: "an http:// or https:// URL" })
  .describe("Backend URL (http or https).");

/** Settings shared by every webhook. */
const webhookFields = {
  /** @default — required */
  url: backendUrl,
  /** @default 3000 */
  timeoutMs: z
    .int()
    .min(1)
    .max(120_000)
    .default(3000)
    .describe("Milliseconds before a call counts as failed."),
  /** @default 65536 */
  maxResponseBytes: z
    .int()
    .min(2)
    .max(16 * 1024 * 1024)
    .default(65_536)
    .describe("Largest response body accepted."),
  /** @default {} — e.g. `{ "authorization": "Bearer …" }` (masked in --print-config) */
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe("Extra request headers (secrets: masked)."),
  /** @default 64 */
  maxConcurrent: z.int().min(1).max(10_000).default(64).describe("Calls in flight at most."),
  /** @default 1000 */
  maxQueued: z
    .int()
    .min(0)
    .max(1_000_000)
    .default(1000)
    .describe("Calls waiting at most; beyond, refused as busy."),
};

export const webhookSchema = z.strictObject(webhookFields);

const jwtSchema = z
  .strictObject({
    /** Shared secret for HS256/384/512. @default — */
    secret: z
      .string()
      .min(16, "at least 16 characters")
      .optional()
      .describe("HMAC shared secret (masked)."),
    /** Public key (PEM, SPKI) for RS/PS/ES/EdDSA. @default — */
    publicKey: z.string().optional().describe("Public key, PEM text."),
    /** Path of a PEM public key file. @default — */
    publicKeyFile: z.string().optional().describe("Path of a PEM public key file."),
    /** Path of a JWKS (JSON Web Key Set) file. @default — */
    jwksFile: z.string().optional().describe("Path of a JWKS JSON file."),
    /** Algorithms accepted; by default those of the key type. `none` is never accepted. @default by key */
    algorithms: z
      .array(z.enum([...HMAC_ALGS, ...ASYM_ALGS]))
      .min(1)
      .optional()
      .describe("Accepted algorithms."),
    /** Required `aud` (one of). @default — */
    audience: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe("Required audience."),
    /** Required `iss` (one of). @default — */
    issuer: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe("Required issuer."),
    /** Seconds of clock skew tolerated on exp/nbf. @default 5 */
    clockToleranceSec: z.int().min(0).max(300).default(5),
    /** Refuse tokens without `exp`. @default false */
    requireExp: z.boolean().default(false),
    /** Largest token accepted, in bytes. @default 8192 */
    maxTokenBytes: z.int().min(64).max(65_536).default(8192),
    /** Header read when `auth.token` is absent (`Bearer <token>` or the bare token). @default "authorization" */
    header: z.string().min(1).default("authorization"),
    /** Disconnect the socket when its token expires (reason code SY_ERR_AUTH_TOKEN_EXPIRED). @default true */
    disconnectOnExpiry: z.boolean().default(true),
  })
  .superRefine((v, ctx) => {
    const keys = [v.secret, v.publicKey, v.publicKeyFile, v.jwksFile].filter(
      (k) => k !== undefined,
    );
    if (keys.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: "exactly one of secret, publicKey, publicKeyFile, jwksFile",
      });
      return;
    }
    const hmac = v.secret !== undefined;
    const bad = v.algorithms?.find((a) => (HMAC_ALGS as readonly string[]).includes(a) !== hmac);
    if (bad !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["algorithms"],
        message: `${bad} does not match the key (${hmac ? "a secret takes HS*" : "a public key takes RS/PS/ES/EdDSA"})`,
      });
    }
  });

const roomsSchema = z.strictObject({
  /**
   * Who decides which rooms a client may join with `switchyard:join`: `claims` (the token's
   * claim `claim` lists exact names and `*` patterns, plus `allow` patterns with `{claim}`
   * placeholders), `webhook` (ask `webhook.url`), or `api` (clients may not join; only the
   * backend through the API). @default "api"
   */
  mode: z.enum(["claims", "webhook", "api"]).default("api"),
  /** Token claim listing rooms the client may join (names, `*` matches any run of characters). @default "rooms" */
  claim: z.string().min(1).default("rooms"),
  /** Room patterns anyone authenticated may join, `{sub}`-style placeholders filled from claims. @default [] */
  allow: z.array(z.string().min(1)).default([]),
  /** The subscribe webhook (mode `webhook`). @default — */
  webhook: webhookSchema.optional(),
  /** Rooms a client may be in through `switchyard:join`, at most. @default 100 */
  maxRoomsPerSocket: z.int().min(1).max(100_000).default(100),
});

/** `auth`: who may connect and which rooms they may join. */
export const authSchema = z
  .strictObject({
    /** JWT connect auth (jose). @default — (no JWT check) */
    jwt: jwtSchema.optional(),
    /** Connect webhook: POSTs the handshake, the backend answers `{ allow, data?, rooms?, reason? }`. @default — */
    connectWebhook: webhookSchema.optional(),
    /** Room permissions. */
    rooms: roomsSchema.prefault({}),
  })
  .superRefine((v, ctx) => {
    if (v.rooms.mode === "webhook" && v.rooms.webhook === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["rooms", "webhook"],
        message: 'required when rooms.mode is "webhook"',
      });
    }
  })
  .prefault({});

/** `clientEvents`: events clients emit, forwarded to the backend; its answer is the client's ack. */
export const clientEventsSchema = z
  .strictObject({
    /** The backend URL events are POSTed to. @default — (no forwarding) */
    webhook: webhookSchema.optional(),
    /**
     * Or: publish events on the cluster bus (`bus: redis://` / `amqp://`) for a backend that
     * consumes the broker; it answers on the message's `replyTo` channel. @default —
     */
    bus: z
      .strictObject({
        /** Channel (Redis) / routing key (RabbitMQ) events are published on. @default "switchyard:client-events" */
        channel: z.string().min(1).max(200).default("switchyard:client-events"),
        /** Milliseconds to wait for the backend's reply to an event that asked for an ack. @default 3000 */
        replyTimeoutMs: z.int().min(1).max(120_000).default(3000),
        /** Largest reply accepted, in bytes. @default 65536 */
        maxReplyBytes: z
          .int()
          .min(2)
          .max(16 * 1024 * 1024)
          .default(65_536),
      })
      .optional(),
    /** Event names forwarded; `"*"` forwards every non-reserved event. @default ["*"] */
    events: z.array(z.string().min(1)).min(1).default(["*"]),
    /** Events per POST: 1 sends `{ event, … }`, more sends `{ events: [ … ] }` batches. @default 1 */
    batchSize: z.int().min(1).max(1000).default(1),
    /** Longest a batch waits to fill, in ms. @default 10 */
    batchDelayMs: z.int().min(0).max(10_000).default(10),
    /** Events of one socket waiting for the backend at most; beyond, acked SY_ERR_BACKEND_BUSY. @default 16 */
    maxPendingPerSocket: z.int().min(1).max(10_000).default(16),
  })
  .refine((v) => v.webhook === undefined || v.bus === undefined, {
    message: "either webhook or bus, not both",
    path: ["bus"],
  })
  .prefault({});

/** `limits`: per-connection rates; exceeding one disconnects with a documented code. */
export const limitsSchema = z
  .strictObject({
    /** Events per second a socket may emit on average (token bucket); 0 = unlimited. @default 100 */
    eventsPerSecond: z.number().min(0).max(1e6).default(100),
    /** Bucket size: events at once. @default 200 */
    eventsBurst: z.int().min(1).max(1e7).default(200),
    /** Bytes per second a connection may send on average (all its messages); 0 = unlimited. @default 1048576 */
    bytesPerSecond: z.number().min(0).max(1e10).default(1_048_576),
    /** Bucket size in bytes. @default 4194304 */
    bytesBurst: z.int().min(1).max(1e10).default(4_194_304),
  })
  .prefault({});

export type AuthConfig = z.output<typeof authSchema>;
export type ClientEventsConfig = z.output<typeof clientEventsSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type WebhookConfig = z.output<typeof webhookSchema>;

/** Configuration paths (relative to the root) whose values are secrets, for --print-config masking. */
export const SECRET_PATHS: readonly string[] = [
  "auth.jwt.secret",
  "auth.connectWebhook.headers",
  "auth.rooms.webhook.headers",
  "clientEvents.webhook.headers",
];
