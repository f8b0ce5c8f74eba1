/**
 * Session ids: 120 bits from the CSPRNG (20 base64url characters) behind the id of the
 * node that owns the session, so any node (or a router) can tell where a session lives
 * without a lookup. Format: `<nodeId>~<20 random chars>`; `~` is URL-safe and never
 * appears in either part.
 */
import { randomFillSync } from "node:crypto";

const SEPARATOR = "~";
const RANDOM_BYTES = 15;
// Refilled in blocks: one syscall per 256 ids instead of one per id.
const pool = Buffer.alloc(RANDOM_BYTES * 256);
let offset = pool.length;

/** 120 random bits as 20 base64url characters (socket ids use this form as is). */
export function randomId(): string {
  if (offset >= pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString("base64url", offset, offset + RANDOM_BYTES);
  // Used bytes are wiped so the pool never holds an id that was handed out.
  pool.fill(0, offset, offset + RANDOM_BYTES);
  offset += RANDOM_BYTES;
  return id;
}

/** A new unguessable session id owned by `nodeId`. */
export function generateSessionId(nodeId: string): string {
  return nodeId + SEPARATOR + randomId();
}

/** The node id embedded in a session id, or undefined if it is not one of ours. */
export function sessionNode(sid: string): string | undefined {
  const i = sid.indexOf(SEPARATOR);
  return i > 0 && sid.length - i - 1 === 20 ? sid.slice(0, i) : undefined;
}
