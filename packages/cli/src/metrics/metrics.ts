/**
 * Prometheus metrics of a Switchyard server with prom-client. Almost every series is read
 * at scrape time from counters the server already keeps ({@link ServerStatsReader}); the
 * few that other areas produce (API requests, webhook latency, refusals by auth reason,
 * disconnects by limit) are recorded through {@link metricsFor}`(io)?.observe…`.
 */
import type { Bus, Server } from "@switchyard/server";
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type LabelValues,
  Registry,
} from "prom-client";
import { ENGINE_ERROR_NAMES, type ServerStatsReader, statsFor } from "./stats.js";

/** Options of {@link SwitchyardMetrics}. */
export interface SwitchyardMetricsOptions {
  /** The cluster bus, if any (publish/receive/drop counters, up/down). */
  bus?: Bus;
  /** Prefix of Switchyard's series. @default "switchyard_" */
  prefix?: string;
  /** Also collect prom-client's process/Node.js metrics (event-loop lag, GC, memory, CPU). @default true */
  defaultMetrics?: boolean;
  /** Event-loop lag sampling precision, ms (default metrics). @default 10 */
  eventLoopMonitoringPrecision?: number;
  /** Buckets of the webhook latency histogram, seconds. @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] */
  webhookBuckets?: readonly number[];
}

const DEFAULT_WEBHOOK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const API_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type Labels = LabelValues<string>;
type Sample = readonly [labels: Labels, value: number];

/** A counter whose value is the server's own counter, copied at each scrape. */
function mirrorCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<Sample>,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect(this: Counter<string>) {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** A gauge read at each scrape. */
function readGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => Iterable<Sample>,
  /** How `--workers` aggregates it across workers. @default "sum" */
  aggregator: "sum" | "max" | "min" = "sum",
): void {
  new Gauge({
    name,
    help,
    labelNames,
    aggregator,
    registers: [registry],
    collect(this: Gauge<string>) {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

const registries = new WeakMap<Server, SwitchyardMetrics>();

/**
 * The metrics of a server, if installed: other areas record what only they see, e.g.
 * `metricsFor(ctx.io)?.observeApiRequest("/api/v1/publish", "POST", 202, seconds)`.
 */
export function metricsFor(io: Server): SwitchyardMetrics | undefined {
  return registries.get(io);
}

/** Prometheus metrics of one server in their own registry. */
export class SwitchyardMetrics {
  readonly registry = new Registry();
  readonly stats: ServerStatsReader;
  private readonly io: Server;
  private readonly apiRequests: Counter<string>;
  private readonly apiDuration: Histogram<string>;
  private readonly webhookDuration: Histogram<string>;
  private readonly authRefusals = new Map<string, number>();
  private readonly disconnects: Counter<string>;
  private closed = false;

  constructor(io: Server, opts: SwitchyardMetricsOptions = {}) {
    this.io = io;
    const stats = statsFor(io);
    this.stats = stats;
    const bus = opts.bus;
    if (bus !== undefined) stats.watchBus(bus);
    const p = opts.prefix ?? "switchyard_";
    const r = this.registry;
    const engine = io.engine;

    // ——— connections ———
    readGauge(
      r,
      `${p}connections`,
      "Open Engine.IO sessions by current transport.",
      ["transport"],
      () =>
        [...stats.connectionsByTransport()].map(([transport, n]) => [{ transport }, n] as const),
    );
    readGauge(
      r,
      `${p}sockets`,
      "Connected Socket.IO sockets of this node by namespace.",
      ["namespace"],
      () => [...stats.socketsByNamespace()].map(([namespace, n]) => [{ namespace }, n] as const),
    );
    readGauge(
      r,
      `${p}rooms`,
      "Rooms held on this node by namespace (own-id rooms excluded).",
      ["namespace"],
      () => [...stats.roomCounts()].map(([namespace, n]) => [{ namespace }, n] as const),
    );
    mirrorCounter(r, `${p}handshakes_total`, "Engine.IO handshakes accepted.", [], () => [
      [{}, engine.stats.handshakes],
    ]);
    mirrorCounter(r, `${p}upgrades_total`, "Polling sessions upgraded to WebSocket.", [], () => [
      [{}, engine.stats.upgrades],
    ]);
    mirrorCounter(
      r,
      `${p}refusals_total`,
      "Refused connections by layer (engine: Engine.IO request refused; socketio: CONNECT refused; auth: refused by the configured auth) and reason.",
      ["layer", "reason"],
      () => {
        const out: Sample[] = [];
        for (const [code, n] of Object.entries(engine.stats.connectionErrors))
          out.push([{ layer: "engine", reason: ENGINE_ERROR_NAMES[Number(code)] ?? code }, n]);
        out.push([{ layer: "socketio", reason: "middleware" }, io.stats.connectRefusals]);
        out.push([{ layer: "socketio", reason: "invalid_namespace" }, io.stats.invalidNamespaces]);
        for (const [reason, n] of this.authRefusals) out.push([{ layer: "auth", reason }, n]);
        return out;
      },
    );
    mirrorCounter(
      r,
      `${p}session_closes_total`,
      "Closed Engine.IO sessions by reason.",
      ["reason"],
      () => Object.entries(engine.stats.closes).map(([reason, n]) => [{ reason }, n] as const),
    );
    mirrorCounter(
      r,
      `${p}slow_consumer_disconnects_total`,
      "Sessions closed because they could not keep up (outbound buffer over maxBufferedBytes).",
      [],
      () => [[{}, engine.stats.closes["slow consumer"] ?? 0]],
    );
    this.disconnects = new Counter({
      name: `${p}policy_disconnects_total`,
      help: "Clients disconnected by a policy of switchyard serve (rate limits, token expiry), by reason.",
      labelNames: ["reason"],
      registers: [r],
    });

    // ——— traffic ———
    mirrorCounter(
      r,
      `${p}packets_received_total`,
      "Engine.IO message packets received from clients.",
      [],
      () => [[{}, stats.packetsIn]],
    );
    mirrorCounter(
      r,
      `${p}bytes_received_total`,
      "Payload bytes of the message packets received from clients.",
      [],
      () => [[{}, stats.bytesIn]],
    );
    mirrorCounter(
      r,
      `${p}packets_sent_total`,
      "Engine.IO packets sent to clients (events, broadcast parts, acks, pings).",
      [],
      () => [[{}, engine.stats.packetsOut]],
    );
    mirrorCounter(
      r,
      `${p}bytes_sent_total`,
      "Payload bytes of the packets sent to clients (text: UTF-16 units + 1; no framing).",
      [],
      () => [[{}, engine.stats.bytesOut]],
    );
    mirrorCounter(
      r,
      `${p}broadcasts_total`,
      "Broadcasts that reached this node's sessions (one per emit to a room, namespace or several sockets).",
      [],
      () => [[{}, engine.stats.broadcasts]],
    );
    mirrorCounter(
      r,
      `${p}deliveries_total`,
      "Recipients of those broadcasts (a broadcast to n sessions counts n).",
      [],
      () => [[{}, engine.stats.deliveries]],
    );
    mirrorCounter(
      r,
      `${p}acks_received_total`,
      "Client acks received for the server's emits.",
      [],
      () => [[{}, io.stats.acksReceived]],
    );
    mirrorCounter(
      r,
      `${p}ack_timeouts_total`,
      "Acks not received in time, per client (timeout() emits and timed broadcasts with ack).",
      [],
      () => [[{}, io.stats.ackTimeouts]],
    );
    mirrorCounter(
      r,
      `${p}volatile_dropped_total`,
      "Volatile packets dropped (transport not writable).",
      [],
      () => [[{}, engine.stats.droppedVolatile]],
    );
    mirrorCounter(
      r,
      `${p}protocol_errors_total`,
      "Socket.IO-layer errors by kind (parse, unexpected packets, validation, handler and middleware exceptions).",
      ["kind"],
      () => {
        const s = io.stats;
        return [
          [{ kind: "parse" }, s.parseErrors],
          [{ kind: "unexpected_packet" }, s.unexpectedPackets],
          [{ kind: "validation" }, s.validationFailures],
          [{ kind: "handler" }, s.handlerErrors],
          [{ kind: "middleware" }, s.middlewareErrors],
        ];
      },
    );
    readGauge(
      r,
      `${p}outbox_queued_deliveries`,
      "Deliveries waiting in the engine's outbox (delivery-queue depth).",
      [],
      () => [[{}, engine.outbox.queuedDeliveries]],
    );

    // ——— cluster ———
    if (bus !== undefined) {
      readGauge(
        r,
        `${p}bus_up`,
        "1 while the bus reaches its broker.",
        [],
        () => [[{}, bus.healthy ? 1 : 0]],
        "min",
      );
      mirrorCounter(
        r,
        `${p}bus_messages_total`,
        "Bus messages by direction (published to / received from the broker, dropped).",
        ["direction"],
        () => {
          const s = bus.stats;
          return [
            [{ direction: "published" }, s.published],
            [{ direction: "received" }, s.received],
            [{ direction: "dropped" }, s.dropped],
          ];
        },
      );
      readGauge(r, `${p}bus_queued`, "Publishes waiting in the bus's offline queue.", [], () => [
        [{}, bus.stats.queued],
      ]);
      mirrorCounter(r, `${p}bus_outages_total`, "Broker outages (bus down events).", [], () => [
        [{}, bus.stats.outages],
      ]);
      mirrorCounter(
        r,
        `${p}bus_transitions_total`,
        "Bus up/down events seen since start.",
        ["state"],
        () => [
          [{ state: "up" }, stats.busTransitions.up],
          [{ state: "down" }, stats.busTransitions.down],
        ],
      );
    }
    readGauge(
      r,
      `${p}cluster_nodes`,
      "Nodes of the cluster seen by this node's adapter (itself included), by namespace.",
      ["namespace"],
      () =>
        stats
          .clusterAdapters()
          .map(({ namespace, adapter }) => [{ namespace }, 1 + adapter.liveNodes().size] as const),
      "max",
    );
    mirrorCounter(
      r,
      `${p}cluster_messages_total`,
      "Cluster adapter messages by namespace and kind (received, published, dropped, malformed).",
      ["namespace", "kind"],
      () => {
        const out: Sample[] = [];
        for (const { namespace, adapter } of stats.clusterAdapters()) {
          const s = adapter.stats;
          out.push([{ namespace, kind: "received" }, s.received]);
          out.push([{ namespace, kind: "published" }, s.published]);
          out.push([{ namespace, kind: "dropped" }, s.dropped]);
          out.push([{ namespace, kind: "malformed" }, s.malformed]);
        }
        return out;
      },
    );
    mirrorCounter(
      r,
      `${p}errors_total`,
      "Errors by stable code (Engine.IO refusals, bus events, bad dashboard keys; auth refusals and policy disconnects have their own series).",
      ["code"],
      () => [...stats.errorsByCode].map(([code, n]) => [{ code }, n] as const),
    );

    // ——— produced by other areas ———
    this.apiRequests = new Counter({
      name: `${p}api_requests_total`,
      help: "HTTP API requests by route, method and status.",
      labelNames: ["route", "method", "status"],
      registers: [r],
    });
    this.apiDuration = new Histogram({
      name: `${p}api_request_duration_seconds`,
      help: "HTTP API request duration by route.",
      labelNames: ["route"],
      buckets: API_BUCKETS,
      registers: [r],
    });
    this.webhookDuration = new Histogram({
      name: `${p}webhook_duration_seconds`,
      help: "Latency of calls to the backend's webhooks by hook (connect, subscribe, event) and outcome (ok, refused, error, timeout).",
      labelNames: ["hook", "outcome"],
      buckets: [...(opts.webhookBuckets ?? DEFAULT_WEBHOOK_BUCKETS)],
      registers: [r],
    });

    if (opts.defaultMetrics ?? true)
      collectDefaultMetrics({
        register: r,
        eventLoopMonitoringPrecision: opts.eventLoopMonitoringPrecision ?? 10,
      });
    registries.set(io, this);
  }

  /** Records one API request (`route` is the route template, never the raw path). */
  observeApiRequest(route: string, method: string, status: number, seconds?: number): void {
    this.apiRequests.inc({ route, method, status: String(status) });
    if (seconds !== undefined) this.apiDuration.observe({ route }, seconds);
  }

  /** Records one webhook call's latency and outcome. */
  observeWebhook(hook: string, outcome: string, seconds: number): void {
    this.webhookDuration.observe({ hook, outcome }, seconds);
  }

  /** Counts a connection refused by the configured auth, by stable reason code (the dashboard lists it under errors by code). */
  countAuthRefusal(reason: string): void {
    this.authRefusals.set(reason, (this.authRefusals.get(reason) ?? 0) + 1);
    this.stats.noteAreaCode(reason, "connection refused by auth");
  }

  /** Counts a client disconnected by a policy (rate limit, token expiry), by reason (the dashboard lists it under errors by code). */
  countPolicyDisconnect(reason: string): void {
    this.disconnects.inc({ reason });
    this.stats.noteAreaCode(reason, "disconnected by policy");
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Unregisters from {@link metricsFor}, stops default collectors' timers and listeners. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (registries.get(this.io) === this) registries.delete(this.io);
    this.registry.clear();
    this.stats.release();
  }
}
