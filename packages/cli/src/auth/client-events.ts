/**
 * Client → backend events: events clients emit are POSTed to `clientEvents.webhook.url`
 * (or published on the cluster bus, `clientEvents.bus`: see {@link busSender})
 * and the backend's answer becomes the client's ack, so a Flask view can play the role of
 * `@socketio.on("message")`.
 *
 * One event per POST (`batchSize: 1`): `{ event, args, ack, socket: { id, nsp, data } }`;
 * the answer `{ "ack": [a, b] }` acks with `(a, b)`, `{ "error": { … } }` acks with
 * `{ error }`, any other JSON value is the ack's single argument. Batches (`batchSize > 1`):
 * `{ events: [ … ] }` answered by `{ results: [ … ] }` in the same order. Binary arguments
 * travel as `{ "$binary": "<base64>" }`. Failures ack `{ error: { code, message } }` with
 * SY_ERR_BACKEND_TIMEOUT / _BUSY / _UNAVAILABLE. Webhook calls are bounded (in flight,
 * queued, per socket) and time out, so a slow or dead backend never stalls other clients.
 */
import { randomUUID } from "node:crypto";
import type { Bus, Socket } from "@switchyard/server";
import type { Disposable, ServeContext } from "../context.js";
import { ackError, ClientErrorCode, ClientErrorCode as Code, CodeCounter } from "./codes.js";
import { chargeEvent } from "./limits.js";
import { forEachNamespace } from "./namespaces.js";
import { webhookObserver } from "./report.js";
import type { ClientEventsConfig } from "./schema.js";
import { WebhookClient, type WebhookResult } from "./webhook-client.js";

type Ack = (...args: unknown[]) => void;

interface Pending {
  socket: Socket;
  body: {
    event: string;
    args: unknown[];
    ack: boolean;
    socket: { id: string; nsp: string; data: unknown };
  };
  ack: Ack | undefined;
}

/** What {@link installClientEvents} returns: counters for metrics and a close function. */
export interface ClientEventsHandle {
  readonly stats: {
    forwarded: number;
    acked: number;
    /** Bus replies dropped: too large, not JSON, no string `id`. */
    badReplies: number;
    refusals: Record<string, number>;
  };
  readonly webhook: WebhookClient | undefined;
  close(): void;
}

/** Replaces binary values by `{ $binary: base64 }` so arguments travel as JSON. */
export function toJson(value: unknown, depth = 0): unknown {
  if (depth > 64) return null;
  if (value instanceof Uint8Array)
    return {
      $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"),
    };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map((v) => toJson(v, depth + 1));
  if (typeof value === "object" && value !== null) {
    // A null prototype: a "__proto__" key from a client stays a plain key.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v, depth + 1);
    return out;
  }
  return value;
}

function failCode(res: Exclude<WebhookResult, { ok: true }>): ClientErrorCode {
  return res.reason === "timeout"
    ? Code.BackendTimeout
    : res.reason === "busy"
      ? Code.BackendBusy
      : Code.BackendUnavailable;
}

export async function installClientEvents(
  ctx: ServeContext,
  config: ClientEventsConfig,
): Promise<ClientEventsHandle & Disposable> {
  const counter = new CodeCounter();
  const stats = { forwarded: 0, acked: 0, badReplies: 0, refusals: counter.counts };
  if (config.webhook === undefined && config.bus === undefined) {
    return { stats, webhook: undefined, close() {} };
  }
  if (config.bus !== undefined && ctx.bus === undefined) {
    throw new Error('clientEvents.bus: needs a cluster bus (bus: "redis://…" or "amqp://…")');
  }
  const log = ctx.log.child({ area: "client-events" });
  const hook = config.webhook === undefined ? undefined : new WebhookClient(config.webhook);
  if (hook !== undefined) hook.onLatency = webhookObserver(ctx.io, "events");
  const all = config.events.includes("*");
  const names = new Set(config.events);
  const pendingBySocket = new WeakMap<Socket, number>();
  let batch: Pending[] = [];
  let batchTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const settle = (p: Pending, answer: unknown) => {
    const n = (pendingBySocket.get(p.socket) ?? 1) - 1;
    pendingBySocket.set(p.socket, n);
    if (p.ack === undefined || !p.socket.connected) return;
    stats.acked++;
    if (
      typeof answer === "object" &&
      answer !== null &&
      Array.isArray((answer as { ack?: unknown }).ack)
    ) {
      p.ack(...(answer as { ack: unknown[] }).ack);
    } else if (typeof answer === "object" && answer !== null && "error" in answer) {
      p.ack({ error: (answer as { error: unknown }).error });
    } else {
      p.ack(answer ?? null);
    }
  };

  const fail = (p: Pending, code: ClientErrorCode, detail: string) => {
    counter.add(code);
    if (ctx.limiter(`client-events:${code}`))
      log.warn(
        { code, detail },
        "forwarding a client event failed (further ones this interval are only counted)",
      );
    settle(p, ackError(code, `backend: ${detail}`));
  };

  const viaBus =
    config.bus === undefined || ctx.bus === undefined
      ? undefined
      : await busSender(ctx.bus, config.bus, settle, fail, () => stats.badReplies++);

  const sendOne = async (p: Pending) => {
    if (hook === undefined) return;
    const res = await hook.post(p.body, p.socket.id);
    if (res.ok) settle(p, res.body);
    else fail(p, failCode(res), res.detail);
  };

  const flush = async () => {
    if (batchTimer !== undefined) clearTimeout(batchTimer);
    batchTimer = undefined;
    const items = batch;
    batch = [];
    if (items.length === 0 || hook === undefined) return;
    const res = await hook.post({ events: items.map((p) => p.body) });
    if (!res.ok) {
      for (const p of items) fail(p, failCode(res), res.detail);
      return;
    }
    const results = (res.body as { results?: unknown } | undefined)?.results;
    if (!Array.isArray(results) || results.length !== items.length) {
      for (const p of items)
        fail(p, Code.BackendUnavailable, "batch answer lacks results[] of the batch's length");
      return;
    }
    for (let i = 0; i < items.length; i++) settle(items[i]!, results[i]);
  };

  const forward = (socket: Socket, args: unknown[]) => {
    const last = args[args.length - 1];
    const ack = typeof last === "function" ? (last as Ack) : undefined;
    const payload = args.slice(1, ack === undefined ? args.length : -1);
    const pending = pendingBySocket.get(socket) ?? 0;
    if (pending >= config.maxPendingPerSocket || closed) {
      counter.add(Code.BackendBusy);
      ack?.(
        ackError(
          Code.BackendBusy,
          `more than ${config.maxPendingPerSocket} events waiting for the backend`,
        ),
      );
      return;
    }
    pendingBySocket.set(socket, pending + 1);
    stats.forwarded++;
    const p: Pending = {
      socket,
      ack,
      body: {
        event: args[0] as string,
        args: toJson(payload) as unknown[],
        ack: ack !== undefined,
        socket: { id: socket.id, nsp: socket.nsp.name, data: toJson(socket.data ?? null) },
      },
    };
    if (viaBus !== undefined) {
      viaBus.send(p);
      return;
    }
    if (config.batchSize <= 1) {
      void sendOne(p);
      return;
    }
    batch.push(p);
    if (batch.length >= config.batchSize) void flush();
    else if (batchTimer === undefined)
      batchTimer = setTimeout(() => void flush(), config.batchDelayMs);
  };

  const onConnection = (socket: Socket) => {
    socket.use((args, next) => {
      const ev = args[0];
      if (typeof ev !== "string" || ev.startsWith("switchyard:") || !(all || names.has(ev))) {
        next();
        return;
      }
      if (!chargeEvent(socket, args)) return;
      forward(socket, args);
    });
  };
  const stop = forEachNamespace(ctx.io, ctx.config.namespaces, (nsp) => {
    nsp.on("connection", onConnection);
    return () => nsp.off("connection", onConnection);
  });
  return {
    stats,
    webhook: hook,
    close() {
      closed = true;
      stop();
      if (batchTimer !== undefined) clearTimeout(batchTimer);
      hook?.close();
      viaBus?.close();
    },
  };
}

/**
 * Events over the cluster bus: each is published as JSON
 * `{ v: 1, id, replyTo, event, args, ack, socket }` on `channel`; when the client asked for
 * an ack, the backend publishes `{ id, …answer }` on `replyTo` (this node's own channel)
 * within `replyTimeoutMs`, the answer read as a webhook's. At-most-once like the bus.
 */
async function busSender(
  bus: Bus,
  cfg: NonNullable<ClientEventsConfig["bus"]>,
  settle: (p: Pending, answer: unknown) => void,
  fail: (p: Pending, code: ClientErrorCode, detail: string) => void,
  bad: () => void,
): Promise<{ send(p: Pending): void; close(): void }> {
  const replyTo = `${cfg.channel}#reply#${randomUUID()}`;
  const waiting = new Map<string, { p: Pending; timer: NodeJS.Timeout }>();
  let seq = 0;
  await bus.subscribe(replyTo, (_channel, payload) => {
    if (payload.length > cfg.maxReplyBytes) {
      bad();
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString("utf8"));
    } catch {
      bad();
      return;
    }
    if (
      typeof msg !== "object" ||
      msg === null ||
      typeof (msg as { id?: unknown }).id !== "string"
    ) {
      bad();
      return;
    }
    const { id, ...answer } = msg as { id: string };
    const w = waiting.get(id);
    if (w === undefined) return; // late (timed out) or not ours
    waiting.delete(id);
    clearTimeout(w.timer);
    settle(w.p, answer);
  });
  return {
    send(p) {
      const id = String(++seq);
      if (p.ack !== undefined) {
        const timer = setTimeout(() => {
          waiting.delete(id);
          fail(p, ClientErrorCode.BackendTimeout, `no reply within ${cfg.replyTimeoutMs} ms`);
        }, cfg.replyTimeoutMs);
        timer.unref();
        waiting.set(id, { p, timer });
      }
      bus.publish(
        cfg.channel,
        Buffer.from(
          JSON.stringify({ v: 1, id, replyTo: p.ack === undefined ? null : replyTo, ...p.body }),
        ),
      );
      if (p.ack === undefined) settle(p, undefined);
    },
    close() {
      for (const w of waiting.values()) clearTimeout(w.timer);
      waiting.clear();
      void bus.unsubscribe(replyTo).catch(() => {});
    },
  };
}
