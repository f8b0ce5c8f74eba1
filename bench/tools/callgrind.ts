/**
 * Instructions the server executes per WebSocket connection set-up and per echo round
 * trip, counted by `valgrind --tool=callgrind` (user space only: the kernel's share of
 * accept/read/write is not in it). Unlike CPU time, the counts barely move when the
 * machine is busy, so a change to the connect or echo path can be measured before/after
 * on a shared machine.
 *
 *   node --conditions=switchyard-source --import tsx tools/callgrind.ts [switchyard|socketio] [--n=1000] [--warmup=4000] [--echo=3000]
 *
 * The server runs under callgrind with instrumentation off; after a warm-up (connections
 * and echoes, so the JIT has tiered up) instrumentation is switched on for `n` new
 * connections, dumped, then on again for `echo` round trips by 20 clients, dumped. The
 * dumps (results/raw/callgrind/, git-ignored) open in kcachegrind / callgrind_annotate.
 */
import { execFileSync, fork } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startWorker } from "../lib/harness.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function arg(name: string, dflt: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? dflt : Number(a.slice(name.length + 3));
}

/** Total instructions (Ir) of one callgrind dump file. */
function totalIr(file: string): number {
  // "summary:" is 0 after a --zero; "totals:" holds the events since then.
  const m = /^totals:\s+(\d+)/m.exec(readFileSync(file, "utf8"));
  if (m === null) throw new Error(`no totals in ${file}`);
  return Number(m[1]);
}

function control(pid: number, ...args: string[]): void {
  execFileSync("callgrind_control", [...args, String(pid)], { stdio: "ignore", timeout: 60_000 });
}

async function main(): Promise<void> {
  const impl = process.argv.includes("socketio") ? "socketio" : "switchyard";
  const n = arg("n", 1000);
  const warmup = arg("warmup", 4000);
  const echoes = arg("echo", 3000);
  const dir = here(`../results/raw/callgrind/${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const nodeArgs = ["--expose-gc", "--import", "tsx"];
  if (process.env.BENCH_SWITCHYARD !== "dist") nodeArgs.unshift("--conditions=switchyard-source");
  const child = fork(here(`../apps/${impl}.ts`), [], {
    execPath: "valgrind",
    execArgv: [
      "--tool=callgrind",
      "--instr-atstart=no",
      "--separate-threads=yes",
      `--callgrind-out-file=${dir}/callgrind.out.%p`,
      process.execPath,
      ...nodeArgs,
    ],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const stop = () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.on("exit", stop);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("server not ready in 180 s")), 180_000);
      child.on("exit", (code) => reject(new Error(`server exited (${code})`)));
      child.on("message", (m: { ready?: boolean; port?: number }) => {
        if (m.ready === true && typeof m.port === "number") {
          clearTimeout(t);
          resolve(m.port);
        }
      });
    });
    const pid = child.pid!;
    const w = await startWorker();
    const url = `http://127.0.0.1:${port}`;
    const connect = async (count: number) => {
      const r = await w.call("connect", {
        url,
        n: count,
        transport: "websocket",
        concurrency: 20,
        localAddresses: [],
        timeoutMs: 600_000,
      });
      if (r.failed > 0) throw new Error(`${r.failed} failed to connect`);
    };
    const echo = async (max: number) => {
      const e = await w.call(
        "echo",
        { clients: 20, durationMs: 600_000, size: 32, maxRoundTrips: max },
        700_000,
      );
      if (e.mismatches > 0) throw new Error("echo mismatches");
      return e.roundTrips as number;
    };
    await connect(warmup);
    await echo(Math.max(2000, echoes));
    control(pid, "--zero");
    control(pid, "--instr=on");
    await connect(n);
    control(pid, "--instr=off");
    control(pid, "--dump=connect");
    control(pid, "--zero");
    control(pid, "--instr=on");
    const rts = await echo(echoes);
    control(pid, "--instr=off");
    control(pid, "--dump=echo");
    w.kill();
    // One file per dump and thread: callgrind.out.<pid>.<dump>-<thread>; thread 01 is
    // the main (JavaScript) thread, the others are V8's and libuv's helpers (concurrent
    // marking and sweeping, compilation): their share moves with when a GC happens.
    const irOf = (dump: number) => {
      let main = 0;
      let all = 0;
      for (const f of readdirSync(dir)) {
        const m = /\.(\d+)-(\d+)$/.exec(f);
        if (m === null || Number(m[1]) !== dump) continue;
        const ir = totalIr(`${dir}/${f}`);
        all += ir;
        if (Number(m[2]) === 1) main += ir;
      }
      if (all === 0) throw new Error(`no dump ${dump} in ${dir}`);
      return { main, all };
    };
    const c = irOf(1);
    const e = irOf(2);
    const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
    console.log(
      `callgrind, ${impl}: per connection set-up ${k(c.main / n)} instructions on the main thread (${k(c.all / n)} with helper threads; ${n} connections after ${warmup} warm-up); per echo round trip ${k(e.main / rts)} (${k(e.all / rts)}; ${rts} round trips, 20 clients); dumps in ${dir}`,
    );
  } finally {
    stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
