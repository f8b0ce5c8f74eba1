/**
 * `npm start`: runs the demo until SIGINT/SIGTERM.
 *
 * Environment: PORT (default 3000; 0 picks a free port), HOST (default 127.0.0.1),
 * TICK_INTERVAL_MS (default 1000).
 */
import { createMarketApp } from "./app.js";

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!(Number.isInteger(value) && value >= min && value <= max)) {
    console.error(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
}

const port = intFromEnv("PORT", 3000, 0, 65535);
const host = process.env.HOST || "127.0.0.1";
const tickIntervalMs = intFromEnv("TICK_INTERVAL_MS", 1000, 10, 3_600_000);

const app = await createMarketApp({ port, host, tickIntervalMs }).catch((err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") console.error(`port ${port} on ${host} is in use; try PORT=0`);
  else console.error(err);
  process.exit(1);
});

console.log(`Switchyard market ticker on ${app.url}`);

let shuttingDown = false;
function shutdown(signal: NodeJS.Signals): void {
  if (shuttingDown) {
    console.error(`${signal} again: exiting now`);
    process.exit(1);
  }
  shuttingDown = true;
  console.log(`${signal}: shutting down`);
  // Not cleared on success: if anything still holds the loop open 5 s later, exit anyway.
  setTimeout(() => {
    console.error("shutdown took longer than 5 s: exiting");
    process.exit(1);
  }, 5000).unref();
  app.close().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
