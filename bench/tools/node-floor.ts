/**
 * What Node itself costs per idle TCP connection, measured as the bench measures idle
 * memory (a server process, full GC before each reading, RSS and heap after N clients
 * against the reading before any client): the floor under any Node server's figure.
 *
 *   node --import tsx tools/node-floor.ts [net|upgrade|upgrade-keep] [--n=10000]
 *
 * - `net`: a `net.Server`; each socket gets a `data` listener and is held in a Set.
 * - `upgrade`: a `node:http` server; each client sends a WebSocket-style upgrade request,
 *   the server answers 101 and keeps the socket (with a `data` listener), not the request.
 * - `upgrade-keep`: the same, but the upgrade request (`IncomingMessage`) is kept too, as
 *   engine.io keeps it for `socket.request`.
 *
 * The clients are plain TCP sockets in this process (loopback).
 */
import { fork } from "node:child_process";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { connect, createServer as createNetServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

type Mode = "net" | "upgrade" | "upgrade-keep";
const KiB = 1024;
const UPGRADE =
  "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

function noop(): void {}

async function fullGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run with --expose-gc");
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  await new Promise((r) => setTimeout(r, 20));
  gc();
}

/** The server process: listens, answers `stats` requests over IPC. */
function child(mode: Mode): void {
  const held = new Set<Socket>();
  const requests = new Set<IncomingMessage>();
  const hold = (s: Socket) => {
    s.on("data", noop);
    s.on("error", noop);
    s.on("close", () => held.delete(s));
    held.add(s);
  };
  const server =
    mode === "net"
      ? createNetServer(hold)
      : createHttpServer().on("upgrade", (req: IncomingMessage, socket: Socket) => {
          socket.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
          );
          hold(socket);
          if (mode === "upgrade-keep") requests.add(req);
        });
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.send?.({ port: typeof addr === "object" && addr !== null ? addr.port : 0 });
  });
  process.on("message", async (m: { cmd: string }) => {
    if (m.cmd === "stats") {
      await fullGc();
      process.send?.({ mem: process.memoryUsage(), held: held.size });
    }
  });
  process.on("disconnect", () => process.exit(0));
}

async function main(): Promise<void> {
  const mode = (process.argv.find((a) => ["net", "upgrade", "upgrade-keep"].includes(a)) ??
    "net") as Mode;
  const childArg = process.argv.find((a) => a.startsWith("--child="));
  if (childArg !== undefined) {
    child(childArg.slice(8) as Mode);
    return;
  }
  const n = Number(process.argv.find((a) => a.startsWith("--n="))?.slice(4) ?? 10_000);
  const proc = fork(fileURLToPath(import.meta.url), [`--child=${mode}`], {
    execArgv: ["--expose-gc", "--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("server did not answer in 60 s")), 60_000);
      proc.once("message", (m) => {
        clearTimeout(t);
        resolve(m as T);
      });
    });
  const stats = async () => {
    const r = next<{ mem: NodeJS.MemoryUsage; held: number }>();
    proc.send({ cmd: "stats" });
    return r;
  };
  const clients: Socket[] = [];
  try {
    const { port } = await next<{ port: number }>();
    const base = await stats();
    const one = () =>
      new Promise<void>((resolve, reject) => {
        const s = connect(port, "127.0.0.1");
        clients.push(s);
        s.once("error", reject);
        if (mode === "net") s.once("connect", () => resolve());
        else {
          s.once("connect", () => s.write(UPGRADE));
          s.once("data", () => resolve());
        }
      });
    for (let i = 0; i < n; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, n - i) }, one));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const after = await stats();
    if (after.held !== n) throw new Error(`server holds ${after.held} of ${n}`);
    const per = (k: "rss" | "heapUsed" | "heapTotal") => (after.mem[k] - base.mem[k]) / KiB / n;
    console.log(
      `node-floor ${mode}, ${n} idle connections, ${process.version}: RSS ${per("rss").toFixed(2)} KiB, heap after GC ${per("heapUsed").toFixed(2)} KiB per connection (heap committed ${per("heapTotal").toFixed(2)} KiB)`,
    );
  } finally {
    for (const s of clients) s.destroy();
    proc.kill();
  }
}

main().then(
  () => {
    // The server process lives until its parent goes (see `child`).
    if (!process.argv.some((a) => a.startsWith("--child="))) process.exit(0);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
