"""A python-socketio client against switchyard serve's client side.

argv: url, bad_token, good_token. Prints one JSON line: the connect_error data of the bad
token, the join answers and the answer of an event forwarded to the backend.
"""
import json
import sys
import threading

import socketio

url, bad, good = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

refused = threading.Event()
sio = socketio.Client(reconnection=False)


@sio.event
def connect_error(data):
    out["refusal"] = data
    refused.set()


try:
    sio.connect(url, auth={"token": bad}, transports=["websocket"], wait_timeout=5)
except socketio.exceptions.ConnectionError:
    pass
refused.wait(5)
sio.disconnect()

sio = socketio.Client(reconnection=False)
sio.connect(url, auth={"token": good}, transports=["websocket"], wait_timeout=5)
out["join_ok"] = sio.call("switchyard:join", "news", timeout=5)
out["join_refused"] = sio.call("switchyard:join", "admin", timeout=5)
out["message"] = sio.call("message", {"text": "from python"}, timeout=5)
sio.disconnect()
print(json.dumps(out))
