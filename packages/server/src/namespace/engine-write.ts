/**
 * `client.writeToEngine` of socket.io's adapter contract (docs/socketio-adapters.md):
 * packets a `socket.io-adapter` class encoded, written to one session through the
 * engine's outbox. It lives with the connection, not in `adapter/`, because it writes to
 * the engine, which no adapter module does (they hand deliveries to a `BroadcastSink`).
 */
import { EncodedPacket } from "../broadcast/encoded-packet.js";
import { OutboundPacket } from "../engine/outbound-packet.js";
import type { Session } from "../engine/session.js";

/** The options socket.io-adapter passes with pre-encoded packets (`wsPreEncodedFrame` is ignored: our transport frames once itself). */
export interface EngineWriteOptions {
  volatile?: boolean;
  compress?: boolean;
  preEncoded?: boolean;
}

// socket.io-adapter encodes a broadcast once and hands the same array to every socket:
// the array of the last call and its OutboundPackets, so every recipient writes the same
// memoized frame (one entry, held until the next broadcast).
let lastEncoded: readonly (string | Buffer)[] | undefined;
let lastParts: readonly OutboundPacket[] = [];

/**
 * `client.writeToEngine(encodedPackets, opts)` of the contract: writes packets an adapter
 * encoded with `server.encoder` to one session, through the engine's outbox (order,
 * volatile and slow-consumer rules as for every other write).
 */
export function writeEncoded(
  session: Session,
  encoded: readonly (string | Buffer)[] | string | Buffer,
  opts: EngineWriteOptions | undefined,
): void {
  const volatile = opts?.volatile === true;
  const compress = opts?.compress !== false;
  if (!Array.isArray(encoded)) {
    session.sendPacket(
      new OutboundPacket("message", encoded as string | Buffer),
      volatile,
      compress,
    );
    return;
  }
  let parts: readonly OutboundPacket[];
  if (encoded === lastEncoded) parts = lastParts;
  else {
    parts = new EncodedPacket(encoded).parts;
    lastEncoded = encoded;
    lastParts = parts;
  }
  if (parts.length === 1) session.sendPacket(parts[0]!, volatile, compress);
  else session.sendParts(parts, volatile, compress);
}
