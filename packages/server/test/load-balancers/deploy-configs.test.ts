/**
 * The shipped `deploy/` configs, read as text (the other files of this directory run
 * them): timeouts above the default pingInterval + pingTimeout, WebSocket upgrade
 * headers in nginx, no POST retries, and the harness's rewriting touches only
 * addresses (and refuses a file it cannot map).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { haproxyConfigFromFile, nginxConfigFromFile } from "@switchyard/test-harness";
import { deployFile } from "./lb-helpers.js";

/** Engine.IO defaults (options.ts): a proxy timeout must exceed their sum. */
const PING_INTERVAL_MS = 25_000;
const PING_TIMEOUT_MS = 20_000;

const files = readdirSync(deployFile("")).sort();
const haproxy = files.filter((f) => f.endsWith(".cfg"));
const nginx = files.filter((f) => f.endsWith(".conf"));
const backends = [{ port: 4001 }, { port: 4002 }, { port: 4003 }];

function code(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l !== "");
}

function ms(value: string): number {
  const m = /^(\d+)(ms|s|m|h)?;?$/.exec(value);
  assert.ok(m !== null, `not a duration: ${value}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[
    m[2] ?? (value.endsWith(";") ? "s" : "ms")
  ];
  return Number(m[1]) * (unit ?? 1);
}

describe("deploy/ configs", () => {
  test("ship haproxy and nginx, each with round-robin, least-conn and cookie variants", () => {
    assert.deepEqual(haproxy, ["haproxy-cookie.cfg", "haproxy-leastconn.cfg", "haproxy.cfg"]);
    assert.deepEqual(nginx, ["nginx-cookie.conf", "nginx-least-conn.conf", "nginx.conf"]);
  });

  for (const f of haproxy) {
    test(`${f}: timeouts above pingInterval + pingTimeout, a tunnel timeout, redispatch`, () => {
      const lines = code(readFileSync(deployFile(f), "utf8"));
      for (const kind of ["client", "server", "tunnel"]) {
        const line = lines.find((l) => l.startsWith(`timeout ${kind} `));
        assert.ok(line !== undefined, `timeout ${kind}`);
        const value = ms(line.split(/\s+/)[2] ?? "");
        assert.ok(value > PING_INTERVAL_MS + PING_TIMEOUT_MS, `${line}`);
      }
      assert.ok(lines.includes("mode http"), "mode http (per-request balancing, upgrades)");
      assert.ok(lines.includes("option redispatch 1"));
      assert.equal(lines.filter((l) => l.startsWith("server ")).length, 3);
    });
  }

  for (const f of nginx) {
    test(`${f}: upgrade headers, timeouts above pingInterval + pingTimeout, no buffering`, () => {
      const lines = code(readFileSync(deployFile(f), "utf8"));
      for (const want of [
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_buffering off;",
      ]) {
        assert.ok(lines.includes(want), want);
      }
      for (const d of ["proxy_read_timeout", "proxy_send_timeout"]) {
        const line = lines.find((l) => l.startsWith(`${d} `));
        assert.ok(line !== undefined, d);
        assert.ok(ms(line.split(/\s+/)[1] ?? "") > PING_INTERVAL_MS + PING_TIMEOUT_MS, line);
      }
      const retry = lines.find((l) => l.startsWith("proxy_next_upstream "));
      assert.ok(retry === undefined || !retry.includes("non_idempotent"), "POSTs never retried");
    });
  }

  test("the harness rewrites only addresses (haproxy)", () => {
    const text = readFileSync(deployFile("haproxy.cfg"), "utf8");
    const out = haproxyConfigFromFile(text, 9999, backends, "tok");
    const changed = out.split("\n").filter((l) => !text.split("\n").includes(l));
    assert.deepEqual(changed, [
      "  bind 127.0.0.1:9999",
      '  http-request return status 200 content-type text/plain string "tok" if { path /__switchyard_harness/ready }',
      "  server node1 127.0.0.1:4001 check inter 1s fall 2 rise 2",
      "  server node2 127.0.0.1:4002 check inter 1s fall 2 rise 2",
      "  server node3 127.0.0.1:4003 check inter 1s fall 2 rise 2",
    ]);
    assert.throws(() => haproxyConfigFromFile(text, 9999, backends.slice(1)), /3 `server` lines/);
    assert.throws(
      () => haproxyConfigFromFile(`${text}\nfrontend b\n  bind :1\n`, 9999, backends),
      /one `bind`/,
    );
  });

  test("the harness rewrites only addresses and local paths (nginx)", () => {
    const text = readFileSync(deployFile("nginx.conf"), "utf8");
    const out = nginxConfigFromFile(text, "/tmp/x", 9999, backends, "tok");
    const changed = out
      .split("\n")
      .filter((l) => !text.split("\n").includes(l))
      .filter(
        (l) => !/^ {2}(access_log|\w+_temp_path) \/tmp\/x\//.test(l) && l !== "user root root;",
      );
    assert.deepEqual(changed, [
      "    server 127.0.0.1:4001;",
      "    server 127.0.0.1:4002;",
      "    server 127.0.0.1:4003;",
      "    listen 127.0.0.1:9999;",
      '    location = /__switchyard_harness/ready { default_type text/plain; return 200 "tok"; }',
    ]);
    assert.throws(() => nginxConfigFromFile(text, "/tmp/x", 9999, backends.slice(1)), /3 upstream/);
    assert.throws(
      () => nginxConfigFromFile(`user nobody;\n${text}`, "/tmp/x", 9999, backends),
      /`user` is set by the harness/,
    );
  });
});
