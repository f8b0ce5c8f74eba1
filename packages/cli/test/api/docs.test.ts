// docs/api.md runs: every Python snippet (stdlib urllib, run by Debian's python3) and every
// curl line of its "Operations" section against a live node, and they do what they say
// (a client in room ACME receives the published events; every answer is a success). The
// root README's "Standalone server" section repeats them: its curl lines are exactly
// docs/api.md's (so they run here too), its Python lines are docs/api.md's, and its Python
// block runs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { makeTempDir, runPython, type TempDir } from "@switchyard/test-harness";
import { ALL_KEY, Clients, call, collect, MANAGE_KEY, type Node, startNode } from "./helpers.ts";

const run = promisify(execFile);
const DOC = new URL("../../../../docs/api.md", import.meta.url).pathname;
const README = new URL("../../../../README.md", import.meta.url).pathname;

function readmeSection(): string {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf("\n## Standalone server\n");
  const end = text.indexOf("\n## ", start + 1);
  assert.ok(start > 0 && end > start, "README.md has its Standalone server section");
  return text.slice(start, end);
}

function section(): string {
  const text = readFileSync(DOC, "utf8");
  const start = text.indexOf("## Operations");
  const end = text.indexOf("## The same operations over the broker");
  assert.ok(start > 0 && end > start, "docs/api.md has its Operations section");
  return text.slice(start, end);
}

function blocks(text: string, lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, "gm");
  for (const m of text.matchAll(re)) out.push(m[1] ?? "");
  return out;
}

describe("docs/api.md", () => {
  let node: Node;
  let tmp: TempDir;
  const clients = new Clients();
  before(async () => {
    node = await startNode({});
    tmp = makeTempDir("api-docs");
  });
  after(async () => {
    await node.close();
    tmp.remove();
  });
  afterEach(() => clients.closeAll());

  async function inAcme() {
    const c = await clients.connect(node);
    await call(node, "POST", "/api/v1/join", {
      key: MANAGE_KEY,
      body: { sockets: [c.id ?? ""], join: ["ACME", "user:42"] },
    });
    return c;
  }

  test("the Python snippets run and reach a client", async () => {
    const code = blocks(section(), "python");
    assert.ok(code.length >= 8, `found ${code.length} Python blocks`);
    const c = await inAcme();
    const prices = collect(c, "price");
    const ticks = collect(c, "tick");
    const script = join(tmp.path, "snippets.py");
    writeFileSync(script, code.join("\n"));
    const r = await runPython(script, [], {
      env: { SWITCHYARD_URL: node.url, SWITCHYARD_KEY: ALL_KEY },
      requireModules: [],
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(prices, [[{ symbol: "ACME", price: 12.5 }]]);
    assert.deepEqual(ticks, [[1], [2]]);
    // In order: joined orders:42, left ACME, then listed rooms and presence.
    assert.match(r.stdout, /'name': 'orders:42', 'size': 1/);
    assert.match(r.stdout, /\{'ACME': 0, 'orders:42': 1\}/);
  });

  test("the curl lines run and answer success", async () => {
    const lines = blocks(section(), "sh")
      .flatMap((b) => b.split("\n"))
      .filter((l) => l.startsWith("curl "));
    assert.ok(lines.length >= 8, `found ${lines.length} curl lines`);
    const c = await inAcme();
    const ticks = collect(c, "tick");
    for (const line of lines) {
      const { stdout } = await run("bash", ["-c", line], {
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          SWITCHYARD_URL: node.url,
          SWITCHYARD_KEY: ALL_KEY,
        },
        timeout: 10_000,
      });
      const body = JSON.parse(stdout) as Record<string, unknown>;
      assert.equal(body.error, undefined, `${line}\n→ ${stdout}`);
    }
    assert.deepEqual(ticks, [[1], [2]]);
  });

  test("the README's curl lines are docs/api.md's, one per operation, identical", () => {
    const curls = (text: string) =>
      blocks(text, "sh")
        .flatMap((b) => b.split("\n"))
        .filter((l) => l.startsWith("curl "));
    const readme = curls(readmeSection());
    assert.deepEqual(readme, curls(section()));
    for (const op of [
      "publish",
      "publish/batch",
      "join",
      "leave",
      "disconnect",
      "rooms",
      "sockets",
      "presence",
    ])
      assert.ok(
        readme.some((l) => l.includes(`/api/v1/${op}"`) || l.includes(`/api/v1/${op}?`)),
        `the README has a curl line for ${op}`,
      );
  });

  test("the README's Python publish example is docs/api.md's lines and reaches a client", async () => {
    const code = blocks(readmeSection(), "python");
    assert.equal(code.length, 1, "one Python block in the README's Standalone server section");
    const docLines = new Set(blocks(section(), "python").flatMap((b) => b.split("\n")));
    for (const line of (code[0] ?? "").split("\n"))
      assert.ok(docLines.has(line), `README line not in docs/api.md: ${line}`);
    const c = await inAcme();
    const prices = collect(c, "price");
    const script = join(tmp.path, "readme.py");
    writeFileSync(script, code[0] ?? "");
    const r = await runPython(script, [], {
      env: { SWITCHYARD_URL: node.url, SWITCHYARD_KEY: ALL_KEY },
      requireModules: [],
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(prices, [[{ symbol: "ACME", price: 12.5 }]]);
  });
});
