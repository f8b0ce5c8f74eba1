/**
 * The one encoder of everything a Switchyard node publishes on a python-socketio
 * message-queue channel (see /work/shared/flask-socketio-queue.md, §5b).
 *
 * Why one function that never throws: a python-socketio 5.7.2 listener dies for good on a
 * message that is not a JSON object with a `method` (a list containing "method" passes
 * its `'method' in data` check and kills the listening thread outside its `try`). So every
 * byte this node puts on that channel comes out of {@link encodePeerMessage}, whose result
 * is either the UTF-8 text of a JSON object whose first key is a known `method`, or a
 * refusal with a reason — never an exception, never anything else.
 */
import { hasBinary } from "@switchyard/protocol";

/**
 * The python-socketio version of the Flask-SocketIO nodes on the channel, which decides
 * the layout of published emits:
 * - `"5.7"` (≤ 5.13, Debian bookworm's 5.7.2): `data` is **one** argument, no `binary`
 *   key. Several arguments and binary data cannot be expressed in JSON to these nodes.
 * - `"5.14"` (5.14.0 – 5.15.0): the same field set (JSON era, `data` one argument); binary
 *   is refused as well (5.14.0/5.14.1 cannot read it).
 * - `"5.15"` (5.15.1+): `data` is the argument list, `binary` plus base64 attachments.
 */
export type PythonSocketIOVersion = "5.7" | "5.14" | "5.15";

/** The versions {@link encodePeerMessage} knows. */
export const PYTHON_SOCKETIO_VERSIONS: readonly PythonSocketIOVersion[] = Object.freeze([
  "5.7",
  "5.14",
  "5.15",
]);

/** What a room/sid field may hold on the Python channel. */
export type PeerTarget = string | readonly string[] | null;

/** A message this node publishes on the Python channel, before encoding. */
export type PeerMessage =
  | {
      readonly method: "emit";
      readonly event: string;
      readonly args: readonly unknown[];
      readonly namespace: string;
      readonly room: PeerTarget;
      readonly skipSid: PeerTarget;
      /** `[room, namespace, ackId]`: Python nodes reply with `callback` messages to `hostId`. */
      readonly callback: readonly [string, string, number] | null;
      readonly hostId: string;
    }
  | {
      readonly method: "callback";
      /** The host id of the node that asked (the emit's `host_id`), not ours. */
      readonly hostId: string;
      readonly sid: string;
      readonly namespace: string;
      readonly id: number;
      readonly args: readonly unknown[];
    }
  | {
      readonly method: "disconnect";
      readonly sid: string;
      readonly namespace: string;
      readonly hostId: string;
    }
  | {
      readonly method: "close_room";
      readonly room: string;
      readonly namespace: string;
      readonly hostId: string;
    };

/** The outcome of {@link encodePeerMessage}. */
export type PeerEncoding =
  | { readonly ok: true; readonly bytes: Buffer }
  | { readonly ok: false; readonly reason: string };

/** Event names python-socketio and Socket.IO clients treat specially; never published. */
const RESERVED = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

/** Largest body published (Python nodes hold each message in memory twice). */
export const MAX_PEER_MESSAGE_BYTES = 1024 * 1024;

function refuse(reason: string): PeerEncoding {
  return { ok: false, reason };
}

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 1024;
}

function isNamespace(value: unknown): value is string {
  return isName(value) && value.charCodeAt(0) === 0x2f;
}

function isTarget(value: unknown): boolean {
  if (value === null || isName(value)) return true;
  if (!Array.isArray(value) || value.length === 0 || value.length > 10000) return false;
  for (const v of value) if (!isName(v)) return false;
  return true;
}

function isAckId(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isHostId(value: unknown): value is string {
  return typeof value === "string" && /^[0-9a-f]{32}$/.test(value);
}

/**
 * `value` with every binary replaced by `{"_placeholder": true, "num": n}` (depth-first, as
 * socket.io-parser and python-socketio number them), the buffers collected in `out`.
 * Objects are copied with null prototypes, so a `__proto__` key stays a key.
 */
function withPlaceholders(value: unknown, out: Buffer[], depth: number): unknown {
  if (value === null || typeof value !== "object") return value;
  if (depth > 1000) throw new Error("data nested too deeply");
  if (ArrayBuffer.isView(value)) {
    out.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    return { _placeholder: true, num: out.length - 1 };
  }
  if (value instanceof ArrayBuffer) {
    out.push(Buffer.from(value));
    return { _placeholder: true, num: out.length - 1 };
  }
  if (Array.isArray(value)) return value.map((v) => withPlaceholders(v, out, depth + 1));
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === "function") return withPlaceholders(json.call(value), out, depth + 1);
  const copy: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value)) {
    copy[key] = withPlaceholders((value as Record<string, unknown>)[key], out, depth + 1);
  }
  return copy;
}

/** The `data` field (and `binary` flag) of an emit in `version`'s layout, or a refusal reason. */
function emitData(
  args: readonly unknown[],
  version: PythonSocketIOVersion,
): { data: unknown; binary?: boolean } | string {
  if (!Array.isArray(args)) return "args is not an array";
  if (version === "5.15") {
    if (!hasBinary(args)) return { data: [...args], binary: false };
    const buffers: Buffer[] = [];
    const data = withPlaceholders([...args], buffers, 0);
    return { data: [data, ...buffers.map((b) => b.toString("base64"))], binary: true };
  }
  if (args.length > 1) {
    return `${args.length} arguments cannot be expressed to python-socketio ${version} nodes (one argument at most)`;
  }
  if (hasBinary(args)) {
    return `binary data cannot be expressed to python-socketio ${version} nodes`;
  }
  // No argument: `data` None, which Python delivers as no argument. `undefined` goes as
  // null (Socket.IO sends it as null as well).
  return { data: args.length === 0 || args[0] === undefined ? null : args[0] };
}

function build(msg: PeerMessage, version: PythonSocketIOVersion): Record<string, unknown> | string {
  if (msg === null || typeof msg !== "object") return "not a message";
  if (!isNamespace(msg.namespace)) return "namespace must be a string starting with /";
  switch (msg.method) {
    case "emit": {
      if (!isName(msg.event)) return "event must be a non-empty string";
      if (RESERVED.has(msg.event)) return `"${msg.event}" is a reserved event name`;
      if (!isTarget(msg.room)) return "room must be null, a string or a non-empty list of strings";
      if (!isTarget(msg.skipSid)) return "skip_sid must be null, a string or a list of strings";
      if (!isHostId(msg.hostId)) return "host_id must be 32 lowercase hex digits";
      const cb = msg.callback;
      if (
        cb !== null &&
        !(
          Array.isArray(cb) &&
          cb.length === 3 &&
          isName(cb[0]) &&
          isNamespace(cb[1]) &&
          isAckId(cb[2])
        )
      ) {
        return "callback must be null or [room, namespace, id]";
      }
      if (cb !== null && typeof msg.room !== "string") return "a callback needs one room";
      const d = emitData(msg.args, version);
      if (typeof d === "string") return d;
      // Key order as python-socketio writes it; `binary` only where the version reads it.
      const out: Record<string, unknown> = { method: "emit", event: msg.event, data: d.data };
      if (d.binary !== undefined) out.binary = d.binary;
      out.namespace = msg.namespace;
      out.room = msg.room;
      out.skip_sid = msg.skipSid;
      out.callback = cb === null ? null : [cb[0], cb[1], cb[2]];
      out.host_id = msg.hostId;
      return out;
    }
    case "callback": {
      if (!isHostId(msg.hostId)) return "host_id must be 32 lowercase hex digits";
      if (!isName(msg.sid)) return "sid must be a non-empty string";
      if (!isAckId(msg.id)) return "id must be a non-negative integer";
      if (!Array.isArray(msg.args)) return "args is not an array";
      if (hasBinary(msg.args)) return "binary ack arguments cannot be expressed to Python nodes";
      return {
        method: "callback",
        host_id: msg.hostId,
        sid: msg.sid,
        namespace: msg.namespace,
        id: msg.id,
        args: [...msg.args],
      };
    }
    case "disconnect":
      if (!isName(msg.sid)) return "sid must be a non-empty string";
      if (!isHostId(msg.hostId)) return "host_id must be 32 lowercase hex digits";
      return { method: "disconnect", sid: msg.sid, namespace: msg.namespace, host_id: msg.hostId };
    case "close_room":
      if (!isName(msg.room)) return "room must be a non-empty string";
      if (!isHostId(msg.hostId)) return "host_id must be 32 lowercase hex digits";
      return {
        method: "close_room",
        room: msg.room,
        namespace: msg.namespace,
        host_id: msg.hostId,
      };
    default:
      return `unknown method ${JSON.stringify(String((msg as { method: unknown }).method))}`;
  }
}

/**
 * Encodes `msg` as the JSON body Python nodes of `version` read. Never throws: data JSON
 * cannot hold (BigInt, cycles, a throwing `toJSON`), shapes a version cannot read (several
 * arguments or binary for `"5.7"`/`"5.14"`), reserved event names, malformed fields and
 * bodies over {@link MAX_PEER_MESSAGE_BYTES} come back as `{ ok: false, reason }`.
 * A success is always the UTF-8 text of a JSON object starting with `{"method":`.
 */
export function encodePeerMessage(msg: PeerMessage, version: PythonSocketIOVersion): PeerEncoding {
  try {
    if (!PYTHON_SOCKETIO_VERSIONS.includes(version)) return refuse(`unknown version ${version}`);
    const obj = build(msg, version);
    if (typeof obj === "string") return refuse(obj);
    const text = JSON.stringify(obj);
    // Structural guard: whatever happened above, only an object with `method` first leaves.
    if (typeof text !== "string" || !text.startsWith('{"method":"')) {
      return refuse("encoding did not produce a JSON object");
    }
    // Well-formed JSON.stringify escapes lone surrogates, so this is valid UTF-8.
    const bytes = Buffer.from(text, "utf8");
    if (bytes.length > MAX_PEER_MESSAGE_BYTES) {
      return refuse(`message of ${bytes.length} bytes exceeds ${MAX_PEER_MESSAGE_BYTES}`);
    }
    return { ok: true, bytes };
  } catch (error) {
    return refuse(
      `data cannot be encoded as JSON: ${error instanceof Error ? error.message : "a non-Error was thrown"}`,
    );
  }
}
