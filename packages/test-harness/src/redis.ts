import { connect } from "node:net";
import { freePort } from "./ports.js";
import { newTag, startProcess } from "./process.js";
import { BINARIES, requireBinary } from "./require-binary.js";
import { type RestartableControl, retryOnPortClash, Service } from "./service.js";
import { makeTempDir } from "./tmp.js";

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /** Port to listen on. @default a free port (retried on a clash) */
  readonly port?: number;
  /** Extra `redis-server` arguments, e.g. `["--maxmemory", "10mb"]`. @default [] */
  readonly extraArgs?: readonly string[];
  /** @default 15000 */
  readonly readyTimeoutMs?: number;
}

/** A running redis-server bound to 127.0.0.1, with its own temp dir. */
export interface RedisServer extends RestartableControl {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
}

/** A decoded RESP reply. Error replies nested in arrays appear as `Error` values. */
export type RedisReply = string | number | null | Error | RedisReply[];

/** Options of {@link redisCommand}. */
export interface RedisCommandOptions {
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** @default 2000 */
  readonly timeoutMs?: number;
}

interface Parsed {
  readonly value: RedisReply;
  readonly next: number;
}

// Returns undefined while the reply is incomplete.
function parseReply(buf: Buffer, start: number): Parsed | undefined {
  const eol = buf.indexOf("\r\n", start);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[start]!);
  const line = buf.toString("utf8", start + 1, eol);
  const after = eol + 2;
  switch (type) {
    case "+":
      return { value: line, next: after };
    case "-":
      return { value: new Error(line), next: after };
    case ":":
      return { value: Number(line), next: after };
    case "$": {
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString("utf8", after, after + len), next: after + len + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RedisReply[] = [];
      let pos = after;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, pos);
        if (item === undefined) return undefined;
        items.push(item.value);
        pos = item.next;
      }
      return { value: items, next: pos };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"));
  }
  return Buffer.concat(parts);
}

/**
 * Sends one command over a fresh TCP connection and resolves with the decoded reply
 * (rejects on an error reply). A tiny RESP client for tests, e.g.
 * `redisCommand(redis.port, ["PUBLISH", channel, payload])`.
 */
export function redisCommand(
  port: number,
  args: readonly (string | Buffer)[],
  options: RedisCommandOptions = {},
): Promise<RedisReply> {
  const host = options.host ?? "127.0.0.1";
  const timeoutMs = options.timeoutMs ?? 2000;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host });
    let buf = Buffer.alloc(0);
    const finish = (error: Error | undefined, value?: RedisReply): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(value ?? null);
    };
    const timer = setTimeout(() => {
      finish(new Error(`redis ${host}:${port}: no reply to ${String(args[0])} in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (error) => finish(error));
    socket.once("connect", () => socket.write(encodeCommand(args)));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let parsed: Parsed | undefined;
      try {
        parsed = parseReply(buf, 0);
      } catch (error) {
        finish(error as Error);
        return;
      }
      if (parsed === undefined) return;
      if (parsed.value instanceof Error) finish(parsed.value);
      else finish(undefined, parsed.value);
    });
    socket.once("end", () => finish(new Error(`redis ${host}:${port}: connection closed`)));
  });
}

/** Resolves true when redis at `host:port` answers `PING` with `+PONG`. */
export async function redisPing(port: number, host = "127.0.0.1"): Promise<boolean> {
  return (await redisCommand(port, ["PING"], { host, timeoutMs: 1000 })) === "PONG";
}

/**
 * Starts `redis-server` on 127.0.0.1 with no persistence, in its own temp dir; resolves
 * once it answers PING. Throws {@link MissingDependencyError} if redis is not installed.
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const bin = requireBinary(BINARIES.redis);
  return retryOnPortClash(options.port !== undefined, async () => {
    const port = options.port ?? (await freePort());
    const dir = makeTempDir("redis");
    const tag = newTag("redis");
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir.path,
      "--daemonize",
      "no",
      "--logfile",
      "",
      ...(options.extraArgs ?? []),
    ];
    const service = await Service.start(dir, tag, () =>
      startProcess({
        name: `redis-server:${port}`,
        command: bin,
        args,
        cwd: dir.path,
        instanceDir: dir.path,
        tag,
        ready: () => redisPing(port),
        readyTimeoutMs: options.readyTimeoutMs ?? 15000,
      }),
    );
    return service.handle({ host: "127.0.0.1", port, url: `redis://127.0.0.1:${port}` });
  });
}
