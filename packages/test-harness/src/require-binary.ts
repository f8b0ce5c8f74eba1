// Tests that need a service must FAIL (never skip) when it is missing, with a message
// that says exactly what to install.
import { spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Thrown when a binary or Python module the harness needs is not installed. */
export class MissingDependencyError extends Error {
  /** Stable code for programmatic checks. */
  readonly code = "SY_HARNESS_MISSING_DEPENDENCY";
  /** What is missing (binary name or `python3 module X`). */
  readonly what: string;
  /** Debian package that provides it. */
  readonly debianPackage: string;

  constructor(what: string, debianPackage: string, detail: string) {
    super(
      `${what} is required by the Switchyard test harness but ${detail}. ` +
        `Install the Debian package: apt-get install -y ${debianPackage} ` +
        `(or run .ci/run, whose scripts/ensure-services.mjs installs every test service).`,
    );
    this.name = "MissingDependencyError";
    this.what = what;
    this.debianPackage = debianPackage;
  }
}

/** A binary the harness runs, where Debian puts it, and which package provides it. */
export interface BinarySpec {
  /** Executable name looked up in PATH (plus /usr/sbin and /sbin). */
  readonly name: string;
  readonly debianPackage: string;
  /** Absolute paths tried first. */
  readonly paths?: readonly string[];
}

/** The binaries of the test services, as installed by their Debian packages. */
export const BINARIES = {
  redis: { name: "redis-server", debianPackage: "redis-server", paths: ["/usr/bin/redis-server"] },
  // The /usr/sbin wrapper redirects output to /var/log and su's; we run the real script.
  rabbitmq: {
    name: "rabbitmq-server",
    debianPackage: "rabbitmq-server",
    paths: ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
  },
  rabbitmqctl: {
    name: "rabbitmqctl",
    debianPackage: "rabbitmq-server",
    paths: ["/usr/lib/rabbitmq/bin/rabbitmqctl"],
  },
  nginx: { name: "nginx", debianPackage: "nginx-light", paths: ["/usr/sbin/nginx"] },
  haproxy: { name: "haproxy", debianPackage: "haproxy", paths: ["/usr/sbin/haproxy"] },
  chromium: { name: "chromium", debianPackage: "chromium", paths: ["/usr/bin/chromium"] },
  python: { name: "python3", debianPackage: "python3", paths: ["/usr/bin/python3"] },
} as const satisfies Record<string, BinarySpec>;

/** Debian package of each Python module the harness's clients import. */
export const PYTHON_MODULE_PACKAGES: Readonly<Record<string, string>> = {
  socketio: "python3-socketio",
  requests: "python3-requests",
  websocket: "python3-websocket",
  redis: "python3-redis",
  pika: "python3-pika",
  flask_socketio: "python3-flask-socketio",
  kombu: "python3-kombu",
};

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const resolved = new Map<string, string>();

/** Returns the absolute path of the binary, or throws {@link MissingDependencyError}. */
export function requireBinary(spec: BinarySpec): string {
  const cached = resolved.get(spec.name);
  if (cached !== undefined) return cached;
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"].filter(Boolean);
  const candidates = [...(spec.paths ?? []), ...dirs.map((d) => join(d, spec.name))];
  const found = candidates.find(isExecutable);
  if (found === undefined) {
    const looked = spec.paths?.length ? `${spec.paths.join(", ")} or PATH` : "PATH";
    throw new MissingDependencyError(spec.name, spec.debianPackage, `was not found in ${looked}`);
  }
  resolved.set(spec.name, found);
  return found;
}

const importable = new Set<string>();

/**
 * Checks that `/usr/bin/python3` can import each module (results cached per process);
 * throws {@link MissingDependencyError} naming the Debian package otherwise.
 */
export function requirePythonModules(modules: readonly string[]): void {
  const python = requireBinary(BINARIES.python);
  const todo = modules.filter((m) => !importable.has(m));
  if (todo.length === 0) return;
  const script = [
    "import importlib, sys",
    "bad = []",
    "for m in sys.argv[1:]:",
    "    try: importlib.import_module(m)",
    "    except Exception as e: bad.append(m)",
    "print(' '.join(bad))",
  ].join("\n");
  const result = spawnSync(python, ["-c", script, ...todo], { encoding: "utf8", timeout: 30000 });
  if (result.status !== 0) {
    throw new Error(`${python} failed while checking modules: ${result.stderr || result.error}`);
  }
  const missing = result.stdout.trim().split(/\s+/).filter(Boolean);
  for (const m of todo) if (!missing.includes(m)) importable.add(m);
  const first = missing[0];
  if (first !== undefined) {
    const packages = missing.map((m) => PYTHON_MODULE_PACKAGES[m] ?? `python3-${m}`).join(" ");
    throw new MissingDependencyError(
      `python3 module${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
      packages,
      `cannot be imported by ${python}`,
    );
  }
}
