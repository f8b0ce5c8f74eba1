/**
 * The dashboard's data: a ring of samples taken every `intervalMs` (connections, sockets,
 * message and byte rates in, bus health) so the page plots history from its first load, and
 * a snapshot of what is true now (rooms and sizes, cluster nodes, errors by code).
 */
import type { Bus, Server } from "@switchyard/server";
import {
  ENGINE_ERROR_NAMES,
  type RecentError,
  type ServerStatsReader,
  statsFor,
} from "../metrics/stats.js";

/** One point of the plotted history. */
export interface Sample {
  /** Epoch milliseconds. */
  t: number;
  connections: number;
  sockets: number;
  /** Message packets received per second since the previous sample. */
  messagesInPerSec: number;
  bytesInPerSec: number;
  /** 1 up, 0 down, null without a bus. */
  busUp: number | null;
}

/** What `GET {path}/api/snapshot` answers. */
export interface DashboardSnapshot {
  now: number;
  intervalMs: number;
  node: { uid: string; pid: number; uptimeSeconds: number };
  history: Sample[];
  transports: Record<string, number>;
  namespaces: {
    name: string;
    sockets: number;
    totalRooms: number;
    rooms: { name: string; size: number }[];
  }[];
  cluster: {
    bus: {
      healthy: boolean;
      published: number;
      received: number;
      dropped: number;
      queued: number;
      outages: number;
    } | null;
    /**
     * This node and the live others; `connections` and `busUp` come from each node's own
     * answer (null when it did not answer in time, e.g. no dashboard installed there).
     */
    nodes: NodeView[];
    /** Sum of the connections of the nodes that answered. */
    totalConnections: number;
  };
  errors: { byCode: Record<string, number>; recent: RecentError[] };
  counters: {
    handshakes: number;
    upgrades: number;
    closes: Record<string, number>;
    refusals: Record<string, number>;
  };
}

/** What a node answers to another node's dashboard (over the cluster bus). */
export interface NodeSummary {
  uid: string;
  pid: number;
  connections: number;
  sockets: number;
  messagesInPerSec: number;
  busUp: number | null;
}

/** One node in the snapshot. */
export interface NodeView {
  uid: string;
  self: boolean;
  live: boolean;
  pid: number | null;
  connections: number | null;
  messagesInPerSec: number | null;
  busUp: number | null;
}

/** The server-side event nodes' dashboards ask each other with (serverSideEmitWithAck). */
export const PEER_EVENT = "switchyard:dashboard";

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A peer's answer, checked (it comes over the bus). */
function asSummary(v: unknown): NodeSummary | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.uid !== "string" || o.uid.length > 100) return undefined;
  return {
    uid: o.uid,
    pid: num(o.pid) ?? 0,
    connections: num(o.connections) ?? 0,
    sockets: num(o.sockets) ?? 0,
    messagesInPerSec: num(o.messagesInPerSec) ?? 0,
    busUp: num(o.busUp),
  };
}

/** Options of {@link DashboardSampler}. */
export interface SamplerOptions {
  intervalMs: number;
  historySize: number;
  roomsLimit: number;
  bus?: Bus;
}

export class DashboardSampler {
  readonly stats: ServerStatsReader;
  private readonly io: Server;
  private readonly opts: SamplerOptions;
  private readonly history: Sample[] = [];
  private readonly timer: NodeJS.Timeout;
  private last: { t: number; packets: number; bytes: number };
  private readonly started = Date.now();

  constructor(io: Server, opts: SamplerOptions) {
    this.io = io;
    this.opts = opts;
    this.stats = statsFor(io);
    if (opts.bus !== undefined) this.stats.watchBus(opts.bus);
    this.last = { t: Date.now(), packets: this.stats.packetsIn, bytes: this.stats.bytesIn };
    this.sample();
    this.timer = setInterval(() => this.sample(), opts.intervalMs);
    this.timer.unref();
  }

  /** Takes one sample now (also called by the timer). */
  sample(): void {
    const now = Date.now();
    const s = this.stats;
    const dt = Math.max(1, now - this.last.t) / 1000;
    let sockets = 0;
    for (const n of s.socketsByNamespace().values()) sockets += n;
    const bus = this.opts.bus;
    const point: Sample = {
      t: now,
      connections: this.io.engine.clientsCount,
      sockets,
      messagesInPerSec: Math.round(((s.packetsIn - this.last.packets) / dt) * 10) / 10,
      bytesInPerSec: Math.round((s.bytesIn - this.last.bytes) / dt),
      busUp: bus === undefined ? null : bus.healthy ? 1 : 0,
    };
    this.last = { t: now, packets: s.packetsIn, bytes: s.bytesIn };
    this.history.push(point);
    if (this.history.length > this.opts.historySize) this.history.shift();
  }

  /** The uid this node's cluster adapter uses ("standalone" without one). */
  get uid(): string {
    const adapters = this.stats.clusterAdapters();
    return (adapters.find((a) => a.namespace === "/") ?? adapters[0])?.adapter.uid ?? "standalone";
  }

  /** What this node tells the other nodes' dashboards. */
  summary(): NodeSummary {
    const last = this.history.at(-1);
    return {
      uid: this.uid,
      pid: process.pid,
      connections: this.io.engine.clientsCount,
      sockets: last?.sockets ?? 0,
      messagesInPerSec: last?.messagesInPerSec ?? 0,
      busUp: last?.busUp ?? null,
    };
  }

  /** The other nodes' summaries (none without a cluster adapter; none after `timeoutMs`). */
  async peers(timeoutMs: number): Promise<NodeSummary[]> {
    if (this.stats.clusterAdapters().length === 0) return [];
    let timer: NodeJS.Timeout | undefined;
    try {
      const answers = await Promise.race([
        this.io.serverSideEmitWithAck(PEER_EVENT),
        new Promise<unknown[]>((resolve) => {
          timer = setTimeout(() => resolve([]), timeoutMs);
        }),
      ]);
      return answers.map(asSummary).filter((x): x is NodeSummary => x !== undefined);
    } catch {
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  async snapshot(peerTimeoutMs = 1000): Promise<DashboardSnapshot> {
    const s = this.stats;
    const engine = this.io.engine;
    const adapters = s.clusterAdapters();
    const main = adapters.find((a) => a.namespace === "/") ?? adapters[0];
    const selfUid = main?.adapter.uid ?? "standalone";
    const me = this.summary();
    const answers = new Map((await this.peers(peerTimeoutMs)).map((p) => [p.uid, p]));
    const nodes: NodeView[] = [
      {
        uid: selfUid,
        self: true,
        live: true,
        pid: me.pid,
        connections: me.connections,
        messagesInPerSec: me.messagesInPerSec,
        busUp: me.busUp,
      },
    ];
    if (main !== undefined)
      for (const uid of main.adapter.liveNodes()) {
        const a = answers.get(uid);
        nodes.push({
          uid,
          self: false,
          live: true,
          pid: a?.pid ?? null,
          connections: a?.connections ?? null,
          messagesInPerSec: a?.messagesInPerSec ?? null,
          busUp: a?.busUp ?? null,
        });
      }
    let totalConnections = 0;
    for (const n of nodes) totalConnections += n.connections ?? 0;
    const bus = this.opts.bus;
    const refusals: Record<string, number> = {};
    for (const [code, n] of Object.entries(engine.stats.connectionErrors))
      refusals[ENGINE_ERROR_NAMES[Number(code)] ?? code] = n;
    refusals.MIDDLEWARE = this.io.stats.connectRefusals;
    refusals.INVALID_NAMESPACE = this.io.stats.invalidNamespaces;
    const sockets = s.socketsByNamespace();
    return {
      now: Date.now(),
      intervalMs: this.opts.intervalMs,
      node: {
        uid: selfUid,
        pid: process.pid,
        uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      },
      history: [...this.history],
      transports: Object.fromEntries(s.connectionsByTransport()),
      namespaces: s.rooms(this.opts.roomsLimit).map((r) => ({
        name: r.namespace,
        sockets: sockets.get(r.namespace) ?? 0,
        totalRooms: r.total,
        rooms: r.rooms,
      })),
      cluster: {
        bus:
          bus === undefined
            ? null
            : {
                healthy: bus.healthy,
                published: bus.stats.published,
                received: bus.stats.received,
                dropped: bus.stats.dropped,
                queued: bus.stats.queued,
                outages: bus.stats.outages,
              },
        nodes,
        totalConnections,
      },
      errors: {
        byCode: Object.fromEntries([...s.errorsByCode, ...s.areaCodes]),
        recent: [...s.recentErrors].reverse(),
      },
      counters: {
        handshakes: engine.stats.handshakes,
        upgrades: engine.stats.upgrades,
        closes: { ...engine.stats.closes },
        refusals,
      },
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.stats.release();
  }
}
