import { createHash } from "node:crypto";

/** AMQP 0-9-1 routing keys are short strings: at most 255 bytes. */
const MAX_ROUTING_KEY_BYTES = 255;

/**
 * The AMQP routing key carrying Switchyard channel `channel`.
 *
 * Channel names contain `#` (e.g. `socket.io#/#room#`), a wildcard in topic bindings,
 * and `.`, the topic word separator, so they can't be routing keys as they are. The key
 * is `sy.` + base64url(utf8(channel)) (RFC 4648 §5, unpadded: one topic word with no
 * `.`, `*` or `#`) when that fits in 255 bytes (channels up to 189 UTF-8 bytes), else
 * `sy.h.` + sha256-hex(utf8(channel)). Both forms are deterministic, so any process
 * (a Python publisher too) computes the same key, and they never collide: the first
 * has two words, the second three.
 */
export function routingKey(channel: string): string {
  const bytes = Buffer.from(channel, "utf8");
  const encoded = `sy.${bytes.toString("base64url")}`;
  if (encoded.length <= MAX_ROUTING_KEY_BYTES) return encoded;
  return `sy.h.${createHash("sha256").update(bytes).digest("hex")}`;
}
