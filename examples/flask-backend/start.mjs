#!/usr/bin/env node
// One command for the example: starts `switchyard serve` (from this repository's sources)
// and the Flask backend (Debian's python3 with python3-flask), with a fresh JWT secret and
// API key shared between them. Ctrl-C (or SIGTERM) stops both; if one exits, so does the other.
//
//   node examples/flask-backend/start.mjs      # SWITCHYARD_PORT=3000 FLASK_PORT=5000 by default
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../..");
const switchyardPort = process.env.SWITCHYARD_PORT ?? "3000";
const flaskPort = process.env.FLASK_PORT ?? "5000";
const jwtSecret = randomBytes(32).toString("hex");
const apiKey = randomBytes(24).toString("hex");

const dir = mkdtempSync(join(tmpdir(), "switchyard-flask-backend-"));
const config = join(dir, "switchyard.json");
writeFileSync(
  config,
  JSON.stringify({
    auth: { jwt: { secret: jwtSecret } },
    clientEvents: {
      webhook: { url: `http://127.0.0.1:${flaskPort}/events`, timeoutMs: 5000 },
      events: ["join", "message"],
    },
    api: { keys: [{ name: "flask", key: apiKey, scopes: ["publish", "manage", "read"] }] },
  }),
);

const children = [
  spawn(
    process.execPath,
    [
      "--conditions=switchyard-source",
      "--import",
      "tsx",
      join(root, "packages/cli/src/main.ts"),
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      switchyardPort,
      "--config",
      config,
    ],
    { cwd: root, stdio: "inherit" },
  ),
  spawn("/usr/bin/python3", ["-u", join(here, "app.py")], {
    cwd: here,
    stdio: "inherit",
    env: {
      ...process.env,
      FLASK_PORT: flaskPort,
      SWITCHYARD_URL: `http://127.0.0.1:${switchyardPort}`,
      SWITCHYARD_API_KEY: apiKey,
      JWT_SECRET: jwtSecret,
    },
  }),
];

let stopping = false;
function stop(code) {
  if (stopping) return;
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }, 5000);
  force.unref();
  Promise.all(
    children.map((c) =>
      c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once("exit", r)),
    ),
  ).then(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(code);
  });
}
for (const c of children) c.once("exit", () => stop(stopping ? 0 : 1));
process.once("SIGINT", () => stop(0));
process.once("SIGTERM", () => stop(0));
console.log(
  `switchyard on http://127.0.0.1:${switchyardPort}, Flask on http://127.0.0.1:${flaskPort} (POST /login, POST /notify/<user>)`,
);
