#!/usr/bin/env node
// Makes sure the services and clients the tests drive are installed (the root `pretest`
// script, and the first step of .ci/run). Fast when everything is present: only file
// checks plus one `python3 -c` probe. When something is missing and we are root with
// apt-get, installs exactly the missing Debian packages, with a policy-rc.d in place so
// that no installed service starts system-wide. Otherwise prints what to install and
// exits non-zero: tests must fail, never skip, when a service is missing.
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, writeFileSync } from "node:fs";

/** Binaries the harness runs, with the paths the Debian packages install them at. */
const BINARIES = [
  { pkg: "redis-server", paths: ["/usr/bin/redis-server"] },
  { pkg: "rabbitmq-server", paths: ["/usr/lib/rabbitmq/bin/rabbitmq-server"] },
  { pkg: "nginx-light", paths: ["/usr/sbin/nginx"] },
  { pkg: "haproxy", paths: ["/usr/sbin/haproxy"] },
  { pkg: "chromium", paths: ["/usr/bin/chromium"] },
  // Debian's `postgresql` pulls in the distribution's major version, which installs under
  // /usr/lib/postgresql/<major>/bin (and creates the `postgres` user the harness runs it as).
  { pkg: "postgresql", paths: postgresServers() },
];

function postgresServers() {
  try {
    return readdirSync("/usr/lib/postgresql").map((v) => `/usr/lib/postgresql/${v}/bin/postgres`);
  } catch {
    return [];
  }
}

/** Python modules the test clients import, and their Debian packages. */
const PYTHON = "/usr/bin/python3";
const PYTHON_MODULES = {
  socketio: "python3-socketio",
  requests: "python3-requests",
  websocket: "python3-websocket",
  redis: "python3-redis",
  pika: "python3-pika",
  flask_socketio: "python3-flask-socketio",
  flask: "python3-flask",
  kombu: "python3-kombu",
};

const POLICY_RC_D = "/usr/sbin/policy-rc.d";

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function missingPackages() {
  const missing = new Set();
  for (const { pkg, paths } of BINARIES) {
    if (!paths.some(executable)) missing.add(pkg);
  }
  if (!executable(PYTHON)) {
    missing.add("python3");
    for (const pkg of Object.values(PYTHON_MODULES)) missing.add(pkg);
    return [...missing];
  }
  // find_spec locates the modules without importing them (keeps this check fast).
  const probe = spawnSync(
    PYTHON,
    [
      "-c",
      "import importlib.util, sys; print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))",
      ...Object.keys(PYTHON_MODULES),
    ],
    { encoding: "utf8", timeout: 30000 },
  );
  if (probe.status !== 0) {
    for (const pkg of Object.values(PYTHON_MODULES)) missing.add(pkg);
  } else {
    for (const mod of probe.stdout.trim().split(/\s+/).filter(Boolean)) {
      missing.add(PYTHON_MODULES[mod]);
    }
  }
  return [...missing];
}

function run(command, args, env) {
  console.error(`ensure-services: ${command} ${args.join(" ")}`);
  const result = spawnSync(command, args, {
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, ...env },
  });
  if (result.status !== 0) {
    console.error(
      `ensure-services: ${command} failed (${result.error ?? `exit ${result.status}`})`,
    );
    process.exit(1);
  }
}

const missing = missingPackages();
if (missing.length === 0) process.exit(0);

const list = missing.join(" ");
const isRoot = process.getuid?.() === 0;
if (!isRoot || !executable("/usr/bin/apt-get")) {
  console.error(
    `ensure-services: missing Debian packages: ${list}\n` +
      `Install them (as root) with:\n` +
      `  printf '#!/bin/sh\\nexit 101\\n' > ${POLICY_RC_D} && chmod +x ${POLICY_RC_D}  # keep services from auto-starting\n` +
      `  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${list}`,
  );
  process.exit(1);
}

// Debian starts services from postinst unless policy-rc.d says no (101 = action forbidden).
// The tests start their own instances on free ports; system-wide ones would only be in the way.
if (!existsSync(POLICY_RC_D)) {
  writeFileSync(POLICY_RC_D, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  console.error(`ensure-services: wrote ${POLICY_RC_D} (exit 101) so no service auto-starts`);
}
console.error(`ensure-services: installing ${list}`);
const env = { DEBIAN_FRONTEND: "noninteractive" };
run("apt-get", ["update"], env);
run("apt-get", ["install", "-y", "-o", "Dpkg::Options::=--force-confold", ...missing], env);

const still = missingPackages();
if (still.length > 0) {
  console.error(`ensure-services: still missing after apt-get install: ${still.join(" ")}`);
  process.exit(1);
}
console.error("ensure-services: all test services installed");
