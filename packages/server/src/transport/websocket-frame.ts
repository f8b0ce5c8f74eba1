/**
 * Server-to-client WebSocket frames (RFC 6455 §5.2): FIN set, unmasked, one frame per
 * message. Built once per outbound packet and written to every recipient's socket as is,
 * instead of letting `ws` allocate and write a header per recipient.
 */

const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;

/** The frame carrying `payload` as one text (UTF-8 string or bytes) or binary message. */
export function buildFrame(payload: Buffer | string, binary: boolean): Buffer {
  // A string is encoded straight into the frame: no intermediate Buffer.
  const len = typeof payload === "string" ? Buffer.byteLength(payload) : payload.length;
  const header = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + len);
  frame[0] = FIN | (binary ? OPCODE_BINARY : OPCODE_TEXT);
  if (len < 126) {
    frame[1] = len;
  } else if (len < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 0x1_0000_0000), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  if (typeof payload === "string") frame.write(payload, header);
  else payload.copy(frame, header);
  return frame;
}
