/**
 * deploy/grafana-dashboard.json is built on the series /metrics really exposes: every
 * metric name in its queries is in a real exposition (server with a cluster bus, default
 * metrics on), panels have unique ids and use the datasource input.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { test } from "node:test";
import { createAdapter, LocalBus, LocalHub, Server } from "@switchyard/server";
import { SwitchyardMetrics } from "../../src/metrics/index.js";

const FILE = new URL("../../../../deploy/grafana-dashboard.json", import.meta.url);

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}

test("every series the Grafana dashboard queries is exposed by /metrics", async (t) => {
  const doc = JSON.parse(readFileSync(FILE, "utf8")) as {
    uid: string;
    __inputs: { name: string }[];
    panels: Panel[];
  };
  assert.equal(doc.__inputs[0]?.name, "DS_PROMETHEUS");
  const ids = doc.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "unique panel ids");
  const queried = new Set<string>();
  for (const p of doc.panels) {
    if (p.type === "row") continue;
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's import placeholder, literally
    assert.equal(p.datasource?.uid, "${DS_PROMETHEUS}", p.title);
    assert.ok((p.targets ?? []).length > 0, `${p.title} has queries`);
    for (const { expr } of p.targets ?? [])
      for (const m of expr.matchAll(/\b((?:switchyard|nodejs|process)_[a-z0-9_]+)/g))
        if (m[1] !== undefined) queried.add(m[1]);
  }
  assert.ok(queried.size >= 25, `queries ${queried.size} series`);

  const hub = new LocalHub();
  const bus = new LocalBus(hub);
  const io = new Server(http.createServer(), { adapter: createAdapter(bus) });
  const metrics = new SwitchyardMetrics(io, { bus });
  t.after(async () => {
    metrics.close();
    await io.close();
    await bus.close();
  });
  const text = (await metrics.render()).body;
  const families = new Set(
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].flatMap((m) => {
      const name = m[1] as string;
      return m[2] === "histogram"
        ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]
        : [name];
    }),
  );
  const missing = [...queried].filter((name) => !families.has(name)).sort();
  assert.deepEqual(missing, [], "series in the dashboard but not in /metrics");
});
