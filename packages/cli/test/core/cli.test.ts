// The `switchyard` command end to end: spawned from source (`node --conditions=switchyard-source
// --import tsx packages/cli/src/main.ts …`), real socket.io-client, real signals.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, describe, test } from "node:test";
import {
  freePort,
  type ManagedProcess,
  makeTempDir,
  type RedisServer,
  startRedis,
  within,
} from "@switchyard/test-harness";
import { SignJWT } from "jose";
import { pino } from "pino";
import { type Socket as ClientSocket, io as ioc } from "socket.io-client";
import { installSignals } from "../../src/index.ts";
import { runCommand as run, ServeProcesses } from "../serve-process.ts";

const dir = makeTempDir("cli-e2e");
const servers = new ServeProcesses(3000);
const clients: ClientSocket[] = [];

after(() => dir.remove());
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await servers.stopAll();
});

function serve(args: readonly string[], port: number): Promise<ManagedProcess> {
  return servers.start({
    port,
    args,
    name: "switchyard serve",
    env: { SWITCHYARD_LOG_FORMAT: "json" },
  });
}

function connect(port: number, transports: string[] = ["websocket"]): Promise<ClientSocket> {
  const c = ioc(`http://127.0.0.1:${port}`, { reconnection: false, transports });
  clients.push(c);
  return within(
    new Promise((resolve, reject) => {
      c.once("connect", () => resolve(c));
      c.once("connect_error", reject);
    }),
    10_000,
    "client connect",
  );
}

describe("switchyard: commands and configuration errors", () => {
  test("--help, --version, no command, unknown command", async () => {
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: switchyard serve/);
    const version = await run(["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage:/);
    const unknown = await run(["serv"]);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, 'switchyard: unknown command "serv" (the command is "serve")\n');
  });

  test("a bad configuration fails with one line and status 2, never a stack trace", async () => {
    const file = join(dir.path, "typo.json");
    writeFileSync(file, JSON.stringify({ listen: { prot: 1 } }));
    const r = await run(["serve", "--config", file]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
    assert.match(
      r.stderr,
      /^switchyard: config: unknown key "listen\.prot" \(from file .*typo\.json\) — did you mean "listen\.port"\?\n$/,
    );
    const env = await run(["serve"], { SWITCHYARD_BUS: "redis//nope" });
    assert.equal(env.code, 2);
    assert.match(
      env.stderr,
      /^switchyard: config: "bus" \(from env SWITCHYARD_BUS\): expected "memory" or a URL/,
    );
    assert.doesNotMatch(env.stderr + env.stdout, /\n\s+at /);
  });

  test("--print-config: the effective configuration, secrets masked", async () => {
    const file = join(dir.path, "print.json");
    writeFileSync(file, JSON.stringify({ listen: { port: 1000 }, engine: { pingInterval: 1000 } }));
    const r = await run(
      [
        "serve",
        "-c",
        file,
        "--print-config",
        "--engine.ping-interval",
        "2000",
        "--forwarding.secret",
        "supersecretsupersecret",
      ],
      { SWITCHYARD_PORT: "2000", SWITCHYARD_BUS: "redis://:hunter22@127.0.0.1:6379" },
    );
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(printed.listen?.port, 2000);
    assert.equal(printed.engine?.pingInterval, 2000);
    assert.equal(printed.forwarding?.secret, "***");
    assert.equal(printed.bus, "redis://:***@127.0.0.1:6379");
    assert.doesNotMatch(r.stdout, /hunter22|supersecret/);
  });
});

describe("switchyard serve: run and drain", () => {
  test("serves clients; SIGTERM drains (clients see transport close) and exits 0", async () => {
    const port = await freePort();
    const p = await serve([], port);
    const c = await connect(port);
    const reason = new Promise<string>((resolve) => c.once("disconnect", (r) => resolve(r)));
    process.kill(p.pid, "SIGTERM");
    assert.equal(await within(reason, 10_000, "disconnect"), "transport close");
    const exit = await p.waitForExit(10_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    const lines = p
      .stdout()
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as { msg: string });
    const msgs = lines.map((l) => l.msg);
    assert.ok(msgs.includes(`switchyard listening on http://127.0.0.1:${port}`), msgs.join("|"));
    assert.ok(msgs.includes("signal received: draining"));
    assert.ok(msgs.includes("drained: exiting"));
  });

  test("--workers 2: polling and WebSocket clients across workers; SIGTERM exits 0", async () => {
    const port = await freePort();
    const p = await serve(["--workers", "2", "--shutdown-timeout", "5000"], port);
    await p.waitForOutput(/workers ready/, { timeoutMs: 30_000 });
    const ws = await Promise.all([1, 2, 3, 4].map(() => connect(port)));
    const polling = await Promise.all([1, 2, 3, 4].map(() => connect(port, ["polling"])));
    // Polling sessions connect only when their requests, spread round-robin over the
    // workers, reach the session's owner: the workers forward to each other.
    assert.equal(polling.filter((c) => c.connected).length, 4);
    const pids = new Set(
      p
        .stdout()
        .split("\n")
        .filter((l) => l.includes("listening"))
        .map((l) => (JSON.parse(l) as { pid: number }).pid),
    );
    assert.equal(pids.size, 2, "two workers listening");
    const reasons = (list: ClientSocket[]) =>
      Promise.all(
        list.map((c) => new Promise<string>((resolve) => c.once("disconnect", (r) => resolve(r)))),
      );
    const wsReasons = reasons(ws);
    const pollingReasons = reasons(polling);
    process.kill(p.pid, "SIGTERM");
    const exit = await p.waitForExit(15_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const r of await within(wsReasons, 10_000, "WebSocket disconnects")) {
      assert.equal(r, "transport close");
    }
    // A polling request forwarded through a worker that is exiting may fail first:
    // "transport error" is as reconnectable as "transport close" (never "io server disconnect").
    for (const r of await within(pollingReasons, 10_000, "polling disconnects")) {
      assert.ok(r === "transport close" || r === "transport error", r);
    }
  });
});

describe("switchyard serve: the areas are wired", () => {
  test("auth (JWT from env), limits and /metrics from one command", async () => {
    const port = await freePort();
    const secret = "0123456789abcdef0123456789abcdef";
    await servers.start({
      port,
      name: "switchyard serve (auth)",
      env: {
        SWITCHYARD_LOG_FORMAT: "json",
        SWITCHYARD_AUTH__JWT: JSON.stringify({ secret, algorithms: ["HS256"] }),
      },
    });
    // No token: refused with the stable code.
    const bare = ioc(`http://127.0.0.1:${port}`, {
      reconnection: false,
      transports: ["websocket"],
    });
    clients.push(bare);
    const err = await within(
      new Promise<Error & { data?: { code?: string } }>((resolve, reject) => {
        bare.once("connect", () => reject(new Error("connected without a token")));
        bare.once("connect_error", resolve);
      }),
      10_000,
      "refusal",
    );
    assert.equal(err.data?.code, "SY_ERR_AUTH_TOKEN_MISSING");
    // A valid token: connected, claims in socket.data are the server's business.
    const token = await new SignJWT({ sub: "u1" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(secret));
    const ok = ioc(`http://127.0.0.1:${port}`, {
      reconnection: false,
      transports: ["websocket"],
      auth: { token },
    });
    clients.push(ok);
    await within(
      new Promise<void>((resolve, reject) => {
        ok.once("connect", () => resolve());
        ok.once("connect_error", reject);
      }),
      10_000,
      "connect with a token",
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^switchyard_/m, "the metrics area answers on the shared port");
  });
});

describe("switchyard serve: API and dashboard wired", () => {
  test("a backend publishes over /api/v1 with a key; the dashboard refuses a wrong key", async () => {
    const port = await freePort();
    const apiKey = "backend-key-0123456789abcdef";
    const adminKey = "admin-key-0123456789abcdef";
    const file = join(dir.path, "api.json");
    writeFileSync(
      file,
      JSON.stringify({
        api: { keys: [{ name: "backend", key: apiKey, scopes: ["publish", "read"] }] },
        dashboard: { enabled: true, adminKey },
      }),
    );
    await serve(["-c", file], port);
    const base = `http://127.0.0.1:${port}`;
    const c = await connect(port);
    const got = new Promise<unknown>((resolve) => c.once("price", (x: unknown) => resolve(x)));
    const res = await fetch(`${base}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ event: "price", data: { symbol: "ACME", price: 12.5 } }),
    });
    assert.ok(res.status >= 200 && res.status < 300, `publish: ${res.status} ${await res.text()}`);
    assert.deepEqual(await within(got, 5000, "published event"), { symbol: "ACME", price: 12.5 });
    const bad = await fetch(`${base}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: "Bearer wrong", "content-type": "application/json" },
      body: JSON.stringify({ event: "price", data: 1 }),
    });
    assert.equal(bad.status, 401);
    await bad.text();
    const doc = await fetch(`${base}/api/v1/openapi.json`);
    assert.equal(((await doc.json()) as { openapi?: string }).openapi, "3.1.0");
    // The page is static; its data needs the admin key.
    const page = await fetch(`${base}/dashboard/api/snapshot`, {
      headers: { authorization: "Bearer nope" },
    });
    assert.equal(page.status, 401);
    await page.text();
    const snap = await fetch(`${base}/dashboard/api/snapshot`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.equal(snap.status, 200);
    await snap.json();
  });
});

describe("switchyard serve: workers over a broker", () => {
  let redis: RedisServer | undefined;
  after(async () => {
    await redis?.stop();
  });

  test("--workers 2 --bus redis://: an API publish reaches the clients of both workers", async () => {
    redis = await startRedis();
    const port = await freePort();
    const apiKey = "workers-key-0123456789abcdef";
    const p = await serve(
      [
        "--workers",
        "2",
        "--bus",
        redis.url,
        "--api.keys",
        JSON.stringify([{ name: "be", key: apiKey, scopes: ["publish"] }]),
      ],
      port,
    );
    await p.waitForOutput(/workers ready/, { timeoutMs: 30_000 });
    const cs = await Promise.all([1, 2, 3, 4, 5, 6].map(() => connect(port)));
    const got = cs.map((c) => new Promise<unknown>((resolve) => c.once("hello", resolve)));
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ event: "hello", data: "all" }),
    });
    assert.ok(res.status >= 200 && res.status < 300, `publish: ${res.status} ${await res.text()}`);
    assert.deepEqual(
      await within(Promise.all(got), 10_000, "every client"),
      cs.map(() => "all"),
    );
    const pids = new Set(
      p
        .stdout()
        .split("\n")
        .filter((l) => l.includes("listening"))
        .map((l) => (JSON.parse(l) as { pid: number; bus: string }).pid),
    );
    assert.equal(pids.size, 2, "two workers");
    assert.match(p.stdout(), /"bus":"redis:\/\/127\.0\.0\.1:\d+"/);
    process.kill(p.pid, "SIGTERM");
    assert.deepEqual(await p.waitForExit(15_000), { code: 0, signal: null });
  });
});

describe("signals", () => {
  test("a second signal exits at once with status 1", async () => {
    const codes: number[] = [];
    let exited: (code: number) => void = () => {};
    const first = new Promise<number>((resolve) => {
      exited = resolve;
    });
    const remove = installSignals(
      { drain: () => new Promise<boolean>(() => {}) },
      pino({ level: "silent" }),
      (code) => {
        codes.push(code);
        exited(code);
      },
    );
    try {
      process.kill(process.pid, "SIGTERM");
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(codes, [], "the first signal drains, it does not exit");
      process.kill(process.pid, "SIGINT");
      assert.equal(await within(first, 5000, "exit"), 1);
      assert.deepEqual(codes, [1]);
    } finally {
      remove();
    }
  });
});
