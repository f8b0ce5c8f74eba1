"""The background publisher: a write-only Flask-SocketIO emitter (a cron job, a worker),
unchanged by the migration. Stock python-socketio 5.7.2 publishes pickle; the Switchyard
node reads it with legacyPickle: "data-only".

    /usr/bin/python3 publisher.py REDIS_URL COUNT INTERVAL_S    (COUNT 0: forever)"""
import sys
import time

from flask_socketio import SocketIO

redis_url, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socketio = SocketIO(message_queue=redis_url, channel="flask-socketio")
seq = 0
while count == 0 or seq < count:
    socketio.emit("tick", {"seq": seq, "at": time.time()})
    seq += 1
    time.sleep(interval)
print(f"DONE {seq}", flush=True)
