/**
 * Serves the browser bundle of `socket.io-client` at `<path>/socket.io.js` (and the
 * min, ESM and msgpack variants and their source maps: the set socket.io 4.8 serves), so
 * pages written for socket.io keep their `<script src="/socket.io/socket.io.js">`.
 *
 * socket.io ships a copy of the client inside its own package; we do not, so the client
 * is looked up in the *application's* dependencies first (the main script's directory,
 * then the working directory) and in ours last: with pnpm's strict layout, or a globally
 * installed or linked library, our own directory cannot see what the application
 * installed. Each file is read once, and each compressed form is made once, on first use.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import { brotliCompress, deflate, gzip } from "node:zlib";
import type { CorsOptions } from "../options.js";
import { checkOrigin } from "./cors.js";

/** The client files socket.io 4.8 serves under its path (its `CLIENT_FILES`). */
export const CLIENT_FILES: ReadonlySet<string> = new Set([
  "socket.io.js",
  "socket.io.js.map",
  "socket.io.min.js",
  "socket.io.min.js.map",
  "socket.io.esm.min.js",
  "socket.io.esm.min.js.map",
  "socket.io.msgpack.min.js",
  "socket.io.msgpack.min.js.map",
]);

/** Content codings offered, in socket.io's order of preference for equal weights. */
const CODINGS = ["br", "gzip", "deflate"] as const;
type Coding = (typeof CODINGS)[number];

const COMPRESS: Readonly<Record<Coding, (data: Buffer) => Promise<Buffer>>> = {
  br: promisify(brotliCompress),
  gzip: promisify(gzip),
  deflate: promisify(deflate),
};

/** What the 404 says when no `socket.io-client` can be found. */
export const NOT_INSTALLED =
  "socket.io-client is not installed: run `npm install socket.io-client` in your application " +
  "to serve the browser client here, or pass `serveClient: false` to the Server";

interface CachedFile {
  readonly body: Buffer;
  readonly compressed: Map<Coding, Promise<Buffer>>;
}

/** One installed `socket.io-client`: its `dist/` files, read and compressed on demand. */
export class ClientBundle {
  /** The installed client's directory, or null if none was found. */
  readonly dir: string | null;
  /** Its version: the ETag of every file, as socket.io uses its own (equal) version. */
  readonly version: string | null;
  private readonly files = new Map<string, CachedFile | null>();

  /**
   * Looks `socket.io-client` up from each base in turn (absolute file paths or file URLs,
   * as `createRequire` takes); the first that resolves wins.
   */
  constructor(bases: readonly string[]) {
    let dir: string | null = null;
    let version: string | null = null;
    for (const base of bases) {
      try {
        const manifest = createRequire(base).resolve("socket.io-client/package.json");
        const parsed: unknown = JSON.parse(readFileSync(manifest, "utf8"));
        dir = dirname(manifest);
        version =
          typeof parsed === "object" && parsed !== null && "version" in parsed
            ? String(parsed.version)
            : "0";
        break;
      } catch {
        // Not installed where this base looks (or unreadable): try the next one.
      }
    }
    this.dir = dir;
    this.version = version;
  }

  /** The file's bytes, or null if this client version does not ship it. */
  file(name: string): Buffer | null {
    return this.cached(name)?.body ?? null;
  }

  /** The file compressed with `coding`, made once. */
  compressed(name: string, coding: Coding): Promise<Buffer> | null {
    const f = this.cached(name);
    if (f === undefined || f === null) return null;
    let p = f.compressed.get(coding);
    if (p === undefined) {
      const made = COMPRESS[coding](f.body);
      f.compressed.set(coding, made);
      // A failure (out of memory) is not remembered: the next request tries again.
      made.catch(() => f.compressed.delete(coding));
      p = made;
    }
    return p;
  }

  private cached(name: string): CachedFile | null | undefined {
    if (this.dir === null || !CLIENT_FILES.has(name)) return undefined;
    let f = this.files.get(name);
    if (f === undefined) {
      try {
        f = { body: readFileSync(join(this.dir, "dist", name)), compressed: new Map() };
      } catch {
        f = null;
      }
      this.files.set(name, f);
    }
    return f;
  }
}

/** Where the application's dependencies are: its main script, the working directory, then us. */
export function applicationBases(): string[] {
  const bases: string[] = [];
  const main = process.argv[1];
  if (main !== undefined && isAbsolute(main)) bases.push(main);
  bases.push(join(process.cwd(), "noop.js"));
  bases.push(import.meta.url);
  return bases;
}

let defaultBundle: ClientBundle | undefined;

function applicationBundle(): ClientBundle {
  defaultBundle ??= new ClientBundle(applicationBases());
  return defaultBundle;
}

/**
 * Answers a GET or HEAD for `<path>/<client file>` and returns true; returns false for
 * anything else (which is then the engine's). `bundle` defaults to the application's
 * installed client.
 */
export function serveClientFile(
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  cors?: Readonly<CorsOptions>,
  bundle?: ClientBundle,
): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const url = req.url ?? "";
  const base = path === "/" ? "" : path;
  if (!url.startsWith(`${base}/socket.io.`)) return false;
  const q = url.indexOf("?");
  const name = (q === -1 ? url : url.slice(0, q)).slice(base.length + 1);
  if (!CLIENT_FILES.has(name)) return false;
  const b = bundle ?? applicationBundle();
  if (cors === undefined) {
    answer(b, name, req, res, {});
    return true;
  }
  const origin = req.headers.origin;
  checkOrigin(cors, origin, (allowed) => {
    answer(b, name, req, res, bundleCorsHeaders(cors, origin, allowed));
  });
  return true;
}

function answer(
  bundle: ClientBundle,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  headers: OutgoingHttpHeaders,
): void {
  const body = bundle.file(name);
  if (body === null || bundle.version === null) {
    const text =
      bundle.version === null
        ? NOT_INSTALLED
        : `socket.io-client ${bundle.version} has no dist/${name}`;
    res.writeHead(404, { ...headers, "Content-Type": "text/plain; charset=utf-8" }).end(text);
    return;
  }
  const etag = `"${bundle.version}"`;
  headers["Cache-Control"] = "public, max-age=0";
  headers.ETag = etag;
  // The body depends on Accept-Encoding (socket.io omits this, so a shared cache could
  // hand a compressed body to a client that cannot read it).
  headers.Vary =
    headers.Vary === undefined ? "Accept-Encoding" : `${headers.Vary}, Accept-Encoding`;
  if (matchesEtag(req.headers["if-none-match"], etag)) {
    res.writeHead(304, headers).end();
    return;
  }
  headers["Content-Type"] = name.endsWith(".map")
    ? "application/json; charset=utf-8"
    : "application/javascript; charset=utf-8";
  const coding = negotiateCoding(req.headers["accept-encoding"]);
  const compressed = coding === null ? null : bundle.compressed(name, coding);
  if (coding === null || compressed === null) {
    headers["Content-Length"] = body.length;
    res.writeHead(200, headers).end(body);
    return;
  }
  headers["Content-Encoding"] = coding;
  compressed.then(
    (data) => {
      if (res.destroyed) return;
      headers["Content-Length"] = data.length;
      res.writeHead(200, headers).end(data);
    },
    () => {
      // Compression failed (out of memory): the identity form is always acceptable.
      if (res.destroyed || res.headersSent) return;
      delete headers["Content-Encoding"];
      headers["Content-Length"] = body.length;
      res.writeHead(200, headers).end(body);
    },
  );
}

/**
 * The CORS headers socket.io's `cors` middleware puts on the bundle: `*` for no or a
 * `"*"` origin, a fixed string as is, otherwise the request's origin when allowed; `Vary:
 * Origin` whenever the answer depends on a static origin. A refused origin gets no
 * Allow-Origin (the browser then refuses the script), not a 403: the file is public.
 */
export function bundleCorsHeaders(
  cors: Readonly<CorsOptions>,
  origin: string | undefined,
  allowed: boolean,
): OutgoingHttpHeaders {
  const o = cors.origin;
  // A function that refuses (`cors` also asks it about a request without Origin, which
  // our functions never see) leaves the answer without CORS headers at all.
  if (o === false || (typeof o === "function" && (!allowed || origin === undefined))) return {};
  const headers: OutgoingHttpHeaders = {};
  if (o === undefined || o === "*") {
    headers["Access-Control-Allow-Origin"] = "*";
  } else {
    if (typeof o === "string") headers["Access-Control-Allow-Origin"] = o;
    else if (allowed && origin !== undefined) headers["Access-Control-Allow-Origin"] = origin;
    headers.Vary = "Origin";
  }
  if (cors.credentials === true) headers["Access-Control-Allow-Credentials"] = "true";
  if (cors.exposedHeaders !== undefined && cors.exposedHeaders.length > 0) {
    headers["Access-Control-Expose-Headers"] = cors.exposedHeaders.join(",");
  }
  return headers;
}

const ENTITY_TAG = /\s*(?:W\/)?("[^"]*"|\*)\s*(?:,|$)/y;

/**
 * Whether an If-None-Match value names `etag`, with the weak comparison RFC 9110 asks
 * for: `W/"v"` (as proxies that recompress send it) matches `"v"`, a list matches if any
 * member does, and `*` matches. socket.io accepts only a lone `"v"` or `W/"v"`.
 */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  ENTITY_TAG.lastIndex = 0;
  while (ENTITY_TAG.lastIndex < header.length) {
    const m = ENTITY_TAG.exec(header);
    if (m === null) return false; // Malformed: ignore the precondition.
    if (m[1] === etag || m[1] === "*") return true;
  }
  return false;
}

interface Weight {
  /** 1 for an exact name, 0 for `*`. */
  readonly s: number;
  readonly q: number;
  /** Position in the header. */
  readonly o: number;
}

/** Greater than 0 when `a` outranks `b`: higher q, then exact over `*`, then earlier. */
function outranks(a: Weight, b: Weight): number {
  return a.q - b.q || a.s - b.s || b.o - a.o;
}

/**
 * The coding for an Accept-Encoding value, chosen as socket.io's `accepts` does: highest
 * q first, then an exact name over `*`, then the header's order, then br, gzip, deflate.
 * Null when none is acceptable (or the header is absent): the identity form is sent.
 */
export function negotiateCoding(header: string | undefined): Coding | null {
  if (header === undefined || header === "") return null;
  const specs: { name: string; q: number }[] = [];
  for (const part of header.split(",")) {
    const [rawName = "", ...params] = part.split(";");
    const name = rawName.trim().toLowerCase();
    if (name === "") continue;
    let q = 1;
    for (const param of params) {
      const [k = "", v = ""] = param.split("=");
      if (k.trim().toLowerCase() === "q") q = Number.parseFloat(v);
    }
    specs.push({ name, q: Number.isNaN(q) ? 0 : q });
  }
  let best: Coding | null = null;
  let bestWeight: Weight | null = null;
  for (const coding of CODINGS) {
    // The spec that applies to this coding: an exact name over `*`, then the higher q.
    let weight: Weight | null = null;
    for (let o = 0; o < specs.length; o++) {
      const spec = specs[o] as { name: string; q: number };
      const s = spec.name === coding ? 1 : spec.name === "*" ? 0 : -1;
      if (s < 0) continue;
      if (weight === null || s > weight.s || (s === weight.s && spec.q > weight.q)) {
        weight = { s, q: spec.q, o };
      }
    }
    // CODINGS is in preference order, so only a strictly better weight displaces.
    if (weight === null || weight.q <= 0) continue;
    if (bestWeight === null || outranks(weight, bestWeight) > 0) {
      best = coding;
      bestWeight = weight;
    }
  }
  return best;
}
