/**
 * The `dashboard` section and its installer: a page at `path` (no data in it), its script at
 * `path/app.js`, and the data at `path/api/snapshot` behind the admin key (Bearer token,
 * compared in constant time; repeated bad keys from one address are answered 429 for a
 * while and logged once per interval).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import { z } from "zod";
import type { ServeContext } from "../context.js";
import { DASHBOARD_JS, dashboardHtml } from "./page.js";
import { DashboardSampler, PEER_EVENT } from "./sampler.js";

const PATH = /^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/;

/** The `dashboard` section. */
export const dashboardSchema = z
  .strictObject({
    /** Serve the dashboard page. @default false */
    enabled: z.boolean().default(false).describe("serve the dashboard page"),
    /** Its path. @default "/dashboard" */
    path: z
      .string()
      .regex(PATH, "a path starting with / and not ending with /")
      .default("/dashboard")
      .describe("path of the dashboard page"),
    /** The admin key the page's requests must carry (a secret; at least 16 characters). @default undefined (required when enabled) */
    adminKey: z
      .string()
      .min(16, "at least 16 characters")
      .optional()
      .describe("admin key (secret)"),
    /** How often a point is added to the plotted history, ms. @default 1000 */
    sampleIntervalMs: z.number().int().min(100).max(60_000).default(1000),
    /** Points of history kept (and plotted). @default 300 */
    historySize: z.number().int().min(10).max(10_000).default(300),
    /** Largest rooms listed per namespace. @default 50 */
    roomsLimit: z.number().int().min(1).max(1000).default(50),
    /** How long a snapshot waits for the other nodes' summaries (cluster bus), ms. @default 1000 */
    peerTimeoutMs: z.number().int().min(50).max(30_000).default(1000),
    /** Bad keys one address may send within a minute before it is answered 429. @default 10 */
    maxBadKeysPerMinute: z.number().int().min(1).max(10_000).default(10),
  })
  .superRefine((c, issue) => {
    if (c.enabled && c.adminKey === undefined)
      issue.addIssue({
        code: "custom",
        path: ["adminKey"],
        message: "required when dashboard.enabled is true",
      });
  });

/** Dotted configuration paths of this section that are secrets (masked by --print-config). */
export const DASHBOARD_SECRET_PATHS: readonly string[] = ["dashboard.adminKey"];

/** The resolved `dashboard` section. */
export type DashboardConfig = z.output<typeof dashboardSchema>;

/** What {@link installDashboard} returns. */
export interface InstalledDashboard {
  readonly sampler: DashboardSampler | undefined;
  close(): void;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

function json(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(JSON.stringify(body));
}

const PAGE_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** Installs the dashboard routes under `config.path` (nothing when disabled). */
export async function installDashboard(
  ctx: ServeContext,
  config: DashboardConfig,
): Promise<InstalledDashboard> {
  if (!config.enabled || config.adminKey === undefined)
    return { sampler: undefined, close: () => {} };
  const log = ctx.log.child({ area: "dashboard" });
  const expected = digest(config.adminKey);
  const base = config.path;
  const sampler = new DashboardSampler(ctx.io, {
    intervalMs: config.sampleIntervalMs,
    historySize: config.historySize,
    roomsLimit: config.roomsLimit,
    bus: ctx.bus,
  });
  sampler.stats.addConfiguredNamespaces(ctx.config);
  const html = dashboardHtml(base);
  // Bad keys per remote address in the current minute (cleared each minute, so bounded by
  // the addresses of one minute).
  let badKeys = new Map<string, number>();
  const window = setInterval(() => {
    badKeys = new Map();
  }, 60_000);
  window.unref();

  const authorized = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    const addr = req.socket.remoteAddress ?? "?";
    if ((badKeys.get(addr) ?? 0) >= config.maxBadKeysPerMinute) {
      json(
        res,
        429,
        { error: { code: "too_many_bad_keys", message: "too many bad admin keys; retry later" } },
        { "retry-after": "60" },
      );
      return false;
    }
    const header = req.headers.authorization ?? "";
    const m = /^Bearer (.{1,1024})$/.exec(header);
    if (m?.[1] !== undefined && timingSafeEqual(digest(m[1]), expected)) return true;
    badKeys.set(addr, (badKeys.get(addr) ?? 0) + 1);
    sampler.stats.reportError("DASHBOARD_BAD_KEY", `bad admin key from ${addr}`);
    if (ctx.limiter("dashboard:bad-key"))
      log.warn({ addr }, "dashboard: bad admin key (further ones this interval are only counted)");
    json(
      res,
      401,
      {
        error: {
          code: m === null ? "missing_admin_key" : "bad_admin_key",
          message:
            m === null
              ? "an admin key is required (Authorization: Bearer <key>)"
              : "wrong admin key",
        },
      },
      { "www-authenticate": 'Bearer realm="switchyard-dashboard"' },
    );
    return false;
  };

  ctx.route("*", base, (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const sub = path.slice(base.length);
    if (req.method !== "GET" && req.method !== "HEAD") {
      json(
        res,
        405,
        { error: { code: "method_not_allowed", message: "the dashboard answers GET only" } },
        { allow: "GET, HEAD" },
      );
      return;
    }
    if (sub === "" || sub === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", ...PAGE_HEADERS });
      res.end(req.method === "HEAD" ? undefined : html);
      return;
    }
    if (sub === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", ...PAGE_HEADERS });
      res.end(req.method === "HEAD" ? undefined : DASHBOARD_JS);
      return;
    }
    if (sub === "/api/snapshot") {
      if (!authorized(req, res)) return;
      void sampler.snapshot(config.peerTimeoutMs).then(
        (snapshot) => json(res, 200, snapshot),
        (err: Error) =>
          json(res, 500, { error: { code: "snapshot_failed", message: err.message } }),
      );
      return;
    }
    json(res, 404, { error: { code: "not_found", message: `no dashboard resource ${sub}` } });
  });
  // Other nodes' dashboards ask this one for its summary over the cluster bus.
  const onPeer = (...args: unknown[]): void => {
    const ack = args.at(-1);
    if (typeof ack === "function") ack(sampler.summary());
  };
  ctx.io.on(PEER_EVENT, onPeer);
  log.info({ path: base }, "dashboard enabled");
  return {
    sampler,
    close: () => {
      clearInterval(window);
      ctx.io.off(PEER_EVENT, onPeer);
      sampler.close();
    },
  };
}
