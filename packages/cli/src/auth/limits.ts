/**
 * Per-connection rate limits: a token bucket of events per second per socket and one of
 * bytes per second per connection (every Engine.IO message it sends, all namespaces).
 * Exceeding one sends `switchyard:disconnect` `{ code: "SY_ERR_RATE_LIMITED" |
 * "SY_ERR_BYTE_RATE_LIMITED" }` and disconnects (the client sees `io server disconnect`).
 */
import type { Session, Socket } from "@switchyard/server";
import type { Disposable, ServeContext } from "../context.js";
import { ClientErrorCode, CodeCounter, disconnectWithNotice } from "./codes.js";
import { forEachNamespace } from "./namespaces.js";
import { reportPolicyDisconnect } from "./report.js";
import type { LimitsConfig } from "./schema.js";

/** A token bucket refilled continuously at `rate` per second up to `burst`. */
export class TokenBucket {
  #tokens: number;
  #last: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
    this.#last = performance.now();
  }

  /** Takes `n` tokens; false (and nothing taken) when there are not enough. */
  take(n: number): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
    this.#last = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}

interface EventLimit {
  bucket: TokenBucket;
  /** What the installation that set the limit does when it is exceeded. */
  exceeded(socket: Socket): void;
}

const eventLimits = new WeakMap<Socket, EventLimit>();
const charged = new WeakSet<unknown[]>();

/**
 * Charges one event of `socket` (once per packet, whichever middleware asks first) and
 * answers whether it may be handled. Over the limit the socket is disconnected. Sockets
 * without a bucket (limits not installed or off) always pass.
 */
export function chargeEvent(socket: Socket, args: unknown[]): boolean {
  const limit = eventLimits.get(socket);
  if (limit === undefined) return true;
  if (charged.has(args)) return socket.connected;
  charged.add(args);
  if (limit.bucket.take(1)) return true;
  limit.exceeded(socket);
  return false;
}

/** What {@link installLimits} returns: counters for metrics and a close function. */
export interface LimitsHandle {
  readonly stats: {
    eventLimitDisconnects: number;
    byteLimitDisconnects: number;
    refusals: Record<string, number>;
  };
  close(): void;
}

export async function installLimits(
  ctx: ServeContext,
  config: LimitsConfig,
): Promise<LimitsHandle & Disposable> {
  const log = ctx.log.child({ area: "limits" });
  const counter = new CodeCounter();
  const stats = { eventLimitDisconnects: 0, byteLimitDisconnects: 0, refusals: counter.counts };
  const byteBuckets = new WeakMap<
    Session,
    { bucket: TokenBucket; sockets: Set<Socket>; tripped: boolean }
  >();

  const exceeded = (socket: Socket) => {
    stats.eventLimitDisconnects++;
    counter.add(ClientErrorCode.RateLimited);
    reportPolicyDisconnect(ctx.io, ClientErrorCode.RateLimited);
    if (ctx.limiter("limits:events")) {
      log.warn(
        { code: ClientErrorCode.RateLimited, sid: socket.id, address: socket.handshake.address },
        "event rate exceeded; disconnecting",
      );
    }
    disconnectWithNotice(
      socket,
      ClientErrorCode.RateLimited,
      `more than ${config.eventsPerSecond} events/s`,
    );
  };

  const setup = (socket: Socket) => {
    if (config.eventsPerSecond > 0) {
      eventLimits.set(socket, {
        bucket: new TokenBucket(config.eventsPerSecond, config.eventsBurst),
        exceeded,
      });
      socket.use((args, next) => {
        if (chargeEvent(socket, args)) next();
      });
    }
    if (config.bytesPerSecond > 0) {
      const conn = socket.conn;
      let state = byteBuckets.get(conn);
      if (state === undefined) {
        const s = {
          bucket: new TokenBucket(config.bytesPerSecond, config.bytesBurst),
          sockets: new Set<Socket>(),
          tripped: false,
        };
        state = s;
        byteBuckets.set(conn, s);
        conn.on("message", (data: unknown) => {
          const size =
            typeof data === "string"
              ? Buffer.byteLength(data)
              : ((data as Uint8Array | undefined)?.byteLength ?? 0);
          if (s.tripped || s.bucket.take(size)) return;
          s.tripped = true;
          stats.byteLimitDisconnects++;
          counter.add(ClientErrorCode.ByteRateLimited);
          reportPolicyDisconnect(ctx.io, ClientErrorCode.ByteRateLimited);
          if (ctx.limiter("limits:bytes")) {
            log.warn(
              { code: ClientErrorCode.ByteRateLimited, address: socket.handshake.address },
              "byte rate exceeded; disconnecting",
            );
          }
          for (const sk of [...s.sockets]) {
            disconnectWithNotice(
              sk,
              ClientErrorCode.ByteRateLimited,
              `more than ${config.bytesPerSecond} bytes/s`,
            );
          }
        });
      }
      state.sockets.add(socket);
      socket.once("disconnect", () => state.sockets.delete(socket));
    }
  };

  const stop = forEachNamespace(ctx.io, ctx.config.namespaces, (nsp) => {
    nsp.on("connection", setup);
    return () => nsp.off("connection", setup);
  });
  return {
    stats,
    close() {
      stop();
    },
  };
}
