/**
 * One Engine.IO session: the transport it currently speaks over, the outbound buffer
 * (bounded in bytes), the heartbeat state read by the engine's {@link HeartbeatWheel},
 * and the polling → WebSocket upgrade. The API matches engine.io's `Socket`
 * (`id`, `send`, `close`, events `message` / `close` / `upgrade`), so it is usable raw.
 */
import { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import type { EnginePacket } from "@switchyard/protocol";
import type { Recipient } from "../adapter/adapter.js";
import type { ResolvedEngineOptions } from "../options.js";
import type { Transport, TransportOwner } from "../transport/transport.js";
import type { HeartbeatTarget, HeartbeatWheel } from "./heartbeat.js";
import { CLOSE, NOOP, OutboundPacket, PING } from "./outbound-packet.js";
import type { Outbox, OutboxTarget } from "./outbox.js";
import { materialize, type RequestInfo, RequestRecord } from "./request-record.js";

export type ReadyState = "opening" | "open" | "closing" | "closed";

/** What {@link Session.send} accepts: text, or binary in any of Node's byte containers. */
export type MessageData = string | Buffer | ArrayBuffer | ArrayBufferView;

/** Per-send flags. */
export interface SendOptions {
  /** Let permessage-deflate / HTTP compression apply. @default true */
  compress?: boolean;
  /**
   * Drop the packet unless the connection can take it at once (as socket.io does): a
   * WebSocket with nothing queued or unwritten, a polling client with a GET waiting and
   * nothing buffered for it, no upgrade under way. @default false
   */
  volatile?: boolean;
}

/** What a session needs from the engine that owns it. */
export interface SessionHost {
  readonly opts: ResolvedEngineOptions;
  readonly wheel: HeartbeatWheel;
  /** The engine's outbox: every packet and graceful close of the session goes through it. */
  readonly outbox: Outbox;
  onSessionClosed(session: Session, reason: string, description: string | undefined): void;
  /** Counted here rather than with a listener per attempt: failed attempts would leak them. */
  onSessionUpgraded(session: Session): void;
}

/**
 * The one consumer a session may have besides its event listeners (the Socket.IO layer's
 * connection): called directly, before the `message` / `close` listeners, so the layer
 * above costs no listener table per session.
 */
export interface SessionSink {
  onSessionMessage(data: string | Buffer): void;
  onSessionClose(reason: string, description: string | undefined): void;
}

interface Upgrade {
  readonly transport: Transport;
  readonly timer: NodeJS.Timeout;
  probed: boolean;
}

export class Session
  extends EventEmitter
  implements TransportOwner, HeartbeatTarget, OutboxTarget, Recipient
{
  /** Session id (carries the owning node's id). */
  readonly id: string;
  readyState: ReadyState = "opening";
  /** The transport packets currently go out on. */
  transport: Transport;
  nextPingAt = 0;
  pongDeadline = 0;
  hbPrev: HeartbeatTarget | undefined = undefined;
  hbNext: HeartbeatTarget | undefined = undefined;
  /** Receives messages and the close before the listeners do (see {@link SessionSink}). */
  sink: SessionSink | undefined = undefined;

  private readonly host: SessionHost;
  /** The opening request, or what is kept of it (see {@link RequestRecord}). */
  private req: IncomingMessage | RequestRecord;
  /**
   * Packets waiting for the transport. {@link NO_PACKETS} (shared, never written to) while
   * there are none: a WebSocket session writes straight through and never needs an array.
   */
  private buffer: OutboundPacket[] = NO_PACKETS;
  private bufferedBytes = 0;
  private upgrade: Upgrade | undefined;
  private flushScheduled = false;
  private closeTimer: NodeJS.Timeout | undefined;
  /** A graceful close waits in the outbox's queue behind this session's packets. */
  closeQueued = false;
  /** Why a graceful close ({@link end}) was asked for; undefined: "forced close". */
  private ending: { reason: string; description: string | undefined } | undefined;

  /**
   * @param request the opening request, or a {@link RequestRecord} when the engine let the
   *   request go (its socket's address is read here, while the socket is open)
   */
  constructor(
    id: string,
    request: IncomingMessage | RequestRecord,
    transport: Transport,
    host: SessionHost,
  ) {
    super();
    // EventEmitter gives each instance an empty listener table, a dictionary-mode object
    // of ~180 bytes, and most sessions never get a listener (the Socket.IO layer is their
    // sink). Node's EventEmitter creates the table on the first `on` when it is undefined,
    // and every method reads an undefined table as "no listeners".
    (this as unknown as { _events: undefined })._events = undefined;
    this.id = id;
    this.req = request;
    // Read now, while the socket is open: Node caches the peer address on the socket
    // (`remoteAddress` reads that cache once the socket is closed, see below).
    void request.socket.remoteAddress;
    this.transport = transport;
    transport.owner = this;
    this.host = host;
  }

  /**
   * The request that opened the session (engine.io's `request`). A WebSocket session
   * whose request nothing could have touched keeps only a {@link RequestRecord}; the
   * first read builds an equivalent `IncomingMessage` from it, once (see `materialize`).
   */
  get request(): IncomingMessage {
    const r = this.req;
    if (r instanceof RequestRecord) {
      const built = materialize(r);
      this.req = built;
      return built;
    }
    return r;
  }

  /** Headers, URL, method and socket of the opening request, without building one. */
  get requestInfo(): RequestInfo {
    return this.req;
  }

  /**
   * Whether the session arrived through, or upgraded to, WebSocket (a session only ever
   * moves from polling to WebSocket, so its transport says it: no field per session).
   */
  get upgraded(): boolean {
    return this.transport.name === "websocket";
  }

  /**
   * The peer's address ("" if the socket was gone before the session existed). Read from
   * the opening request's socket, which cached it when the session was made: still
   * right after the socket closed, and no field per session.
   */
  get remoteAddress(): string {
    return this.req.socket.remoteAddress ?? "";
  }

  /** Engine.IO protocol revision. */
  get protocol(): 4 {
    return 4;
  }

  /** Builds the open packet (+ the initial packet) and starts the heartbeat. */
  open(upgrades: readonly string[]): OutboundPacket[] {
    const o = this.host.opts;
    // The bytes JSON.stringify gives for { sid, upgrades, pingInterval, pingTimeout,
    // maxPayload } (numbers print alike in both), without an object per handshake.
    const handshake = `{"sid":${JSON.stringify(this.id)},"upgrades":${upgrades.length === 0 ? "[]" : JSON.stringify(upgrades)},"pingInterval":${JSON.stringify(o.pingInterval)},"pingTimeout":${JSON.stringify(o.pingTimeout)},"maxPayload":${JSON.stringify(o.maxHttpBufferSize)}}`;
    const packets = [new OutboundPacket("open", handshake)];
    if (o.initialPacket !== undefined) packets.push(new OutboundPacket("message", o.initialPacket));
    this.readyState = "open";
    this.host.wheel.add(this);
    return packets;
  }

  /**
   * Sends a message (text, or binary as a Buffer, any typed array / DataView, or an
   * ArrayBuffer); returns false if it was dropped (volatile) or the session is not open.
   * Throws a TypeError for any other kind of data.
   */
  send(data: MessageData, options?: SendOptions): boolean {
    return this.sendPacket(
      new OutboundPacket("message", toMessageData(data)),
      options?.volatile === true,
      options?.compress !== false,
    );
  }

  /** engine.io's alias of {@link send}. */
  write(data: MessageData, options?: SendOptions): boolean {
    return this.send(data, options);
  }

  /** The outbox of the engine that owns this session. */
  get outbox(): Outbox {
    return this.host.outbox;
  }

  /**
   * The hot path: sends a pre-encoded packet through the engine's outbox (written now, or
   * queued behind earlier deliveries). Broadcasts use the same {@link OutboundPacket} for
   * every session. False if it was dropped (volatile) or the session is not open.
   */
  sendPacket(packet: OutboundPacket, volatile: boolean, compress: boolean): boolean {
    return this.host.outbox.send(this, packet, volatile, compress);
  }

  /**
   * Sends the parts of one Socket.IO packet (its text, then its binary attachments): a
   * volatile packet is dropped whole, never its header without its attachments. Returns
   * false if it was dropped.
   */
  sendParts(parts: readonly OutboundPacket[], volatile: boolean, compress: boolean): boolean {
    return this.host.outbox.sendParts(this, parts, volatile, compress);
  }

  // ——— OutboxTarget (the outbox decides; the session writes or buffers) ———

  /** Whether a packet written now leaves at once: socket.io's condition for a volatile one. */
  get canTakeAtOnce(): boolean {
    return this.buffer.length === 0 && this.upgrade === undefined && this.transport.idle;
  }

  /**
   * Writes a packet that passed the outbox's rules: straight to a WebSocket with nothing
   * buffered, otherwise into the buffer. True if the outbox must flush it next tick.
   */
  take(packet: OutboundPacket, compress: boolean): boolean {
    const t = this.transport;
    if (t.name === "websocket" && this.buffer.length === 0) {
      t.sendOne(packet, compress);
      return false;
    }
    if (this.buffer === NO_PACKETS) this.buffer = [packet];
    else this.buffer.push(packet);
    this.bufferedBytes += packet.byteLength;
    // Without a waiting GET there is nothing to flush into: the next GET flushes.
    if (this.flushScheduled || !t.writable) return false;
    this.flushScheduled = true;
    return true;
  }

  /** Number of bytes queued in this session (not counting the socket's own buffer). */
  get bufferedAmount(): number {
    return this.bufferedBytes + this.transport.bufferedAmount;
  }

  /**
   * Closes the session: what is queued is flushed first (polling: the close packet rides
   * the next GET), then the transport closes. The `close` event fires with "forced close".
   */
  close(discard = false): void {
    if (this.readyState !== "open" || this.closeQueued) return;
    // Packets queued for this session go out first; nothing sent after this does.
    this.host.outbox.close(this, discard);
  }

  /**
   * Closes gracefully like {@link close} — what is queued is delivered first, on polling
   * the close packet rides the next GET — but reports `reason` (e.g. "parse error" for a
   * Socket.IO packet the client got wrong: socket.io answers it with a clean close, the
   * packets already queued included).
   */
  end(reason: string, description?: string): void {
    if (this.readyState !== "open" || this.closeQueued) return;
    this.ending = { reason, description };
    this.close();
  }

  /** The close itself (the outbox calls it, at once or when a queued close comes up). */
  closeNow(discard: boolean): void {
    if (this.readyState !== "open") return;
    this.readyState = "closing";
    // A closing session does not move: its goodbye goes out on the transport it has.
    this.cancelUpgrade();
    if (discard) {
      this.buffer = NO_PACKETS;
      this.bufferedBytes = 0;
    }
    if (this.transport.name === "websocket") {
      this.flush();
      this.transport.close();
      this.finalizeEnding();
      return;
    }
    // Polling: what is queued goes out first, the close packet on a later GET (see flush).
    // Bounded wait for that GET. Unref'd: a session that is only waiting to say goodbye
    // must not keep a closing process alive.
    this.closeTimer = setTimeout(
      finalizeClosing,
      Math.min(this.host.opts.pingTimeout, 10_000),
      this,
    ).unref();
    this.flush();
  }

  /** Ends the session at once with a reason (no goodbye on the wire). */
  terminate(reason: string, description?: string): void {
    if (this.readyState === "closed") return;
    this.transport.destroy();
    this.finalize(reason, description);
  }

  // ——— transport callbacks ———

  onPacket(packet: EnginePacket, transport: Transport): void {
    if (this.readyState === "closed") return;
    if (transport !== this.transport) {
      this.onUpgradePacket(packet, transport);
      return;
    }
    switch (packet.type) {
      case "pong":
        this.host.wheel.pong(this);
        this.emit("heartbeat");
        return;
      case "message":
        if (this.readyState === "open") {
          // An empty message decodes without data (the sink reads it as "").
          this.sink?.onSessionMessage(packet.data ?? "");
          this.emit("message", packet.data);
        }
        return;
      case "close":
        this.terminate("transport close", "client sent a close packet");
        return;
      case "noop":
      case "ping":
        return;
      default:
        this.terminate("parse error", `unexpected "${packet.type}" packet`);
    }
  }

  onWritable(transport: Transport): void {
    if (transport !== this.transport) return;
    if (this.readyState === "closing" && this.buffer.length === 0) {
      // The close waited for this GET: a noop before it, as engine.io answers then.
      this.sayGoodbye(transport, NOOP_CLOSE);
      return;
    }
    if (this.upgrade?.probed === true && this.buffer.length === 0) {
      // Let the client's paused polling finish so it can send the upgrade packet.
      transport.send([NOOP], false);
      return;
    }
    this.flush();
  }

  onTransportClose(transport: Transport, reason: string, description?: string): void {
    if (this.upgrade?.transport === transport) {
      this.cancelUpgrade();
      return;
    }
    if (transport !== this.transport) return;
    if (this.readyState === "closing") this.finalizeEnding();
    else this.finalize(reason, description);
  }

  // ——— heartbeat (driven by the engine's wheel) ———

  sendPing(): void {
    this.sendPacket(PING, false, false);
  }

  onPingTimeout(): void {
    this.terminate("ping timeout", `no pong within ${this.host.opts.pingTimeout} ms`);
  }

  // ——— upgrade ———

  /** Whether a WebSocket may take over this session now. */
  canUpgrade(): boolean {
    return (
      this.readyState === "open" && this.transport.name === "polling" && this.upgrade === undefined
    );
  }

  /** A WebSocket with this session's id arrived: wait for the probe and the upgrade packet. */
  beginUpgrade(transport: Transport): void {
    transport.owner = this;
    const timer = setTimeout(upgradeTimedOut, this.host.opts.upgradeTimeout, this).unref();
    this.upgrade = { transport, timer, probed: false };
    this.emit("upgrading", transport);
  }

  private onUpgradePacket(packet: EnginePacket, transport: Transport): void {
    const up = this.upgrade;
    if (up === undefined || up.transport !== transport) {
      transport.destroy();
      return;
    }
    if (packet.type === "ping" && packet.data === "probe") {
      up.probed = true;
      transport.sendOne(new OutboundPacket("pong", "probe"), false);
      if (this.transport.writable && this.buffer.length === 0) this.transport.send([NOOP], false);
      return;
    }
    if (packet.type === "upgrade" && up.probed) {
      clearTimeout(up.timer);
      this.upgrade = undefined;
      const old = this.transport;
      if (old.writable) old.send([NOOP], false);
      old.destroy();
      this.transport = transport;
      this.host.onSessionUpgraded(this);
      this.emit("upgrade", transport);
      this.flush();
      return;
    }
    this.cancelUpgrade();
  }

  /** Abandons an upgrade in progress (timeout, bad packet, or its socket closed). */
  cancelUpgrade(): void {
    const up = this.upgrade;
    if (up === undefined) return;
    this.upgrade = undefined;
    clearTimeout(up.timer);
    up.transport.destroy();
  }

  // ——— internals ———

  /** Writes the buffer if the transport can take it now. */
  flush(): void {
    this.flushScheduled = false;
    const t = this.transport;
    if (!t.writable || this.readyState === "closed") return;
    if (this.buffer.length === 0) {
      if (this.readyState === "closing" && t.name === "polling") this.sayGoodbye(t, CLOSE_ONLY);
      return;
    }
    const packets = this.buffer;
    this.buffer = NO_PACKETS;
    this.bufferedBytes = 0;
    t.send(packets, true);
  }

  /**
   * The close packet of a polling session. It travels without messages, after the payload
   * that drained the buffer (as engine.io does): socket.io-client handles decoded packets
   * a tick later, so a close in the same payload would overtake the messages before it.
   */
  private sayGoodbye(t: Transport, packets: readonly OutboundPacket[]): void {
    t.send(packets, false);
    t.close();
    this.finalizeEnding();
  }

  /** The client never came back for the close packet. */
  timeOutClosing(): void {
    this.transport.destroy();
    this.finalizeEnding();
  }

  /** Final step of a graceful close: reports why it was asked for. */
  private finalizeEnding(): void {
    const e = this.ending;
    if (e === undefined) this.finalize("forced close", undefined);
    else this.finalize(e.reason, e.description);
  }

  /** Final step of every close path: runs once. */
  finalize(reason: string, description: string | undefined): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    this.host.wheel.delete(this);
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.cancelUpgrade();
    this.transport.destroy();
    this.buffer = NO_PACKETS;
    this.bufferedBytes = 0;
    this.host.onSessionClosed(this, reason, description);
    this.sink?.onSessionClose(reason, description);
    this.emit("close", reason, description);
  }
}

/**
 * Normalizes binary data to a Buffer over the same memory (no copy). Checked here, at
 * the public entry, because packets are encoded lazily: a bad value found at flush time
 * (polling flushes on the next tick) would throw where nobody can catch it.
 */
function toMessageData(data: MessageData): string | Buffer {
  if (typeof data === "string" || Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  throw new TypeError("message data must be a string, a Buffer, a typed array or an ArrayBuffer");
}

/** The empty buffer of every session with nothing queued (replaced, never pushed to). */
const NO_PACKETS: OutboundPacket[] = [];
const CLOSE_ONLY: readonly OutboundPacket[] = [CLOSE];
const NOOP_CLOSE: readonly OutboundPacket[] = [NOOP, CLOSE];

function finalizeClosing(session: Session): void {
  session.timeOutClosing();
}

function upgradeTimedOut(session: Session): void {
  session.cancelUpgrade();
}
