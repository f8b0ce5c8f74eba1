import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import pg from "pg";
import { isPortOpen, type ProcessInfo, startPostgres } from "../src/index.js";

function describeProcs(procs: ProcessInfo[]): string {
  return procs.map((p) => `${p.pid} ${p.cmdline}`).join("\n");
}

/** Live (non-zombie) processes whose `ps` command line contains `needle`. */
function psMatching(needle: string): string[] {
  const out = execFileSync("ps", ["-eo", "pid=,stat=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((line) => line.includes(needle) && !/^\s*\d+\s+Z/.test(line))
    .filter((line) => !line.includes("ps -eo"));
}

describe("postgres", () => {
  test("start, query, restart and kill keep the data, stop leaves nothing", async (t) => {
    const db = await startPostgres();
    t.after(() => db.stop());
    assert.equal(db.url, `postgres://postgres@127.0.0.1:${db.port}/postgres`);

    // A real client over TCP, with the URL as users would pass it to a pg.Pool.
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    try {
      await pool.query("CREATE TABLE t (id serial PRIMARY KEY, v text NOT NULL)");
      await pool.query("INSERT INTO t (v) VALUES ($1), ($2)", ["a", "b"]);
      const { rows } = await pool.query<{ v: string }>("SELECT v FROM t ORDER BY id");
      assert.deepEqual(
        rows.map((r) => r.v),
        ["a", "b"],
      );
    } finally {
      await pool.end();
    }

    const settings = await db.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name = ANY($1) ORDER BY name",
      [["fsync", "listen_addresses", "port", "unix_socket_directories"]],
    );
    assert.deepEqual(settings, [
      { name: "fsync", setting: "off" },
      { name: "listen_addresses", setting: "127.0.0.1" },
      { name: "port", setting: String(db.port) },
      { name: "unix_socket_directories", setting: db.socketDir },
    ]);
    assert.ok(existsSync(join(db.socketDir, `.s.PGSQL.${db.port}`)), "unix socket in the temp dir");
    if (process.getuid?.() === 0) {
      const owner = execFileSync("ps", ["-o", "user=", "-p", String(db.process?.pid)], {
        encoding: "utf8",
      });
      assert.equal(owner.trim(), "postgres", "as root, the server runs as the postgres user");
    }
    // The postmaster and its background workers (checkpointer, walwriter, …) are all found.
    assert.ok(db.leftovers().length >= 3, describeProcs(db.leftovers()));

    const firstPid = db.process?.pid;
    await db.restart();
    assert.notEqual(db.process?.pid, firstPid);
    assert.deepEqual(await db.query("SELECT count(*)::int AS n FROM t"), [{ n: 2 }]);

    // A crash: SIGKILL of every server process; the restart recovers from the WAL.
    await db.query("INSERT INTO t (v) VALUES ('c')");
    await db.kill();
    assert.equal(describeProcs(db.leftovers()), "", "kill() leaves no backend behind");
    assert.equal(await isPortOpen(db.port), false);
    assert.ok(existsSync(db.dataDir), "kill() keeps the data dir");
    await db.restart();
    assert.deepEqual(await db.query("SELECT v FROM t ORDER BY id"), [
      { v: "a" },
      { v: "b" },
      { v: "c" },
    ]);

    // An open client does not hold up stop() (fast shutdown, not smart).
    const idle = new pg.Client({ connectionString: db.url });
    idle.on("error", () => undefined);
    await idle.connect();
    const stopping = Date.now();
    await db.stop();
    const stopMs = Date.now() - stopping;
    await idle.end().catch(() => undefined);
    // A smart shutdown would wait for the client until the 10 s grace ran out.
    assert.ok(stopMs < 5000, `stop() took ${stopMs} ms with a client connected`);

    assert.equal(describeProcs(db.leftovers()), "", "no process of the instance left");
    assert.deepEqual(psMatching(db.dataDir), [], "ps shows no server on the data dir");
    assert.equal(await isPortOpen(db.port), false, "port closed");
    assert.equal(existsSync(db.dir), false, "temp dir removed");
  });

  test("a killed server leaves no shared memory behind once stopped", async (t) => {
    const db = await startPostgres();
    t.after(() => db.stop());
    // postmaster.pid line 7: the System V key and id of the interlock segment.
    const [key, shmid] = readFileSync(join(db.dataDir, "postmaster.pid"), "utf8")
      .split("\n")[6]!
      .trim()
      .split(/\s+/);
    const segment = () =>
      readFileSync("/proc/sysvipc/shm", "utf8")
        .split("\n")
        .some((line) => {
          const f = line.trim().split(/\s+/);
          return f[0] === key && f[1] === shmid;
        });
    assert.equal(segment(), true, "the running server's segment is listed");
    // Dynamic shared memory lives in the data dir, not in /dev/shm.
    assert.deepEqual(
      await db.query("SELECT setting FROM pg_settings WHERE name = 'dynamic_shared_memory_type'"),
      [{ setting: "mmap" }],
    );
    await db.kill();
    assert.equal(segment(), true, "SIGKILL leaves the segment (what stop() must clean)");
    await db.stop();
    assert.equal(segment(), false, "stop() removed the segment");
  });

  test("two instances run side by side on their own ports and data", async (t) => {
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    t.after(() => Promise.all([a.stop(), b.stop()]));
    assert.notEqual(a.port, b.port);
    assert.notEqual(a.dataDir, b.dataDir);
    await a.query("CREATE TABLE only_in_a (x int)");
    await assert.rejects(b.query("SELECT * FROM only_in_a"), /does not exist/);
  });
});
