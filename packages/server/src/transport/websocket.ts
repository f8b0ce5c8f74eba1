/**
 * WebSocket transport over `ws`. Listeners are module-level functions that find their
 * transport through a symbol on the `ws` instance: no closures per connection.
 *
 * Outbound hot path: when no extension (permessage-deflate) was negotiated, packets are
 * pre-built frames ({@link buildFrame}, memoized per packet, so a broadcast frames once)
 * queued on the transport and written to the TCP socket by the {@link WriteScheduler}:
 * every frame a session received since its last write leaves in one `write`, and the
 * writes of a big broadcast are spread over event-loop turns in slices, so HTTP requests
 * and other I/O are served between slices instead of after the whole fan-out. `ws` still
 * owns the handshake, reading, control frames and closing; its own writes are whole
 * frames, so they interleave with ours only at frame boundaries, and the queue is written
 * out before `ws` sends a close frame.
 */
import type { Duplex } from "node:stream";
import { decodeEnginePacket, ProtocolError } from "@switchyard/protocol";
import type { RawData, WebSocket } from "ws";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import type { Transport, TransportOwner } from "./transport.js";
import { buildFrame } from "./websocket-frame.js";

const kTransport = Symbol("switchyard.transport");
type TaggedSocket = WebSocket & { [kTransport]?: WebSocketTransport };
type TaggedRaw = Duplex & { [kTransport]?: WebSocketTransport };

export class WebSocketTransport implements Transport {
  readonly name = "websocket" as const;
  owner: TransportOwner;
  readonly socket: WebSocket;
  /** The TCP socket under `ws`, written directly when no extension transforms frames. */
  private readonly raw: Duplex | undefined;
  private ended = false;
  /** Frames waiting for the scheduler: none, one, or several (in order). */
  private pending: Buffer | Buffer[] | undefined = undefined;
  private pendingBytes = 0;
  /**
   * Whether the TCP socket's own buffer was over its high-water mark at our last write
   * (cleared on 'drain'). While it is not, that buffer holds less than the mark (16 KiB)
   * and {@link bufferedAmount} skips reading it: the check runs once per delivery.
   */
  private congested = false;

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
    const raw = this.raw;
    if (raw === undefined) return this.socket.bufferedAmount;
    return this.congested ? raw.writableLength + this.pendingBytes : this.pendingBytes;
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
    const p = this.pending;
    if (p === undefined) {
      this.pending = frame;
      scheduleWrite(this);
    } else if (Buffer.isBuffer(p)) this.pending = [p, frame];
    else p.push(frame);
    this.pendingBytes += frame.length;
  }

  /** Bytes queued for the scheduler. */
  get pendingByteLength(): number {
    return this.pendingBytes;
  }

  /** Writes the queued frames to the TCP socket in one write (called by the scheduler). */
  writePending(): void {
    const p = this.pending;
    if (p === undefined) return;
    const bytes = this.pendingBytes;
    this.pending = undefined;
    this.pendingBytes = 0;
    const raw = this.raw!;
    if (raw.destroyed) return;
    let below: boolean;
    if (Buffer.isBuffer(p)) below = raw.write(p);
    else if (bytes <= CONCAT_LIMIT) below = raw.write(Buffer.concat(p, bytes));
    else {
      // Large batches go out as one writev of the frames themselves, without a copy.
      raw.cork();
      for (let i = 0; i < p.length; i++) raw.write(p[i]!);
      raw.uncork();
      below = raw.writableLength < raw.writableHighWaterMark;
    }
    if (!below && !this.congested) {
      this.congested = true;
      (raw as TaggedRaw)[kTransport] = this;
      raw.once("drain", onRawDrain);
    }
  }

  /** The TCP socket drained its buffer. */
  onDrain(): void {
    this.congested = false;
  }

  send(packets: readonly OutboundPacket[], compress: boolean): void {
    for (const p of packets) this.sendOne(p, compress);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    // What is queued goes out before ws's close frame.
    this.writePending();
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
    this.dropPending();
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
    this.dropPending();
    this.socket.terminate();
    this.owner.onTransportClose(this, reason, description);
  }

  handleClose(): void {
    const wasEnded = this.ended;
    this.ended = true;
    this.dropPending();
    if (!wasEnded) this.owner.onTransportClose(this, "transport close");
  }

  private dropPending(): void {
    this.pending = undefined;
    this.pendingBytes = 0;
  }
}

/** Queued frames up to this many bytes are copied into one buffer and written at once. */
const CONCAT_LIMIT = 64 * 1024;

/**
 * The write scheduler: transports with queued frames, written in FIFO order, at most
 * {@link SLICE_TRANSPORTS} transports or {@link SLICE_BYTES} bytes per event-loop turn
 * (`setImmediate`: the first slice runs right after the I/O callbacks of the turn that
 * queued the frames, later slices in later turns, each after the I/O that arrived
 * meanwhile). A transport is listed once however many frames it queued; frames queued
 * after its slice ran list it again. Per-connection order is the queue's order.
 */
const SLICE_TRANSPORTS = 256;
const SLICE_BYTES = 1024 * 1024;

const waiting: (WebSocketTransport | undefined)[] = [];
let head = 0;
let scheduled = false;

function scheduleWrite(t: WebSocketTransport): void {
  waiting.push(t);
  if (!scheduled) {
    scheduled = true;
    setImmediate(writeSlice);
  }
}

function writeSlice(): void {
  const end = Math.min(waiting.length, head + SLICE_TRANSPORTS);
  let bytes = 0;
  while (head < end && bytes < SLICE_BYTES) {
    const t = waiting[head]!;
    waiting[head++] = undefined;
    bytes += t.pendingByteLength;
    // A write error destroys the socket asynchronously; writePending skips dead sockets.
    t.writePending();
  }
  if (head < waiting.length) {
    if (head >= 4096) {
      waiting.copyWithin(0, head);
      waiting.length -= head;
      head = 0;
    }
    setImmediate(writeSlice);
    return;
  }
  waiting.length = 0;
  head = 0;
  scheduled = false;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function onMessage(this: TaggedSocket, data: RawData, isBinary: boolean): void {
  this[kTransport]?.handleMessage(data, isBinary);
}

function onRawDrain(this: TaggedRaw): void {
  this[kTransport]?.onDrain();
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
