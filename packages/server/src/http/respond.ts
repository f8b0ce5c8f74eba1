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
  // The peer may reset while the answer is written; that must not be uncaught.
  socket.on("error", ignoreError);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ code, message });
  const status = code === EngineErrorCode.FORBIDDEN ? "403 Forbidden" : "400 Bad Request";
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.once("finish", destroySocket);
}

function ignoreError(): void {}

function destroySocket(this: Duplex): void {
  this.destroy();
}
