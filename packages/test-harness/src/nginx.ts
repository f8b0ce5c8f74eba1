import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HEALTH_PATH } from "./http-probe.js";
import { BINARIES, requireBinary } from "./require-binary.js";
import type { ServiceControl } from "./service.js";
import { type ProxyServer, startProxy, type Upstream, upstreamAddress } from "./upstream.js";

/** nginx upstream balancing. `round-robin` is nginx's default (no directive). */
export type NginxMode = "round-robin" | "ip_hash" | "least_conn" | "random";

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /**
   * Backends, in order. At least one. With `configFile`, the addresses of the file's
   * upstream `server` lines, in order (as many as the file has).
   */
  readonly upstreams: readonly Upstream[];
  /**
   * Run this nginx.conf (e.g. one of `deploy/`) instead of a generated config, rewritten
   * only for addresses and local paths by {@link nginxConfigFromFile}; `mode`,
   * `websocket`, `workerConnections` and `extraLocationConfig` must then be left out.
   * @default undefined (generated)
   */
  readonly configFile?: string;
  /** @default "round-robin" */
  readonly mode?: NginxMode;
  /** Forward WebSocket upgrades (Upgrade/Connection headers). @default true */
  readonly websocket?: boolean;
  /** Listen port. @default a free port (retried on a clash) */
  readonly port?: number;
  /** `worker_connections` (each proxied client needs two). @default 4096 */
  readonly workerConnections?: number;
  /** Extra directives inside `location /`. @default "" */
  readonly extraLocationConfig?: string;
  /** @default 10000 */
  readonly readyTimeoutMs?: number;
}

/** A running nginx reverse proxy in front of `upstreams`. */
export interface NginxServer extends ProxyServer, ServiceControl {}

const MODE_DIRECTIVE: Readonly<Record<NginxMode, string>> = {
  "round-robin": "",
  ip_hash: "ip_hash;",
  least_conn: "least_conn;",
  random: "random;",
};

/** The generated nginx.conf (exported for inspection in tests and docs). */
export function nginxConfig(
  dir: string,
  port: number,
  options: NginxOptions,
  readyToken = "ready",
): string {
  const mode = options.mode ?? "round-robin";
  const directive = MODE_DIRECTIVE[mode];
  if (directive === undefined) throw new Error(`unknown nginx mode: ${String(mode)}`);
  if (options.upstreams.length === 0) throw new Error("startNginx: `upstreams` is empty");
  const websocket = options.websocket ?? true;
  const servers = options.upstreams.map((u) => `    server ${upstreamAddress(u)};`).join("\n");
  const upgrade = websocket
    ? [
        "      proxy_set_header Upgrade $http_upgrade;",
        "      proxy_set_header Connection $connection_upgrade;",
      ].join("\n")
    : '      proxy_set_header Connection "";';
  // As root, workers would run as `nobody` and could not enter the 0700 temp dir.
  const user = process.getuid?.() === 0 ? "user root root;\n" : "";
  return `${user}worker_processes 1;
error_log stderr notice;
events {
  worker_connections ${options.workerConnections ?? 4096};
}
http {
  access_log ${join(dir, "access.log")};
  client_body_temp_path ${join(dir, "tmp", "client_body")};
  proxy_temp_path ${join(dir, "tmp", "proxy")};
  fastcgi_temp_path ${join(dir, "tmp", "fastcgi")};
  uwsgi_temp_path ${join(dir, "tmp", "uwsgi")};
  scgi_temp_path ${join(dir, "tmp", "scgi")};
  map $http_upgrade $connection_upgrade {
    default upgrade;
    "" close;
  }
  upstream switchyard {
    ${directive}
${servers}
  }
  server {
    listen 127.0.0.1:${port};
    location = ${HEALTH_PATH} {
      default_type text/plain;
      return 200 "${readyToken}";
    }
    location / {
      proxy_pass http://switchyard;
      proxy_http_version 1.1;
${upgrade}
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      ${options.extraLocationConfig ?? ""}
    }
  }
}
`;
}

/**
 * A shipped nginx.conf rewritten to run here, and nothing else changed: the one `listen`
 * becomes `listen 127.0.0.1:<port>` (followed by the harness's readiness location), the
 * i-th upstream `server` line's address becomes `upstreams[i]` (its parameters kept),
 * and right after `http {` come the instance's log and temp paths (and, as root, a
 * `user` line so workers can enter the private temp dir). Refuses a file with other than
 * one `listen`, another number of `server` lines than `upstreams`, or directives the
 * harness sets itself (`user`, `pid`, `daemon`, `error_log`).
 */
export function nginxConfigFromFile(
  text: string,
  dir: string,
  port: number,
  upstreams: readonly Upstream[],
  readyToken = "ready",
): string {
  let listens = 0;
  let servers = 0;
  let https = 0;
  const out: string[] = [];
  if (process.getuid?.() === 0) out.push("user root root;");
  for (const line of text.split("\n")) {
    const code = line.replace(/#.*/, "");
    const own = /^\s*(user|pid|daemon|error_log)\s/.exec(code);
    if (own !== null) throw new Error(`nginx config: \`${own[1]}\` is set by the harness`);
    const listen = /^(\s*)listen\s+[^;]+;\s*$/.exec(code);
    if (listen !== null) {
      listens++;
      const indent = listen[1] ?? "";
      out.push(`${indent}listen 127.0.0.1:${port};`);
      out.push(
        `${indent}location = ${HEALTH_PATH} { default_type text/plain; return 200 "${readyToken}"; }`,
      );
      continue;
    }
    // An upstream's `server <address> [params];`, not a `server {` block.
    const server = /^(\s*server\s+)([^\s;{]+)([^{]*;\s*)$/.exec(code);
    if (server !== null) {
      const upstream = upstreams[servers++];
      if (upstream !== undefined) out.push(`${server[1]}${upstreamAddress(upstream)}${server[3]}`);
      continue;
    }
    out.push(line);
    if (/^\s*http\s*\{\s*$/.test(code)) {
      https++;
      out.push(
        `  access_log ${join(dir, "access.log")};`,
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
          (k) => `  ${k}_temp_path ${join(dir, "tmp", k)};`,
        ),
      );
    }
  }
  if (https !== 1) throw new Error(`nginx config: expected one \`http {\` line, found ${https}`);
  if (listens !== 1) throw new Error(`nginx config: expected one \`listen\`, found ${listens}`);
  if (servers !== upstreams.length) {
    throw new Error(
      `nginx config has ${servers} upstream \`server\` lines, ${upstreams.length} upstreams given`,
    );
  }
  return out.join("\n");
}

/**
 * Starts nginx (foreground, own prefix dir, logs to the captured stderr) proxying HTTP
 * and WebSocket upgrades on 127.0.0.1 to `upstreams`; resolves once nginx itself answers
 * its readiness path (the upstreams need not be up yet).
 */
export function startNginx(options: NginxOptions): Promise<NginxServer> {
  if (options.configFile !== undefined) {
    for (const key of ["mode", "websocket", "workerConnections", "extraLocationConfig"] as const) {
      if (options[key] !== undefined) {
        throw new Error(`startNginx: \`${key}\` does not apply with \`configFile\``);
      }
    }
  }
  const binary = requireBinary(BINARIES.nginx);
  return startProxy({
    kind: "nginx",
    binary,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
    prepare(dir, port, tag) {
      const conf = join(dir, "nginx.conf");
      mkdirSync(join(dir, "tmp"));
      writeFileSync(
        conf,
        options.configFile === undefined
          ? nginxConfig(dir, port, options, tag)
          : nginxConfigFromFile(
              readFileSync(options.configFile, "utf8"),
              dir,
              port,
              options.upstreams,
              tag,
            ),
      );
      const pid = join(dir, "nginx.pid");
      return ["-p", `${dir}/`, "-c", conf, "-e", "stderr", "-g", `daemon off; pid ${pid};`];
    },
  });
}
