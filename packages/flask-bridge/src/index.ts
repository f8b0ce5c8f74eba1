/**
 * @switchyard/flask-bridge: python-socketio / Flask-SocketIO message-queue interop.
 * Explicit named exports only.
 */

export type { FlaskBridgeEvents, FlaskBridgeStats } from "./bridge.js";
export { createFlaskBridge, FlaskBridge } from "./bridge.js";
export type { FlaskDeliveryOutcome } from "./deliver.js";
export { deliverFlaskMessage } from "./deliver.js";
export type {
  FlaskCallback,
  FlaskCloseRoom,
  FlaskDecodeOptions,
  FlaskDecodeResult,
  FlaskDisconnect,
  FlaskEmit,
  FlaskEmitLayout,
  FlaskEncoding,
  FlaskMessage,
  FlaskRefusal,
  FlaskRoomChange,
} from "./format.js";
export {
  decodeFlaskMessage,
  FLASK_MESSAGE_REFUSED,
  FlaskMessageError,
  RESERVED_EVENT_NAMES,
} from "./format.js";
export type { FlaskBridgeOptions, ResolvedFlaskBridgeOptions } from "./options.js";
export type { PeerEncoding, PeerMessage, PythonSocketIOVersion } from "./peer-message.js";
export {
  encodePeerMessage,
  MAX_PEER_MESSAGE_BYTES,
  PYTHON_SOCKETIO_VERSIONS,
} from "./peer-message.js";
export type { PickleDict, PickleLimits, PickleValue } from "./pickle.js";
export { PICKLE_REFUSED, PickleRefusedError, PyTuple, readPickle } from "./pickle.js";
