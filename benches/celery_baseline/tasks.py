"""Celery 5 baseline for the fanout benchmark.

One task, ``fanout.notify(job=...)``: the same message a Python alerting
engine already sends (``app.send_task("fanout.notify", kwargs={"job": job})``)
and the same work fanout does with it in the benchmark: one JSON POST per
target to a loopback sink.

Environment:

    CELERY_BROKER_URL   broker, e.g. amqp://guest:guest@127.0.0.1:5672//
    CELERY_QUEUE        queue to consume and publish to (default queue)
    FANOUT_SINK_URL     where every delivery is POSTed, e.g. http://127.0.0.1:PORT/hook
    CELERY_CONTROL_EXCHANGE   optional: remote-control namespace (default
                        "celery"); run.py sets a per-run one so it can remove
                        the exchanges afterwards without touching other workers
    CELERY_BASELINE_READY_FILE  optional: the worker touches this file once it
                        consumes (worker_ready signal); run.py waits on it

The settings below are the ones a careful SRE would pick for an on-call
engine whose rule is "never lose a page", each with its reason.
"""
import http.client
import json
import os
import threading
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import worker_ready

QUEUE = os.environ.get("CELERY_QUEUE", "fanout.celery")
SINK_URL = os.environ.get("FANOUT_SINK_URL", "http://127.0.0.1:8080/hook")
CONTROL = os.environ.get("CELERY_CONTROL_EXCHANGE", "celery")

app = Celery("fanout_baseline", broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))

app.conf.update(
    # --- never lose a page ------------------------------------------------
    # Ack only after the task returned (or failed for good). A worker that
    # dies mid-delivery leaves the message unacked and RabbitMQ redelivers
    # it: at-least-once, the same contract fanout keeps.
    task_acks_late=True,
    # With acks_late, a child killed by the OOM killer / SIGKILL would
    # otherwise have its message acked as "failed"; reject it instead so it
    # is requeued and delivered by another process.
    task_reject_on_worker_lost=True,
    # One unacked message per process (or thread): nothing sits reserved in
    # a busy worker's memory while another one idles, and a crash can only
    # ever put <concurrency> messages back in flight.
    worker_prefetch_multiplier=1,
    # If the broker connection drops, the acks of running tasks cannot be
    # delivered any more and those messages will be redelivered anyway:
    # cancel them rather than run them twice in parallel. (Also silences the
    # Celery 5.x deprecation warning about this default changing.)
    worker_cancel_long_running_tasks_on_connection_loss=True,
    # Publisher side (the engine, and task retries which re-publish): wait
    # for RabbitMQ's publisher confirm, so a page is never "sent" into a
    # broker that dropped it. Messages are persistent (delivery_mode 2, the
    # Celery default, stated here on purpose) on a durable queue.
    broker_transport_options={"confirm_publish": True},
    task_default_delivery_mode="persistent",
    task_publish_retry=True,
    # Keep retrying the broker connection at startup instead of exiting.
    broker_connection_retry_on_startup=True,
    # A delivery hung on a dead peer must not hold a worker slot forever:
    # the HTTP timeouts below bound one POST, these bound the whole task.
    # The hard limit kills the child, and task_reject_on_worker_lost puts
    # the message back. (Only prefork enforces time limits; under the
    # threads pool the HTTP timeouts are the bound.)
    task_soft_time_limit=120,
    task_time_limit=150,
    # A task that failed for good (after its retries) is still acked
    # (Celery's default, stated): requeueing it would loop a poison message
    # forever. fanout copies such jobs to a dead-letter queue instead.
    task_acks_on_failure_or_timeout=True,
    # --- routing ------------------------------------------------------------
    # A durable classic queue (Celery's default queue type) holding
    # persistent messages: survives a broker restart. On a RabbitMQ cluster
    # an SRE would pick task_default_queue_type="quorum" (replicated, what
    # fanout declares). Not here: with quorum queues Celery 5.5+ routes
    # countdown retries through its native delayed delivery, which declares
    # vhost-wide celery_delayed_* exchanges and queues at worker start, and
    # the benchmark must leave the broker as it found it. On one node the
    # durability is the same; the classic queue is if anything cheaper.
    task_default_queue=QUEUE,
    task_create_missing_queues=True,
    # Remote control (celery inspect / control) stays on as in production;
    # its exchanges live under this namespace.
    control_exchange=CONTROL,
    event_exchange=f"{CONTROL}.ev" if CONTROL != "celery" else "celeryev",
    # --- data -----------------------------------------------------------------
    # JSON only: a pickled body is code, not data (fanout refuses it too).
    task_serializer="json",
    accept_content=["json"],
    # No result backend: a notification has nothing to return, and the
    # engine does not wait on it.
    task_ignore_result=True,
    result_backend=None,
    task_store_errors_even_if_ignored=False,
    # No per-task events (no monitor in the benchmark, and none in fanout).
    worker_send_task_events=False,
    task_send_sent_event=False,
)


# --- HTTP: one keep-alive connection per worker process and thread ----------
# http.client from the standard library: urllib3 is not a Celery dependency,
# and the sink is a single origin, so one persistent connection per thread is
# the whole "pool". prefork: each child runs tasks on its main thread, so one
# connection per child; threads: one per pool thread. The pid is checked so a
# connection opened before a fork is never shared with the child.
_SINK = urlsplit(SINK_URL)
_SINK_PATH = (_SINK.path or "/") + (f"?{_SINK.query}" if _SINK.query else "")
_TIMEOUT = 10.0  # seconds, per connect and per read
_local = threading.local()


def _connection() -> http.client.HTTPConnection:
    pid = os.getpid()
    conn = getattr(_local, "conn", None)
    if conn is None or _local.pid != pid:
        cls = http.client.HTTPSConnection if _SINK.scheme == "https" else http.client.HTTPConnection
        conn = cls(_SINK.hostname, _SINK.port, timeout=_TIMEOUT)
        _local.conn, _local.pid = conn, pid
    return conn


def _post(body: bytes) -> int:
    """POST body to the sink on this thread's connection; return the status."""
    conn = _connection()
    # A kept-alive connection the sink closed while idle fails on first use;
    # that one case is retried once on a fresh connection. Any other
    # failure goes up to the task's retry.
    reused = conn.sock is not None
    for attempt in (1, 2):
        try:
            conn.request("POST", _SINK_PATH, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()  # drain, so the connection can carry the next request
            return resp.status
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn.close()
            if not (reused and attempt == 1):
                raise
        except BaseException:
            conn.close()  # never reuse a connection left mid-exchange
            raise
    raise AssertionError("unreachable")


class DeliveryError(Exception):
    """The sink answered something other than 2xx."""


@app.task(
    name="fanout.notify",
    # Transport errors (OSError covers refused/reset connections and
    # timeouts; HTTPException covers malformed answers) and non-2xx answers
    # retry the task, with exponential backoff and jitter, 5 times.
    autoretry_for=(DeliveryError, OSError, http.client.HTTPException),
    max_retries=5,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    acks_late=True,
    ignore_result=True,
)
def notify(job):
    # A retry re-runs the whole job, so targets already served are POSTed
    # again: at-least-once per target, as with any Celery task that loops.
    # (In the benchmark the sink always answers 200, so counts are exact.)
    title = job["alert"]["title"]
    payload = job.get("payload")
    for target in job["targets"]:
        body = json.dumps(
            {
                "job_id": job["id"],
                "destination": target["destination"],
                "title": title,
                "payload": payload,
            }
        ).encode()
        status = _post(body)
        if not 200 <= status < 300:
            raise DeliveryError(f"{SINK_URL} answered {status} for {job['id']} -> {target['destination']}")


@worker_ready.connect
def _signal_ready(sender=None, **_):
    path = os.environ.get("CELERY_BASELINE_READY_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
