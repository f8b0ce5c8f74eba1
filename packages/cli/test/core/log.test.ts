// Logging: pino JSON lines, the pretty formatter for TTYs, and the once-per-interval gate.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { createLimiter, createLogger, formatPretty } from "../../src/index.ts";

function sink(isTTY: boolean): { stream: Writable & { isTTY?: boolean }; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString()
          .split("\n")
          .filter((l) => l !== ""),
      );
      cb();
    },
  }) as Writable & { isTTY?: boolean };
  stream.isTTY = isTTY;
  return { stream, lines };
}

test("JSON by default when not a TTY; pretty on a TTY in auto mode", () => {
  const json = sink(false);
  createLogger({ stream: json.stream }).info({ port: 1 }, "listening");
  const rec = JSON.parse(json.lines[0] as string) as Record<string, unknown>;
  assert.equal(rec.msg, "listening");
  assert.equal(rec.port, 1);
  assert.equal(rec.level, 30);

  const tty = sink(true);
  createLogger({ stream: tty.stream }).warn({ reason: "slow consumer" }, "closed");
  assert.match(
    tty.lines[0] as string,
    /^\d\d:\d\d:\d\d\.\d{3} .*WARN.* closed reason="slow consumer"$/,
  );
  assert.throws(() => JSON.parse(tty.lines[0] as string));

  const forced = sink(false);
  createLogger({ stream: forced.stream, format: "pretty", level: "debug" }).debug("x");
  assert.match(forced.lines[0] as string, /DEBUG x$/);
});

test("formatPretty keeps a non-JSON line as is and shows an error's message", () => {
  assert.equal(formatPretty("plain", false), "plain");
  const line = formatPretty(
    JSON.stringify({ level: 40, time: 0, msg: "bus down", err: { message: "ECONNREFUSED" } }),
    false,
  );
  assert.equal(line, '00:00:00.000 WARN  bus down err="ECONNREFUSED"\n');
});

test("limiter: once per key per interval, the rest counted", () => {
  let now = 1000;
  const gate = createLimiter(10_000, 100, () => now);
  assert.equal(gate("auth:expired"), true);
  for (let i = 0; i < 50; i++) assert.equal(gate("auth:expired"), false);
  assert.equal(gate("auth:bad-signature"), true, "another class logs at once");
  assert.equal(gate.suppressed("auth:expired"), 50);
  now += 10_000;
  assert.equal(gate("auth:expired"), true, "the next interval logs again");
  assert.equal(gate.suppressed("auth:expired"), 0);
});

test("limiter: bounded number of keys", () => {
  let now = 0;
  const gate = createLimiter(1000, 3, () => now);
  assert.equal(gate("a"), true);
  assert.equal(gate("b"), true);
  assert.equal(gate("c"), true);
  assert.equal(gate("d"), false, "full: a new key is not logged");
  now += 1000;
  assert.equal(gate("d"), true, "expired keys make room");
});
