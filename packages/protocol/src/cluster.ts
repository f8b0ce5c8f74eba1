/**
 * The cluster (bus) message formats, as pure functions over bytes. Two families:
 *
 * 1. Socket.IO-compatible, so publishers written for socket.io's Redis adapter keep
 *    working: broadcasts on `socket.io#<nsp>#[<room>#]` as the msgpack array
 *    `[uid, packet, opts]`, and the JSON requests of `@socket.io/redis-emitter` on
 *    `socket.io-request#<nsp>#`.
 * 2. Switchyard's own control messages on `switchyard#<nsp>#[<uid>#]`: a msgpack map
 *    `{ v, type, uid, ... }` for membership, requests and their responses.
 *
 * docs/wire-format.md is the normative description (a Python service publishes from
 * it); this module is its executable form. Nothing here trusts its input: msgpack is
 * scanned before notepack.io sees it, every field is read as an own property, and
 * payloads pass the same checks as packets from clients. Decoders throw only
 * {@link ProtocolError}: SY_ERR_UNKNOWN_PACKET_TYPE for well-formed messages of a
 * version or type this code does not speak (a newer node, a foreign adapter), any
 * other code for malformed bytes.
 */
import { isUint8Array } from "node:util/types";
import { decode, encode } from "notepack.io";
import { exceedsDepth } from "./binary.js";
import { ProtocolError, ProtocolErrorCode } from "./errors.js";
import { prepareData, scanMsgpack } from "./msgpack.js";
import {
  checkNamespace,
  type DecodeLimits,
  type DecoderOptions,
  fail,
  isPlainObject,
  PacketType,
  resolveLimits,
  type SocketPacket,
} from "./packet.js";
import { checkData, validatePacket } from "./validate.js";

/** Version of the Switchyard control format (`v` of every control message). */
export const CLUSTER_WIRE_VERSION = 1;

/** The uid `@socket.io/redis-emitter` (and our Emitter) publishes broadcasts under. */
export const EMITTER_UID = "emitter";

/** Longest uid or request id accepted; real ones are ~16-40 characters. */
const MAX_ID_LENGTH = 128;

/**
 * Limits for bus messages. Payloads on the bus come from servers and publishers, not
 * browsers, and a payload a node may emit locally must not be refused by its peers, so
 * the defaults are the encoders' own bounds: 1000 levels, any number of binary values.
 */
const CLUSTER_LIMITS: DecodeLimits = Object.freeze({
  maxAttachments: Number.MAX_SAFE_INTEGER,
  maxDepth: 1000,
});

/** Levels of wrapping around payload data in the deepest message (fetch-res sockets). */
const WRAPPING_LEVELS = 4;

// ---------------------------------------------------------------------------------
// Channels

/** `socket.io#<nsp>#`, or `socket.io#<nsp>#<room>#` for a broadcast to exactly one room. */
export function broadcastChannel(nsp: string, room?: string): string {
  return room === undefined ? `socket.io#${nsp}#` : `socket.io#${nsp}#${room}#`;
}

/**
 * The channel a broadcast to `rooms` is published on: the room's own channel when it
 * targets exactly one room (only nodes holding a socket in it subscribe), else the
 * namespace channel. The same rule as `@socket.io/redis-emitter`.
 */
export function broadcastChannelFor(nsp: string, rooms: Iterable<string>): string {
  let only: string | undefined;
  let n = 0;
  for (const room of rooms) {
    if (++n > 1) return broadcastChannel(nsp);
    only = room;
  }
  return broadcastChannel(nsp, only);
}

/** `socket.io-request#<nsp>#`: where `@socket.io/redis-emitter` publishes its JSON requests. */
export function emitterRequestChannel(nsp: string): string {
  return `socket.io-request#${nsp}#`;
}

/** `switchyard#<nsp>#` (every node of the namespace) or `switchyard#<nsp>#<uid>#` (one node). */
export function controlChannel(nsp: string, uid?: string): string {
  return uid === undefined ? `switchyard#${nsp}#` : `switchyard#${nsp}#${uid}#`;
}

// ---------------------------------------------------------------------------------
// Shared shapes

/** Flags carried with a broadcast (socket.io's names). */
export interface ClusterBroadcastFlags {
  volatile?: boolean;
  compress?: boolean;
  local?: boolean;
  timeout?: number;
}

/** Which sockets a request or broadcast targets: union of `rooms` (all if empty) minus `except`. */
export interface ClusterTarget {
  rooms: string[];
  except: string[];
}

/** Target and flags of a broadcast. */
export interface ClusterBroadcastOptions extends ClusterTarget {
  flags: ClusterBroadcastFlags;
}

/** Format 1: one broadcast, `[uid, packet, opts]` on a `socket.io#…` channel. */
export interface ClusterBroadcast {
  /** Publisher; receivers ignore their own. `"emitter"` for emitters. */
  uid: string;
  /** An EVENT packet; an `id` on the wire is kept here but means nothing to other nodes. */
  packet: SocketPacket;
  opts: ClusterBroadcastOptions;
}

/** A socket as described in a `fetch-res`. */
export interface ClusterSocketInfo {
  id: string;
  handshake: Record<string, unknown>;
  rooms: string[];
  data: unknown;
}

/** Format 1b: a request of `@socket.io/redis-emitter` (JSON on `socket.io-request#<nsp>#`). */
export type EmitterRequest =
  | { type: "join"; opts: ClusterTarget; rooms: string[] }
  | { type: "leave"; opts: ClusterTarget; rooms: string[] }
  | { type: "disconnect"; opts: ClusterTarget; close: boolean }
  | { type: "serverSideEmit"; data: unknown[] };

/** socket.io-adapter's RequestType numbers for the requests an emitter sends. */
const EMITTER_TYPES = Object.freeze({
  join: 2,
  leave: 3,
  disconnect: 4,
  serverSideEmit: 6,
});

/**
 * Format 2: Switchyard control messages. Every one carries `v` (on the wire) and the
 * sender's `uid`; `rid` ties responses to their request.
 */
export type ControlMessage =
  /** A node subscribed to the namespace; peers answer with a `heartbeat` to its own channel. */
  | { type: "hello"; uid: string }
  /** A node is alive (every `heartbeatInterval`). */
  | { type: "heartbeat"; uid: string }
  /** A node leaves cleanly; peers drop it at once. */
  | { type: "bye"; uid: string }
  /** fetchSockets: every addressed node answers one `fetch-res`. */
  | { type: "fetch"; uid: string; rid: string; opts: ClusterTarget }
  | { type: "fetch-res"; uid: string; rid: string; sockets: ClusterSocketInfo[] }
  /** socketsJoin / socketsLeave / disconnectSockets: no response. */
  | { type: "join"; uid: string; opts: ClusterTarget; rooms: string[] }
  | { type: "leave"; uid: string; opts: ClusterTarget; rooms: string[] }
  | { type: "disconnect"; uid: string; opts: ClusterTarget; close: boolean }
  /** serverSideEmit; with `rid` every node answers one `emit-res` (its callback's arguments). */
  | { type: "emit"; uid: string; rid?: string; data: unknown[] }
  | { type: "emit-res"; uid: string; rid: string; args: unknown[] }
  /** A broadcast expecting client acks: one `broadcast-count`, then one `broadcast-ack` per client ack. */
  | {
      type: "broadcast";
      uid: string;
      rid: string;
      packet: SocketPacket;
      opts: ClusterBroadcastOptions;
    }
  | { type: "broadcast-count"; uid: string; rid: string; count: number }
  | { type: "broadcast-ack"; uid: string; rid: string; args: unknown[] };

/** The `type` strings of {@link ControlMessage}. */
export type ControlMessageType = ControlMessage["type"];

/** Limits of the cluster decoders; the defaults fit bus traffic (see CLUSTER_LIMITS). */
export type ClusterDecodeOptions = DecoderOptions;

// ---------------------------------------------------------------------------------
// Reading untrusted values

const isOwnEnumerable = Object.prototype.propertyIsEnumerable;

/** An own property only: notepack.io lets a `__proto__` key set an object's prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return isOwnEnumerable.call(obj, key) ? obj[key] : undefined;
}

function bad(what: string): ProtocolError {
  return fail(ProtocolErrorCode.BAD_PACKET, `cluster message: ${what}`);
}

function unsupported(what: string): ProtocolError {
  return fail(ProtocolErrorCode.UNKNOWN_PACKET_TYPE, `cluster message: ${what}`);
}

function readMap(v: unknown, what: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw bad(`${what} must be a map`);
  return v;
}

function readId(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw bad(`${what} must be a string of 1..${MAX_ID_LENGTH} characters`);
  }
  return v;
}

function readStrings(v: unknown, what: string, optional: boolean): string[] {
  if (v === undefined && optional) return [];
  if (!Array.isArray(v) || Object.getPrototypeOf(v) !== Array.prototype) {
    throw bad(`${what} must be an array of strings`);
  }
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== "string") throw bad(`${what} must be an array of strings`);
  }
  return v as string[];
}

function readBool(v: unknown, what: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw bad(`${what} must be a boolean`);
  return v;
}

function readTarget(v: unknown): ClusterTarget {
  const m = readMap(v, "opts");
  return {
    rooms: readStrings(own(m, "rooms"), "opts.rooms", true),
    except: readStrings(own(m, "except"), "opts.except", true),
  };
}

function readFlags(v: unknown): ClusterBroadcastFlags {
  const flags: ClusterBroadcastFlags = {};
  if (v === undefined || v === null) return flags;
  const m = readMap(v, "opts.flags");
  const volatile = readBool(own(m, "volatile"), "flags.volatile");
  if (volatile !== undefined) flags.volatile = volatile;
  const compress = readBool(own(m, "compress"), "flags.compress");
  if (compress !== undefined) flags.compress = compress;
  const local = readBool(own(m, "local"), "flags.local");
  if (local !== undefined) flags.local = local;
  const timeout = own(m, "timeout");
  if (timeout !== undefined && timeout !== null) {
    if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
      throw bad("flags.timeout must be a non-negative number");
    }
    flags.timeout = timeout;
  }
  // Other keys (socket.io's `broadcast`, `binary`, …) mean nothing here: ignored.
  return flags;
}

function readBroadcastOptions(v: unknown): ClusterBroadcastOptions {
  const m = readMap(v, "opts");
  return { ...readTarget(m), flags: readFlags(own(m, "flags")) };
}

/** A broadcast packet: a valid Socket.IO EVENT (BINARY_EVENT normalized). */
function readEventPacket(v: unknown, limits: DecodeLimits): SocketPacket {
  const packet = validatePacket(v, limits);
  if (packet.type !== PacketType.EVENT) throw bad("a broadcast packet must be an EVENT");
  return packet;
}

/** `[event: string, ...args]`, checked like an EVENT payload. */
function readEventData(v: unknown, limits: DecodeLimits): unknown[] {
  if (!Array.isArray(v) || v.length === 0 || typeof v[0] !== "string") {
    throw fail(
      ProtocolErrorCode.BAD_EVENT,
      "cluster message: data must be [event: string, ...args]",
    );
  }
  checkData(v, limits);
  return v;
}

function readArgs(v: unknown, limits: DecodeLimits): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw bad("args must be an array");
  checkData(v, limits);
  return v;
}

function readCount(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw bad("count must be a non-negative integer");
  }
  return v;
}

function readSockets(v: unknown, limits: DecodeLimits): ClusterSocketInfo[] {
  if (!Array.isArray(v)) throw bad("sockets must be an array");
  const out: ClusterSocketInfo[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const m = readMap(v[i], "a socket");
    const handshake = readMap(own(m, "handshake") ?? {}, "socket.handshake");
    checkData(handshake, limits);
    const data = own(m, "data");
    checkData(data, limits);
    out[i] = {
      id: readId(own(m, "id"), "socket.id"),
      handshake,
      rooms: readStrings(own(m, "rooms"), "socket.rooms", true),
      data,
    };
  }
  return out;
}

function toBuffer(bytes: Uint8Array | ArrayBuffer): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (isUint8Array(bytes)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes instanceof ArrayBuffer) return Buffer.from(bytes);
  throw bad("payload must be bytes");
}

/** Scan first (bounded, non-recursive), then notepack.io. */
function decodeMsgpackValue(bytes: Uint8Array | ArrayBuffer, limits: DecodeLimits): unknown {
  const buf = toBuffer(bytes);
  scanMsgpack(buf, limits.maxDepth + WRAPPING_LEVELS);
  try {
    return decode(buf);
  } catch (cause) {
    throw fail(ProtocolErrorCode.BAD_PACKET, "cluster message: msgpack does not decode", cause);
  }
}

function encodeMsgpackValue(value: unknown): Buffer {
  try {
    return encode(value) as Buffer;
  } catch (cause) {
    if (cause instanceof ProtocolError) throw cause;
    throw fail(ProtocolErrorCode.BAD_PACKET, "cluster message cannot be encoded as msgpack", cause);
  }
}

function limitsOf(opts: ClusterDecodeOptions | undefined): DecodeLimits {
  return opts === undefined ? CLUSTER_LIMITS : resolveLimits({ ...CLUSTER_LIMITS, ...opts });
}

function checkOutgoingId(v: string, what: string): void {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw bad(`${what} must be a string of 1..${MAX_ID_LENGTH} characters`);
  }
}

// ---------------------------------------------------------------------------------
// Format 1: broadcasts

/** The wire form of flags: only the flags that are set, in socket.io's key names. */
function wireFlags(flags: ClusterBroadcastFlags | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (flags === undefined) return out;
  if (flags.volatile !== undefined) out.volatile = flags.volatile;
  if (flags.compress !== undefined) out.compress = flags.compress;
  if (flags.local !== undefined) out.local = flags.local;
  if (flags.timeout !== undefined) out.timeout = flags.timeout;
  return out;
}

/** The wire form of a packet: `{ type, data, nsp[, id] }`, socket.io-parser's key order. */
function wirePacket(packet: SocketPacket): Record<string, unknown> {
  if (packet.type !== PacketType.EVENT && packet.type !== PacketType.BINARY_EVENT) {
    throw bad("a broadcast packet must be an EVENT");
  }
  checkNamespace(packet.nsp);
  const data = packet.data;
  if (!Array.isArray(data) || data.length === 0 || typeof data[0] !== "string") {
    throw fail(ProtocolErrorCode.BAD_EVENT, "EVENT payload must be [name: string, ...args]");
  }
  const out: Record<string, unknown> = {
    type: PacketType.EVENT,
    data: prepareData(data),
    nsp: packet.nsp,
  };
  if (packet.id !== undefined) out.id = packet.id;
  return out;
}

/**
 * Encodes a broadcast as `@socket.io/redis-emitter` does: the msgpack array
 * `[uid, { type: 2, data, nsp }, { rooms, flags, except }]` (same key order, so the
 * same input gives the same bytes). Binary values become msgpack `bin`.
 */
export function encodeClusterBroadcast(msg: ClusterBroadcast): Buffer {
  checkOutgoingId(msg.uid, "uid");
  return encodeMsgpackValue([
    msg.uid,
    wirePacket(msg.packet),
    { rooms: msg.opts.rooms, flags: wireFlags(msg.opts.flags), except: msg.opts.except },
  ]);
}

/**
 * The first bytes of every broadcast `uid` publishes (`[uid, …` in msgpack), so a node
 * can recognise its own echoes with one comparison instead of a decode.
 */
export function broadcastPrefix(uid: string): Buffer {
  checkOutgoingId(uid, "uid");
  const prefix = encodeMsgpackValue([uid]);
  prefix[0] = 0x93; // fixarray of 3 items instead of 1
  return prefix;
}

/**
 * Decodes a broadcast published on a `socket.io#…` channel. `opts.rooms`/`except`
 * may be absent (empty), `flags` may be absent; unknown flag keys are ignored. Throws
 * ProtocolError.
 */
export function decodeClusterBroadcast(
  bytes: Uint8Array | ArrayBuffer,
  opts?: ClusterDecodeOptions,
): ClusterBroadcast {
  const limits = limitsOf(opts);
  const raw = decodeMsgpackValue(bytes, limits);
  if (!Array.isArray(raw) || raw.length < 3) {
    throw bad("a broadcast must be the array [uid, packet, opts]");
  }
  return {
    uid: readId(raw[0], "uid"),
    packet: readEventPacket(raw[1], limits),
    opts: readBroadcastOptions(raw[2]),
  };
}

// ---------------------------------------------------------------------------------
// Format 1b: @socket.io/redis-emitter requests (JSON)

/**
 * Encodes a request exactly as `@socket.io/redis-emitter` 5 does (JSON text, same key
 * order), as UTF-8 bytes.
 */
export function encodeEmitterRequest(req: EmitterRequest): Buffer {
  let json: string;
  switch (req.type) {
    case "join":
    case "leave":
      json = JSON.stringify({
        type: EMITTER_TYPES[req.type],
        opts: { rooms: req.opts.rooms, except: req.opts.except },
        rooms: req.rooms,
      });
      break;
    case "disconnect":
      json = JSON.stringify({
        type: EMITTER_TYPES.disconnect,
        opts: { rooms: req.opts.rooms, except: req.opts.except },
        close: req.close,
      });
      break;
    case "serverSideEmit":
      json = JSON.stringify({
        uid: EMITTER_UID,
        type: EMITTER_TYPES.serverSideEmit,
        data: req.data,
      });
      break;
  }
  return Buffer.from(json, "utf8");
}

/**
 * Decodes a JSON request from `socket.io-request#<nsp>#`. Types 2 (join), 3 (leave),
 * 4 (disconnect) and 6 (serverSideEmit, which an emitter sends without ack) are
 * understood; the request types socket.io adapters send each other (fetch, all rooms,
 * responses, …) are SY_ERR_UNKNOWN_PACKET_TYPE. Throws ProtocolError.
 */
export function decodeEmitterRequest(
  bytes: Uint8Array | ArrayBuffer | string,
  opts?: ClusterDecodeOptions,
): EmitterRequest {
  const limits = limitsOf(opts);
  const text = typeof bytes === "string" ? bytes : toBuffer(bytes).toString("utf8");
  if (exceedsDepth(text, limits.maxDepth + WRAPPING_LEVELS)) {
    throw fail(ProtocolErrorCode.NESTING_TOO_DEEP, "cluster request nests too deeply");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw fail(ProtocolErrorCode.BAD_JSON, "cluster request is not JSON", cause);
  }
  const m = readMap(raw, "a request");
  const type = own(m, "type");
  switch (type) {
    case EMITTER_TYPES.join:
    case EMITTER_TYPES.leave:
      return {
        type: type === EMITTER_TYPES.join ? "join" : "leave",
        opts: readTarget(own(m, "opts") ?? {}),
        rooms: readStrings(own(m, "rooms"), "rooms", false),
      };
    case EMITTER_TYPES.disconnect:
      return {
        type: "disconnect",
        opts: readTarget(own(m, "opts") ?? {}),
        close: readBool(own(m, "close"), "close") ?? false,
      };
    case EMITTER_TYPES.serverSideEmit:
      return { type: "serverSideEmit", data: readEventData(own(m, "data"), limits) };
    default:
      throw unsupported(
        `request type ${typeof type === "number" ? type : typeof type} is not an emitter's`,
      );
  }
}

// ---------------------------------------------------------------------------------
// Format 2: Switchyard control messages

const CONTROL_TYPES: ReadonlySet<string> = new Set<ControlMessageType>([
  "hello",
  "heartbeat",
  "bye",
  "fetch",
  "fetch-res",
  "join",
  "leave",
  "disconnect",
  "emit",
  "emit-res",
  "broadcast",
  "broadcast-count",
  "broadcast-ack",
]);

function wireTarget(t: ClusterTarget): Record<string, unknown> {
  return { rooms: t.rooms, except: t.except };
}

/**
 * Encodes a control message as the msgpack map `{ v: 1, type, uid, …fields }`.
 * Payload values (`data`, `args`, socket `data`/`handshake`) are prepared like packet
 * data (typed arrays → bin, `toJSON()`, Dates → ISO strings). Throws ProtocolError.
 */
export function encodeControlMessage(msg: ControlMessage): Buffer {
  checkOutgoingId(msg.uid, "uid");
  const out: Record<string, unknown> = { v: CLUSTER_WIRE_VERSION, type: msg.type, uid: msg.uid };
  switch (msg.type) {
    case "hello":
    case "heartbeat":
    case "bye":
      break;
    case "fetch":
      out.rid = msg.rid;
      out.opts = wireTarget(msg.opts);
      break;
    case "fetch-res":
      out.rid = msg.rid;
      out.sockets = msg.sockets.map((s) => ({
        id: s.id,
        handshake: prepareData(s.handshake),
        rooms: s.rooms,
        data: prepareData(s.data),
      }));
      break;
    case "join":
    case "leave":
      out.opts = wireTarget(msg.opts);
      out.rooms = msg.rooms;
      break;
    case "disconnect":
      out.opts = wireTarget(msg.opts);
      out.close = msg.close;
      break;
    case "emit":
      if (msg.rid !== undefined) out.rid = msg.rid;
      out.data = prepareData(msg.data);
      break;
    case "emit-res":
    case "broadcast-ack":
      out.rid = msg.rid;
      out.args = prepareData(msg.args);
      break;
    case "broadcast":
      out.rid = msg.rid;
      out.packet = wirePacket(msg.packet);
      out.opts = { ...wireTarget(msg.opts), flags: wireFlags(msg.opts.flags) };
      break;
    case "broadcast-count":
      out.rid = msg.rid;
      out.count = msg.count;
      break;
    default:
      throw bad(`unknown control type ${String((msg as { type: unknown }).type)}`);
  }
  if (out.rid !== undefined) checkOutgoingId(out.rid as string, "rid");
  return encodeMsgpackValue(out);
}

/**
 * Decodes a control message. A `v` other than 1, or a `type` this version does not
 * define, is SY_ERR_UNKNOWN_PACKET_TYPE (drop and count; never an error for the node);
 * unknown extra fields are ignored. Throws ProtocolError.
 */
export function decodeControlMessage(
  bytes: Uint8Array | ArrayBuffer,
  opts?: ClusterDecodeOptions,
): ControlMessage {
  const limits = limitsOf(opts);
  const m = readMap(decodeMsgpackValue(bytes, limits), "a control message");
  const v = own(m, "v");
  if (v !== CLUSTER_WIRE_VERSION) {
    throw unsupported(
      `version ${typeof v === "number" ? v : typeof v} (this node speaks ${CLUSTER_WIRE_VERSION})`,
    );
  }
  const type = own(m, "type");
  if (typeof type !== "string" || !CONTROL_TYPES.has(type)) {
    throw unsupported(
      `unknown type ${typeof type === "string" ? JSON.stringify(type.slice(0, 40)) : typeof type}`,
    );
  }
  const uid = readId(own(m, "uid"), "uid");
  const t = type as ControlMessageType;
  switch (t) {
    case "hello":
    case "heartbeat":
    case "bye":
      return { type: t, uid };
    case "fetch":
      return { type: t, uid, rid: readId(own(m, "rid"), "rid"), opts: readTarget(own(m, "opts")) };
    case "fetch-res":
      return {
        type: t,
        uid,
        rid: readId(own(m, "rid"), "rid"),
        sockets: readSockets(own(m, "sockets"), limits),
      };
    case "join":
    case "leave":
      return {
        type: t,
        uid,
        opts: readTarget(own(m, "opts")),
        rooms: readStrings(own(m, "rooms"), "rooms", false),
      };
    case "disconnect":
      return {
        type: t,
        uid,
        opts: readTarget(own(m, "opts")),
        close: readBool(own(m, "close"), "close") ?? false,
      };
    case "emit": {
      const rid = own(m, "rid");
      const data = readEventData(own(m, "data"), limits);
      return rid === undefined || rid === null
        ? { type: t, uid, data }
        : { type: t, uid, rid: readId(rid, "rid"), data };
    }
    case "emit-res":
    case "broadcast-ack":
      return {
        type: t,
        uid,
        rid: readId(own(m, "rid"), "rid"),
        args: readArgs(own(m, "args"), limits),
      };
    case "broadcast":
      return {
        type: t,
        uid,
        rid: readId(own(m, "rid"), "rid"),
        packet: readEventPacket(own(m, "packet"), limits),
        opts: readBroadcastOptions(own(m, "opts")),
      };
    case "broadcast-count":
      return { type: t, uid, rid: readId(own(m, "rid"), "rid"), count: readCount(own(m, "count")) };
  }
}
