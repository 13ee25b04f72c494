#!/usr/bin/env python3
"""Celery 5 baseline for ``benches/chains.rs``: N tasks, each published
with ``countdown=w`` (w seconds, 1..max), all pending at once in one worker.

    python3 benches/celery_baseline/countdown.py \\
        --broker amqp://guest:guest@127.0.0.1:5672// --queue bench123.countdown \\
        [--sink http://127.0.0.1:PORT/hook] --chains N --max-wait S \\
        [--waits FILE] [--seed K] [--concurrency 8] [--grace 60] [--rss-every 5]

This file is both the Celery app (the worker runs ``celery -A countdown``)
and the runner (``__main__``). The runner starts the worker, measures its
RSS (VmRSS summed over its process tree) at rest, publishes the N tasks
(publisher confirms on; each task's due time = the wall clock right after
its confirm + w), samples the RSS every --rss-every seconds from the first
publish (and once more at the end of the wait), and waits until every task has POSTed ``{"job_id": ...}`` to the sink
or --grace seconds past the last due time. Lateness = the sink's arrival
time (wall clock, unix ms) - due time.

The sink must answer POST (any path) with 2xx, ``GET /count`` with the
number of distinct job ids received so far (a plain integer), and
``GET /arrivals`` with ``{"job_id": [unix_ms, ...], ...}``. Without
--sink, the runner starts one of its own on 127.0.0.1.

Diagnostics go to stderr; stdout carries one JSON line with the result.
The worker's own output goes to a file (its path is printed on failure).
Exit status: 0 with a result (complete or not: see "received"), 1 when the
run failed (worker did not start or died), 2 for bad arguments. The worker
is stopped and the queue and the run's exchanges deleted in every case.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import amqp.exceptions
from celery import Celery
from celery.signals import worker_ready

# The worker's process tree, readiness and shutdown, as run.py measures them.
from run import RunError, rss_kib, stop_worker
from run import cleanup_broker as _cleanup_broker
from run import wait_ready as _wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = os.environ.get("COUNTDOWN_QUEUE", "fanout.countdown")
SINK_URL = os.environ.get("COUNTDOWN_SINK_URL", "http://127.0.0.1:8080/hook")
TASK = "countdown.post"

app = Celery("countdown_baseline",
             broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.update(
    # The "never lose a page" settings of tasks.py (see README.md there).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Prefetch multiplier 1 (as tasks.py). It does not bound ETA tasks:
    # Celery raises the channel's prefetch by one for every ETA/countdown
    # task it receives and holds them all in worker memory, unacked, until
    # they are due.
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    broker_transport_options={"confirm_publish": True},
    task_default_delivery_mode="persistent",
    task_publish_retry=True,
    broker_connection_retry_on_startup=True,
    # A durable classic queue of its own (the Celery default queue type):
    # with quorum queues Celery 5.5+ would route countdowns through its
    # native delayed delivery, declaring vhost-wide celery_delayed_*
    # exchanges and queues; this measures the classic ETA path.
    task_default_queue=QUEUE,
    task_create_missing_queues=True,
    # Remote control under a per-run namespace, deleted afterwards.
    control_exchange=QUEUE,
    event_exchange=f"{QUEUE}.ev",
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    result_backend=None,
    worker_send_task_events=False,
    task_send_sent_event=False,
)

_SINK = urlsplit(SINK_URL)
_SINK_PATH = (_SINK.path or "/") + (f"?{_SINK.query}" if _SINK.query else "")


class DeliveryError(Exception):
    """The sink answered something other than 2xx."""


@app.task(
    name=TASK,
    autoretry_for=(DeliveryError, OSError, http.client.HTTPException),
    max_retries=5,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    acks_late=True,
    ignore_result=True,
)
def post(job_id):
    # One connection per POST: at most a few hundred a second here.
    conn = http.client.HTTPConnection(_SINK.hostname, _SINK.port, timeout=10.0)
    try:
        conn.request("POST", _SINK_PATH, body=json.dumps({"job_id": job_id}).encode(),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    if not 200 <= resp.status < 300:
        raise DeliveryError(f"{SINK_URL} answered {resp.status} for {job_id}")


@worker_ready.connect
def _signal_ready(sender=None, **_):
    path = os.environ.get("COUNTDOWN_READY_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


# --- the runner (not used by the worker) ---------------------------------------

def log(msg):
    print(f"[countdown] {msg}", file=sys.stderr, flush=True)


class OwnSink:
    """A sink in this process, for runs without --sink."""

    def __init__(self):
        arrivals, lock = {}, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = int(time.time() * 1000)
                try:
                    job_id = json.loads(body)["job_id"]
                except (ValueError, KeyError, TypeError):
                    job_id = None
                if isinstance(job_id, str):
                    with lock:
                        arrivals.setdefault(job_id, []).append(at)
                self._answer(b"ok")

            def do_GET(self):
                with lock:
                    if self.path == "/count":
                        body = str(len(arrivals)).encode()
                    elif self.path == "/arrivals":
                        body = json.dumps(arrivals).encode()
                    else:
                        return self._answer(b"not found", 404)
                self._answer(body)

            def _answer(self, body, status=200):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def sink_get(sink_url, path):
    u = urlsplit(sink_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RunError(f"{u.scheme}://{u.netloc}{path} answered {resp.status}")
    return body


def percentile(sorted_values, p):
    """Nearest rank (the same as benches/chains.rs)."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(p * 1000) * len(sorted_values) // 1000))  # ceil(p * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", required=True)
    p.add_argument("--queue", required=True, help="a fresh queue name, only this run's")
    p.add_argument("--sink", help="POST target; without it, a sink in this process")
    p.add_argument("--chains", type=int, required=True)
    p.add_argument("--max-wait", type=int, required=True, help="seconds; waits are uniform in 1..max")
    p.add_argument("--waits", help="file with one wait (whole seconds) per line, used instead of random ones")
    p.add_argument("--seed", type=int, help="seed for the random waits")
    p.add_argument("--concurrency", type=int, default=8, help="threads pool size (default 8)")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds past the last due time before giving up (default 60)")
    p.add_argument("--rss-every", type=float, default=5.0, help="RSS sample interval, s (default 5)")
    a = p.parse_args(argv)
    if a.chains < 1 or a.max_wait < 1 or a.concurrency < 1:
        p.error("--chains, --max-wait and --concurrency must be at least 1")
    return a


def waits_for(a):
    if a.waits:
        with open(a.waits) as f:
            waits = [int(line) for line in f if line.strip()]
        if len(waits) != a.chains:
            raise RunError(f"{a.waits} holds {len(waits)} waits, not {a.chains}")
        return waits
    rng = random.Random(a.seed)
    return [rng.randint(1, a.max_wait) for _ in range(a.chains)]


def start_worker(a, env, log_path):
    cmd = [
        sys.executable, "-m", "celery", "-A", "countdown", "worker",
        "--pool", "threads", "--concurrency", str(a.concurrency),
        "-Q", a.queue, "-n", f"{a.queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-l", "warning",
    ]
    log("starting: " + " ".join(cmd))
    with open(log_path, "wb") as out:
        return subprocess.Popen(cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def queue_exists(queue):
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_declare(queue=queue, passive=True)
        return True
    except amqp.exceptions.NotFound:
        return False


def wait_ready(worker, ready_file, queue):
    return _wait_ready(worker, ready_file, app, queue)


def cleanup_broker(queue):
    """The queue, the direct exchange Celery declared under its name, and
    this run's remote-control exchanges (named after the queue)."""
    _cleanup_broker(app, queue, queue)


def main(argv):
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        waits = waits_for(a)
    except (OSError, ValueError, RunError) as e:
        log(f"error: {e}")
        return 2
    own_sink = None if a.sink else OwnSink()
    sink = a.sink or own_sink.url
    work = tempfile.mkdtemp(prefix="countdown.")
    ready_file = os.path.join(work, "ready")
    worker_log = os.path.join(work, "worker.log")
    env = dict(os.environ)
    env.update(
        CELERY_BROKER_URL=a.broker,
        COUNTDOWN_QUEUE=a.queue,
        COUNTDOWN_SINK_URL=sink,
        COUNTDOWN_READY_FILE=ready_file,
        PYTHONPATH=os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    # This process publishes with the same settings, so the same queue.
    app.conf.broker_url = a.broker
    app.conf.task_default_queue = a.queue
    app.conf.control_exchange = a.queue
    app.conf.event_exchange = f"{a.queue}.ev"

    worker, owned, failed = None, False, True
    try:
        sink_get(sink, "/count")  # the sink is up
        if queue_exists(a.queue):
            raise RunError(f"queue {a.queue} already exists: use a fresh name per run")
        owned = True
        worker = start_worker(a, env, worker_log)
        t0 = time.monotonic()
        backlog = wait_ready(worker, ready_file, a.queue)
        log(f"worker ready in {time.monotonic() - t0:.2f} s")
        if backlog:
            raise RunError(f"queue {a.queue} holds {backlog} messages before the run")
        time.sleep(2.0)  # as chains.rs: let start-up settle
        rss_baseline = rss_kib(worker.pid)
        base = int(sink_get(sink, "/count"))
        if base:
            raise RunError(f"the sink already counts {base} job ids: use a fresh sink")

        samples, stop = [], threading.Event()
        start = time.time()

        def sample():
            while True:
                samples.append([round(time.time() - start, 1), rss_kib(worker.pid)])
                if stop.wait(a.rss_every):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        due_ms = {}
        with app.producer_or_acquire() as producer:
            for i, w in enumerate(waits):
                job_id = f"c-{i}"
                app.send_task(TASK, args=[job_id], countdown=w, producer=producer)
                # confirm_publish: send_task returned after the broker's confirm.
                due_ms[job_id] = int(time.time() * 1000) + w * 1000
        published = time.time()
        log(f"published {a.chains} countdown tasks in {published - start:.2f} s")

        deadline = max(due_ms.values()) / 1000 + a.grace
        while True:
            seen = int(sink_get(sink, "/count"))
            if seen >= a.chains or time.time() > deadline:
                break
            if worker.poll() is not None:
                raise RunError(f"worker exited with status {worker.returncode} after {seen}/{a.chains}")
            time.sleep(0.2)
        stop.set()
        sampler.join()
        samples.append([round(time.time() - start, 1), rss_kib(worker.pid)])  # end of the wait
        arrivals = json.loads(sink_get(sink, "/arrivals"))
        lateness, duplicates = [], 0
        for job_id, due in due_ms.items():
            at = arrivals.get(job_id)
            if at:
                lateness.append((min(at) - due) / 1000)
                duplicates += len(at) - 1
        lateness.sort()
        waiting = [kib for _, kib in samples]
        result = {
            "chains": a.chains,
            "max_wait_s": a.max_wait,
            "concurrency": a.concurrency,
            "pool": "threads",
            "prefetch_multiplier": 1,
            "publish_time": "per task, right after its publisher confirm",
            "publish_seconds": round(published - start, 3),
            "received": len(lateness),
            "duplicates": duplicates,
            "complete": len(lateness) == a.chains,
            "lateness_s": {k: percentile(lateness, p) for k, p in
                           (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))},
            "lateness_min_s": lateness[0] if lateness else None,
            "rss_baseline_kib": rss_baseline,
            "rss_wait_min_kib": min(waiting),
            "rss_wait_max_kib": max(waiting),
            "rss_wait_last_kib": waiting[-1],
            "rss_samples": samples,
            "worker_log": worker_log,
        }
        if not result["complete"]:
            log(f"incomplete: {len(lateness)}/{a.chains} tasks reached the sink by the deadline; "
                f"worker log: {worker_log}")
        failed = not result["complete"]
    except RunError as e:
        log(f"error: {e}; worker log: {worker_log}")
        return 1
    finally:
        if worker is not None:
            stop_worker(worker)
        if owned:
            cleanup_broker(a.queue)
        if own_sink is not None:
            own_sink.close()
        if failed:
            try:
                with open(worker_log) as f:
                    tail = f.readlines()[-30:]
                log("worker log (last lines):\n" + "".join(tail))
            except OSError:
                pass
        else:
            shutil.rmtree(work, ignore_errors=True)
            result["worker_log"] = None

    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
