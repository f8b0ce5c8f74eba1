/**
 * An adapter's bus subscriptions, kept in order per channel: a room created, emptied
 * and created again in one tick issues subscribe, unsubscribe, subscribe, and the bus
 * must see them in that order whatever its own queuing. The last operation of each
 * channel stays known until it settles, so `join()` can wait for it.
 */
import type { Bus, BusHandler } from "./bus.js";

function noop(): void {}

export class ChannelSubscriptions {
  private readonly bus: Bus;
  private readonly handler: BusHandler;
  /** Last operation of each channel still in flight. */
  private readonly ops = new Map<string, Promise<void>>();

  constructor(bus: Bus, handler: BusHandler) {
    this.bus = bus;
    this.handler = handler;
  }

  subscribe(channel: string): Promise<void> {
    return this.chain(channel, () => this.bus.subscribe(channel, this.handler));
  }

  unsubscribe(channel: string): Promise<void> {
    return this.chain(channel, () => this.bus.unsubscribe(channel));
  }

  /** The channel's operation in flight, if any. */
  pending(channel: string): Promise<void> | undefined {
    return this.ops.get(channel);
  }

  /** Resolves once every operation issued so far has settled. */
  async settled(): Promise<void> {
    await Promise.all([...this.ops.values()]);
  }

  /** Runs `op` after the channel's previous one. Never rejects: failures are the bus's to report. */
  private chain(channel: string, op: () => Promise<void>): Promise<void> {
    const prev = this.ops.get(channel);
    const run = (): Promise<void> => {
      try {
        return op();
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const next = (prev === undefined ? run() : prev.then(run)).catch(noop);
    this.ops.set(channel, next);
    void next.then(() => {
      if (this.ops.get(channel) === next) this.ops.delete(channel);
    });
    return next;
  }
}
