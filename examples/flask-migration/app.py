"""The Flask app being replaced: Flask-SocketIO (Debian bookworm's 5.3 / python-socketio
5.7.2), threading mode, one node of a cluster on a Redis message queue.

    /usr/bin/python3 app.py PORT REDIS_URL

Unchanged by the migration: the Switchyard node (src/server.ts) joins the same queue."""
import sys

from flask import Flask
from flask_socketio import SocketIO, emit

port, redis_url = int(sys.argv[1]), sys.argv[2]
app = Flask(__name__)
# message_queue: the nodes of the cluster (and the background publisher) share this channel.
socketio = SocketIO(app, async_mode="threading", message_queue=redis_url, channel="flask-socketio")


@app.route("/")
def index():
    return "flask node\n"


@socketio.on("ping")
def on_ping(data):
    return {"pong": data, "by": "flask"}


@socketio.on("shout")
def on_shout(text):
    # A broadcast from this node: reaches the Switchyard node's clients too.
    emit("shouted", {"text": text, "by": "flask"}, broadcast=True)
    return "ok"


print(f"READY flask node on http://127.0.0.1:{port}", flush=True)
socketio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True)
