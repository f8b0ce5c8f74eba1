/**
 * `RedisRecoveryLog`: connection state recovery across the nodes of a Switchyard
 * cluster, over Redis Streams (the `recovery` option of `createAdapter`). docs/recovery.md
 * ("Across nodes") says why it is built this way.
 *
 * Keys of namespace `nsp` (one hash tag per namespace, so they share a Redis Cluster
 * slot and its scripts may touch them together):
 * - `{<prefix>:<nsp>}:log` — the stream of recoverable broadcasts, one per namespace
 *   (socket.io clients keep one offset for all their rooms, so offsets must be ordered
 *   over the whole namespace). Bounded by length (`XADD MAXLEN ~`: whole stream nodes,
 *   cheap) and age (exact `XTRIM MINID` on every append: the entries older than
 *   `maxAge`, each removed once).
 * - `…:epoch` — a random id, created when missing: a flushed or restarted Redis loses
 *   it with the stream, and every offset names its epoch, so an offset from before is
 *   detected, never read against a new history. `…:n` numbers the entries.
 * - `…:s:<pid>` — a session that lost its connection, for the window (`PX`).
 * - `…:live:<node>` — the live state of a node's connected sessions (pid → state),
 *   kept while the node beats and for the window after: a SIGKILLed node never persists.
 * - `…:nodes` — a sorted set of node ids by last heartbeat (Redis time).
 *
 * Every operation is one command or one script: a bogus pid costs one `GETDEL` plus one
 * `HGET` per node seen in the window; a bogus offset one `GET` and one `XRANGE … COUNT 1`.
 */
import { createHash, randomBytes } from "node:crypto";
import {
  InvalidOptionError,
  type LogRead,
  type LogTake,
  type RecoveryLog,
  type RecoveryLogHandle,
  type RecoveryLogSettings,
} from "@switchyard/server";
import { checkOptionKeys, type OptionKeys, positiveInt } from "@switchyard/server/internal";
import { Redis, type RedisOptions } from "ioredis";

/** Options of {@link RedisRecoveryLog}: `url` (its own connection) or `client` (yours). */
export interface RedisRecoveryLogOptions {
  /** `redis://…` or `rediss://…`: the log opens (and closes) its own connection. */
  url?: string;
  /** Extra ioredis options for the owned connection. @default {} */
  redisOptions?: RedisOptions;
  /** A connected ioredis client to use instead (never closed by the log; not a subscriber). */
  client?: Redis;
  /**
   * Most entries kept per namespace (approximately: Redis trims whole nodes, so a few
   * more may stay). A client that missed more cannot recover (counted as trimmed).
   * @default 10000
   */
  maxLength?: number;
  /**
   * Milliseconds an entry is kept. @default the namespace's
   * `connectionStateRecovery.maxDisconnectionDuration`
   */
  maxAge?: number;
  /** Prefix of every key. @default "switchyard:recovery" */
  keyPrefix?: string;
}

const KEYS: OptionKeys = Object.freeze({
  url: true,
  redisOptions: true,
  client: true,
  maxLength: true,
  maxAge: true,
  keyPrefix: true,
} satisfies Record<keyof RedisRecoveryLogOptions, true>);

// KEYS: log, epoch, counter. ARGV: entry, maxLength, maxAge, new epoch, reset ("1").
const APPEND = `
local e = redis.call('GET', KEYS[2])
if (not e) or ARGV[5] == '1' then
  e = ARGV[4]
  redis.call('SET', KEYS[2], e)
end
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'n', n, 'm', ARGV[1])
local ms = tonumber(string.match(id, '^(%d+)'))
local minid = ms - tonumber(ARGV[3])
if minid > 0 then redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', minid)) end
return e .. ':' .. n .. ':' .. id
`;

// KEYS: log, epoch, counter. ARGV: epoch, n, id, limit.
// Entries are trimmed from the head only, so the entries after offset n are all held
// iff the oldest held one is at most n + 1.
const READ = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'epoch' end
local n = tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if n > last then return 'trimmed' end
if n == last then return {} end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return 'trimmed' end
local fields = first[1][2]
local nf = -1
for i = 1, #fields, 2 do
  if fields[i] == 'n' then nf = tonumber(fields[i + 1]) end
end
if nf < 0 or n + 1 < nf then return 'trimmed' end
local limit = tonumber(ARGV[4])
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+', 'COUNT', limit + 1)
if #entries > limit then return 'overflow' end
return entries
`;

// KEYS: session, nodes. ARGV: pid, live key prefix, node timeout, window.
// A persisted session, or the live state of a node dead for less than the window; the
// live state of a node that still beats is not taken (it may only be slow to notice
// the client left): the caller is told how long to wait before asking again.
const TAKE = `
local v = redis.call('GETDEL', KEYS[1])
if v then return {1, v} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local timeout = tonumber(ARGV[3])
local nodes = redis.call('ZRANGEBYSCORE', KEYS[2], string.format('%d', now - tonumber(ARGV[4])), '+inf', 'WITHSCORES')
for i = 1, #nodes, 2 do
  local key = ARGV[2] .. nodes[i]
  local s = redis.call('HGET', key, ARGV[1])
  if s then
    local age = now - tonumber(nodes[i + 1])
    if age <= timeout then return {2, string.format('%d', timeout - age)} end
    redis.call('HDEL', key, ARGV[1])
    return {1, s}
  end
end
return {0}
`;

// KEYS: nodes, live, epoch. ARGV: node, live ttl, reset ("1"), new epoch. Returns the epoch.
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local e = redis.call('GET', KEYS[3])
if (not e) or ARGV[3] == '1' then
  e = ARGV[4]
  redis.call('SET', KEYS[3], e)
end
return e
`;

interface Script {
  readonly text: string;
  readonly sha: string;
}

function script(text: string): Script {
  return { text, sha: createHash("sha1").update(text).digest("hex") };
}

const SCRIPTS = {
  append: script(APPEND),
  read: script(READ),
  take: script(TAKE),
  heartbeat: script(HEARTBEAT),
} as const;

function newEpoch(): string {
  return randomBytes(9).toString("base64url");
}

// Duck-typed: the application may hold another copy of ioredis.
function isRedis(v: unknown): v is Redis {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.callBuffer === "function" && typeof r.multi === "function";
}

/**
 * A durable log for connection state recovery across nodes, over Redis Streams:
 *
 * ```ts
 * const log = new RedisRecoveryLog({ url: "redis://127.0.0.1:6379" });
 * const io = new Server(http, {
 *   connectionStateRecovery: { maxDisconnectionDuration: 60_000 },
 *   adapter: createAdapter(bus, { recovery: log }),
 * });
 * ```
 *
 * One log serves every namespace of every node; close it after `io.close()`.
 */
export class RedisRecoveryLog implements RecoveryLog {
  readonly maxLength: number;
  readonly maxAge: number | undefined;
  readonly keyPrefix: string;
  private readonly client: Redis;
  private readonly owned: boolean;
  private closed = false;

  constructor(options: RedisRecoveryLogOptions) {
    if (typeof options !== "object" || options === null) {
      throw new InvalidOptionError("options", "an object", options);
    }
    checkOptionKeys(options, KEYS);
    this.maxLength = positiveInt("maxLength", options.maxLength ?? 10_000);
    this.maxAge = options.maxAge === undefined ? undefined : positiveInt("maxAge", options.maxAge);
    const prefix = options.keyPrefix ?? "switchyard:recovery";
    if (typeof prefix !== "string" || prefix.length === 0 || /[{}]/.test(prefix)) {
      throw new InvalidOptionError("keyPrefix", "a non-empty string without { or }", prefix);
    }
    this.keyPrefix = prefix;
    if (options.client !== undefined) {
      if (options.url !== undefined) {
        throw new InvalidOptionError("url", "not combined with client", options.url);
      }
      if (!isRedis(options.client)) {
        throw new InvalidOptionError("client", "an ioredis Redis client", options.client);
      }
      this.client = options.client;
      this.owned = false;
    } else {
      const url = options.url;
      if (typeof url !== "string" || !/^rediss?:\/\//.test(url)) {
        throw new InvalidOptionError("url", "a redis:// or rediss:// URL (or a client)", url);
      }
      const extra = options.redisOptions ?? {};
      if (typeof extra !== "object" || extra === null) {
        throw new InvalidOptionError("redisOptions", "an object", extra);
      }
      this.client = new Redis(url, {
        connectionName: "switchyard-recovery",
        // A command waits for one reconnect at most: a restore or append fails (and is
        // counted) rather than queueing without bound while Redis is away.
        maxRetriesPerRequest: 1,
        ...extra,
      });
      this.client.on("error", noop);
      this.owned = true;
    }
  }

  open(nsp: string, node: string, settings: RecoveryLogSettings): RecoveryLogHandle {
    return new Handle(this, nsp, node, settings);
  }

  /** Closes the owned connection (a given client stays open). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.owned) return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  /** @internal Runs a script by its sha, loading it on NOSCRIPT. */
  async run(
    s: Script,
    keys: readonly string[],
    args: readonly (string | Buffer)[],
  ): Promise<unknown> {
    try {
      return await this.client.callBuffer("EVALSHA", [s.sha, keys.length, ...keys, ...args]);
    } catch (err) {
      if (!String((err as Error).message).startsWith("NOSCRIPT")) throw err;
      return await this.client.callBuffer("EVAL", [s.text, keys.length, ...keys, ...args]);
    }
  }

  /** @internal */
  get redis(): Redis {
    return this.client;
  }
}

function noop(): void {}

class Handle implements RecoveryLogHandle {
  private readonly owner: RedisRecoveryLog;
  private readonly node: string;
  private readonly window: number;
  private readonly nodeTimeout: number;
  private readonly maxAge: number;
  private readonly kLog: string;
  private readonly kEpoch: string;
  private readonly kCounter: string;
  private readonly kNodes: string;
  private readonly kLive: string;
  private readonly livePrefix: string;
  private readonly sessionPrefix: string;

  constructor(owner: RedisRecoveryLog, nsp: string, node: string, settings: RecoveryLogSettings) {
    this.owner = owner;
    this.node = node;
    this.window = settings.window;
    this.nodeTimeout = settings.nodeTimeout;
    this.maxAge = owner.maxAge ?? settings.window;
    const tag = `{${owner.keyPrefix}:${nsp}}`;
    this.kLog = `${tag}:log`;
    this.kEpoch = `${tag}:epoch`;
    this.kCounter = `${tag}:n`;
    this.kNodes = `${tag}:nodes`;
    this.livePrefix = `${tag}:live:`;
    this.kLive = this.livePrefix + node;
    this.sessionPrefix = `${tag}:s:`;
  }

  /** How long a node's live states outlive its last heartbeat. */
  private get liveTtl(): number {
    return this.window + 2 * this.nodeTimeout;
  }

  async append(entry: Buffer, resetEpoch: boolean): Promise<string> {
    const reply = await this.owner.run(
      SCRIPTS.append,
      [this.kLog, this.kEpoch, this.kCounter],
      [
        entry,
        String(this.owner.maxLength),
        String(this.maxAge),
        newEpoch(),
        resetEpoch ? "1" : "0",
      ],
    );
    return String(reply);
  }

  async read(offset: string): Promise<LogRead> {
    const m = /^([^:]+):(\d+):(.+)$/.exec(offset);
    if (m === null) return { gone: "trimmed" };
    const reply = await this.owner.run(
      SCRIPTS.read,
      [this.kLog, this.kEpoch, this.kCounter],
      [m[1]!, m[2]!, m[3]!, String(this.owner.maxLength)],
    );
    if (!Array.isArray(reply)) {
      const what = String(reply);
      return { gone: what === "epoch" ? "epoch" : what === "overflow" ? "overflow" : "trimmed" };
    }
    const epoch = m[1]!;
    const entries: (readonly [string, Buffer])[] = [];
    for (const item of reply as [Buffer, Buffer[]][]) {
      const id = String(item[0]);
      const fields = item[1];
      let n: string | undefined;
      let body: Buffer | undefined;
      for (let i = 0; i + 1 < fields.length; i += 2) {
        const name = String(fields[i]);
        if (name === "n") n = String(fields[i + 1]);
        else if (name === "m") body = fields[i + 1];
      }
      if (n === undefined || body === undefined) throw new Error(`log entry ${id} without n or m`);
      entries.push([`${epoch}:${n}:${id}`, body]);
    }
    return { entries };
  }

  async saveLive(
    upserts: readonly (readonly [string, Buffer])[],
    removals: readonly string[],
  ): Promise<void> {
    const tx = this.owner.redis.multi();
    if (upserts.length > 0) {
      const args: (string | Buffer)[] = [];
      for (const [pid, state] of upserts) args.push(pid, state);
      tx.hset(this.kLive, ...(args as [string, Buffer]));
      tx.pexpire(this.kLive, this.liveTtl);
    }
    if (removals.length > 0) tx.hdel(this.kLive, ...removals);
    await tx.exec();
  }

  async persist(pid: string, snapshot: Buffer): Promise<void> {
    await this.owner.redis
      .multi()
      .set(this.sessionPrefix + pid, snapshot, "PX", this.window)
      .hdel(this.kLive, pid)
      .exec();
  }

  async take(pid: string): Promise<LogTake> {
    const reply = (await this.owner.run(
      SCRIPTS.take,
      [this.sessionPrefix + pid, this.kNodes],
      [pid, this.livePrefix, String(this.nodeTimeout), String(this.window)],
    )) as [number, Buffer?];
    const kind = Number(reply[0]);
    if (kind === 1 && Buffer.isBuffer(reply[1])) return { snapshot: reply[1] };
    if (kind === 2) return { waitMs: Number(String(reply[1])) };
    return null;
  }

  async heartbeat(resetEpoch: boolean): Promise<string> {
    const epoch = await this.owner.run(
      SCRIPTS.heartbeat,
      [this.kNodes, this.kLive, this.kEpoch],
      [this.node, String(this.liveTtl), resetEpoch ? "1" : "0", newEpoch()],
    );
    return String(epoch);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
