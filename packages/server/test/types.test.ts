/**
 * Runs the compile-time tests in ./types with tsc: typed event maps must accept what
 * socket.io's accept and reject (via `@ts-expect-error`) what must not compile.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { test } from "node:test";

test("typed events: the type tests compile, and every @ts-expect-error is an error", () => {
  const require = createRequire(import.meta.url);
  const tsc = require.resolve("typescript/bin/tsc");
  const project = new URL("./types/tsconfig.json", import.meta.url).pathname;
  const r = spawnSync(process.execPath, [tsc, "-p", project], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
