/**
 * Which node listens where: every node announces `{nodeId, internal host, port}` on one
 * bus channel, signed with the cluster secret, at start ("hello", answered once by every
 * node that hears it) and then every `announceInterval` ms. A node that has not been
 * heard from for `nodeTimeout` ms (SIGKILLed, partitioned) is forgotten; one that closes
 * says "bye". A session id can only name an entry of this directory: the address always
 * comes from an authenticated announcement, never from the request.
 */
import type { Bus } from "../adapter/bus.js";
import { mac, macMatches } from "./forward-auth.js";

/** The bus channel of announcements (versioned: a future format gets a new channel). */
export const DIRECTORY_CHANNEL = "switchyard#forwarding#v1";

const NODE_ID = /^[A-Za-z0-9_-]{1,16}$/;
const MAX_MESSAGE_BYTES = 1024;

type Kind = "hello" | "here" | "bye";

/** A live node of the directory. */
export interface NodeEntry {
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  /** Local time of the last announcement. */
  lastSeen: number;
  /** The sender's timestamp of the last announcement: an older one (a replay) changes nothing. */
  sentAt: number;
}

/** Counters of the directory (read by metrics and tests). */
export interface DirectoryStats {
  /** Announcements refused: malformed, badly signed, or outside the replay window. */
  refused: number;
  /** Nodes forgotten after `nodeTimeout` without an announcement. */
  expired: number;
}

export interface DirectoryOptions {
  readonly bus: Bus;
  readonly secret: Buffer;
  readonly nodeId: string;
  readonly announceInterval: number;
  readonly nodeTimeout: number;
  readonly replayWindow: number;
}

export class NodeDirectory {
  readonly stats: DirectoryStats = { refused: 0, expired: 0 };
  private readonly nodes = new Map<string, NodeEntry>();
  private timer: NodeJS.Timeout | undefined;
  private self: { host: string; port: number } | undefined;
  private readonly onMessage = (_channel: string, payload: Buffer) => this.receive(payload);

  constructor(private readonly o: DirectoryOptions) {}

  /** Subscribes, announces `host:port` as this node's internal address, and keeps announcing. */
  async start(host: string, port: number): Promise<void> {
    this.self = { host, port };
    await this.o.bus.subscribe(DIRECTORY_CHANNEL, this.onMessage);
    if (this.self === undefined) return; // stopped meanwhile
    this.announce("hello");
    this.timer = setInterval(() => {
      this.sweep();
      this.announce("here");
    }, this.o.announceInterval);
    this.timer.unref();
  }

  /** Says "bye" and stops listening; entries are dropped. */
  async stop(): Promise<void> {
    if (this.self === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.announce("bye");
    this.self = undefined;
    this.nodes.clear();
    await this.o.bus.unsubscribe(DIRECTORY_CHANNEL).catch(() => {});
  }

  /** The live entry of `nodeId`, or undefined (unknown, or silent past `nodeTimeout`). */
  get(nodeId: string): NodeEntry | undefined {
    const e = this.nodes.get(nodeId);
    if (e === undefined) return undefined;
    if (Date.now() - e.lastSeen > this.o.nodeTimeout) {
      this.nodes.delete(nodeId);
      this.stats.expired++;
      return undefined;
    }
    return e;
  }

  /** Ids of the live nodes other than this one. */
  peers(): string[] {
    this.sweep();
    return [...this.nodes.keys()];
  }

  private sweep(): void {
    for (const id of [...this.nodes.keys()]) this.get(id);
  }

  private announce(kind: Kind): void {
    const self = this.self;
    if (self === undefined) return;
    const ts = String(Date.now());
    const fields = [kind, this.o.nodeId, self.host, String(self.port), ts];
    const m = mac(this.o.secret, ["announce", ...fields]);
    const msg = { k: kind, n: this.o.nodeId, h: self.host, p: self.port, t: ts, m };
    this.o.bus.publish(DIRECTORY_CHANNEL, Buffer.from(JSON.stringify(msg)));
  }

  private receive(payload: Buffer): void {
    if (this.self === undefined) return;
    const msg = this.parse(payload);
    if (msg === undefined) {
      this.stats.refused++;
      return;
    }
    if (msg.n === this.o.nodeId) return; // our own (a bus delivers to its publisher too)
    const sentAt = Number(msg.t);
    const known = this.nodes.get(msg.n);
    if (known !== undefined && sentAt < known.sentAt) return;
    if (msg.k === "bye") {
      this.nodes.delete(msg.n);
      return;
    }
    if (known !== undefined && known.host === msg.h && known.port === msg.p) {
      known.lastSeen = Date.now();
      known.sentAt = sentAt;
    } else {
      // New, or restarted on another address under the same id.
      const entry = { nodeId: msg.n, host: msg.h, port: msg.p, lastSeen: Date.now(), sentAt };
      this.nodes.set(msg.n, entry);
    }
    // A starting node learns the others at once instead of after an interval. Only a
    // signed hello is answered, so the bus cannot be made to echo for an outsider.
    if (msg.k === "hello") this.announce("here");
  }

  private parse(
    payload: Buffer,
  ): { k: Kind; n: string; h: string; p: number; t: string } | undefined {
    if (payload.length > MAX_MESSAGE_BYTES) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(payload.toString("utf8"));
    } catch {
      return undefined;
    }
    if (typeof v !== "object" || v === null) return undefined;
    const { k, n, h, p, t, m } = v as Record<string, unknown>;
    if (k !== "hello" && k !== "here" && k !== "bye") return undefined;
    if (typeof n !== "string" || !NODE_ID.test(n)) return undefined;
    if (typeof h !== "string" || h.length === 0 || h.length > 253 || /[\s\n]/.test(h))
      return undefined;
    if (typeof p !== "number" || !Number.isInteger(p) || p < 1 || p > 65_535) return undefined;
    if (typeof t !== "string" || !/^\d{1,15}$/.test(t)) return undefined;
    if (Math.abs(Date.now() - Number(t)) > this.o.replayWindow) return undefined;
    if (typeof m !== "string") return undefined;
    if (!macMatches(this.o.secret, ["announce", k, n, h, String(p), t], m)) return undefined;
    return { k, n, h, p, t };
  }
}
