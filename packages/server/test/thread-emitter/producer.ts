/**
 * A thread-emitter producer for thread-emitter.test.ts, run as a worker thread (config
 * in `workerData`) or a forked child (config in env PRODUCER). MODE=pace emits `rate`
 * events/s for `durationMs` to `room` (each `[i, Buffer]`), waiting for room in the
 * window rather than dropping; MODE=fill emits in a tight loop until refused, then
 * checks that its flush waits while the main side does not acknowledge. Reports go to
 * the parent as `{ test: true, … }` messages (beside the emitter's own).
 */
import { isMainThread, type MessagePort, parentPort, workerData } from "node:worker_threads";
import { threadEmitter } from "@switchyard/server";

interface Config {
  mode: "pace" | "fill";
  room: string;
  rate: number;
  durationMs: number;
  maxInFlight: number;
  port?: MessagePort;
}

const cfg: Config = isMainThread
  ? (JSON.parse(process.env.PRODUCER ?? "{}") as Config)
  : (workerData as Config);
const endpoint = isMainThread ? process : (cfg.port ?? parentPort);
const report = (m: object): void => {
  if (isMainThread) process.send?.({ test: true, ...m });
  else parentPort?.postMessage({ test: true, ...m });
};

const emitter = threadEmitter<{ tick: (i: number, b: Buffer) => void }>(endpoint, {
  maxInFlight: cfg.maxInFlight,
});

if (cfg.mode === "pace") {
  const total = Math.round((cfg.rate * cfg.durationMs) / 1000);
  const start = performance.now();
  let i = 0;
  let waits = 0;
  // Bounded: `total` events, and at most durationMs + 20 s of wall time.
  while (i < total && performance.now() - start < cfg.durationMs + 20_000) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * cfg.rate) / 1000) + 1);
    for (; i < due; i++) {
      if (!emitter.writable) {
        waits++;
        await emitter.drain();
      }
      const buf = Buffer.alloc(2);
      buf.writeUInt16BE(i % 65536);
      if (!emitter.to(cfg.room).emit("tick", i, buf)) throw new Error(`refused ${i}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await emitter.flush();
  report({ done: true, sent: i, waits, ms: performance.now() - start, stats: emitter.stats });
  await emitter.close();
} else {
  let accepted = 0;
  for (let n = 0; n < 10_000; n++) {
    if (!emitter.to(cfg.room).emit("tick", n, Buffer.alloc(0))) break;
    accepted++;
  }
  const refusedOnce = !emitter.to(cfg.room).emit("tick", -1, Buffer.alloc(0));
  let flushed = false;
  const flushing = emitter.flush().then(() => {
    flushed = true;
  });
  report({ filled: true, accepted, refusedOnce, stats: emitter.stats });
  await new Promise((r) => setTimeout(r, 300));
  report({ stalled: true, flushedWhileStalled: flushed, stats: emitter.stats });
  await flushing;
  report({ flushed: true, stats: emitter.stats, heapUsed: process.memoryUsage().heapUsed });
  await emitter.close();
}
