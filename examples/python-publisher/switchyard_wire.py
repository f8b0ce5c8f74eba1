"""Switchyard / Socket.IO broadcast wire format, with no dependency beyond the stdlib.

A broadcast is published on channel ``socket.io#<nsp>#`` (no room, or several rooms) or
``socket.io#<nsp>#<room>#`` (exactly one room), as the msgpack array
``[uid, packet, opts]``:

- ``uid``: a string naming the publisher (``"emitter"``); never a Switchyard node's id.
- ``packet``: ``{"type": 2, "data": [event, *args], "nsp": nsp}`` (a Socket.IO EVENT;
  ``bytes`` arguments travel as msgpack bin and reach clients as binary).
- ``opts``: ``{"rooms": [...], "flags": {}, "except": [...]}``; no rooms = everyone in
  the namespace.

This is the format of the official ``@socket.io/redis-emitter``. Over RabbitMQ the same
bytes go to the topic exchange (default ``switchyard``) with routing key
:func:`routing_key` of the channel.

Debian's ``python3-msgpack`` is not required: :func:`packb` is a small encoder for the
types a broadcast needs.
"""

import base64
import hashlib
import struct

__all__ = ["broadcast_channel", "encode_broadcast", "packb", "routing_key"]


def packb(value):
    """Encodes ``value`` as msgpack: None, bool, int, float, str, bytes, list/tuple, dict."""
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(v, out):
    if v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v < 0x80:
            out.append(v)
        elif -32 <= v < 0:
            out.append(v & 0xFF)
        elif 0 <= v <= 0xFF:
            out += struct.pack(">BB", 0xCC, v)
        elif 0 <= v <= 0xFFFF:
            out += struct.pack(">BH", 0xCD, v)
        elif 0 <= v <= 0xFFFFFFFF:
            out += struct.pack(">BI", 0xCE, v)
        elif 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            out += struct.pack(">BQ", 0xCF, v)
        elif -0x80 <= v < 0:
            out += struct.pack(">Bb", 0xD0, v)
        elif -0x8000 <= v < 0:
            out += struct.pack(">Bh", 0xD1, v)
        elif -0x80000000 <= v < 0:
            out += struct.pack(">Bi", 0xD2, v)
        elif -0x8000000000000000 <= v < 0:
            out += struct.pack(">Bq", 0xD3, v)
        else:
            raise OverflowError("integer out of msgpack range: %d" % v)
    elif isinstance(v, float):
        out += struct.pack(">Bd", 0xCB, v)
    elif isinstance(v, str):
        data = v.encode("utf-8")
        _header(len(data), out, 0xA0, 32, 0xD9, 0xDA, 0xDB)
        out += data
    elif isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        _header(len(data), out, None, 0, 0xC4, 0xC5, 0xC6)
        out += data
    elif isinstance(v, (list, tuple)):
        _header(len(v), out, 0x90, 16, None, 0xDC, 0xDD)
        for item in v:
            _pack(item, out)
    elif isinstance(v, dict):
        _header(len(v), out, 0x80, 16, None, 0xDE, 0xDF)
        for key, item in v.items():
            _pack(key, out)
            _pack(item, out)
    else:
        raise TypeError("cannot encode %r as msgpack" % type(v).__name__)


def _header(n, out, fix, fix_limit, code8, code16, code32):
    """Length header: fix form below ``fix_limit``, else the smallest 8/16/32-bit form."""
    if fix is not None and n < fix_limit:
        out.append(fix | n)
    elif code8 is not None and n <= 0xFF:
        out += struct.pack(">BB", code8, n)
    elif n <= 0xFFFF:
        out += struct.pack(">BH", code16, n)
    elif n <= 0xFFFFFFFF:
        out += struct.pack(">BI", code32, n)
    else:
        raise OverflowError("msgpack object too large")


def broadcast_channel(nsp, rooms=()):
    """The channel a broadcast to ``rooms`` is published on (the redis-emitter rule)."""
    rooms = list(rooms)
    if len(rooms) == 1:
        return "socket.io#%s#%s#" % (nsp, rooms[0])
    return "socket.io#%s#" % nsp


def encode_broadcast(nsp, event, args=(), rooms=(), except_rooms=(), uid="emitter"):
    """The msgpack payload of a broadcast of ``event`` with ``args``."""
    if not nsp.startswith("/"):
        raise ValueError("a namespace starts with '/': %r" % nsp)
    packet = {"type": 2, "data": [event, *args], "nsp": nsp}
    opts = {"rooms": list(rooms), "flags": {}, "except": list(except_rooms)}
    return packb([uid, packet, opts])


def routing_key(channel):
    """The AMQP routing key of a channel: ``sy.`` + unpadded base64url(utf8(channel)) when
    that fits in 255 bytes, else ``sy.h.`` + sha256-hex(utf8(channel))."""
    data = channel.encode("utf-8")
    key = "sy." + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    if len(key) <= 255:
        return key
    return "sy.h." + hashlib.sha256(data).hexdigest()


def parse_cli(argv, description, default_url):
    """Parses the command line shared by the publish scripts.

    Returns ``(options, channel, payload)``; ``options`` has ``url``, ``dry_run`` (and
    ``exchange`` when the caller added it through ``extra``)."""
    import argparse
    import json

    class Ordered(argparse.Action):
        # --json/--text/--hex all append to one list, in command-line order.
        def __call__(self, parser, namespace, value, option_string=None):
            if option_string == "--json":
                try:
                    value = json.loads(value)
                except ValueError as err:
                    parser.error("--json %r: %s" % (value, err))
            elif option_string == "--hex":
                try:
                    value = bytes.fromhex(value)
                except ValueError as err:
                    parser.error("--hex %r: %s" % (value, err))
            items = getattr(namespace, self.dest) or []
            items.append(value)
            setattr(namespace, self.dest, items)

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("event", help="event name the clients listen to")
    parser.add_argument("--url", default=default_url, help="broker URL (default: %(default)s)")
    parser.add_argument("--nsp", default="/", help="namespace (default: %(default)s)")
    parser.add_argument("--room", action="append", default=[], dest="rooms",
                        help="target room (repeat for several; none = whole namespace)")
    parser.add_argument("--except", action="append", default=[], dest="except_rooms",
                        help="exclude sockets in this room (repeatable)")
    parser.add_argument("--json", action=Ordered, dest="args", metavar="JSON",
                        help="an argument given as JSON (repeatable, order kept)")
    parser.add_argument("--text", action=Ordered, dest="args", metavar="STR",
                        help="a string argument (repeatable, order kept)")
    parser.add_argument("--hex", action=Ordered, dest="args", metavar="HEX",
                        help="a binary argument given as hex (repeatable, order kept)")
    parser.add_argument("--uid", default="emitter", help="publisher id (default: %(default)s)")
    parser.add_argument("--exchange", default="switchyard",
                        help="AMQP topic exchange (default: %(default)s; ignored by Redis)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print channel, routing key and payload (hex); publish nothing")
    options = parser.parse_args(argv)
    channel = broadcast_channel(options.nsp, options.rooms)
    payload = encode_broadcast(options.nsp, options.event, options.args or [],
                               options.rooms, options.except_rooms, options.uid)
    return options, channel, payload


def print_dry_run(channel, payload):
    print("channel     %s" % channel)
    print("routing key %s" % routing_key(channel))
    print("payload     %s" % payload.hex())
