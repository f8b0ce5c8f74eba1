/**
 * Every error Switchyard raises on purpose is a {@link SwitchyardError} with a stable
 * string `code` (documented in docs/errors.md). Codec errors come from
 * `@switchyard/protocol` ({@link ProtocolError}); this module adds the server's own.
 */
import { ProtocolError, SwitchyardError } from "@switchyard/protocol";

export { ProtocolError, SwitchyardError };

/** Stable codes of server-side errors. */
export const ErrorCode = Object.freeze({
  /** An option failed validation at construction. */
  INVALID_OPTION: "SY_ERR_INVALID_OPTION",
  /** An option key the constructor does not know (a typo, or an option of another library). */
  UNKNOWN_OPTION: "SY_ERR_UNKNOWN_OPTION",
  /** A socket.io / engine.io option (or option value) Switchyard does not implement yet. */
  UNSUPPORTED_OPTION: "SY_ERR_UNSUPPORTED_OPTION",
  /** Publishes were dropped by a bus: its offline queue was full or they waited longer than its timeout. */
  PUBLISH_DROPPED: "SY_ERR_PUBLISH_DROPPED",
  /** The peer does not read fast enough; its outbound buffer exceeded `maxBufferedBytes`. */
  SLOW_CONSUMER: "SY_ERR_SLOW_CONSUMER",
  /** A message or request body exceeded `maxHttpBufferSize`. */
  PAYLOAD_TOO_LARGE: "SY_ERR_PAYLOAD_TOO_LARGE",
  /** An event name reserved by the protocol was emitted or listened to. */
  RESERVED_EVENT: "SY_ERR_RESERVED_EVENT",
  /** An acknowledgement did not arrive in time. */
  ACK_TIMEOUT: "SY_ERR_ACK_TIMEOUT",
  /** A payload failed the schema attached to its event. */
  VALIDATION_FAILED: "SY_ERR_VALIDATION_FAILED",
  /** The server or namespace is closed. */
  CLOSED: "SY_ERR_CLOSED",
});
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * A constructor option is refused; the message names the option. `code` tells why:
 * `SY_ERR_INVALID_OPTION` (wrong type or range), `SY_ERR_UNKNOWN_OPTION` (a key the
 * constructor does not know; the message suggests the nearest known one) or
 * `SY_ERR_UNSUPPORTED_OPTION` (a socket.io option Switchyard does not implement yet).
 */
export class InvalidOptionError extends SwitchyardError {
  /** The refused option, as a dotted path for nested ones (`"cors.origin"`). */
  readonly option: string;

  constructor(option: string, expected: string, actual: unknown) {
    super(
      ErrorCode.INVALID_OPTION,
      `option "${option}" must be ${expected}, got ${describe(actual)}`,
    );
    this.name = "InvalidOptionError";
    this.option = option;
  }

  /** `unknown option "pingIntervall" — did you mean "pingInterval"?` */
  static unknown(option: string, suggestion: string | undefined): InvalidOptionError {
    return InvalidOptionError.with(
      option,
      ErrorCode.UNKNOWN_OPTION,
      `unknown option "${option}"${suggestion === undefined ? "" : ` — did you mean "${suggestion}"?`}`,
    );
  }

  /** `option "allowEIO3" is not supported yet: …` */
  static unsupported(option: string, detail: string): InvalidOptionError {
    return InvalidOptionError.with(
      option,
      ErrorCode.UNSUPPORTED_OPTION,
      `option "${option}" is not supported yet${detail === "" ? "" : `: ${detail}`}`,
    );
  }

  private static with(option: string, code: ErrorCode, message: string): InvalidOptionError {
    const err = new InvalidOptionError(option, "", undefined);
    (err as { code: string }).code = code;
    err.message = message;
    return err;
  }
}

/**
 * Publishes a bus dropped: its offline queue was full (`reason: "full"`), they waited
 * longer than its `timeout` for the broker (`"timeout"`), the broker connection broke
 * while they were in flight (`"failed"`), or the bus was closed (`"closed"`). Reported
 * once per episode (not per message) and by a rejecting `flush()`.
 */
export class PublishDroppedError extends SwitchyardError {
  /** Messages dropped in the episode (or flush window) this error reports. */
  readonly dropped: number;
  readonly reason: "full" | "timeout" | "failed" | "closed";

  constructor(reason: PublishDroppedError["reason"], dropped: number, detail: string) {
    super(
      ErrorCode.PUBLISH_DROPPED,
      `${dropped} publish${dropped === 1 ? "" : "es"} dropped: ${detail}`,
    );
    this.name = "PublishDroppedError";
    this.reason = reason;
    this.dropped = dropped;
  }
}

/** A valid cluster bus message a node will not act on (a reserved event name); dropped and counted as `refused`. */
export class RefusedError extends SwitchyardError {
  constructor(event: string, what: "serverSideEmit" | "broadcast" = "serverSideEmit") {
    super(ErrorCode.RESERVED_EVENT, `${what} of reserved event "${event}" refused`);
    this.name = "RefusedError";
  }
}

/** An acknowledgement did not arrive within the configured timeout. */
export class AckTimeoutError extends SwitchyardError {
  constructor(message = "operation has timed out") {
    super(ErrorCode.ACK_TIMEOUT, message);
    this.name = "AckTimeoutError";
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string")
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * Engine.IO's HTTP error codes (protocol v4, answered as `400 {code, message}`;
 * FORBIDDEN is answered with 403).
 */
export const EngineErrorCode = Object.freeze({
  UNKNOWN_TRANSPORT: 0,
  UNKNOWN_SID: 1,
  BAD_HANDSHAKE_METHOD: 2,
  BAD_REQUEST: 3,
  FORBIDDEN: 4,
  UNSUPPORTED_PROTOCOL_VERSION: 5,
});
export type EngineErrorCode = (typeof EngineErrorCode)[keyof typeof EngineErrorCode];

/** The messages engine.io answers with, kept identical for clients that show them. */
export const ENGINE_ERROR_MESSAGES: Readonly<Record<EngineErrorCode, string>> = Object.freeze({
  0: "Transport unknown",
  1: "Session ID unknown",
  2: "Bad handshake method",
  3: "Bad request",
  4: "Forbidden",
  5: "Unsupported protocol version",
});
