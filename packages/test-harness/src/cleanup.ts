// Synchronous cleanup at process exit. Everything a test starts (child processes, temp
// dirs, browsers) registers here, so a failed assertion, an uncaught exception or a
// Ctrl-C never leaves a broker or proxy running. Exit handlers cannot await, so each
// cleanup must be synchronous (SIGKILL, rmSync).

/** A synchronous cleanup step run when the test process exits. */
export type ExitCleanup = () => void;

const cleanups = new Set<ExitCleanup>();
const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let installed = false;

/**
 * Registers `fn` to run synchronously when the process exits (normally, via an uncaught
 * exception, or on SIGINT/SIGTERM/SIGHUP). Returns a function that unregisters it.
 */
export function registerExitCleanup(fn: ExitCleanup): () => void {
  install();
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/** Runs (and unregisters) every registered cleanup, most recent first. */
export function runExitCleanups(): void {
  const pending = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of pending) {
    try {
      fn();
    } catch {
      // Best effort: one failing cleanup must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runExitCleanups();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  // Re-raise so the default disposition (terminate with the signal) applies, unless
  // someone else also listens and has taken responsibility for exiting.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", runExitCleanups);
  for (const s of SIGNALS) process.on(s, onSignal);
}
