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
