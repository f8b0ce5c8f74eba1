/**
 * Local delivery of a python-socketio queue message: applies it to *this node's*
 * sockets only (as every Flask-SocketIO node does), so where several nodes read the
 * same channel each client is reached once. Never creates a namespace: a message for a
 * namespace nobody uses here has nobody to reach.
 */
import type { Namespace, Server } from "@switchyard/server";
import { existingNamespace } from "@switchyard/server/internal";
import { type FlaskMessage, RESERVED_EVENT_NAMES } from "./format.js";

/** What {@link deliverFlaskMessage} did with a message. */
export type FlaskDeliveryOutcome =
  /** Applied to the local sockets (an emit may still have matched none). */
  | "applied"
  /** The namespace or the socket it names does not exist on this node. */
  | "not-here"
  /** Not for local delivery: a `callback` (acks are a peer's business, see issue 12 §2). */
  | "ignored";

/**
 * Applies `msg` to the local sockets of `io`:
 * - `emit`: `io.of(ns).local.to(rooms).except(skipSids).emit(event, ...args)` — a
 *   socket id is a room of its own in Switchyard as in python-socketio, so `to=sid` and
 *   `skip_sid` address exactly that socket (`socket.id`, per namespace);
 * - `close_room`: the local sockets in `room` leave it;
 * - `disconnect`: the local socket `sid` is disconnected by the server (`io server disconnect`);
 * - `enter_room` / `leave_room`: the local socket `sid` joins / leaves `room`;
 * - `callback`: ignored here.
 * Throws only for an `emit` of a reserved event name (which decodeFlaskMessage refuses first).
 */
export function deliverFlaskMessage(io: Server, msg: FlaskMessage): FlaskDeliveryOutcome {
  if (msg.method === "callback") return "ignored";
  const nsp = existingNamespace(io, msg.namespace) as Namespace | undefined;
  if (nsp === undefined) return "not-here";
  switch (msg.method) {
    case "emit": {
      if (RESERVED_EVENT_NAMES.has(msg.event))
        throw new Error(`"${msg.event}" is a reserved event name`);
      let op = nsp.local;
      if (msg.rooms !== undefined) {
        // An empty room list in Python reaches nobody (the union of no rooms).
        if (msg.rooms.length === 0) return "applied";
        op = op.to(msg.rooms);
      }
      if (msg.skipSids.length > 0) op = op.except(msg.skipSids);
      op.emit(msg.event, ...msg.args);
      return "applied";
    }
    case "close_room":
      nsp.local.in(msg.room).socketsLeave(msg.room);
      return "applied";
    case "disconnect": {
      const socket = nsp.sockets.get(msg.sid);
      if (socket === undefined) return "not-here";
      socket.disconnect();
      return "applied";
    }
    case "enter_room":
    case "leave_room": {
      const socket = nsp.sockets.get(msg.sid);
      if (socket === undefined) return "not-here";
      const done = msg.method === "enter_room" ? socket.join(msg.room) : socket.leave(msg.room);
      // A cluster adapter's subscription may fail later; the bus reports that itself.
      if (done instanceof Promise) done.catch(noop);
      return "applied";
    }
  }
}

function noop(): void {}
