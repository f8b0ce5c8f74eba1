/**
 * Engine options: validation at construction, then the observable effect of each
 * option on the wire.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, describe, it } from "node:test";
import { gunzipSync, inflateSync } from "node:zlib";
import {
  attach,
  createAdapter,
  Emitter,
  Engine,
  type EngineOptions,
  InvalidOptionError,
  LocalHub,
  Server,
  type ServerOptions,
} from "@switchyard/server";
import { nearest } from "@switchyard/server/internal";
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

/** Asserts `fn` throws an InvalidOptionError with `code` whose message is exactly `message`. */
function refuses(fn: () => unknown, code: string, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidOptionError, `not an InvalidOptionError: ${String(err)}`);
    assert.equal(err.code, code);
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}
const UNKNOWN = "SY_ERR_UNKNOWN_OPTION";
const UNSUPPORTED = "SY_ERR_UNSUPPORTED_OPTION";

describe("unknown and unsupported option keys", () => {
  it("did-you-mean: typos find the nearest key, unrelated names find none", () => {
    const keys = ["pingInterval", "pingTimeout", "path", "cors", "maxHttpBufferSize"];
    assert.equal(nearest("pingIntervall", keys), "pingInterval");
    assert.equal(nearest("pinginterval", keys), "pingInterval");
    assert.equal(nearest("pingTiemout", keys), "pingTimeout"); // transposition: 1 edit
    assert.equal(nearest("maxHttpBufferSzie", keys), "maxHttpBufferSize");
    assert.equal(nearest("pth", keys), "path");
    assert.equal(nearest("port", keys), undefined);
    assert.equal(nearest("origin", keys), undefined);
    assert.equal(nearest("pingIntervalMillis", keys), "pingInterval"); // a prefix
    assert.equal(nearest("maxHttpBuffer", keys), "maxHttpBufferSize");
    assert.equal(nearest("ping", keys), undefined); // too short to guess from
    assert.equal(nearest("connectionStateRecovery", keys), undefined);
  });

  it("new Engine() / attach(): unknown key with a suggestion, or without one", () => {
    refuses(
      () => new Engine({ pingIntervall: 1000 } as EngineOptions),
      UNKNOWN,
      'unknown option "pingIntervall" — did you mean "pingInterval"?',
    );
    refuses(
      () => attach(createServer(), { maxHttpBuffer: 10 } as EngineOptions),
      UNKNOWN,
      'unknown option "maxHttpBuffer" — did you mean "maxHttpBufferSize"?',
    );
    refuses(() => new Engine({ port: 80 } as EngineOptions), UNKNOWN, 'unknown option "port"');
    // Server-layer options are unknown to a raw engine.
    refuses(
      () => new Engine({ connectTimeout: 5 } as EngineOptions),
      UNKNOWN,
      'unknown option "connectTimeout"',
    );
  });

  it("engine.io options Switchyard lacks: not supported yet, naming the option", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ allowEIO3: true }, "allowEIO3"],
      [{ wsEngine: class {} }, "wsEngine"],
      [{ destroyUpgrade: false }, "destroyUpgrade"],
      [{ destroyUpgradeTimeout: 500 }, "destroyUpgradeTimeout"],
      [{ transports: ["polling", "webtransport"] }, "transports"],
      [{ cors: () => {} }, "cors"],
      [{ cors: { origin: "*", preflightContinue: true } }, "cors.preflightContinue"],
      [{ cors: { optionsSuccessStatus: 200 } }, "cors.optionsSuccessStatus"],
      [{ cookie: { domain: "example.com" } }, "cookie.domain"],
      [{ cookie: { expires: new Date() } }, "cookie.expires"],
      [
        { perMessageDeflate: { threshold: 10, zlibDeflateOptions: {} } },
        "perMessageDeflate.zlibDeflateOptions",
      ],
      [{ httpCompression: { level: 9 } }, "httpCompression.level"],
    ];
    for (const [opts, name] of cases) {
      refuses(
        () => new Engine(opts as EngineOptions),
        UNSUPPORTED,
        new RegExp(`^option "${name.replace(".", "\\.")}" is not supported yet`),
      );
    }
  });

  it("values that ask for nothing Switchyard lacks are accepted", () => {
    const engine = new Engine({
      allowEIO3: false,
      wsEngine: undefined,
      cors: { origin: "*", preflightContinue: false, optionsSuccessStatus: 204 },
    } as EngineOptions);
    assert.equal(engine.opts.cors?.origin, "*");
    engine.close();
  });

  it("nested unknown keys are named with their path", () => {
    refuses(
      () => new Engine({ cors: { orgin: "*" } } as EngineOptions),
      UNKNOWN,
      'unknown option "cors.orgin" — did you mean "cors.origin"?',
    );
    refuses(
      () => new Engine({ cookie: { sameSit: "lax" } } as EngineOptions),
      UNKNOWN,
      'unknown option "cookie.sameSit" — did you mean "cookie.sameSite"?',
    );
  });

  it("new Server(): its own keys and the engine's pass, typos and socket.io extras are refused", async () => {
    refuses(
      () => new Server({ pingIntervall: 1000 } as ServerOptions),
      UNKNOWN,
      'unknown option "pingIntervall" — did you mean "pingInterval"?',
    );
    refuses(
      () => new Server({ conectTimeout: 1000 } as ServerOptions),
      UNKNOWN,
      'unknown option "conectTimeout" — did you mean "connectTimeout"?',
    );
    refuses(
      () => new Server(createServer(), { serveclient: false } as ServerOptions),
      UNKNOWN,
      'unknown option "serveclient" — did you mean "serveClient"?',
    );
    // Nested keys too (connectionStateRecovery is supported; its keys are checked).
    refuses(
      () =>
        new Server({
          connectionStateRecovery: { maxDisconectionDuration: 60_000 },
        } as ServerOptions),
      UNKNOWN,
      'unknown option "connectionStateRecovery.maxDisconectionDuration" — did you mean "connectionStateRecovery.maxDisconnectionDuration"?',
    );
    refuses(
      () => new Server(3000 as unknown as number, { allowEIO3: true } as ServerOptions),
      UNSUPPORTED,
      /^option "allowEIO3" is not supported yet: /,
    );
    // Server keys and engine keys together, on one object: accepted by both layers.
    const io = new Server({
      connectTimeout: 1000,
      serveClient: false,
      cleanupEmptyChildNamespaces: true,
      pingInterval: 1000,
      maxFragments: 100,
    });
    assert.equal(io.engine.opts.pingInterval, 1000);
    await io.close();
  });

  it("createAdapter() and Emitter refuse unknown keys too", async () => {
    const hub = new LocalHub();
    const bus = hub.bus();
    refuses(
      () => createAdapter(bus, { heartbeatIntervall: 100 } as object),
      UNKNOWN,
      'unknown option "heartbeatIntervall" — did you mean "heartbeatInterval"?',
    );
    refuses(
      () => createAdapter(bus, { key: "myapp" } as object),
      UNSUPPORTED,
      /^option "key" is not supported yet: /,
    );
    assert.equal(typeof createAdapter(bus, { key: "socket.io" } as object), "function");
    refuses(
      () => new Emitter(bus, { namespce: "/" } as object),
      UNKNOWN,
      'unknown option "namespce" — did you mean "namespace"?',
    );
    refuses(
      () => new Emitter(bus, { parser: {} } as object),
      UNSUPPORTED,
      /^option "parser" is not supported yet: /,
    );
    await bus.close();
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
