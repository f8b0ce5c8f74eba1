/**
 * One Engine.IO packet on its way out, with both wire forms memoized so a broadcast
 * encodes once and writes the same bytes to every session (WebSocket frame payload
 * as a Buffer, polling form as a string).
 */
import {
  type EnginePacketType,
  encodeEnginePacket,
  encodeEnginePacketText,
} from "@switchyard/protocol";

export class OutboundPacket {
  readonly type: EnginePacketType;
  readonly data: string | Buffer | undefined;
  /** Whether the WebSocket frame is binary (a binary message) or text. */
  readonly binary: boolean;
  /**
   * The complete WebSocket frame, memoized by the WebSocket transport (which alone knows
   * framing) so a broadcast frames once and every session writes the same Buffer.
   */
  frame: Buffer | undefined;
  private ws: Buffer | undefined;
  private text: string | undefined;
  private textBytes = -1;

  constructor(type: EnginePacketType, data?: string | Buffer) {
    this.type = type;
    this.data = data;
    this.binary = Buffer.isBuffer(data);
  }

  /** Payload of the WebSocket frame: the raw bytes of a binary message, or the UTF-8 text packet. */
  websocketData(): Buffer {
    if (this.ws === undefined) {
      const encoded = encodeEnginePacket(
        this.data === undefined ? { type: this.type } : { type: this.type, data: this.data },
      );
      this.ws = typeof encoded === "string" ? Buffer.from(encoded) : encoded;
    }
    return this.ws;
  }

  /** The packet as it appears inside a polling payload (binary as "b" + base64). */
  pollingText(): string {
    if (this.text === undefined) {
      this.text = encodeEnginePacketText(
        this.data === undefined ? { type: this.type } : { type: this.type, data: this.data },
      );
    }
    return this.text;
  }

  /** UTF-8 length of {@link pollingText}. */
  pollingByteLength(): number {
    if (this.textBytes < 0) this.textBytes = Buffer.byteLength(this.pollingText());
    return this.textBytes;
  }

  /** Approximate bytes this packet occupies in an outbound buffer. */
  get byteLength(): number {
    const d = this.data;
    if (d === undefined) return 1;
    return typeof d === "string" ? d.length + 1 : d.length;
  }
}

/** Shared instances of the packets that carry no data. */
export const PING = new OutboundPacket("ping");
export const PONG = new OutboundPacket("pong");
export const NOOP = new OutboundPacket("noop");
export const CLOSE = new OutboundPacket("close");
