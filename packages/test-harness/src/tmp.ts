import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { registerExitCleanup } from "./cleanup.js";

/** Prefix of every directory the harness creates under the OS temp dir. */
export const TEMP_DIR_PREFIX = "switchyard-harness-";

/** A temporary directory that is removed on `remove()` or, at the latest, at process exit. */
export interface TempDir {
  readonly path: string;
  /** Removes the directory tree (idempotent). */
  remove(): void;
}

/**
 * Creates `<base>/switchyard-harness-<kind>-XXXXXX` (base defaults to `$TMPDIR`),
 * registered for removal at exit.
 */
export function makeTempDir(kind: string, base: string = tmpdir()): TempDir {
  const path = mkdtempSync(join(base, `${TEMP_DIR_PREFIX}${kind}-`));
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    unregister();
    rmSync(path, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
  };
  const unregister = registerExitCleanup(remove);
  return { path, remove };
}
