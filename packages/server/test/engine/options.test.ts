/**
 * Engine options: validation at construction, then the observable effect of each
 * option on the wire.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { gunzipSync, inflateSync } from "node:zlib";
import { Engine, type EngineOptions, InvalidOptionError } from "@switchyard/server";
import {
  assertEngineError,
  enginePath,
  nextSession,
  openClient,
  openWebSocket,
  parseOpen,
  poll,
  pollingHandshake,
  rawExchange,
  request,
  roundTrip,
  Scope,
  startEngine,
  upgradeRequest,
  waitFor,
} from "../helpers.js";

const scope = new Scope();
after(() => scope.close());

const POLLING = { EIO: "4", transport: "polling" };

describe("option validation", () => {
  const bad: [string, unknown][] = [
    ["pingInterval", -1],
    ["pingTimeout", "5"],
    ["maxHttpBufferSize", 1.5],
    ["maxBufferedBytes", 0],
    ["upgradeTimeout", Number.NaN],
    ["transports", []],
    ["transports", ["carrier-pigeon"]],
    ["path", "engine.io"],
    ["nodeId", "a~b"],
    ["allowUpgrades", "yes"],
    ["allowRequest", "always"],
    ["initialPacket", 42],
    ["cors", "*"],
    ["cookie", "io"],
    ["perMessageDeflate", "on"],
    ["httpCompression", { threshold: -1 }],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name} = ${JSON.stringify(value) ?? String(value)}`, () => {
      assert.throws(
        () => new Engine({ [name]: value } as EngineOptions),
        (err: unknown) =>
          err instanceof InvalidOptionError &&
          err.code === "SY_ERR_INVALID_OPTION" &&
          err.message.includes(`"${name}`),
      );
    });
  }

  it("names nested options", () => {
    const cases: [EngineOptions, string][] = [
      [{ cors: { origin: 5 } } as unknown as EngineOptions, "cors.origin"],
      [{ cors: { methods: "GET" } } as unknown as EngineOptions, "cors.methods"],
      [{ cookie: { sameSite: "bogus" } } as unknown as EngineOptions, "cookie.sameSite"],
      [{ cookie: { name: "a b" } }, "cookie.name"],
      [{ httpCompression: { threshold: 1.5 } }, "httpCompression.threshold"],
    ];
    for (const [opts, name] of cases) {
      assert.throws(
        () => new Engine(opts),
        (err: unknown) => err instanceof InvalidOptionError && err.message.includes(`"${name}"`),
        name,
      );
    }
  });

  it("freezes the resolved options", () => {
    const engine = new Engine({ pingInterval: 1000 });
    assert.ok(Object.isFrozen(engine.opts));
    assert.ok(Object.isFrozen(engine.opts.transports));
    assert.equal(engine.opts.pingInterval, 1000);
    assert.equal(engine.opts.pingTimeout, 20_000);
    engine.close();
  });
});

describe("transports and upgrades", () => {
  it('transports: ["websocket"] refuses polling with code 0 and accepts websocket', async () => {
    const { port, engine } = await startEngine(scope, { transports: ["websocket"] });
    assertEngineError(await request(port, enginePath(POLLING)), 400, 0);
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    parseOpen(String(await ws.next()));
    assert.equal(engine.clientsCount, 1);
  });

  it('transports: ["polling"] advertises and accepts no websocket', async () => {
    const { port, engine } = await startEngine(scope, { transports: ["polling"] });
    const hs = await pollingHandshake(port);
    assert.deepEqual(hs.upgrades, []);
    const answer = await rawExchange(
      scope,
      port,
      upgradeRequest(`EIO=4&transport=websocket&sid=${hs.sid}`),
    );
    assert.match(answer, /^HTTP\/1\.1 400 [\s\S]*"code":0/);
    assert.ok(engine.sessions.has(hs.sid));
  });

  it("allowUpgrades: false advertises no upgrade and refuses one", async () => {
    const { url, port, engine } = await startEngine(scope, { allowUpgrades: false });
    const hs = await pollingHandshake(port);
    assert.deepEqual(hs.upgrades, []);
    const answer = await rawExchange(
      scope,
      port,
      upgradeRequest(`EIO=4&transport=websocket&sid=${hs.sid}`),
    );
    assert.match(answer, /^HTTP\/1\.1 400 [\s\S]*"code":3/);
    assert.equal(engine.sessions.get(hs.sid)?.transport.name, "polling");
    // A real client simply stays on polling.
    const client = await openClient(scope, url);
    await roundTrip(client);
    assert.equal(client.transport.name, "polling");
    // A fresh websocket session is still fine.
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    parseOpen(String(await ws.next()));
  });
});

describe("cors", () => {
  const cors = {
    origin: ["https://good.example", /\.trusted\.example$/],
    credentials: true,
    maxAge: 600,
    allowedHeaders: ["x-token"],
    exposedHeaders: ["x-trace"],
  };

  it("answers preflights with 204 and the configured headers", async () => {
    const { port } = await startEngine(scope, { cors });
    const res = await request(port, enginePath(POLLING), {
      method: "OPTIONS",
      headers: { Origin: "https://good.example", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers["access-control-allow-origin"], "https://good.example");
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.equal(res.headers["access-control-allow-methods"], "GET,POST");
    assert.equal(res.headers["access-control-allow-headers"], "x-token");
    assert.equal(res.headers["access-control-max-age"], "600");
    assert.equal(res.headers.vary, "Origin");
  });

  it("reflects an allowed origin on polling responses", async () => {
    const { port } = await startEngine(scope, { cors });
    const res = await request(port, enginePath(POLLING), {
      headers: { Origin: "https://app.trusted.example" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], "https://app.trusted.example");
    assert.equal(res.headers["access-control-expose-headers"], "x-trace");
    const sid = parseOpen(res.body).sid;
    const posted = await poll(port, sid, {
      method: "POST",
      body: "4hi",
      headers: { Origin: "https://app.trusted.example" },
    });
    assert.equal(posted.status, 200);
    assert.equal(posted.headers["access-control-allow-origin"], "https://app.trusted.example");
  });

  it("refuses a disallowed origin with 403 on preflight, polling and websocket", async () => {
    const { port, engine } = await startEngine(scope, { cors });
    const evil = { Origin: "https://evil.example" };
    const pre = await request(port, enginePath(POLLING), { method: "OPTIONS", headers: evil });
    assertEngineError(pre, 403, 4);
    const hs = await request(port, enginePath(POLLING), { headers: evil });
    assertEngineError(hs, 403, 4);
    // The refusal must not tell the browser the evil origin may read it.
    assert.equal(hs.headers["access-control-allow-origin"], undefined);
    const upgrade = await rawExchange(
      scope,
      port,
      upgradeRequest("EIO=4&transport=websocket", ["Origin: https://evil.example"]),
    );
    assert.match(upgrade, /^HTTP\/1\.1 403 /);
    // An existing session cannot be reached from the evil origin either.
    const good = await pollingHandshake(port);
    assertEngineError(await poll(port, good.sid, { headers: evil }), 403, 4);
    const hijack = await rawExchange(
      scope,
      port,
      upgradeRequest(`EIO=4&transport=websocket&sid=${good.sid}`, ["Origin: https://evil.example"]),
    );
    assert.match(hijack, /^HTTP\/1\.1 403 /);
    assert.equal(engine.sessions.get(good.sid)?.transport.name, "polling");
    assert.equal(engine.stats.connectionErrors[4], 5);
    assert.equal(engine.clientsCount, 1);
  });

  it("accepts an origin function, and requests without Origin", async () => {
    const { port } = await startEngine(scope, {
      cors: { origin: (origin, cb) => cb(null, origin === "https://fn.example") },
    });
    const ok = await request(port, enginePath(POLLING), {
      headers: { Origin: "https://fn.example" },
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["access-control-allow-origin"], "https://fn.example");
    assertEngineError(
      await request(port, enginePath(POLLING), { headers: { Origin: "https://no.example" } }),
      403,
      4,
    );
    // Non-browser clients send no Origin; CORS is a browser protection.
    assert.equal((await request(port, enginePath(POLLING))).status, 200);
  });
});

describe("cookie", () => {
  it("sets the session cookie on the polling handshake only", async () => {
    const { port } = await startEngine(scope, { cookie: true });
    const res = await request(port, enginePath(POLLING));
    const sid = parseOpen(res.body).sid;
    assert.deepEqual(res.headers["set-cookie"], [
      `io=${encodeURIComponent(sid)}; Path=/; HttpOnly; SameSite=Lax`,
    ]);
    const next = await pollPostAndGet(port, sid);
    assert.equal(next.headers["set-cookie"], undefined);
  });

  it("honours custom cookie options", async () => {
    const { port } = await startEngine(scope, {
      cookie: {
        name: "lb",
        path: "/rt",
        httpOnly: false,
        sameSite: "none",
        secure: true,
        maxAge: 60,
      },
    });
    const res = await request(port, enginePath(POLLING));
    const sid = parseOpen(res.body).sid;
    assert.deepEqual(res.headers["set-cookie"], [
      `lb=${encodeURIComponent(sid)}; Path=/rt; SameSite=None; Secure; Max-Age=60`,
    ]);
  });

  async function pollPostAndGet(port: number, sid: string) {
    const posted = await poll(port, sid, { method: "POST", body: "4x" });
    assert.equal(posted.status, 200);
    return posted;
  }
});

describe("httpCompression", () => {
  async function pollWith(opts: EngineOptions, size: number, acceptEncoding?: string) {
    const { port, engine } = await startEngine(scope, opts, { echo: false });
    const session = nextSession(engine);
    const hs = await pollingHandshake(port);
    (await session).send("x".repeat(size));
    const headers: Record<string, string> =
      acceptEncoding === undefined ? {} : { "Accept-Encoding": acceptEncoding };
    return new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      // A raw request so the body is not decoded for us.
      import("node:http").then(({ get }) => {
        const req = get(
          {
            host: "127.0.0.1",
            port,
            path: enginePath({ ...POLLING, sid: hs.sid }),
            headers,
            agent: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () =>
              resolve({
                encoding: res.headers["content-encoding"],
                body: Buffer.concat(chunks),
              }),
            );
          },
        );
        req.on("error", reject);
      }, reject);
    });
  }

  it("gzips payloads above the threshold when the client accepts gzip", async () => {
    const res = await pollWith({ httpCompression: { threshold: 100 } }, 5000, "gzip, deflate");
    assert.equal(res.encoding, "gzip");
    assert.ok(res.body.length < 5000);
    assert.equal(gunzipSync(res.body).toString(), `4${"x".repeat(5000)}`);
  });

  it("uses deflate when only deflate is accepted", async () => {
    const res = await pollWith({ httpCompression: { threshold: 100 } }, 5000, "deflate");
    assert.equal(res.encoding, "deflate");
    assert.equal(inflateSync(res.body).toString(), `4${"x".repeat(5000)}`);
  });

  it("does not compress below the threshold, without Accept-Encoding, or when off", async () => {
    const small = await pollWith({ httpCompression: { threshold: 1000 } }, 50, "gzip");
    assert.equal(small.encoding, undefined);
    assert.equal(small.body.toString(), `4${"x".repeat(50)}`);
    const noAccept = await pollWith({ httpCompression: { threshold: 10 } }, 5000);
    assert.equal(noAccept.encoding, undefined);
    const refused = await pollWith(
      { httpCompression: { threshold: 10 } },
      5000,
      "gzip;q=0, identity",
    );
    assert.equal(refused.encoding, undefined);
    const refusedGzip = await pollWith(
      { httpCompression: { threshold: 10 } },
      5000,
      "gzip; q=0, *",
    );
    assert.equal(refusedGzip.encoding, "deflate");
    const off = await pollWith({ httpCompression: false }, 5000, "gzip");
    assert.equal(off.encoding, undefined);
    assert.equal(off.body.length, 5001);
  });
});

describe("perMessageDeflate", () => {
  it("negotiates the extension only when enabled", async () => {
    const on = await startEngine(scope, { perMessageDeflate: { threshold: 0 } });
    const a = await openWebSocket(scope, on.port, { EIO: "4", transport: "websocket" });
    assert.match(a.ws.extensions, /permessage-deflate/);
    parseOpen(String(await a.next()));
    const session = [...on.engine.sessions.values()][0]!;
    session.send("y".repeat(10_000));
    assert.equal(await a.next(), `4${"y".repeat(10_000)}`);

    const off = await startEngine(scope, {});
    const b = await openWebSocket(scope, off.port, { EIO: "4", transport: "websocket" });
    assert.equal(b.ws.extensions, "");
  });
});

describe("initialPacket", () => {
  it("follows the open packet on polling and websocket", async () => {
    const { port } = await startEngine(scope, { initialPacket: "welcome" });
    const res = await request(port, enginePath(POLLING));
    const [open, initial] = res.body.split("\x1e");
    parseOpen(open!);
    assert.equal(initial, "4welcome");
    const ws = await openWebSocket(scope, port, { EIO: "4", transport: "websocket" });
    parseOpen(String(await ws.next()));
    assert.equal(await ws.next(), "4welcome");
  });

  it("can be binary", async () => {
    const { url } = await startEngine(scope, { initialPacket: Buffer.from([1, 2, 3]) });
    for (const transport of ["websocket", "polling"] as const) {
      const got: unknown[] = [];
      await openClient(scope, url, { transports: [transport] }, (d) => got.push(d));
      await waitFor(() => got.length > 0, 3000, "the initial packet");
      assert.deepEqual(got, [Buffer.from([1, 2, 3])], transport);
    }
  });
});
