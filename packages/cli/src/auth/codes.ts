/**
 * Stable codes the client side of `switchyard serve` sends to Socket.IO clients: in
 * `connect_error`'s `err.data.code`, in ack errors (`{ error: { code, message } }`) and in
 * the `switchyard:disconnect` notice sent just before the server disconnects a socket.
 * Messages are for humans and may change; codes do not.
 */
import type { Socket } from "@switchyard/server";

export const ClientErrorCode = {
  /** No token in `auth.token` nor in the configured header. */
  TokenMissing: "SY_ERR_AUTH_TOKEN_MISSING",
  /** The token is longer than `auth.jwt.maxTokenBytes`. */
  TokenTooLarge: "SY_ERR_AUTH_TOKEN_TOO_LARGE",
  /** Malformed token, bad signature, or an algorithm not allowed (`alg: none`, HS/RS confusion). */
  TokenInvalid: "SY_ERR_AUTH_TOKEN_INVALID",
  /** `exp` is in the past (at connect; after connect the socket gets the same code in its disconnect notice). */
  TokenExpired: "SY_ERR_AUTH_TOKEN_EXPIRED",
  /** `nbf` is in the future. */
  TokenNotYetValid: "SY_ERR_AUTH_TOKEN_NOT_YET_VALID",
  /** `aud`, `iss` or another claim check failed. */
  TokenClaimMismatch: "SY_ERR_AUTH_CLAIM_MISMATCH",
  /** The connect webhook answered `allow: false`. */
  Denied: "SY_ERR_AUTH_DENIED",
  /** A webhook timed out, failed, answered non-2xx, too large, or not the expected JSON. */
  BackendUnavailable: "SY_ERR_BACKEND_UNAVAILABLE",
  /** A webhook did not answer within its `timeoutMs`. */
  BackendTimeout: "SY_ERR_BACKEND_TIMEOUT",
  /** Too many webhook calls in flight and queued (server-wide or for this socket). */
  BackendBusy: "SY_ERR_BACKEND_BUSY",
  /** The client may not join this room. */
  RoomForbidden: "SY_ERR_ROOM_FORBIDDEN",
  /** The room name is not a non-empty string of at most 256 characters. */
  RoomInvalid: "SY_ERR_ROOM_INVALID",
  /** More events per second than `limits.eventsPerSecond` (burst `limits.eventsBurst`). */
  RateLimited: "SY_ERR_RATE_LIMITED",
  /** More bytes per second than `limits.bytesPerSecond` (burst `limits.bytesBurst`). */
  ByteRateLimited: "SY_ERR_BYTE_RATE_LIMITED",
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** The event a socket receives right before the server disconnects it for a documented reason. */
export const DISCONNECT_NOTICE_EVENT = "switchyard:disconnect";

/** An `Error` for `next(err)` in connection middleware: the client sees `err.data.code`. */
export function refusal(
  code: ClientErrorCode,
  message: string,
): Error & { data: { code: string } } {
  const err = new Error(message) as Error & { data: { code: string } };
  err.data = { code };
  return err;
}

/** The ack payload of a refused request: `{ error: { code, message } }`. */
export function ackError(
  code: ClientErrorCode,
  message: string,
): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/**
 * Sends `switchyard:disconnect` `{ code, message }` and disconnects the socket from its
 * namespace (the client sees `io server disconnect` and does not reconnect on its own). The
 * notice and the DISCONNECT go through the same outbox, so the notice arrives first.
 */
export function disconnectWithNotice(socket: Socket, code: ClientErrorCode, message: string): void {
  if (socket.disconnected) return;
  socket.emit(DISCONNECT_NOTICE_EVENT, { code, message });
  socket.disconnect();
}

/** Counts by code, readable by metrics (`stats.refusals[code]`). */
export class CodeCounter {
  readonly counts: Record<string, number> = {};
  add(code: string): void {
    this.counts[code] = (this.counts[code] ?? 0) + 1;
  }
}
