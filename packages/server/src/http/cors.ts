/**
 * CORS for the engine's endpoint, with the option forms of the `cors` package. Unlike a
 * header-only implementation, a configured origin list is *enforced*: requests and
 * WebSocket upgrades from other origins are refused (no cross-site WebSocket hijacking).
 */
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { CorsOptions } from "../options.js";

/** Decides whether `origin` is allowed; calls back with the verdict. */
export function checkOrigin(
  cors: Readonly<CorsOptions> | undefined,
  origin: string | undefined,
  callback: (allowed: boolean) => void,
): void {
  if (cors === undefined || origin === undefined) {
    callback(true);
    return;
  }
  const o = cors.origin;
  if (typeof o === "function") {
    let done = false;
    try {
      o(origin, (err, allow) => {
        if (done) return;
        done = true;
        callback(err === null && allow === true);
      });
    } catch {
      if (!done) {
        done = true;
        callback(false);
      }
    }
    return;
  }
  callback(matches(o, origin));
}

function matches(o: CorsOptions["origin"], origin: string): boolean {
  if (o === undefined || o === true) return true;
  if (o === false) return false;
  if (typeof o === "string") return o === "*" || o === origin;
  if (o instanceof RegExp) return o.test(origin);
  if (Array.isArray(o))
    return o.some((x) => (typeof x === "string" ? x === origin : x.test(origin)));
  return false;
}

/** Headers of an actual (non-preflight) response. */
export function corsHeaders(
  cors: Readonly<CorsOptions> | undefined,
  req: IncomingMessage,
): OutgoingHttpHeaders {
  if (cors === undefined || cors.origin === false) return {};
  const origin = req.headers.origin;
  const headers: OutgoingHttpHeaders = {};
  if (cors.origin === "*" && cors.credentials !== true) {
    headers["Access-Control-Allow-Origin"] = "*";
  } else if (origin !== undefined) {
    headers["Access-Control-Allow-Origin"] = origin;
    headers.Vary = "Origin";
  }
  if (cors.credentials === true) headers["Access-Control-Allow-Credentials"] = "true";
  if (cors.exposedHeaders !== undefined && cors.exposedHeaders.length > 0) {
    headers["Access-Control-Expose-Headers"] = cors.exposedHeaders.join(",");
  }
  return headers;
}

/** Headers of a preflight (OPTIONS) answer. */
export function preflightHeaders(
  cors: Readonly<CorsOptions>,
  req: IncomingMessage,
): OutgoingHttpHeaders {
  const headers = corsHeaders(cors, req);
  headers["Access-Control-Allow-Methods"] = (cors.methods ?? ["GET", "POST"]).join(",");
  const requested = req.headers["access-control-request-headers"];
  const allowed = cors.allowedHeaders?.join(",") ?? requested;
  if (allowed !== undefined && allowed !== "") headers["Access-Control-Allow-Headers"] = allowed;
  if (cors.maxAge !== undefined) headers["Access-Control-Max-Age"] = String(cors.maxAge);
  headers["Content-Length"] = 0;
  return headers;
}
