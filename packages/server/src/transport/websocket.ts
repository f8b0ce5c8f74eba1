/**
 * WebSocket transport over `ws`. Listeners are module-level functions that find their
 * transport through a symbol on the `ws` instance: no closures per connection.
 *
 * Outbound hot path: when no extension (permessage-deflate) was negotiated, packets are
 * written as pre-built frames ({@link buildFrame}, memoized per packet, so a broadcast
 * frames once) straight to the TCP socket, corked until the end of the tick: every frame
 * a session receives in one tick leaves in one `writev`. `ws` still owns the handshake,
 * reading, control frames and closing; its own writes are whole frames issued
 * synchronously, so they interleave with ours only at frame boundaries.
 */
import type { Duplex } from "node:stream";
import { decodeEnginePacket, ProtocolError } from "@switchyard/protocol";
import type { RawData, WebSocket } from "ws";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import type { Transport, TransportOwner } from "./transport.js";
import { buildFrame } from "./websocket-frame.js";

const kTransport = Symbol("switchyard.transport");
type TaggedSocket = WebSocket & { [kTransport]?: WebSocketTransport };

export class WebSocketTransport implements Transport {
  readonly name = "websocket" as const;
  owner: TransportOwner;
  readonly socket: WebSocket;
  /** The TCP socket under `ws`, written directly when no extension transforms frames. */
  private readonly raw: Duplex | undefined;
  private ended = false;

  /**
   * @param raw the upgraded TCP socket `ws` was given; frames go straight to it unless an
   *   extension (permessage-deflate) was negotiated
   */
  constructor(socket: WebSocket, owner: TransportOwner, raw?: Duplex) {
    this.socket = socket;
    this.raw = raw !== undefined && socket.extensions === "" ? raw : undefined;
    this.owner = owner;
    (socket as TaggedSocket)[kTransport] = this;
    socket.on("message", onMessage);
    socket.on("close", onClose);
    socket.on("error", onError);
  }

  get writable(): boolean {
    return !this.ended && this.socket.readyState === 1;
  }

  get bufferedAmount(): number {
    // Without an extension ws queues nothing of its own: the socket's buffer is all of it.
    return this.raw !== undefined ? this.raw.writableLength : this.socket.bufferedAmount;
  }

  sendOne(packet: OutboundPacket, compress: boolean): void {
    if (this.ended) return;
    const raw = this.raw;
    if (raw === undefined) {
      this.socket.send(packet.websocketData(), { binary: packet.binary, compress });
      return;
    }
    if (raw.destroyed || this.socket.readyState !== 1) return;
    let frame = packet.frame;
    if (frame === undefined) {
      // A text packet's WebSocket payload is its polling text ("4…"): frame the string.
      frame = buildFrame(
        packet.binary ? packet.websocketData() : packet.pollingText(),
        packet.binary,
      );
      packet.frame = frame;
    }
    if (raw.writableCorked === 0) corkUntilNextTick(raw);
    raw.write(frame);
  }

  send(packets: readonly OutboundPacket[], compress: boolean): void {
    for (const p of packets) this.sendOne(p, compress);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.close(1000);
  }

  /**
   * Ends now unless the transport already ended: after {@link close} the close handshake
   * must be allowed to finish, or frames still queued (permessage-deflate compresses
   * asynchronously, a slow socket buffers) and the close frame itself would be lost. `ws`
   * bounds that handshake with its own timeout; after {@link fail} or a peer close the
   * socket is already gone.
   */
  destroy(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.terminate();
  }

  /** Called by the listeners below. */
  handleMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    let packet: ReturnType<typeof decodeEnginePacket>;
    try {
      packet = decodeEnginePacket(isBinary ? toBuffer(data) : data.toString());
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.message : "bad packet";
      this.fail("parse error", reason);
      return;
    }
    this.owner.onPacket(packet, this);
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

// Sockets corked in this tick; one nextTick uncorks them all.
const corked: Duplex[] = [];
let uncorkScheduled = false;

function corkUntilNextTick(raw: Duplex): void {
  raw.cork();
  corked.push(raw);
  if (!uncorkScheduled) {
    uncorkScheduled = true;
    process.nextTick(uncorkAll);
  }
}

function uncorkAll(): void {
  uncorkScheduled = false;
  // A socket may be uncorked while we iterate (a write error destroys it); uncork is
  // harmless on a destroyed stream.
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  corked.length = 0;
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
