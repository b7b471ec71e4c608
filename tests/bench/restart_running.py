#!/usr/bin/env python3
"""Issue 16's figure: a graceful restart of ferryd with N executions
(default 1,000) running on fake agents.

ferryd runs an environment of the test compute plugin whose workers are
ferry-fake-agent with `run_ms` (each execution stays `started` until the
benchmark ends). Once all N are started, each measured restart is:

  SIGTERM to ferryd -> it has exited (stop_ms) -> a new ferryd on the same
  data dir and port answers GET /v1/environments (answering_ms) -> every
  worker taken back has called again, `"awaiting": 0` (reconnected_ms).

All three are measured from the SIGTERM. After each restart every one of
the N executions must still be `started` (none ended by the restart) and no
agent may have exited. The fake agents retry a failed poll after 50 ms,
doubling (ferry-agent starts at 0.5 s). Target: reconnected under 3 s.
There is no peer; the ratio printed is to the target. The first restart is
a warm-up, not counted.

  restart_running.py [--build DIR] [--count N] [--workers W] [--restarts R]

Prints a JSON document on stdout.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import Ferryd, load  # noqa: E402

TARGET_MS = 3000.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port, path):
    """GET PATH, or None while nothing answers there."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path)
        resp = c.getresponse()
        body = resp.read()
        c.close()
    except (ConnectionError, http.client.HTTPException, OSError):
        return None
    return json.loads(body) if resp.status == 200 else None


def started_count(port):
    """How many executions are `started`: the list answers at most 1,000,
    which is why --count is at most that."""
    r = get_json(port, "/v1/executions?status=started&limit=1000")
    return len(r["executions"]) if r is not None else -1


def agents(url):
    out = subprocess.run(["pgrep", "-f", f"ferry-fake-agent --server {url}"],
                         capture_output=True, text=True).stdout.split()
    return set(out)


def wait_for(what, fn, timeout_s, d=None):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        if d is not None and d.proc.poll() is not None:
            with open(d.log_path) as f:
                sys.exit(f"ferryd exited while waiting for {what}:\n{f.read()[-3000:]}")
        time.sleep(0.002)
    sys.exit(f"timed out waiting for {what}")


def env_entry(port):
    r = get_json(port, "/v1/environments")
    return r["environments"][0] if r else None


def one_restart(a, conf, work, port, d, url, before):
    t0 = time.perf_counter()
    d.proc.send_signal(15)
    d.proc.wait(timeout=30)
    stop_ms = (time.perf_counter() - t0) * 1000
    d.log.close()
    nd = Ferryd(a.build, conf, work, listen=f"127.0.0.1:{port}", wait=False,
                retire_workers=False)
    wait_for("ferryd to answer", lambda: env_entry(port), 30, nd)
    answering_ms = (time.perf_counter() - t0) * 1000
    wait_for("every worker to call again",
             lambda: (lambda e: e and e["workers"]["awaiting"] == 0)(env_entry(port)), 60, nd)
    reconnected_ms = (time.perf_counter() - t0) * 1000
    e = env_entry(port)
    running = started_count(port)
    left = agents(url)
    if e["workers"]["total"] != a.workers or running != a.count or left != before:
        sys.exit(f"after the restart: {e['workers']} workers, {running} started (of "
                 f"{a.count}), {len(left)} agents of {len(before)}")
    return nd, {"stop_ms": stop_ms, "answering_ms": answering_ms,
                "reconnected_ms": reconnected_ms}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build-bench"))
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--restarts", type=int, default=5)
    a = ap.parse_args()
    if not 1 <= a.count <= 1000:
        sys.exit("--count: 1 to 1,000 (what one page of GET /v1/executions counts)")
    a.build = os.path.abspath(a.build)
    slots = -(-a.count // a.workers)
    conf = (f'default_environment = "fast";\n'
            f'environments = ({{ name = "fast"; compute = "test"; agent = "fake";\n'
            f'  fake_run_ms = 86400000; slots = {slots}; min_workers = 0;'
            f' max_workers = {a.workers}; idle_timeout = 600; }});\n')
    work = tempfile.mkdtemp(prefix="ferry-restart-running-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    d = None
    runs = []
    try:
        d = Ferryd(a.build, conf, work, listen=f"127.0.0.1:{port}", retire_workers=False)
        sha = d.snapshot()
        load(a.build, d.url, sha, a.count, 16, environment="fast", wait=False)
        wait_for(f"{a.count} executions started",
                 lambda: (lambda e: e and e["workers"]["busy"] == a.workers and
                          started_count(port) == a.count)(env_entry(port)),
                 120, d)
        before = agents(url)
        if len(before) != a.workers:
            sys.exit(f"{len(before)} fake agents running, expected {a.workers}")
        for i in range(a.restarts + 1):
            d, r = one_restart(a, conf, work, port, d, url, before)
            if i > 0:
                runs.append(r)
    finally:
        if d is not None:
            d.stop()
        for pid in agents(url):
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)

    def summary(key):
        v = [r[key] for r in runs]
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)}

    out = {"restart_running": {
        "executions": a.count, "workers": a.workers, "slots": slots,
        "stop_ms": summary("stop_ms"), "answering_ms": summary("answering_ms"),
        "reconnected_ms": summary("reconnected_ms"), "target_ms": TARGET_MS,
        "peer": None,
    }}
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
