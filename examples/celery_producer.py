#!/usr/bin/env python3
"""Enqueue a fanout job from a Python engine with Celery 5, as it does today.

fanout's worker consumes Celery protocol v2 messages for the task
``fanout.notify`` with the job as the keyword argument ``job``. These are the
producer settings that matter (and why):

- ``task_serializer = "json"``: fanout reads JSON (and msgpack) bodies;
  pickle and YAML are refused and dead-lettered, naming this setting.
- ``task_protocol = 2``: the Celery 4+ default (protocol 1 is read too).
- ``broker_transport_options = {"confirm_publish": True}``: the publish
  returns only when RabbitMQ has the message; without it a page can vanish
  in a broker restart and the engine never knows.
- ``task_default_delivery_mode = "persistent"``: the message survives a
  broker restart (fanout's queues are durable quorum queues).
- exchange ``{prefix}fanout`` (durable, direct), routing key ``job``: the
  exchange fanout declares. Publishing to it, not to a queue name, keeps the
  engine independent of fanout's queue layout.
- ``countdown=``/``eta=`` wait in fanout's delay tiers (in the broker, not in
  a worker's memory); ``expires=`` drops a job that is stale when it comes up.

Usage:
  celery_producer.py --job examples/jobs/firing.json \
      [--broker amqp://guest:guest@127.0.0.1:5672//] [--prefix ""] [--countdown 60]
"""
import argparse
import json
import sys

from celery import Celery
from kombu import Exchange


def make_app(broker: str) -> Celery:
    app = Celery("engine", broker=broker)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_protocol=2,
        task_default_delivery_mode="persistent",
        broker_transport_options={"confirm_publish": True},
    )
    return app


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--job", required=True, help="a fanout job (JSON file)")
    p.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    p.add_argument("--prefix", default="", help="fanout's [broker] prefix")
    p.add_argument("--countdown", type=float, help="seconds to wait before running")
    p.add_argument("--expires", type=float, help="drop if not run within this many seconds")
    a = p.parse_args()
    with open(a.job, encoding="utf-8") as f:
        job = json.load(f)

    app = make_app(a.broker)
    exchange = Exchange(f"{a.prefix}fanout", type="direct", durable=True)
    result = app.send_task(
        "fanout.notify",
        kwargs={"job": job},
        exchange=exchange,
        routing_key="job",
        # Declare nothing: fanout owns its topology, and Celery would
        # otherwise create its default queue `celery`, which nobody reads.
        declare=[],
        countdown=a.countdown,
        expires=a.expires,
    )
    print(f"enqueued {job.get('id')} as Celery task {result.id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
