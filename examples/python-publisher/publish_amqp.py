#!/usr/bin/python3
"""Emits a Socket.IO event to Switchyard clients through RabbitMQ (@switchyard/amqp).

    publish_amqp.py --url amqp://guest:guest@127.0.0.1:5672/ --room btc tick --json 1

Needs only pika (Debian: python3-pika); see README.md for the wire format.
"""

import sys

import pika

from switchyard_wire import parse_cli, print_dry_run, routing_key


def main(argv):
    options, channel, payload = parse_cli(
        argv, "Emit a Socket.IO event through a RabbitMQ topic exchange.",
        "amqp://guest:guest@127.0.0.1:5672/%2F")
    if options.dry_run:
        print_dry_run(channel, payload)
        return 0
    connection = pika.BlockingConnection(pika.URLParameters(options.url))
    try:
        ch = connection.channel()
        # Same declaration as AmqpBus (topic, durable, not auto-delete): idempotent, and
        # the publish can't fail on a missing exchange before any node has started.
        ch.exchange_declare(exchange=options.exchange, exchange_type="topic", durable=True)
        ch.basic_publish(exchange=options.exchange, routing_key=routing_key(channel),
                         body=payload)
    finally:
        connection.close()
    print("published %d bytes on %s (routing key %s)"
          % (len(payload), channel, routing_key(channel)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
