/**
 * Helpers shared by the bus packages' tests (@switchyard/redis, @switchyard/amqp):
 * message collectors, an unhandled-rejection trap, a child-process fixture.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { waitFor } from "./wait.js";

/** Records every (channel, payload) a handler receives. */
export class Inbox {
  readonly messages: Array<{ channel: string; payload: Buffer }> = [];
  readonly handler = (channel: string, payload: Buffer): void => {
    this.messages.push({ channel, payload });
  };

  texts(channel?: string): string[] {
    return this.messages
      .filter((m) => channel === undefined || m.channel === channel)
      .map((m) => m.payload.toString());
  }

  async waitForCount(n: number, timeoutMs = 5000): Promise<void> {
    await waitFor(
      () => this.messages.length >= n,
      timeoutMs,
      () => `${n} messages (have ${this.messages.length})`,
    );
  }
}

/**
 * Collects unhandled rejections and uncaught exceptions for the duration of a test file;
 * `assertNone()` fails if any happened (a bus must never produce them).
 */
export function trapUnhandled(): { assertNone(): void; dispose(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  process.on("unhandledRejection", onRejection);
  return {
    assertNone() {
      assert.deepEqual(seen.map(String), [], "no unhandled rejection");
    },
    dispose() {
      process.off("unhandledRejection", onRejection);
    },
  };
}

/** Runs a TypeScript fixture in a child process; resolves with its exit code and output. */
export function runFixture(
  file: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--conditions=switchyard-source", "--import", "tsx", file, ...args],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: Date.now() - started });
    });
  });
}
