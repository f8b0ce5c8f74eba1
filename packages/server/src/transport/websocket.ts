/**
 * WebSocket transport framed by Switchyard on the upgraded TCP socket (no extension
 * negotiated; permessage-deflate connections use {@link DeflateWebSocketTransport}).
 *
 * - Reading: the transport is a {@link FrameParser} (its base class, so one object per
 *   connection): frames are parsed where they arrived (masks, fragments, control frames,
 *   UTF-8, `maxPayload`), no stream machinery per frame.
 * - Writing: packets are pre-built frames ({@link buildFrame}, memoized per packet, so a
 *   broadcast frames once) queued on the transport and written by its engine's write
 *   scheduler (owned by the engine's outbox):
 *   every frame queued since the last write leaves in one `write`, and big fan-outs are
 *   spread over event-loop turns. The 101 response is the first thing queued, so it
 *   leaves in the same write as the open packet.
 * - Closing: a graceful close writes what is queued, then a close frame, and ends the TCP
 *   socket when the peer answers (or after {@link CLOSE_TIMEOUT_MS}); a protocol violation
 *   is answered with a close frame carrying its code, and the socket is destroyed.
 *
 * Listeners are module-level functions that find their transport through a symbol on the
 * socket: no closures per connection.
 */
import type { Socket as NetSocket } from "node:net";
import type { Duplex } from "node:stream";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import { decodeOrReason, type Transport, type TransportOwner } from "./transport.js";
import { buildFrame } from "./websocket-frame.js";
import { CLOSE_NO_STATUS, CLOSE_NORMAL, CLOSE_TOO_BIG, FrameParser } from "./websocket-reader.js";
import type { QueuedWriter, WriteScheduler } from "./write-scheduler.js";

/** How long a graceful close waits for the peer's close frame before destroying. */
const CLOSE_TIMEOUT_MS = 10_000;
/** How long a connection closed for a protocol error may linger for its close frame to leave. */
const PROTOCOL_ERROR_LINGER_MS = 1000;
/**
 * Pongs answered while the TCP socket is congested (the peer is not reading) before the
 * connection is cut: a peer that sends pings and never reads would otherwise make us
 * buffer pongs without bound (`ws` 8.23's `maxPendingAutoPongs`, same default).
 */
const MAX_PONGS_WHILE_CONGESTED = 60;
/** Queued frames up to this many bytes are copied into one buffer and written at once. */
const CONCAT_LIMIT = 64 * 1024;

const kTransport = Symbol("switchyard.transport");
type TaggedSocket = Duplex & { [kTransport]?: WebSocketTransport };

export class WebSocketTransport extends FrameParser implements Transport, QueuedWriter {
  /** "websocket", held by the prototype (see the static block): not a field per connection. */
  declare readonly name: "websocket";
  owner: TransportOwner;
  private readonly socket: Duplex;
  /** The engine's write scheduler (one per engine, owned by its outbox). */
  private readonly writes: WriteScheduler;
  /** No more packets are taken (closing, closed or failed). */
  private ended = false;
  /** Our close frame is out: the peer's answer ends the socket. */
  private closeSent = false;
  /** Frames waiting for the scheduler: none, one, or several (in order). */
  private pending: Buffer | Buffer[] | undefined = undefined;
  private pendingBytes = 0;
  /**
   * Whether the TCP socket's own buffer was over its high-water mark at our last write
   * (cleared on 'drain'). While it is not, that buffer holds less than the mark (16 KiB)
   * and {@link bufferedAmount} skips reading it: the check runs once per delivery.
   */
  private congested = false;
  /** Pongs queued since the socket became congested. */
  private congestedPongs = 0;

  static {
    Object.defineProperty(WebSocketTransport.prototype, "name", { value: "websocket" });
  }

  /**
   * @param socket the upgraded TCP socket
   * @param response the 101 response head, written before the first frame
   * @param maxPayload the largest message accepted (bytes)
   * @param maxFragments the most frames one message may arrive in
   * @param writes the write scheduler of the engine that owns the connection
   */
  constructor(
    socket: Duplex,
    response: string,
    owner: TransportOwner,
    maxPayload: number,
    maxFragments: number,
    writes: WriteScheduler,
  ) {
    super(maxPayload, maxFragments);
    this.socket = socket;
    this.writes = writes;
    this.owner = owner;
    (socket as TaggedSocket)[kTransport] = this;
    const net = socket as Partial<NetSocket>;
    net.setNoDelay?.(true);
    net.setTimeout?.(0);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.on("end", onEnd);
    this.queue(Buffer.from(response, "latin1"));
  }

  /**
   * Starts reading, beginning with the bytes that arrived with the upgrade request. Called
   * once the session has adopted the transport, so no packet reaches a placeholder owner.
   * Also called on a transport already closing (a refused upgrade): reading is what sees
   * the peer's answering close frame or FIN and ends the TCP connection.
   */
  start(head: Buffer): void {
    if (head.length > 0) this.push(head);
    if (!this.socket.destroyed) this.socket.on("data", onData);
  }

  get writable(): boolean {
    return !this.ended && this.socket.writable;
  }

  get idle(): boolean {
    return (
      this.pending === undefined &&
      !this.ended &&
      this.socket.writable &&
      this.socket.writableLength === 0
    );
  }

  get bufferedAmount(): number {
    return this.congested ? this.socket.writableLength + this.pendingBytes : this.pendingBytes;
  }

  get pendingByteLength(): number {
    return this.pendingBytes;
  }

  sendOne(packet: OutboundPacket, _compress: boolean): void {
    if (this.ended) return;
    let frame = packet.frame;
    if (frame === undefined) {
      // A text packet's WebSocket payload is its polling text ("4…"): frame the string.
      frame = buildFrame(
        packet.binary ? packet.websocketData() : packet.pollingText(),
        packet.binary,
      );
      packet.frame = frame;
    }
    this.queue(frame);
  }

  send(packets: readonly OutboundPacket[], compress: boolean): void {
    for (const p of packets) this.sendOne(p, compress);
  }

  private queue(frame: Buffer): void {
    const p = this.pending;
    if (p === undefined) {
      this.pending = frame;
      this.writes.schedule(this);
    } else if (Buffer.isBuffer(p)) this.pending = [p, frame];
    else p.push(frame);
    this.pendingBytes += frame.length;
  }

  /** Writes the queued frames to the TCP socket in one write (called by the scheduler). */
  writePending(): void {
    const p = this.pending;
    if (p === undefined) return;
    const bytes = this.pendingBytes;
    this.pending = undefined;
    this.pendingBytes = 0;
    const raw = this.socket;
    if (raw.destroyed || !raw.writable) return;
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
      raw.once("drain", onDrain);
    }
  }

  /** The TCP socket drained its buffer. */
  onDrain(): void {
    this.congested = false;
    this.congestedPongs = 0;
  }

  /**
   * Graceful close: what is queued, then a close frame (1000, or `code`); the peer's
   * answer ends the socket.
   */
  close(code = CLOSE_NORMAL): void {
    if (this.ended) return;
    this.ended = true;
    this.sendClose(code);
    setTimeout(destroyLater, CLOSE_TIMEOUT_MS, this.socket).unref();
  }

  /** Ends now without a goodbye, unless a graceful close is already under way. Idempotent. */
  destroy(): void {
    if (this.ended) return;
    this.ended = true;
    this.dropPending();
    this.socket.destroy();
  }

  // ——— FrameSink ———

  onMessage(data: string | Buffer, _binary: boolean): void {
    if (this.ended) return;
    const packet = decodeOrReason(data);
    if (typeof packet === "string") this.fail("parse error", packet);
    else this.owner.onPacket(packet, this);
  }

  onPing(payload: Buffer): void {
    if (this.closeSent || this.socket.destroyed) return;
    if (this.congested && ++this.congestedPongs > MAX_PONGS_WHILE_CONGESTED) {
      this.fail("transport error", "pings while not reading our pongs");
      return;
    }
    const frame = Buffer.allocUnsafe(2 + payload.length);
    frame[0] = 0x8a; // FIN + pong
    frame[1] = payload.length;
    payload.copy(frame, 2);
    this.queue(frame);
  }

  onCloseFrame(code: number, _reason: string): void {
    // Answer a close we did not start, then end the TCP connection (RFC 6455 §5.5.1).
    if (!this.closeSent) this.sendClose(code === CLOSE_NO_STATUS ? undefined : code);
    this.socket.end();
    this.ends("transport close");
  }

  onProtocolError(code: number, message: string): void {
    if (!this.closeSent) this.sendClose(code);
    // The close frame goes out before the FIN; a peer that never closes its side is cut off.
    this.socket.end();
    setTimeout(destroyLater, PROTOCOL_ERROR_LINGER_MS, this.socket).unref();
    this.ends(code === CLOSE_TOO_BIG ? "payload too large" : "transport error", message);
  }

  // ——— socket events ———

  handleData(chunk: Buffer): void {
    this.push(chunk);
  }

  /** The peer half-closed without a close frame (or after its close frame). */
  handleEnd(): void {
    this.socket.end();
    this.handleClose();
  }

  handleClose(): void {
    this.dropPending();
    this.ends("transport close");
  }

  handleError(err: Error): void {
    this.socket.destroy();
    this.ends("transport error", err.message);
  }

  /** Marks the transport ended; the owner hears why, unless it had ended already. */
  private ends(reason: string, description?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.owner.onTransportClose(this, reason, description);
  }

  private dropPending(): void {
    this.pending = undefined;
    this.pendingBytes = 0;
  }

  /** Writes what is queued, then a close frame (with `code`, or empty). */
  private sendClose(code: number | undefined): void {
    this.closeSent = true;
    this.writePending();
    if (this.socket.destroyed || !this.socket.writable) return;
    const frame =
      code === undefined ? Buffer.from([0x88, 0]) : Buffer.from([0x88, 2, code >> 8, code & 0xff]);
    this.socket.write(frame);
  }

  private fail(reason: string, description: string): void {
    if (this.ended) return;
    this.dropPending();
    this.socket.destroy();
    this.ends(reason, description);
  }
}

function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kTransport]?.handleData(chunk);
}

function onEnd(this: TaggedSocket): void {
  this[kTransport]?.handleEnd();
}

function onClose(this: TaggedSocket): void {
  this[kTransport]?.handleClose();
}

function onError(this: TaggedSocket, err: Error): void {
  this[kTransport]?.handleError(err);
}

function onDrain(this: TaggedSocket): void {
  this[kTransport]?.onDrain();
}

function destroyLater(socket: Duplex): void {
  socket.destroy();
}
