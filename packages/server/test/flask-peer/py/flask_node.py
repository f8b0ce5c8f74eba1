"""A Flask-SocketIO node (Debian 5.3 / python-socketio 5.7.2, threading, long-polling) on a message queue.
argv: port url channel
Its manager publishes JSON instead of pickle (the subclass of the migration guide): a
Switchyard peer reads JSON only; 5.7.2 nodes read both."""
import json
import sys

import socketio
from flask import Flask, request
from flask_socketio import SocketIO, join_room


class JsonRedisManager(socketio.RedisManager):
    def _publish(self, data):
        return self.redis.publish(self.channel, json.dumps(data))


port, url, channel = int(sys.argv[1]), sys.argv[2], sys.argv[3]
app = Flask(__name__)
sio = SocketIO(app, async_mode="threading", client_manager=JsonRedisManager(url, channel=channel))
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
