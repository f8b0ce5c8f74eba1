"""A Flask-SocketIO node (Debian 5.3 / python-socketio 5.7.2, threading, long-polling) on a message queue.
argv: port url channel [mode]
mode "pickle" (default): the stock manager, publishing pickle (a Switchyard peer reads it
with legacyPickle: "data-only"); "json": the JSON-publishing subclass of the migration
guide (what 5.14+ publishes; 5.7.2 nodes read both)."""
import json
import sys

import socketio
from flask import Flask, request
from flask_socketio import SocketIO, join_room


class JsonRedisManager(socketio.RedisManager):
    def _publish(self, data):
        return self.redis.publish(self.channel, json.dumps(data))


port, url, channel = int(sys.argv[1]), sys.argv[2], sys.argv[3]
mode = sys.argv[4] if len(sys.argv) > 4 else "pickle"
app = Flask(__name__)
if mode == "json":
    sio = SocketIO(app, async_mode="threading", client_manager=JsonRedisManager(url, channel=channel))
else:
    sio = SocketIO(app, async_mode="threading", message_queue=url, channel=channel)
NS = "/ws"


@sio.on("join", namespace=NS)
def on_join(room):
    join_room(room)
    return "joined"


@sio.on("py_emit", namespace=NS)
def on_py_emit(msg):
    sio.emit(msg["event"], msg["data"], to=msg.get("room"), namespace=NS)
    return "sent"


@sio.on("py_ask", namespace=NS)
def on_py_ask(msg):
    asker = request.sid

    def answered(*args):
        sio.emit("answer", list(args), to=asker, namespace=NS)

    sio.emit("q", msg["data"], to=msg["sid"], namespace=NS, callback=answered)
    return "asked"


@sio.on("py_disconnect", namespace=NS)
def on_py_disconnect(sid):
    sio.server.disconnect(sid, namespace=NS)
    return "done"


@sio.on("q", namespace=NS)
def on_q(data):
    return {"answer": 42, "echo": data}


print("READY", flush=True)
sio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True)
