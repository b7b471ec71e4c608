#!/usr/bin/env python3
"""Issue 3's figures: scheduling throughput and the memory a queue costs.

  1. N executions (default 10,000) submitted through POST /v1/executions as
     fast as a C client on kept-alive connections can, dispatched to warm
     workers of the `test` compute plugin running ferry-fake-agent (every
     execution finishes at once): executions per second from the first
     submission to the last execution stored complete (ferryd's `ended_at`).
     Target: at least 2,000 per second. There is no peer for this figure;
     the ratio printed is to the target.
  2. ferryd's resident memory (VmRSS) right after start, and with Q
     executions (default 100,000) queued in an environment whose only worker
     never finishes launching: KiB per queued execution. Targets: idle at
     most 20 MiB, at most 4 KiB per queued execution.
  3. ferryd's restart time with those Q executions stored: stopped, then
     started again on the same data dir, from exec to the first answer of
     the API that counts all Q queued again (--restarts times after one that
     is not counted).

Each figure uses a ferryd of its own, in a temporary data dir, on a free
loopback port. Usage:
  throughput.py [--build DIR] [--count N] [--repeats R] [--concurrency C]
                [--workers W] [--slots S] [--queued Q] [--restarts N]
                [--perf FILE]
Prints a JSON document on stdout.
"""
import argparse
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import http.client
import urllib.parse

TARGET_PER_S = 2000.0
TARGET_KIB_PER_QUEUED = 4.0
TARGET_IDLE_MIB = 20.0

STEP = b"- step:\n    name: noop\n    image: none\n    command: 'true'\n"


class Ferryd:
    """One ferryd with a config file of its own; stopped on exit."""

    def __init__(self, build, config_text, work, listen="127.0.0.1:0", wait=True,
                 retire_workers=True):
        """A ferryd on WORK/data (kept when it exists: a restart). With
        retire_workers (the default), its stop ends its agents."""
        self.work = work
        self.data = os.path.join(work, "data")
        os.makedirs(self.data, exist_ok=True)
        conf = os.path.join(work, "ferryd.conf")
        with open(conf, "w") as f:
            f.write(config_text)
        self.log_path = os.path.join(work, "ferryd.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [os.path.join(build, "bin", "ferryd"), "-c", conf, "--data-dir", self.data,
             "--listen", listen] + (["--retire-workers"] if retire_workers else []),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait:  # the caller finds out when it answers
            self.url = f"http://{listen}"
        else:
            self.url = self._wait_url()
        u = urllib.parse.urlsplit(self.url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    def _wait_url(self):
        for _ in range(200):
            with open(self.log_path) as f:
                m = re.search(r"listening on (http://\S+)", f.read())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path) as f:
            sys.exit("ferryd did not start:\n" + f.read())

    def call(self, method, path, body=None, ctype="application/json", may_fail=False):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        headers = {"Content-Type": ctype} if data is not None else {}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # A kept-alive connection the server closed while it was idle.
            self.conn.close()
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
        payload = resp.read()
        if resp.status >= 400 and may_fail:
            return None
        if resp.status >= 400:
            sys.exit(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
        return json.loads(payload or b"null")

    def snapshot(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            info = tarfile.TarInfo("ferry.yaml")
            info.size = len(STEP)
            tar.addfile(info, io.BytesIO(STEP))
        return self.call("POST", "/v1/snapshots", buf.getvalue(), "application/gzip")["snapshot"]

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Agents it started and did not reap (a crash): its session's group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def load(build, server, sha, count, concurrency, environment=None, wait=True, may_fail=False):
    args = [os.path.join(build, "bin", "throughput_load"), "--server", server, "--snapshot", sha,
            "--count", str(count), "--concurrency", str(concurrency)]
    if environment:
        args += ["--environment", environment]
    if wait:
        args.append("--wait")
    out = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         check=False)
    sys.stderr.write(out.stderr)
    if out.returncode != 0 and not may_fail:
        sys.exit(f"throughput_load failed (exit {out.returncode})")
    r = json.loads(out.stdout)
    r["error"] = out.stderr.strip() if out.returncode != 0 else None
    if wait and r["not_complete"]:
        sys.exit(f"{r['not_complete']} executions did not complete: "
                 f"{r['first_status_not_complete']}")
    return r


def throughput(a, work):
    conf = (f'default_environment = "fast";\n'
            f'environments = ({{ name = "fast"; compute = "test"; agent = "fake";\n'
            f'  slots = {a.slots}; min_workers = 0; max_workers = {a.workers};'
            f' idle_timeout = 600; }});\n')
    d = Ferryd(a.build, conf, os.path.join(work, "throughput"))
    perf = None
    try:
        sha = d.snapshot()
        # Warm-up: the workers are launched and registered, the caches filled.
        load(a.build, d.url, sha, min(1000, a.count), a.concurrency)
        if a.perf:
            # DWARF unwinding: the system's libc and SQLite have no frame
            # pointers, so -g alone loses every caller of a system call.
            perf = subprocess.Popen(["perf", "record", "--call-graph", "dwarf,16384", "-F", "499",
                                     "-o", a.perf, "-p", str(d.proc.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        runs = []
        for _ in range(a.repeats):
            r = load(a.build, d.url, sha, a.count, a.concurrency)
            seconds = r["last_ended_at"] - r["start_time"]
            runs.append({"seconds": seconds, "per_s": a.count / seconds,
                         "submit_per_s": a.count / r["submit_seconds"],
                         "observed_seconds": r["submit_seconds"] + r["wait_seconds"]})
        rss = d.rss_kib()
    finally:
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        d.stop()
    rates = [r["per_s"] for r in runs]
    med = statistics.median(rates)
    return {
        "executions": a.count, "repeats": a.repeats, "concurrency": a.concurrency,
        "workers": a.workers, "slots": a.slots,
        "seconds": statistics.median(r["seconds"] for r in runs),
        "executions_per_second": med, "min": min(rates), "max": max(rates),
        "submit_per_second": statistics.median(r["submit_per_s"] for r in runs),
        "observed_seconds": statistics.median(r["observed_seconds"] for r in runs),
        "rss_after_kib": rss,
        "peer": None, "target": TARGET_PER_S, "ratio_to_target": med / TARGET_PER_S,
    }


def open_fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def memory(a, work):
    # The worker's launch never ends (a day's delay): everything stays queued.
    conf = ('default_environment = "parked";\n'
            'environments = ({ name = "parked"; compute = "test"; agent = "fake";\n'
            '  launch_delay_ms = 86400000; min_workers = 0; max_workers = 1; });\n')
    d = Ferryd(a.build, conf, os.path.join(work, "memory"))
    try:
        time.sleep(1.0)
        idle = d.rss_kib()
        sha = d.snapshot()
        before = d.rss_kib()
        # A ferryd that cannot hold the whole queue is a finding, not a
        # crash of the benchmark: what it held is measured and the error kept.
        r = load(a.build, d.url, sha, a.queued, a.concurrency, wait=False, may_fail=True)
        time.sleep(1.0)
        alive = d.proc.poll() is None
        queued = d.rss_kib() if alive else None
        fds = open_fds(d.proc.pid) if alive else None
        envs = d.call("GET", "/v1/environments", may_fail=True) if alive else None
        # Older ferryd builds have no /v1/environments: null then.
        n_queued = envs["environments"][0].get("queued") if envs else None
    finally:
        d.stop()
    held = r["submitted"]
    restart = (restart_times(a, conf, os.path.join(work, "memory"), n_queued)
               if alive and a.restarts > 0 else None)
    return {
        "restart_ms": restart,
        "idle_rss_kib": idle, "idle_rss_mib": idle / 1024.0, "idle_target_mib": TARGET_IDLE_MIB,
        "queued_asked": a.queued, "queued": held, "queued_rss_kib": queued,
        "kib_per_queued": (queued - before) / held if queued and held else None,
        "kib_per_queued_target": TARGET_KIB_PER_QUEUED,
        "submit_per_second": held / r["submit_seconds"] if r["submit_seconds"] else None,
        "queued_reported_by_ferryd": n_queued, "open_fds_with_queue": fds,
        "error": r["error"],
    }


def restart_times(a, conf, work, queued):
    """ferryd restarted on the data dir the memory figure left (QUEUED
    executions stored, all of them unfinished: reloaded into the queue):
    exec -> first answer of GET /v1/environments that counts them all. The
    first restart is a warm-up (not counted); the page cache is warm."""
    times, rss, restored = [], [], None
    for i in range(a.restarts + 1):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        t0 = time.perf_counter()
        d = Ferryd(a.build, conf, work, listen=f"127.0.0.1:{port}", wait=False)
        try:
            while True:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                    c.request("GET", "/v1/environments")
                    resp = c.getresponse()
                    body = resp.read()
                    c.close()
                    if resp.status == 200:
                        n = json.loads(body)["environments"][0].get("queued")
                        if queued is None or n == queued:
                            break
                except (ConnectionError, http.client.HTTPException):
                    pass
                if d.proc.poll() is not None:
                    with open(d.log_path) as f:
                        sys.exit("ferryd did not restart:\n" + f.read())
                time.sleep(0.002)
            dt = (time.perf_counter() - t0) * 1000
            rss.append(d.rss_kib())
            with open(d.log_path) as f:
                m = re.search(r"(\d+) unfinished executions? restored", f.read())
            restored = int(m.group(1)) if m else None
        finally:
            d.stop()
        if i > 0:
            times.append(dt)
    return {"stored": queued, "restored": restored, "runs": len(times),
            "median": statistics.median(times), "min": min(times), "max": max(times),
            "rss_after_kib": statistics.median(rss)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build-bench"))
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--slots", type=int, default=64)
    ap.add_argument("--queued", type=int, default=100000)
    ap.add_argument("--restarts", type=int, default=3,
                    help="ferryd restarts with the queue stored (after one not counted)")
    ap.add_argument("--perf", help="perf record ferryd during the measured runs into FILE")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    work = tempfile.mkdtemp(prefix="ferry-throughput-")
    try:
        out = {"throughput": throughput(a, work), "memory": memory(a, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
