/**
 * Logging: pino, one JSON object per line by default; on a TTY (format "auto") a short
 * human-readable line per record, formatted here (no pino-pretty dependency). And the
 * once-per-interval gate every area uses for errors that can repeat under attack.
 */
import { Writable } from "node:stream";
import { type Logger, pino } from "pino";

/** Options of {@link createLogger}. */
export interface LogOptions {
  /** @default "info" */
  level?: string;
  /** "json", "pretty", or "auto" (pretty when `stream` is a TTY). @default "auto" */
  format?: "auto" | "json" | "pretty";
  /** Where lines go. @default process.stdout */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

const LEVELS: Readonly<Record<number, string>> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const COLORS: Readonly<Record<number, string>> = {
  10: "\x1b[90m",
  20: "\x1b[36m",
  30: "\x1b[32m",
  40: "\x1b[33m",
  50: "\x1b[31m",
  60: "\x1b[35m",
};
const OMIT = new Set(["level", "time", "msg", "pid", "hostname"]);

/** One pino JSON line as `HH:MM:SS.mmm LEVEL msg key=value …`. */
export function formatPretty(line: string, color: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof rec.level === "number" ? rec.level : 30;
  const time = typeof rec.time === "number" ? new Date(rec.time).toISOString().slice(11, 23) : "";
  const name = (LEVELS[level] ?? String(level)).padEnd(5);
  const tag = color ? `${COLORS[level] ?? ""}${name}\x1b[0m` : name;
  let out = `${time} ${tag} ${typeof rec.msg === "string" ? rec.msg : ""}`;
  for (const [k, v] of Object.entries(rec)) {
    if (OMIT.has(k)) continue;
    if (k === "err" && typeof v === "object" && v !== null) {
      const e = v as { message?: unknown; stack?: unknown };
      out += ` err=${JSON.stringify(e.message)}`;
      if (typeof e.stack === "string" && level >= 50) out += `\n${e.stack}`;
      continue;
    }
    out += ` ${k}=${typeof v === "string" && !/\s/.test(v) ? v : JSON.stringify(v)}`;
  }
  return `${out}\n`;
}

/** A stream that turns pino's JSON lines into {@link formatPretty} lines. */
function prettyStream(dest: NodeJS.WritableStream, color: boolean): Writable {
  let pending = "";
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      pending += chunk.toString();
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        dest.write(formatPretty(pending.slice(0, nl), color));
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
      }
      cb();
    },
  });
}

/** The process logger. */
export function createLogger(opts: LogOptions = {}): Logger {
  const stream = opts.stream ?? process.stdout;
  const format = opts.format ?? "auto";
  const pretty = format === "pretty" || (format === "auto" && stream.isTTY === true);
  const dest = pretty ? prettyStream(stream, stream.isTTY === true) : stream;
  return pino(
    {
      level: opts.level ?? "info",
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    dest,
  );
}

/** A once-per-interval gate, see {@link createLimiter}. */
export interface Limiter {
  /** True the first time `key` is seen in the current interval (log it), false after (count only). */
  (key: string): boolean;
  /** Occurrences of `key` not logged since its last logged one. */
  suppressed(key: string): number;
  /** Forgets every key (tests, shutdown). */
  reset(): void;
}

/**
 * "One line per error class per interval": `limiter("auth:expired")` is true at most once
 * per `intervalMs` per key; the occurrences in between are counted, and the next logged
 * line can carry that count (`suppressed(key)` just before calling the gate). Keys are
 * error classes, not clients, so the map stays small; it is still capped at `maxKeys`.
 */
export function createLimiter(intervalMs: number, maxKeys = 10_000, now = Date.now): Limiter {
  const seen = new Map<string, { at: number; suppressed: number }>();
  const gate = ((key: string): boolean => {
    const t = now();
    const entry = seen.get(key);
    if (entry !== undefined && t - entry.at < intervalMs) {
      entry.suppressed++;
      return false;
    }
    if (entry === undefined && seen.size >= maxKeys) {
      for (const [k, e] of seen) if (t - e.at >= intervalMs) seen.delete(k);
      if (seen.size >= maxKeys) return false;
    }
    seen.set(key, { at: t, suppressed: 0 });
    return true;
  }) as Limiter;
  gate.suppressed = (key) => seen.get(key)?.suppressed ?? 0;
  gate.reset = () => seen.clear();
  return gate;
}
