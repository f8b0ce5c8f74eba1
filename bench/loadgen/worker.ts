/**
 * One load-generator process (forked by the orchestrator). It holds up to ~19k clients
 * (the per-process fd limit is 20,000) and runs commands sent over IPC: connect, join,
 * fanout, echo, rest, close. Every loop is bounded in count and in time. It exits when
 * the orchestrator goes away.
 */
import http from "node:http";
import { now, sleep } from "../lib/clock.js";
import { Histogram } from "../lib/histogram.js";
import { type Client, PollingClient, setTickSink, WsClient } from "./clients.js";

interface Cpu {
  user: number;
  system: number;
}

const clients: Client[] = [];
let baseUrl = new URL("http://127.0.0.1:0");
// Idle keep-alive sockets are dropped before the server's own 5 s keepAliveTimeout, so a
// request never goes out on a socket the server is closing (ECONNRESET).
const pubAgent = new http.Agent({ keepAlive: true, maxSockets: 64, timeout: 3000 });
const restAgent = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 3000 });

function cpuSince(start: Cpu): { userMs: number; systemMs: number; totalMs: number } {
  const d = process.cpuUsage(start);
  return { userMs: d.user / 1000, systemMs: d.system / 1000, totalMs: (d.user + d.system) / 1000 };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (x: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}

// ——— connect ———

interface ConnectArgs {
  url: string;
  n: number;
  transport: "websocket" | "polling";
  concurrency: number;
  localAddresses: string[];
  timeoutMs: number;
}

async function connect(a: ConnectArgs) {
  baseUrl = new URL(a.url);
  const wsUrl = `ws://${baseUrl.host}/socket.io/?EIO=4&transport=websocket`;
  const first = clients.length;
  const fresh: Client[] = [];
  const addrs = a.localAddresses;
  // No explicit bind unless asked: bind() before connect() makes the kernel search for a
  // port free for every destination, which costs a lot of system time at 10k+ sockets.
  const addrOf = (i: number) => (addrs.length === 0 ? undefined : addrs[i % addrs.length]);
  for (let i = 0; i < a.n; i++) {
    if (a.transport === "websocket") fresh.push(new WsClient(first + i));
    else fresh.push(new PollingClient(first + i, baseUrl, addrOf(i)));
  }
  let failed = 0;
  const errors = new Map<string, number>();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const deadline = t0 + a.timeoutMs;
  await pool(fresh, a.concurrency, async (c) => {
    if (now() > deadline) {
      failed++;
      return;
    }
    try {
      if (c instanceof WsClient) await c.connect(wsUrl, addrOf(c.index - first), 15_000);
      else await (c as PollingClient).connect(15_000);
      clients.push(c);
    } catch (err) {
      failed++;
      const m = (err as Error).message;
      errors.set(m, (errors.get(m) ?? 0) + 1);
    }
  });
  const ms = now() - t0;
  return {
    connected: a.n - failed,
    failed,
    errors: Object.fromEntries(errors),
    ms,
    perSec: ((a.n - failed) / ms) * 1000,
    cpu: cpuSince(cpu0),
    total: clients.length,
  };
}

// ——— join ———

async function join(a: { rooms: number; concurrency: number }) {
  const t0 = now();
  const cpu0 = process.cpuUsage();
  await pool(clients, a.concurrency, async (c) => {
    c.room = c.index % a.rooms;
    await withTimeout(c.emitWithAck("join", `room-${c.room}`), 15_000, "join ack");
  });
  const ms = now() - t0;
  return { joins: clients.length, ms, perSec: (clients.length / ms) * 1000, cpu: cpuSince(cpu0) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

// ——— fan-out ———

interface Burst {
  remaining: number;
  deliveries: number;
  postedAt: number;
  done: () => void;
}

interface RoomState {
  name: string;
  members: number;
  published: number;
  byLastSeq: Map<number, Burst>;
}

let roomStates: RoomState[] = [];
let postErrors: string[] = [];
let recording: Histogram | undefined;

setTickSink({
  onTick(c, seq, t) {
    if (seq !== c.last + 1) {
      if (seq > c.last + 1) c.gaps += seq - c.last - 1;
      else c.disorder++;
    }
    if (seq > c.last) c.last = seq;
    c.received++;
    if (recording !== undefined) recording.record(now() - t);
    const b = roomStates[c.room]?.byLastSeq.get(seq);
    if (b !== undefined && --b.remaining === 0) b.done();
  },
});

function ensureRooms(): void {
  if (roomStates.length > 0) return;
  let max = -1;
  for (const c of clients) if (c.room > max) max = c.room;
  roomStates = Array.from({ length: max + 1 }, (_, i) => ({
    name: `room-${i}`,
    members: 0,
    published: 0,
    byLastSeq: new Map(),
  }));
  for (const c of clients) if (c.room >= 0) roomStates[c.room]!.members++;
}

/** A request that failed on a reused keep-alive socket never reached the app: retry once. */
function retriable(req: http.ClientRequest, err: NodeJS.ErrnoException): boolean {
  return req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE");
}

function post(path: string, retry = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: baseUrl.hostname, port: baseUrl.port, path, method: "POST", agent: pubAgent },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(body)
            : reject(new Error(`publish: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && retriable(req, err)) post(path, false).then(resolve, reject);
      else reject(err);
    });
    req.end();
  });
}

/** Publishes `n` ticks to each room of `group`; resolves when every member got the last one. */
function launchBurst(
  group: number[],
  n: number,
  size: number,
): { burst: Burst; finished: Promise<void> } {
  let done!: () => void;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const burst: Burst = { remaining: 0, deliveries: 0, postedAt: now(), done };
  for (const r of group) {
    const rs = roomStates[r]!;
    rs.published += n;
    rs.byLastSeq.set(rs.published, burst);
    burst.remaining += rs.members;
    burst.deliveries += rs.members * n;
  }
  if (burst.remaining === 0) done();
  const names = group.map((r) => roomStates[r]!.name).join(",");
  post(`/publish?room=${names}&n=${n}&size=${size}`).catch((err: Error) => {
    // Counted and reported; the burst ends now rather than at the timeout.
    postErrors.push(err.message);
    done();
  });
  return { burst, finished };
}

interface FanoutArgs {
  /** "bursts": one burst at a time with a pause (latency); "flat": `window` bursts in flight (throughput). */
  mode: "bursts" | "flat";
  n: number;
  size: number;
  roomsPerPost: number;
  window: number;
  bursts: number;
  pauseMs: number;
  durationMs: number;
  timeoutMs: number;
}

async function fanout(a: FanoutArgs) {
  ensureRooms();
  const roomIdx = roomStates.map((_, i) => i).filter((i) => roomStates[i]!.members > 0);
  const groups: number[][] = [];
  for (let i = 0; i < roomIdx.length; i += a.roomsPerPost)
    groups.push(roomIdx.slice(i, i + a.roomsPerPost));
  postErrors = [];
  const hist = new Histogram();
  const burstTimes = new Histogram();
  recording = hist;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const hardDeadline = t0 + a.timeoutMs;
  let deliveries = 0;
  let launched = 0;
  let completed = 0;
  let timedOut = false;
  let g = 0;
  let busyMs = 0;

  const startOne = () => {
    const group = groups[g++ % groups.length]!;
    launched++;
    const { burst, finished } = launchBurst(group, a.n, a.size);
    return finished.then(() => {
      completed++;
      deliveries += burst.deliveries;
      burstTimes.record(now() - burst.postedAt);
    });
  };

  if (a.mode === "bursts") {
    for (let i = 0; i < a.bursts && now() < hardDeadline; i++) {
      const s = now();
      const ok = await raceDeadline(startOne(), hardDeadline);
      busyMs += now() - s;
      if (!ok) {
        timedOut = true;
        break;
      }
      await sleep(a.pauseMs);
    }
  } else {
    const stopLaunching = t0 + a.durationMs;
    await new Promise<void>((resolve) => {
      let inflight = 0;
      const pump = () => {
        while (inflight < a.window && now() < stopLaunching && launched < a.bursts) {
          inflight++;
          startOne().then(() => {
            inflight--;
            pump();
          });
        }
        if (inflight === 0) resolve();
      };
      pump();
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, a.timeoutMs);
      timer.unref();
    });
    busyMs = now() - t0;
  }
  const ms = now() - t0;
  recording = undefined;
  return {
    mode: a.mode,
    bursts: completed,
    launched,
    deliveries,
    ms,
    busyMs,
    perSec: (deliveries / busyMs) * 1000,
    latency: hist.summary(),
    negativeLatencies: hist.negatives,
    burstMs: burstTimes.summary(),
    cpu: cpuSince(cpu0),
    timedOut,
    postErrors,
    check: integrity(),
  };
}

function raceDeadline(p: Promise<void>, deadline: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), Math.max(0, deadline - now()));
    p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Every client checked: ticks lost (published to its room but not received), out of order. */
function integrity() {
  let lost = 0;
  let gaps = 0;
  let disorder = 0;
  let clientsWithLoss = 0;
  let checked = 0;
  for (const c of clients) {
    if (c.room < 0) continue;
    checked++;
    const expected = roomStates[c.room]!.published;
    const missing = expected - c.received;
    if (missing > 0) {
      lost += missing;
      clientsWithLoss++;
    }
    gaps += c.gaps;
    disorder += c.disorder;
  }
  return {
    checked,
    lost,
    clientsWithLoss,
    gaps,
    disorder,
    ok: lost === 0 && gaps === 0 && disorder === 0,
  };
}

// ——— ticks published by someone else (cluster scenario: an Emitter) ———

let expected:
  | { burst: Burst; finished: Promise<void>; hist: Histogram; fromSeq: number; n: number }
  | undefined;

/**
 * Registers `n` ticks that another process will publish to room-0 with seq
 * `fromSeq + 1 … fromSeq + n` (returned) and starts recording their latency.
 */
async function expect(a: { n: number }) {
  ensureRooms();
  const rs = roomStates[0];
  if (rs === undefined) throw new Error("expect: no client in room-0");
  let done!: () => void;
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const fromSeq = rs.published;
  const burst: Burst = {
    remaining: rs.members,
    deliveries: rs.members * a.n,
    postedAt: now(),
    done,
  };
  rs.published += a.n;
  rs.byLastSeq.set(rs.published, burst);
  const hist = new Histogram();
  recording = hist;
  expected = { burst, finished, hist, fromSeq, n: a.n };
  return { fromSeq, members: rs.members };
}

/** Waits (bounded) until every member got the last expected tick. */
async function awaitExpected(a: { timeoutMs: number }) {
  const e = expected;
  if (e === undefined) throw new Error("awaitExpected: nothing expected");
  const ok = await raceDeadline(e.finished, now() + a.timeoutMs);
  recording = undefined;
  expected = undefined;
  return {
    timedOut: !ok,
    ms: now() - e.burst.postedAt,
    deliveries: e.burst.deliveries,
    latency: e.hist.summary(),
    negativeLatencies: e.hist.negatives,
    check: integrity(),
  };
}

// ——— echo ———

async function echo(a: {
  clients: number;
  durationMs: number;
  size: number;
  maxRoundTrips: number;
}) {
  const pad = "e".repeat(a.size);
  const expect = JSON.stringify([pad]);
  const hist = new Histogram();
  const users = clients.slice(0, a.clients);
  let count = 0;
  let mismatches = 0;
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const stop = t0 + a.durationMs;
  await Promise.all(
    users.map(async (c) => {
      while (now() < stop && count < a.maxRoundTrips && !c.closed) {
        const s = now();
        const got = await withTimeout(c.emitWithAck("echo", pad), 10_000, "echo ack");
        hist.record(now() - s);
        if (got !== expect) mismatches++;
        count++;
      }
    }),
  );
  const ms = now() - t0;
  return {
    roundTrips: count,
    ms,
    perSec: (count / ms) * 1000,
    latency: hist.summary(),
    mismatches,
    cpu: cpuSince(cpu0),
  };
}

// ——— REST ———

function getApi(retry = true): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = now();
    const req = http.request(
      { host: baseUrl.hostname, port: baseUrl.port, path: "/api", method: "GET", agent: restAgent },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => {
          if (res.statusCode !== 200 || body !== '{"result":"OK"}')
            reject(new Error(`GET /api: ${res.statusCode} ${body}`));
          else resolve(now() - s);
        });
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && retriable(req, err)) getApi(false).then(resolve, reject);
      else reject(err);
    });
    req.end();
  });
}

async function rest(a: {
  url?: string;
  count: number;
  durationMs: number;
  intervalMs: number;
  delayMs: number;
}) {
  if (a.url !== undefined) baseUrl = new URL(a.url);
  await sleep(a.delayMs);
  const hist = new Histogram();
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const stop = t0 + a.durationMs;
  let n = 0;
  while (n < a.count && now() < stop) {
    hist.record(await withTimeout(getApi(), 30_000, "GET /api"));
    n++;
    if (a.intervalMs > 0) await sleep(a.intervalMs);
  }
  return { requests: n, ms: now() - t0, latency: hist.summary(), cpu: cpuSince(cpu0) };
}

// ——— command loop ———

const commands: Record<string, (args: never) => Promise<unknown>> = {
  connect,
  join,
  fanout,
  echo,
  rest,
  expect,
  awaitExpected,
  async cpu() {
    return process.cpuUsage();
  },
  async close() {
    for (const c of clients) c.close();
    clients.length = 0;
    return { closed: true };
  },
};

process.on("disconnect", () => process.exit(0));
process.on("message", async (msg: { id: number; cmd: string; args: unknown }) => {
  const fn = commands[msg.cmd];
  try {
    if (fn === undefined) throw new Error(`unknown command ${msg.cmd}`);
    const result = await fn(msg.args as never);
    process.send?.({ id: msg.id, ok: true, result });
  } catch (err) {
    process.send?.({ id: msg.id, ok: false, error: (err as Error).stack ?? String(err) });
  }
});
process.send?.({ ready: true, pid: process.pid });
