// For benchmark scripts that fork themselves as server nodes and drive them over IPC: the
// parent forks and asks (`forkNode`), the child announces its port (`listenAndAnnounce`)
// and answers `{ id, cmd, …fields }` with `{ id, result }`.
import { fork } from "node:child_process";
import type { Server } from "node:http";
import { fileURLToPath } from "node:url";

/** `--name=N` from the command line as a number, or `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a === undefined ? fallback : Number(a.slice(name.length + 3));
}

export interface NodeProc {
  port: number;
  /** Sends `{ id, cmd, …fields }`; resolves with the `result` of the node's answer. */
  call<T>(cmd: string, fields?: Record<string, unknown>): Promise<T>;
  /** Closes the node (IPC disconnect) and waits for its exit; SIGKILL after 3 s. */
  stop(): Promise<void>;
}

/**
 * Forks the script at `moduleUrl` (run from source, with `env` added to this process's)
 * and resolves once it announced its port; rejects if it exits first or takes over 20 s.
 */
export async function forkNode(moduleUrl: string, env: Record<string, string>): Promise<NodeProc> {
  const child = fork(fileURLToPath(moduleUrl), [], {
    execArgv: ["--conditions=switchyard-source", "--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let next = 0;
  const pending = new Map<number, (v: unknown) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("node not ready in 20 s")), 20_000);
    child.on("message", (m: { ready?: number; id?: number; result?: unknown }) => {
      if (m.ready !== undefined) {
        clearTimeout(t);
        resolve(m.ready);
      } else if (m.id !== undefined) {
        pending.get(m.id)?.(m.result);
        pending.delete(m.id);
      }
    });
    child.once("exit", (code) => reject(new Error(`node exited (${code})`)));
  });
  return {
    port,
    call: <T>(cmd: string, fields: Record<string, unknown> = {}) =>
      new Promise<T>((resolve) => {
        const id = ++next;
        pending.set(id, resolve as (v: unknown) => void);
        child.send({ ...fields, id, cmd });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
        if (child.connected) child.disconnect();
      }),
  };
}

/** In a forked node: listens on a free loopback port and tells the parent which. */
export function listenAndAnnounce(http: Server): void {
  http.listen(0, "127.0.0.1", () => {
    const a = http.address();
    process.send?.({ ready: typeof a === "object" && a !== null ? a.port : 0 });
  });
}
