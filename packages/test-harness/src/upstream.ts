import { answersWithToken } from "./http-probe.js";
import { freePort } from "./ports.js";
import { newTag, startProcess } from "./process.js";
import { retryOnPortClash, Service, type ServiceControl } from "./service.js";
import { makeTempDir } from "./tmp.js";

/** A backend server a proxy forwards to. */
export interface Upstream {
  /** @default "127.0.0.1" */
  readonly host?: string;
  readonly port: number;
}

/** A running reverse proxy. */
export interface ProxyServer {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Instance's temp dir (config, logs); removed by `stop()`. */
  readonly dir: string;
}

/** `host:port` of an upstream, validated (config files are generated from it). */
export function upstreamAddress(upstream: Upstream): string {
  const host = upstream.host ?? "127.0.0.1";
  if (!/^[\w.:-]+$/.test(host)) throw new Error(`invalid upstream host: ${JSON.stringify(host)}`);
  if (!Number.isInteger(upstream.port) || upstream.port <= 0 || upstream.port > 65535) {
    throw new Error(`invalid upstream port: ${upstream.port}`);
  }
  return host.includes(":") ? `[${host}]:${upstream.port}` : `${host}:${upstream.port}`;
}

/** What differs between the proxies {@link startProxy} runs. */
export interface ProxySpec {
  kind: "nginx" | "haproxy";
  /** Absolute path of the binary (already checked by `requireBinary`). */
  binary: string;
  port?: number;
  readyTimeoutMs?: number;
  /** Writes the config into `dir` and returns the command-line arguments. */
  prepare(dir: string, port: number, tag: string): string[];
}

/**
 * Starts a reverse proxy on 127.0.0.1 in its own temp dir, retried on a port clash;
 * resolves once the proxy itself answers its readiness path with this instance's tag
 * (the upstreams need not be up yet).
 */
export function startProxy(spec: ProxySpec): Promise<ProxyServer & ServiceControl> {
  return retryOnPortClash(spec.port !== undefined, async () => {
    const port = spec.port ?? (await freePort());
    const dir = makeTempDir(spec.kind);
    const tag = newTag(spec.kind);
    const url = `http://127.0.0.1:${port}`;
    let args: string[];
    try {
      args = spec.prepare(dir.path, port, tag);
    } catch (error) {
      dir.remove();
      throw error;
    }
    const service = await Service.start(dir, tag, () =>
      startProcess({
        name: `${spec.kind}:${port}`,
        command: spec.binary,
        args,
        cwd: dir.path,
        instanceDir: dir.path,
        tag,
        ready: () => answersWithToken(url, tag),
        readyTimeoutMs: spec.readyTimeoutMs ?? 10000,
      }),
    );
    return service.handle({ host: "127.0.0.1", port, url });
  });
}
