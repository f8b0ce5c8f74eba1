/**
 * The server side of the WebSocket opening handshake (RFC 6455 §4.2) for connections
 * Switchyard frames itself: the checks `ws`'s `handleUpgrade` makes, and the 101
 * response as one string so the engine can write it together with the first frames.
 * Connections that negotiate permessage-deflate are handed to `ws` instead.
 */
import { hash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { endRawResponse } from "../http/respond.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const KEY = /^[+/0-9A-Za-z]{22}==$/;

export type UpgradeCheck =
  | {
      readonly ok: true;
      readonly key: string;
      /** The subprotocol echoed back (the first one offered), if any. */
      readonly protocol: string | undefined;
      /** The client offers permessage-deflate. */
      readonly offersDeflate: boolean;
    }
  | { readonly ok: false; readonly status: 400 | 405; readonly message: string };

/** Checks a WebSocket upgrade request as `ws` does. */
export function checkUpgrade(req: IncomingMessage): UpgradeCheck {
  if (req.method !== "GET") return { ok: false, status: 405, message: "Invalid HTTP method" };
  const h = req.headers;
  const upgrade = h.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== "websocket")
    return { ok: false, status: 400, message: "Invalid Upgrade header" };
  const key = h["sec-websocket-key"];
  if (key === undefined || !KEY.test(key))
    return { ok: false, status: 400, message: "Missing or invalid Sec-WebSocket-Key header" };
  const version = h["sec-websocket-version"];
  if (version !== "13" && version !== "8")
    return { ok: false, status: 400, message: "Missing or invalid Sec-WebSocket-Version header" };
  const offered = h["sec-websocket-protocol"];
  let protocol: string | undefined;
  if (offered !== undefined) {
    protocol = firstProtocol(offered);
    if (protocol === undefined)
      return { ok: false, status: 400, message: "Invalid Sec-WebSocket-Protocol header" };
  }
  const ext = h["sec-websocket-extensions"];
  const offersDeflate = ext?.includes("permessage-deflate") === true;
  return { ok: true, key, protocol, offersDeflate };
}

/** An RFC 7230 token: what a subprotocol name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The first subprotocol of a `Sec-WebSocket-Protocol` list, or `undefined` when the list
 * is not what `ws` accepts: comma-separated tokens (spaces and tabs around them), none
 * empty or repeated. Linear in the header's length: no pattern that can backtrack over
 * a run of blanks (`ws`'s ReDoS advisory of 7.4.6 was a trim regex on this header).
 */
function firstProtocol(header: string): string | undefined {
  let first: string | undefined;
  const seen = new Set<string>();
  for (const raw of header.split(",")) {
    let start = 0;
    let end = raw.length;
    while (start < end && isBlank(raw.charCodeAt(start))) start++;
    while (end > start && isBlank(raw.charCodeAt(end - 1))) end--;
    const name = raw.slice(start, end);
    if (!TOKEN.test(name) || seen.has(name)) return undefined;
    seen.add(name);
    first ??= name;
  }
  return first;
}

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** The complete 101 response head (ending with the empty line). */
export function acceptResponse(
  key: string,
  protocol: string | undefined,
  extraLines: readonly string[],
): string {
  // One-shot hash (Node ≥ 20.12): no Hash object and stream state per handshake.
  const accept = hash("sha1", key + GUID, "base64");
  let head = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n`;
  if (protocol !== undefined) head += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  for (const line of extraLines) head += `${line}\r\n`;
  return `${head}\r\n`;
}

/** Refuses an upgrade with a plain HTTP error, as `ws` does, and closes the socket. */
export function refuseUpgrade(socket: Duplex, status: 400 | 405, message: string): void {
  endRawResponse(
    socket,
    status === 405 ? "405 Method Not Allowed" : "400 Bad Request",
    "text/html",
    message,
    message.includes("Sec-WebSocket-Version") ? "Sec-WebSocket-Version: 13, 8\r\n" : "",
  );
}
