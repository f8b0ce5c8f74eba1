/**
 * The orchestrator. Runs every scenario against socket.io 4.8 and Switchyard (and the
 * bare-ws ceiling where it applies), alternating A/B over the repeats, each run on fresh
 * server and load-generator processes; prints medians, min–max and ratios; writes
 * results/<timestamp>.json (+ .md).
 *
 *   npm run bench                   quick mode (3 repeats, short phases; < 5 min)
 *   npm run bench:full              full mode (5 repeats, long phases; includes `cluster`)
 *   npm run bench:cluster           the cluster scenario only (quick phases, 3 repeats)
 *   node --import tsx run.ts [--mode=quick|full] [--repeats=N] [--only=a,b] [--no-wait]
 *                            [--write-md]       also refresh the tables in RESULTS.md
 *   npm run render -- results/<file>.json                  refresh RESULTS.md from a file
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "./lib/clock.js";
import { type Impl, killEverything } from "./lib/harness.js";
import { cpuIdleShare, loadavg, machineInfo, waitForQuiet } from "./lib/machine.js";
import {
  type ResultsFile,
  type RunRecord,
  renderMachine,
  renderTables,
  renderTargets,
  replaceBlock,
} from "./lib/report.js";
import { scenarios } from "./scenarios/index.js";
import type { Mode } from "./scenarios/types.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

function arg(name: string): string | undefined {
  const hit = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (hit === undefined) return undefined;
  return hit.includes("=") ? hit.slice(hit.indexOf("=") + 1) : "";
}

function writeResultsMd(r: ResultsFile): void {
  const path = here("./RESULTS.md");
  let doc: string;
  try {
    doc = readFileSync(path, "utf8");
  } catch {
    doc = "# Benchmark results\n";
  }
  doc = replaceBlock(doc, "machine", renderMachine(r));
  doc = replaceBlock(doc, "targets", renderTargets(r));
  doc = replaceBlock(doc, "tables", renderTables(r));
  writeFileSync(path, doc);
  // The README shows the target table too.
  const readme = here("./README.md");
  const m = r.machine;
  const line = `Measured ${r.startedAt.slice(0, 10)} (\`${r.mode}\` mode, ${r.repeats} repeats) on ${m.nproc} × ${m.cpuModel}, ${m.memGiB} GiB, Node ${m.node}, socket.io ${m.socketio}:`;
  let rd = readFileSync(readme, "utf8");
  rd = replaceBlock(rd, "readme-machine", line);
  rd = replaceBlock(rd, "targets", renderTargets(r));
  writeFileSync(readme, rd);
  process.stderr.write(`wrote ${path} and ${readme}\n`);
}

async function main(): Promise<void> {
  let render = arg("render");
  if (render === "") render = process.argv[process.argv.indexOf("--render") + 1];
  if (render !== undefined) {
    writeResultsMd(JSON.parse(readFileSync(render, "utf8")) as ResultsFile);
    return;
  }
  const mode: Mode = arg("mode") === "full" ? "full" : "quick";
  const repeats = Number(arg("repeats") ?? (mode === "full" ? 5 : 3));
  const only = arg("only")?.split(",");
  const selected = scenarios.filter((s) =>
    only === undefined ? mode === "full" || s.fullOnly !== true : only.includes(s.name),
  );
  if (selected.length === 0) throw new Error(`no scenario matches --only=${only}`);

  const before = loadavg();
  const quiet =
    arg("no-wait") !== undefined
      ? { load: before, waitedMs: 0, quiet: before[0] < 1 }
      : await waitForQuiet(1.0, 10 * 60_000);
  if (!quiet.quiet)
    process.stderr.write(`warning: 1-min load still ${quiet.load[0]} — figures may be noisy\n`);
  const idleBefore = await cpuIdleShare();

  const results: ResultsFile = {
    version: 1,
    mode,
    repeats,
    startedAt: new Date().toISOString(),
    finishedAt: "",
    switchyardFrom:
      process.env.BENCH_SWITCHYARD === "dist"
        ? "packages/server/dist (built)"
        : "packages/server/src (tsx, source condition)",
    machine: machineInfo(),
    load: {
      before: quiet.load,
      after: [],
      waitedMs: quiet.waitedMs,
      quietAtStart: quiet.quiet,
      idleBefore,
    },
    scenarios: selected.map((s) => ({
      name: s.name,
      title: s.title,
      impls: s.impls,
      metrics: s.metrics,
    })),
    runs: [],
  };
  const t0 = Date.now();
  for (const s of selected) {
    for (let rep = 0; rep < repeats; rep++) {
      // A/B alternation: the two implementations swap places every repeat; the ceiling runs last.
      const ab: Impl[] = rep % 2 === 0 ? ["switchyard", "socketio"] : ["socketio", "switchyard"];
      const order = [
        ...ab.filter((i) => s.impls.includes(i)),
        ...s.impls.filter((i) => !ab.includes(i)),
      ];
      const impls = arg("impls")?.split(",");
      for (const impl of order.filter((i) => impls === undefined || impls.includes(i))) {
        const rec: RunRecord = {
          scenario: s.name,
          impl,
          repeat: rep,
          startedAt: new Date().toISOString(),
          load1: loadavg()[0],
          ms: 0,
          metrics: {},
          notes: {},
        };
        const start = Date.now();
        try {
          const r = await s.run(impl, mode);
          rec.metrics = r.metrics;
          rec.notes = r.notes;
        } catch (err) {
          rec.error = (err as Error).stack ?? String(err);
          process.stderr.write(`  ${s.name} ${impl} #${rep} FAILED: ${rec.error}\n`);
        } finally {
          killEverything();
        }
        rec.ms = Date.now() - start;
        results.runs.push(rec);
        const brief = Object.entries(rec.metrics)
          .slice(0, 4)
          .map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`)
          .join(" ");
        process.stderr.write(
          `[${Math.round((Date.now() - t0) / 1000)}s] ${s.name} ${impl} #${rep} (${rec.ms} ms, load ${rec.load1}) ${brief}\n`,
        );
        // Let the kernel reap the closed sockets before the next run.
        await sleep(300);
      }
    }
  }
  results.finishedAt = new Date().toISOString();
  results.load.after = loadavg();

  const stamp = results.startedAt.replace(/[:.]/g, "-");
  const dir = here("./results");
  mkdirSync(dir, { recursive: true });
  const jsonPath = `${dir}/${stamp}-${mode}.json`;
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 1)}\n`);
  const md = [
    `# Results ${results.startedAt} (${mode})`,
    "",
    renderMachine(results),
    "",
    "## Targets",
    "",
    renderTargets(results),
    "",
    "## All figures (median (min–max) over repeats)",
    "",
    renderTables(results),
  ].join("\n");
  writeFileSync(jsonPath.replace(/\.json$/, ".md"), md);
  process.stdout.write(`${md}\n`);
  process.stderr.write(`wrote ${jsonPath}\n`);
  if (arg("write-md") !== undefined) writeResultsMd(results);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    killEverything();
    process.exit(1);
  },
);
