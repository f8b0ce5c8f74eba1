/**
 * `npm start --workspace=@switchyard/example-flask-migration`: the mixed cluster of the
 * migration on this machine — Redis (REDIS_URL, or a private one started here), the Flask
 * node (app.py, Debian's /usr/bin/python3), the Switchyard node replacing it and the
 * background publisher, ticking once a second. Ctrl-C stops everything.
 */
import { fileURLToPath } from "node:url";
import { startPython, startRedis } from "@switchyard/test-harness";
import { startSwitchyardNode } from "./server.js";

const here = (f: string) => fileURLToPath(new URL(`../${f}`, import.meta.url));
const MODULES = ["flask_socketio", "redis"];

const redis = process.env.REDIS_URL === undefined ? await startRedis() : undefined;
const redisUrl = process.env.REDIS_URL ?? (redis?.url as string);
const flaskPort = Number(process.env.FLASK_PORT ?? 5000);
const flask = await startPython(here("app.py"), [String(flaskPort), redisUrl], {
  requireModules: MODULES,
});
await flask.waitForOutput("READY", { timeoutMs: 15000 });
const node = await startSwitchyardNode(redisUrl, Number(process.env.PORT ?? 3000));
const publisher = await startPython(here("publisher.py"), [redisUrl, "0", "1"], {
  requireModules: MODULES,
});
console.log(`redis:      ${redisUrl}`);
console.log(`flask node: http://127.0.0.1:${flaskPort} (long-polling)`);
console.log(`switchyard: ${node.url}`);
console.log('clients on either node receive "tick" once a second from publisher.py');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await publisher.stop().catch(() => publisher.kill());
  await node.close();
  await flask.stop().catch(() => flask.kill());
  await redis?.stop();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
