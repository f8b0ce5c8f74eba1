/**
 * Compile-time event maps, shaped like socket.io's so typed apps migrate unchanged:
 * `Server<ListenEvents, EmitEvents, ServerSideEvents, SocketData>`.
 */

/** A map of event names to listener signatures. */
// biome-ignore lint/suspicious/noExplicitAny: `any` is what lets every interface satisfy the map (TypeScript special-cases `{ [k: string]: any }`).
export type EventsMap = { [event: string]: any };

/** The map used when no types are given: any event, any arguments. */
export interface DefaultEventsMap {
  // biome-ignore lint/suspicious/noExplicitAny: untyped apps take any arguments
  [event: string]: (...args: any[]) => void;
}

/** Event names of a map. */
export type EventNames<Map extends EventsMap> = keyof Map & (string | symbol);

/** The arguments of one event. */
export type EventParams<Map extends EventsMap, Ev extends EventNames<Map>> = Parameters<Map[Ev]>;

/** Listener type of one event. */
export type EventListener<Map extends EventsMap, Ev extends EventNames<Map>> = Map[Ev];

/** Events emitted by the library itself on a socket. */
export interface SocketReservedEvents {
  disconnect: (reason: DisconnectReason, description?: unknown) => void;
  disconnecting: (reason: DisconnectReason, description?: unknown) => void;
  error: (err: Error) => void;
}

/** Events emitted by the library itself on a namespace. */
export interface NamespaceReservedEvents<Socket> {
  connect: (socket: Socket) => void;
  connection: (socket: Socket) => void;
}

/** Why a socket disconnected (socket.io's reasons plus Switchyard's additive ones). */
export type DisconnectReason =
  | "transport error"
  | "transport close"
  | "forced close"
  | "ping timeout"
  | "parse error"
  | "server shutting down"
  | "forced server close"
  | "client namespace disconnect"
  | "server namespace disconnect"
  | "payload too large"
  | "slow consumer";

// For untyped maps (`any[]` parameters) these fall back to `any`, as socket.io's do.
// biome-ignore lint/suspicious/noExplicitAny: untyped events accept any callback
type Last<T extends unknown[]> = T extends [] ? never : T extends [...infer _H, infer L] ? L : any;
// biome-ignore lint/suspicious/noExplicitAny: untyped events accept any arguments
type AllButLast<T extends unknown[]> = T extends [...infer H, infer _L] ? H : any[];
type FirstArg<T> = T extends (arg: infer A, ...rest: never[]) => unknown ? A : never;

/** With a timeout, an ack callback first receives an error (the timeout) or null. */
type PrependError<T> = T extends (...args: infer A) => infer R
  ? (err: Error | null, ...args: A) => R
  : T;

/** The emit signatures after `.timeout(ms)`: the ack's first argument becomes `err`. */
export type DecorateAcknowledgements<E extends EventsMap> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R
    ? number extends P["length"]
      ? E[K]
      : Last<P> extends (...args: never[]) => unknown
        ? (...args: [...AllButLast<P>, PrependError<Last<P>>]) => R
        : E[K]
    : E[K];
};

/** Broadcast acks gather one response per client: `(err, responses[])`. */
export type DecorateBroadcastAcknowledgements<E extends EventsMap> = {
  [K in keyof E]: E[K] extends (...args: infer P) => infer R
    ? number extends P["length"]
      ? E[K]
      : Last<P> extends (...args: never[]) => unknown
        ? (
            ...args: [...AllButLast<P>, (err: Error | null, responses: FirstArg<Last<P>>[]) => void]
          ) => R
        : E[K]
    : E[K];
};

/** Whether a parameter list ends with a callback (untyped lists may). */
type HasAck<P extends unknown[]> = P extends []
  ? false
  : P extends [...infer _H, infer L]
    ? L extends (...args: never[]) => unknown
      ? true
      : false
    : true;

/** Events whose last parameter is an ack callback. */
export type EventNamesWithAck<Map extends EventsMap> = {
  [K in keyof Map]: Map[K] extends (...args: infer P) => unknown
    ? HasAck<P> extends true
      ? K
      : never
    : never;
}[keyof Map] &
  (string | symbol);

/** Arguments of `emitWithAck`: the event's arguments without the callback. */
export type EventParamsWithoutAck<Map extends EventsMap, Ev extends keyof Map> = Map[Ev] extends (
  ...args: infer P
) => unknown
  ? AllButLast<P>
  : never;

/**
 * The value an ack callback carries: its first argument, or its second when the first
 * is the `err` of a `timeout()`-decorated callback.
 */
type AckValue<Cb> = Cb extends (err: Error | null, value: infer V, ...rest: never[]) => unknown
  ? V
  : Cb extends (value: infer V, ...rest: never[]) => unknown
    ? V
    : never;

/** What a socket's `emitWithAck` resolves to. */
export type AckResult<Map extends EventsMap, Ev extends keyof Map> = Map[Ev] extends (
  ...args: infer P
) => unknown
  ? AckValue<Last<P>>
  : never;

/**
 * What a broadcast's `emitWithAck` resolves to: one value per client (the decorated
 * callback of `timeout()` already carries the array).
 */
export type BroadcastAckResult<Map extends EventsMap, Ev extends keyof Map> = Map[Ev] extends (
  ...args: infer P
) => unknown
  ? Last<P> extends (err: Error | null, responses: infer V, ...rest: never[]) => unknown
    ? V
    : AckValue<Last<P>>[]
  : never;

/** Names reserved on sockets and namespaces: emitting them throws. */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
]);

/** Untyped listener used where a map says nothing about an event. */
// A plain `void` return (not `void | Promise<void>`): a function returning anything, an
// async one included, is assignable to it, as with socket.io's `onAny((ev) => log.push(ev))`.
// biome-ignore lint/suspicious/noExplicitAny: listeners of untyped events take any arguments
export type UntypedListener = (...args: any[]) => void;

type FallbackToUntypedListener<T> = [T] extends [never] ? UntypedListener : T;

/** Names a listener may subscribe to: the reserved ones or the user's. */
export type ReservedOrUserEventNames<Reserved extends EventsMap, User extends EventsMap> =
  | EventNames<Reserved>
  | EventNames<User>;

/** Listener type for a reserved or user event. */
export type ReservedOrUserListener<
  Reserved extends EventsMap,
  User extends EventsMap,
  Ev extends ReservedOrUserEventNames<Reserved, User>,
> = FallbackToUntypedListener<
  Ev extends EventNames<Reserved> ? Reserved[Ev] : Ev extends EventNames<User> ? User[Ev] : never
>;
