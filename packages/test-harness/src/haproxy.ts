import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HEALTH_PATH } from "./http-probe.js";
import { BINARIES, requireBinary } from "./require-binary.js";
import type { ServiceControl } from "./service.js";
import { type ProxyServer, startProxy, type Upstream, upstreamAddress } from "./upstream.js";

/** haproxy `balance` algorithms supported by the generated config. */
export type HaproxyBalance = "roundrobin" | "leastconn" | "source" | "first" | "random";

/** Options of {@link startHaproxy}. */
export interface HaproxyOptions {
  /**
   * Backend servers, in order (named s0, s1, …). At least one. With `configFile`, the
   * addresses of the file's `server` lines, in order (as many as the file has).
   */
  readonly backends: readonly Upstream[];
  /**
   * Run this haproxy.cfg (e.g. one of `deploy/`) instead of a generated config, rewritten
   * only for addresses by {@link haproxyConfigFromFile}; `balance`, `cookie`, `maxconn`
   * and `extraBackendConfig` must then be left out. @default undefined (generated)
   */
  readonly configFile?: string;
  /** @default "roundrobin" */
  readonly balance?: HaproxyBalance;
  /**
   * Cookie stickiness: `true` inserts cookie `SERVERID` (value = server name), a string
   * chooses the cookie name. @default false
   */
  readonly cookie?: boolean | string;
  /** Listen port. @default a free port (retried on a clash) */
  readonly port?: number;
  /** Global `maxconn` (haproxy sizes its fd table from it; the fd limit here is 20000). @default 4096 */
  readonly maxconn?: number;
  /** Extra lines for the backend section. @default [] */
  readonly extraBackendConfig?: readonly string[];
  /** @default 10000 */
  readonly readyTimeoutMs?: number;
}

/** A running haproxy in front of `backends`. */
export interface HaproxyServer extends ProxyServer, ServiceControl {}

const BALANCES: ReadonlySet<string> = new Set([
  "roundrobin",
  "leastconn",
  "source",
  "first",
  "random",
]);

/** The generated haproxy.cfg (exported for inspection in tests and docs). */
export function haproxyConfig(port: number, options: HaproxyOptions, readyToken = "ready"): string {
  const balance = options.balance ?? "roundrobin";
  if (!BALANCES.has(balance)) throw new Error(`unknown haproxy balance: ${String(balance)}`);
  if (options.backends.length === 0) throw new Error("startHaproxy: `backends` is empty");
  const cookieName =
    options.cookie === true ? "SERVERID" : options.cookie === false ? undefined : options.cookie;
  if (cookieName !== undefined && !/^[\w-]+$/.test(cookieName)) {
    throw new Error(`invalid haproxy cookie name: ${JSON.stringify(cookieName)}`);
  }
  const servers = options.backends.map((b, i) => {
    const cookie = cookieName === undefined ? "" : ` cookie s${i}`;
    return `  server s${i} ${upstreamAddress(b)}${cookie}`;
  });
  return [
    "global",
    `  maxconn ${options.maxconn ?? 4096}`,
    "  nbthread 1",
    "",
    "defaults",
    "  mode http",
    "  option forwardfor",
    "  timeout connect 5s",
    "  timeout client 1h",
    "  timeout server 1h",
    // Applies once a connection is upgraded (WebSocket).
    "  timeout tunnel 1h",
    "  timeout http-request 30s",
    "",
    "frontend switchyard_in",
    `  bind 127.0.0.1:${port}`,
    `  http-request return status 200 content-type text/plain string "${readyToken}" if { path ${HEALTH_PATH} }`,
    "  default_backend switchyard",
    "",
    "backend switchyard",
    `  balance ${balance}`,
    ...(cookieName === undefined ? [] : [`  cookie ${cookieName} insert indirect nocache`]),
    ...(options.extraBackendConfig ?? []).map((line) => `  ${line}`),
    ...servers,
    "",
  ].join("\n");
}

/**
 * A shipped haproxy.cfg rewritten to run here, and nothing else changed: the one
 * frontend's `bind` line becomes `bind 127.0.0.1:<port>` (followed by the harness's
 * readiness rule), and the address of the i-th `server` line becomes `backends[i]`
 * (its other parameters kept). Refuses a file with other than one `bind` line or with
 * another number of `server` lines than `backends`, so a test never runs a config it
 * did not mean to.
 */
export function haproxyConfigFromFile(
  text: string,
  port: number,
  backends: readonly Upstream[],
  readyToken = "ready",
): string {
  let binds = 0;
  let servers = 0;
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const bind = /^(\s*)bind\s+\S+/.exec(line);
    if (bind !== null) {
      binds++;
      const indent = bind[1] ?? "";
      out.push(`${indent}bind 127.0.0.1:${port}`);
      out.push(
        `${indent}http-request return status 200 content-type text/plain string "${readyToken}" if { path ${HEALTH_PATH} }`,
      );
      continue;
    }
    const server = /^(\s*server\s+\S+\s+)(\S+)(.*)$/.exec(line);
    if (server !== null) {
      const upstream = backends[servers++];
      if (upstream !== undefined) out.push(`${server[1]}${upstreamAddress(upstream)}${server[3]}`);
      continue;
    }
    out.push(line);
  }
  if (binds !== 1) throw new Error(`haproxy config: expected one \`bind\` line, found ${binds}`);
  if (servers !== backends.length) {
    throw new Error(
      `haproxy config has ${servers} \`server\` lines, ${backends.length} backends given`,
    );
  }
  return out.join("\n");
}

/**
 * Starts haproxy (`-db`: foreground) in HTTP mode on 127.0.0.1 balancing over
 * `backends`, WebSocket upgrades included; resolves once haproxy itself answers its
 * readiness path (the backends need not be up yet).
 */
export function startHaproxy(options: HaproxyOptions): Promise<HaproxyServer> {
  if (options.configFile !== undefined) {
    for (const key of ["balance", "cookie", "maxconn", "extraBackendConfig"] as const) {
      if (options[key] !== undefined) {
        throw new Error(`startHaproxy: \`${key}\` does not apply with \`configFile\``);
      }
    }
  }
  const binary = requireBinary(BINARIES.haproxy);
  return startProxy({
    kind: "haproxy",
    binary,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
    prepare(dir, port, tag) {
      const cfg = join(dir, "haproxy.cfg");
      writeFileSync(
        cfg,
        options.configFile === undefined
          ? haproxyConfig(port, options, tag)
          : haproxyConfigFromFile(
              readFileSync(options.configFile, "utf8"),
              port,
              options.backends,
              tag,
            ),
      );
      return ["-db", "-f", cfg];
    },
  });
}
