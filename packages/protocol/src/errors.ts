/**
 * Errors raised on purpose by Switchyard carry a stable string `code` so callers (and
 * metrics) can branch on the kind of failure without parsing messages. The codecs in
 * this package only ever throw {@link ProtocolError}; anything else escaping a decoder
 * is a bug.
 */

/**
 * Base class of every error Switchyard raises on purpose, in this package and in the
 * server. `code` is stable across releases (documented in docs/errors.md); `message`
 * is for humans and may change.
 */
export class SwitchyardError extends Error {
  /** Stable machine-readable code, always prefixed `SY_ERR_`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SwitchyardError";
    this.code = code;
  }
}

/**
 * Stable codes of {@link ProtocolError}. Frozen so a typo at a call site is a type
 * error rather than a silently new code on the wire or in metrics.
 */
export const ProtocolErrorCode = Object.freeze({
  /** The packet type digit (Engine.IO or Socket.IO) is not one the protocol defines. */
  UNKNOWN_PACKET_TYPE: "SY_ERR_UNKNOWN_PACKET_TYPE",
  /** The JSON part of a Socket.IO packet does not parse. */
  BAD_JSON: "SY_ERR_BAD_JSON",
  /** An EVENT payload is not a non-empty array whose first element is a string. */
  BAD_EVENT: "SY_ERR_BAD_EVENT",
  /** An ack id is not digits, is longer than 15 digits, or is missing where required. */
  BAD_ACK_ID: "SY_ERR_BAD_ACK_ID",
  /** A binary packet announces more attachments than `maxAttachments`. */
  TOO_MANY_ATTACHMENTS: "SY_ERR_TOO_MANY_ATTACHMENTS",
  /** A polling payload holds more packets than the caller allows. */
  PAYLOAD_TOO_LARGE: "SY_ERR_PAYLOAD_TOO_LARGE",
  /** A namespace does not start with "/", is too long, or cannot be framed. */
  BAD_NAMESPACE: "SY_ERR_BAD_NAMESPACE",
  /** Generic malformed packet: wrong data shape, bad placeholder, unexpected frame... */
  BAD_PACKET: "SY_ERR_BAD_PACKET",
  /** Data nests deeper than the decoder's `maxDepth` (or the encoder's bound). */
  NESTING_TOO_DEEP: "SY_ERR_NESTING_TOO_DEEP",
  /** A polling payload is malformed (empty segment, bad base64...). */
  BAD_PAYLOAD: "SY_ERR_BAD_PAYLOAD",
});

/** One of the {@link ProtocolErrorCode} values. */
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/**
 * Bytes from the peer (or data handed to an encoder) that the protocol cannot carry.
 * The server answers it with a clean disconnect, never a crash.
 */
export class ProtocolError extends SwitchyardError {
  declare readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ProtocolError";
  }
}
