#!/usr/bin/env python3
"""Issue 4's figures: log shipping through a remote agent, over TLS.

  1. throughput: one execution writes SIZE bytes of lines to stdout; the
     time from the execution starting to its log being stored whole on
     ferryd (target: at least 200 MB/s for 1 GB). The peer is the floor: the
     same command with its output written to a file on the same disk.
  2. follow latency: an execution prints its own clock every 50 ms;
     `ferry logs -f` reads them; latency = time read - time printed
     (target: under 100 ms), median and p95.

ferryd serves HTTPS with a test CA; the agent joins a static environment
with a join token, as an operator's own machine would.

Usage: logs.py --build BUILD_DIR [--size-mb 1000] [--repeats 3] [--ticks 60]
Prints a JSON document on stdout.
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

LINE = "x" * 99  # 100 bytes with its newline


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def make_tls(work):
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
       "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
       "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem")
    return f"{work}/cert.pem", f"{work}/key.pem"


class Ferry:
    def __init__(self, build, work):
        self.build, self.work = build, work
        self.cert, key = make_tls(work)
        self.token = "bench-join-token"
        self.user_token = "bench-user-token"
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        user_digest = hashlib.sha256(self.user_token.encode()).hexdigest()
        with open(f"{work}/ferryd.conf", "w") as f:
            f.write(f'data_dir = "{work}/data";\n'
                    f'listen = "127.0.0.1:0";\n'
                    f'tls = {{ cert = "{self.cert}"; key = "{key}"; }};\n'
                    f'users = ( {{ name = "bench"; token_sha256 = "{user_digest}"; }} );\n'
                    f'environments = ( {{ name = "onprem"; compute = "static"; '
                    f'join_token_sha256 = "{digest}"; }} );\n'
                    f'default_environment = "onprem";\n')
        self.log = open(f"{work}/ferryd.log", "w")
        self.ferryd = subprocess.Popen([f"{build}/bin/ferryd", "-c", f"{work}/ferryd.conf",
                                        "--retire-workers"],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.url = self._wait_url()
        self.agent_log = open(f"{work}/agent.log", "w")
        self.agent = subprocess.Popen(
            [f"{build}/bin/ferry-agent", "--server", self.url, "--environment", "onprem",
             "--join-token", self.token, "--ca", self.cert, "--work-dir", f"{work}/agent"],
            stdout=self.agent_log, stderr=subprocess.STDOUT)
        self.env = dict(os.environ, FERRY_SERVER=self.url, FERRY_TOKEN=self.user_token,
                        FERRY_CA=self.cert)
        self.project = f"{work}/project"
        os.makedirs(self.project)

    def _wait_url(self):
        for _ in range(200):
            with open(f"{self.work}/ferryd.log") as f:
                m = re.findall(r"listening on (https://\S+)", f.read())
            if m:
                return m[-1]
            time.sleep(0.05)
        sys.exit("ferryd did not start: " + open(f"{self.work}/ferryd.log").read())

    def cli(self, *args, **kw):
        return subprocess.run([f"{self.build}/bin/ferry", *args], cwd=self.project, env=self.env,
                              check=True, capture_output=True, text=True, **kw).stdout

    def steps(self, text):
        with open(f"{self.project}/ferry.yaml", "w") as f:
            f.write(text)

    def run(self, step):
        return json.loads(self.cli("run", step, "--json"))["id"]

    def show(self, exec_id):
        return json.loads(self.cli("show", exec_id, "--json"))

    def close(self):
        for p in (self.agent, self.ferryd):
            p.send_signal(signal.SIGTERM)
        for p in (self.agent, self.ferryd):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def iso_seconds(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def flood_command(size):
    return f"yes {LINE} | head -c {size}"


def stored_bytes(f, exec_id):
    """The text bytes (with a newline per line) and lines of the execution's
    stored stdout, read from its log's records (core/state/logstore.c)."""
    path = f"{f.work}/data/logs/{exec_id}.log"
    total = lines = 0
    with open(path, "rb") as log:
        while True:
            head = log.readline()
            if not head:
                break
            _i, n, stream, _when, _seq, length = head.split(b" ")
            log.seek(int(length) + 1, os.SEEK_CUR)
            if stream == b"stdout":
                total += int(length) + 1
                lines += int(n)
    return total, lines


def throughput(f, size, repeats):
    f.steps(f"- step:\n    name: flood\n    image: none\n    command: {flood_command(size)}\n"
            "- step:\n    name: ticks\n    image: none\n"
            "    command: for i in $(seq 1 TICKS); do date +%s.%N; sleep 0.05; done\n")
    runs, floors = [], []
    for _ in range(repeats):
        exec_id = f.run("flood")
        f.cli("wait", exec_id, "--timeout", "900")
        e = f.show(exec_id)
        if e["status"] != "complete":
            sys.exit(f"flood execution ended {e['status']}")
        # ferryd's own clock: started when the agent began the execution,
        # ended once the agent reported the end, after ferryd held every line.
        elapsed = iso_seconds(e["ended_at"]) - iso_seconds(e["started_at"])
        total, lines = stored_bytes(f, exec_id)
        if total != size:
            sys.exit(f"flood: {total} bytes stored, {size} written")
        runs.append(size / elapsed / 1e6)
        # The floor: the same command, its output to a file on the same disk.
        out = f"{f.work}/floor.out"
        t0 = time.monotonic()
        subprocess.run(["sh", "-c", f"{flood_command(size)} > {out}"], check=True)
        floors.append(size / (time.monotonic() - t0) / 1e6)
        os.unlink(out)
    return {"size_bytes": size, "lines": lines, "repeats": repeats,
            "median": statistics.median(runs), "min": min(runs), "max": max(runs),
            "target": 200.0, "peer": "the command writing to a file",
            "peer_median": statistics.median(floors)}


def follow_latency(f, ticks):
    with open(f"{f.project}/ferry.yaml") as y:
        text = y.read().replace("TICKS", str(ticks))
    f.steps(text)
    exec_id = f.run("ticks")
    follower = subprocess.Popen([f"{f.build}/bin/ferry", "logs", "-f", exec_id],
                                cwd=f.project, env=f.env, stdout=subprocess.PIPE, text=True)
    lat = []
    for line in follower.stdout:
        now = time.time()
        m = re.search(r"(\d{10}\.\d+)\s*$", line)
        if m:
            lat.append((now - float(m.group(1))) * 1000)
    follower.wait()
    lat = lat[3:]  # warm-up: the first lines arrive with the start of the follow
    if not lat:
        sys.exit("ferry logs -f printed no tick")
    lat.sort()
    return {"lines": len(lat), "median": statistics.median(lat),
            "p95": lat[min(len(lat) - 1, int(len(lat) * 0.95))], "min": lat[0], "max": lat[-1],
            "target": 100.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--size-mb", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ticks", type=int, default=60)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ferry-bench-logs.")
    f = None
    try:
        f = Ferry(os.path.abspath(args.build), work)
        result = {"log_throughput_mb_s": throughput(f, args.size_mb * 1000 * 1000, args.repeats)}
        result["follow_latency_ms"] = follow_latency(f, args.ticks)
        json.dump(result, sys.stdout, indent=2)
        print()
    finally:
        if f:
            f.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
