#!/usr/bin/env python3
"""Build a Celery protocol v2 message with the real Celery client.

fanout accepts jobs enqueued the way a Python alerting engine already does
it: ``app.send_task("fanout.notify", kwargs={"job": {...}})``. This script
asks Celery itself to build that message (headers, body, serialization),
without a broker, and prints it as one JSON object for the Rust tests:

    {"headers": {...}, "content_type": "...", "content_encoding": "...",
     "body_b64": "..."}

Usage: celery_message.py --job FILE [--task NAME] [--countdown S]
       [--expires S] [--serializer json|pickle] [--positional]
"""
import argparse
import base64
import json
import sys

from celery import Celery
from kombu.serialization import dumps


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--job", required=True, help="JSON file holding the job")
    p.add_argument("--task", default="fanout.notify")
    p.add_argument("--countdown", type=float)
    p.add_argument("--expires", type=float)
    p.add_argument("--serializer", default="json")
    p.add_argument("--positional", action="store_true", help="pass the job as args[0]")
    a = p.parse_args()
    with open(a.job, "rb") as f:
        job = json.loads(f.read())
    app = Celery("engine", broker="memory://")
    args, kwargs = ((job,), {}) if a.positional else ((), {"job": job})
    message = app.amqp.as_task_v2(
        "3f0c1a2e-0000-4000-8000-000000000001",
        a.task,
        args=args,
        kwargs=kwargs,
        countdown=a.countdown,
        expires=a.expires,
    )
    content_type, encoding, data = dumps(message.body, serializer=a.serializer)
    if isinstance(data, str):
        data = data.encode(encoding or "utf-8")
    json.dump(
        {
            "headers": message.headers,
            "content_type": content_type,
            "content_encoding": encoding,
            "body_b64": base64.b64encode(data).decode(),
        },
        sys.stdout,
        default=str,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
