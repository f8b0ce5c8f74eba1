/**
 * The app the workers tests run as a real process tree: `runWorkers` with
 * `WORKERS` workers on `PORT`, linked by the default IPC bus (or by Redis at `REDIS_URL`:
 * several such processes are then "hosts" of one cluster). The primary reports on
 * stdout, one line per event (`fork <pid>`, `online <pid>`, `exit <pid> <code> <signal>
 * <replaced>`, `ready <pids>`), which the test reads.
 */
import { createServer } from "node:http";
import { RedisBus } from "@switchyard/redis";
import { createAdapter, runWorkers, Server } from "@switchyard/server";

const port = Number(process.env.PORT);
const handle = await runWorkers(
  {
    workers: Number(process.env.WORKERS ?? 3),
    shutdownTimeout: Number(process.env.SHUTDOWN_TIMEOUT ?? 5000),
    restartDelay: 50,
    maxRestarts: Number(process.env.MAX_RESTARTS ?? 10),
    // Several hosts: every worker is a node of the Redis cluster instead of the IPC bus.
    ...(process.env.REDIS_URL === undefined
      ? {}
      : { bus: () => new RedisBus({ url: process.env.REDIS_URL! }) }),
  },
  async ({ bus, secret }) => {
    if (process.env.CRASH_ON_START === "1") throw new Error("this worker cannot start");
    const http = createServer();
    const io = new Server(http, {
      adapter: createAdapter(bus, { heartbeatInterval: 300, requestsTimeout: 3000 }),
      // Polling requests and upgrades that round-robin hands to another worker are
      // forwarded to the session's owner.
      forwarding: { bus, secret, announceInterval: 300 },
    });
    io.on("who", (cb: (pid: number) => void) => cb(process.pid));
    const forwarded = (): number => io.engine.forwarder?.stats.requests ?? 0;
    io.on("forwarded", (cb: (n: number) => void) => cb(forwarded()));
    io.on("connection", (socket) => {
      socket.on("pid", (ack: (pid: number) => void) => ack(process.pid));
      socket.on("shout", (id: string) => io.emit("heard", id));
      socket.on("count", async (ack: (n: number) => void) => ack((await io.fetchSockets()).length));
      socket.on("forwarded", async (ack: (n: number) => void) => {
        const others = (await io.serverSideEmitWithAck("forwarded")) as number[];
        ack(others.reduce((sum, n) => sum + n, forwarded()));
      });
      socket.on("ask", async (ack: (pids: unknown[]) => void) =>
        ack(await io.serverSideEmitWithAck("who")),
      );
    });
    http.listen(port, "127.0.0.1");
    await io.engine.forwarder?.ready();
    if (process.env.SLOW_DRAIN !== "1") return io;
    // A drain that does not finish by itself (for the second-signal test).
    return {
      engine: io.engine,
      httpServer: io.httpServer,
      close: () => new Promise<void>(() => {}),
    };
  },
);
if (handle.isPrimary) {
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  handle.on("fork", (pid) => say(`fork ${pid}`));
  handle.on("online", (pid) => say(`online ${pid}`));
  handle.on("give-up", () => say("give-up"));
  process.on("SIGTERM", () => say("signal"));
  handle.on("exit", (pid, code, signal, replaced) =>
    say(`exit ${pid} ${code} ${signal} ${replaced}`),
  );
  await handle.ready;
  say(`ready ${handle.pids.join(",")}`);
}
