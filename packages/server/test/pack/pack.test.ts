/**
 * What users install: `npm pack` of the published packages, from a copy of their
 * sources without any build (so `prepack` must build, and the repo's own `dist`, if any,
 * plays no part and none is left in the repo), installed from the tarballs into a project
 * outside the monorepo (no workspace links) next to `socket.io-client` from the registry.
 * Plain `node` then runs an ESM app and a CommonJS app there (no loader, no `source`
 * condition), and `tsc` typechecks an ESM and a CommonJS TypeScript file against the
 * installed types.
 */
import assert from "node:assert/strict";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  freePort,
  type ManagedProcess,
  type RedisServer,
  startProcess,
  startRedis,
  waitFor,
} from "@switchyard/test-harness";

const REPO = new URL("../../../../", import.meta.url).pathname.replace(/\/$/, "");
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
/** In dependency order: each `prepack` finds its references built by the previous ones. */
const PUBLISHED = ["protocol", "server", "redis", "amqp", "flask-bridge", "cli"] as const;
type Published = (typeof PUBLISHED)[number];

const work = mkdtempSync(join(tmpdir(), "switchyard-pack-"));
const tree = join(work, "tree");
const tarballs = join(work, "tarballs");
const app = join(work, "app");
const running = new Set<ManagedProcess>();

/**
 * The environment of child `npm`s: without the `npm_*` variables of an outer `npm test`
 * (its prefix, workspace and script settings must not leak into another project).
 */
function childEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) {
    if (/^npm_/i.test(key) || key === "INIT_CWD") env[key] = undefined;
  }
  return env;
}

/** Runs a command to completion within `timeoutMs`; rejects with its output on failure. */
async function run(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs: number,
  env: Record<string, string | undefined> = {},
): Promise<string> {
  const child = await startProcess({
    command,
    args,
    cwd,
    env: { ...childEnv(), ...env },
    outputLimit: 1 << 20,
  });
  running.add(child);
  try {
    const exit = await child.waitForExit(timeoutMs);
    assert.equal(
      exit.code,
      0,
      `${command} ${args.join(" ")} in ${cwd} failed (${JSON.stringify(exit)}):\n${child.output()}`,
    );
    return child.stdout();
  } finally {
    await child.kill().catch(() => undefined);
    running.delete(child);
  }
}

interface PackResult {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

/** `npm pack --json` prints a JSON array, possibly after lifecycle scripts' output. */
function parsePack(stdout: string): PackResult {
  const start = stdout.indexOf("[\n");
  assert.ok(start >= 0, `npm pack --json printed no JSON:\n${stdout}`);
  const [result] = JSON.parse(stdout.slice(start)) as PackResult[];
  assert.ok(result);
  return result;
}

/**
 * A copy of the published packages' sources as a fresh clone has them (no dist, no
 * tests, no build info), whose node_modules links to the repo's installed dependencies
 * except @switchyard/*, which link to the copies.
 */
function copySources(): void {
  for (const name of PUBLISHED) {
    const from = join(REPO, "packages", name);
    cpSync(from, join(tree, "packages", name), {
      recursive: true,
      filter: (path) => {
        const rel = relative(from, path).split("/")[0];
        return (
          !["node_modules", "dist", "test"].includes(rel ?? "") && !path.endsWith(".tsbuildinfo")
        );
      },
    });
  }
  cpSync(join(REPO, "tsconfig.base.json"), join(tree, "tsconfig.base.json"));
  const modules = join(tree, "node_modules");
  mkdirSync(join(modules, "@switchyard"), { recursive: true });
  for (const entry of readdirSync(join(REPO, "node_modules"))) {
    if (entry !== "@switchyard")
      symlinkSync(join(REPO, "node_modules", entry), join(modules, entry));
  }
  for (const name of PUBLISHED) {
    symlinkSync(join(tree, "packages", name), join(modules, "@switchyard", name));
  }
}

const packed = new Map<Published, PackResult>();
/** Set by the install test: the later tests fail at once, and say why, when it did not pass. */
let installed = false;
let redis: RedisServer | undefined;

before(async () => {
  mkdirSync(tarballs, { recursive: true });
  mkdirSync(app, { recursive: true });
  copySources();
  redis = await startRedis();
});

after(async () => {
  for (const child of running) await child.kill().catch(() => undefined);
  await redis?.stop();
  if (process.env.KEEP_PACK === undefined) rmSync(work, { recursive: true, force: true });
});

describe("published packages, packed and installed like a user does", { timeout: 150_000 }, () => {
  test("npm pack builds each package from sources without dist and ships only what is needed", async () => {
    for (const name of PUBLISHED) {
      const dir = join(tree, "packages", name);
      assert.ok(!readdirSync(dir).includes("dist"), `${name}: no dist before packing`);
      const stdout = await run(
        "npm",
        ["pack", "--json", "--pack-destination", tarballs],
        dir,
        60_000,
      );
      packed.set(name, parsePack(stdout));
    }
    for (const [name, result] of packed) {
      const files = result.files.map((f) => f.path);
      const needed = ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"];
      assert.deepEqual(
        needed.filter((f) => !files.includes(f)),
        [],
        `${name} tarball lacks files`,
      );
      const stray = files.filter(
        (f) =>
          !/^(package\.json|README\.md|LICENSE)$/.test(f) &&
          !/^(dist|src)\//.test(f) &&
          !/^cjs\/index\.d?\.?c[jt]s$/.test(f) &&
          !(name === "cli" && f === "bin/switchyard.mjs"),
      );
      assert.deepEqual(stray, [], `${name} tarball holds only dist, src, README, LICENSE`);
      assert.ok(!files.some((f) => f.endsWith(".tsbuildinfo") || /\.test\./.test(f)));
      const manifest = JSON.parse(
        readFileSync(join(tree, "packages", name, "package.json"), "utf8"),
      ) as { engines?: { node?: string } };
      assert.equal(manifest.engines?.node, "^20.19.0 || >=22.12.0", `${name} engines`);
    }
    const server = packed.get("server")?.files.map((f) => f.path) ?? [];
    assert.ok(server.includes("cjs/index.cjs") && server.includes("cjs/index.d.cts"));
  });

  test("the tarballs install outside the monorepo, peers satisfied, one copy of the server", async () => {
    assert.equal(packed.size, PUBLISHED.length, "packed by the previous test");
    assert.ok(!relative(REPO, app).match(/^[^.]/), "the app lives outside the repo");
    const tgz = PUBLISHED.map((name) => join(tarballs, packed.get(name)?.filename ?? ""));
    const peers = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
      devDependencies: Record<string, string>;
    };
    await run("npm", ["init", "-y"], app, 30_000);
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        ...tgz,
        `socket.io-client@${peers.devDependencies["socket.io-client"]}`,
        `@types/node@${peers.devDependencies["@types/node"]}`,
      ],
      app,
      120_000,
    );
    const lock = JSON.parse(readFileSync(join(app, "package-lock.json"), "utf8")) as {
      packages: Record<string, { resolved?: string; version?: string }>;
    };
    for (const name of PUBLISHED) {
      const entry = lock.packages[`node_modules/@switchyard/${name}`];
      assert.ok(entry?.resolved?.startsWith("file:"), `@switchyard/${name} from its tarball`);
    }
    const nested = Object.keys(lock.packages).filter(
      (path) =>
        /node_modules\/.*node_modules\/@switchyard\//.test(path) ||
        path.endsWith("node_modules/switchyard"),
    );
    assert.deepEqual(nested, [], "no second @switchyard copy, no unscoped `switchyard`");
    installed = true;
  });

  test("an ESM app from the tarballs: polling and WebSocket acks, a Redis cluster broadcast, the client bundle", async () => {
    assert.ok(installed, "the tarballs were installed (see the tests above)");
    assert.ok(redis);
    cpSync(join(FIXTURES, "app-esm.mjs"), join(app, "app-esm.mjs"));
    const stdout = await run(process.execPath, ["app-esm.mjs"], app, 30_000, {
      REDIS_URL: redis.url,
    });
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Record<string, unknown>;
    assert.deepEqual(result, {
      node: process.version,
      transports: ["polling", "websocket"],
      broadcasts: 2,
      bundle: 200,
    });
  });

  test("a CommonJS app: require(...)(httpServer) and require(...).Server as with socket.io", async () => {
    assert.ok(installed, "the tarballs were installed (see the tests above)");
    cpSync(join(FIXTURES, "app-cjs.cjs"), join(app, "app-cjs.cjs"));
    const stdout = await run(process.execPath, ["app-cjs.cjs"], app, 30_000);
    const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Record<string, unknown>;
    assert.deepEqual(result, { node: process.version, callable: true, echo: "hi" });
  });

  test("the installed `switchyard` bin: --version, then serve on its own and a real client connects", async () => {
    assert.ok(installed, "the tarballs were installed (see the tests above)");
    const bin = join(app, "node_modules", ".bin", "switchyard");
    const version = await run(bin, ["--version"], app, 30_000);
    assert.match(version, /0\.1\.0/);
    const port = await freePort();
    const server = await startProcess({
      command: bin,
      args: ["serve", "--host", "127.0.0.1", "--port", String(port)],
      cwd: app,
      env: childEnv(),
      outputLimit: 1 << 20,
    });
    running.add(server);
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200,
        20_000,
        () => `switchyard serve answering /healthz:\n${server.output()}`,
      );
      cpSync(join(FIXTURES, "cli-client.mjs"), join(app, "cli-client.mjs"));
      const stdout = await run(process.execPath, ["cli-client.mjs", url], app, 30_000);
      const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Record<string, unknown>;
      assert.deepEqual(result, { health: 200, ready: 200, connected: true });
    } finally {
      await server.kill().catch(() => undefined);
      running.delete(server);
    }
  });

  test("TypeScript resolves the installed types for import and require (strict, no skipLibCheck)", async () => {
    assert.ok(installed, "the tarballs were installed (see the tests above)");
    for (const file of ["check.mts", "check.cts", "untyped.d.ts"])
      cpSync(join(FIXTURES, file), join(app, file));
    const tsconfig = {
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ["node"],
      },
      files: ["check.mts", "check.cts", "untyped.d.ts"],
    };
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig));
    await run(
      process.execPath,
      [join(REPO, "node_modules/typescript/bin/tsc"), "-p", "."],
      app,
      60_000,
    );
  });
});
