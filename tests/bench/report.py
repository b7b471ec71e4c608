#!/usr/bin/env python3
"""Write bench-results.json and BENCHMARKS.md from the measurements."""
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


def main():
    data = json.load(open(sys.argv[1]))
    quick = sys.argv[2] == "1"
    single = data["single_submit_to_complete_ms"]
    batch = data["batch_submit_to_all_complete_ms"]
    results = [
        {"name": "single execution submit->complete (median)", "value": single["median"],
         "unit": "ms", "peer": single["peer"], "peer_value": single["peer_median"],
         "ratio": single["ratio"], "p95": single["p95"], "min": single["min"],
         "max": single["max"], "runs": single["runs"]},
        {"name": f"{batch['count']} executions submit->all complete (median)",
         "value": batch["median"], "unit": "ms", "peer": batch["peer"],
         "peer_value": batch["peer_median"], "ratio": batch["ratio"], "min": batch["min"],
         "max": batch["max"], "runs": batch["repeats"]},
    ]
    with open("bench-results.json", "w") as f:
        json.dump(results, f, indent=2)
    if quick:  # a quick run checks that nothing crashes; it does not replace the table
        print(json.dumps(results, indent=2))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [
        "# Benchmarks", "",
        f"Measured by `tests/bench/run` at commit {commit} on {machine()}.",
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
    with open("BENCHMARKS.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
