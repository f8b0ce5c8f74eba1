/**
 * The outbox: the one outbound path of an {@link Engine}. Every packet a session sends —
 * broadcasts handed over by the adapters ({@link BroadcastSink}), unicasts, acks,
 * DISCONNECTs, pings — and every graceful close goes through the outbox of the engine
 * that owns the session, and every deferral of a write is the outbox's:
 *
 * - **Delivery queue.** A broadcast to {@link QUEUE_MIN_RECIPIENTS} or more sessions is
 *   delivered over several event-loop turns ({@link DELIVERIES_PER_TURN} deliveries per
 *   turn) instead of inside the `emit` call, so one `emit` to a big room cannot hold the
 *   event loop for the whole fan-out. While anything is queued, every other write of this
 *   engine's sessions and every graceful close joins the same FIFO behind it: a session
 *   receives its packets in the order they were sent, and a close never overtakes the
 *   packets queued before it. When the queue is empty, sends and small broadcasts are
 *   written at once.
 * - **Rules, decided when a packet is delivered** ({@link Outbox.write}): a volatile
 *   packet is dropped unless the connection can take it at once (socket.io's rule: the
 *   transport idle, nothing buffered, no upgrade under way), and dropped whole — never a
 *   header without its attachments; a session whose unread bytes would pass
 *   `maxBufferedBytes` is cut off as a slow consumer.
 * - **Polling flush.** Packets buffered for a polling session during one tick leave in
 *   one payload: the outbox flushes the sessions that buffered on the next tick.
 * - **WebSocket writes.** The engine's {@link WriteScheduler} writes each connection's
 *   queued frames in one `write`, a slice of connections per turn.
 *
 * The queues are per engine: two engines in one process never wait for each other, and
 * closing one delivers only its own queue. Missed-message recovery stamps offsets on the
 * broadcasts that enter through {@link Outbox.broadcast}; sessions owned by other nodes
 * are served at the HTTP layer and never reach an outbox.
 */
import type { BroadcastSink, Recipient } from "../adapter/adapter.js";
import type { EncodedPacket } from "../broadcast/encoded-packet.js";
import { Fifo } from "../fifo.js";
import { WriteScheduler } from "../transport/write-scheduler.js";
import type { OutboundPacket } from "./outbound-packet.js";

/**
 * What the outbox needs from a session (the engine's `Session` implements it). A session
 * is the {@link Recipient} adapters collect, and names this outbox as its own.
 */
export interface OutboxTarget extends Recipient {
  /** Only "open" sessions take packets. */
  readonly readyState: string;
  /** A graceful close waits in the queue: nothing sent after it is taken. Set by the outbox. */
  closeQueued: boolean;
  /** Whether a packet written now would leave at once (the volatile condition). */
  readonly canTakeAtOnce: boolean;
  /** Bytes waiting for the client: buffered in the session and in its transport. */
  readonly bufferedAmount: number;
  /**
   * Writes (WebSocket with nothing buffered) or buffers a packet that passed the rules;
   * true if the buffer must be flushed later (then {@link flush} is called next tick).
   */
  take(packet: OutboundPacket, compress: boolean): boolean;
  /** Writes the buffer if the transport can take it now. */
  flush(): void;
  /** Runs a graceful close (queued behind the session's packets, or at once). */
  closeNow(discard: boolean): void;
  /** Ends the session at once (slow consumer). */
  terminate(reason: string, description?: string): void;
}

/** Outbound counters the outbox bumps (part of the engine's `stats`): O(1) per event, no allocation. */
export interface OutboxStats {
  /** Engine.IO packets written or buffered for a client (broadcast parts, unicasts, acks, pings). */
  packetsOut: number;
  /** Their size as {@link OutboundPacket.byteLength} counts it (binary: bytes; text: UTF-16 units + 1; no framing). */
  bytesOut: number;
  /** Broadcasts handed to this engine by an adapter (one per emit that reaches this node's sessions). */
  broadcasts: number;
  /** Recipients of those broadcasts (a broadcast to n sessions counts n, before volatile and slow-consumer drops). */
  deliveries: number;
}

/** What the outbox needs from its engine. */
export interface OutboxHost {
  readonly opts: { readonly maxBufferedBytes: number };
  /** Where the outbox counts what it sends (kept by reference). */
  readonly stats: OutboxStats;
  onVolatileDropped(target: OutboxTarget): void;
}

/** Broadcasts to at least this many sessions are queued even when the queue is empty. */
export const QUEUE_MIN_RECIPIENTS = 256;
/** Deliveries (one packet part to one session) per event-loop turn. */
export const DELIVERIES_PER_TURN = 2048;
/**
 * At most this many deliveries wait: past it, the call that queues more first delivers
 * down to half of it, synchronously (the emitter pays, as it would without a queue), so
 * an app emitting faster than the process can write cannot grow the queue without bound.
 */
export const MAX_QUEUED_DELIVERIES = 1_000_000;
/** Consecutive broadcasts delivered together, target by target (see {@link Outbox.deliver}). */
const MAX_GROUP = 1024;

enum Kind {
  Send,
  Broadcast,
  Close,
}

interface SendItem {
  kind: Kind.Send;
  target: OutboxTarget;
  packet: OutboundPacket;
  volatile: boolean;
  compress: boolean;
}

interface BroadcastItem {
  kind: Kind.Broadcast;
  targets: readonly OutboxTarget[];
  parts: readonly OutboundPacket[];
  volatile: boolean;
  compress: boolean;
  /** Index of the next target. */
  next: number;
}

interface CloseItem {
  kind: Kind.Close;
  target: OutboxTarget;
  discard: boolean;
}

type Item = SendItem | BroadcastItem | CloseItem;

export class Outbox implements BroadcastSink {
  /** The engine's WebSocket write scheduler (its transports queue frames on it). */
  readonly writes = new WriteScheduler();
  private readonly host: OutboxHost;
  private readonly stats: OutboxStats;
  private readonly items = new Fifo<Item>();
  /** Deliveries still to make for the queued items. */
  private waiting = 0;
  private turnScheduled = false;
  /** A turn is running: a write's side effects (close handlers) may queue, not deliver. */
  private running = false;
  /** Polling sessions that buffered this tick (flushed on the next one). */
  private flushes: OutboxTarget[] = [];
  /** The list being flushed, reused as the next {@link flushes} (no array per tick). */
  private spare: OutboxTarget[] = [];
  private readonly group: BroadcastItem[] = [];

  constructor(host: OutboxHost) {
    this.host = host;
    this.stats = host.stats;
  }

  /** Whether deliveries are waiting (then every write joins the queue behind them). */
  get active(): boolean {
    return this.items.length > 0;
  }

  /** Deliveries waiting in the queue. */
  get queuedDeliveries(): number {
    return this.waiting;
  }

  // ——— entry points ———

  /** Sends one packet to one session; false if it was dropped (or the session is not open). */
  send(t: OutboxTarget, packet: OutboundPacket, volatile: boolean, compress: boolean): boolean {
    if (t.readyState !== "open" || t.closeQueued) return false;
    if (this.items.length > 0) {
      // Behind the deliveries queued before it, so the session's order holds.
      this.push({ kind: Kind.Send, target: t, packet, volatile, compress }, 1);
      return true;
    }
    return this.write(t, packet, volatile, compress);
  }

  /**
   * Sends the parts of one Socket.IO packet (its text, then its binary attachments) to one
   * session: a volatile packet is dropped whole. False if it was dropped.
   */
  sendParts(
    t: OutboxTarget,
    parts: readonly OutboundPacket[],
    volatile: boolean,
    compress: boolean,
  ): boolean {
    if (parts.length === 1) return this.send(t, parts[0]!, volatile, compress);
    if (t.readyState !== "open" || t.closeQueued) return false;
    if (this.items.length > 0) {
      // One item for all parts: the packet is decided on as a whole when delivered.
      this.push(
        { kind: Kind.Broadcast, targets: [t], parts, volatile, compress, next: 0 },
        parts.length,
      );
      return true;
    }
    return this.writeParts(t, parts, volatile, compress);
  }

  /**
   * A broadcast from an adapter: `packet` to every target. Written at once when the queue
   * is empty and the targets are few; otherwise queued (the list is kept, not copied).
   * The parameter is typed by what the outbox needs; adapters pass the sessions they
   * collected from `PacketSink.conn`, which are this engine's sessions.
   */
  broadcast(
    packet: EncodedPacket,
    targets: readonly OutboxTarget[],
    volatile: boolean,
    compress: boolean,
  ): void {
    const n = targets.length;
    if (n === 0) return;
    const stats = this.stats;
    stats.broadcasts++;
    stats.deliveries += n;
    const parts = packet.parts;
    if (this.items.length === 0 && n < QUEUE_MIN_RECIPIENTS) {
      for (let i = 0; i < n; i++) {
        const t = targets[i]!;
        if (t.readyState === "open" && !t.closeQueued)
          this.writeParts(t, parts, volatile, compress);
      }
      return;
    }
    this.push(
      { kind: Kind.Broadcast, targets, parts, volatile, compress, next: 0 },
      n * parts.length,
    );
  }

  /** A graceful close of a session, behind the packets queued for it. */
  close(t: OutboxTarget, discard: boolean): void {
    if (this.items.length > 0) {
      t.closeQueued = true;
      this.push({ kind: Kind.Close, target: t, discard }, 1);
      return;
    }
    t.closeNow(discard);
  }

  /** Delivers everything queued now (engine shutdown). */
  drain(): void {
    if (this.running) return; // the turn under way goes on delivering
    while (this.items.length > 0) this.runTurn(Number.POSITIVE_INFINITY);
  }

  // ——— the rules ———

  /**
   * Writes or buffers one packet now, after the volatile and slow-consumer checks; false
   * if it was dropped.
   */
  write(t: OutboxTarget, packet: OutboundPacket, volatile: boolean, compress: boolean): boolean {
    if (t.readyState !== "open") return false;
    if (volatile && !t.canTakeAtOnce) {
      // socket.io's rule: a write since the last flush, no GET waiting, bytes still on
      // their way out, or an upgrade under way.
      this.host.onVolatileDropped(t);
      return false;
    }
    const pending = t.bufferedAmount;
    const max = this.host.opts.maxBufferedBytes;
    const size = packet.byteLength;
    if (pending > 0 && pending + size > max) {
      if (volatile) {
        this.host.onVolatileDropped(t);
        return false;
      }
      t.terminate("slow consumer", `more than ${max} bytes waiting for the client to read them`);
      return false;
    }
    const stats = this.stats;
    stats.packetsOut++;
    stats.bytesOut += size;
    if (t.take(packet, compress)) this.flushLater(t);
    return true;
  }

  /** The parts of one packet: a volatile packet is dropped whole (never a header alone). */
  private writeParts(
    t: OutboxTarget,
    parts: readonly OutboundPacket[],
    volatile: boolean,
    compress: boolean,
  ): boolean {
    if (!this.write(t, parts[0]!, volatile, compress)) return false;
    for (let i = 1; i < parts.length; i++) this.write(t, parts[i]!, false, compress);
    return true;
  }

  // ——— polling flush ———

  private flushLater(t: OutboxTarget): void {
    // Packets buffered in one tick leave in one polling payload.
    if (this.flushes.push(t) === 1) process.nextTick(flushAll, this);
  }

  /** Flushes the sessions that buffered since the last flush (next tick). */
  flushBuffered(): void {
    const list = this.flushes;
    // A flush that makes another session buffer lists it for the next tick.
    this.flushes = this.spare;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!.flush();
      } catch (err) {
        reportUncaught(err);
      }
    }
    list.length = 0;
    this.spare = list;
  }

  // ——— the delivery queue ———

  private push(item: Item, deliveries: number): void {
    this.items.push(item);
    this.waiting += deliveries;
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(onTurn, this);
    }
    if (this.waiting > MAX_QUEUED_DELIVERIES && !this.running) {
      this.runTurn(this.waiting - MAX_QUEUED_DELIVERIES / 2);
    }
  }

  /** One scheduled turn; true if more is queued for a later one. */
  turn(): boolean {
    this.runTurn(DELIVERIES_PER_TURN);
    if (this.items.length > 0) return true;
    this.turnScheduled = false;
    return false;
  }

  private runTurn(budget: number): void {
    this.running = true;
    try {
      this.deliver(budget);
    } finally {
      this.running = false;
    }
  }

  /**
   * Delivers up to `budget` deliveries from the head of the queue. Consecutive broadcasts
   * to the same recipient list (a burst of emits to one room: the adapter reuses the list
   * while membership stays the same) are delivered together, recipient by recipient, so
   * each socket receives the whole burst at once and writes it in one go.
   */
  private deliver(budget: number): void {
    const items = this.items;
    const group = this.group;
    let left = budget;
    for (let item = items.peek(); left > 0 && item !== undefined; item = items.peek()) {
      if (item.kind === Kind.Broadcast) {
        let n = 0;
        let cost = 0;
        for (let other: Item | undefined = item; n < MAX_GROUP; other = items.peek(n)) {
          if (other?.kind !== Kind.Broadcast || other.targets !== item.targets) break;
          if (other.next !== item.next) break;
          group[n++] = other;
          cost += other.parts.length;
        }
        const targets = item.targets;
        const start = item.next;
        const end = Math.min(targets.length, start + Math.max(1, Math.floor(left / cost)));
        for (let i = start; i < end; i++) {
          const t = targets[i]!;
          for (let g = 0; g < n; g++) {
            const { parts, volatile, compress } = group[g]!;
            if (!this.safeWrite(t, parts[0]!, volatile, compress)) continue;
            for (let j = 1; j < parts.length; j++) this.safeWrite(t, parts[j]!, false, compress);
          }
        }
        left -= (end - start) * cost;
        this.waiting -= (end - start) * cost;
        for (let g = 0; g < n; g++) group[g]!.next = end;
        group.length = 0;
        if (end < targets.length) break;
        for (let g = 0; g < n; g++) items.shift();
        continue;
      }
      if (item.kind === Kind.Send) {
        this.safeWrite(item.target, item.packet, item.volatile, item.compress);
      } else {
        try {
          item.target.closeNow(item.discard);
        } catch (err) {
          reportUncaught(err);
        }
      }
      left--;
      this.waiting--;
      items.shift();
    }
  }

  /**
   * A write runs close handlers when it ends a slow consumer; an exception thrown by one of
   * them must not stop the other deliveries (they would never be retried).
   */
  private safeWrite(
    t: OutboxTarget,
    packet: OutboundPacket,
    volatile: boolean,
    compress: boolean,
  ): boolean {
    try {
      return this.write(t, packet, volatile, compress);
    } catch (err) {
      reportUncaught(err);
      return false;
    }
  }
}

function onTurn(outbox: Outbox): void {
  if (outbox.turn()) setImmediate(onTurn, outbox);
}

function flushAll(outbox: Outbox): void {
  outbox.flushBuffered();
}

function reportUncaught(err: unknown): void {
  // Same fate as an exception thrown in any other event-loop callback, but after the
  // outbox's own state is consistent and without losing the rest of the turn.
  process.nextTick(() => {
    throw err;
  });
}
