/** The handshake details of a socket, as socket.io exposes them. */
import type { IncomingHttpHeaders } from "node:http";
import { type ParsedUrlQuery, parse } from "node:querystring";
import type { TLSSocket } from "node:tls";
import type { RequestInfo } from "../engine/request-record.js";

/**
 * The client's `auth` payload, typed as socket.io types it (values `any`), so
 * `socket.handshake.auth.token` reads as it does in a socket.io app.
 */
// biome-ignore lint/suspicious/noExplicitAny: socket.io's type, for a drop-in under strict TypeScript
export type HandshakeAuth = { [key: string]: any };

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
  auth: HandshakeAuth;
}

/** The clock origin of {@link SocketHandshake.issued} (module load). */
const EPOCH = Date.now();

/**
 * A socket's {@link Handshake}, held per connected socket for its whole life, so it keeps
 * only references to what the request already holds (`headers`, `url`, the address) and
 * builds `time`, `query` and an empty `auth` on first read (`issued` is a getter too): an
 * idle socket whose app never reads them costs no strings or objects for them. Each is built once, then the same
 * object is returned (and may be replaced by assignment, as on socket.io's plain object).
 * `JSON.stringify` and the cluster encoding see every field through {@link toJSON}.
 */
export class SocketHandshake implements Handshake {
  headers: IncomingHttpHeaders;
  address: string;
  xdomain: boolean;
  secure: boolean;
  url: string;
  /**
   * `issued` as ms since {@link EPOCH}: a small integer V8 keeps in the field itself,
   * where ms since 1970 would be a separate 16-byte heap number per socket.
   */
  #issued: number;
  #time: string | undefined = undefined;
  #query: ParsedUrlQuery | undefined = undefined;
  #auth: Record<string, unknown> | undefined;

  /**
   * @param req the opening request, or what its session kept of it (`Session.requestInfo`:
   *   reading that never builds a request)
   * @param auth the CONNECT payload; undefined when the client sent none (read as `{}`)
   */
  constructor(req: RequestInfo, address: string, auth: Record<string, unknown> | undefined) {
    const headers = req.headers;
    this.headers = headers;
    this.address = address;
    this.xdomain = headers.origin !== undefined;
    this.secure = (req.socket as TLSSocket).encrypted === true;
    this.#issued = Date.now() - EPOCH;
    this.url = req.url ?? "/";
    this.#auth = auth;
  }

  get issued(): number {
    return EPOCH + this.#issued;
  }

  set issued(value: number) {
    this.#issued = value - EPOCH;
  }

  get time(): string {
    if (this.#time === undefined) this.#time = new Date(this.issued).toString();
    return this.#time;
  }

  set time(value: string) {
    this.#time = value;
  }

  get query(): ParsedUrlQuery {
    if (this.#query === undefined) {
      const url = this.url;
      const q = url.indexOf("?");
      this.#query = q === -1 ? {} : parse(url.slice(q + 1));
    }
    return this.#query;
  }

  set query(value: ParsedUrlQuery) {
    this.#query = value;
  }

  get auth(): HandshakeAuth {
    if (this.#auth === undefined) this.#auth = {};
    return this.#auth;
  }

  set auth(value: HandshakeAuth) {
    this.#auth = value;
  }

  /**
   * Turns the lazily built fields into own, enumerable data properties, as on socket.io's
   * plain handshake object. socket.io adapters send a socket's handshake to other nodes
   * with encoders that copy own properties only (`@msgpack/msgpack`, structured clone over
   * IPC) and never call {@link toJSON}: without this a fetched remote socket would lack
   * `time`, `issued`, `query` and `auth`. Called only for sockets of a namespace served
   * by a socket.io adapter, so other sockets keep the lazy (cheaper) form.
   */
  materialize(): this {
    for (const key of ["time", "issued", "query", "auth"] as const) {
      Object.defineProperty(this, key, {
        value: this[key],
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return this;
  }

  /** Every field as a plain object (what socket.io's handshake object serializes to). */
  toJSON(): Handshake {
    return {
      headers: this.headers,
      time: this.time,
      address: this.address,
      xdomain: this.xdomain,
      secure: this.secure,
      issued: this.issued,
      url: this.url,
      query: this.query,
      auth: this.auth,
    };
  }
}
