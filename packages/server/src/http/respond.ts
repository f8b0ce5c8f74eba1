/** Engine.IO error answers, identical to engine.io's so clients show the same messages. */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ENGINE_ERROR_MESSAGES, EngineErrorCode } from "../errors.js";

/** Answers `400 {code, message}` (403 for FORBIDDEN). */
export function sendEngineError(
  res: ServerResponse,
  code: EngineErrorCode,
  headers: OutgoingHttpHeaders = {},
  message: string = ENGINE_ERROR_MESSAGES[code],
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify({ code, message });
  res.writeHead(code === EngineErrorCode.FORBIDDEN ? 403 : 400, {
    ...headers,
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The same answer written on a raw socket whose upgrade we refuse. */
export function abortUpgrade(
  socket: Duplex,
  code: EngineErrorCode,
  message: string = ENGINE_ERROR_MESSAGES[code],
): void {
  const status = code === EngineErrorCode.FORBIDDEN ? "403 Forbidden" : "400 Bad Request";
  endRawResponse(socket, status, "application/json", JSON.stringify({ code, message }));
}

/**
 * Writes a complete HTTP response on a socket taken over for an upgrade and closes it.
 * `extraHeaders` are whole header lines, each ending with CRLF.
 */
export function endRawResponse(
  socket: Duplex,
  status: string,
  contentType: string,
  body: string,
  extraHeaders = "",
): void {
  // The peer may reset while the answer is written; that must not be uncaught.
  socket.on("error", ignoreError);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`,
  );
  socket.once("finish", destroySocket);
}

function ignoreError(): void {}

function destroySocket(this: Duplex): void {
  this.destroy();
}
