/**
 * Runs the load generator's self-test (selftest.ts, `npm run selftest` in bench/) as part
 * of the repository's `npm test`, so a change that breaks the hand-written protocol
 * clients fails CI instead of skewing the next benchmark run. The self-test imports only
 * Node built-ins and ./clients.ts, and runs through the root's tsx: it works on a fresh
 * clone where bench/node_modules is not installed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const SELFTEST = fileURLToPath(new URL("./selftest.ts", import.meta.url));
const TIMEOUT_MS = 60_000;

it("the load generator's protocol clients pass their self-test", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", SELFTEST], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.once("error", reject);
        child.once("exit", (c, s) => resolve([c, s]));
      },
    );
    assert.equal(signal, null, `killed after ${TIMEOUT_MS} ms:\n${output}`);
    assert.equal(code, 0, output);
    assert.match(output, /load generator self-test passed/);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
