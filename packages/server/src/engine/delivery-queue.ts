/**
 * The delivery queue: broadcasts to many sessions are delivered over several event-loop
 * turns instead of inside the `emit` call, so one `emit` to a big room — or a burst of
 * them from a request handler or a bus message — cannot hold the event loop for the whole
 * fan-out. HTTP requests, pings and incoming packets are served between turns.
 *
 * Order is kept per session: while anything is queued, every other write to any session
 * (unicast packets, pings, acks, DISCONNECTs) and every graceful session close joins the
 * same FIFO behind it, so a session receives its packets in the order they were sent, and
 * a `close` never overtakes the packets queued before it. When the queue is empty, sends
 * and small broadcasts are written at once, as before.
 *
 * What a delivery does (volatile drop, slow-consumer check, transport choice) is decided
 * when it is delivered, by {@link QueueTarget.writePacket}.
 */
import { Fifo } from "../fifo.js";
import type { OutboundPacket } from "./outbound-packet.js";

/** The session side of the queue: the engine's `Session`. */
export interface QueueTarget {
  /** Writes (or buffers) a packet now; false if it was dropped. */
  writePacket(packet: OutboundPacket, volatile: boolean, compress: boolean): boolean;
  /** Runs the graceful close that was queued. */
  closeNow(discard: boolean): void;
}

/** Broadcasts to at least this many sessions go through the queue even when it is empty. */
export const QUEUE_MIN_RECIPIENTS = 256;
/** Deliveries (one packet part to one session) per event-loop turn. */
const DELIVERIES_PER_TURN = 2048;
/**
 * At most this many deliveries wait: past it, the call that queues more first delivers
 * down to half of it, synchronously (the emitter pays, as it would without a queue), so
 * an app emitting faster than the process can write cannot grow the queue without bound.
 */
export const MAX_QUEUED_DELIVERIES = 1_000_000;

enum Kind {
  Send,
  Broadcast,
  Close,
}

interface SendItem {
  kind: Kind.Send;
  target: QueueTarget;
  packet: OutboundPacket;
  volatile: boolean;
  compress: boolean;
}

interface BroadcastItem {
  kind: Kind.Broadcast;
  targets: readonly QueueTarget[];
  parts: readonly OutboundPacket[];
  volatile: boolean;
  compress: boolean;
  /** Index of the next target. */
  next: number;
}

interface CloseItem {
  kind: Kind.Close;
  target: QueueTarget;
  discard: boolean;
}

type Item = SendItem | BroadcastItem | CloseItem;

const items = new Fifo<Item>();
let scheduled = false;
/** Deliveries still to make for the queued items. */
let waiting = 0;
/** A turn is running: a write's side effects (close handlers) may queue, not deliver. */
let running = false;

/** Deliveries waiting in the queue. */
export function queuedDeliveries(): number {
  return waiting;
}

/** Whether deliveries are waiting (then every write to a session must be queued too). */
export function queueActive(): boolean {
  return items.length > 0;
}

/** Queues one packet to one session behind what is already queued. */
export function queueSend(
  target: QueueTarget,
  packet: OutboundPacket,
  volatile: boolean,
  compress: boolean,
): void {
  push({ kind: Kind.Send, target, packet, volatile, compress }, 1);
}

/**
 * Queues a broadcast: `parts` (a Socket.IO packet and its binary attachments) to every
 * target, in order. `targets` must not change afterwards (a snapshot taken at emit time).
 */
export function queueBroadcast(
  targets: readonly QueueTarget[],
  parts: readonly OutboundPacket[],
  volatile: boolean,
  compress: boolean,
): void {
  if (targets.length === 0) return;
  push(
    { kind: Kind.Broadcast, targets, parts, volatile, compress, next: 0 },
    targets.length * parts.length,
  );
}

/** Queues a graceful close of a session behind its queued packets. */
export function queueClose(target: QueueTarget, discard: boolean): void {
  push({ kind: Kind.Close, target, discard }, 1);
}

/** Delivers everything queued now (engine shutdown). */
export function drainQueue(): void {
  if (running) return; // the turn under way goes on delivering
  while (queueActive()) runTurn(Number.POSITIVE_INFINITY);
}

function push(item: Item, deliveries: number): void {
  items.push(item);
  waiting += deliveries;
  if (!scheduled) {
    scheduled = true;
    setImmediate(onTurn);
  }
  if (waiting > MAX_QUEUED_DELIVERIES && !running) {
    runTurn(waiting - MAX_QUEUED_DELIVERIES / 2);
  }
}

function onTurn(): void {
  runTurn(DELIVERIES_PER_TURN);
  if (queueActive()) setImmediate(onTurn);
  else scheduled = false;
}

/** Consecutive broadcasts delivered together, target by target (see {@link runTurn}). */
const MAX_GROUP = 1024;
const group: BroadcastItem[] = [];

/**
 * Delivers up to `budget` deliveries from the head of the queue. Consecutive broadcasts
 * to the same recipient list (a burst of emits to one room: the adapter reuses the list
 * while membership stays the same) are delivered together, recipient by recipient, so
 * each socket receives the whole burst at once and writes it in one go.
 */
function runTurn(budget: number): void {
  running = true;
  try {
    deliver(budget);
  } finally {
    running = false;
  }
}

function deliver(budget: number): void {
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
          // A volatile packet is dropped whole: never its header without its attachments.
          if (!safeWrite(t, parts[0]!, volatile, compress)) continue;
          for (let j = 1; j < parts.length; j++) safeWrite(t, parts[j]!, false, compress);
        }
      }
      left -= (end - start) * cost;
      waiting -= (end - start) * cost;
      for (let g = 0; g < n; g++) group[g]!.next = end;
      group.length = 0;
      if (end < targets.length) break;
      for (let g = 0; g < n; g++) items.shift();
      continue;
    }
    if (item.kind === Kind.Send) {
      safeWrite(item.target, item.packet, item.volatile, item.compress);
    } else {
      try {
        item.target.closeNow(item.discard);
      } catch (err) {
        reportUncaught(err);
      }
    }
    left--;
    waiting--;
    items.shift();
  }
}

/**
 * A write runs close handlers when it ends a slow consumer; an exception thrown by one of
 * them must not stop the other deliveries (they would never be retried).
 */
function safeWrite(
  t: QueueTarget,
  packet: OutboundPacket,
  volatile: boolean,
  compress: boolean,
): boolean {
  try {
    return t.writePacket(packet, volatile, compress);
  } catch (err) {
    reportUncaught(err);
    return false;
  }
}

function reportUncaught(err: unknown): void {
  // Same fate as an exception thrown in any other event-loop callback, but after the
  // queue's own state is consistent and without losing the rest of the turn.
  process.nextTick(() => {
    throw err;
  });
}
