#!/usr/bin/env python3
"""Publish fanout jobs through the real Celery 5 client, every way a stock
producer can: for the Rust tests that check fanout's worker takes each one
as Celery's own worker would.

Each case is one job (its id is the case name, prefixed) published to
fanout's exchange ``{prefix}fanout`` with routing key ``job`` on a real
RabbitMQ, with the Celery options that case names. Prints one JSON line per
case: ``{"case": ..., "id": ..., "task_id": ...}``.

Usage: celery_send.py --broker URL --prefix P --job FILE --cases a,b,...

Cases:
  naive-eta       eta=datetime.utcnow() + 3 s (no offset on the wire)
  naive-expires   expires=datetime.utcnow() + 10 min
  float-expires   expires=600.0 (seconds; Celery 5.3+ also sets the AMQP TTL)
  positional      send_task(args=[job]) instead of kwargs={"job": job}
  delay           a task object's .delay(job)
  options         apply_async with priority, headers, shadow, time limits,
                  ignore_result, retries, correlation id and reply_to
  zlib bzip2 lzma brotli zstd
                  compression=<codec> (kombu's header and encoding)
  msgpack         serializer="msgpack"
  protocol1       task_protocol=1 (the task in the body, not the headers)
  datetime        alert.started_at given as a Python datetime (kombu wraps it)
  nan             a NaN float in alert.payload (Python's json writes NaN)
  link            a callback (link=) fanout cannot run
  pickle          serializer="pickle" (refused on purpose)
  yaml            serializer="yaml" (refused on purpose)
"""
import argparse
import copy
import datetime as dt
import json
import sys

from celery import Celery, signature
from kombu import Exchange


def make_app(broker: str, prefix: str, protocol: int = 2) -> Celery:
    app = Celery("engine", broker=broker)
    app.conf.update(
        task_serializer="json",
        accept_content=["json", "msgpack", "yaml", "pickle"],
        task_protocol=protocol,
        task_default_delivery_mode="persistent",
        broker_transport_options={"confirm_publish": True},
        # How an engine routes .delay() and apply_async() without options:
        # to fanout's exchange, declaring nothing (no stray `celery` queue).
        task_routes={
            "fanout.notify": {
                "exchange": f"{prefix}fanout",
                "exchange_type": "direct",
                "routing_key": "job",
            }
        },
    )
    return app


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--prefix", default="")
    p.add_argument("--job", required=True, help="a fanout job (JSON file); its id is replaced")
    p.add_argument("--cases", required=True)
    a = p.parse_args()
    with open(a.job, encoding="utf-8") as f:
        template = json.load(f)

    apps = {1: make_app(a.broker, a.prefix, 1), 2: make_app(a.broker, a.prefix, 2)}
    exchange = Exchange(f"{a.prefix}fanout", type="direct", durable=True)
    route = {"exchange": exchange, "routing_key": "job", "declare": []}

    for case in a.cases.split(","):
        job = copy.deepcopy(template)
        job["id"] = f"{template['id']}-{case}"
        job["alert"]["group_id"] = job["id"]
        app = apps[1 if case == "protocol1" else 2]
        options = {}
        args, kwargs = (), {"job": job}
        now = dt.datetime.utcnow()  # naive on purpose, as many engines do
        if case == "naive-eta":
            options["eta"] = now + dt.timedelta(seconds=3)
        elif case == "naive-expires":
            options["expires"] = now + dt.timedelta(minutes=10)
        elif case == "float-expires":
            options["expires"] = 600.0
        elif case == "positional":
            args, kwargs = (job,), {}
        elif case in ("zlib", "bzip2", "lzma", "brotli", "zstd"):
            options["compression"] = case
        elif case in ("msgpack", "pickle", "yaml"):
            options["serializer"] = case
        elif case == "datetime":
            job["alert"]["started_at"] = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
        elif case == "nan":
            job["alert"]["payload"] = {"value": float("nan"), "threshold": float("inf")}
        elif case == "link":
            options["link"] = signature("engine.after_notify")
        elif case == "options":
            options.update(
                priority=5,
                headers={"x-trace-id": "abc123"},
                shadow="page-oncall",
                time_limit=30,
                soft_time_limit=20,
                ignore_result=True,
                retries=2,
                correlation_id="corr-1",
                reply_to="engine.replies",
            )
        if case == "delay" or case == "options":
            @app.task(name="fanout.notify", shared=False)
            def notify(job):  # the engine never runs it: fanout does
                raise RuntimeError("run by fanout")

            if case == "delay":
                # .delay() takes no options: the app's task_routes route it.
                result = notify.delay(job)
            else:
                result = notify.apply_async((job,), **route, **options)
        else:
            result = app.send_task("fanout.notify", args=args, kwargs=kwargs, **route, **options)
        print(json.dumps({"case": case, "id": job["id"], "task_id": result.id}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
