/**
 * What the engine's session sees of a transport. Only transports know about framing
 * (WebSocket frames, polling payloads); sessions hand them {@link OutboundPacket}s.
 */
import { decodeEnginePacket, type EnginePacket, ProtocolError } from "@switchyard/protocol";
import type { OutboundPacket } from "../engine/outbound-packet.js";
import type { TransportName } from "../options.js";

export interface Transport {
  readonly name: TransportName;
  /** The session this transport reports to (set when the session adopts it). */
  owner: TransportOwner;
  /** Whether a flush would be written now (polling: a GET is waiting; WebSocket: open). */
  readonly writable: boolean;
  /**
   * Whether a packet written now leaves at once with nothing before it — engine.io's
   * `writable`, the condition for a volatile packet: polling, a GET is waiting; WebSocket,
   * no frame is queued and the socket has written everything it was given.
   */
  readonly idle: boolean;
  /** Bytes handed to this transport but not yet to the kernel. */
  readonly bufferedAmount: number;
  /** Writes the packets (polling: answers the pending GET with one payload). */
  send(packets: readonly OutboundPacket[], compress: boolean): void;
  /** Writes one packet (the hot path of a WebSocket session). */
  sendOne(packet: OutboundPacket, compress: boolean): void;
  /** Ends gracefully (polling: the pending or next GET receives a close packet). */
  close(): void;
  /** Ends now, without a goodbye. Idempotent. */
  destroy(): void;
}

/** How a transport reports to the session that owns it. */
export interface TransportOwner {
  onPacket(packet: EnginePacket, transport: Transport): void;
  /** A polling GET arrived: the session may flush what it buffered. */
  onWritable?(transport: Transport): void;
  /** The transport failed or the peer went away; `reason` is an engine.io close reason. */
  onTransportClose(transport: Transport, reason: string, description?: string): void;
}

/** Placeholder owner of a transport not yet adopted by a session. */
export const DETACHED: TransportOwner = {
  onPacket() {},
  onTransportClose() {},
};

/** Decodes one Engine.IO packet of a WebSocket message, or says why it is not one. */
export function decodeOrReason(data: string | Buffer): EnginePacket | string {
  try {
    return decodeEnginePacket(data);
  } catch (err) {
    return err instanceof ProtocolError ? err.message : "bad packet";
  }
}
