/**
 * Drives `clients/sio_client.py` (a scripted python-socketio client) from the tests: the
 * script gets a JSON spec, prints one JSON object per line of what happened, and exits.
 *
 * The child is spawned here rather than with the harness's `startPython`: its
 * `waitForExit` settles on the child's "exit" event, which can come before the last
 * stdout chunk has been read, and these tests assert on that tail. We wait for "close"
 * (stdio drained) instead, and parse lines as they arrive so waits are event-driven.
 * Each child is in its own process group, killed by {@link stopAllClients} and, failing
 * that, at exit of the test process.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";
import { PYTHON, registerExitCleanup, requirePythonModules } from "@switchyard/test-harness";

export const CLIENT_SCRIPT = fileURLToPath(new URL("./clients/sio_client.py", import.meta.url));

export type Transport = "websocket" | "polling";
export const TRANSPORTS: readonly Transport[] = ["websocket", "polling"];

/**
 * Values sent to / received from the script. Bytes travel as `{ $bytes: hex }`; in
 * arguments `{ $bytes: hex, times: n }` and `{ $repeat: text, times: n }` build large values.
 */
export type Wire = null | boolean | number | string | Wire[] | { [key: string]: Wire };

export type Step =
  | { op: "connect" }
  | { op: "call"; name: string; args?: Wire[]; ns?: string }
  | { op: "emit"; name: string; args?: Wire[]; ns?: string }
  | { op: "wait"; name: string; ns?: string }
  | { op: "wait_disconnect" }
  /** Sends the namespace DISCONNECTs, waits until they are written, then `sio.disconnect()`. */
  | { op: "disconnect" }
  /** `sio.disconnect()` as the library does it (racy in python-engineio 4.3, see the script). */
  | { op: "disconnect_raw" };

export interface ClientSpec {
  url: string;
  transports: Transport[];
  auth?: Record<string, Wire>;
  /** Extra HTTP headers of the connection requests. */
  headers?: Record<string, string>;
  namespaces?: string[];
  /** How long `connect()` waits for the namespaces; a refusal always takes this long. */
  connect_wait_s?: number;
  /** python-engineio's `Payload.max_decode_packets` (its default, 16, is a known limit). */
  max_decode_packets?: number;
  /** Events to record, per namespace. */
  listen?: Record<string, string[]>;
  /** Events to acknowledge with a fixed value, per namespace. */
  replies?: Record<string, Record<string, Wire>>;
  steps: Step[];
}

/** One line printed by the script. */
export interface ClientLine {
  event: string;
  [field: string]: unknown;
}

/** `{ $bytes: hex }`, the script's JSON form of Python `bytes`. */
export function bytesWire(buf: Uint8Array): Wire {
  return { $bytes: Buffer.from(buf).toString("hex") };
}

/** Bound on a whole script run; the script's own watchdog fires a little earlier. */
const RUN_TIMEOUT_MS = 30000;
const live = new Set<PyClient>();

/** A running `sio_client.py`. */
export class PyClient {
  private readonly parsed: ClientLine[] = [];
  private readonly events = new EventEmitter();
  private text = "";
  private closed: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly unregister: () => void;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    readonly spec: ClientSpec,
    private readonly child: ChildProcess,
  ) {
    this.events.setMaxListeners(0);
    let partial = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      this.text += chunk;
      partial += chunk;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) this.onLine(line);
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.text += chunk;
    });
    child.on("error", () => undefined);
    this.done = new Promise((resolve) => {
      child.once("close", (code, signal) => {
        if (partial !== "") this.onLine(partial);
        this.closed = { code, signal };
        clearTimeout(this.timer);
        this.unregister();
        live.delete(this);
        this.events.emit("close");
        resolve(this.closed);
      });
    });
    this.timer = setTimeout(() => this.kill(), RUN_TIMEOUT_MS);
    this.unregister = registerExitCleanup(() => this.kill());
  }

  static async start(spec: ClientSpec): Promise<PyClient> {
    requirePythonModules(["socketio", "requests", "websocket"]);
    const child = spawn(PYTHON, ["-u", CLIENT_SCRIPT, JSON.stringify(spec)], {
      env: {
        ...process.env,
        PYTHONUNBUFFERED: "1",
        SIO_CLIENT_WATCHDOG_S: String(RUN_TIMEOUT_MS / 1000 - 5),
        SIO_CLIENT_STEP_TIMEOUT_S: "10",
      },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    const client = new PyClient(spec, child);
    live.add(client);
    return client;
  }

  private onLine(line: string): void {
    if (!line.startsWith("{")) return;
    let parsed: ClientLine;
    try {
      parsed = JSON.parse(line) as ClientLine;
    } catch {
      return;
    }
    this.parsed.push(parsed);
    this.events.emit("line", parsed);
  }

  /** Every line printed so far, parsed. */
  lines(): ClientLine[] {
    return [...this.parsed];
  }

  /** Resolves with the first line of `event`, as soon as the script prints it. */
  line(event: string, timeoutMs = 10000): Promise<ClientLine> {
    const found = this.parsed.find((l) => l.event === event);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<ClientLine>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.events.off("line", onLine);
        this.events.off("close", onClose);
      };
      const onLine = (l: ClientLine): void => {
        if (l.event !== event) return;
        finish();
        resolve(l);
      };
      const onClose = (): void => {
        finish();
        reject(new Error(`sio_client.py ended before printing ${event}:\n${this.output()}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(`sio_client.py printed no ${event} in ${timeoutMs} ms:\n${this.output()}`),
        );
      }, timeoutMs);
      this.events.on("line", onLine);
      this.events.once("close", onClose);
      if (this.closed !== undefined) onClose();
    });
  }

  /** Waits for the script to end with code 0; returns all its lines. */
  async finish(timeoutMs = 15000): Promise<ClientLine[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill();
        reject(new Error(`sio_client.py did not exit in ${timeoutMs} ms:\n${this.output()}`));
      }, timeoutMs);
    });
    try {
      const exit = await Promise.race([this.done, timeout]);
      assert.equal(
        exit.code,
        0,
        `sio_client.py exited with ${exit.code ?? exit.signal}\n--- output ---\n${this.output()}`,
      );
    } finally {
      clearTimeout(timer);
    }
    return this.lines();
  }

  /** The script's stdout and stderr, for assertion messages. */
  output(): string {
    return this.text.length > 6000 ? `…${this.text.slice(-6000)}` : this.text;
  }

  /** SIGKILLs the script's process group (no-op once it has ended). */
  kill(): void {
    if (this.closed !== undefined || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }

  /** Kills the script and waits until it is gone. */
  async stop(): Promise<void> {
    this.kill();
    await this.done;
  }
}

/** Kills every client still running and waits for them (for after-hooks). */
export async function stopAllClients(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

/** Lines of one `event`. */
export function linesOf(lines: readonly ClientLine[], event: string): ClientLine[] {
  return lines.filter((l) => l.event === event);
}

/** The names of the events recorded (`recv` lines), in order. */
export function received(lines: readonly ClientLine[], ns = "/"): string[] {
  return lines.filter((l) => l.event === "recv" && l.ns === ns).map((l) => String(l.name));
}
