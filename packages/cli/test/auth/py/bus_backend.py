"""A backend consuming switchyard serve's client events from Redis (redis-py, Debian).

argv: redis_url, channel. Prints "ready" once subscribed. For each event: "ignore" gets no
reply; "garbage" gets a malformed reply; every other event that asked for an ack gets
{"id", "ack": [{"echo": args, "sub": socket.data.sub}]}. Each event is also printed as a
JSON line. Exits after 30 s at most.
"""
import json
import sys
import time

import redis

url, channel = sys.argv[1], sys.argv[2]
r = redis.Redis.from_url(url)
p = r.pubsub(ignore_subscribe_messages=True)
p.subscribe(channel)
while p.get_message(timeout=1) is None and not p.subscribed:
    pass
print("ready", flush=True)
deadline = time.time() + 30
while time.time() < deadline:
    m = p.get_message(timeout=0.5)
    if m is None:
        continue
    msg = json.loads(m["data"])
    print(json.dumps({"event": msg["event"], "args": msg["args"], "replyTo": msg["replyTo"]}), flush=True)
    if msg["replyTo"] is None or msg["event"] == "ignore":
        continue
    if msg["event"] == "garbage":
        r.publish(msg["replyTo"], b"not json")
        r.publish(msg["replyTo"], json.dumps({"no": "id"}))
        continue
    sub = (msg["socket"]["data"] or {}).get("sub")
    r.publish(msg["replyTo"], json.dumps({"id": msg["id"], "ack": [{"echo": msg["args"], "sub": sub}]}))
