/**
 * Publishing to a Switchyard cluster from any Node process that is not a server (a
 * worker, a cron job, an API): the counterpart of `@socket.io/redis-emitter`, over a
 * {@link Bus}. Broadcasts use the socket.io-compatible format (so Switchyard and
 * socket.io servers alike receive them); requests use Switchyard's control messages.
 * An emitter is no cluster member and receives nothing, so there are no acks (as with
 * socket.io's emitter). Publishes made before the bus is connected, or while it is down,
 * wait in the bus's bounded offline queue; `await emitter.flush()` waits until the
 * broker took everything published so far, and `await emitter.close()` flushes and
 * closes the bus, so a script can emit and exit.
 */
import {
  broadcastChannelFor,
  type ClusterBroadcastFlags,
  type ControlMessage,
  controlChannel,
  EMITTER_UID,
  encodeClusterBroadcast,
  encodeControlMessage,
  PacketType,
} from "@switchyard/protocol";
import type { Room } from "../adapter/adapter.js";
import type { Bus } from "../adapter/bus.js";
import { assertNotReserved } from "../broadcast/broadcast-operator.js";
import { InvalidOptionError } from "../errors.js";
import { checkOptionKeys, type OptionKeys } from "../options.js";
import type { DefaultEventsMap, EventNames, EventParams, EventsMap } from "../typed-events.js";

/** Options of {@link Emitter}. */
export interface EmitterOptions {
  /** Namespace to publish to. @default "/" */
  namespace?: string;
}

const EMITTER_KEYS: OptionKeys = Object.freeze({
  namespace: true,
  key: {
    note: 'channels use the "socket.io" prefix (the default of @socket.io/redis-emitter and the adapters)',
    accepts: (v: unknown) => v === "socket.io",
  },
  parser: {
    note: "cluster messages are msgpack, as with the default parser of @socket.io/redis-emitter",
  },
} satisfies Record<keyof EmitterOptions, true> & OptionKeys);

/** Where an operator sends: a namespace, its bus, and the rooms/flags chosen so far. */
interface Target {
  readonly bus: Bus;
  readonly nsp: string;
  readonly rooms: ReadonlySet<Room>;
  readonly except: ReadonlySet<Room>;
  readonly flags: Readonly<ClusterBroadcastFlags>;
}

const NO_ROOMS: ReadonlySet<Room> = new Set();

function normalizeNamespace(nsp: unknown): string {
  if (typeof nsp !== "string" || nsp.length === 0 || nsp.includes(",")) {
    throw new InvalidOptionError("namespace", 'a namespace name such as "/" or "/chat"', nsp);
  }
  return nsp.startsWith("/") ? nsp : `/${nsp}`;
}

function assertPublisher(bus: unknown): asserts bus is Bus {
  if (typeof bus !== "object" || bus === null || typeof (bus as Bus).publish !== "function") {
    throw new InvalidOptionError("bus", "a Bus", bus);
  }
}

function roomList(room: Room | readonly Room[]): readonly Room[] {
  return typeof room === "string" ? [room] : room;
}

function control(t: Target, msg: ControlMessage): void {
  t.bus.publish(controlChannel(t.nsp), encodeControlMessage(msg));
}

/**
 * `new Emitter(bus, { namespace: "/" })`, then `emitter.to("room").emit("ev", data)`.
 * Typed like socket.io's emitter: `Emitter<EmitEvents, ServerSideEvents>`.
 */
export class Emitter<
  EmitEvents extends EventsMap = DefaultEventsMap,
  ServerSideEvents extends EventsMap = DefaultEventsMap,
> {
  /** The namespace this emitter publishes to. */
  readonly namespace: string;
  readonly #bus: Bus;

  constructor(bus: Bus, opts: EmitterOptions = {}) {
    assertPublisher(bus);
    if (typeof opts !== "object" || opts === null) {
      throw new InvalidOptionError("options", "an object", opts);
    }
    checkOptionKeys(opts, EMITTER_KEYS);
    this.#bus = bus;
    this.namespace = normalizeNamespace(opts.namespace ?? "/");
  }

  /**
   * Resolves once everything published so far (through this emitter, or any other on
   * the same bus) was handed to the broker: Redis answered the PUBLISH, RabbitMQ
   * confirmed it. Rejects with a `PublishDroppedError` if some of it was dropped (the
   * bus's offline queue was full, or the broker did not come back within its timeout).
   */
  flush(): Promise<void> {
    return this.#bus.flush();
  }

  /**
   * {@link flush}, then closes the bus it was given (also when the flush rejects, which
   * it then reports). Emitters made with {@link of} share that bus.
   */
  async close(): Promise<void> {
    try {
      await this.#bus.flush();
    } finally {
      await this.#bus.close();
    }
  }

  /** An emitter for another namespace on the same bus. */
  of(nsp: string): Emitter<EmitEvents, ServerSideEvents> {
    return new Emitter(this.#bus, { namespace: nsp });
  }

  private op(): EmitterBroadcastOperator<EmitEvents> {
    return new EmitterBroadcastOperator({
      bus: this.#bus,
      nsp: this.namespace,
      rooms: NO_ROOMS,
      except: NO_ROOMS,
      flags: {},
    });
  }

  /** Emits to every client of the namespace, on every node. */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true {
    return this.op().emit(ev, ...args);
  }

  to(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    return this.op().to(room);
  }

  in(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    return this.op().to(room);
  }

  except(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    return this.op().except(room);
  }

  get volatile(): EmitterBroadcastOperator<EmitEvents> {
    return this.op().volatile;
  }

  compress(compress: boolean): EmitterBroadcastOperator<EmitEvents> {
    return this.op().compress(compress);
  }

  socketsJoin(room: Room | readonly Room[]): void {
    this.op().socketsJoin(room);
  }

  socketsLeave(room: Room | readonly Room[]): void {
    this.op().socketsLeave(room);
  }

  disconnectSockets(close = false): void {
    this.op().disconnectSockets(close);
  }

  /**
   * Emits to the namespace's listeners on every server (`io.on(ev, …)`). Acks are not
   * supported (an emitter hears nothing back): a trailing function throws.
   */
  serverSideEmit<Ev extends EventNames<ServerSideEvents>>(
    ev: Ev,
    ...args: EventParams<ServerSideEvents, Ev>
  ): true {
    if (typeof args[args.length - 1] === "function") {
      throw new TypeError("serverSideEmit from an Emitter takes no acknowledgement callback");
    }
    assertNotReserved(ev);
    const t = this.op().target;
    control(t, { type: "emit", uid: EMITTER_UID, data: [ev, ...args] });
    return true;
  }
}

/** The immutable `to/in/except/volatile/compress` chain of an {@link Emitter}. */
export class EmitterBroadcastOperator<EmitEvents extends EventsMap = DefaultEventsMap> {
  /** @internal */
  readonly target: Target;

  constructor(target: Target) {
    this.target = target;
  }

  /** Targets the clients in `room` (union with earlier targets). */
  to(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    const rooms = new Set(this.target.rooms);
    for (const r of roomList(room)) rooms.add(r);
    return new EmitterBroadcastOperator({ ...this.target, rooms });
  }

  /** Alias of {@link to}. */
  in(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    return this.to(room);
  }

  /** Excludes the clients in `room`. */
  except(room: Room | readonly Room[]): EmitterBroadcastOperator<EmitEvents> {
    const except = new Set(this.target.except);
    for (const r of roomList(room)) except.add(r);
    return new EmitterBroadcastOperator({ ...this.target, except });
  }

  /** Clients that are not ready may miss it. */
  get volatile(): EmitterBroadcastOperator<EmitEvents> {
    return new EmitterBroadcastOperator({
      ...this.target,
      flags: { ...this.target.flags, volatile: true },
    });
  }

  /** Whether the packet may be compressed. */
  compress(compress: boolean): EmitterBroadcastOperator<EmitEvents> {
    return new EmitterBroadcastOperator({
      ...this.target,
      flags: { ...this.target.flags, compress },
    });
  }

  /**
   * Publishes the event once (on the room's channel when exactly one room is targeted,
   * else on the namespace's). Binary arguments travel as msgpack `bin`.
   */
  emit<Ev extends EventNames<EmitEvents>>(ev: Ev, ...args: EventParams<EmitEvents, Ev>): true {
    assertNotReserved(ev);
    if (typeof args[args.length - 1] === "function") {
      throw new TypeError("an Emitter cannot receive acknowledgements (it is no cluster member)");
    }
    const t = this.target;
    t.bus.publish(
      broadcastChannelFor(t.nsp, t.rooms),
      encodeClusterBroadcast({
        uid: EMITTER_UID,
        packet: { type: PacketType.EVENT, nsp: t.nsp, data: [ev, ...args] },
        opts: { rooms: [...t.rooms], except: [...t.except], flags: { ...t.flags } },
      }),
    );
    return true;
  }

  /** Makes the targeted sockets (on every node) join `room`. */
  socketsJoin(room: Room | readonly Room[]): void {
    const t = this.target;
    control(t, {
      type: "join",
      uid: EMITTER_UID,
      opts: { rooms: [...t.rooms], except: [...t.except] },
      rooms: [...roomList(room)],
    });
  }

  /** Makes the targeted sockets leave `room`. */
  socketsLeave(room: Room | readonly Room[]): void {
    const t = this.target;
    control(t, {
      type: "leave",
      uid: EMITTER_UID,
      opts: { rooms: [...t.rooms], except: [...t.except] },
      rooms: [...roomList(room)],
    });
  }

  /** Disconnects the targeted sockets; `close` also closes their connections. */
  disconnectSockets(close = false): void {
    const t = this.target;
    control(t, {
      type: "disconnect",
      uid: EMITTER_UID,
      opts: { rooms: [...t.rooms], except: [...t.except] },
      close,
    });
  }
}
