/**
 * One set of health listeners per bus, shared by every adapter on it (a server has one
 * adapter per namespace; one listener each would trip EventEmitter's leak warning and
 * log every outage once per namespace).
 */
import type { Bus } from "./bus.js";

/** What the watch relays bus health to. */
export interface BusWatcher {
  readonly bus: Bus;
  onBusDown(err: Error | undefined): void;
  onBusUp(): void;
}

interface Watch {
  readonly watchers: Set<BusWatcher>;
  readonly onDown: (err: Error | undefined) => void;
  readonly onUp: () => void;
  readonly onError: (err: Error) => void;
  /** This outage was logged / a bus error was logged since the last `up`. */
  warnedDown: boolean;
  warnedError: boolean;
}

const watches = new WeakMap<Bus, Watch>();

export function watchBus(watcher: BusWatcher): void {
  const bus = watcher.bus;
  let watch = watches.get(bus);
  if (watch === undefined) {
    const watchers = new Set<BusWatcher>();
    const w: Watch = {
      watchers,
      warnedDown: false,
      warnedError: false,
      onDown: (err) => {
        if (!w.warnedDown) {
          w.warnedDown = true;
          console.warn(
            `[switchyard] cluster bus down${err === undefined ? "" : `: ${err.message}`}; ` +
              "local delivery continues, cluster messages wait in its offline queue until it is back",
          );
        }
        for (const x of watchers) x.onBusDown(err);
      },
      onUp: () => {
        w.warnedDown = false;
        w.warnedError = false;
        for (const x of watchers) x.onBusUp();
      },
      onError: (err) => {
        // Listening at all keeps an EventEmitter-based bus from crashing the node on a
        // non-fatal error; the first one of each healthy period is logged.
        if (!w.warnedError) {
          w.warnedError = true;
          console.warn(`[switchyard] cluster bus error: ${err.message}`);
        }
      },
    };
    watch = w;
    watches.set(bus, w);
    bus.on("down", w.onDown);
    bus.on("up", w.onUp);
    bus.on("error", w.onError);
  }
  watch.watchers.add(watcher);
}

export function unwatchBus(watcher: BusWatcher): void {
  const bus = watcher.bus;
  const watch = watches.get(bus);
  if (watch === undefined || !watch.watchers.delete(watcher) || watch.watchers.size > 0) return;
  watches.delete(bus);
  bus.off("down", watch.onDown);
  bus.off("up", watch.onUp);
  bus.off("error", watch.onError);
}
