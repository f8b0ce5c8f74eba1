/**
 * The browser bundle at `<path>/socket.io.js` and its variants, side by side with the real
 * socket.io 4.8: same request to both servers, same status, types, ETag, codings and CORS
 * headers, and bodies that decompress to the installed client's bytes. Also where the
 * client is looked up (the application first) and what a missing client answers.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import {
  createServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
} from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { type CorsOptions, Server, type ServerOptions } from "@switchyard/server";
import { Server as SioServer } from "socket.io";
import {
  applicationBases,
  CLIENT_FILES,
  ClientBundle,
  matchesEtag,
  NOT_INSTALLED,
  negotiateCoding,
  serveClientFile,
} from "../../src/http/serve-client.js";
import { closeServer, HOST, portOf, Scope } from "../helpers.js";

const scope = new Scope();
afterEach(() => scope.close());

const require = createRequire(import.meta.url);
const clientDir = dirname(require.resolve("socket.io-client/package.json"));
const clientVersion = (require("socket.io-client/package.json") as { version: string }).version;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One raw request (no keep-alive, no automatic decompression). */
function get(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest({ host: HOST, port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path} got no answer`)));
    req.on("error", reject);
    req.end();
  });
}

function decoded(a: Answer): Buffer {
  switch (a.headers["content-encoding"]) {
    case undefined:
      return a.body;
    case "br":
      return brotliDecompressSync(a.body);
    case "gzip":
      return gunzipSync(a.body);
    case "deflate":
      return inflateSync(a.body);
    default:
      throw new Error(`unexpected coding ${a.headers["content-encoding"]}`);
  }
}

function listen(server: HttpServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, HOST, () => resolve(portOf(server))));
}

const app = (_req: unknown, res: import("node:http").ServerResponse) =>
  res.writeHead(299, { "Content-Type": "text/plain" }).end("app");

/** Our Server and socket.io's, each on its own port, with the same options and app. */
async function both(
  opts: ServerOptions & { cors?: CorsOptions },
  withApp = false,
): Promise<{ ours: number; theirs: number }> {
  const ourHttp = withApp ? createServer(app) : createServer();
  const io = new Server(ourHttp, opts);
  scope.add(io, async (s) => {
    ourHttp.closeAllConnections();
    await s.close();
  });
  const theirHttp = withApp ? createServer(app) : createServer();
  const sio = new SioServer(theirHttp, opts as ConstructorParameters<typeof SioServer>[1]);
  scope.add(sio, async (s) => {
    theirHttp.closeAllConnections();
    await s.close();
  });
  return { ours: await listen(ourHttp), theirs: await listen(theirHttp) };
}

/** The headers both servers must agree on. */
function comparable(a: Answer): Record<string, string | undefined> {
  const h = a.headers;
  return {
    status: String(a.status),
    "content-type": h["content-type"],
    etag: h.etag,
    "cache-control": h["cache-control"],
    "content-encoding": h["content-encoding"],
    "access-control-allow-origin": h["access-control-allow-origin"],
    "access-control-allow-credentials": h["access-control-allow-credentials"],
    "access-control-expose-headers": h["access-control-expose-headers"],
    // socket.io does not say that the body depends on Accept-Encoding; we do.
    vary: h.vary?.replace(/,?\s*Accept-Encoding$/, "") || undefined,
  };
}

describe("the client bundle, side by side with socket.io 4.8", () => {
  it("serves every client file with the same headers, identity and compressed", async () => {
    const { ours, theirs } = await both({});
    for (const name of CLIENT_FILES) {
      const original = readFileSync(join(clientDir, "dist", name));
      for (const accept of ["", "gzip, deflate, br"]) {
        const path = `/socket.io/${name}`;
        const headers: Record<string, string> = accept === "" ? {} : { "Accept-Encoding": accept };
        const [a, b] = await Promise.all([get(ours, path, headers), get(theirs, path, headers)]);
        assert.deepEqual(comparable(a), comparable(b), `${name} with "${accept}"`);
        assert.equal(a.status, 200);
        assert.equal(a.headers.etag, `"${clientVersion}"`);
        assert.equal(a.headers.vary, "Accept-Encoding");
        assert.equal(
          a.headers["content-type"],
          name.endsWith(".map")
            ? "application/json; charset=utf-8"
            : "application/javascript; charset=utf-8",
        );
        assert.ok(decoded(a).equals(original), `${name}: our body is the installed file`);
        assert.ok(decoded(b).equals(original), `${name}: theirs is the same file`);
        assert.equal(Number(a.headers["content-length"]), a.body.length);
      }
    }
  });

  it("negotiates Accept-Encoding as socket.io does", async () => {
    const { ours, theirs } = await both({});
    const original = readFileSync(join(clientDir, "dist", "socket.io.min.js"));
    for (const accept of [
      "gzip",
      "br",
      "deflate",
      "gzip, deflate, br, zstd",
      "br, gzip",
      "br;q=0.5, gzip",
      "gzip;q=0, deflate",
      "*",
      "*;q=0.5, gzip;q=0.4",
      "identity",
      "zstd",
      "br;q=0",
    ]) {
      const headers = { "Accept-Encoding": accept };
      const [a, b] = await Promise.all([
        get(ours, "/socket.io/socket.io.min.js?v=1", headers),
        get(theirs, "/socket.io/socket.io.min.js?v=1", headers),
      ]);
      assert.equal(a.headers["content-encoding"], b.headers["content-encoding"], accept);
      assert.ok(decoded(a).equals(original), accept);
    }
  });

  it("answers If-None-Match with 304 for the strong and the weak validator", async () => {
    const { ours, theirs } = await both({});
    const path = "/socket.io/socket.io.js";
    for (const inm of [`"${clientVersion}"`, `W/"${clientVersion}"`]) {
      const [a, b] = await Promise.all([
        get(ours, path, { "If-None-Match": inm }),
        get(theirs, path, { "If-None-Match": inm }),
      ]);
      assert.equal(a.status, 304, inm);
      assert.equal(b.status, 304, inm);
      assert.equal(a.body.length, 0);
      // RFC 9110 asks a 304 to carry the ETag; socket.io sends none.
      assert.equal(a.headers.etag, `"${clientVersion}"`);
    }
    for (const inm of ['"0.0.1"', `"${clientVersion}-x"`, "garbage"]) {
      const [a, b] = await Promise.all([
        get(ours, path, { "If-None-Match": inm }),
        get(theirs, path, { "If-None-Match": inm }),
      ]);
      assert.equal(a.status, 200, inm);
      assert.equal(b.status, 200, inm);
    }
    // Lists and `*` (RFC 9110 §13.1.2), which socket.io answers with the whole file.
    for (const inm of [`"a", W/"${clientVersion}"`, `W/"x",   "${clientVersion}"`, "*"]) {
      assert.equal((await get(ours, path, { "If-None-Match": inm })).status, 304, inm);
    }
  });

  it("puts the same CORS headers on the bundle", async () => {
    const cases: CorsOptions[] = [
      {},
      { origin: "*" },
      { origin: "https://app.example" },
      { origin: ["https://app.example"], credentials: true, exposedHeaders: ["X-A", "X-B"] },
      { origin: /\.example$/ },
      { origin: true },
      { origin: false },
      { origin: (o, cb) => cb(null, o === "https://app.example") },
    ];
    for (const cors of cases) {
      const { ours, theirs } = await both({ cors });
      for (const origin of [undefined, "https://app.example", "https://evil.test"]) {
        const headers: Record<string, string> = { "Accept-Encoding": "gzip" };
        if (origin !== undefined) headers.Origin = origin;
        const [a, b] = await Promise.all([
          get(ours, "/socket.io/socket.io.esm.min.js", headers),
          get(theirs, "/socket.io/socket.io.esm.min.js", headers),
        ]);
        assert.deepEqual(
          comparable(a),
          comparable(b),
          `cors ${JSON.stringify(cors)} (origin ${String(cors.origin)}), Origin: ${origin}`,
        );
      }
    }
  });

  it("with serveClient: false, hands client paths to the engine, as socket.io does", async () => {
    const { ours, theirs } = await both({ serveClient: false }, true);
    for (const path of ["/socket.io/socket.io.js", "/socket.io/socket.io.min.js.map"]) {
      const [a, b] = await Promise.all([get(ours, path), get(theirs, path)]);
      assert.equal(a.status, 400, path);
      assert.equal(a.status, b.status, path);
      assert.equal(a.body.toString(), b.body.toString(), path);
      assert.equal(a.body.toString(), '{"code":0,"message":"Transport unknown"}');
    }
  });

  it("leaves other names under the path to the engine, and HEAD gets the headers", async () => {
    const { ours, theirs } = await both({}, true);
    for (const path of [
      "/socket.io/socket.io.jsx",
      "/socket.io/socket.io.mjs",
      "/socket.io/x.js",
    ]) {
      const [a, b] = await Promise.all([get(ours, path), get(theirs, path)]);
      assert.equal(a.status, 400, path);
      assert.equal(a.status, b.status, path);
    }
    const [a, b] = await Promise.all([
      get(ours, "/socket.io/socket.io.js", {}, "HEAD"),
      get(theirs, "/socket.io/socket.io.js", {}, "HEAD"),
    ]);
    assert.deepEqual(comparable(a), comparable(b));
    assert.equal(a.body.length, 0);
  });
});

describe("the Engine.IO path is a prefix", () => {
  const urls = [
    "/socket.io",
    "/socket.io/",
    "/socket.io/x",
    "/socket.io/x/y?z=1",
    "/socket.iox",
    "/socket.io.js",
    "/socket.io?EIO=4&transport=polling",
    "/socket.io/?EIO=4&transport=polling",
    "/other",
  ];

  for (const serveClient of [true, false]) {
    it(`routes like socket.io (serveClient: ${serveClient})`, async () => {
      const { ours, theirs } = await both({ serveClient }, true);
      for (const url of urls) {
        const [a, b] = await Promise.all([get(ours, url), get(theirs, url)]);
        assert.equal(a.status, b.status, url);
        if (a.status !== 200) assert.equal(a.body.toString(), b.body.toString(), url);
        else assert.match(a.body.toString(), /^0\{"sid"/, url);
      }
      assert.equal((await get(ours, "/socket.io/x")).status, 400);
      assert.equal((await get(ours, "/socket.io")).status, 299);
    });
  }

  it("with addTrailingSlash: false also serves the bare path, as engine.io does", async () => {
    const { ours, theirs } = await both({ addTrailingSlash: false }, true);
    for (const url of [
      "/socket.io",
      "/socket.io?EIO=4&transport=polling",
      "/socket.io/?EIO=4&transport=polling",
      "/socket.io/x",
      "/other",
    ]) {
      const [a, b] = await Promise.all([get(ours, url), get(theirs, url)]);
      assert.equal(a.status, b.status, url);
    }
    assert.equal((await get(ours, "/socket.io?EIO=4&transport=polling")).status, 200);
    // engine.io compares a raw string prefix here, so `/socket.iox` and `/socket.io.js`
    // are its too; we keep them the app's (a deliberate difference).
    for (const url of ["/socket.iox", "/socket.io.js"]) {
      assert.equal((await get(theirs, url)).status, 400, url);
      assert.equal((await get(ours, url)).status, 299, url);
    }
  });
});

describe("where the client comes from", () => {
  function fakeApp(version: string): string {
    const dir = mkdtempSync(join(tmpdir(), "switchyard-app-"));
    scope.add(dir, (d) => rmSync(d, { recursive: true, force: true }));
    const pkg = join(dir, "node_modules", "socket.io-client");
    mkdirSync(join(pkg, "dist"), { recursive: true });
    writeFileSync(
      join(pkg, "package.json"),
      JSON.stringify({
        name: "socket.io-client",
        version,
        exports: { "./package.json": "./package.json" },
      }),
    );
    writeFileSync(join(pkg, "dist", "socket.io.js"), `/* the app's client ${version} */`);
    return dir;
  }

  async function serve(bundle: ClientBundle): Promise<number> {
    const server = createServer((req, res) => {
      if (!serveClientFile("/socket.io", req, res, undefined, bundle)) res.writeHead(418).end();
    });
    scope.add(server, (s) => closeServer(s));
    return listen(server);
  }

  it("prefers the application's socket.io-client to the one next to the library", async () => {
    const dir = fakeApp("9.9.9-app");
    const bundle = new ClientBundle([join(dir, "main.js"), import.meta.url]);
    assert.equal(bundle.version, "9.9.9-app");
    const port = await serve(bundle);
    const js = await get(port, "/socket.io/socket.io.js");
    assert.equal(js.status, 200);
    assert.equal(js.headers.etag, '"9.9.9-app"');
    assert.equal(js.body.toString(), "/* the app's client 9.9.9-app */");
    // A file this (old) client does not ship: a 404 that names the version.
    const esm = await get(port, "/socket.io/socket.io.esm.min.js");
    assert.equal(esm.status, 404);
    assert.equal(
      esm.body.toString(),
      "socket.io-client 9.9.9-app has no dist/socket.io.esm.min.js",
    );
    // Our own location is the fallback.
    const ownOnly = new ClientBundle([join(tmpdir(), "no-such-app", "main.js"), import.meta.url]);
    assert.equal(ownOnly.version, clientVersion);
  });

  it("looks in the main script's directory, then the working directory, then its own", () => {
    const bases = applicationBases();
    assert.equal(bases[0], process.argv[1]);
    assert.equal(bases[1], join(process.cwd(), "noop.js"));
    assert.match(bases[2] ?? "", /^file:.*serve-client\.ts$/);
  });

  it("a real application's server serves the client installed beside it", async () => {
    const dir = fakeApp("9.9.9-main");
    const main = join(dir, "main.mjs");
    writeFileSync(
      main,
      `import { createServer } from "node:http";
const { Server } = await import(process.env.SY_SERVER);
const http = createServer();
new Server(http);
http.listen(0, "127.0.0.1", () => console.log(http.address().port));
`,
    );
    const tsx = import.meta.resolve("tsx");
    const child = spawn(
      process.execPath,
      ["--conditions=switchyard-source", "--import", tsx, main],
      {
        cwd: dir,
        env: {
          ...process.env,
          SY_SERVER: new URL("../../src/index.ts", import.meta.url).href,
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    scope.add(child, (c) => {
      c.kill();
    });
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(Number(out.trim()));
      });
      child.once("exit", (code) => reject(new Error(`app exited with ${code}`)));
    });
    const js = await get(port, "/socket.io/socket.io.js", { "Accept-Encoding": "br" });
    assert.equal(js.status, 200);
    assert.equal(js.headers.etag, '"9.9.9-main"');
    assert.equal(decoded(js).toString(), "/* the app's client 9.9.9-main */");
  });

  it("answers 404 with the fix when no socket.io-client is installed", async () => {
    const empty = mkdtempSync(join(tmpdir(), "switchyard-empty-"));
    scope.add(empty, (d) => rmSync(d, { recursive: true, force: true }));
    const bundle = new ClientBundle([join(empty, "main.js")]);
    assert.equal(bundle.dir, null);
    const port = await serve(bundle);
    const res = await get(port, "/socket.io/socket.io.min.js");
    assert.equal(res.status, 404);
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.body.toString(), NOT_INSTALLED);
    assert.match(NOT_INSTALLED, /npm install socket\.io-client/);
    assert.match(NOT_INSTALLED, /serveClient: false/);
  });

  it("reads and compresses each file once", async () => {
    const bundle = new ClientBundle([import.meta.url]);
    assert.equal(bundle.file("socket.io.js"), bundle.file("socket.io.js"));
    const gz = bundle.compressed("socket.io.js", "gzip");
    assert.equal(bundle.compressed("socket.io.js", "gzip"), gz);
    assert.ok(
      gunzipSync(await (gz as Promise<Buffer>)).equals(bundle.file("socket.io.js") as Buffer),
    );
    assert.equal(bundle.file("package.json"), null, "only the client files are readable");
  });
});

describe("header parsing", () => {
  it("matchesEtag: weak comparison over lists", () => {
    const e = '"4.8.4"';
    assert.equal(matchesEtag(undefined, e), false);
    assert.equal(matchesEtag('"4.8.4"', e), true);
    assert.equal(matchesEtag('W/"4.8.4"', e), true);
    assert.equal(matchesEtag(' "x" , W/"4.8.4"', e), true);
    assert.equal(matchesEtag('"x", "y"', e), false);
    assert.equal(matchesEtag("*", e), true);
    assert.equal(matchesEtag("4.8.4", e), false);
    assert.equal(matchesEtag('"4.8.4', e), false);
  });

  it("negotiateCoding: q, exact over wildcard, header order, then br/gzip/deflate", () => {
    assert.equal(negotiateCoding(undefined), null);
    assert.equal(negotiateCoding("identity"), null);
    assert.equal(negotiateCoding("gzip, br"), "gzip");
    assert.equal(negotiateCoding("br;q=0.9, gzip"), "gzip");
    assert.equal(negotiateCoding("*"), "br");
    assert.equal(negotiateCoding("*, gzip;q=0"), "br");
    assert.equal(negotiateCoding("*;q=0, deflate"), "deflate");
    assert.equal(negotiateCoding("GZIP"), "gzip");
    assert.equal(negotiateCoding("br;q=0"), null);
  });
});
