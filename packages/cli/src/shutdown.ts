/**
 * SIGTERM / SIGINT: the first drains the server (bounded by `shutdown.timeout`) and exits
 * 0 when it finished in time, 1 when the bound cut it short; a second signal exits 1 at
 * once.
 */
import type { Logger } from "pino";

/** What {@link installSignals} drains. */
export interface Drainable {
  /** Resolves true when the drain finished within its bound. */
  drain(): Promise<boolean>;
}

/** Installs the handlers; returns a function that removes them. */
export function installSignals(
  server: Drainable,
  log: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
): () => void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      log.flush?.();
      exit(1);
      return;
    }
    log.info({ signal }, "signal received: draining");
    void server.drain().then(
      (inTime) => {
        log.info({ inTime }, "drained: exiting");
        log.flush?.();
        exit(inTime ? 0 : 1);
      },
      (err: unknown) => {
        log.error({ err }, "drain failed");
        log.flush?.();
        exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}
