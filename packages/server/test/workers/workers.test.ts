/**
 * `runWorkers` as a real process tree: a primary forking 3 node:cluster workers that
 * share one port and an IPC bus, driven by real socket.io-client clients. node:cluster
 * hands out connections round-robin, so a polling session's requests land on several
 * workers: session forwarding (`forwarding: { bus, secret }` with the helper's secret)
 * serves them at the owner; polling-only and polling → upgrade clients are checked too.
 *
 * Checked: connections spread over all 3 workers; a broadcast made on one worker reaches
 * every client exactly once; fetchSockets and serverSideEmitWithAck span the workers; a
 * SIGKILLed worker is replaced and its clients reconnect; SIGTERM to the primary drains
 * (clients see a transport close, not a server disconnect) and it exits 0 within the bound.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  freePort,
  type ManagedProcess,
  type RedisServer,
  startProcess,
  startRedis,
  waitFor,
  within,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";

const APP = join(fileURLToPath(new URL(".", import.meta.url)), "app.ts");
const ROOT = fileURLToPath(new URL("../../../..", import.meta.url));
const CLIENTS = 30;
const SHUTDOWN_TIMEOUT = 4000;

interface Client {
  readonly socket: ClientSocket;
  heard: string[];
  disconnects: string[];
}

let port = 0;
let app: ManagedProcess | undefined;
let clients: Client[] = [];

function open(transports: ("polling" | "websocket")[] = ["websocket"]): Client {
  const socket = connect(`http://127.0.0.1:${port}`, {
    transports,
    forceNew: true,
    reconnectionDelay: 50,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  const c: Client = { socket, heard: [], disconnects: [] };
  socket.on("heard", (id: string) => c.heard.push(id));
  socket.on("disconnect", (reason: string) => c.disconnects.push(reason));
  clients.push(c);
  return c;
}

function pidOf(c: Client): Promise<number> {
  return within(c.socket.timeout(3000).emitWithAck("pid") as Promise<number>, 4000, "pid ack");
}

function readyPids(out: string): number[] {
  const m = /^ready ([\d,]+)$/m.exec(out);
  assert.ok(m, "the primary reports ready");
  return m[1]!.split(",").map(Number);
}

describe("runWorkers: 3 workers on one port over the IPC bus", () => {
  let workerPids: number[] = [];

  before(async () => {
    port = await freePort();
    app = await startProcess({
      command: process.execPath,
      args: ["--conditions=switchyard-source", "--import", "tsx", APP],
      cwd: ROOT,
      name: "workers-app",
      env: { PORT: String(port), WORKERS: "3", SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT) },
    });
    workerPids = readyPids(await app.waitForOutput(/^ready [\d,]+$/m, { timeoutMs: 30_000 }));
    assert.equal(workerPids.length, 3);
    for (let i = 0; i < CLIENTS; i++) open();
    await waitFor(() => clients.every((c) => c.socket.connected), 15_000, "clients connected");
  });

  after(async () => {
    for (const c of clients) c.socket.close();
    clients = [];
    await app?.stop({ graceMs: 2000 });
  });

  afterEach(() => {
    for (const c of clients) c.heard = [];
  });

  it("spreads the connections over every worker", async () => {
    const pids = await Promise.all(clients.map(pidOf));
    const perWorker = new Map<number, number>();
    for (const p of pids) perWorker.set(p, (perWorker.get(p) ?? 0) + 1);
    assert.deepEqual([...perWorker.keys()].sort(), [...workerPids].sort());
    // node:cluster's round-robin skips a worker that is busy, so the split is not exact.
    for (const n of perWorker.values()) assert.ok(n >= 1, `a worker holds ${n} of ${CLIENTS}`);
  });

  it("delivers a broadcast made on one worker to every client of every worker, once", async () => {
    // The membership heartbeat makes the workers know each other; a first broadcast
    // reaches the others' clients once their subscriptions are set up.
    clients[0]!.socket.emit("shout", "first");
    clients[0]!.socket.emit("shout", "second");
    await waitFor(
      () => clients.every((c) => c.heard.includes("second")),
      5000,
      () => `${clients.filter((c) => c.heard.includes("second")).length} of ${CLIENTS} heard`,
    );
    for (const c of clients) assert.deepEqual(c.heard, ["first", "second"]);
  });

  it("answers fetchSockets and serverSideEmitWithAck across the workers", async () => {
    await waitFor(
      async () => (await clients[1]!.socket.timeout(4000).emitWithAck("count")) === CLIENTS,
      10_000,
      "fetchSockets counts every worker's clients",
    );
    const asker = clients[2]!;
    const own = await pidOf(asker);
    const others = (await asker.socket.timeout(4000).emitWithAck("ask")) as number[];
    assert.deepEqual(
      [...others].sort(),
      workerPids.filter((p) => p !== own).sort(),
      "one answer from each other worker",
    );
  });

  for (const [name, transports] of [
    ["polling only", ["polling"]],
    ["polling, then upgrade", ["polling", "websocket"]],
  ] as const) {
    it(`serves ${name} clients across the workers (forwarding): one session each, broadcasts once`, async () => {
      const wsClients = clients;
      const mine: Client[] = [];
      clients = [];
      try {
        const forwardedBefore = (await wsClients[0]!.socket
          .timeout(4000)
          .emitWithAck("forwarded")) as number;
        // node:cluster hands connections to free workers in turn; on a loaded machine a
        // batch can land on one worker. Open batches until sessions span two workers
        // (what this test needs to exercise forwarding), at most three.
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 12; i++) mine.push(open([...transports]));
          await waitFor(() => mine.every((c) => c.socket.connected), 15_000, "clients connected");
          if (new Set(await Promise.all(mine.map(pidOf))).size >= 2) break;
        }
        if (transports.length === 2) {
          await waitFor(
            () => mine.every((c) => c.socket.io.engine.transport.name === "websocket"),
            10_000,
            "every client upgraded",
          );
        }
        // Every acked request of a client is answered by the same worker: its session's owner.
        for (const c of mine) {
          const pids = new Set<number>();
          for (let k = 0; k < 4; k++) pids.add(await pidOf(c));
          assert.equal(pids.size, 1, "one owner per session");
        }
        const owners = new Set(await Promise.all(mine.map(pidOf)));
        assert.ok(owners.size >= 2, `sessions on ${owners.size} workers`);
        mine[0]!.socket.emit("shout", `${name} 1`);
        mine[0]!.socket.emit("shout", `${name} 2`);
        const all = [...mine, ...wsClients];
        await waitFor(() => all.every((c) => c.heard.includes(`${name} 2`)), 8000, "broadcasts");
        for (const c of all) assert.deepEqual(c.heard, [`${name} 1`, `${name} 2`]);
        const forwarded = (await wsClients[0]!.socket
          .timeout(4000)
          .emitWithAck("forwarded")) as number;
        assert.ok(forwarded > forwardedBefore, "requests were forwarded between workers");
        for (const c of mine) assert.deepEqual(c.disconnects, [], "no session lost");
      } finally {
        for (const c of mine) c.socket.close();
        clients = wsClients;
      }
    });
  }

  it("replaces a killed worker; its clients reconnect to live workers", async () => {
    const pids = await Promise.all(clients.map(pidOf));
    const victim = pids[0]!;
    const hit = clients.filter((_, i) => pids[i] === victim);
    assert.ok(hit.length > 0);
    process.kill(victim, "SIGKILL");
    const out = await app!.waitForOutput(new RegExp(`^exit ${victim} null SIGKILL true$`, "m"), {
      timeoutMs: 5000,
    });
    assert.ok(out);
    let replacement = 0;
    await waitFor(
      () => {
        const forks = [...app!.stdout().matchAll(/^fork (\d+)$/gm)].map((m) => Number(m[1]));
        replacement = forks.find((p) => !workerPids.includes(p)) ?? 0;
        return replacement !== 0;
      },
      5000,
      "a replacement forked",
    );
    assert.ok(Number.isInteger(replacement) && !workerPids.includes(replacement));
    await app!.waitForOutput(new RegExp(`^online ${replacement}$`, "m"), { timeoutMs: 15_000 });
    await waitFor(
      () => hit.every((c) => c.disconnects.length > 0 && c.socket.connected),
      10_000,
      "the killed worker's clients reconnected",
    );
    for (const c of hit) assert.equal(c.disconnects[0], "transport close");
    const now = await Promise.all(hit.map(pidOf));
    for (const p of now) assert.notEqual(p, victim);
    // New connections reach the replacement too (round-robin over the live workers).
    const fresh = Array.from({ length: 6 }, () => open());
    await waitFor(() => fresh.every((c) => c.socket.connected), 10_000, "fresh clients");
    const freshPids = await Promise.all(fresh.map(pidOf));
    assert.ok(freshPids.includes(replacement), `fresh clients on ${freshPids.join(",")}`);
    // And the cluster still delivers to everyone, once.
    await waitFor(
      async () => (await clients[0]!.socket.timeout(4000).emitWithAck("count")) === clients.length,
      10_000,
      "fetchSockets after the restart",
    );
    clients[0]!.socket.emit("shout", "after");
    await waitFor(() => clients.every((c) => c.heard.includes("after")), 5000, "broadcast");
    for (const c of clients) assert.deepEqual(c.heard, ["after"]);
  });

  it("drains on SIGTERM: clients are told to reconnect, the primary exits 0 within the bound", async () => {
    const before = clients.map((c) => c.disconnects.length);
    const t0 = Date.now();
    process.kill(app!.pid, "SIGTERM");
    const exit = await app!.waitForExit(SHUTDOWN_TIMEOUT + 3000);
    const took = Date.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(took < SHUTDOWN_TIMEOUT + 1000, `exited after ${took} ms`);
    await waitFor(
      () => clients.every((c, i) => c.disconnects.length > (before[i] ?? 0)),
      3000,
      "every client saw the drain",
    );
    for (const [i, c] of clients.entries()) {
      assert.equal(c.disconnects[before[i] ?? 0], "transport close", "a reconnectable close");
    }
    assert.deepEqual(app!.leftovers(), [], "no worker left behind");
  });
});

describe("runWorkers: bounded restarts and a second signal", () => {
  let proc: ManagedProcess | undefined;
  after(async () => {
    await proc?.stop({ graceMs: 1000 });
  });

  it("gives up after maxRestarts deaths within the window and exits 1", async () => {
    proc = await startProcess({
      command: process.execPath,
      args: ["--conditions=switchyard-source", "--import", "tsx", APP],
      cwd: ROOT,
      name: "workers-crash",
      env: { PORT: String(await freePort()), WORKERS: "2", MAX_RESTARTS: "2", CRASH_ON_START: "1" },
    });
    const exit = await proc.waitForExit(30_000);
    assert.deepEqual(exit, { code: 1, signal: null });
    assert.match(proc.stdout(), /^give-up$/m);
    // 2 first starts + 2 replacements, then the third death within the window gives up.
    assert.equal([...proc.stdout().matchAll(/^exit \d+ 1 null true$/gm)].length, 2);
    assert.deepEqual(proc.leftovers(), []);
  });

  it("exits at once (status 1) on a second signal during the drain, killing the workers", async () => {
    proc = await startProcess({
      command: process.execPath,
      args: ["--conditions=switchyard-source", "--import", "tsx", APP],
      cwd: ROOT,
      name: "workers-twice",
      env: {
        PORT: String(await freePort()),
        WORKERS: "2",
        SHUTDOWN_TIMEOUT: "20000",
        SLOW_DRAIN: "1",
      },
    });
    readyPids(await proc.waitForOutput(/^ready [\d,]+$/m, { timeoutMs: 30_000 }));
    process.kill(proc.pid, "SIGTERM");
    await proc.waitForOutput(/^signal$/m, { timeoutMs: 3000 });
    process.kill(proc.pid, "SIGTERM");
    const exit = await proc.waitForExit(5000);
    assert.deepEqual(exit, { code: 1, signal: null });
    await waitFor(() => proc!.leftovers().length === 0, 3000, "workers gone");
  });
});

describe("runWorkers on several hosts: two primaries of 2 workers each over Redis", () => {
  let redis: RedisServer | undefined;
  const hosts: ManagedProcess[] = [];
  const mine: ClientSocket[] = [];
  after(async () => {
    for (const c of mine) c.close();
    for (const h of hosts) await h.stop({ graceMs: 2000 });
    await redis?.stop();
  });

  it("broadcasts reach the clients of every worker of both hosts once; fetchSockets counts them all", async () => {
    redis = await startRedis();
    const ports: number[] = [];
    for (const name of ["host-a", "host-b"]) {
      const p = await freePort();
      ports.push(p);
      hosts.push(
        await startProcess({
          command: process.execPath,
          args: ["--conditions=switchyard-source", "--import", "tsx", APP],
          cwd: ROOT,
          name,
          env: { PORT: String(p), WORKERS: "2", REDIS_URL: redis.url },
        }),
      );
    }
    for (const h of hosts) await h.waitForOutput(/^ready [\d,]+$/m, { timeoutMs: 30_000 });
    const heard = new Map<ClientSocket, string[]>();
    for (let i = 0; i < 16; i++) {
      const c = connect(`http://127.0.0.1:${ports[i % 2]}`, {
        transports: ["websocket"],
        forceNew: true,
      });
      heard.set(c, []);
      c.on("heard", (id: string) => heard.get(c)!.push(id));
      mine.push(c);
    }
    await waitFor(() => mine.every((c) => c.connected), 15_000, "clients connected");
    const pids = new Set(
      await Promise.all(mine.map((c) => c.timeout(3000).emitWithAck("pid") as Promise<number>)),
    );
    // Half the clients on each host; round-robin spreads each half over that host's workers.
    assert.ok(pids.size >= 2, `the clients are on ${pids.size} workers`);
    await waitFor(
      async () => (await mine[0]!.timeout(4000).emitWithAck("count")) === mine.length,
      10_000,
      "fetchSockets across hosts",
    );
    mine[1]!.emit("shout", "across 1");
    mine[1]!.emit("shout", "across 2");
    await waitFor(
      () => mine.every((c) => heard.get(c)!.includes("across 2")),
      5000,
      "broadcast across hosts",
    );
    for (const c of mine) assert.deepEqual(heard.get(c), ["across 1", "across 2"]);
  });
});
