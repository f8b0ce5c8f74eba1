/**
 * The write scheduler of WebSocket connections: connections with queued frames are
 * written in FIFO order, at most {@link SLICE_CONNECTIONS} connections or
 * {@link SLICE_BYTES} bytes per event-loop turn. It runs on `setImmediate`: the first
 * slice right after the I/O callbacks of the turn that queued the frames, later slices in
 * later turns, each after the I/O that arrived meanwhile — so a fan-out to thousands of
 * sockets cannot hold back an HTTP request for the whole of it. A connection is listed
 * once however many frames it queued (they leave in one write); frames queued after its
 * slice ran list it again.
 *
 * One scheduler per engine (its outbox owns it): engines in one process never wait for
 * each other's writes.
 */

import { Fifo } from "../fifo.js";

export interface QueuedWriter {
  /** Bytes waiting to be written. */
  readonly pendingByteLength: number;
  /** Writes what is queued (a dead socket drops it). */
  writePending(): void;
}

const SLICE_CONNECTIONS = 128;
const SLICE_BYTES = 512 * 1024;

export class WriteScheduler {
  private readonly waiting = new Fifo<QueuedWriter>();
  private scheduled = false;

  /** Writers waiting for their slice. */
  get length(): number {
    return this.waiting.length;
  }

  /** Lists a writer that just queued its first frame. */
  schedule(w: QueuedWriter): void {
    this.waiting.push(w);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(writeSlice, this);
    }
  }

  /** Writes one slice; true if writers are left for a later turn. */
  runSlice(): boolean {
    const waiting = this.waiting;
    let bytes = 0;
    for (let n = 0; n < SLICE_CONNECTIONS && bytes < SLICE_BYTES; n++) {
      const w = waiting.shift();
      if (w === undefined) break;
      bytes += w.pendingByteLength;
      w.writePending();
    }
    if (waiting.length > 0) return true;
    this.scheduled = false;
    return false;
  }
}

function writeSlice(s: WriteScheduler): void {
  if (s.runSlice()) setImmediate(writeSlice, s);
}
