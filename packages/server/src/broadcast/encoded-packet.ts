/**
 * A Socket.IO packet encoded once: its parts (one string, plus one Buffer per binary
 * attachment) as Engine.IO message packets whose WebSocket and polling forms are
 * memoized. A broadcast builds one and the engine's outbox writes the same bytes to every
 * recipient.
 */
import { OutboundPacket } from "../engine/outbound-packet.js";
import type { Session } from "../engine/session.js";

export class EncodedPacket {
  readonly parts: readonly OutboundPacket[];

  constructor(parts: readonly (string | Buffer)[]) {
    const out: OutboundPacket[] = new Array(parts.length);
    for (let i = 0; i < parts.length; i++) out[i] = new OutboundPacket("message", parts[i]);
    this.parts = out;
  }
}

/**
 * Sends a packet encoded for one session only through the session's outbox: a lone part
 * (no binary attachment, the common case) as one packet; with attachments, all parts
 * together (dropped whole if volatile). Returns false if it was dropped.
 */
export function writeParts(
  session: Session,
  parts: readonly (string | Buffer)[],
  volatile: boolean,
  compress: boolean,
): boolean {
  if (parts.length === 1) {
    return session.sendPacket(new OutboundPacket("message", parts[0]), volatile, compress);
  }
  return session.sendParts(new EncodedPacket(parts).parts, volatile, compress);
}
