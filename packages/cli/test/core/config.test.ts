// The configuration of `switchyard serve`: file < env < flags, validation errors as one
// line naming key, origin and expectation (did-you-mean for typos), secrets masked.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { makeTempDir } from "@switchyard/test-harness";
import {
  CLI_VERSION,
  ConfigError,
  loadConfig,
  maskSecrets,
  validateConfig,
} from "../../src/index.ts";

const dir = makeTempDir("cli-config");
after(() => dir.remove());

function file(name: string, data: unknown): string {
  const p = join(dir.path, name);
  writeFileSync(p, typeof data === "string" ? data : JSON.stringify(data));
  return p;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

describe("config: sources and precedence", () => {
  test("defaults", () => {
    const c = loadConfig({ env: {} });
    assert.deepEqual(c.listen, { host: "0.0.0.0", port: 3000, path: "/socket.io" });
    assert.equal(c.bus, "memory");
    assert.equal(c.workers, 1);
    assert.deepEqual(c.namespaces.names, ["/"]);
    assert.equal(c.shutdown.timeout, 10_000);
    assert.equal(c.log.level, "info");
  });

  test("file < env < flags, key by key", () => {
    const f = file("prec.json", {
      listen: { port: 1111, host: "127.0.0.1" },
      engine: { pingInterval: 1000, pingTimeout: 2000 },
      bus: "redis://127.0.0.1:1",
    });
    const c = loadConfig({
      file: f,
      env: { SWITCHYARD_PORT: "2222", SWITCHYARD_ENGINE__PING_TIMEOUT: "3000" },
      flags: [
        ["port", "3333"],
        ["engine.ping-interval", "4000"],
      ],
    });
    assert.equal(c.listen.port, 3333, "flag beats env and file");
    assert.equal(c.listen.host, "127.0.0.1", "file value kept when nobody overrides it");
    assert.equal(c.engine.pingInterval, 4000, "flag beats file");
    assert.equal(c.engine.pingTimeout, 3000, "env beats file");
    assert.equal(c.bus, "redis://127.0.0.1:1");
  });

  test("SWITCHYARD_CONFIG names the file", () => {
    const f = file("envfile.json", { listen: { port: 4444 } });
    assert.equal(loadConfig({ env: { SWITCHYARD_CONFIG: f } }).listen.port, 4444);
  });

  test("env and flag values take the type the key expects", () => {
    const c = loadConfig({
      env: {
        SWITCHYARD_ENGINE__TRANSPORTS: "websocket",
        SWITCHYARD_ENGINE__ALLOW_UPGRADES: "false",
        SWITCHYARD_NAMESPACES__NAMES: "/,/chat",
        SWITCHYARD_FORWARDING__SECRET: "1234567890123456",
        SWITCHYARD_BUS: "amqp://guest:guest@127.0.0.1:5672",
      },
      flags: [["cors", '{"origin":["https://a.example"],"credentials":true}']],
    });
    assert.deepEqual(c.engine.transports, ["websocket"]);
    assert.equal(c.engine.allowUpgrades, false);
    assert.deepEqual(c.namespaces.names, ["/", "/chat"]);
    assert.equal(c.forwarding?.secret, "1234567890123456", "a numeric secret stays a string");
    assert.deepEqual(c.cors, { origin: ["https://a.example"], credentials: true });
  });

  test("variables the harness and runWorkers use are not configuration keys", () => {
    const c = loadConfig({
      env: {
        SWITCHYARD_HARNESS_TAG: "x",
        SWITCHYARD_WORKERS_SECRET: "y",
        SWITCHYARD_HOST_PREFIX: "z",
      },
    });
    assert.equal(c.listen.port, 3000);
  });
});

describe("config: errors are one line naming the key", () => {
  test("unknown key in the file: did-you-mean and the file", () => {
    const f = file("typo.json", { engine: { pingIntervall: 5 } });
    const msg = configError(() => loadConfig({ file: f, env: {} }));
    assert.match(msg, /unknown key "engine\.pingIntervall"/);
    assert.match(msg, /from file .*typo\.json/);
    assert.match(msg, /did you mean "engine\.pingInterval"\?/);
  });

  test("unknown top-level key from env: did-you-mean and the variable", () => {
    const msg = configError(() => loadConfig({ env: { SWITCHYARD_WORKER: "2" } }));
    assert.match(
      msg,
      /unknown key "worker" \(from env SWITCHYARD_WORKER\) — did you mean "workers"\?/,
    );
  });

  test("a key nothing resembles gets no suggestion", () => {
    const msg = configError(() => loadConfig({ env: {}, flags: [["zzzzzzzz", "1"]] }));
    assert.match(msg, /unknown key "zzzzzzzz" \(from flag --zzzzzzzz\)$/);
  });

  test("wrong type names the expectation and the value", () => {
    const msg = configError(() => loadConfig({ env: {}, flags: [["port", "abc"]] }));
    assert.equal(msg, 'config: "listen.port" (from flag --port): expected number, got "abc"');
  });

  test("out of range", () => {
    const msg = configError(() => loadConfig({ env: { SWITCHYARD_WORKERS: "0" } }));
    assert.match(msg, /"workers" \(from env SWITCHYARD_WORKERS\): expected .*>=1, got 0/);
    assert.match(
      configError(() => validateConfig({ listen: { port: 70000 } })),
      /"listen\.port"/,
    );
  });

  test("bad bus URL", () => {
    const msg = configError(() => loadConfig({ env: { SWITCHYARD_BUS: "http://x" } }));
    assert.match(
      msg,
      /"bus" \(from env SWITCHYARD_BUS\): expected "memory" or a URL starting with redis:\/\//,
    );
    assert.match(
      configError(() => validateConfig({ bus: "redis://" })),
      /"bus"/,
    );
  });

  test("enum, regex, secret length", () => {
    assert.match(
      configError(() => validateConfig({ log: { level: "verbose" } })),
      /"log\.level".*"info"/,
    );
    assert.match(
      configError(() => validateConfig({ namespaces: { pattern: "(" } })),
      /a valid regular expression/,
    );
    assert.match(
      configError(() => validateConfig({ listen: { path: "x" } })),
      /"listen\.path".*starting with \//,
    );
    assert.match(
      configError(() => validateConfig({ bus: "redis://h:1", forwarding: { secret: "short" } })),
      /"forwarding\.secret"/,
    );
  });

  test("cross-section rules", () => {
    assert.match(
      configError(() => validateConfig({ forwarding: { secret: "0123456789abcdef" } })),
      /"forwarding" needs a cluster/,
    );
    assert.match(
      configError(() => validateConfig({ workers: 2, listen: { port: 0 } })),
      /fixed port with "workers" above 1/,
    );
  });

  test("unreadable or malformed file", () => {
    assert.match(
      configError(() => loadConfig({ file: join(dir.path, "missing.json"), env: {} })),
      /ENOENT/,
    );
    assert.match(
      configError(() => loadConfig({ file: file("bad.json", "{ nope"), env: {} })),
      /not valid JSON/,
    );
    assert.match(
      configError(() => loadConfig({ file: file("arr.json", "[]"), env: {} })),
      /JSON object/,
    );
  });
});

describe("config: secrets masked", () => {
  test("secret-named keys and URL passwords", () => {
    const masked = maskSecrets({
      bus: "redis://user:hunter2@127.0.0.1:6379/0",
      forwarding: { secret: "0123456789abcdef" },
      auth: { jwt: { secret: "s3cr3t", publicKey: "-----BEGIN PUBLIC KEY-----" } },
      api: { keys: [{ key: "k1", scopes: ["publish"] }, "k2"] },
      dashboard: { adminKey: "admin" },
      listen: { port: 3000 },
    }) as Record<string, Record<string, unknown>>;
    const text = JSON.stringify(masked);
    for (const secret of ["hunter2", "0123456789abcdef", "s3cr3t", "k1", "k2", 'admin"']) {
      assert.ok(!text.includes(secret), `${secret} masked in ${text}`);
    }
    assert.equal(masked.bus, "redis://user:***@127.0.0.1:6379/0");
    assert.match(text, /BEGIN PUBLIC KEY/, "public keys are not secrets");
    assert.match(text, /"scopes":\["publish"\]/);
    assert.equal(masked.listen?.port, 3000);
  });
});

test("CLI_VERSION is package.json's", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  assert.equal(CLI_VERSION, pkg.version);
});
