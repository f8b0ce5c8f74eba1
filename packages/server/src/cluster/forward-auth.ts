/**
 * Authentication of the node-to-node channel: an HMAC-SHA256 with the shared cluster
 * secret over who sends, to whom, when, and what (method and URL of a forwarded request,
 * or the fields of an announcement). A token is valid for `replayWindow` ms, bound to
 * its target node and its request, and compared in constant time.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** Header carrying the token of a forwarded request. */
export const FORWARD_HEADER = "x-switchyard-forward";

const MAC_BYTES = 32;

/** base64url HMAC-SHA256 of `parts` joined by newlines (no part may contain one). */
export function mac(secret: Buffer, parts: readonly string[]): string {
  return createHmac("sha256", secret).update(parts.join("\n")).digest("base64url");
}

/** Whether `given` is the base64url MAC of `parts`, in constant time. */
export function macMatches(secret: Buffer, parts: readonly string[], given: string): boolean {
  const g = Buffer.from(given, "base64url");
  if (g.length !== MAC_BYTES) return false;
  const expected = createHmac("sha256", secret).update(parts.join("\n")).digest();
  return timingSafeEqual(expected, g);
}

/** The token a node puts on a request it forwards to `to`. */
export function signForward(
  secret: Buffer,
  from: string,
  to: string,
  method: string,
  url: string,
  now = Date.now(),
): string {
  const ts = String(now);
  return `${from}.${to}.${ts}.${mac(secret, ["fwd", from, to, ts, method, url])}`;
}

/**
 * Checks the token of a forwarded request received by node `self`: well formed, for
 * this node, within the replay window, and signed with the secret over this method and
 * URL. Returns the sending node's id, or undefined.
 */
export function verifyForward(
  secret: Buffer,
  self: string,
  token: string | string[] | undefined,
  method: string,
  url: string,
  replayWindow: number,
  now = Date.now(),
): string | undefined {
  if (typeof token !== "string" || token.length > 200) return undefined;
  const parts = token.split(".");
  if (parts.length !== 4) return undefined;
  const [from, to, ts, given] = parts as [string, string, string, string];
  if (to !== self || !/^\d{1,15}$/.test(ts)) return undefined;
  if (Math.abs(now - Number(ts)) > replayWindow) return undefined;
  return macMatches(secret, ["fwd", from, to, ts, method, url], given) ? from : undefined;
}
