// RabbitMQ as a throw-away user process. The Debian /usr/sbin/rabbitmq-server wrapper
// redirects output to /var/log and re-execs through `su`, so we run the real script in
// /usr/lib/rabbitmq/bin directly. As root, RabbitMQ must run as the `rabbitmq` user: the
// temp dir is chowned to it and the process is spawned with its uid/gid (libuv drops
// supplementary groups). Each instance has its own node name, epmd port, dist port,
// cookie (HOME), mnesia and log dirs, so parallel runs never meet.
import { execFileSync } from "node:child_process";
import { chownSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePorts } from "./ports.js";
import { newTag, startProcess } from "./process.js";
import { BINARIES, requireBinary } from "./require-binary.js";
import { type RestartableControl, retryOnPortClash, Service } from "./service.js";
import { makeTempDir } from "./tmp.js";

/** Options of {@link startRabbitMQ}. */
export interface RabbitOptions {
  /** AMQP port. @default a free port (retried on a clash) */
  readonly port?: number;
  /** Extra lines appended to rabbitmq.conf (sysctl format). @default [] */
  readonly extraConfig?: readonly string[];
  /** Boot takes ~6 s alone; more when other test files load the CPU. @default 60000 */
  readonly readyTimeoutMs?: number;
}

/** A running RabbitMQ node listening on 127.0.0.1. */
export interface RabbitServer extends RestartableControl {
  readonly host: string;
  /** AMQP port. */
  readonly port: number;
  /** `amqp://guest:guest@127.0.0.1:PORT` */
  readonly url: string;
  /** Erlang node name, `sy-<port>@localhost`. */
  readonly nodeName: string;
  readonly distPort: number;
  readonly epmdPort: number;
  /** Runs `rabbitmqctl -n <node> ...args` (as the broker's user) and resolves with stdout. */
  rabbitmqctl(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
}

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

// Root cannot run RabbitMQ (Erlang cookie and file ownership checks); use its own user.
function rabbitUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let entry: string;
  try {
    entry = execFileSync("getent", ["passwd", "rabbitmq"], { encoding: "utf8" });
  } catch {
    throw new Error(
      "running as root but the `rabbitmq` user does not exist; reinstall the Debian package " +
        "rabbitmq-server (apt-get install --reinstall -y rabbitmq-server) or run .ci/run",
    );
  }
  const fields = entry.trim().split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

// The rabbitmq user must be able to reach its dir: if some ancestor of $TMPDIR is not
// world-traversable (e.g. TMPDIR under /root), fall back to /tmp.
function reachableTmp(): string {
  const base = tmpdir();
  for (let dir = base; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return "/tmp";
    if (dir === dirname(dir)) return base;
  }
}

function chownTree(path: string, owner: RunAs): void {
  chownSync(path, owner.uid, owner.gid);
  if (!statSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}

/**
 * Resolves true once the server answers the AMQP 0-9-1 protocol header with a
 * Connection.Start frame (frame type 1, channel 0, class 10, method 10).
 */
export function amqpHandshake(
  port: number,
  host = "127.0.0.1",
  timeoutMs = 2000,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host });
    let buf = Buffer.alloc(0);
    const finish = (error: Error | undefined, ok = false): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(ok);
    };
    const timer = setTimeout(() => {
      finish(new Error(`amqp ${host}:${port}: no Connection.Start within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("error", (error) => finish(error));
    socket.once("connect", () => socket.write(Buffer.from("AMQP\x00\x00\x09\x01", "latin1")));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 11) return;
      if (buf.subarray(0, 4).toString("latin1") === "AMQP") {
        finish(new Error(`amqp ${host}:${port}: server rejected protocol version`));
        return;
      }
      const ok =
        buf[0] === 1 &&
        buf.readUInt16BE(1) === 0 &&
        buf.readUInt16BE(7) === 10 &&
        buf.readUInt16BE(9) === 10;
      finish(ok ? undefined : new Error(`amqp ${host}:${port}: unexpected first frame`), ok);
    });
    socket.once("end", () => finish(new Error(`amqp ${host}:${port}: connection closed`)));
  });
}

/**
 * Starts a RabbitMQ node (no plugins) on 127.0.0.1 in its own temp dir and resolves once
 * it completes an AMQP handshake. `stop()` also ends the node's epmd, which Erlang starts
 * as a daemon outside the process group (found by the instance tag in its environment).
 */
export async function startRabbitMQ(options: RabbitOptions = {}): Promise<RabbitServer> {
  const bin = requireBinary(BINARIES.rabbitmq);
  const owner = rabbitUser();
  return retryOnPortClash(options.port !== undefined, async () => {
    const [autoPort = 0, distPort = 0, epmdPort = 0] = await freePorts(3);
    const port = options.port ?? autoPort;
    const dir = makeTempDir("rabbitmq", owner === undefined ? tmpdir() : reachableTmp());
    const tag = newTag("rabbitmq");
    const nodeName = `sy-${port}@localhost`;
    const path = (name: string): string => join(dir.path, name);

    writeFileSync(path("enabled_plugins"), "[].\n");
    writeFileSync(
      path("rabbitmq.conf"),
      [
        "loopback_users = none",
        // Tests must not stall on a nearly full CI disk.
        "disk_free_limit.absolute = 1MB",
        ...(options.extraConfig ?? []),
        "",
      ].join("\n"),
    );
    if (owner !== undefined) chownTree(dir.path, owner);

    const env: Record<string, string> = {
      HOME: dir.path,
      RABBITMQ_NODENAME: nodeName,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(port),
      // Default is AMQP port + 20000, which overflows for ephemeral ports.
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_MNESIA_BASE: path("mnesia"),
      RABBITMQ_LOG_BASE: path("log"),
      RABBITMQ_LOGS: "-",
      RABBITMQ_ENABLED_PLUGINS_FILE: path("enabled_plugins"),
      RABBITMQ_FEATURE_FLAGS_FILE: path("feature_flags"),
      RABBITMQ_CONFIG_FILE: path("rabbitmq.conf"),
      RABBITMQ_ADVANCED_CONFIG_FILE: path("advanced.config"),
      RABBITMQ_CONF_ENV_FILE: path("rabbitmq-env.conf"),
      RABBITMQ_PID_FILE: path("rabbitmq.pid"),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: "127.0.0.1",
    };
    const runAs = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };

    const service = await Service.start(dir, tag, () =>
      startProcess({
        name: `rabbitmq:${port}`,
        command: bin,
        cwd: dir.path,
        instanceDir: dir.path,
        env,
        tag,
        ...runAs,
        killGraceMs: 15000,
        ready: () => amqpHandshake(port),
        readyTimeoutMs: options.readyTimeoutMs ?? 60000,
      }),
    );

    const rabbitmqctl = async (
      args: readonly string[],
      ctlOptions: { timeoutMs?: number } = {},
    ): Promise<string> => {
      const ctl = await startProcess({
        name: "rabbitmqctl",
        command: requireBinary(BINARIES.rabbitmqctl),
        args: ["-n", nodeName, ...args],
        cwd: dir.path,
        env,
        ...runAs,
        outputLimit: 4 * 1024 * 1024,
      });
      let exit: Awaited<ReturnType<typeof ctl.waitForExit>>;
      try {
        exit = await ctl.waitForExit(ctlOptions.timeoutMs ?? 30000);
      } finally {
        await ctl.stop();
      }
      if (exit.code !== 0) {
        throw new Error(
          `rabbitmqctl ${args.join(" ")} failed (code ${exit.code}):\n${ctl.output()}`,
        );
      }
      return ctl.stdout();
    };

    return service.handle({
      host: "127.0.0.1",
      port,
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      nodeName,
      distPort,
      epmdPort,
      rabbitmqctl,
    });
  });
}
