/**
 * Docs that run: every ```ts / ```typescript / ```js / ```javascript / ```mjs block of
 * README.md, packages/* /README.md, examples/* /README.md and docs/*.md is typechecked
 * (strict, ESM, `@switchyard/*` resolved to the workspace sources through the `source`
 * export condition), and every block that can run is run, as a child process, against a
 * real Redis (and RabbitMQ when a block needs it), with a bounded time.
 *
 * How a block says what it is — HTML comments on the lines right above its fence,
 * invisible on GitHub and npm:
 *
 * - nothing: a **script**. It is run with `PORT=0`, `REDIS_URL` and `AMQP_URL` of the
 *   test's brokers, and must exit by itself with status 0 within 20 s.
 * - `<!-- run: <scenario> -->`: run by the named scenario below, which checks that it
 *   does what the text around it says (a server answers real socket.io clients, an
 *   emitter's events reach clients, nodes share a broker). Servers listen on whatever port
 *   they name: a preloaded hook makes every `listen` take a free port and reports it.
 * - `<!-- ambient: io, socket -->`: a fragment continuing the text around it; the names
 *   are declared from {@link AMBIENT} (add one there when a new fragment needs it). A
 *   fragment is typechecked, never run.
 * - `<!-- typecheck-only -->` or `<!-- typecheck-only: why -->`: typechecked, not run
 *   (for a block that needs what a test cannot give it, e.g. a demo on a fixed port or a
 *   browser page). Nothing opts out of typechecking.
 *
 * Failures name the block as `file:line` of its opening fence, and a type error as
 * `file:line` of the offending line in the Markdown file.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer, get } from "node:http";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { AmqpBus } from "@switchyard/amqp";
import { RedisBus } from "@switchyard/redis";
import { createAdapter, Emitter, Server } from "@switchyard/server";
import {
  type RabbitServer,
  type RedisServer,
  startRabbitMQ,
  startRedis,
} from "@switchyard/test-harness";
import { type Socket as ClientSocket, io as connect } from "socket.io-client";
import ts from "typescript";
import { allBlocks, type CodeBlock, where } from "./readme-blocks.js";

const ROOT = resolve(fileURLToPath(new URL("../../../..", import.meta.url)));
/** Under the repository (so `@switchyard/*` and tsx resolve from its node_modules); git-ignored. */
const DIR = join(ROOT, ".tmp", `readme-blocks-${process.pid}`);
const SCRIPT_TIMEOUT_MS = 20_000;

/** Declarations of the names a fragment may use without declaring them. */
const AMBIENT: Readonly<Record<string, string>> = {
  io: 'declare const io: import("@switchyard/server").Server;',
  socket: 'declare const socket: import("@switchyard/server").Socket;',
  httpServer: 'declare const httpServer: import("node:http").Server;',
  circular: "declare const circular: unknown;",
};

const blocks = allBlocks(ROOT);

/** The file a block is written to, and how many lines were put before its code. */
interface Written {
  readonly block: CodeBlock;
  readonly path: string;
  readonly prelude: number;
}

function write(block: CodeBlock, index: number): Written {
  const lines: string[] = [];
  for (const name of block.ambient) {
    const decl = AMBIENT[name];
    if (decl !== undefined) lines.push(decl);
  }
  const base = `${block.file.replace(/[^\w]+/g, "_")}_${block.line}_${index}`;
  const path = join(DIR, `${base}${block.ext}`);
  // `export {}` makes every block a module, so blocks do not share a global scope.
  writeFileSync(path, `${lines.map((l) => `${l}\n`).join("")}${block.code}export {};\n`);
  return { block, path, prelude: lines.length };
}

/** Compiles every block in one program; returns the errors of each block by its path. */
function typecheck(written: readonly Written[]): Map<string, string[]> {
  const { options, errors } = ts.convertCompilerOptionsFromJson(
    {
      target: "ES2022",
      lib: ["ES2023"],
      module: "NodeNext",
      moduleResolution: "NodeNext",
      customConditions: ["switchyard-source"],
      strict: true,
      noUncheckedIndexedAccess: true,
      allowImportingTsExtensions: true,
      allowJs: true,
      checkJs: true,
      noEmit: true,
      skipLibCheck: true,
      esModuleInterop: true,
      isolatedModules: true,
      verbatimModuleSyntax: true,
      types: ["node"],
      typeRoots: [join(ROOT, "node_modules", "@types")],
    },
    DIR,
  );
  assert.deepEqual(errors, [], "compiler options");
  const program = ts.createProgram(
    written.map((w) => w.path),
    options,
  );
  const out = new Map<string, string[]>();
  for (const w of written) {
    const sf = program.getSourceFile(w.path);
    assert.ok(sf !== undefined, `compiled ${w.path}`);
    const diags = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    out.set(
      w.path,
      diags.map((d) => {
        const msg = ts.flattenDiagnosticMessageText(d.messageText, "\n");
        if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${msg}`;
        const { line } = d.file.getLineAndCharacterOfPosition(d.start);
        // Fence line + 1 is the block's first line; the prelude lines are ours.
        const mdLine = w.block.line + 1 + line - w.prelude;
        return `${w.block.file}:${mdLine}: TS${d.code}: ${msg}`;
      }),
    );
  }
  return out;
}

// ——— running ———

/** Makes every `listen` take a free port, and reports the port on stderr. */
const LISTEN_HOOK = `
import net from "node:net";
import { writeSync } from "node:fs";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const a = args[0];
  if (typeof a === "number" || (typeof a === "string" && /^\\d+$/.test(a))) args[0] = 0;
  else if (a !== null && typeof a === "object" && "port" in a) args[0] = { ...a, port: 0 };
  this.once("listening", () => {
    const addr = this.address();
    if (addr !== null && typeof addr === "object") writeSync(2, "\\nSY_LISTENING " + addr.port + "\\n");
  });
  return listen.apply(this, args);
};
`;

interface Run {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit status (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** The next port the program listened on. */
  listening(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

const runs = new Set<Run>();
let env: Record<string, string> = {};

function run(w: Written, extraEnv: Record<string, string> = {}): Run {
  const args = ["--conditions=switchyard-source", "--import", join(DIR, "listen-hook.mjs")];
  if (w.block.ext === ".ts") args.push("--import", "tsx");
  args.push(w.path);
  const childEnv: Record<string, string> = { ...env, ...extraEnv };
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: stop() ends whatever it started
  });
  let out = "";
  let seenPorts = 0;
  const waiters: (() => void)[] = [];
  const onData = (c: Buffer) => {
    out += c.toString();
    for (const w2 of waiters.splice(0)) w2();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | string>((res) => {
    child.on("exit", (code, signal) => {
      res(code ?? signal ?? "?");
      for (const w2 of waiters.splice(0)) w2();
    });
  });
  const ports = () => [...out.matchAll(/SY_LISTENING (\d+)/g)].map((m) => Number(m[1]));
  const r: Run = {
    child,
    output: () => out,
    exited,
    listening(timeoutMs = 15_000) {
      return new Promise<number>((res, rej) => {
        const timer = setTimeout(
          () => rej(new Error(`${where(w.block)} did not listen in ${timeoutMs} ms:\n${out}`)),
          timeoutMs,
        );
        const check = () => {
          const p = ports();
          if (p.length > seenPorts) {
            clearTimeout(timer);
            res(p[seenPorts++]!);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            rej(new Error(`${where(w.block)} exited before listening:\n${out}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    async stop() {
      runs.delete(r);
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
        await exited;
      }
    },
  };
  runs.add(r);
  return r;
}

/** Resolves with the exit status, or fails after `ms`. */
async function exitWithin(r: Run, ms: number, what: string): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      const hint =
        "a block that serves or keeps running needs <!-- run: <scenario> --> or <!-- typecheck-only: why --> (see readme-blocks.test.ts)";
      rej(new Error(`${what} did not exit in ${ms} ms; ${hint}. Output:\n${r.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([r.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const clients = new Set<ClientSocket>();

function client(port: number, nsp = "/", auth?: Record<string, string>): ClientSocket {
  const c = connect(`http://127.0.0.1:${port}${nsp}`, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    ...(auth === undefined ? {} : { auth }),
  });
  clients.add(c);
  return c;
}

/** Resolves with the arguments of the next `event` on `emitter`, or fails after `ms`. */
function next<T extends unknown[]>(
  emitter: { once(ev: string, fn: (...a: never[]) => void): unknown },
  event: string,
  ms = 10_000,
): Promise<T> {
  return new Promise<T>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`no "${event}" in ${ms} ms`)), ms);
    emitter.once(event, (...args: never[]) => {
      clearTimeout(timer);
      res(args as unknown as T);
    });
  });
}

function httpText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    get({ host: "127.0.0.1", port, path }, (r) => {
      let body = "";
      r.setEncoding("utf8");
      r.on("data", (c: string) => {
        body += c;
      });
      r.on("end", () => res({ status: r.statusCode ?? 0, body }));
    }).on("error", rej);
  });
}

/** Polls `pred` every 50 ms until it holds or `ms` pass (for state with no event to await). */
async function until(
  pred: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ——— scenarios: what each `<!-- run: … -->` block must do ———

type Scenario = (w: Written) => Promise<void>;

let redis: RedisServer | undefined;
let rabbit: RabbitServer | undefined;

/** The README's "Use it" server: REST beside Socket.IO, auth middleware, rooms, acks. */
const useIt: Scenario = async (w) => {
  const r = run(w, { TOKEN: "s3cret" });
  try {
    const port = await r.listening();
    assert.deepEqual(await httpText(port, "/api/health"), { status: 200, body: "ok" });
    assert.equal((await httpText(port, "/nope")).status, 404);
    const intruder = client(port, "/", { token: "wrong" });
    const [err] = await next<[Error & { data?: unknown }]>(intruder, "connect_error");
    assert.equal(err.message, "not authorized");
    assert.deepEqual(err.data, { hint: "send auth.token" });
    const a = client(port, "/", { token: "s3cret" });
    const b = client(port, "/", { token: "s3cret" });
    await Promise.all([next(a, "connect"), next(b, "connect")]);
    assert.equal(await a.timeout(5000).emitWithAck("join", "lobby"), true);
    assert.equal(await b.timeout(5000).emitWithAck("join", "lobby"), true);
    const atA: unknown[] = [];
    a.on("chat", (...args: unknown[]) => atA.push(args));
    const toB = next<[string, string]>(b, "chat");
    a.emit("chat", "lobby", "hello");
    assert.deepEqual(await toB, [a.id, "hello"]);
    // b answers; once that reached a, a has seen nothing else: its own message was not echoed.
    const toA = next<[string, string]>(a, "chat");
    b.emit("chat", "lobby", "hi back");
    assert.deepEqual(await toA, [b.id, "hi back"]);
    assert.deepEqual(atA, [[b.id, "hi back"]]);
  } finally {
    await r.stop();
  }
};

/**
 * A cluster node (the README's Cluster block, each bus package's README): two
 * processes on one broker; an event published to the broker reaches a client of each.
 */
function clusterNode(broker: "redis" | "amqp"): Scenario {
  return async (w) => {
    const nodes = [run(w), run(w)];
    const bus =
      broker === "redis" ? new RedisBus({ url: redis!.url }) : new AmqpBus({ url: rabbit!.url });
    try {
      const ports = await Promise.all(nodes.map((n) => n.listening()));
      const cs = ports.map((p) => client(p));
      await Promise.all(cs.map((c) => next(c, "connect")));
      const got = cs.map(() => false);
      cs.forEach((c, i) => {
        c.on("hello", (n: unknown) => {
          if (n === 42) got[i] = true;
        });
      });
      const emitter = new Emitter(bus);
      // A node subscribes as it starts: publish until both clients have it.
      await until(
        () => {
          if (!got.every(Boolean)) emitter.emit("hello", 42);
          return got.every(Boolean);
        },
        15_000,
        "the broker's event on both nodes' clients",
      );
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      await bus.close();
    }
  };
}

/** The README's Emitter script: its events reach clients of a server on the same Redis, and it exits. */
const emitterScript: Scenario = async (w) => {
  const bus = new RedisBus({ url: redis!.url });
  const http = createServer();
  const server = new Server(http, { adapter: createAdapter(bus) });
  server.on("connection", (s) => {
    if (s.handshake.auth.room === "symbol:ACME") void s.join("symbol:ACME");
  });
  server.of("/admin");
  await new Promise<void>((res) => http.listen(0, "127.0.0.1", res));
  const port = (http.address() as { port: number }).port;
  try {
    const watcher = client(port, "/", { room: "symbol:ACME" });
    const admin = client(port, "/admin");
    await Promise.all([next(watcher, "connect"), next(admin, "connect")]);
    const tick = next<[unknown]>(watcher, "tick", 20_000);
    const notice = next<[unknown]>(admin, "notice", 20_000);
    const r = run(w);
    try {
      const status = await exitWithin(r, SCRIPT_TIMEOUT_MS, where(w.block));
      assert.equal(status, 0, `exit status; output:\n${r.output()}`);
    } finally {
      await r.stop();
    }
    assert.deepEqual(await tick, [{ price: 12.5 }]);
    assert.deepEqual(await notice, ["deploying"]);
    await until(
      async () => (await server.of("/").in("watchers").fetchSockets()).length === 1,
      5000,
      "socketsJoin(watchers)",
    );
  } finally {
    await server.close();
    await bus.close();
  }
};

const SCENARIOS: Readonly<Record<string, Scenario>> = {
  "use-it": useIt,
  "cluster-node:redis": clusterNode("redis"),
  "cluster-node:amqp": clusterNode("amqp"),
  emitter: emitterScript,
};

// ——— the tests ———

const written: Written[] = [];
let diagnostics = new Map<string, string[]>();

before(async () => {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(join(DIR, "package.json"), '{ "type": "module", "private": true }\n');
  writeFileSync(join(DIR, "listen-hook.mjs"), LISTEN_HOOK);
  blocks.forEach((b, i) => {
    written.push(write(b, i));
  });
  diagnostics = typecheck(written);
  const runnable = blocks.filter((b) => !b.typecheckOnly);
  if (runnable.length > 0) redis = await startRedis();
  if (runnable.some((b) => b.scenario?.endsWith(":amqp") === true)) rabbit = await startRabbitMQ();
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A node:test child would otherwise report to this runner instead of printing.
    if (v !== undefined && k !== "NODE_TEST_CONTEXT") childEnv[k] = v;
  }
  childEnv.PORT = "0";
  if (redis !== undefined) childEnv.REDIS_URL = redis.url;
  if (rabbit !== undefined) childEnv.AMQP_URL = rabbit.url;
  env = childEnv;
});

after(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([...runs].map((r) => r.stop()));
  await redis?.stop();
  await rabbit?.stop();
  rmSync(DIR, { recursive: true, force: true });
});

describe("README code blocks", () => {
  it("finds the blocks of every README and docs page", () => {
    const files = new Set(blocks.map((b) => b.file));
    for (const f of ["README.md", "docs/errors.md", "packages/redis/README.md"]) {
      assert.ok(files.has(f), `${f} has checked blocks (found: ${[...files].join(", ")})`);
    }
    for (const b of blocks) {
      for (const name of b.ambient) {
        assert.ok(name in AMBIENT, `${where(b)}: ambient "${name}" is not in AMBIENT`);
      }
      if (b.scenario !== undefined) {
        assert.ok(b.scenario in SCENARIOS, `${where(b)}: no scenario "${b.scenario}"`);
        assert.ok(!b.typecheckOnly, `${where(b)}: a fragment or typecheck-only block cannot run`);
      }
    }
  });

  for (const [i, b] of blocks.entries()) {
    it(`${where(b)} (${b.lang}) typechecks`, () => {
      const errors = diagnostics.get(written[i]!.path) ?? [];
      assert.deepEqual(
        errors,
        [],
        `type errors in the block at ${where(b)}:\n${errors.join("\n")}`,
      );
    });
  }

  for (const [i, b] of blocks.entries()) {
    if (b.typecheckOnly) continue;
    const label =
      b.scenario === undefined
        ? "runs as a script and exits 0"
        : `does what it says (${b.scenario})`;
    it(`${where(b)} ${label}`, { timeout: 90_000 }, async () => {
      const w = written[i]!;
      const scenario = b.scenario === undefined ? undefined : SCENARIOS[b.scenario];
      if (scenario !== undefined) {
        await scenario(w);
        return;
      }
      const r = run(w);
      try {
        const status = await exitWithin(r, SCRIPT_TIMEOUT_MS, where(b));
        assert.equal(status, 0, `${where(b)} exit status; output:\n${r.output()}`);
      } finally {
        await r.stop();
      }
    });
  }
});
