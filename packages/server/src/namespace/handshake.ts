/** The handshake details of a socket, as socket.io exposes them. */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { type ParsedUrlQuery, parse } from "node:querystring";
import type { TLSSocket } from "node:tls";

export interface Handshake {
  /** Headers of the request that opened the connection. */
  headers: IncomingHttpHeaders;
  /** When the handshake happened (`Date#toString`). */
  time: string;
  /** Remote address of the connection. */
  address: string;
  /** Whether the request was cross-origin. */
  xdomain: boolean;
  /** Whether the connection is TLS. */
  secure: boolean;
  /** When the handshake happened (ms since epoch). */
  issued: number;
  /** The request URL. */
  url: string;
  /** Query parameters of the request URL. */
  query: ParsedUrlQuery;
  /** The client's `auth` payload of the namespace CONNECT. */
  auth: Record<string, unknown>;
}

export function buildHandshake(
  req: IncomingMessage,
  address: string,
  auth: Record<string, unknown>,
): Handshake {
  const now = new Date();
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return {
    headers: req.headers,
    time: now.toString(),
    address,
    xdomain: req.headers.origin !== undefined,
    secure: (req.socket as TLSSocket).encrypted === true,
    issued: now.getTime(),
    url,
    query: q === -1 ? {} : parse(url.slice(q + 1)),
    auth,
  };
}
