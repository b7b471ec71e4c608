#!/usr/bin/env python3
"""Issue 2's figures, measured against a running ferryd through its HTTP API.

  1. one trivial execution (`true`), submit -> complete, on warm workers:
     median and p95 over N runs (target: median under 20 ms);
  2. 200 trivial executions on the local environment, submit -> all
     complete (target: under 1 s).

Each figure is printed next to a floor measured in the same run on the same
machine: the same work done by a plain shell (`sh -c true` started from
Python, one at a time; and 200 of them through `xargs -P WORKERS`), with the
ratio. Usage: skeleton.py SERVER_URL [--runs N] [--count 200] [--workers 2]
Prints a JSON document on stdout.
"""
import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
import http.client
import urllib.parse


_conn = None


def call(server, method, path, body=None, ctype="application/json"):
    """One request on a kept-alive connection, as a real client would hold."""
    global _conn
    if _conn is None:
        u = urllib.parse.urlsplit(server)
        _conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    headers = {"Content-Type": ctype} if data is not None else {}
    _conn.request(method, path, body=data, headers=headers)
    resp = _conn.getresponse()
    payload = resp.read()
    if resp.status >= 400:
        sys.exit(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
    return json.loads(payload or b"null")


def snapshot(server):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"- step:\n    name: noop\n    image: none\n    command: 'true'\n"
        info = tarfile.TarInfo("ferry.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return call(server, "POST", "/v1/snapshots", buf.getvalue(), "application/gzip")["snapshot"]


def create(server, sha):
    return call(server, "POST", "/v1/executions",
                {"project": "bench", "step": "noop", "snapshot": sha})


def wait(server, ident):
    while True:
        e = call(server, "GET", f"/v1/executions/{ident}/wait?timeout=60")
        if e["status"] in ("complete", "error", "stopped"):
            return e


def percentile(values, p):
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def one_execution(server, sha, runs):
    times = []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        e = create(server, sha)
        done = wait(server, e["id"])
        dt = (time.perf_counter() - t0) * 1000
        if done["status"] != "complete":
            sys.exit(f"execution {e['id']} ended {done['status']}: {done['status_reason']}")
        if i >= 3:  # warm-up excluded: the first runs start the workers
            times.append(dt)
    return times


def shell_floor(runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(["sh", "-c", "true"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def many_executions(server, sha, count):
    t0 = time.perf_counter()
    ids = [create(server, sha)["id"] for _ in range(count)]
    for ident in ids:
        e = wait(server, ident)
        if e["status"] != "complete":
            sys.exit(f"execution {ident} ended {e['status']}: {e['status_reason']}")
    return (time.perf_counter() - t0) * 1000


def xargs_floor(count, workers):
    t0 = time.perf_counter()
    subprocess.run(f"seq {count} | xargs -P {workers} -n 1 sh -c true", shell=True, check=True)
    return (time.perf_counter() - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    sha = snapshot(a.server)
    single = one_execution(a.server, sha, a.runs)
    floor = shell_floor(a.runs)
    batches = [many_executions(a.server, sha, a.count) for _ in range(a.repeats)]
    xargs = [xargs_floor(a.count, a.workers) for _ in range(a.repeats)]
    out = {
        "single_submit_to_complete_ms": {
            "median": statistics.median(single), "p95": percentile(single, 95),
            "min": min(single), "max": max(single), "runs": len(single),
            "peer": "sh -c true (fork+exec from Python)",
            "peer_median": statistics.median(floor),
            "ratio": statistics.median(single) / statistics.median(floor)},
        "batch_submit_to_all_complete_ms": {
            "count": a.count, "workers": a.workers, "median": statistics.median(batches),
            "min": min(batches), "max": max(batches), "repeats": len(batches),
            "peer": f"seq {a.count} | xargs -P {a.workers} sh -c true",
            "peer_median": statistics.median(xargs),
            "ratio": statistics.median(batches) / statistics.median(xargs)},
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
