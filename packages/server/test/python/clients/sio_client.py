"""A scripted python-socketio client for Switchyard's interoperability tests.

Usage: sio_client.py SPEC_JSON

SPEC_JSON is an object:
  url         the server's base URL (http://127.0.0.1:PORT)
  transports  ["websocket"] or ["polling"]
  auth        optional dict sent in the Socket.IO CONNECT packet
  headers     optional dict of extra HTTP headers for the connection requests
  namespaces  optional list of namespaces to connect (default ["/"])
  connect_wait_s  optional seconds connect() waits for the namespaces (default 5); a
              refused connect always takes this long in python-socketio 5.7
  max_decode_packets  optional engineio.payload.Payload.max_decode_packets: python-engineio
              drops the connection on a polling payload of more packets (default 16,
              python-engineio issue #142); any server batches more under a burst
  listen      optional {namespace: [event, ...]}: events to record
  replies     optional {namespace: {event: value}}: events to acknowledge with value
  steps       list of operations, run in order:
                {"op": "connect"}
                {"op": "call", "name": ev, "args": [...], "ns": "/"}   emit with ack, wait for it
                {"op": "emit", "name": ev, "args": [...], "ns": "/"}
                {"op": "wait", "name": ev, "ns": "/"}                  until ev was received
                {"op": "wait_disconnect"}                              until the server disconnects us
                {"op": "disconnect"}                                   graceful, see below
                {"op": "disconnect_raw"}                               sio.disconnect() as is

python-engineio 4.3's disconnect() only queues the namespace DISCONNECT and the engine
CLOSE for its write thread, then at once closes the WebSocket (usually before the thread
has sent them) or flags the session closed (which can stop the polling write loop before
it posts them): the server often sees a bare transport close, socket.io's own included. "disconnect" therefore
sends the DISCONNECT packets first and waits until the write thread has flushed them;
"disconnect_raw" keeps the library's behaviour. Received messages are handled in order
(see start_task).

Everything that happens is printed to stdout as one JSON object per line, "event" first
(the tests wait for `{"event":"connected"` and the like). Bytes are written as
{"$bytes": "<hex>"} both ways. In arguments, {"$bytes": hex, "times": n} and
{"$repeat": text, "times": n} build large values (argv is limited to 128 KiB). The script exits 0 once the steps are done, 2 when a
step fails, 3 when its own watchdog fires.
"""

import json
import os
import sys
import threading

import engineio.payload
import socketio
from socketio import packet as sio_packet

WATCHDOG_S = float(os.environ.get("SIO_CLIENT_WATCHDOG_S", "20"))
STEP_TIMEOUT_S = float(os.environ.get("SIO_CLIENT_STEP_TIMEOUT_S", "10"))

_print_lock = threading.Lock()
_cond = threading.Condition()
_received = []  # (namespace, event)
_disconnected = threading.Event()


def to_wire(value):
    """JSON-friendly -> python: {"$bytes": hex} becomes bytes, {"$repeat"} a long string."""
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"]) * value.get("times", 1)
        if "$repeat" in value:
            return value["$repeat"] * value["times"]
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value


def from_wire(value):
    """python -> JSON-friendly: bytes become {"$bytes": hex}."""
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, dict):
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_wire(v) for v in value]
    return value


def out(event, **fields):
    line = json.dumps({"event": event, **fields}, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def watchdog():
    out("watchdog", seconds=WATCHDOG_S)
    os._exit(3)


def record(namespace, name, args):
    out("recv", ns=namespace, name=name, args=from_wire(list(args)))
    with _cond:
        _received.append((namespace, name))
        _cond.notify_all()


def call_args(args):
    """python-socketio sends a tuple as several arguments, anything else as one."""
    args = to_wire(args or [])
    if len(args) == 0:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def start_task(target, *args, **kwargs):
    """The engine client's start_background_task, with two changes.

    python-engineio 4.3 hands every received message to a new thread: events are then
    handled in any order, and a binary event's attachments can be paired with the wrong
    placeholder packet. Messages are handled here inline, in the read loop, in arrival
    order, as the server sent them. The other tasks (read and write loops) are daemon
    threads, so a poll request left pending never keeps the script alive.
    """
    if getattr(target, "__name__", "") == "_handle_eio_message":
        target(*args, **kwargs)
        return None
    th = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    th.start()
    return th


def wait_flushed(eio, timeout):
    """Until the write thread has sent everything queued (it marks each packet done)."""
    q = eio.queue
    with q.all_tasks_done:
        return q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, timeout=timeout)


def disconnect_gracefully(sio):
    names = list(sio.namespaces)
    for ns in names:
        sio._send_packet(sio.packet_class(sio_packet.DISCONNECT, namespace=ns))
    flushed = wait_flushed(sio.eio, STEP_TIMEOUT_S)
    # Announced already: disconnect() must not repeat them, only close the engine session.
    sio.namespaces = {}
    sio.disconnect()
    return flushed


def main():
    spec = json.loads(sys.argv[1])
    timer = threading.Timer(WATCHDOG_S, watchdog)
    timer.daemon = True
    timer.start()

    if "max_decode_packets" in spec:
        engineio.payload.Payload.max_decode_packets = spec["max_decode_packets"]

    sio = socketio.Client(reconnection=False)
    sio.eio.start_background_task = start_task
    namespaces = spec.get("namespaces") or ["/"]

    for ns in namespaces:
        def on_connect(ns=ns):
            out("connect", ns=ns)

        def on_disconnect(ns=ns):
            out("disconnect", ns=ns)
            _disconnected.set()

        def on_connect_error(*data, ns=ns):
            out("connect_error", ns=ns, data=from_wire(list(data)))

        sio.on("connect", on_connect, namespace=ns)
        sio.on("disconnect", on_disconnect, namespace=ns)
        sio.on("connect_error", on_connect_error, namespace=ns)

    for ns, events in (spec.get("listen") or {}).items():
        for name in events:
            def handler(*args, ns=ns, name=name):
                record(ns, name, args)

            sio.on(name, handler, namespace=ns)

    for ns, replies in (spec.get("replies") or {}).items():
        for name, value in replies.items():
            def replier(*args, ns=ns, name=name, value=value):
                record(ns, name, args)
                return to_wire(value)

            sio.on(name, replier, namespace=ns)

    for step in spec["steps"]:
        op = step["op"]
        ns = step.get("ns", "/")
        if op == "connect":
            try:
                sio.connect(
                    spec["url"],
                    headers=spec.get("headers") or {},
                    auth=spec.get("auth"),
                    transports=spec["transports"],
                    namespaces=namespaces,
                    wait_timeout=spec.get("connect_wait_s", 5),
                )
            except socketio.exceptions.ConnectionError as exc:
                out(
                    "connect_failed",
                    type=type(exc).__module__ + "." + type(exc).__name__,
                    message=str(exc),
                )
                return 0
            out(
                "connected",
                transport=sio.transport(),
                sids={n: sio.get_sid(n) for n in namespaces},
            )
        elif op == "call":
            result = sio.call(
                step["name"], call_args(step.get("args")), namespace=ns, timeout=STEP_TIMEOUT_S
            )
            out("ack", name=step["name"], result=from_wire(result))
        elif op == "emit":
            sio.emit(step["name"], call_args(step.get("args")), namespace=ns)
            out("emitted", name=step["name"])
        elif op == "wait":
            with _cond:
                ok = _cond.wait_for(
                    lambda: (ns, step["name"]) in _received, timeout=STEP_TIMEOUT_S
                )
            if not ok:
                out("step_failed", op=op, name=step["name"])
                return 2
        elif op == "wait_disconnect":
            if not _disconnected.wait(timeout=STEP_TIMEOUT_S):
                out("step_failed", op=op)
                return 2
            out("server_disconnected")
        elif op == "disconnect":
            flushed = disconnect_gracefully(sio)
            out("client_disconnected", flushed=flushed)
        elif op == "disconnect_raw":
            sio.disconnect()
            out("client_disconnected")
        else:
            out("step_failed", op=op, reason="unknown op")
            return 2

    if sio.connected:
        disconnect_gracefully(sio)
    # Let the write thread send what disconnect() queued, if it still runs.
    if sio.eio.write_loop_task is not None:
        sio.eio.write_loop_task.join(timeout=STEP_TIMEOUT_S)
    out("exit")
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        out("error", type=type(exc).__name__, message=str(exc))
        code = 2
    sys.stdout.flush()
    sys.exit(code)
