// Services that refuse to run as root (PostgreSQL) run as their Debian system user when
// the tests run as root: the instance dir is chowned to that user, kept reachable, and the
// process is spawned with its uid/gid.
import { execFileSync } from "node:child_process";
import { chownSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A user a service process runs as. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The uid/gid of Debian's system user `name` when the tests run as root; `undefined`
 * otherwise (the service then runs as the current user). Throws, naming the package to
 * reinstall, if the user does not exist.
 */
export function serviceUser(name: string, debianPackage: string): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let entry: string;
  try {
    entry = execFileSync("getent", ["passwd", name], { encoding: "utf8" });
  } catch {
    throw new Error(
      `running as root but the \`${name}\` user does not exist; reinstall the Debian package ` +
        `${debianPackage} (apt-get install --reinstall -y ${debianPackage}) or run .ci/run`,
    );
  }
  const fields = entry.trim().split(":");
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/**
 * A base dir another user can reach: `$TMPDIR`, unless one of its ancestors is not
 * world-traversable (e.g. a TMPDIR under /root), then /tmp.
 */
export function reachableTmp(): string {
  const base = tmpdir();
  for (let dir = base; ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return "/tmp";
    if (dir === dirname(dir)) return base;
  }
}

/** chowns `path` and everything below it to `owner`. */
export function chownTree(path: string, owner: RunAs): void {
  chownSync(path, owner.uid, owner.gid);
  if (!statSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}
