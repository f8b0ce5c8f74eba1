/**
 * Switchyard's public API. Explicit named exports only; sibling packages use
 * `@switchyard/server/internal`.
 */

/** The msgpack parser, wire-compatible with clients using `socket.io-msgpack-parser`. */
export { msgpackParser } from "@switchyard/protocol";
export type {
  Adapter,
  AdapterConstructor,
  AdapterNamespace,
  AdapterSocket,
  BroadcastFlags,
  BroadcastOptions,
  PacketSink,
  Room,
  SocketId,
} from "./adapter/adapter.js";
export { MemoryAdapter } from "./adapter/memory-adapter.js";
export type { AdapterFactory, SocketIoServerView } from "./adapter/socketio-adapter.js";
export type { FetchedSocket } from "./broadcast/broadcast-operator.js";
export { BroadcastOperator } from "./broadcast/broadcast-operator.js";
export type { ConnectionError, EngineStats } from "./engine/engine.js";
// Engine.IO layer (usable on its own, like the `engine.io` package)
export { attach, Engine } from "./engine/engine.js";
export type { ReadyState, SendOptions } from "./engine/session.js";
export { Session } from "./engine/session.js";
export { sessionNode } from "./engine/session-id.js";
export {
  AckTimeoutError,
  EngineErrorCode,
  ErrorCode,
  InvalidOptionError,
  ProtocolError,
  PublishDroppedError,
  SwitchyardError,
} from "./errors.js";
export type { EngineWriteOptions } from "./namespace/engine-write.js";
export type { Handshake } from "./namespace/handshake.js";
export type { ConnectMiddleware } from "./namespace/middleware.js";
export { Namespace } from "./namespace/namespace.js";
export type { NamespaceMatcher } from "./namespace/parent-namespace.js";
export { ParentNamespace } from "./namespace/parent-namespace.js";
export type { Codec, PacketDecoder, SocketIoParser } from "./namespace/parser.js";
export type { PacketMiddleware } from "./namespace/socket.js";
export { Socket } from "./namespace/socket.js";
export type { StandardSchemaV1, ValidationErrorPayload } from "./namespace/validation.js";
export { VALIDATION_ERROR_EVENT } from "./namespace/validation.js";
export type {
  AllowRequest,
  CookieOptions,
  CorsOptions,
  CorsOrigin,
  EngineOptions,
  TransportName,
} from "./options.js";
export type { ServerCounters } from "./server.js";
// Socket.IO layer
export { Server } from "./server.js";
export type { ServerOptions } from "./server-options.js";
export type {
  DefaultEventsMap,
  DisconnectReason,
  EventNames,
  EventParams,
  EventsMap,
} from "./typed-events.js";

// ——— Cluster ———

export type { Bus, BusEvents, BusHandler, BusStats } from "./adapter/bus.js";
export type { OfflineQueueOptions } from "./adapter/bus-base.js";
export type {
  ClusterAdapterEvents,
  ClusterAdapterOptions,
  ClusterStats,
  LogRecoveryStats,
} from "./adapter/cluster-adapter.js";
export { ClusterAdapter, createAdapter } from "./adapter/cluster-adapter.js";
export type { IpcBusOptions, IpcBusStats, IpcEndpoint, IpcRelayStats } from "./adapter/ipc-bus.js";
export { IpcBus, IpcRelay } from "./adapter/ipc-bus.js";
export { LocalBus, LocalHub } from "./adapter/local-bus.js";
export type {
  LogGone,
  LogRead,
  LogTake,
  RecoveryLog,
  RecoveryLogHandle,
  RecoveryLogSettings,
} from "./adapter/recovery-log.js";
export type { RemoteAckCallback, RemoteSocketHost } from "./adapter/remote-socket.js";
export { RemoteSocket, RemoteSocketWithTimeout } from "./adapter/remote-socket.js";
export type { Forwarder, ForwardingStats } from "./cluster/forwarder.js";
export type { ForwardingAddress, ForwardingOptions } from "./cluster/forwarding-options.js";
export type { EmitterOptions } from "./emitter/emitter.js";
export { Emitter, EmitterBroadcastOperator } from "./emitter/emitter.js";
export type {
  ThreadEmitterEndpoint,
  ThreadEmitterOptions,
  ThreadEmitterStats,
} from "./emitter/thread-emitter.js";
export { ThreadEmitter, ThreadEmitterOperator, threadEmitter } from "./emitter/thread-emitter.js";
export type { ThreadEmitterHubStats, ThreadEmitterPeer } from "./emitter/thread-emitter-hub.js";
export { attachThreadEmitters, ThreadEmitterHub } from "./emitter/thread-emitter-hub.js";

// ——— Many cores on one host ———

export type {
  DrainableServer,
  StartWorker,
  WorkerContext,
  WorkersEvents,
  WorkersOptions,
  WorkersWorker,
} from "./cluster/workers.js";
export { runWorkers, WorkersPrimary } from "./cluster/workers.js";
