/**
 * API keys: compared in constant time (SHA-256 of the presented key against every
 * configured key's, without early exit), and a per-address limit on failed checks.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiConfig, ApiScope } from "./config.js";

/** A configured key, resolved. */
export interface ApiKey {
  readonly name: string;
  readonly scopes: ReadonlySet<ApiScope>;
}

interface Entry {
  readonly digest: Buffer;
  readonly key: ApiKey;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** The configured keys. */
export class KeyRing {
  readonly #entries: Entry[];

  /** Resolves `keyEnv` entries from `env`; throws naming the key when one is unset or short. */
  constructor(keys: ApiConfig["keys"], env: NodeJS.ProcessEnv = process.env) {
    this.#entries = keys.map((k, i) => {
      let secret = k.key;
      if (secret === undefined && k.keyEnv !== undefined) {
        secret = env[k.keyEnv];
        if (secret === undefined || secret.length < 16) {
          throw new Error(
            `api.keys.${i}.keyEnv: environment variable ${k.keyEnv} must hold a key of at least 16 characters`,
          );
        }
      }
      if (secret === undefined) throw new Error(`api.keys.${i}: key or keyEnv is required`);
      return { digest: digest(secret), key: { name: k.name, scopes: new Set(k.scopes) } };
    });
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The key matching `presented`, or undefined. Time does not depend on which key matched. */
  find(presented: string): ApiKey | undefined {
    const d = digest(presented);
    let found: ApiKey | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(d, e.digest) && found === undefined) found = e.key;
    }
    return found;
  }
}

/**
 * Counts failed key checks per client address in fixed intervals; an address over the
 * limit is refused (429) until its interval ends. Bounded memory: the table is cleared
 * when it grows past `maxAddresses` (an attacker with that many addresses is not slowed
 * by a per-address limit anyway).
 */
export class BadKeyLimiter {
  readonly #counts = new Map<string, { n: number; until: number }>();
  readonly #limit: number;
  readonly #intervalMs: number;
  readonly #maxAddresses: number;

  constructor(limit: number, intervalMs: number, maxAddresses = 10_000) {
    this.#limit = limit;
    this.#intervalMs = intervalMs;
    this.#maxAddresses = maxAddresses;
  }

  /** Whether `address` has used up its failed checks for this interval. */
  blocked(address: string, now = Date.now()): boolean {
    const c = this.#counts.get(address);
    if (c === undefined) return false;
    if (c.until <= now) {
      this.#counts.delete(address);
      return false;
    }
    return c.n >= this.#limit;
  }

  /** Counts one failed check. */
  fail(address: string, now = Date.now()): void {
    let c = this.#counts.get(address);
    if (c === undefined || c.until <= now) {
      if (this.#counts.size >= this.#maxAddresses) this.#counts.clear();
      c = { n: 0, until: now + this.#intervalMs };
      this.#counts.set(address, c);
    }
    c.n++;
  }
}
