"""The RabbitMQ host test's AMQP client, on pika.

  amqp.py publish ADDRESSES VHOST USER QUEUE FIRST COUNT SECONDS
      Publishes messages FIRST..FIRST+COUNT-1 (their body is the number) to QUEUE through the
      default exchange, each with publisher confirms and `mandatory`, over the first address
      that answers; a message not confirmed (a nack, a return, a lost connection) is sent again,
      over the next address, until SECONDS have passed. Prints {"confirmed": [...], "retries": n}.
  amqp.py consume ADDRESSES VHOST USER QUEUE IDLE_SECONDS
      Takes and acknowledges messages from QUEUE until none came for IDLE_SECONDS.
      Prints {"received": [...]}.

  amqp.py connect ADDRESSES VHOST USER
      Opens a connection and closes it. Prints {"connected": true}, or {"error": "<pika's error>"}.

ADDRESSES are host:port, comma-separated; the password is $AMQP_PASSWORD (never an argument).
"""

import json
import os
import sys
import time

import pika


def connect(addresses, vhost, user, skip=0):
    credentials = pika.PlainCredentials(user, os.environ["AMQP_PASSWORD"])
    hosts = [a.rsplit(":", 1) for a in addresses.split(",")]
    hosts = hosts[skip % len(hosts):] + hosts[: skip % len(hosts)]
    params = [
        pika.ConnectionParameters(host=h, port=int(p), virtual_host=vhost, credentials=credentials, connection_attempts=1, socket_timeout=3, blocked_connection_timeout=10)
        for h, p in hosts
    ]
    return pika.BlockingConnection(params)


def publish(addresses, vhost, user, queue, first, count, seconds):
    deadline = time.monotonic() + seconds
    confirmed, retries, skip = [], 0, 0
    connection = channel = None
    for n in range(first, first + count):
        while True:
            if time.monotonic() > deadline:
                print(json.dumps({"confirmed": confirmed, "retries": retries, "stopped_at": n}))
                return
            try:
                if channel is None:
                    connection = connect(addresses, vhost, user, skip)
                    channel = connection.channel()
                    channel.confirm_delivery()
                channel.basic_publish("", queue, str(n).encode(), pika.BasicProperties(delivery_mode=2), mandatory=True)
                confirmed.append(n)
                break
            except Exception:
                retries += 1
                skip += 1
                try:
                    if connection is not None and connection.is_open:
                        connection.close()
                except Exception:
                    pass
                connection = channel = None
                time.sleep(0.2)
    connection.close()
    print(json.dumps({"confirmed": confirmed, "retries": retries}))


def consume(addresses, vhost, user, queue, idle):
    connection = connect(addresses, vhost, user)
    channel = connection.channel()
    received = []
    last = time.monotonic()
    while time.monotonic() - last < idle:
        method, _, body = channel.basic_get(queue)
        if method is None:
            time.sleep(0.1)
            continue
        received.append(int(body))
        channel.basic_ack(method.delivery_tag)
        last = time.monotonic()
    connection.close()
    print(json.dumps({"received": received}))


def try_connect(addresses, vhost, user):
    try:
        connect(addresses, vhost, user).close()
        print(json.dumps({"connected": True}))
    except Exception as e:
        print(json.dumps({"error": type(e).__name__}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "publish":
        publish(args[0], args[1], args[2], args[3], int(args[4]), int(args[5]), float(args[6]))
    elif command == "connect":
        try_connect(args[0], args[1], args[2])
    elif command == "consume":
        consume(args[0], args[1], args[2], args[3], float(args[4]))
    else:
        sys.exit(f"unknown command {command}")
