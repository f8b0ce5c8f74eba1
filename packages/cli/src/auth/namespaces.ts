/** Applies a per-namespace setup to `/`, the namespaces declared in the config, and every later one. */
import type { Namespace, Server } from "@switchyard/server";
import { existingNamespace } from "@switchyard/server/internal";

/**
 * Calls `fn` once for the main namespace, for each namespace named in
 * `config.namespaces` (strings or `{ name }` objects) that already exists, and for every
 * namespace created afterwards (`new_namespace`, which also fires for the children of
 * pattern namespaces). Returns a function that stops watching for new ones.
 */
export function forEachNamespace(
  io: Server,
  declared: unknown,
  fn: (nsp: Namespace) => void,
): () => void {
  const seen = new WeakSet<Namespace>();
  const apply = (nsp: Namespace) => {
    if (seen.has(nsp)) return;
    seen.add(nsp);
    fn(nsp);
  };
  apply(io.of("/") as unknown as Namespace);
  for (const name of declaredNames(declared)) {
    const nsp = existingNamespace(io, name);
    if (nsp !== undefined) apply(nsp);
  }
  const listener = (nsp: Namespace) => apply(nsp);
  io.on("new_namespace", listener);
  return () => io.off("new_namespace", listener);
}

function declaredNames(declared: unknown): string[] {
  const list = Array.isArray(declared)
    ? declared
    : typeof declared === "object" &&
        declared !== null &&
        Array.isArray((declared as { declared?: unknown }).declared)
      ? (declared as { declared: unknown[] }).declared
      : [];
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
