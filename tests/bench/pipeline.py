#!/usr/bin/env python3
"""Issue 20's figures: the pipeline engine's overhead and reuse.

  1. A 100-node pipeline of trivial steps (`true`) on the `local`
     environment, as a chain and as one node with 99 behind it. The figure
     is the pipeline's wall time (created -> ended, ferryd's own times) minus
     the time during which at least one of its executions existed (the union
     of their created -> ended spans), per node: what the engine adds
     between an execution's end and the next one's creation (target: under
     5 ms per node). Side by side, the same executions submitted one after
     another by a script through the API (POST /v1/executions, then
     .../wait), measured the same way.
  2. A second run of the chain with `reuse`: every node reused, the client's
     POST -> answer (target: under 100 ms, complete in the answer).

Starts a ferryd of its own from --build with one local environment of
--workers warm workers. Rounds alternate pipeline and script; medians over
--repeats. Prints a JSON document on stdout.

  pipeline.py [--build build-bench] [--nodes 100] [--repeats 3] [--workers 2]
"""
import argparse
import datetime
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
from skeleton import call  # noqa: E402


def valohai_yaml(nodes):
    step = "- step:\n    name: noop\n    image: none\n    command: 'true'\n"
    chain = ["- pipeline:\n    name: chain\n    nodes:\n"]
    fan = ["- pipeline:\n    name: fan\n    nodes:\n"]
    for i in range(nodes):
        chain.append(f"      - {{name: n{i}, type: execution, step: noop}}\n")
        fan.append(f"      - {{name: n{i}, type: execution, step: noop}}\n")
    chain.append("    edges:\n")
    fan.append("    edges:\n")
    for i in range(1, nodes):
        chain.append(f"      - [n{i - 1}.dependency.*, n{i}.dependency.*]\n")
        fan.append(f"      - [n0.dependency.*, n{i}.dependency.*]\n")
    return step + "".join(chain) + "".join(fan)


def snapshot(server, nodes):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = valohai_yaml(nodes).encode()
        info = tarfile.TarInfo("valohai.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return call(server, "POST", "/v1/snapshots", buf.getvalue(), "application/gzip")["snapshot"]


def t(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def busy_time(execs):
    """The union of the executions' created -> ended spans, in seconds."""
    spans = sorted((t(e["created_at"]), t(e["ended_at"])) for e in execs)
    total, start, end = 0.0, None, None
    for a, b in spans:
        if start is None or a > end:
            if start is not None:
                total += end - start
            start, end = a, b
        else:
            end = max(end, b)
    return total + (end - start if start is not None else 0.0)


def phases(execs):
    """Median ms of each execution's created -> queued -> started -> ended."""
    out = {}
    for a, b in (("created_at", "queued_at"), ("queued_at", "started_at"),
                 ("started_at", "ended_at")):
        vals = [t(e[b]) - t(e[a]) for e in execs if e.get(a) and e.get(b)]
        out[f"{a[:-3]}_to_{b[:-3]}_ms"] = median_ms(vals) if vals else None
    return out


def run_pipeline(server, sha, name, reuse=False):
    t0 = time.monotonic()
    p = call(server, "POST", "/v1/pipelines",
             {"project": "bench", "pipeline": name, "snapshot": sha, "reuse": reuse})
    answered = time.monotonic() - t0
    while p["status"] not in ("complete", "error", "stopped"):
        time.sleep(0.05)
        p = call(server, "GET", f"/v1/pipelines/{p['id']}")
    if p["status"] != "complete":
        sys.exit(f"pipeline {name}: {p['status']}: {p['reason']}")
    return p, answered


def pipeline_figure(server, sha, name):
    p, _ = run_pipeline(server, sha, name)
    execs = [call(server, "GET", f"/v1/executions/{n['execution']['id']}") for n in p["nodes"]]
    wall = t(p["ended_at"]) - t(p["created_at"])
    return wall, wall - busy_time(execs), phases(execs)


def submit(server, sha):
    return call(server, "POST", "/v1/executions", {"project": "bench", "step": "noop",
                                                   "snapshot": sha})


def wait(server, e):
    while e["status"] not in ("complete", "error", "stopped"):
        e = call(server, "GET", f"/v1/executions/{e['id']}/wait?timeout=60")
    if e["status"] != "complete":
        sys.exit(f"execution {e['id']}: {e['status']}")
    return e


def script_figure(server, sha, name, nodes):
    """The same executions by a script: one after another (chain), or the
    first, then the rest at once (fan)."""
    t0 = time.time()
    execs = [wait(server, submit(server, sha))]
    if name == "chain":
        for _ in range(nodes - 1):
            execs.append(wait(server, submit(server, sha)))
    else:
        rest = [submit(server, sha) for _ in range(nodes - 1)]
        execs += [wait(server, e) for e in rest]
    wall = max(t(e["ended_at"]) for e in execs) - min(t(e["created_at"]) for e in execs)
    del t0
    return wall, wall - busy_time(execs), phases(execs)


def start_ferryd(build, work, workers):
    conf = os.path.join(work, "ferryd.conf")
    with open(conf, "w") as f:
        f.write(f'environments = ( {{ name = "local"; max_workers = {workers};'
                f' min_workers = {workers}; }} );\n')
    log = open(os.path.join(work, "ferryd.log"), "w")
    proc = subprocess.Popen([os.path.join(build, "bin", "ferryd"), "--data-dir",
                             os.path.join(work, "data"), "--listen", "127.0.0.1:0", "-c", conf,
                             "--retire-workers"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        m = re.findall(r"listening on (http:\S+)", open(log.name).read())
        if m:
            return proc, m[-1]
        time.sleep(0.05)
    proc.kill()
    sys.exit("ferryd did not start: " + open(log.name).read()[-2000:])


def median_ms(values, per=1):
    return round(statistics.median(values) * 1000 / per, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="ferry-bench-pipeline.")
    proc, server = start_ferryd(a.build, work, a.workers)
    try:
        sha = snapshot(server, a.nodes)
        for _ in range(a.workers * 3):  # warm: workers joined, snapshot cached
            wait(server, submit(server, sha))
        out = {"nodes": a.nodes, "workers": a.workers, "repeats": a.repeats}
        for name in ("chain", "fan"):
            pw, po, sw, so = [], [], [], []
            for _ in range(a.repeats):
                wall, over, pph = pipeline_figure(server, sha, name)
                pw.append(wall)
                po.append(over)
                wall, over, sph = script_figure(server, sha, name, a.nodes)
                sw.append(wall)
                so.append(over)
            out[name] = {
                "pipeline_wall_ms": median_ms(pw),
                "pipeline_overhead_per_node_ms": median_ms(po, a.nodes),
                "script_wall_ms": median_ms(sw),
                "script_overhead_per_node_ms": median_ms(so, a.nodes),
                "wall_ratio": round(statistics.median(pw) / statistics.median(sw), 3),
                "runs_pipeline_overhead_ms": [round(v * 1000, 1) for v in po],
                "runs_script_overhead_ms": [round(v * 1000, 1) for v in so],
                "pipeline_phases_last": pph,
                "script_phases_last": sph,
            }
        times, counts = [], []
        for _ in range(max(a.repeats, 5)):
            before = len(call(server, "GET", "/v1/executions?limit=1000")["executions"])
            p, answered = run_pipeline(server, sha, "chain", reuse=True)
            after = len(call(server, "GET", "/v1/executions?limit=1000")["executions"])
            if not all(n["reused"] for n in p["nodes"]):
                sys.exit("reuse: a node was not reused")
            times.append(answered)
            counts.append(after - before)
        out["reuse"] = {"answer_ms": median_ms(times), "runs_ms": [round(v * 1000, 1) for v in times],
                        "executions_created": max(counts)}
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["pkill", "-KILL", "-f", "--", f"--work-dir {work}/"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
