/**
 * What one idle WebSocket connection costs on the heap, by constructor: a heap snapshot of
 * the server with no client and one with N idle clients (default 2,000), self sizes
 * summed per constructor, the difference divided by N.
 *
 *   node --conditions=switchyard-source --import tsx tools/heap.ts [switchyard|socketio|bare-ws] [--n=2000] [--write-md] [--retainers] [--rss]
 *
 * `--retainers` also prints, per connection, which object holds what: every node keyed by
 * its constructor and its first (non-weak) retainer's constructor and edge name, e.g.
 * "(array) <- object: Session.buffer" — where the generic `(array)` / `(string)` /
 * `object: Object` rows come from.
 *
 * `--rss` takes no snapshot: it reads RSS and heap after a full GC before any client and
 * after N idle clients, as the quick bench's "Idle memory per connection" does (a
 * snapshot would move both), three times on fresh server processes, and prints each.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sleep } from "../lib/clock.js";
import { type Impl, killEverything, startServer, startWorker } from "../lib/harness.js";
import { replaceBlock } from "../lib/report.js";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[]];
      edge_fields: string[];
      edge_types: [string[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

function nodeKey(type: string, name: string): string {
  return type === "object" || type === "closure" || type === "native"
    ? `${type}: ${name}`
    : `(${type})`;
}

/** Self size and count per "what <- retainer.edge" (see `--retainers`). */
function byRetainer(file: string): Map<string, { size: number; count: number }> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const m = s.snapshot.meta;
  const f = m.node_fields;
  const width = f.length;
  const iType = f.indexOf("type");
  const iName = f.indexOf("name");
  const iSize = f.indexOf("self_size");
  const iEdges = f.indexOf("edge_count");
  const ef = m.edge_fields;
  const eWidth = ef.length;
  const eType = ef.indexOf("type");
  const eName = ef.indexOf("name_or_index");
  const eTo = ef.indexOf("to_node");
  const types = m.node_types[0];
  const etypes = m.edge_types[0];
  const count = s.nodes.length / width;
  // First non-weak retainer of each node: [retainer node index, edge name].
  const retainer = new Int32Array(count).fill(-1);
  const retEdge: string[] = new Array(count);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edges = s.nodes[n * width + iEdges]!;
    for (let k = 0; k < edges; k++, e += eWidth) {
      const to = s.edges[e + eTo]! / width;
      const et = etypes[s.edges[e + eType]!]!;
      if (et === "weak" || retainer[to] !== -1) continue;
      retainer[to] = n;
      const nm = s.edges[e + eName]!;
      retEdge[to] = et === "element" || et === "hidden" ? `[${et}]` : String(s.strings[nm]);
    }
  }
  const key = (n: number) =>
    nodeKey(types[s.nodes[n * width + iType]!]!, s.strings[s.nodes[n * width + iName]!]!);
  const out = new Map<string, { size: number; count: number }>();
  for (let n = 0; n < count; n++) {
    const r = retainer[n]!;
    const k = `${key(n)} <- ${r === -1 ? "?" : `${key(r)}.${retEdge[n]}`}`;
    const x = out.get(k) ?? { size: 0, count: 0 };
    x.size += s.nodes[n * width + iSize]!;
    x.count++;
    out.set(k, x);
  }
  return out;
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
    const key = nodeKey(type, name);
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += s.nodes[i + iSize]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

/** One `--rss` run: the bench's idle-memory method on a fresh server process. */
async function rssRun(impl: Impl, n: number): Promise<void> {
  const server = await startServer(impl);
  try {
    const w = await startWorker();
    const base = (await server.stats(true)).mem;
    const r = await w.call("connect", {
      url: server.url,
      n,
      transport: "websocket",
      concurrency: 500,
      localAddresses: [],
      timeoutMs: 60_000,
    });
    if (r.failed > 0) throw new Error(`${r.failed} failed to connect`);
    await sleep(1000);
    const m = (await server.stats(true)).mem;
    const per = (k: "rss" | "heapUsed") => ((m[k] - base[k]) / 1024 / n).toFixed(2);
    console.log(
      `${impl}, ${n} idle WebSocket clients: RSS ${per("rss")} KiB, heap after GC ${per("heapUsed")} KiB per connection`,
    );
  } finally {
    await server.stop();
    killEverything();
  }
}

async function main(): Promise<void> {
  const impl = (process.argv.find((a) => ["switchyard", "socketio", "bare-ws"].includes(a)) ??
    "switchyard") as Impl;
  const n = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 2000);
  const dir = here("../results/raw/heap");
  mkdirSync(dir, { recursive: true });
  if (process.argv.includes("--rss")) {
    for (let run = 0; run < 3; run++) await rssRun(impl, n);
    return;
  }
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
    if (process.argv.includes("--retainers")) {
      const ra = byRetainer(before);
      const rb = byRetainer(after);
      const rows = [...rb.entries()]
        .map(([k, v]) => {
          const o = ra.get(k) ?? { size: 0, count: 0 };
          return { k, bytes: (v.size - o.size) / n, count: (v.count - o.count) / n };
        })
        .filter((x) => x.bytes > 4)
        .sort((x, y) => y.bytes - x.bytes);
      console.log("| bytes / conn | objects / conn | what <- held by |\n|---:|---:|---|");
      for (const x of rows.slice(0, 60))
        console.log(`| ${x.bytes.toFixed(0)} | ${x.count.toFixed(2)} | \`${x.k}\` |`);
      console.log("");
    }
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
