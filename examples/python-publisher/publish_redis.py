#!/usr/bin/python3
"""Emits a Socket.IO event to Switchyard (or Socket.IO) clients through Redis.

    publish_redis.py --url redis://127.0.0.1:6379 --room btc tick --json '{"price": 1}'

Needs only redis-py (Debian: python3-redis); see README.md for the wire format.
"""

import sys

import redis

from switchyard_wire import parse_cli, print_dry_run


def main(argv):
    options, channel, payload = parse_cli(
        argv, "Emit a Socket.IO event through Redis pub/sub.", "redis://127.0.0.1:6379")
    if options.dry_run:
        print_dry_run(channel, payload)
        return 0
    client = redis.Redis.from_url(options.url)
    try:
        receivers = client.publish(channel, payload)
    finally:
        client.close()
    # PUBLISH answers how many connections (Switchyard nodes) were subscribed.
    print("published %d bytes on %s to %d subscriber(s)" % (len(payload), channel, receivers))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
