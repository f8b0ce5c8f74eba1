/**
 * The `parser` option. Internally a parser is a {@link Codec}; users may pass either one
 * of ours or a socket.io-style parser module (`{ Encoder, Decoder }`, e.g. the npm
 * `socket.io-msgpack-parser`), which is adapted here. Foreign decoders' output is
 * re-validated, so a parser cannot smuggle a malformed packet past us.
 */
import {
  encodeSocketPacket,
  msgpackCodec,
  msgpackParser,
  ProtocolError,
  ProtocolErrorCode,
  SocketDecoder,
  type SocketPacket,
  validateSocketPacket,
} from "@switchyard/protocol";
import { InvalidOptionError } from "../errors.js";

/** Turns packets into Engine.IO message payloads and back. */
export interface Codec {
  encode(packet: SocketPacket): (string | Buffer)[];
  createDecoder(): PacketDecoder;
}

/** Stateful decoder of one connection (binary attachments span several messages). */
export interface PacketDecoder {
  /** Returns the packet completed by `chunk`, if any; throws ProtocolError on bad input. */
  add(chunk: string | Buffer): SocketPacket | undefined;
  destroy(): void;
}

/** The shape of socket.io parser modules (`socket.io-parser`, `socket.io-msgpack-parser`). */
export interface SocketIoParser {
  Encoder: new () => { encode(packet: unknown): unknown[] };
  Decoder: new () => {
    add(chunk: unknown): void;
    destroy?(): void;
    on(event: "decoded", listener: (packet: unknown) => void): unknown;
  };
}

/** Limits applied to every decoder. */
export interface DecodeLimits {
  maxAttachments: number;
  maxDepth: number;
}

/** The default parser: Socket.IO v5's text format with binary attachments. */
export function defaultCodec(limits: DecodeLimits): Codec {
  const shared = new SocketDecoder(limits);
  return {
    encode: encodeSocketPacket,
    createDecoder: () => new TextDecoder(limits, shared),
  };
}

/**
 * The protocol's decoder under the {@link PacketDecoder} interface. A decoder has state
 * only between a binary packet's header and its last attachment, so a connection gets
 * its own {@link SocketDecoder} only for that span; every other packet goes through one
 * decoder shared by the codec, which is never left holding state (it never sees a
 * binary header, and it resets on any error).
 */
class TextDecoder implements PacketDecoder {
  private readonly limits: DecodeLimits;
  private readonly shared: SocketDecoder;
  private own: SocketDecoder | undefined = undefined;

  constructor(limits: DecodeLimits, shared: SocketDecoder) {
    this.limits = limits;
    this.shared = shared;
  }

  add(chunk: string | Buffer): SocketPacket | undefined {
    let own = this.own;
    if (own === undefined) {
      if (!isBinaryHeader(chunk)) return this.shared.add(chunk);
      own = new SocketDecoder(this.limits);
      this.own = own;
    }
    try {
      return own.add(chunk);
    } finally {
      if (!own.awaitingAttachments) this.own = undefined;
    }
  }

  destroy(): void {
    this.own = undefined;
  }
}

/** A BINARY_EVENT (5) or BINARY_ACK (6) header: attachments follow. */
function isBinaryHeader(chunk: string | Buffer): boolean {
  if (typeof chunk !== "string") return false;
  const c = chunk.charCodeAt(0);
  return c === 0x35 || c === 0x36;
}

/** Accepts a {@link Codec} or a socket.io-style parser module. */
export function toCodec(parser: unknown, limits: DecodeLimits): Codec {
  if (parser === undefined) return defaultCodec(limits);
  if (isCodec(parser)) return parser;
  // Ours: decode without the event-emitter shim (same bytes as socket.io-msgpack-parser).
  if (parser === msgpackParser) return msgpackCodec(limits);
  if (isSocketIoParser(parser)) return adaptSocketIoParser(parser, limits);
  throw new InvalidOptionError(
    "parser",
    "a Switchyard codec or a socket.io parser ({ Encoder, Decoder })",
    parser,
  );
}

function isCodec(p: unknown): p is Codec {
  return (
    typeof p === "object" &&
    p !== null &&
    typeof (p as Codec).encode === "function" &&
    typeof (p as Codec).createDecoder === "function"
  );
}

function isSocketIoParser(p: unknown): p is SocketIoParser {
  return (
    typeof p === "object" &&
    p !== null &&
    typeof (p as SocketIoParser).Encoder === "function" &&
    typeof (p as SocketIoParser).Decoder === "function"
  );
}

function adaptSocketIoParser(parser: SocketIoParser, limits: DecodeLimits): Codec {
  const encoder = new parser.Encoder();
  return {
    encode(packet) {
      let parts: unknown[];
      try {
        parts = encoder.encode(packet);
      } catch (err) {
        // A foreign encoder fails in its own way (notepack overflows the stack on cyclic
        // data): the caller of emit gets the same error class as with our codec.
        if (err instanceof ProtocolError) throw err;
        throw new ProtocolError(
          err instanceof RangeError
            ? ProtocolErrorCode.NESTING_TOO_DEEP
            : ProtocolErrorCode.BAD_PACKET,
          `parser could not encode the packet: ${(err as Error).message}`,
          { cause: err },
        );
      }
      return parts.map((p) => (typeof p === "string" ? p : Buffer.from(p as Uint8Array)));
    },
    createDecoder() {
      return new ForeignDecoder(parser, limits);
    },
  };
}

class ForeignDecoder implements PacketDecoder {
  private readonly inner: InstanceType<SocketIoParser["Decoder"]>;
  private readonly limits: DecodeLimits;
  private decoded: unknown[] = [];

  constructor(parser: SocketIoParser, limits: DecodeLimits) {
    this.limits = limits;
    this.inner = new parser.Decoder();
    this.inner.on("decoded", (packet) => {
      this.decoded.push(packet);
    });
  }

  add(chunk: string | Buffer): SocketPacket | undefined {
    try {
      this.inner.add(chunk);
    } catch (err) {
      if (err instanceof ProtocolError) throw err;
      throw new ProtocolError(
        ProtocolErrorCode.BAD_PACKET,
        `parser rejected the message: ${(err as Error).message}`,
      );
    }
    // Nothing decoded yet is normal: socket.io-parser holds a binary packet back until
    // its last attachment arrived.
    if (this.decoded.length === 0) return undefined;
    return validateSocketPacket(this.decoded.shift(), this.limits);
  }

  destroy(): void {
    this.inner.destroy?.();
    this.decoded = [];
  }
}
