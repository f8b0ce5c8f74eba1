/**
 * Node processes of the tests: a fixture (a .ts file) forked from source with the
 * `switchyard-source` condition and tsx, its stdout/stderr kept (last 8000 characters)
 * for error messages, SIGKILLed at exit of the test process whatever happens.
 * {@link NodeProcess} adds the IPC protocol the fixtures share: a `{ type: "ready",
 * port }` message once listening, commands `{ id, cmd, args }` answered with
 * `{ id, ok, result | error }`, and a graceful stop by closing the IPC channel.
 */
import { type ChildProcess, fork, type Serializable } from "node:child_process";
import { registerExitCleanup } from "./cleanup.js";
import { type Scope, waitFor, within } from "./wait.js";

/** The argv of a node running TypeScript sources of the workspace. */
export const SOURCE_EXEC_ARGV: readonly string[] = [
  "--conditions=switchyard-source",
  "--import",
  "tsx",
];

/** A message from a fixture: an answer (`id`), `ready`, or the fixture's own. */
export interface NodeReply {
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
  type?: string;
  port?: number;
  [key: string]: unknown;
}

/** Options of {@link forkFixture}. */
export interface ForkFixtureOptions {
  /** IPC serialization. @default "json" */
  serialization?: "json" | "advanced";
}

/** A forked fixture. */
export interface ForkedFixture {
  readonly child: ChildProcess;
  /** The last 8000 characters of its stdout and stderr. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

/**
 * Forks `fixture` with `config` as JSON in argv[2]; the process is SIGKILLed at exit of
 * the test process if it is still running.
 */
export function forkFixture(
  fixture: string,
  config: unknown,
  options: ForkFixtureOptions = {},
): ForkedFixture {
  const child = fork(fixture, [JSON.stringify(config)], {
    execArgv: [...SOURCE_EXEC_ARGV],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
    ...(options.serialization === undefined ? {} : { serialization: options.serialization }),
  });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const unregister = registerExitCleanup(() => {
    child.kill("SIGKILL");
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      unregister();
      resolve();
    });
  });
  return { child, output: () => output, exited };
}

/**
 * Graceful stop: closing the IPC channel makes the fixture close and exit; SIGKILL
 * after `killAfterMs`.
 */
export async function stopByDisconnect(
  child: ChildProcess,
  exited: Promise<void>,
  killAfterMs = 5000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.disconnect();
  const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Options of {@link NodeProcess}. */
export interface NodeProcessOptions {
  /** Names the process in error messages. */
  name: string;
  /** Path of the fixture. */
  fixture: string;
  /** argv[2] of the fixture, as JSON. */
  config: unknown;
  /** Timeout of {@link NodeProcess.call}, ms. @default 20_000 */
  callTimeoutMs?: number;
  /** How long {@link NodeProcess.kill} waits for the exit, ms. @default 5000 */
  killTimeoutMs?: number;
}

/** One forked fixture speaking the ready / command protocol. */
export class NodeProcess {
  readonly name: string;
  /** The port of its `ready` message. */
  port = 0;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private readonly readyMessage: Promise<NodeReply>;
  private readonly forked: ForkedFixture;
  private nextId = 0;
  private readonly pending = new Map<number, (r: NodeReply) => void>();
  private readonly callTimeoutMs: number;
  private readonly killTimeoutMs: number;

  constructor(options: NodeProcessOptions) {
    this.name = options.name;
    this.callTimeoutMs = options.callTimeoutMs ?? 20_000;
    this.killTimeoutMs = options.killTimeoutMs ?? 5000;
    this.forked = forkFixture(options.fixture, options.config);
    this.child = this.forked.child;
    this.exited = this.forked.exited.then(() => {
      for (const p of this.pending.values()) p({ ok: false, error: `${this.name} exited` });
      this.pending.clear();
    });
    this.readyMessage = new Promise<NodeReply>((resolve, reject) => {
      this.child.on("message", (m: NodeReply) => {
        if (m.type === "ready") {
          this.port = m.port ?? 0;
          resolve(m);
        }
      });
      void this.exited.then(() => reject(new Error(`${this.name} exited\n${this.output}`)));
    });
    this.readyMessage.catch(() => undefined);
    this.child.on("message", (m: NodeReply) => {
      if (m.id === undefined) return;
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    });
  }

  /** The last 8000 characters of its stdout and stderr. */
  get output(): string {
    return this.forked.output();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Resolves with the `ready` message; rejects if the process exits first or after `timeoutMs`. */
  whenReady(timeoutMs = 20_000): Promise<NodeReply> {
    return within(this.readyMessage, timeoutMs, `node ${this.name} start`);
  }

  /** Sends a command and resolves with its result; throws its error with the process's output. */
  async call<T>(
    cmd: string,
    args: Record<string, unknown> = {},
    timeoutMs = this.callTimeoutMs,
  ): Promise<T> {
    const id = ++this.nextId;
    const reply = await within(
      new Promise<NodeReply>((resolve) => {
        this.pending.set(id, resolve);
        this.child.send({ id, cmd, args } as Serializable);
      }),
      timeoutMs,
      `${this.name} ${cmd}`,
    );
    if (!reply.ok) throw new Error(`${this.name} ${cmd}: ${reply.error}\n${this.output}`);
    return reply.result as T;
  }

  /** A crash: SIGKILL, and wait for the exit. */
  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await within(this.exited, this.killTimeoutMs, `${this.name} SIGKILL`);
  }

  /** Graceful: closing the IPC channel makes the fixture close and exit; SIGKILL after 5 s. */
  stop(): Promise<void> {
    return stopByDisconnect(this.child, this.exited);
  }
}

/**
 * Starts `n` processes named A, B, C, … with `make`, each stopped by `scope`, and waits
 * until every one is ready.
 */
export async function startNamedNodes<T extends NodeProcess>(
  scope: Scope,
  n: number,
  make: (name: string) => T,
): Promise<T[]> {
  const nodes: T[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(scope.add(make(String.fromCharCode(65 + i)), (x) => x.stop()));
  }
  await Promise.all(nodes.map((x) => x.whenReady()));
  return nodes;
}

/**
 * Forwarding: waits until every node's `peers` command lists the other nodes, so that
 * no client arrives before the forwarding directories are complete.
 */
export async function waitForPeers(
  nodes: readonly NodeProcess[],
  timeoutMs = 10_000,
): Promise<void> {
  await waitFor(
    async () =>
      (await Promise.all(nodes.map((x) => x.call<string[]>("peers")))).every(
        (p) => p.length === nodes.length - 1,
      ),
    timeoutMs,
    "every node in every node's forwarding directory",
  );
}
