/**
 * The HTTP side of the API: routing below /api/v1, API keys and scopes, body limits,
 * validation, JSON answers and errors.
 */
import type http from "node:http";
import type { Logger } from "pino";
import type { ZodError, ZodType } from "zod";
import type { ApiConfig } from "./config.js";
import { ApiError, ApiErrorCode } from "./errors.js";
import type { BadKeyLimiter, KeyRing } from "./keys.js";
import { API_PREFIX, API_ROUTES, type ApiRoute } from "./openapi.js";
import type { ApiOperations } from "./operations.js";
import type { batchRequest, publishRequest } from "./schemas.js";

/** Counters of the HTTP API (read by metrics). */
export interface ApiHttpStats {
  /** Answers by `"<operationId|unknown> <status>"`. */
  readonly requests: Record<string, number>;
  /** Requests refused for a missing or unknown key. */
  unauthorized: number;
  /** Requests refused because their address had too many failed key checks. */
  rateLimited: number;
  /** Requests whose key lacked the route's scope. */
  forbidden: number;
}

export interface ApiHttpDeps {
  readonly config: ApiConfig;
  readonly keys: KeyRing;
  readonly badKeys: BadKeyLimiter;
  readonly ops: ApiOperations;
  readonly log: Logger;
  readonly limiter: (key: string) => boolean;
  readonly document: Record<string, unknown>;
  readonly stats: ApiHttpStats;
  /** Records one answer in the metrics area, when installed (route template, method, status, seconds). */
  readonly observe?: (route: string, method: string, status: number, seconds: number) => void;
}

const ROUTES_BY_PATH = new Map<string, ApiRoute>(API_ROUTES.map((r) => [API_PREFIX + r.path, r]));

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers?: http.OutgoingHttpHeaders,
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

function errorBody(err: ApiError): unknown {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.path === undefined ? {} : { path: err.path }),
    },
  };
}

/** The first issue of a zod error, as an ApiError naming the field. */
export function invalid(err: ZodError, code: string = ApiErrorCode.INVALID_BODY): ApiError {
  const issue = err.issues[0];
  if (issue === undefined) return new ApiError(400, code, "invalid body");
  let path = issue.path.map(String).join(".");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    path = path === "" ? key : `${path}.${key}`;
    message = `unknown field ${JSON.stringify(path)}`;
  } else {
    message = `${path === "" ? "body" : path}: ${message}`;
  }
  return new ApiError(400, code, message, path === "" ? undefined : path);
}

function parse<T>(schema: ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw invalid(r.error);
  return r.data;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    // An aborted upload settles too (after "end" this is a no-op).
    req.on("close", () =>
      reject(new ApiError(400, ApiErrorCode.INVALID_BODY, "request body aborted before its end")),
    );
  });
}

function tooLarge(limit: number): ApiError {
  return new ApiError(
    413,
    ApiErrorCode.BODY_TOO_LARGE,
    `body larger than ${limit} bytes (api.bodyLimit)`,
  );
}

function presentedKey(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  const k = req.headers["x-api-key"];
  return typeof k === "string" && k.length > 0 ? k : undefined;
}

function queryString(url: URL, name: string, required: boolean): string | undefined {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) {
    throw new ApiError(
      400,
      ApiErrorCode.INVALID_QUERY,
      `query parameter ${name} given more than once`,
      name,
    );
  }
  const v = all[0];
  if (v === undefined) {
    if (required)
      throw new ApiError(
        400,
        ApiErrorCode.INVALID_QUERY,
        `query parameter ${name} is required`,
        name,
      );
    return undefined;
  }
  if (v.length === 0 || v.length > 256) {
    throw new ApiError(
      400,
      ApiErrorCode.INVALID_QUERY,
      `query parameter ${name}: 1 to 256 characters`,
      name,
    );
  }
  return v;
}

function namespaceParam(url: URL): string {
  const ns = queryString(url, "namespace", false) ?? "/";
  if (!ns.startsWith("/")) {
    throw new ApiError(
      400,
      ApiErrorCode.INVALID_QUERY,
      'query parameter namespace: starts with "/"',
      "namespace",
    );
  }
  return ns;
}

/** The request handler for everything below /api/v1. */
export function createApiHandler(
  deps: ApiHttpDeps,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  return async (req, res) => {
    const started = performance.now();
    let routeName = "unknown";
    let template = "unknown";
    const count = (route: string, status: number): void => {
      const k = `${route} ${status}`;
      deps.stats.requests[k] = (deps.stats.requests[k] ?? 0) + 1;
      deps.observe?.(template, req.method ?? "?", status, (performance.now() - started) / 1000);
    };
    try {
      const url = new URL(req.url ?? "/", "http://localhost");
      const route = ROUTES_BY_PATH.get(url.pathname);
      if (route === undefined) {
        throw new ApiError(
          404,
          ApiErrorCode.NOT_FOUND,
          `no route ${url.pathname} (see ${API_PREFIX}/openapi.json)`,
        );
      }
      routeName = route.operationId;
      template = API_PREFIX + route.path;
      if (req.method !== route.method) {
        const e = new ApiError(
          405,
          ApiErrorCode.METHOD_NOT_ALLOWED,
          `${req.method ?? "?"} not allowed on ${url.pathname}; use ${route.method}`,
        );
        count(routeName, 405);
        req.resume();
        send(res, 405, errorBody(e), { allow: route.method });
        return;
      }
      const key = route.scope === undefined ? undefined : authorize(deps, req, route);
      let result: unknown;
      if (route.method === "POST") {
        const type = req.headers["content-type"] ?? "";
        if (!/^application\/json\s*(;|$)/i.test(type)) {
          throw new ApiError(
            415,
            ApiErrorCode.UNSUPPORTED_MEDIA_TYPE,
            `content-type must be application/json (got ${JSON.stringify(type)})`,
          );
        }
        const raw = await readBody(req, deps.config.bodyLimit);
        let body: unknown;
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch (err) {
          throw new ApiError(
            400,
            ApiErrorCode.INVALID_JSON,
            `body is not JSON: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
        result = runPost(deps, route, body, key ?? "", req);
      } else {
        const url2 = url;
        result = await runGet(deps, route, url2);
      }
      count(routeName, 200);
      send(res, 200, result);
    } catch (err) {
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, ApiErrorCode.INTERNAL, "internal error (logged on the server)");
      if (!(err instanceof ApiError))
        deps.log.error({ err, route: routeName }, "api: internal error");
      count(routeName, e.status);
      const headers: http.OutgoingHttpHeaders = {};
      if (e.status === 413) headers.connection = "close";
      if (e.status === 429)
        headers["retry-after"] = String(Math.ceil(deps.config.badKeys.intervalMs / 1000));
      if (e.status === 401) headers["www-authenticate"] = 'Bearer realm="switchyard"';
      if (req.readableEnded !== true && e.status !== 413) req.resume();
      send(res, e.status, errorBody(e), headers);
    }
  };
}

/** Checks the key and scope; returns the key's name. Throws 401/403/429. */
function authorize(deps: ApiHttpDeps, req: http.IncomingMessage, route: ApiRoute): string {
  const address = req.socket.remoteAddress ?? "unknown";
  if (deps.badKeys.blocked(address)) {
    deps.stats.rateLimited++;
    if (deps.limiter("api:bad-key-limited")) {
      deps.log.warn(
        { address },
        "api: too many failed API key checks from an address (logged once per interval)",
      );
    }
    throw new ApiError(
      429,
      ApiErrorCode.TOO_MANY_BAD_KEYS,
      "too many failed API key checks from this address; retry later",
    );
  }
  const presented = presentedKey(req);
  const key = presented === undefined ? undefined : deps.keys.find(presented);
  if (key === undefined) {
    deps.badKeys.fail(address);
    deps.stats.unauthorized++;
    if (deps.limiter("api:bad-key")) {
      deps.log.warn(
        {
          address,
          route: route.operationId,
          reason: presented === undefined ? "missing" : "unknown",
        },
        "api: request refused, missing or unknown API key (logged once per interval)",
      );
    }
    throw new ApiError(
      401,
      ApiErrorCode.UNAUTHORIZED,
      presented === undefined
        ? "missing API key: send Authorization: Bearer <key> or X-API-Key"
        : "unknown API key",
    );
  }
  if (route.scope !== undefined && !key.scopes.has(route.scope)) {
    deps.stats.forbidden++;
    throw new ApiError(
      403,
      ApiErrorCode.FORBIDDEN,
      `API key ${key.name} lacks the ${route.scope} scope`,
    );
  }
  return key.name;
}

function runPost(
  deps: ApiHttpDeps,
  route: ApiRoute,
  body: unknown,
  keyName: string,
  req: http.IncomingMessage,
): unknown {
  const ops = deps.ops;
  switch (route.operationId) {
    case "publish": {
      const p = parse(route.body as typeof publishRequest, body);
      const header = req.headers["idempotency-key"];
      if (p.idempotencyKey === undefined && typeof header === "string" && header.length > 0) {
        if (header.length > 256) {
          throw new ApiError(
            400,
            ApiErrorCode.INVALID_BODY,
            "Idempotency-Key header longer than 256 characters",
          );
        }
        p.idempotencyKey = header;
      }
      const r = ops.publish(p, keyName, false);
      return { ok: true, duplicate: r.duplicate };
    }
    case "publishBatch": {
      const b = parse(route.body as typeof batchRequest, body);
      if (b.messages.length > deps.config.batchLimit) {
        throw new ApiError(
          400,
          ApiErrorCode.INVALID_BODY,
          `messages: at most ${deps.config.batchLimit} per batch (api.batchLimit)`,
          "messages",
        );
      }
      // Every namespace is checked before anything is sent: a batch is refused whole.
      for (const [i, m] of b.messages.entries()) {
        try {
          ops.namespace(m.namespace);
        } catch (err) {
          if (err instanceof ApiError)
            throw new ApiError(
              err.status,
              err.code,
              `messages.${i}.${err.message}`,
              `messages.${i}.namespace`,
            );
          throw err;
        }
      }
      return {
        results: b.messages.map((m) => ({
          ok: true,
          duplicate: ops.publish(m, keyName, false).duplicate,
        })),
      };
    }
    case "join":
      ops.join(parse(route.body as ZodType<Parameters<ApiOperations["join"]>[0]>, body), false);
      return { ok: true };
    case "leave":
      ops.leave(parse(route.body as ZodType<Parameters<ApiOperations["leave"]>[0]>, body), false);
      return { ok: true };
    case "disconnect":
      ops.disconnect(
        parse(route.body as ZodType<Parameters<ApiOperations["disconnect"]>[0]>, body),
        false,
      );
      return { ok: true };
    default:
      throw new ApiError(500, ApiErrorCode.INTERNAL, `no handler for ${route.operationId}`);
  }
}

async function runGet(deps: ApiHttpDeps, route: ApiRoute, url: URL): Promise<unknown> {
  const ops = deps.ops;
  switch (route.operationId) {
    case "openapi":
      return deps.document;
    case "listRooms": {
      const namespace = namespaceParam(url);
      return { namespace, rooms: await ops.rooms(namespace) };
    }
    case "listSockets": {
      const namespace = namespaceParam(url);
      const room = queryString(url, "room", false);
      const r = await ops.sockets(namespace, room, deps.config.socketsLimit);
      return { namespace, room: room ?? null, sockets: r.sockets, truncated: r.truncated };
    }
    case "presence": {
      const namespace = namespaceParam(url);
      const rooms = url.searchParams.getAll("room");
      if (rooms.length === 0)
        throw new ApiError(
          400,
          ApiErrorCode.INVALID_QUERY,
          "query parameter room is required (repeat it for several rooms)",
          "room",
        );
      if (rooms.length > 100)
        throw new ApiError(
          400,
          ApiErrorCode.INVALID_QUERY,
          "query parameter room: at most 100",
          "room",
        );
      for (const r of rooms) {
        if (r.length === 0 || r.length > 256)
          throw new ApiError(
            400,
            ApiErrorCode.INVALID_QUERY,
            "query parameter room: 1 to 256 characters",
            "room",
          );
      }
      return { namespace, counts: await ops.presence(namespace, rooms) };
    }
    default:
      throw new ApiError(500, ApiErrorCode.INTERNAL, `no handler for ${route.operationId}`);
  }
}
