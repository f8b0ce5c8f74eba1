"""Write-only publishers: the real SocketIO(message_queue=...) and socketio.RedisManager(write_only=True).
argv: url channel room count mode   (mode: json = the JSON-publishing subclass; pickle = stock 5.7.2)"""
import json
import sys

import socketio
from flask_socketio import SocketIO

url, channel, room, count, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]


class JsonRedisManager(socketio.RedisManager):
    """The stock 5.7.2 manager, publishing JSON instead of pickle (what 5.14+ does)."""

    def _publish(self, data):
        return self.redis.publish(self.channel, json.dumps(data))


if mode == "json":
    mgr = JsonRedisManager(url, channel=channel, write_only=True)
    for i in range(count):
        mgr.emit("w", {"seq": i, "by": "manager"}, namespace="/ws", room=room)
    flask = SocketIO(message_queue=url, channel=channel, client_manager=JsonRedisManager(url, channel=channel, write_only=True))
else:
    flask = SocketIO(message_queue=url, channel=channel)
for i in range(count):
    flask.emit("w", {"seq": i, "by": "flask"}, namespace="/ws", to=room)
print("DONE", flush=True)
