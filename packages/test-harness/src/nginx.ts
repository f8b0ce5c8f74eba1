import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HEALTH_PATH } from "./http-probe.js";
import { BINARIES, requireBinary } from "./require-binary.js";
import type { ServiceControl } from "./service.js";
import { type ProxyServer, startProxy, type Upstream, upstreamAddress } from "./upstream.js";

/** nginx upstream balancing. `round-robin` is nginx's default (no directive). */
export type NginxMode = "round-robin" | "ip_hash" | "least_conn" | "random";

/** Options of {@link startNginx}. */
export interface NginxOptions {
  /** Backends, in order. At least one. */
  readonly upstreams: readonly Upstream[];
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
 * Starts nginx (foreground, own prefix dir, logs to the captured stderr) proxying HTTP
 * and WebSocket upgrades on 127.0.0.1 to `upstreams`; resolves once nginx itself answers
 * its readiness path (the upstreams need not be up yet).
 */
export function startNginx(options: NginxOptions): Promise<NginxServer> {
  const binary = requireBinary(BINARIES.nginx);
  return startProxy({
    kind: "nginx",
    binary,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
    prepare(dir, port, tag) {
      const conf = join(dir, "nginx.conf");
      mkdirSync(join(dir, "tmp"));
      writeFileSync(conf, nginxConfig(dir, port, options, tag));
      const pid = join(dir, "nginx.pid");
      return ["-p", `${dir}/`, "-c", conf, "-e", "stderr", "-g", `daemon off; pid ${pid};`];
    },
  });
}
