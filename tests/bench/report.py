#!/usr/bin/env python3
"""Write bench-results.json and BENCHMARKS.md from the measurements.

  report.py [--quick] RESULT.json...

Each RESULT.json is the output of one benchmark script, recognised by its
keys: skeleton.py (issue 2: latency against a shell peer), throughput.py
(issue 3: throughput and memory against targets), logs.py (issue 4: log
shipping against the disk's floor, follow latency) or docker_overhead.py
(issue 5: a container execution against `docker run --rm`). A quick run prints the
results and leaves BENCHMARKS.md alone.
"""
import json
import os
import platform
import subprocess
import sys


def machine():
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), {mem_kb // 1024 // 1024} GiB, Linux {platform.release()}"


def skeleton_results(data):
    single = data["single_submit_to_complete_ms"]
    batch = data["batch_submit_to_all_complete_ms"]
    return [
        {"name": "single execution submit->complete (median)", "value": single["median"],
         "unit": "ms", "peer": single["peer"], "peer_value": single["peer_median"],
         "ratio": single["ratio"], "p95": single["p95"], "min": single["min"],
         "max": single["max"], "runs": single["runs"]},
        {"name": f"{batch['count']} executions submit->all complete (median)",
         "value": batch["median"], "unit": "ms", "peer": batch["peer"],
         "peer_value": batch["peer_median"], "ratio": batch["ratio"], "min": batch["min"],
         "max": batch["max"], "runs": batch["repeats"]},
    ]


def throughput_results(data):
    t, m = data["throughput"], data["memory"]
    out = [
        {"name": f"{t['executions']} executions submitted and completed through the API "
                 f"(median rate)",
         "value": t["executions_per_second"], "unit": "executions/s", "peer": None,
         "peer_value": None, "ratio": None, "target": t["target"],
         "ratio_to_target": t["ratio_to_target"], "higher_is_better": True,
         "min": t["min"], "max": t["max"], "runs": t["repeats"],
         "setup": f"{t['workers']} workers of the test compute plugin, ferry-fake-agent with "
                  f"{t['slots']} slots, {t['concurrency']} client connections"},
        {"name": "ferryd resident memory, idle", "value": m["idle_rss_mib"], "unit": "MiB",
         "peer": None, "peer_value": None, "ratio": None, "target": m["idle_target_mib"],
         "ratio_to_target": m["idle_rss_mib"] / m["idle_target_mib"], "higher_is_better": False},
    ]
    if m.get("kib_per_queued") is not None:
        out.append(
            {"name": f"ferryd resident memory per queued execution ({m['queued']} queued)",
             "value": m["kib_per_queued"], "unit": "KiB", "peer": None, "peer_value": None,
             "ratio": None, "target": m["kib_per_queued_target"],
             "ratio_to_target": m["kib_per_queued"] / m["kib_per_queued_target"],
             "higher_is_better": False, "queued_asked": m["queued_asked"],
             "error": m.get("error")})
    return out


def skeleton_lines(results):
    lines = [
        "Medians of repeated runs (warm-up excluded), min-max in brackets; the peer ran in the",
        "same run on the same machine. Lower is better; ratio = ferry / peer.", "",
        "| figure | ferry | peer | ratio | unit | what was run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['value']:.1f} [{r['min']:.1f}-{r['max']:.1f}] "
            f"| {r['peer_value']:.1f} | {r['ratio']:.2f} | {r['unit']} | "
            f"ferryd + 'local' environment ({os.cpu_count()} workers, local-process); "
            f"peer: `{r['peer']}` |")
    lines += ["", f"Single execution p95: {results[0]['p95']:.1f} ms over {results[0]['runs']} runs.",
              "", "Targets (issue 2): single median under 20 ms; 200 executions under 1 s.", ""]
    return lines


def throughput_lines(results):
    lines = [
        "Scheduling throughput and memory (tests/bench/throughput.py). There is no peer for",
        "these figures: ratio = ferry / target (throughput: higher is better; memory: lower).", "",
        "| figure | ferry | target | ratio to target | unit | what was run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        value = f"{r['value']:.1f}"
        if "min" in r:
            value += f" [{r['min']:.0f}-{r['max']:.0f}] over {r['runs']} runs"
        what = r.get("setup") or "ferryd with no execution yet"
        if "queued_asked" in r:
            what = ("environment of the test compute plugin whose worker never finishes "
                    "launching; RSS growth over the queue")
        target = ("at least " if r["higher_is_better"] else "at most ") + f"{r['target']:g}"
        lines.append(f"| {r['name']} | {value} | {target} | {r['ratio_to_target']:.2f} | "
                     f"{r['unit']} | {what} |")
        if r.get("error"):
            lines.append(f"\nThe queue stopped short of {r['queued_asked']}: {r['error']}\n")
    lines += ["", "Targets (issue 3): at least 2,000 executions/s end to end; idle at most "
              "20 MiB; at most 4 KiB per queued execution.", ""]
    return lines


def logs_results(data):
    t, f = data["log_throughput_mb_s"], data["follow_latency_ms"]
    return [
        {"name": f"log shipping, one execution writing {t['size_bytes'] // 1000000} MB of "
                 f"{t['size_bytes'] // t['lines']}-byte lines (median)",
         "value": t["median"], "unit": "MB/s", "peer": t["peer"],
         "peer_value": t["peer_median"], "ratio": t["median"] / t["peer_median"],
         "target": t["target"], "higher_is_better": True, "min": t["min"], "max": t["max"],
         "runs": t["repeats"]},
        {"name": "`ferry logs -f`: line printed -> line shown (median)", "value": f["median"],
         "unit": "ms", "peer": None, "peer_value": None, "ratio": None, "target": f["target"],
         "higher_is_better": False, "p95": f["p95"], "min": f["min"], "max": f["max"],
         "runs": f["lines"]},
    ]


def logs_lines(results):
    t, f = results
    return [
        "Log shipping through a remote agent (tests/bench/logs.py): ferryd over HTTPS, the agent",
        "joined to a static environment, local-process runtime. Throughput is ferryd's own",
        "started -> ended time of the execution (the log stored whole before it ends); the peer is",
        "the floor, the same command writing to a file. Higher is better.", "",
        "| figure | ferry | peer | ratio | unit | target |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {t['name']} | {t['value']:.0f} [{t['min']:.0f}-{t['max']:.0f}] over {t['runs']} runs "
        f"| {t['peer_value']:.0f} | {t['ratio']:.2f} | {t['unit']} | at least {t['target']:g} |",
        f"| {f['name']} | {f['value']:.1f} (p95 {f['p95']:.1f}, max {f['max']:.1f}) over "
        f"{f['runs']} lines | - | - | {f['unit']} | under {f['target']:g} |",
        "",
    ]


def docker_results(data):
    d = data["docker_overhead_ms"]
    f, p = d["ferry"], d["docker_run_rm"]
    return [{"name": "trivial execution in a container, submit -> complete (median)",
             "value": f["median"], "unit": "ms", "peer": "docker run --rm IMAGE true",
             "peer_value": p["median"], "ratio": d["ratio"], "target_ratio": d["target_ratio"],
             "p95": f["p95"], "min": f["min"], "max": f["max"], "runs": f["runs"],
             "peer_p95": p["p95"]}]


def docker_lines(results):
    r = results[0]
    return [
        "Docker overhead (tests/bench/docker_overhead.py): ferryd, one warm `local` worker with the",
        "local-docker runtime, against `docker run --rm` on the same dockerd, interleaved. Lower is",
        "better; ratio = ferry / peer.", "",
        "| figure | ferry | peer | ratio | unit | target |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {r['name']} | {r['value']:.0f} [{r['min']:.0f}-{r['max']:.0f}] (p95 {r['p95']:.0f}) "
        f"over {r['runs']} runs | {r['peer_value']:.0f} (p95 {r['peer_p95']:.0f}) | "
        f"{r['ratio']:.2f} | {r['unit']} | ratio at most {r['target_ratio']:g} |",
        "",
    ]


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    files = [a for a in args if a != "--quick"]
    if not files:
        sys.exit(__doc__)
    results, sections = [], []
    for path in files:
        with open(path) as f:
            data = json.load(f)
        if "single_submit_to_complete_ms" in data:
            r = skeleton_results(data)
            sections.append(skeleton_lines(r))
        elif "throughput" in data:
            r = throughput_results(data)
            sections.append(throughput_lines(r))
        elif "log_throughput_mb_s" in data:
            r = logs_results(data)
            sections.append(logs_lines(r))
        elif "docker_overhead_ms" in data:
            r = docker_results(data)
            sections.append(docker_lines(r))
        else:
            sys.exit(f"{path}: not a result of skeleton.py, throughput.py, logs.py or "
                     "docker_overhead.py")
        results += r
    with open("bench-results.json", "w") as f:
        json.dump(results, f, indent=2)
    if quick:  # a quick run checks that nothing crashes; it does not replace the table
        print(json.dumps(results, indent=2))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = ["# Benchmarks", "", f"Measured by `tests/bench/run` at commit {commit} on {machine()}."]
    for s in sections:
        if lines[-1] != "":
            lines.append("")
        lines += s
    # Checks made by hand on other machines, kept in bench/observations.md.
    obs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "observations.md")
    if os.path.exists(obs):
        lines += ["", open(obs).read().rstrip()]
    with open("BENCHMARKS.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
