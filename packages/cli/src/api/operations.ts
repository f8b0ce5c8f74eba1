/**
 * The API's operations on the server, shared by HTTP and the broker channel. Over HTTP an
 * operation is cluster-wide through the adapter (one node receives the request); over the
 * broker every node receives the message, so each applies it to its own sockets only
 * (`local`).
 */
import { type Namespace, type Server, SwitchyardError } from "@switchyard/server";
import { existingNamespace } from "@switchyard/server/internal";
import { ApiError, ApiErrorCode } from "./errors.js";
import type { IdempotencyWindow } from "./idempotency.js";
import type { DisconnectRequest, JoinRequest, LeaveRequest, PublishRequest } from "./schemas.js";

type Selector = Pick<JoinRequest, "namespace" | "sockets" | "rooms" | "except">;
type Operator = ReturnType<Namespace["to"]>;

/** Counters of the operations (read by metrics). */
export interface OperationStats {
  published: number;
  duplicates: number;
  joins: number;
  leaves: number;
  disconnects: number;
}

/** A socket as GET /sockets lists it. */
export interface ListedSocket {
  id: string;
  rooms: string[];
  data: unknown;
}

export class ApiOperations {
  readonly stats: OperationStats = {
    published: 0,
    duplicates: 0,
    joins: 0,
    leaves: 0,
    disconnects: 0,
  };
  /** Called with each idempotency key recorded for a cluster-wide (HTTP) publish, so other nodes can record it too. */
  onNewKey: ((key: string) => void) | undefined;
  readonly #io: Server;
  readonly #idem: IdempotencyWindow;

  constructor(io: Server, idem: IdempotencyWindow) {
    this.#io = io;
    this.#idem = idem;
  }

  /**
   * The namespace `name`, when this node has it. The API never creates namespaces (a
   * name from a request would otherwise become a namespace with no middleware).
   */
  namespace(name: string): Namespace {
    const nsp = existingNamespace(this.#io, name) ?? (name === "/" ? this.#io.of("/") : undefined);
    if (nsp === undefined) {
      throw new ApiError(
        404,
        ApiErrorCode.NAMESPACE_UNKNOWN,
        `namespace ${JSON.stringify(name)} does not exist on this server (declare it in the configuration)`,
        "namespace",
      );
    }
    return nsp as unknown as Namespace;
  }

  /**
   * Publishes; `scope` keeps idempotency keys of different API keys apart. Returns whether
   * it was a duplicate (nothing sent).
   */
  publish(req: PublishRequest, scope: string, local: boolean): { duplicate: boolean } {
    const nsp = this.namespace(req.namespace);
    if (req.idempotencyKey !== undefined) {
      const key = `${scope}\u0000${req.namespace}\u0000${req.idempotencyKey}`;
      if (this.#idem.checkAndRecord(key)) {
        this.stats.duplicates++;
        return { duplicate: true };
      }
      if (!local) this.onNewKey?.(key);
    }
    let op: Operator | Namespace = local ? nsp.local : nsp;
    const targets = [...(req.rooms ?? []), ...(req.sockets ?? [])];
    if (targets.length > 0) op = op.to(targets);
    if (req.except !== undefined && req.except.length > 0) op = op.except(req.except);
    if (req.volatile) op = op.volatile;
    const args = req.args ?? (req.data === undefined ? [] : [req.data]);
    try {
      op.emit(req.event, ...args);
    } catch (err) {
      // The encoder refuses what it cannot send (e.g. too deep): the caller's data is at fault.
      if (err instanceof SwitchyardError) {
        throw new ApiError(400, ApiErrorCode.INVALID_BODY, `data: ${err.message}`, "data");
      }
      throw err;
    }
    this.stats.published++;
    return { duplicate: false };
  }

  join(req: JoinRequest, local: boolean): void {
    this.#select(req, local).socketsJoin(req.join);
    this.stats.joins++;
  }

  leave(req: LeaveRequest, local: boolean): void {
    this.#select(req, local).socketsLeave(req.leave);
    this.stats.leaves++;
  }

  disconnect(req: DisconnectRequest, local: boolean): void {
    this.#select(req, local).disconnectSockets(req.close);
    this.stats.disconnects++;
  }

  /** Every room of the namespace across the cluster, with its size (socket id rooms left out). */
  async rooms(namespace: string): Promise<{ name: string; size: number }[]> {
    const sockets = await this.#fetch(this.namespace(namespace));
    const sizes = new Map<string, number>();
    for (const s of sockets) {
      for (const room of s.rooms) {
        if (room === s.id) continue;
        sizes.set(room, (sizes.get(room) ?? 0) + 1);
      }
    }
    return [...sizes]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([name, size]) => ({ name, size }));
  }

  /** Sockets of the namespace (in `room` if given) across the cluster, at most `limit`. */
  async sockets(
    namespace: string,
    room: string | undefined,
    limit: number,
  ): Promise<{ sockets: ListedSocket[]; truncated: boolean }> {
    const nsp = this.namespace(namespace);
    const found = await this.#fetch(room === undefined ? nsp : nsp.in(room));
    found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      truncated: found.length > limit,
      sockets: found.slice(0, limit).map((s) => ({
        id: s.id,
        rooms: [...s.rooms].filter((r) => r !== s.id),
        data: toJson(s.data),
      })),
    };
  }

  /** How many sockets each room holds across the cluster (0 for an empty room). */
  async presence(namespace: string, rooms: string[]): Promise<Record<string, number>> {
    const nsp = this.namespace(namespace);
    const counts: Record<string, number> = Object.create(null);
    for (const r of rooms) counts[r] = 0;
    if (rooms.length === 0) return { ...counts };
    const found = await this.#fetch(nsp.in(rooms));
    for (const s of found) {
      for (const r of s.rooms) if (r in counts) counts[r] = (counts[r] ?? 0) + 1;
    }
    return { ...counts };
  }

  #select(req: Selector, local: boolean): Operator {
    const nsp = this.namespace(req.namespace);
    let op: Operator = (local ? nsp.local : nsp).in([...(req.rooms ?? []), ...(req.sockets ?? [])]);
    if (req.except !== undefined && req.except.length > 0) op = op.except(req.except);
    return op;
  }

  async #fetch(
    op: Operator | Namespace,
  ): Promise<{ id: string; rooms: Set<string>; data: unknown }[]> {
    try {
      return await op.fetchSockets();
    } catch (err) {
      throw new ApiError(
        504,
        ApiErrorCode.CLUSTER_TIMEOUT,
        `not every node of the cluster answered: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}

/** `value` as JSON would carry it; what JSON cannot hold (bigint, cycles) becomes null or is left out. */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  try {
    const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? undefined : v));
    return text === undefined ? null : (JSON.parse(text) as unknown);
  } catch {
    return null;
  }
}
