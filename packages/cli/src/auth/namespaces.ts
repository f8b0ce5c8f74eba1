/** Applies a per-namespace setup to `/`, the namespaces declared in the config, and every later one. */
import type { Namespace, Server } from "@switchyard/server";
import { existingNamespace } from "@switchyard/server/internal";

/**
 * Calls `fn` once for the main namespace, for each namespace named in
 * `config.namespaces.names` (or a plain list) that already exists, and for every
 * namespace created afterwards (`new_namespace`, which also fires for the children of
 * pattern namespaces). `fn` may return a cleanup (e.g. removing its `connection` listener);
 * the returned function stops watching for new namespaces and runs every cleanup.
 */
export function forEachNamespace(
  io: Server,
  declared: unknown,
  fn: (nsp: Namespace) => (() => void) | undefined,
): () => void {
  const seen = new WeakSet<Namespace>();
  const cleanups: (() => void)[] = [];
  const apply = (nsp: Namespace) => {
    if (seen.has(nsp)) return;
    seen.add(nsp);
    const cleanup = fn(nsp);
    if (cleanup !== undefined) cleanups.push(cleanup);
  };
  apply(io.of("/") as unknown as Namespace);
  for (const name of declaredNames(declared)) {
    const nsp = existingNamespace(io, name);
    if (nsp !== undefined) apply(nsp);
  }
  const listener = (nsp: Namespace) => apply(nsp);
  io.on("new_namespace", listener);
  return () => {
    io.off("new_namespace", listener);
    for (const c of cleanups.splice(0)) c();
  };
}

/** Names from `namespaces` as serve's config has it (`{ names: [...] }`), or a plain list. */
function declaredNames(declared: unknown): string[] {
  let list: unknown = declared;
  if (typeof declared === "object" && declared !== null && !Array.isArray(declared)) {
    list = (declared as { names?: unknown }).names;
  }
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const entry of list) {
    if (typeof entry === "string") out.push(entry);
    else if (
      typeof entry === "object" &&
      entry !== null &&
      typeof (entry as { name?: unknown }).name === "string"
    ) {
      out.push((entry as { name: string }).name);
    }
  }
  return out;
}
