#!/usr/bin/env python3
"""Issue 5's figure: a trivial execution in a container, submit -> complete,
against `docker run --rm IMAGE true` in the same run (target: at most 1.15
times as long, medians of at least 10 each).

Starts a ferryd of its own from --build, with one environment whose workers
(the `local` compute plugin, one warm worker) run executions with the
`local-docker` runtime on the Docker daemon at --socket (the environment's
docker_socket setting). The step is `true` in --image. Each round times one
execution through ferryd's HTTP API (POST /v1/executions, then wait until it
is complete) and one `docker run --rm IMAGE true` (the docker CLI, same
daemon), interleaved so that drift hits both alike; warm-up rounds are
excluded. Prints a JSON document on stdout.

  docker_overhead.py [--build build-bench] [--runs 20] [--image ferry-test/busybox:1]
                     [--socket PATH]
The image must be present (tests/plugins/docker_images.sh makes the default).
"""
import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from skeleton import call, percentile, wait  # noqa: E402


def default_socket():
    if os.environ.get("FERRY_TEST_DOCKER_SOCKET"):
        return os.environ["FERRY_TEST_DOCKER_SOCKET"]
    env = os.path.join(os.environ.get("FERRY_TEST_SERVICES", "/tmp/ferry-test-services"), "env")
    if os.path.exists(env):
        for line in open(env):
            if line.startswith("FERRY_TEST_DOCKER_SOCKET="):
                return line.strip().split("=", 1)[1]
    return "/var/run/docker.sock"


def start_ferryd(build, work, socket):
    conf = os.path.join(work, "ferryd.conf")
    with open(conf, "w") as f:
        f.write('environments = ( { name = "local"; compute = "local"; runtime = "local-docker";'
                f' max_workers = 1; min_workers = 1; docker_socket = "{socket}"; }} );\n')
    log = open(os.path.join(work, "ferryd.log"), "w")
    proc = subprocess.Popen([os.path.join(build, "bin", "ferryd"), "--data-dir",
                             os.path.join(work, "data"), "--listen", "127.0.0.1:0", "-c", conf,
                             "--retire-workers"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        m = re.findall(r"listening on (http:\S+)", open(log.name).read())
        if m:
            return proc, m[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    sys.exit("ferryd did not start:\n" + open(log.name).read())


def snapshot(server, image):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = (f"- step:\n    name: noop\n    image: {image}\n    command: 'true'\n").encode()
        info = tarfile.TarInfo("ferry.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return call(server, "POST", "/v1/snapshots", buf.getvalue(), "application/gzip")["snapshot"]


def ferry_once(server, sha):
    t0 = time.perf_counter()
    e = call(server, "POST", "/v1/executions", {"project": "bench", "step": "noop",
                                                 "snapshot": sha})
    done = wait(server, e["id"])
    dt = (time.perf_counter() - t0) * 1000
    if done["status"] != "complete":
        sys.exit(f"execution {e['id']} ended {done['status']}: {done.get('status_reason')}")
    return dt


def docker_once(socket, image):
    env = dict(os.environ, DOCKER_HOST="unix://" + socket)
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def summary(values):
    return {"median": statistics.median(values), "p95": percentile(values, 95),
            "min": min(values), "max": max(values), "runs": len(values)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--image", default="ferry-test/busybox:1")
    ap.add_argument("--socket", default=default_socket())
    a = ap.parse_args()
    if shutil.which("docker") is None:
        sys.exit("the docker CLI is needed for the `docker run --rm` side")
    work = tempfile.mkdtemp(prefix="ferry-docker-bench.")
    proc, server = start_ferryd(a.build, work, a.socket)
    try:
        sha = snapshot(server, a.image)
        ferry, docker = [], []
        for i in range(a.warmup + a.runs):
            f = ferry_once(server, sha)
            d = docker_once(a.socket, a.image)
            if i >= a.warmup:  # the first rounds start the worker, warm the caches
                ferry.append(f)
                docker.append(d)
        out = {"docker_overhead_ms": {
            "what": "trivial execution (`true` in a container), submit -> complete, vs "
                    "`docker run --rm IMAGE true`, interleaved",
            "image": a.image,
            "ferry": summary(ferry),
            "docker_run_rm": summary(docker),
            "ratio": statistics.median(ferry) / statistics.median(docker),
            "target_ratio": 1.15}}
        json.dump(out, sys.stdout, indent=2)
        print()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", "--", "--work-dir " + os.path.join(work, "data")],
                       check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
