/**
 * Serves the browser bundle of the installed `socket.io-client` at `<path>/socket.io.js`
 * (and the min/esm variants and source maps), as socket.io's `serveClient` does, so
 * pages written for socket.io keep their `<script src="/socket.io/socket.io.js">`.
 */
import { createReadStream, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const FILES: Readonly<Record<string, string>> = {
  "socket.io.js": "socket.io.js",
  "socket.io.js.map": "socket.io.js.map",
  "socket.io.min.js": "socket.io.min.js",
  "socket.io.min.js.map": "socket.io.min.js.map",
  "socket.io.esm.min.js": "socket.io.esm.min.js",
  "socket.io.esm.min.js.map": "socket.io.esm.min.js.map",
  "socket.io.msgpack.min.js": "socket.io.msgpack.min.js",
  "socket.io.msgpack.min.js.map": "socket.io.msgpack.min.js.map",
};

let distDir: string | null | undefined;

function clientDist(): string | null {
  if (distDir === undefined) {
    try {
      const require = createRequire(import.meta.url);
      distDir = join(dirname(require.resolve("socket.io-client/package.json")), "dist");
    } catch {
      distDir = null;
    }
  }
  return distDir;
}

/** Returns true if the request was for a client file (answered, or 404 if not installed). */
export function serveClientFile(path: string, req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? "";
  if (!url.startsWith(`${path}/socket.io.`)) return false;
  const q = url.indexOf("?");
  const name = (q === -1 ? url : url.slice(0, q)).slice(path.length + 1);
  const file = FILES[name];
  if (file === undefined || req.method !== "GET") return false;
  const dir = clientDist();
  if (dir === null) {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("socket.io-client is not installed");
    return true;
  }
  const full = join(dir, file);
  let size: number;
  let mtime: Date;
  try {
    const st = statSync(full);
    size = st.size;
    mtime = st.mtime;
  } catch {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    return true;
  }
  const etag = `"${size.toString(16)}-${mtime.getTime().toString(16)}"`;
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, { ETag: etag }).end();
    return true;
  }
  res.writeHead(200, {
    "Content-Type": name.endsWith(".map")
      ? "application/json"
      : "application/javascript; charset=utf-8",
    "Content-Length": size,
    "Cache-Control": "public, max-age=0",
    ETag: etag,
  });
  createReadStream(full).pipe(res);
  return true;
}
