#!/usr/bin/env python3
"""One Celery baseline run: start a worker, publish N jobs of M targets,
wait for N*M deliveries at the sink, print one JSON line on stdout.

    python3 benches/celery_baseline/run.py \\
        --broker amqp://guest:guest@127.0.0.1:5672// --queue bench123.celery \\
        --sink http://127.0.0.1:PORT/hook --jobs N --targets M \\
        --pool prefork|threads --concurrency C [--timeout 600]

The sink must count POSTs and answer ``GET /count`` with the total as a
plain decimal integer. Diagnostics go to stderr (the worker's own output
too); stdout carries only the result line. Exit status: 0 with a result,
1 when the run failed (worker did not start or died, deliveries timed out),
2 for bad arguments. The worker is stopped and the queue and the run's
remote-control exchanges deleted in every case.
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

import amqp.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL = 0.02  # s, delivery-count poll interval
RSS_EVERY = 0.1  # s, process-tree RSS sample interval during the load
READY_TIMEOUT = 60.0  # s, worker start
STOP_TIMEOUT = 20.0  # s, warm shutdown before SIGKILL


def log(msg):
    print(f"[celery_baseline] {msg}", file=sys.stderr, flush=True)


class RunError(Exception):
    pass


# --- /proc: the worker's process tree -----------------------------------------

def _stat(pid):
    """(ppid, utime, stime, cutime, cstime) in ticks, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces or parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
    return int(fields[1]), int(fields[11]), int(fields[12]), int(fields[13]), int(fields[14])


def tree(root):
    """root and all its live descendants, with their /proc/PID/stat data."""
    stats = {}
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = _stat(pid)
        if st is None:
            continue
        stats[pid] = st
        children.setdefault(st[0], []).append(pid)
    out = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out[pid] = stats[pid]
            todo.extend(children.get(pid, ()))
    return out


def _vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS line)


def pss_kib(root):
    """Sum of Pss over the tree (shared pages split between their users):
    a diagnostic only, for prefork, whose children share most pages."""
    total = 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def rss_kib(root):
    """Sum of VmRSS over the tree (shared pages counted once per process)."""
    return sum(_vmrss_kib(pid) for pid in tree(root))


def cpu_seconds(root):
    """utime+stime of every live process of the tree, plus the root's
    cutime+cstime (children it already reaped, e.g. recycled pool
    processes): each tick counted once."""
    t = tree(root)
    ticks = sum(st[1] + st[2] for st in t.values())
    if root in t:
        ticks += t[root][3] + t[root][4]
    return ticks / CLK_TCK


# --- the sink ------------------------------------------------------------------

class Counter:
    """GET {origin}/count on one kept-alive connection."""

    def __init__(self, sink_url):
        u = urlsplit(sink_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise RunError(f"--sink {sink_url!r} is not an http(s) URL")
        self.cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        self.host, self.port = u.hostname, u.port
        self.origin = f"{u.scheme}://{u.netloc}"
        self.conn = None

    def get(self):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self.cls(self.host, self.port, timeout=5)
            try:
                self.conn.request("GET", "/count")
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RunError(f"{self.origin}/count answered {resp.status}: {body[:200]!r}")
                return int(body.strip())
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise RunError(f"cannot read {self.origin}/count: {e!r}") from e

    def close(self):
        if self.conn is not None:
            self.conn.close()


# --- the run ---------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--sink", required=True, help="POST target, e.g. http://127.0.0.1:PORT/hook")
    p.add_argument("--jobs", type=int, required=True)
    p.add_argument("--targets", type=int, required=True)
    p.add_argument("--pool", choices=("prefork", "threads"), required=True)
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds from the first publish to the last delivery (default 600)")
    p.add_argument("--publisher-confirms", action="store_true",
                   help="publish the jobs with publisher confirms, as the engine in tasks.py "
                        "would (about 4x slower to publish from Python; off by default so "
                        "the run measures the worker, not the publisher)")
    a = p.parse_args(argv)
    for name in ("jobs", "targets", "concurrency"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    if a.timeout <= 0:
        p.error("--timeout must be positive")
    return a


def start_worker(a, env, ready_file):
    cmd = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker",
        "--pool", a.pool, "--concurrency", str(a.concurrency),
        "-Q", a.queue,
        # A node name of its own, so its pidbox queue never clashes with
        # another worker on the same host.
        "-n", f"{a.queue}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-l", "warning",
    ]
    log("starting: " + " ".join(cmd))
    # Own session: on a hung shutdown the whole group can be killed.
    # stdout too goes to our stderr, so our stdout holds only the result.
    return subprocess.Popen(cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL,
                            stdout=sys.stderr, stderr=sys.stderr, start_new_session=True)


def queue_exists(app, queue):
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_declare(queue=queue, passive=True)
        return True
    except amqp.exceptions.NotFound:
        return False


def wait_ready(worker, ready_file, app, queue):
    """The worker_ready signal (written by tasks.py) and a consumer on the
    queue, within READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not os.path.exists(ready_file) or os.path.getsize(ready_file) == 0:
        if worker.poll() is not None:
            raise RunError(f"worker exited with status {worker.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RunError(f"worker not ready after {READY_TIMEOUT:.0f} s")
        time.sleep(0.05)
    while True:
        try:
            with app.connection_for_write() as conn:
                _, messages, consumers = conn.default_channel.queue_declare(queue=queue, passive=True)
            if consumers >= 1:
                return messages
        except amqp.exceptions.NotFound:
            pass  # not declared yet
        if time.monotonic() > deadline:
            raise RunError(f"queue {queue} has no consumer {READY_TIMEOUT:.0f} s after start")
        time.sleep(0.05)


def stop_worker(worker):
    if worker.poll() is None:
        log("stopping worker (SIGTERM, warm shutdown)")
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"worker still running after {STOP_TIMEOUT:.0f} s: SIGKILL")
    # Whatever is left of the group (a hung main, orphaned pool children).
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    worker.wait()


def cleanup_broker(app, queue, control):
    """Delete the queue and this run's remote-control/event exchanges (their
    names are derived from the queue, so no other worker uses them)."""
    try:
        with app.connection_for_write() as conn:
            ch = conn.channel()
            try:
                n = ch.queue_delete(queue=queue)
                log(f"deleted queue {queue} ({n} messages left in it)")
            finally:
                ch.close()
            # Celery declares a direct exchange named after the queue.
            for ex in (queue, f"{control}.pidbox", f"reply.{control}.pidbox", f"{control}.ev"):
                ch = conn.channel()
                try:
                    ch.exchange_delete(exchange=ex)  # no error if absent (RabbitMQ >= 3.x)
                except Exception as e:  # noqa: BLE001 - best effort
                    log(f"could not delete exchange {ex}: {e!r}")
                finally:
                    try:
                        ch.close()
                    except Exception:  # noqa: BLE001
                        pass
    except Exception as e:  # noqa: BLE001 - report, but do not mask the run's outcome
        log(f"broker cleanup failed: {e!r}")


def main(argv):
    a = parse_args(argv)
    # Killed by the caller: still stop the worker and clean the broker.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    total = a.jobs * a.targets
    control = a.queue  # remote-control namespace of this run only
    ready_dir = tempfile.mkdtemp(prefix="celery_baseline.")
    ready_file = os.path.join(ready_dir, "ready")

    env = dict(os.environ)
    env.update(
        CELERY_BROKER_URL=a.broker,
        CELERY_QUEUE=a.queue,
        FANOUT_SINK_URL=a.sink,
        CELERY_CONTROL_EXCHANGE=control,
        CELERY_BASELINE_READY_FILE=ready_file,
        PYTHONPATH=os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH")) if p),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",  # leave no __pycache__ in the repo
    )
    # The publisher is the same app as the worker (same settings: JSON,
    # persistent messages, same default queue and exchange).
    os.environ.update({k: env[k] for k in ("CELERY_BROKER_URL", "CELERY_QUEUE", "FANOUT_SINK_URL",
                                            "CELERY_CONTROL_EXCHANGE")})
    sys.path.insert(0, HERE)
    sys.dont_write_bytecode = True
    from tasks import app  # noqa: E402
    if not a.publisher_confirms:
        # This process only; the worker keeps confirms for its retries.
        app.conf.broker_transport_options = {}

    counter = Counter(a.sink)
    worker = None
    owned = False  # the queue is ours to delete: it did not exist before the run
    try:
        counter.get()  # the sink is up before anything starts
        if queue_exists(app, a.queue):
            raise RunError(f"queue {a.queue} already exists: use a fresh queue name per run")
        owned = True
        worker = start_worker(a, env, ready_file)
        t0 = time.monotonic()
        backlog = wait_ready(worker, ready_file, app, a.queue)
        log(f"worker ready in {time.monotonic() - t0:.2f} s")
        if backlog:
            raise RunError(f"queue {a.queue} holds {backlog} messages before the run")

        time.sleep(1.0)  # let start-up allocations settle
        rss_idle = rss_kib(worker.pid)
        cpu_start = cpu_seconds(worker.pid)
        log(f"idle: rss {rss_idle} KiB (pss {pss_kib(worker.pid)} KiB) over "
            f"{len(tree(worker.pid))} processes, {cpu_start:.2f} CPU s spent starting up")

        base = counter.get()
        target = base + total
        rss_peak = rss_idle
        with app.producer_or_acquire() as producer:
            start = time.monotonic()
            for i in range(a.jobs):
                job = {
                    "version": 1,
                    "id": f"bench-{i}",
                    "alert": {"group_id": f"g{i}", "title": "bench"},
                    "targets": [{"destination": f"hook{k}"} for k in range(a.targets)],
                    "payload": {"enqueued_ms": int(time.time() * 1000)},
                }
                app.send_task("fanout.notify", kwargs={"job": job}, producer=producer)
        published = time.monotonic()
        log(f"published {a.jobs} jobs in {published - start:.2f} s")

        deadline = start + a.timeout
        next_rss = time.monotonic()
        seen = base
        while True:
            now = time.monotonic()
            seen = counter.get()
            if seen >= target:
                end = time.monotonic()  # the answer that showed the last delivery
                break
            if now >= next_rss:
                rss_peak = max(rss_peak, rss_kib(worker.pid))
                next_rss = now + RSS_EVERY
            if worker.poll() is not None:
                raise RunError(f"worker exited with status {worker.returncode} after "
                               f"{seen - base}/{total} deliveries")
            if now > deadline:
                raise RunError(f"timeout: {seen - base}/{total} deliveries after {a.timeout:g} s "
                               f"(sink {counter.origin}/count)")
            time.sleep(POLL)
        # Read before the worker is stopped.
        rss_peak = max(rss_peak, rss_kib(worker.pid))
        cpu = cpu_seconds(worker.pid) - cpu_start
        if seen > target:
            log(f"warning: sink counted {seen - target} deliveries more than expected "
                "(retries, or another client of the sink)")

        seconds = end - start
        result = {
            "pool": a.pool,
            "concurrency": a.concurrency,
            "deliveries": total,
            "seconds": round(seconds, 4),
            "deliveries_per_s": round(total / seconds, 1),
            "rss_idle_kib": rss_idle,
            "rss_peak_kib": rss_peak,
            "cpu_seconds": round(cpu, 2),
            "publish_seconds": round(published - start, 4),
        }
    except RunError as e:
        log(f"error: {e}")
        return 1
    finally:
        counter.close()
        if worker is not None:
            stop_worker(worker)
        if owned:
            cleanup_broker(app, a.queue, control)
        try:
            os.unlink(ready_file)
        except OSError:
            pass
        os.rmdir(ready_dir)

    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
