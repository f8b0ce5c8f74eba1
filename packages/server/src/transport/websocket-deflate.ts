/**
 * WebSocket transport over `ws`, used only for connections that negotiate
 * permessage-deflate (compression is `ws`'s, with its zlib queue and flow control). Every
 * other WebSocket connection is framed by Switchyard itself ({@link WebSocketTransport}).
 * Listeners are module-level functions that find their transport through a symbol on the
 * `ws` instance: no closures per connection.
 */
import type { RawData, WebSocket } from "ws";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import { decodeOrReason, type Transport, type TransportOwner } from "./transport.js";

const kTransport = Symbol("switchyard.transport");
type TaggedSocket = WebSocket & { [kTransport]?: DeflateWebSocketTransport };

export class DeflateWebSocketTransport implements Transport {
  readonly name = "websocket" as const;
  owner: TransportOwner;
  readonly socket: WebSocket;
  private ended = false;

  constructor(socket: WebSocket, owner: TransportOwner) {
    this.socket = socket;
    this.owner = owner;
    (socket as TaggedSocket)[kTransport] = this;
    socket.on("message", onMessage);
    socket.on("close", onClose);
    socket.on("error", onError);
  }

  get writable(): boolean {
    return !this.ended && this.socket.readyState === 1;
  }

  get idle(): boolean {
    // `ws` counts what it is still compressing and what the socket has not written.
    return this.writable && this.socket.bufferedAmount === 0;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  sendOne(packet: OutboundPacket, compress: boolean): void {
    if (this.ended) return;
    this.socket.send(packet.websocketData(), { binary: packet.binary, compress });
  }

  send(packets: readonly OutboundPacket[], compress: boolean): void {
    for (const p of packets) this.sendOne(p, compress);
  }

  /** Graceful close with close code 1000 (or `code`). */
  close(code = 1000): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.close(code);
  }

  /**
   * Ends now unless the transport already ended: after {@link close} the close handshake
   * must be allowed to finish, or frames still being compressed and the close frame
   * itself would be lost. `ws` bounds that handshake with its own timeout.
   */
  destroy(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.terminate();
  }

  /** Called by the listeners below. */
  handleMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    const packet = decodeOrReason(isBinary ? toBuffer(data) : data.toString());
    if (typeof packet === "string") this.fail("parse error", packet);
    else this.owner.onPacket(packet, this);
  }

  fail(reason: string, description?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.terminate();
    this.owner.onTransportClose(this, reason, description);
  }

  handleClose(): void {
    const wasEnded = this.ended;
    this.ended = true;
    if (!wasEnded) this.owner.onTransportClose(this, "transport close");
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function onMessage(this: TaggedSocket, data: RawData, isBinary: boolean): void {
  this[kTransport]?.handleMessage(data, isBinary);
}

function onClose(this: TaggedSocket): void {
  this[kTransport]?.handleClose();
}

/** `ws` error codes meaning a frame or message is bigger than `maxPayload` allows. */
const TOO_LARGE = new Set([
  "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH",
  // A frame header announcing more than 2^53 - 1 bytes.
  "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH",
]);

function onError(this: TaggedSocket, err: Error & { code?: string }): void {
  const t = this[kTransport];
  if (t === undefined) return;
  if (err.code !== undefined && TOO_LARGE.has(err.code)) t.fail("payload too large", err.message);
  else t.fail("transport error", err.message);
}
