// PostgreSQL as a throw-away user process: `initdb` into the instance's temp dir, then the
// `postgres` server itself (not pg_ctl, which daemonizes) in the foreground, listening on
// 127.0.0.1 and a unix socket inside the temp dir only. PostgreSQL refuses to run as root,
// so as root both run as Debian's `postgres` user (the temp dir is chowned to it).
// fsync and full_page_writes are off (tests want speed); commits still write the WAL (to the
// OS cache), so a committed row survives a SIGKILL of the server (not of the machine).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import pg from "pg";
import { freePort } from "./ports.js";
import { newTag, startProcess } from "./process.js";
import { type BinarySpec, requireBinary } from "./require-binary.js";
import { chownTree, reachableTmp, serviceUser } from "./run-as.js";
import { type RestartableControl, retryOnPortClash, Service } from "./service.js";
import { makeTempDir } from "./tmp.js";

/** Options of {@link startPostgres}. */
export interface PostgresOptions {
  /** Port to listen on. @default a free port (retried on a clash) */
  readonly port?: number;
  /** Extra server settings, each passed as `-c name=value`, e.g. `["max_connections=300"]`. @default [] */
  readonly settings?: readonly string[];
  /** initdb plus the first start take ~2 s alone; more under load. @default 30000 */
  readonly readyTimeoutMs?: number;
}

/** A running PostgreSQL server on 127.0.0.1 with trust authentication, in its own temp dir. */
export interface PostgresServer extends RestartableControl {
  readonly host: string;
  readonly port: number;
  /** The superuser, `postgres`. */
  readonly user: string;
  /** The default database, `postgres`. */
  readonly database: string;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  /** Directory of the server's unix socket (inside the temp dir). */
  readonly socketDir: string;
  /** Data directory (inside the temp dir). */
  readonly dataDir: string;
  /** Runs one statement on a fresh connection and resolves with its rows. */
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<Row[]>;
}

const USER = "postgres";
const DATABASE = "postgres";
const DEBIAN_PACKAGE = "postgresql";
const LIB_DIR = "/usr/lib/postgresql";

// Debian installs each major version under /usr/lib/postgresql/<major>/bin; newest first.
function installedBinDirs(): string[] {
  let versions: string[];
  try {
    versions = readdirSync(LIB_DIR).filter((name) => /^\d+$/.test(name));
  } catch {
    versions = [];
  }
  return versions.sort((a, b) => Number(b) - Number(a)).map((v) => join(LIB_DIR, v, "bin"));
}

function postgresBinary(name: "postgres"): string {
  const spec: BinarySpec = {
    name,
    debianPackage: DEBIAN_PACKAGE,
    paths: installedBinDirs().map((dir) => join(dir, name)),
  };
  return requireBinary(spec);
}

/** Runs `SELECT 1` over TCP; resolves true once the server accepts a real session. */
async function selectOne(port: number): Promise<boolean> {
  const client = new pg.Client({
    host: "127.0.0.1",
    port,
    user: USER,
    database: DATABASE,
    connectionTimeoutMillis: 2000,
  });
  // A refused or reset connection emits "error" besides rejecting connect().
  client.on("error", () => undefined);
  try {
    await client.connect();
    const result = await client.query<{ one: number }>("SELECT 1 AS one");
    return result.rows[0]?.one === 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts PostgreSQL on 127.0.0.1 in its own temp dir (initdb, trust auth for local and
 * loopback connections, durability off) and resolves once a client completes `SELECT 1`.
 * `restart()` and `kill()` keep the data dir and port; `stop()` (fast shutdown) removes it.
 * Throws {@link MissingDependencyError} if the Debian package `postgresql` is not installed.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const postgres = postgresBinary("postgres");
  // initdb must come from the same version as the server that will open its data dir.
  const initdb = join(dirname(postgres), "initdb");
  const owner = serviceUser("postgres", DEBIAN_PACKAGE);
  const runAs = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };
  const readyTimeoutMs = options.readyTimeoutMs ?? 30000;

  return retryOnPortClash(options.port !== undefined, async () => {
    const port = options.port ?? (await freePort());
    const dir = makeTempDir("postgres", owner === undefined ? undefined : reachableTmp());
    const tag = newTag("postgres");
    const dataDir = join(dir.path, "data");
    if (owner !== undefined) chownTree(dir.path, owner);

    // Locale-independent and quiet: the machine's LANG may name a locale that is not built.
    const env = { LANG: "C", LC_ALL: "C", PGDATA: undefined, PGPORT: undefined, PGHOST: undefined };
    try {
      const init = await startProcess({
        name: "initdb",
        command: initdb,
        args: [
          "-D",
          dataDir,
          "-U",
          USER,
          "--auth=trust",
          "--encoding=UTF8",
          "--locale=C",
          "--no-sync",
          "--no-instructions",
        ],
        cwd: dir.path,
        instanceDir: dir.path,
        env,
        tag,
        ...runAs,
      });
      let exit: Awaited<ReturnType<typeof init.waitForExit>>;
      try {
        exit = await init.waitForExit(readyTimeoutMs);
      } finally {
        await init.stop();
      }
      if (exit.code !== 0) {
        throw new Error(`initdb failed (code ${exit.code}):\n${init.output()}`);
      }
      // Only what the tests use: the unix socket and loopback TCP, no password.
      writeFileSync(
        join(dataDir, "pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
      );
      if (owner !== undefined) chownTree(join(dataDir, "pg_hba.conf"), owner);
    } catch (error) {
      dir.remove();
      throw error;
    }

    const args = [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-k",
      dir.path,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "shared_buffers=32MB",
      "-c",
      "logging_collector=off",
      // Dynamic shared memory as files in the data dir (removed with it), not in /dev/shm,
      // where a SIGKILLed server would leave them behind.
      "-c",
      "dynamic_shared_memory_type=mmap",
      ...(options.settings ?? []).flatMap((setting) => ["-c", setting]),
    ];
    const service = await Service.start(dir, tag, () =>
      startProcess({
        name: `postgres:${port}`,
        command: postgres,
        args,
        cwd: dir.path,
        instanceDir: dir.path,
        env,
        tag,
        ...runAs,
        // SIGTERM is a "smart" shutdown that waits for every client to leave; SIGINT is
        // "fast": it disconnects them and shuts down cleanly.
        stopSignal: "SIGINT",
        killGraceMs: 10000,
        ready: () => selectOne(port),
        readyTimeoutMs,
      }),
    );

    const query = async <Row extends Record<string, unknown>>(
      sql: string,
      params: readonly unknown[] = [],
    ): Promise<Row[]> => {
      const client = new pg.Client({ host: "127.0.0.1", port, user: USER, database: DATABASE });
      client.on("error", () => undefined);
      try {
        await client.connect();
        const result = await client.query<Row>(sql, [...params]);
        return result.rows;
      } finally {
        await client.end().catch(() => undefined);
      }
    };

    const handle = service.handle({
      host: "127.0.0.1",
      port,
      user: USER,
      database: DATABASE,
      url: `postgres://${USER}@127.0.0.1:${port}/${DATABASE}`,
      socketDir: dir.path,
      dataDir,
      query,
    });
    // A server that did not shut down cleanly (killed, or SIGKILLed after the grace) leaves
    // its small System V interlock segment behind: remove it once nothing is attached.
    const stop = handle.stop;
    handle.stop = async () => {
      const segment = interlockSegment(dataDir);
      try {
        await stop();
      } finally {
        if (segment !== undefined) removeIfUnattached(segment);
      }
    };
    return handle;
  });
}

interface ShmSegment {
  readonly key: string;
  readonly shmid: string;
}

// Line 7 of postmaster.pid: the System V key and id of the server's interlock segment.
function interlockSegment(dataDir: string): ShmSegment | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n");
  } catch {
    return undefined;
  }
  const [key, shmid] = (lines[6] ?? "").trim().split(/\s+/);
  if (key === undefined || shmid === undefined || !/^\d+$/.test(key) || !/^\d+$/.test(shmid)) {
    return undefined;
  }
  return { key, shmid };
}

// Only the segment with both this key (derived from this data dir) and this id, and
// only when no process is attached: never another instance's.
function removeIfUnattached(segment: ShmSegment): void {
  let table: string;
  try {
    table = readFileSync("/proc/sysvipc/shm", "utf8");
  } catch {
    return;
  }
  const row = table
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[0] === segment.key && f[1] === segment.shmid);
  if (row === undefined || row[6] !== "0") return;
  try {
    execFileSync("ipcrm", ["-m", segment.shmid], { stdio: "ignore" });
  } catch {
    // Gone meanwhile, or not ours to remove: nothing to do.
  }
}
