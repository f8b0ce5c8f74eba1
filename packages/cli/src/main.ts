/**
 * The `switchyard` command: `switchyard serve [flags]`, `--print-config`, `--help`,
 * `--version`. Returns the exit status; configuration errors are one line on stderr
 * (status 2), never a stack trace.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runWorkers } from "@switchyard/server";
import { ConfigError, loadConfig, maskSecrets } from "./config/load.js";
import type { Config } from "./config/schema.js";
import { createLogger } from "./log.js";
import { type MetricsConfig, startPrimaryMetrics } from "./metrics/index.js";
import { busFactory, startServer } from "./serve.js";
import { installSignals } from "./shutdown.js";
import { CLI_VERSION } from "./version.js";

const USAGE = `Usage: switchyard serve [options]

Runs the Switchyard realtime server (Socket.IO v4 wire-compatible) as a service.
Configuration: a JSON file < SWITCHYARD_* environment variables < flags.

Options:
  -c, --config <file>       JSON configuration file (or SWITCHYARD_CONFIG)
      --print-config        print the effective configuration (secrets masked) and exit
      --host <host>         listen.host (default 0.0.0.0)
      --port <port>         listen.port (default 3000)
      --path <path>         listen.path (default /socket.io)
      --bus <url>           memory | redis://… | amqp://… (default memory)
      --workers <n>         worker processes sharing the port (default 1)
      --log-level <level>   log.level (default info)
      --log-format <fmt>    auto | json | pretty (default auto)
      --<key.path> <value>  any configuration key, e.g. --engine.ping-interval 10000
      --set <key.path>=<v>  the same
  -h, --help                this help
  -v, --version             the version

Environment: SWITCHYARD_PORT, SWITCHYARD_BUS, …; nested keys with "__":
  SWITCHYARD_ENGINE__PING_INTERVAL=10000, SWITCHYARD_API__KEYS='[…]'
`;

interface Parsed {
  command: string | undefined;
  help: boolean;
  version: boolean;
  printConfig: boolean;
  file: string | undefined;
  flags: Array<[string, string]>;
}

function parseArgs(argv: readonly string[]): Parsed {
  const out: Parsed = {
    command: undefined,
    help: false,
    version: false,
    printConfig: false,
    file: undefined,
    flags: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") out.help = true;
    else if (arg === "-v" || arg === "--version") out.version = true;
    else if (arg === "--print-config") out.printConfig = true;
    else if (arg.startsWith("-")) {
      const eq = arg.indexOf("=");
      const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, "");
      let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
      if (value === undefined) {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith("--") && next.length > 2)) value = "true";
        else {
          value = next;
          i++;
        }
      }
      if (name === "c" || name === "config") out.file = value;
      else if (name === "set") {
        const at = value.indexOf("=");
        if (at <= 0) throw new ConfigError(`--set needs key=value, got "${value}"`);
        out.flags.push([value.slice(0, at), value.slice(at + 1)]);
      } else if (name === "" || !/^[A-Za-z][\w.-]*$/.test(name)) {
        throw new ConfigError(`unknown flag "${arg}" (see switchyard --help)`);
      } else out.flags.push([name, value]);
    } else if (out.command === undefined) out.command = arg;
    else throw new ConfigError(`unexpected argument "${arg}" (see switchyard --help)`);
  }
  return out;
}

/** Runs the command; resolves with the exit status (serve: once the server runs). */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: Parsed;
  let config: Config;
  try {
    parsed = parseArgs(argv);
    if (parsed.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (parsed.version) {
      process.stdout.write(`${CLI_VERSION}\n`);
      return 0;
    }
    if (parsed.command === undefined) {
      process.stderr.write(USAGE);
      return 2;
    }
    if (parsed.command !== "serve") {
      throw new ConfigError(`unknown command "${parsed.command}" (the command is "serve")`);
    }
    config = loadConfig({
      flags: parsed.flags,
      ...(parsed.file === undefined ? {} : { file: parsed.file }),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchyard: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.printConfig) {
    process.stdout.write(`${JSON.stringify(maskSecrets(config), null, 2)}\n`);
    return 0;
  }
  return serve(config);
}

async function serve(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level, format: config.log.format });
  try {
    if (config.workers > 1) {
      const factory = busFactory(config);
      const node = await runWorkers(
        {
          workers: config.workers,
          shutdownTimeout: config.shutdown.timeout,
          ...(factory === undefined ? {} : { bus: factory }),
        },
        async ({ bus, secret, id }) => {
          const s = await startServer(config, { log: log.child({ worker: id }), bus, secret });
          // What runWorkers' drain closes: stop accepting and close the sessions first
          // (engine.close), then the rest of our drain.
          return {
            engine: { close: () => void s.drain() },
            httpServer: s.http,
            close: async () => {
              await s.drain();
            },
          };
        },
      );
      if (node.isPrimary) {
        await node.ready;
        log.info({ workers: config.workers, pids: node.pids }, "workers ready");
        // The workers' metrics, aggregated, on metrics.port (the shared port is theirs).
        const metrics = await startPrimaryMetrics(config.metrics as MetricsConfig);
        if (metrics !== undefined) log.info(metrics.address, "workers' metrics aggregated");
      }
      return 0;
    }
    const server = await startServer(config, { log });
    installSignals(server, log);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal(err.message);
      process.stderr.write(`switchyard: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`switchyard: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
