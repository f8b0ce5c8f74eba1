/**
 * What one idle WebSocket connection costs on the heap, by constructor: a heap snapshot of
 * the server with no client and one with N idle clients (default 2,000), self sizes
 * summed per constructor, the difference divided by N.
 *
 *   node --conditions=source --import tsx tools/heap.ts [switchyard|socketio|bare-ws] [--n=2000] [--write-md]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "../lib/clock.js";
import { type Impl, killEverything, startServer, startWorker } from "../lib/harness.js";
import { replaceBlock } from "../lib/report.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count per `type:name` ("object:Session", "(string)", …). */
function bySelfSize(file: string): Map<string, { size: number; count: number }> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf("type");
  const iName = f.indexOf("name");
  const iSize = f.indexOf("self_size");
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!]!;
    const key =
      type === "object" || type === "closure" || type === "native"
        ? `${type}: ${name}`
        : `(${type})`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += s.nodes[i + iSize]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

async function main(): Promise<void> {
  const impl = (process.argv.find((a) => ["switchyard", "socketio", "bare-ws"].includes(a)) ??
    "switchyard") as Impl;
  const n = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 2000);
  const dir = here("../results/raw/heap");
  mkdirSync(dir, { recursive: true });
  const server = await startServer(impl);
  try {
    const w = await startWorker();
    const before = await server.heapSnapshot(`${dir}/${impl}-0.heapsnapshot`);
    const r = await w.call("connect", {
      url: server.url,
      n,
      transport: "websocket",
      concurrency: 200,
      localAddresses: [],
      timeoutMs: 60_000,
    });
    if (r.failed > 0) throw new Error(`${r.failed} failed to connect`);
    await sleep(1000);
    const after = await server.heapSnapshot(`${dir}/${impl}-${n}.heapsnapshot`);
    const a = bySelfSize(before);
    const b = bySelfSize(after);
    rmSync(before);
    rmSync(after);
    const rows = [...b.entries()]
      .map(([k, v]) => {
        const o = a.get(k) ?? { size: 0, count: 0 };
        return { k, bytes: (v.size - o.size) / n, count: (v.count - o.count) / n };
      })
      .filter((x) => x.bytes > 8)
      .sort((x, y) => y.bytes - x.bytes);
    const total = rows.reduce((t, x) => t + x.bytes, 0);
    const md = [
      `Heap per idle WebSocket connection, ${impl}, ${n} clients (\`tools/heap.ts\`, ${new Date().toISOString()}): ${(total / 1024).toFixed(2)} KiB in total (self sizes, rows above 8 B).`,
      "",
      "| bytes / conn | objects / conn | what |",
      "|---:|---:|---|",
      ...rows
        .slice(0, 25)
        .map((x) => `| ${x.bytes.toFixed(0)} | ${x.count.toFixed(1)} | \`${x.k}\` |`),
    ].join("\n");
    console.log(md);
    writeFileSync(here(`../results/heap-${impl}.md`), `${md}\n`);
    if (process.argv.includes("--write-md")) {
      const path = here("../RESULTS.md");
      writeFileSync(path, replaceBlock(readFileSync(path, "utf8"), `heap-${impl}`, md));
    }
  } finally {
    await server.stop();
    killEverything();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    killEverything();
    process.exit(1);
  },
);
