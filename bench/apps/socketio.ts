import { Server } from "socket.io";
import { type ServerClass, startApp } from "./app.js";

// Cluster scenario: BENCH_BUS=redis + BENCH_BUS_URL → @socket.io/redis-adapter (ioredis).
let opts: object | undefined;
if (process.env.BENCH_BUS === "redis") {
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { Redis } = await import("ioredis");
  const pub = new Redis(process.env.BENCH_BUS_URL ?? "");
  const sub = pub.duplicate();
  opts = { adapter: createAdapter(pub, sub) };
} else if (process.env.BENCH_BUS !== undefined) {
  throw new Error(`socket.io app: no adapter for BENCH_BUS=${process.env.BENCH_BUS}`);
}

startApp(Server as unknown as ServerClass, "socketio", opts);
