#!/usr/bin/env python3
"""The Slurm peer (Debian's slurm-wlm): a one-node cluster on this machine.

For each configuration asked for (`default`, `tuned`) it starts, as root, in a
temporary directory of its own: munged with a fresh key on a socket of its
own, slurmctld and one slurmd (node `bench`, CPUs = --workers, so that it
runs as many one-CPU jobs at once as ferry's local environment has workers),
on free loopback ports, from a generated slurm.conf. Then it measures

  1. COUNT jobs submitted one after another with `sbatch --wrap true` (each a
     new sbatch process, as a shell loop would) until all of them have left
     the queue (`squeue` polled every --poll-ms, 100 by default, once the
     last one is submitted: a process started more often would take CPU
     from the daemons on a small machine), REPEATS times;
  2. `srun true` wall time (allocation + step launch + exit), RUNS times
     after WARMUP runs that are not counted: median and p95;
  3. with --restart-jobs N (tuned configuration only, with MaxJobCount
     raised to hold them): slurmctld restart time with N held jobs in its
     state, from exec to the first `squeue` that answers with the last job,
     RESTARTS times after one that is not counted;

and stops every daemon. `default` changes nothing but what this machine
needs to run Slurm at all; `tuned` adds the settings of Slurm's High
Throughput Computing Administration Guide that fit one node and short jobs.

  slurm.py [--configs default,tuned] [--workers 2] [--count 200] [--repeats 3]
           [--runs 30] [--warmup 3] [--restart-jobs 0] [--restarts 3]
Prints a JSON document on stdout.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

# Needed on this machine whatever the configuration: paths and ports of our
# own (in the generated slurm.conf), root as the Slurm user, process
# tracking by process group (Slurm's default, proctrack/cgroup, wants a
# cgroup.conf and a cgroup tree of slurmd's own, which a throwaway daemon
# on a shared host or a CI machine should not take), and consumable CPUs
# (select/cons_tres with CR_CPU) so that the node runs WORKERS one-CPU jobs
# at once.
BASE = [
    ("ProctrackType", "proctrack/pgid"),
    ("TaskPlugin", "task/none"),
    ("SelectType", "select/cons_tres"),
    ("SelectTypeParameters", "CR_CPU"),
]

# From Slurm's High Throughput Computing Administration Guide
# (https://slurm.schedmd.com/high_throughput.html), what applies to one node
# and many short jobs. Slurm starts a pending batch job from a scheduler
# pass, not when a job ends: the main scheduler's event-driven pass waits
# batch_sched_delay (3 s by default) and runs at most once a second, the
# backfill pass runs every bf_interval (30 s by default); both as short as
# they go is what lets 2 one-CPU slots turn over fastest here (measured:
# 60 jobs in 16 s against 30 s with batch_sched_delay=0 alone and 84 s with
# the defaults). Tried and left out: sched/builtin, the guide's advice for
# short jobs (no backfill pass between the main scheduler's, so slower
# here); defer and the guide's sample set for hundreds of submissions a
# second (batch_sched_delay=20, sched_min_interval=2000000: they hold back
# every start on a single node); several slurmctld ports (no SOMAXCONN
# overflow at this scale). Accounting storage, job completion logging and
# job accounting gathering are off in both configurations (Slurm's
# defaults).
TUNED = [
    ("SchedulerParameters", "batch_sched_delay=0,bf_interval=1"),
    ("MinJobAge", "2"),
    ("SlurmctldDebug", "error"),
    ("SlurmdDebug", "error"),
]
TUNED_MUNGE_THREADS = 10
MUNGE_THREADS = 2  # munged's own default


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))]


def summary(values):
    return {"median": statistics.median(values), "p95": percentile(values, 95),
            "min": min(values), "max": max(values), "runs": len(values)}


class Cluster:
    """munged + slurmctld + slurmd in WORK; stop() ends them."""

    def __init__(self, work, workers, settings, munge_threads, max_jobs=None):
        self.work = work
        self.procs = {}
        for d in ("state", "spool", "munge", "jobs"):
            os.makedirs(os.path.join(work, d), exist_ok=True)
        os.chmod(os.path.join(work, "munge"), 0o700)
        key = os.path.join(work, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = os.path.join(work, "munge", "socket")
        self.conf = os.path.join(work, "slurm.conf")
        lines = [
            "ClusterName=ferrybench",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "CredType=cred/munge",
            f"StateSaveLocation={work}/state",
            f"SlurmdSpoolDir={work}/spool",
            f"SlurmctldPidFile={work}/slurmctld.pid",
            f"SlurmdPidFile={work}/slurmd.pid",
            f"SlurmctldLogFile={work}/slurmctld.log",
            f"SlurmdLogFile={work}/slurmd.log",
            "ReturnToService=2",
        ]
        lines += [f"{k}={v}" for k, v in settings]
        if max_jobs:
            lines.append(f"MaxJobCount={max_jobs}")
        lines += [
            f"NodeName=bench NodeAddr=127.0.0.1 CPUs={workers} State=UNKNOWN",
            "PartitionName=bench Nodes=bench Default=YES MaxTime=INFINITE State=UP",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for k in list(self.env):
            if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_")) and k != "SLURM_CONF":
                del self.env[k]
        self._start("munged", ["munged", "-F", "--force", f"--key-file={key}",
                               f"--socket={self.munge_socket}",
                               f"--pid-file={work}/munge/pid", f"--seed-file={work}/munge/seed",
                               f"--log-file={work}/munge/log", f"--num-threads={munge_threads}"])
        for _ in range(200):
            if os.path.exists(self.munge_socket):
                break
            self._check_alive()
            time.sleep(0.05)
        self.start_slurmctld()
        self._start("slurmd", ["slurmd", "-D", "-N", "bench", "-f", self.conf])
        self.wait_idle()

    def _start(self, name, argv):
        log = open(os.path.join(self.work, name + ".out"), "a")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=self.env,
                                            cwd=self.work, start_new_session=True)
        log.close()

    def start_slurmctld(self):
        self._start("slurmctld", ["slurmctld", "-D", "-f", self.conf])

    def stop_slurmctld(self):
        self._stop("slurmctld")

    def _check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                self.stop()
                sys.exit(f"slurm.py: {name} exited ({p.returncode}):\n" + self.logs())

    def logs(self):
        out = []
        for name in ("munged.out", "munge/log", "slurmctld.out", "slurmctld.log", "slurmd.out",
                     "slurmd.log"):
            path = os.path.join(self.work, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {name}\n" + "".join(f.readlines()[-15:]))
        return "\n".join(out)

    def cmd(self, *argv, check=True):
        r = subprocess.run(argv, env=self.env, cwd=os.path.join(self.work, "jobs"),
                           capture_output=True, text=True)
        if check and r.returncode != 0:
            self.stop()
            sys.exit(f"slurm.py: {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}\n"
                     + self.logs())
        return r

    def wait_idle(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            r = self.cmd("sinfo", "-h", "-n", "bench", "-o", "%T", check=False)
            if r.returncode == 0 and r.stdout.strip() == "idle":
                return
            time.sleep(0.1)
        self.stop()
        sys.exit("slurm.py: the node did not become idle within 60 s\n" + self.logs())

    def _stop(self, name):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            self._stop(name)


def batch(c, count, poll_s):
    """COUNT x `sbatch --wrap true`, then until the queue is empty: seconds."""
    t0 = time.perf_counter()
    for _ in range(count):
        c.cmd("sbatch", "--parsable", "--wrap", "true")
    submitted = time.perf_counter() - t0
    while True:
        r = c.cmd("squeue", "-h", "-o", "%i")
        if not r.stdout.strip():
            break
        c._check_alive()
        time.sleep(poll_s)
    total = time.perf_counter() - t0
    # Every job ran and exited 0: the completed ones are kept MinJobAge
    # seconds; a failed one would show as FAILED in the log.
    return total, submitted


def srun_latency(c, runs, warmup):
    times = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        c.cmd("srun", "true")
        dt = (time.perf_counter() - t0) * 1000
        if i >= warmup:
            times.append(dt)
    return times


def restart(c, jobs, restarts):
    """slurmctld restart with JOBS held jobs in its state."""
    t0 = time.perf_counter()
    # Four sbatch processes at a time: one at a time would take longer than
    # every other figure of the bench together.
    p = subprocess.run(f"seq {jobs} | xargs -P 4 -n 50 sh -c "
                       "'for i; do sbatch -H --parsable --wrap true || exit 255; done' sh",
                       shell=True, env=c.env, cwd=os.path.join(c.work, "jobs"),
                       capture_output=True, text=True)
    if p.returncode != 0:
        c.stop()
        sys.exit(f"slurm.py: submitting {jobs} held jobs failed: {p.stderr[-500:]}")
    submit_s = time.perf_counter() - t0
    last = max(int(x) for x in p.stdout.split())
    held = len(c.cmd("squeue", "-h", "-o", "%i").stdout.split())
    times = []
    for i in range(restarts + 1):  # the first is a warm-up, not counted
        c.stop_slurmctld()
        t0 = time.perf_counter()
        c.start_slurmctld()
        while True:
            r = c.cmd("squeue", "-h", "-o", "%i", "-j", str(last), check=False)
            if r.returncode == 0 and r.stdout.strip() == str(last):
                break
            c._check_alive()
            time.sleep(0.02)
        if i > 0:
            times.append((time.perf_counter() - t0) * 1000)
    c.cmd("scancel", "--user", "root")
    return {"jobs": held, "submit_seconds": submit_s, **summary(times)}


def version():
    r = subprocess.run(["slurmctld", "-V"], capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="default,tuned")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--poll-ms", type=float, default=100)
    ap.add_argument("--restart-jobs", type=int, default=0)
    ap.add_argument("--restarts", type=int, default=3)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("slurm.py: runs as root (slurmd and munged of its own)")
    for c in ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue"):
        if shutil.which(c) is None:
            sys.exit(f"slurm.py: {c} is missing (tests/bench/run installs slurm-wlm and munge)")
    out = {"slurm": {"version": version(), "workers": a.workers, "configs": {}}}
    for name in a.configs.split(","):
        settings = BASE + (TUNED if name == "tuned" else [])
        threads = TUNED_MUNGE_THREADS if name == "tuned" else MUNGE_THREADS
        max_jobs = a.restart_jobs + 10000 if name == "tuned" and a.restart_jobs else None
        work = tempfile.mkdtemp(prefix=f"ferry-bench-slurm-{name}.")
        c = None
        try:
            c = Cluster(work, a.workers, settings, threads, max_jobs)
            lat = srun_latency(c, a.runs, a.warmup)
            # Warm-up of the batch path (sbatch, slurmstepd), not counted: as
            # many jobs as the node runs at once, so that none waits.
            batch(c, min(a.count, a.workers), a.poll_ms / 1000)
            runs = [batch(c, a.count, a.poll_ms / 1000) for _ in range(a.repeats)]
            totals = [r[0] * 1000 for r in runs]
            res = {
                "settings": [f"{k}={v}" for k, v in settings if (k, v) not in BASE],
                "munged_threads": threads,
                "batch_ms": {"count": a.count, **summary(totals),
                             "submit_ms": statistics.median(r[1] * 1000 for r in runs)},
                "srun_ms": summary(lat),
            }
            if max_jobs:
                res["restart_ms"] = restart(c, a.restart_jobs, a.restarts)
            out["slurm"]["configs"][name] = res
        finally:
            if c:
                c.stop()
            shutil.rmtree(work, ignore_errors=True)
    out["slurm"]["base_settings"] = [f"{k}={v}" for k, v in BASE]
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
