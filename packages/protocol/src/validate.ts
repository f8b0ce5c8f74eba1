/**
 * Validation of packets that some other decoder produced (msgpack, a user-supplied
 * socket.io parser): the same rules the text decoder applies while parsing, applied
 * after the fact to an object graph. The walk is iterative, and it refuses any object
 * whose prototype is not the standard one, because decoders such as notepack.io
 * assign map keys with `obj[key] = value`, so a peer's "__proto__" key becomes that
 * object's prototype (and its properties show up as inherited ones).
 */
import { isArrayBuffer, isDate } from "node:util/types";
import { ProtocolErrorCode } from "./errors.js";
import {
  checkAckId,
  checkNamespace,
  checkShape,
  type DecodeLimits,
  type DecoderOptions,
  fail,
  isPlainObject,
  isTypeDigit,
  PacketType,
  resolveLimits,
  type SocketPacket,
} from "./packet.js";

const isOwnEnumerable = Object.prototype.propertyIsEnumerable;

/** An own enumerable property, never an inherited one. */
function ownValue(obj: object, key: string): unknown {
  return isOwnEnumerable.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}

/** Internal-slot checks, so an object that merely inherits from a Buffer is not binary. */
function isBinaryValue(value: object): boolean {
  return ArrayBuffer.isView(value) || isArrayBuffer(value);
}

/**
 * Walks `data` without recursion. Depth counts containers the way the text decoder's
 * scan counts brackets (the payload itself is level 1), and a binary value counts as
 * one level because on the text wire it is a placeholder object. Dates (msgpack has
 * a timestamp type) are leaves, as their JSON form is a string.
 */
export function checkData(data: unknown, limits: DecodeLimits): void {
  const { maxAttachments, maxDepth } = limits;
  const values: unknown[] = [data];
  const depths: number[] = [1];
  let binaries = 0;
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop() as number;
    switch (typeof v) {
      case "string":
      case "number":
      case "boolean":
      case "undefined":
        continue;
      case "object":
        if (v === null) continue;
        break;
      default:
        throw fail(ProtocolErrorCode.BAD_PACKET, `payload holds a ${typeof v}`);
    }
    if (isDate(v)) continue;
    if (depth > maxDepth) {
      throw fail(ProtocolErrorCode.NESTING_TOO_DEEP, `payload nests deeper than ${maxDepth}`);
    }
    if (isBinaryValue(v)) {
      if (++binaries > maxAttachments) {
        throw fail(
          ProtocolErrorCode.TOO_MANY_ATTACHMENTS,
          `more than ${maxAttachments} binary values in one packet`,
        );
      }
      continue;
    }
    if (Array.isArray(v)) {
      if (Object.getPrototypeOf(v) !== Array.prototype) {
        throw fail(ProtocolErrorCode.BAD_PACKET, "payload array has a foreign prototype");
      }
      for (let i = v.length - 1; i >= 0; i--) {
        values.push(v[i]);
        depths.push(depth + 1);
      }
      continue;
    }
    if (!isPlainObject(v)) {
      throw fail(
        ProtocolErrorCode.BAD_PACKET,
        'payload object is not plain (a "__proto__" key, or a class instance)',
      );
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      values.push(v[keys[i] as string]);
      depths.push(depth + 1);
    }
  }
}

/**
 * {@link validateSocketPacket} with limits already resolved: what decoders call per
 * message, so options are parsed once per decoder rather than once per packet.
 */
export function validatePacket(raw: unknown, limits: DecodeLimits): SocketPacket {
  if (!isPlainObject(raw)) {
    throw fail(ProtocolErrorCode.BAD_PACKET, "packet must be a plain object");
  }
  const rawType = ownValue(raw, "type");
  if (!isTypeDigit(rawType)) {
    throw fail(
      ProtocolErrorCode.UNKNOWN_PACKET_TYPE,
      `unknown Socket.IO packet type ${typeof rawType === "number" ? rawType : typeof rawType}`,
    );
  }
  let type: PacketType = rawType;
  const nsp = ownValue(raw, "nsp");
  checkNamespace(nsp);
  const id = ownValue(raw, "id");
  checkAckId(id);
  const data = ownValue(raw, "data");
  checkData(data, limits);
  checkShape(rawType, data, id);
  if (type === PacketType.BINARY_EVENT) type = PacketType.EVENT;
  else if (type === PacketType.BINARY_ACK) type = PacketType.ACK;
  const packet: SocketPacket = { type, nsp };
  if (data !== undefined) packet.data = data;
  if (id !== undefined) packet.id = id;
  return packet;
}

/**
 * Checks a packet object produced by another decoder (e.g. msgpack's
 * `{ type, nsp, data?, id? }`) against the rules of the text decoder, and returns a
 * fresh {@link SocketPacket} built from `raw`'s own enumerable `type`, `nsp`, `data` and
 * `id` only (other keys, such as socket.io-client's `options`, are dropped).
 * BINARY_EVENT/BINARY_ACK become EVENT/ACK, since such decoders carry binary inline.
 * `data` is returned as is (not copied) once the iterative walk has found only
 * primitives, binary values, Dates, arrays and plain objects, at most `maxDepth`
 * deep and with at most `maxAttachments` binary values.
 *
 * Throws ProtocolError with the text decoder's codes (SY_ERR_UNKNOWN_PACKET_TYPE,
 * SY_ERR_BAD_NAMESPACE, SY_ERR_BAD_ACK_ID, SY_ERR_BAD_EVENT, SY_ERR_BAD_PACKET,
 * SY_ERR_NESTING_TOO_DEEP, SY_ERR_TOO_MANY_ATTACHMENTS), or SwitchyardError
 * SY_ERR_INVALID_OPTION for bad `limits`.
 */
export function validateSocketPacket(raw: unknown, limits?: DecoderOptions): SocketPacket {
  return validatePacket(raw, resolveLimits(limits));
}
