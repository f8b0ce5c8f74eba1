/**
 * python-socketio's message-queue format, read: one message from the `flask-socketio` /
 * `socketio` channel (Redis) or fanout exchange (RabbitMQ) into a typed
 * {@link FlaskMessage}, or a {@link FlaskMessageError} saying why not. Pure, no I/O.
 *
 * Layouts (docs/flask-bridge.md has the details and captures):
 * - JSON (python-socketio ≥ 5.14, or a pickle-era publisher switched to JSON):
 *   without a `binary` key (5.14.0–5.14.1, 5.7.2 field set) `data` is one argument;
 *   with it (5.14.2+) `data` is the argument list (5.15.1+), or with
 *   `binaryLayout: "single"` one argument (5.14.2–5.15.0); `binary: true` means
 *   `data = [value with {_placeholder, num}, base64(att0), …]`.
 * - pickle (python-socketio < 5.14, Debian's 5.7.2): refused unless
 *   `legacyPickle: "data-only"`, then read by the restricted reader of pickle.ts; a
 *   `data` tuple is several arguments, anything else one, `bytes` are binary.
 */
import { isUtf8 } from "node:buffer";
import { SwitchyardError } from "@switchyard/server";
import { type PickleDict, type PickleValue, PyTuple, readPickle } from "./pickle.js";

/** Code of {@link FlaskMessageError}. */
export const FLASK_MESSAGE_REFUSED = "SY_ERR_FLASK_MESSAGE";

/**
 * Why a message was not accepted (the bridge counts each in its stats):
 * - `malformed`: not a JSON object / a pickled dict, or a field of the wrong type;
 * - `unsupported`: a well-formed message this reader does not handle (an unknown
 *   `method`), or a pickle body while `legacyPickle` is off;
 * - `pickle-refused`: a pickle the restricted reader refused (code opcodes, limits, cycles);
 * - `reserved-event`: an `emit` of an event name reserved by Socket.IO (`connect`, …);
 * - `too-large`: longer than `maxMessageBytes`.
 */
export type FlaskRefusal =
  | "malformed"
  | "unsupported"
  | "pickle-refused"
  | "reserved-event"
  | "too-large";

/** A message the reader refused; `reason` is the category counted in stats. */
export class FlaskMessageError extends SwitchyardError {
  /** The category of the refusal. */
  readonly reason: FlaskRefusal;
  /** True for a pickle body refused only because `legacyPickle` is off. */
  readonly isPickle: boolean;

  constructor(
    reason: FlaskRefusal,
    message: string,
    opts: { cause?: unknown; isPickle?: boolean } = {},
  ) {
    super(
      FLASK_MESSAGE_REFUSED,
      message,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.name = "FlaskMessageError";
    this.reason = reason;
    this.isPickle = opts.isPickle === true;
  }
}

/** How the body was encoded. */
export type FlaskEncoding = "json" | "pickle";

/** Which layout an `emit` was read with (for diagnostics and tests). */
export type FlaskEmitLayout =
  /** pickle of python-socketio < 5.14: a tuple is several arguments. */
  | "pickle"
  /** JSON without a `binary` key: `data` is one argument. */
  | "json-single"
  /** JSON with a `binary` key, `data` the argument list (5.15.1+). */
  | "json-arguments"
  /** JSON with a `binary` key, `data` one argument (5.14.2–5.15.0, opt-in). */
  | "json-binary-single";

interface Base {
  /** Namespace, `"/"` when absent. */
  readonly namespace: string;
  /** The sender's `host_id` (absent in 5.7.2's `disconnect` / `close_room`). */
  readonly hostId: string | undefined;
  readonly encoding: FlaskEncoding;
}

/** `emit`: an event to the sockets of `rooms` (all of the namespace when undefined) but `skipSids`. */
export interface FlaskEmit extends Base {
  readonly method: "emit";
  readonly event: string;
  /** Socket.IO arguments; bytes are `Buffer`s, dicts plain (JSON) or null-prototype (pickle) objects. */
  readonly args: unknown[];
  /** Room names (a socket id is a room too); `undefined` = every socket of the namespace. */
  readonly rooms: readonly string[] | undefined;
  /** Socket ids left out. */
  readonly skipSids: readonly string[];
  /** `[room, namespace, ackId]` of an emit that wants acks (only Python *servers* set it). */
  readonly callback:
    | { readonly room: string; readonly namespace: string; readonly id: number }
    | undefined;
  readonly layout: FlaskEmitLayout;
}

/** `callback`: a client's ack for the node whose `hostId` this is. */
export interface FlaskCallback extends Base {
  readonly method: "callback";
  /** The room of the original emit's `callback[0]` (not necessarily a socket id). */
  readonly sid: string;
  readonly id: number;
  readonly args: unknown[];
}

/** `disconnect`: server-side disconnect of socket `sid` of the namespace. */
export interface FlaskDisconnect extends Base {
  readonly method: "disconnect";
  readonly sid: string;
}

/** `close_room`: every socket of the namespace leaves `room`. */
export interface FlaskCloseRoom extends Base {
  readonly method: "close_room";
  readonly room: string;
}

/** `enter_room` / `leave_room` (5.10+): socket `sid` joins or leaves `room`. */
export interface FlaskRoomChange extends Base {
  readonly method: "enter_room" | "leave_room";
  readonly sid: string;
  readonly room: string;
}

/** One message of python-socketio's queue protocol. */
export type FlaskMessage =
  | FlaskEmit
  | FlaskCallback
  | FlaskDisconnect
  | FlaskCloseRoom
  | FlaskRoomChange;

/** The outcome of {@link decodeFlaskMessage}: never throws. */
export type FlaskDecodeResult =
  | { readonly ok: true; readonly message: FlaskMessage }
  | { readonly ok: false; readonly error: FlaskMessageError };

/** Options of {@link decodeFlaskMessage}. */
export interface FlaskDecodeOptions {
  /** `"data-only"` reads pickle bodies with the restricted reader; `false` refuses them. @default false */
  legacyPickle?: false | "data-only";
  /** How `data` is read when a JSON `emit` has a `binary` key: `"arguments"` (5.15.1+) or `"single"` (5.14.2–5.15.0). @default "arguments" */
  binaryLayout?: "arguments" | "single";
  /** Longest body in bytes. @default 1048576 */
  maxMessageBytes?: number;
  /** Deepest nesting of an argument. @default 32 */
  maxDepth?: number;
  /** Most binary attachments of one emit. @default 64 */
  maxAttachments?: number;
}

/** Event names Socket.IO reserves: never delivered from the bus. */
export const RESERVED_EVENT_NAMES: ReadonlySet<string> = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

const PICKLE_FIX =
  "pickle bodies (python-socketio < 5.14, e.g. Debian's 5.7.2) are refused: upgrade the publisher " +
  'to python-socketio >= 5.14 (JSON), publish JSON, or opt in with legacyPickle: "data-only"';

/**
 * Reads one message body. Returns `{ ok: false, error }` for anything it does not
 * accept; never throws, never executes anything from the body.
 */
export function decodeFlaskMessage(
  body: Uint8Array | string,
  options: FlaskDecodeOptions = {},
): FlaskDecodeResult {
  try {
    return { ok: true, message: decode(body, options) };
  } catch (err) {
    if (err instanceof FlaskMessageError) return { ok: false, error: err };
    return {
      ok: false,
      error: new FlaskMessageError("malformed", `unreadable message: ${String(err)}`, {
        cause: err,
      }),
    };
  }
}

function decode(body: Uint8Array | string, o: FlaskDecodeOptions): FlaskMessage {
  const max = o.maxMessageBytes ?? 1024 * 1024;
  const length = typeof body === "string" ? Buffer.byteLength(body) : body.length;
  if (length > max)
    throw new FlaskMessageError("too-large", `message of ${length} bytes (limit ${max})`);
  const ctx: Ctx = {
    maxDepth: o.maxDepth ?? 32,
    maxAttachments: o.maxAttachments ?? 64,
    binaryLayout: o.binaryLayout ?? "arguments",
  };
  if (typeof body !== "string" && body.length > 0 && body[0] === 0x80) {
    if (o.legacyPickle !== "data-only") {
      throw new FlaskMessageError("unsupported", PICKLE_FIX, { isPickle: true });
    }
    let value: PickleValue;
    try {
      value = readPickle(body, { maxBytes: max, maxDepth: ctx.maxDepth + 2 });
    } catch (err) {
      throw new FlaskMessageError("pickle-refused", (err as Error).message, { cause: err });
    }
    if (!isPickleDict(value)) throw new FlaskMessageError("malformed", "the pickle is not a dict");
    return fromFields(value as Fields, "pickle", ctx);
  }
  let text: string;
  if (typeof body === "string") text = body;
  else {
    if (!isUtf8(body))
      throw new FlaskMessageError("malformed", "the body is neither pickle nor UTF-8 JSON");
    text = Buffer.from(body.buffer, body.byteOffset, body.length).toString("utf8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FlaskMessageError("malformed", `the body is not JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FlaskMessageError("malformed", "the body is not a JSON object");
  }
  return fromFields(value as Fields, "json", ctx);
}

interface Ctx {
  readonly maxDepth: number;
  readonly maxAttachments: number;
  readonly binaryLayout: "arguments" | "single";
}

type Fields = Readonly<Record<string, unknown>>;

function isPickleDict(v: PickleValue): v is PickleDict {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof PyTuple) &&
    !Buffer.isBuffer(v)
  );
}

function field(f: Fields, key: string): unknown {
  return Object.hasOwn(f, key) ? f[key] : undefined;
}

function str(f: Fields, key: string): string {
  const v = field(f, key);
  if (typeof v !== "string") throw new FlaskMessageError("malformed", `"${key}" is not a string`);
  return v;
}

function namespaceOf(f: Fields): string {
  const v = field(f, "namespace");
  if (v === undefined || v === null) return "/";
  if (typeof v !== "string" || !v.startsWith("/")) {
    throw new FlaskMessageError("malformed", '"namespace" is not a string starting with "/"');
  }
  return v;
}

function hostIdOf(f: Fields): string | undefined {
  const v = field(f, "host_id");
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new FlaskMessageError("malformed", '"host_id" is not a string');
  return v;
}

/** Python sequences: a list, or a tuple in pickle. */
function sequence(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (v instanceof PyTuple) return v.items as unknown[];
  return undefined;
}

function strings(v: unknown, key: string): string[] {
  if (typeof v === "string") return [v];
  const seq = sequence(v);
  if (seq === undefined || !seq.every((s) => typeof s === "string")) {
    throw new FlaskMessageError("malformed", `"${key}" is not a string or a list of strings`);
  }
  return seq as string[];
}

function fromFields(f: Fields, encoding: FlaskEncoding, ctx: Ctx): FlaskMessage {
  const method = field(f, "method");
  if (typeof method !== "string")
    throw new FlaskMessageError("malformed", '"method" is missing or not a string');
  const namespace = namespaceOf(f);
  const hostId = hostIdOf(f);
  switch (method) {
    case "emit":
      return emitOf(f, namespace, hostId, encoding, ctx);
    case "callback": {
      const id = field(f, "id");
      if (typeof id !== "number" || !Number.isSafeInteger(id)) {
        throw new FlaskMessageError("malformed", '"id" is not an integer');
      }
      const raw = field(f, "args");
      const seq = raw === null || raw === undefined ? [] : sequence(raw);
      if (seq === undefined) throw new FlaskMessageError("malformed", '"args" is not a list');
      return {
        method,
        namespace,
        hostId,
        encoding,
        sid: str(f, "sid"),
        id,
        args: seq.map((a) => plain(a, ctx.maxDepth, 1)),
      };
    }
    case "disconnect":
      return { method, namespace, hostId, encoding, sid: str(f, "sid") };
    case "close_room":
      return { method, namespace, hostId, encoding, room: str(f, "room") };
    case "enter_room":
    case "leave_room":
      return { method, namespace, hostId, encoding, sid: str(f, "sid"), room: str(f, "room") };
    default:
      throw new FlaskMessageError("unsupported", `unknown method "${method.slice(0, 64)}"`);
  }
}

function emitOf(
  f: Fields,
  namespace: string,
  hostId: string | undefined,
  encoding: FlaskEncoding,
  ctx: Ctx,
): FlaskEmit {
  const event = str(f, "event");
  if (RESERVED_EVENT_NAMES.has(event)) {
    throw new FlaskMessageError("reserved-event", `"${event}" is a reserved event name`);
  }
  const room = field(f, "room");
  const rooms = room === undefined || room === null ? undefined : strings(room, "room");
  const skip = field(f, "skip_sid");
  const skipSids = skip === undefined || skip === null ? [] : strings(skip, "skip_sid");
  const cb = field(f, "callback");
  let callback: FlaskEmit["callback"];
  if (cb !== undefined && cb !== null) {
    const seq = sequence(cb);
    const [r, ns, id] = seq ?? [];
    if (
      seq?.length !== 3 ||
      typeof r !== "string" ||
      typeof ns !== "string" ||
      typeof id !== "number" ||
      !Number.isSafeInteger(id)
    ) {
      throw new FlaskMessageError("malformed", '"callback" is not [room, namespace, id]');
    }
    callback = { room: r, namespace: ns, id };
  }
  const data = field(f, "data");
  let args: unknown[];
  let layout: FlaskEmitLayout;
  if (encoding === "pickle") {
    layout = "pickle";
    args =
      data instanceof PyTuple ? [...data.items] : data === null || data === undefined ? [] : [data];
    args = args.map((a) => plain(a, ctx.maxDepth, 1));
  } else if (!Object.hasOwn(f, "binary")) {
    layout = "json-single";
    args = data === null || data === undefined ? [] : [plain(data, ctx.maxDepth, 1)];
  } else {
    const binary = field(f, "binary");
    if (typeof binary !== "boolean")
      throw new FlaskMessageError("malformed", '"binary" is not a boolean');
    let value: unknown = data;
    if (binary) {
      if (!Array.isArray(data) || data.length === 0) {
        throw new FlaskMessageError(
          "malformed",
          '"data" of a binary emit is not [value, attachments…]',
        );
      }
      const attachments = data.slice(1).map(base64);
      if (attachments.length > ctx.maxAttachments) {
        throw new FlaskMessageError("malformed", `more than ${ctx.maxAttachments} attachments`);
      }
      value = rebuild(data[0], attachments, ctx.maxDepth + 1, 0);
    }
    if (ctx.binaryLayout === "single") {
      layout = "json-binary-single";
      args = value === null || value === undefined ? [] : [plain(value, ctx.maxDepth, 1)];
    } else {
      layout = "json-arguments";
      if (!Array.isArray(value))
        throw new FlaskMessageError("malformed", '"data" is not the list of arguments');
      args = value.map((a) => plain(a, ctx.maxDepth, 1));
    }
  }
  return {
    method: "emit",
    namespace,
    hostId,
    encoding,
    event,
    args,
    rooms,
    skipSids,
    callback,
    layout,
  };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function base64(v: unknown): Buffer {
  if (typeof v !== "string" || !BASE64.test(v)) {
    throw new FlaskMessageError("malformed", "a binary attachment is not base64");
  }
  return Buffer.from(v, "base64");
}

/** Puts attachments back where `{ "_placeholder": true, "num": i }` stands, as socket.io-parser does. */
function rebuild(v: unknown, att: readonly Buffer[], maxDepth: number, depth: number): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (depth >= maxDepth)
    throw new FlaskMessageError("malformed", `nesting deeper than ${maxDepth}`);
  if (Array.isArray(v)) return v.map((x) => rebuild(x, att, maxDepth, depth + 1));
  const o = v as Record<string, unknown>;
  if (o._placeholder === true && Object.hasOwn(o, "num")) {
    const num = o.num;
    if (typeof num !== "number" || !Number.isInteger(num) || num < 0 || num >= att.length) {
      throw new FlaskMessageError("malformed", "a placeholder names no attachment");
    }
    return att[num];
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    Object.defineProperty(out, k, {
      value: rebuild(o[k], att, maxDepth, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * Checks the depth and turns pickle-only values into what a JSON publisher would have
 * sent: tuples into arrays, integers beyond 2^53 into (inexact) numbers, as JSON.parse
 * does. Buffers stay binary.
 */
function plain(v: unknown, maxDepth: number, depth: number): unknown {
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "object" || v === null || Buffer.isBuffer(v)) return v;
  if (depth > maxDepth)
    throw new FlaskMessageError("malformed", `an argument nested deeper than ${maxDepth}`);
  if (v instanceof PyTuple) return v.items.map((x) => plain(x, maxDepth, depth + 1));
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = plain(v[i], maxDepth, depth + 1);
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    const before = o[k];
    const after = plain(before, maxDepth, depth + 1);
    // defineProperty: an own "__proto__" key stays a key, never the prototype.
    if (after !== before)
      Object.defineProperty(o, k, {
        value: after,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return o;
}
