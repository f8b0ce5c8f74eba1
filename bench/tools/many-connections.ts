/**
 * Many idle WebSocket clients on one host, across workers: a benchmark script, not a test.
 *
 *   node --conditions=switchyard-source --import tsx tools/many-connections.ts [--clients=100000]
 *        [--workers=6] [--loadgens=6] [--hold=35]
 *
 * Starts Switchyard with `runWorkers` (`--workers` node:cluster workers sharing one port,
 * linked by the IPC bus), then `--loadgens` load-generator processes (bench/loadgen, the
 * same protocol-speaking clients as every scenario), each holding its share of the
 * clients. Every process may hold at most 20,000 descriptors (not raisable here), so
 * both sides spread: ~17k sockets per worker and per load generator at 100k. The clients
 * bind to several 127.0.1.x source addresses (two per load generator), since one source
 * address has only 28k ephemeral ports towards one server port.
 *
 * Reports: clients connected, connect time, descriptors per worker, RSS per worker before
 * and after (from /proc), RSS per connection (the workers' growth / clients), that the
 * clients are still held after `--hold` seconds (a heartbeat round at the default 25 s
 * pingInterval included), and how long the primary takes to drain them on SIGTERM.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import type { Worker } from "../lib/harness.js";

const KiB = 1024;

if (process.env.MANY_ROLE === "server") {
  const { createAdapter, runWorkers, Server } = await import("@switchyard/server");
  const handle = await runWorkers(
    { workers: Number(process.env.MANY_WORKERS), shutdownTimeout: 30_000 },
    ({ bus }) => {
      const http = createServer();
      const io = new Server(http, { adapter: createAdapter(bus) });
      io.on("connection", () => {});
      http.listen(Number(process.env.MANY_PORT), "127.0.0.1", 2048);
      return io;
    },
  );
  if (handle.isPrimary) {
    await handle.ready;
    process.stdout.write(`ready ${handle.pids.join(",")}\n`);
  }
} else {
  await main();
}

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m === null ? 0 : Number(m[1]);
}

function fds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const total = arg("clients", 100_000);
  const workers = arg("workers", 6);
  const loadgens = arg("loadgens", 6);
  const holdS = arg("hold", 35);
  if (Math.ceil(total / workers) > 19_000 || Math.ceil(total / loadgens) > 19_000) {
    throw new Error("more than 19,000 sockets per process: raise --workers / --loadgens");
  }
  // Imported here only: the harness installs signal handlers that must not run in the server.
  const { startWorker } = await import("../lib/harness.js");
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = spawn(
    process.execPath,
    ["--conditions=switchyard-source", "--import", "tsx", fileURLToPath(import.meta.url)],
    {
      env: {
        ...process.env,
        MANY_ROLE: "server",
        MANY_WORKERS: String(workers),
        MANY_PORT: String(port),
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const gens: Worker[] = [];
  const cleanup = (): void => {
    for (const g of gens) g.kill();
    if (server.exitCode === null) server.kill("SIGKILL");
  };
  process.on("exit", cleanup);
  try {
    const pids = await new Promise<number[]>((resolve, reject) => {
      let out = "";
      const t = setTimeout(() => reject(new Error("server not ready in 60 s")), 60_000);
      server.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^ready ([\d,]+)$/m.exec(out);
        if (m !== null) {
          clearTimeout(t);
          resolve(m[1]!.split(",").map(Number));
        }
      });
      server.once("exit", (c) => reject(new Error(`server exited (${c})`)));
    });
    await sleep(2000);
    const before = pids.map(rssKiB);
    const primaryBefore = rssKiB(server.pid!);
    const fds0 = pids.map(fds);
    console.log(
      `server: ${workers} workers, RSS ${before.map((k) => (k / KiB).toFixed(0)).join(" / ")} MiB`,
    );

    for (let i = 0; i < loadgens; i++) gens.push(await startWorker());
    const share = Math.ceil(total / loadgens);
    const t0 = performance.now();
    const results = await Promise.all(
      gens.map((g, j) =>
        g.call(
          "connect",
          {
            url: `http://127.0.0.1:${port}`,
            n: Math.min(share, total - j * share),
            transport: "websocket",
            concurrency: 100,
            localAddresses: [`127.0.1.${2 * j + 1}`, `127.0.1.${2 * j + 2}`],
            timeoutMs: 600_000,
          },
          700_000,
        ),
      ),
    );
    const connectS = (performance.now() - t0) / 1000;
    const connected = results.reduce((s, r) => s + r.connected, 0);
    const failed = results.reduce((s, r) => s + r.failed, 0);
    console.log(
      `connected ${connected} of ${total} in ${connectS.toFixed(1)} s (${(connected / connectS).toFixed(0)}/s), failed ${failed}`,
    );
    for (const r of results) if (r.failed > 0) console.log("  errors:", r.errors);
    await sleep(5000);
    const after = pids.map(rssKiB);
    const perWorkerFds = pids.map(fds);
    const grown = after.reduce((s, k, i) => s + k - before[i]!, 0);
    const sumAfter = after.reduce((s, k) => s + k, 0) + rssKiB(server.pid!);
    console.log(`sockets per worker: ${perWorkerFds.map((n, i) => n - fds0[i]!).join(" / ")}`);
    console.log(`RSS per worker after: ${after.map((k) => (k / KiB).toFixed(0)).join(" / ")} MiB`);
    console.log(
      `RSS per connection (workers' growth / clients): ${(grown / connected).toFixed(2)} KiB; whole server tree ${(sumAfter / KiB).toFixed(0)} MiB (primary ${(rssKiB(server.pid!) / KiB).toFixed(0)} MiB, was ${(primaryBefore / KiB).toFixed(0)}) = ${((sumAfter * KiB) / connected / KiB).toFixed(2)} KiB per connection all-in`,
    );
    console.log(`holding ${holdS} s idle (heartbeats)…`);
    await sleep(holdS * 1000);
    const heldFds = pids.map(fds);
    const held = heldFds.reduce((s, n, i) => s + n - fds0[i]!, 0);
    console.log(`held after ${holdS} s: ${held} sockets`);
    const t1 = performance.now();
    server.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(-1), 60_000);
      server.once("exit", (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    console.log(
      `SIGTERM → primary exited with ${code} after ${((performance.now() - t1) / 1000).toFixed(1)} s (drained ${connected} clients)`,
    );
  } finally {
    cleanup();
  }
  process.exit(0);
}
