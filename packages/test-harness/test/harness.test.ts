import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, type TestContext, test } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import {
  amqpHandshake,
  chromiumProcesses,
  findProcesses,
  freePort,
  freePorts,
  isPortOpen,
  launchChromium,
  MissingDependencyError,
  type ProcessInfo,
  type ProxyServer,
  redisCommand,
  redisPing,
  requireBinary,
  runPython,
  type ServiceControl,
  startHaproxy,
  startNginx,
  startProcess,
  startRabbitMQ,
  startRedis,
  waitFor,
} from "../src/index.js";

const FIXTURE = new URL("./fixtures/leaky.ts", import.meta.url).pathname;

/** Live (non-zombie) processes whose `ps` command line contains `needle`. */
function psMatching(needle: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid=,stat=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((line) => line.includes(needle) && !/^\s*\d+\s+Z/.test(line))
    .filter((line) => !line.includes(`ps -eo`));
}

function describeProcs(procs: ProcessInfo[]): string {
  return procs.map((p) => `${p.pid} ${p.cmdline}`).join("\n");
}

async function assertGone(service: ServiceControl, ports: number[], psNeedle: string) {
  assert.deepEqual(describeProcs(service.leftovers()), "", "no process of the instance left");
  assert.deepEqual(psMatching(psNeedle), [], `ps shows nothing matching ${psNeedle}`);
  for (const port of ports) assert.equal(await isPortOpen(port), false, `port ${port} closed`);
  assert.equal(existsSync(service.dir), false, "temp dir removed");
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers, timeout: 5000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** A tiny upstream: answers HTTP with its name and echoes WebSocket messages as `name:msg`. */
async function startUpstream(name: string): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((_req, res) => res.end(name));
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => ws.on("message", (data) => ws.send(`${name}:${String(data)}`)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function wsEcho(url: string, message: string): Promise<string> {
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const reply = new Promise<string>((resolve, reject) => {
      ws.once("message", (data) => resolve(String(data)));
      ws.once("error", reject);
    });
    ws.send(message);
    return await reply;
  } finally {
    ws.terminate();
  }
}

/** Runs `fn` and reports its duration as a test diagnostic (start times are part of the report). */
function timed<T>(t: TestContext, label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  return fn().finally(() => t.diagnostic(`${label}: ${Date.now() - started} ms`));
}

describe("ports", () => {
  test("freePorts returns distinct closed ports", async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    for (const port of ports) assert.equal(await isPortOpen(port), false);
    assert.ok((await freePort()) > 0);
  });
});

describe("managed processes", () => {
  test("stop() ends the whole process group", async (t) => {
    const child = await startProcess({
      command: "sh",
      // "started" only once both sleeps are forked, so the group is complete when we look.
      args: ["-c", "sleep 300 & sleep 300 & echo started; wait"],
    });
    t.after(() => child.kill());
    await child.waitForOutput("started");
    assert.ok(child.leftovers().length >= 3, describeProcs(child.leftovers()));
    const exit = await child.stop({ graceMs: 2000 });
    assert.equal(exit.signal, "SIGTERM");
    assert.equal(describeProcs(child.leftovers()), "");
  });

  test("readiness failures quote the last output", async () => {
    await assert.rejects(
      startProcess({
        command: "sh",
        args: ["-c", "echo about-to-die >&2; exit 7"],
        ready: () => false,
      }),
      /exited \(code 7\).*\n--- last output ---\nabout-to-die/s,
    );
    await assert.rejects(
      startProcess({
        command: "sh",
        args: ["-c", "echo never-ready; sleep 300"],
        ready: () => {
          throw new Error("probe says no");
        },
        readyTimeoutMs: 300,
      }),
      /not ready after 300 ms \(last probe error: probe says no\).*never-ready/s,
    );
  });

  for (const mode of ["throw", "exit", "signal"] as const) {
    test(`children are killed when the test process dies (${mode})`, async () => {
      // Same loader flags as scripts/test.mjs: sibling packages resolve to their sources,
      // so this passes on a fresh clone without a build.
      const node = spawn(
        process.execPath,
        ["--conditions=switchyard-source", "--import", "tsx", FIXTURE, mode],
        {
          stdio: ["pipe", "pipe", "pipe"],
        },
      );
      let stdout = "";
      let stderr = "";
      node.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk;
      });
      const info = await new Promise<{ pid: number; tag: string }>((resolve, reject) => {
        node.stdout.on("data", (chunk: Buffer) => {
          stdout += chunk;
          const line = stdout.split("\n")[0];
          if (stdout.includes("\n") && line !== undefined) resolve(JSON.parse(line));
        });
        node.once("exit", () => reject(new Error(`fixture exited early: ${stdout}${stderr}`)));
      });
      assert.ok(findProcesses({ tag: info.tag }).length > 0, "fixture started its tree");
      if (mode === "signal") node.kill("SIGTERM");
      else node.stdin.write("go\n");
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => {
        if (node.exitCode !== null || node.signalCode !== null) {
          resolve([node.exitCode, node.signalCode]);
        } else node.once("exit", (c, s) => resolve([c, s]));
      });
      if (mode === "signal") assert.equal(signal, "SIGTERM");
      else assert.equal(code, mode === "exit" ? 3 : 1, stderr);
      // The tree was sent SIGKILL as the fixture died; under load the kernel may take a
      // moment to tear it down. Bounded wait, then the same assertion.
      await waitFor(() => findProcesses({ tag: info.tag }).length === 0, 5000).catch(() => {});
      assert.equal(describeProcs(findProcesses({ tag: info.tag })), "");
    });
  }
});

describe("redis", () => {
  test("start, ping, restart on the same port, kill, stop without leftovers", async (t) => {
    const redis = await timed(t, "redis start", () => startRedis());
    t.after(() => redis.stop());
    assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
    assert.equal(await redisPing(redis.port), true);
    assert.equal(await redisCommand(redis.port, ["SET", "k", "v"]), "OK");
    assert.equal(await redisCommand(redis.port, ["GET", "k"]), "v");
    await assert.rejects(redisCommand(redis.port, ["NOPE"]), /unknown command/);

    const firstPid = redis.process?.pid;
    await timed(t, "redis restart", () => redis.restart());
    assert.notEqual(redis.process?.pid, firstPid);
    assert.equal(await redisPing(redis.port), true);

    await redis.kill();
    assert.equal(await isPortOpen(redis.port), false);
    assert.equal(redis.leftovers().length, 0);
    assert.ok(existsSync(redis.dir), "kill() keeps the data dir");
    await redis.restart();
    assert.equal(await redisPing(redis.port), true);

    await redis.stop();
    await assertGone(redis, [redis.port], `127.0.0.1:${redis.port}`);
  });
});

describe("rabbitmq", () => {
  test("start, AMQP handshake, restart on the same port, kill + restart, stop without leftovers", async (t) => {
    const rabbit = await timed(t, "rabbitmq start", () => startRabbitMQ());
    t.after(() => rabbit.stop());
    assert.equal(rabbit.url, `amqp://guest:guest@127.0.0.1:${rabbit.port}`);
    assert.equal(await amqpHandshake(rabbit.port), true);
    const comms = rabbit.leftovers().map((p) => p.comm);
    assert.ok(comms.includes("beam.smp") && comms.includes("epmd"), comms.join(","));
    if (process.getuid?.() === 0) {
      const beam = rabbit.leftovers().find((p) => p.comm === "beam.smp")!;
      const owner = execFileSync("ps", ["-o", "user=", "-p", String(beam.pid)], {
        encoding: "utf8",
      });
      assert.equal(owner.trim(), "rabbitmq");
    }

    await timed(t, "rabbitmq restart", () => rabbit.restart());
    assert.equal(await amqpHandshake(rabbit.port), true);

    await rabbit.kill();
    assert.equal(describeProcs(rabbit.leftovers()), "", "kill() leaves no beam/epmd behind");
    assert.equal(await isPortOpen(rabbit.port), false);
    await timed(t, "rabbitmq restart after kill", () => rabbit.restart());
    assert.equal(await amqpHandshake(rabbit.port), true);

    await timed(t, "rabbitmq stop", () => rabbit.stop());
    await assertGone(rabbit, [rabbit.port, rabbit.distPort, rabbit.epmdPort], rabbit.nodeName);
  });
});

describe("proxies", () => {
  const upstreams: { port: number; close(): Promise<void> }[] = [];
  after(() => Promise.all(upstreams.map((u) => u.close())));

  async function twoUpstreams() {
    if (upstreams.length === 0) {
      upstreams.push(await startUpstream("a"), await startUpstream("b"));
    }
    return upstreams.map((u) => ({ port: u.port }));
  }

  async function names(proxy: ProxyServer, n: number, headers: Record<string, string> = {}) {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const reply = await get(`${proxy.url}/`, headers);
      assert.equal(reply.status, 200);
      out.push(reply.body);
    }
    return out.sort().join("");
  }

  test("nginx round-robin proxies HTTP and WebSocket, then stops cleanly", async (t) => {
    const nginx = await timed(t, "nginx start", async () =>
      startNginx({ upstreams: await twoUpstreams(), mode: "round-robin", websocket: true }),
    );
    t.after(() => nginx.stop());
    assert.equal(await names(nginx, 4), "aabb");
    assert.match(await wsEcho(`ws://127.0.0.1:${nginx.port}/ws`, "hi"), /^[ab]:hi$/);
    await nginx.stop();
    await assertGone(nginx, [nginx.port], nginx.dir);
  });

  test("nginx ip_hash pins a client to one upstream", async (t) => {
    const nginx = await startNginx({ upstreams: await twoUpstreams(), mode: "ip_hash" });
    t.after(() => nginx.stop());
    assert.match(await names(nginx, 4), /^(aaaa|bbbb)$/);
  });

  test("haproxy roundrobin proxies HTTP and WebSocket, then stops cleanly", async (t) => {
    const haproxy = await timed(t, "haproxy start", async () =>
      startHaproxy({ backends: await twoUpstreams(), balance: "roundrobin" }),
    );
    t.after(() => haproxy.stop());
    assert.equal(await names(haproxy, 4), "aabb");
    assert.match(await wsEcho(`ws://127.0.0.1:${haproxy.port}/ws`, "hi"), /^[ab]:hi$/);
    await haproxy.stop();
    await assertGone(haproxy, [haproxy.port], haproxy.dir);
  });

  test("haproxy cookie stickiness", async (t) => {
    const haproxy = await startHaproxy({ backends: await twoUpstreams(), cookie: true });
    t.after(() => haproxy.stop());
    const first = await get(`${haproxy.url}/`);
    const cookie = first.headers["set-cookie"]?.[0]?.split(";")[0];
    assert.match(cookie ?? "", /^SERVERID=s[01]$/);
    assert.equal(await names(haproxy, 4, { cookie: cookie! }), first.body.repeat(4));
  });
});

describe("python", () => {
  const dir = mkdtempSync(join(tmpdir(), "switchyard-harness-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("runPython runs /usr/bin/python3 with python3-socketio", async () => {
    const script = join(dir, "hello.py");
    writeFileSync(script, "import sys, socketio\nprint('hello', sys.argv[1])\n");
    const result = await runPython(script, ["world"], { timeoutMs: 20000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "hello world\n");
  });

  test("runPython rejects on timeout with the output so far", async () => {
    const script = join(dir, "slow.py");
    writeFileSync(script, "import time\nprint('working')\ntime.sleep(60)\n");
    await assert.rejects(runPython(script, [], { timeoutMs: 1500 }), /did not exit.*working/s);
  });
});

describe("chromium", () => {
  test("launchChromium loads a local page and leaves no process", async (t) => {
    const upstream = await startUpstream("page");
    t.after(() => upstream.close());
    const browser = await timed(t, "chromium launch", () => launchChromium());
    t.after(() => browser.close());
    assert.ok(chromiumProcesses(browser).length > 0);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${upstream.port}/`);
    assert.equal(await page.textContent("body"), "page");
    await browser.close();
    assert.equal(describeProcs(chromiumProcesses(browser)), "");
  });
});

describe("missing dependencies", () => {
  test("fail with the Debian package to install", () => {
    assert.throws(
      () => requireBinary({ name: "switchyard-no-such-binary", debianPackage: "no-such-pkg" }),
      (error: unknown) =>
        error instanceof MissingDependencyError &&
        error.message.includes("apt-get install -y no-such-pkg") &&
        error.message.includes(".ci/run"),
    );
  });
});
