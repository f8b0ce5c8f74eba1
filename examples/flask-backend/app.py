"""A Flask backend for `switchyard serve`: it issues the JWTs clients connect with,
receives their events by webhook (the role of `@socketio.on(...)`), and publishes to them
over the server API. Standard library + Flask only (Debian's python3-flask).

Environment: FLASK_PORT, SWITCHYARD_URL, SWITCHYARD_API_KEY, JWT_SECRET.
"""
import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request

from flask import Flask, abort, jsonify, request

SWITCHYARD_URL = os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:3000")
API_KEY = os.environ["SWITCHYARD_API_KEY"]
JWT_SECRET = os.environ["JWT_SECRET"].encode()

app = Flask(__name__)


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def issue_jwt(sub, ttl=600):
    """HS256 JWT with the user id as `sub`; switchyard puts the claims in socket.data."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = b64url(json.dumps({"sub": sub, "iat": now, "exp": now + ttl}).encode())
    signing_input = f"{header}.{claims}".encode()
    signature = b64url(hmac.new(JWT_SECRET, signing_input, hashlib.sha256).digest())
    return f"{header}.{claims}.{signature}"


def api(path, body):
    """POST to switchyard's API; raises with the server's error message."""
    req = urllib.request.Request(
        SWITCHYARD_URL + "/api/v1" + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer " + API_KEY, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return json.load(res)
    except urllib.error.HTTPError as err:
        raise RuntimeError(json.load(err)["error"]["message"]) from None


@app.get("/health")
def health():
    return {"ok": True}


@app.post("/login")
def login():
    """A stand-in for real authentication: any non-empty user name gets a token."""
    user = (request.get_json(silent=True) or {}).get("user", "")
    if not isinstance(user, str) or not user.isalnum() or len(user) > 32:
        abort(400)
    return {"token": issue_jwt(user)}


@app.post("/events")
def events():
    """Client events forwarded by switchyard: {event, args, ack, socket: {id, nsp, data}}.
    The answer {"ack": [...]} becomes the client's ack."""
    call = request.get_json()
    user = call["socket"]["data"]["sub"]
    socket_id = call["socket"]["id"]
    if call["event"] == "join":
        # The backend decides the rooms: the user's own and the chat.
        api("/join", {"sockets": [socket_id], "join": ["chat", "user:" + user]})
        return {"ack": [{"ok": True, "rooms": ["chat", "user:" + user]}]}
    if call["event"] == "message":
        text = str(call["args"][0])[:500] if call["args"] else ""
        api("/publish", {"event": "message", "data": {"from": user, "text": text},
                         "rooms": ["chat"], "except": [socket_id]})
        return {"ack": [{"ok": True}]}
    return {"ack": [{"error": "unknown event"}]}


@app.post("/notify/<user>")
def notify(user):
    """Something happened on the backend side (an order shipped): tell that user's sockets."""
    body = request.get_json(silent=True) or {}
    result = api("/publish", {"event": "notification", "data": body, "rooms": ["user:" + user]})
    return jsonify(result)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("FLASK_PORT", "5000")))
