/** Connection middleware (`io.use`, `nsp.use`): run in order; the first error refuses. */

/** An error passed to `next()` may carry `data`, sent to the client with the refusal. */
export type ConnectMiddleware<S> = (
  socket: S,
  next: (err?: Error & { data?: unknown }) => void,
) => void;

export function runMiddleware<S>(
  fns: readonly ConnectMiddleware<S>[],
  socket: S,
  done: (err: (Error & { data?: unknown }) | undefined) => void,
): void {
  if (fns.length === 0) {
    done(undefined);
    return;
  }
  step(fns, socket, 0, done);
}

function step<S>(
  fns: readonly ConnectMiddleware<S>[],
  socket: S,
  i: number,
  done: (err: (Error & { data?: unknown }) | undefined) => void,
): void {
  let called = false;
  const next = (err?: Error & { data?: unknown }) => {
    if (called) return;
    called = true;
    if (err !== undefined && err !== null) {
      done(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (i + 1 >= fns.length) done(undefined);
    else step(fns, socket, i + 1, done);
  };
  try {
    fns[i]!(socket, next);
  } catch (err) {
    next(err instanceof Error ? err : new Error(String(err)));
  }
}
