/**
 * Connect-time auth for every namespace: a JWT (jose) and/or a connect webhook, claims and
 * webhook `data` into `socket.data`, expiry disconnects, and the `switchyard:join` /
 * `switchyard:leave` room requests. Refusals reach the client as `connect_error` with
 * `err.data.code` (see codes.ts), are counted by code and logged once per interval per code.
 */
import type { Namespace, Socket } from "@switchyard/server";
import type { Disposable, ServeContext } from "../context.js";
import {
  ackError,
  ClientErrorCode as Code,
  CodeCounter,
  disconnectWithNotice,
  refusal,
} from "./codes.js";
import { createVerifier, extractToken } from "./jwt.js";
import { chargeEvent } from "./limits.js";
import { forEachNamespace } from "./namespaces.js";
import { reportPolicyDisconnect, reportRefusal, webhookObserver } from "./report.js";
import {
  type Ack,
  handleJoin,
  handleLeave,
  JOIN_EVENT,
  LEAVE_EVENT,
  type RoomDeps,
} from "./rooms.js";
import type { AuthConfig } from "./schema.js";
import { WebhookClient, type WebhookResult } from "./webhook-client.js";

/** Longest a timer may wait (setTimeout's limit); later expiries re-arm. */
const MAX_TIMER = 2_147_483_647;

/** The event a connected client sends a fresh token with: `(token, ack)`. */
export const REFRESH_EVENT = "switchyard:refresh";

/** What {@link installAuth} returns: counters for metrics and a close function. */
export interface AuthHandle {
  readonly stats: {
    /** Connections admitted by auth. */
    accepted: number;
    /** Refusals (connect and room) by code. */
    refusals: Record<string, number>;
    /** Sockets disconnected because their token expired. */
    expired: number;
  };
  /** The webhook clients (latency hooks for metrics). */
  readonly webhooks: { connect?: WebhookClient; subscribe?: WebhookClient };
  close(): void;
}

export async function installAuth(
  ctx: ServeContext,
  config: AuthConfig,
): Promise<AuthHandle & Disposable> {
  const log = ctx.log.child({ area: "auth" });
  const counter = new CodeCounter();
  const stats = { accepted: 0, refusals: counter.counts, expired: 0 };
  const verify = config.jwt === undefined ? undefined : createVerifier(config.jwt);
  const connectHook =
    config.connectWebhook === undefined ? undefined : new WebhookClient(config.connectWebhook);
  const subscribeHook =
    config.rooms.webhook === undefined ? undefined : new WebhookClient(config.rooms.webhook);
  if (connectHook !== undefined) connectHook.onLatency = webhookObserver(ctx.io, "connect");
  if (subscribeHook !== undefined) subscribeHook.onLatency = webhookObserver(ctx.io, "subscribe");
  const claimsBySocket = new WeakMap<Socket, Record<string, unknown>>();
  const timers = new Set<NodeJS.Timeout>();

  const refused = (code: string, detail: string, address?: string) => {
    counter.add(code);
    if (ctx.limiter(`auth:${code}`))
      log.warn(
        { code, detail, address },
        "client refused (further ones this interval are only counted)",
      );
  };

  const middleware = (socket: Socket, next: (err?: Error) => void) => {
    authenticate(socket).then(
      (err) => {
        if (err !== undefined) reportRefusal(ctx.io, err.data.code);
        next(err);
      },
      (err: unknown) => {
        refused(Code.BackendUnavailable, (err as Error).message);
        reportRefusal(ctx.io, Code.BackendUnavailable);
        next(refusal(Code.BackendUnavailable, "authentication failed"));
      },
    );
  };

  const authenticate = async (socket: Socket): Promise<ReturnType<typeof refusal> | undefined> => {
    const hs = socket.handshake;
    let claims: Record<string, unknown> = {};
    if (verify !== undefined && config.jwt !== undefined) {
      const token = extractToken(hs.auth, hs.headers, config.jwt.header);
      if (token === undefined) {
        refused(Code.TokenMissing, "no token", hs.address);
        return refusal(Code.TokenMissing, "authentication token missing");
      }
      const r = await verify(token);
      if (!r.ok) {
        refused(r.code, r.message, hs.address);
        return refusal(r.code, r.message);
      }
      claims = { ...r.claims };
    }
    let data: Record<string, unknown> = { ...claims };
    let rooms: string[] = [];
    if (connectHook !== undefined) {
      // With a verified JWT the backend gets its claims, not the token; without one, an
      // opaque token (e.g. a session id) is the backend's to check.
      const { token: _omit, ...rest } = hs.auth as Record<string, unknown>;
      const auth = verify === undefined ? hs.auth : rest;
      const res: WebhookResult = await connectHook.post(
        {
          namespace: socket.nsp.name,
          address: hs.address,
          headers: hs.headers,
          query: hs.query,
          auth,
          claims: verify === undefined ? null : claims,
        },
        hs.address,
      );
      if (!res.ok) {
        const code =
          res.reason === "timeout"
            ? Code.BackendTimeout
            : res.reason === "busy"
              ? Code.BackendBusy
              : Code.BackendUnavailable;
        refused(code, res.detail, hs.address);
        return refusal(code, "authentication backend unavailable");
      }
      const body = res.body as
        | { allow?: unknown; data?: unknown; rooms?: unknown; reason?: unknown }
        | undefined;
      if (typeof body !== "object" || body === null || typeof body.allow !== "boolean") {
        refused(
          Code.BackendUnavailable,
          "connect webhook answer lacks a boolean allow",
          hs.address,
        );
        return refusal(Code.BackendUnavailable, "authentication backend answered badly");
      }
      if (!body.allow) {
        refused(Code.Denied, "denied by the connect webhook", hs.address);
        const reason =
          typeof body.reason === "string" ? body.reason.slice(0, 200) : "connection refused";
        return refusal(Code.Denied, reason);
      }
      if (typeof body.data === "object" && body.data !== null && !Array.isArray(body.data)) {
        data = { ...data, ...(body.data as Record<string, unknown>) };
      }
      if (Array.isArray(body.rooms))
        rooms = body.rooms.filter(
          (r): r is string => typeof r === "string" && r !== "" && r.length <= 256,
        );
    }
    claimsBySocket.set(socket, claims);
    if (verify !== undefined || connectHook !== undefined) socket.data = data;
    if (rooms.length > 0) await socket.join(rooms);
    stats.accepted++;
    return undefined;
  };

  const expiryTimers = new WeakMap<Socket, NodeJS.Timeout>();

  /** (Re)arms the expiry timer of `socket` from its current claims' `exp`. */
  const armExpiry = (socket: Socket) => {
    const old = expiryTimers.get(socket);
    if (old !== undefined) {
      clearTimeout(old);
      timers.delete(old);
      expiryTimers.delete(socket);
    }
    const exp = claimsBySocket.get(socket)?.exp;
    if (typeof exp !== "number" || config.jwt?.disconnectOnExpiry !== true || socket.disconnected)
      return;
    const left = exp * 1000 + config.jwt.clockToleranceSec * 1000 - Date.now();
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        expiryTimers.delete(socket);
        if (left > MAX_TIMER) {
          armExpiry(socket);
          return;
        }
        stats.expired++;
        counter.add(Code.TokenExpired);
        reportPolicyDisconnect(ctx.io, Code.TokenExpired);
        if (ctx.limiter("auth:expired"))
          log.info({ code: Code.TokenExpired, sid: socket.id }, "token expired; disconnecting");
        disconnectWithNotice(socket, Code.TokenExpired, "token expired");
      },
      Math.max(0, Math.min(left, MAX_TIMER)),
    );
    timer.unref();
    timers.add(timer);
    expiryTimers.set(socket, timer);
  };

  const clearExpiry = (socket: Socket) => {
    const timer = expiryTimers.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    timers.delete(timer);
    expiryTimers.delete(socket);
  };

  /**
   * `switchyard:refresh` (token, ack): a connected client hands a fresh token before the old
   * one expires. It must verify like a connect token and keep the same `sub`; then its claims
   * replace the old ones in socket.data and the expiry timer follows the new `exp`.
   */
  const refresh = async (socket: Socket, token: unknown, ack: Ack | undefined) => {
    const reply = ack ?? (() => {});
    if (verify === undefined) {
      reply(ackError(Code.TokenInvalid, "this server does not use JWTs"));
      return;
    }
    if (typeof token !== "string" || token === "") {
      refused(Code.TokenMissing, "refresh without a token");
      reply(ackError(Code.TokenMissing, "token missing"));
      return;
    }
    const r = await verify(token);
    if (!r.ok) {
      refused(r.code, r.message, socket.handshake.address);
      reply(ackError(r.code, r.message));
      return;
    }
    const before = claimsBySocket.get(socket) ?? {};
    if (before.sub !== r.claims.sub) {
      refused(Code.TokenClaimMismatch, "refresh changed sub", socket.handshake.address);
      reply(ackError(Code.TokenClaimMismatch, "the new token has another sub"));
      return;
    }
    if (socket.disconnected) return;
    const data = (
      typeof socket.data === "object" && socket.data !== null ? socket.data : {}
    ) as Record<string, unknown>;
    for (const k of Object.keys(before)) delete data[k];
    socket.data = { ...data, ...r.claims };
    claimsBySocket.set(socket, { ...r.claims });
    armExpiry(socket);
    reply({ ok: true, exp: r.claims.exp ?? null });
  };

  const roomDeps: RoomDeps = {
    cfg: config.rooms,
    claimsOf: (s) => claimsBySocket.get(s) ?? {},
    webhook: subscribeHook,
    refused: (code, detail) => refused(code, detail),
  };

  const onConnection = (socket: Socket) => {
    armExpiry(socket);
    socket.once("disconnect", () => clearExpiry(socket));
    socket.use((args, next) => {
      const ev = args[0];
      if (ev !== JOIN_EVENT && ev !== LEAVE_EVENT && ev !== REFRESH_EVENT) {
        next();
        return;
      }
      if (!chargeEvent(socket, args)) return;
      const last = args[args.length - 1];
      const ack = typeof last === "function" ? (last as Ack) : undefined;
      const arg = args.length > (ack === undefined ? 1 : 2) ? args[1] : undefined;
      const run =
        ev === JOIN_EVENT
          ? handleJoin(roomDeps, socket, arg, ack)
          : ev === LEAVE_EVENT
            ? handleLeave(socket, arg, ack)
            : refresh(socket, arg, ack);
      run.catch((err: unknown) => {
        if (ctx.limiter("auth:request-error"))
          log.error({ err, event: ev }, "client request failed");
      });
    });
  };

  let closed = false;
  // Middleware cannot be removed from a namespace: after close() (shutdown) it refuses, so
  // no connection slips in unauthenticated between disposal and the server's close.
  const guarded = (socket: Socket, next: (err?: Error) => void) => {
    if (closed) next(refusal(Code.BackendUnavailable, "server shutting down"));
    else middleware(socket, next);
  };
  const setup = (nsp: Namespace) => {
    if (verify !== undefined || connectHook !== undefined) nsp.use(guarded as never);
    nsp.on("connection", onConnection);
    return () => nsp.off("connection", onConnection);
  };
  const stop = forEachNamespace(ctx.io, ctx.config.namespaces, setup);

  return {
    stats,
    webhooks: { connect: connectHook, subscribe: subscribeHook },
    close() {
      closed = true;
      stop();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      connectHook?.close();
      subscribeHook?.close();
    },
  };
}
