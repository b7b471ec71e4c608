#!/usr/bin/env python3
"""Write BENCHMARKS.md and bench-results.json from the measurements.

  report.py [--quick] [--out DIR] RESULT.json...
  report.py --update [--out DIR] RESULT.json...

--update keeps the rows of DIR's bench-results.json and BENCHMARKS.md (and
the notes under its table) and replaces or adds only the rows of the
RESULT.json given: one benchmark rerun without the 35-minute whole.

Each RESULT.json is the output of one benchmark script, recognised by its
top-level key (see HANDLERS). Every figure becomes one row of the same shape:

  {name, value, unit, peer, peer_value, ratio, what, ...}

value is ferry's median, peer_value the peer's median measured in the same
run on the same machine (null where there is no peer), ratio = value /
peer_value; optional keys: min, max, p95, runs (ferry's), peer_min,
peer_max, peer_p95, peer_runs, target, higher_is_better. bench-results.json
is the list of rows; BENCHMARKS.md is one table of them (figure, ferry,
peer, ratio, unit, what was run) with the machine and the peers' setups.
Both go to --out (default: the current directory); tests/bench/run --quick
sends them to the build directory so that the committed ones stay.
"""
import json
import os
import platform
import re
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
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return (f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB of memory, "
            f"Linux {platform.release()}; load average when the report was written "
            f"(1, 5, 15 min): {load}")


def row(name, value, unit, what, peer=None, peer_value=None, **extra):
    r = {"name": name, "value": value, "unit": unit, "peer": peer, "peer_value": peer_value,
         "ratio": value / peer_value if peer_value else None, "what": what}
    r.update({k: v for k, v in extra.items() if v is not None})
    return r


def stats(prefix, s):
    """min/max/p95/runs of a summary dict, keys prefixed (peer_...)."""
    out = {}
    for k in ("min", "max", "p95", "runs"):
        if s.get(k) is not None:
            out[prefix + k] = s[k]
    return out


# --- one function per benchmark script: its JSON (and the others') -> rows


def skeleton_rows(data, all_data):
    """Issue 2 (tests/bench/skeleton.py) against Slurm (tests/bench/slurm.py)
    and the shell's floor."""
    single = data["single_submit_to_complete_ms"]
    batch = data["batch_submit_to_all_complete_ms"]
    workers = batch.get("workers", os.cpu_count())
    setup = (f"ferryd, `local` environment ({workers} workers, local-process runtime), "
             "through the HTTP API on a kept-alive connection")
    one = dict(value=single["median"], unit="ms", **stats("", single))
    many = dict(value=batch["median"], unit="ms", min=batch["min"], max=batch["max"],
                runs=batch["repeats"])
    name_one = "one trivial execution (`true`), submit -> complete, median"
    name_many = f"{batch['count']} trivial executions, submit -> all complete, median"
    ones, manys = [], []
    slurm = all_data.get("slurm") or {}
    for cfg, res in slurm.get("configs", {}).items():
        peer = f"Slurm {slurm['version'].split()[-1]}, {cfg} configuration"
        s, b = res["srun_ms"], res["batch_ms"]
        ones.append(row(name_one, what=f"{setup}; peer: `srun true` on a one-node cluster "
                        f"(CPUs={slurm['workers']}), wall time of the command (srun's own "
                        "start included)",
                        peer=peer + ": `srun true`", peer_value=s["median"],
                        **stats("peer_", s), **one))
        if b["count"] != batch["count"]:
            sys.exit(f"report.py: Slurm ran {b['count']} jobs, ferry {batch['count']}")
        manys.append(row(name_many, what=f"{setup}, all submitted, then each waited for; peer: "
                         f"{b['count']} x `sbatch --wrap true` one after another, then `squeue` "
                         f"polled until empty (sbatch alone: {b['submit_ms'] / 1000:.1f} s)",
                         peer=peer + ": `sbatch --wrap true`", peer_value=b["median"],
                         **stats("peer_", b), **many))
    ones.append(row(name_one, what=f"{setup}; peer: the floor, `sh -c true` started from Python",
                    peer=single["peer"], peer_value=single["peer_median"], **one))
    manys.append(row(name_many, what=f"{setup}; peer: the floor, the same count through xargs",
                     peer=batch["peer"], peer_value=batch["peer_median"], **many))
    rows = ones + manys
    return rows


def slurm_notes(all_data):
    slurm = all_data.get("slurm")
    if not slurm:
        return []
    lines = [f"Slurm {slurm['version'].split()[-1]} (Debian's slurm-wlm) is set up by "
             "tests/bench/slurm.py: "
             "munged, slurmctld and one slurmd on this machine, node `bench` with "
             f"CPUs={slurm['workers']} (the worker count of ferry's environment). Both "
             "configurations have " + ", ".join(f"`{s}`" for s in slurm["base_settings"]) +
             " (what running here needs) and Slurm's defaults otherwise."]
    for cfg, res in slurm["configs"].items():
        settings = ", ".join(f"`{s}`" for s in res["settings"]) or "nothing more"
        lines.append(f"- {cfg}: {settings}; munged with {res['munged_threads']} threads.")
    if "tuned" in slurm["configs"]:
        lines.append("  The tuned set follows Slurm's High Throughput Computing Administration "
                     "Guide where it fits one node and short jobs. Slurm starts pending batch "
                     "jobs from its scheduler passes (main scheduler, backfill), not when a job "
                     "ends: shorter intervals are what helps here.")
    return lines + [""]


def throughput_rows(data, all_data):
    """Issue 3 (tests/bench/throughput.py): no peer, ratio to the target
    given in the last column; restart time against slurmctld's."""
    t, m = data["throughput"], data["memory"]
    rows = [
        row(f"{t['executions']:,} executions submitted and completed, median rate "
            "(higher is better)", t["executions_per_second"], "executions/s",
            f"{t['workers']} workers of the test compute plugin, ferry-fake-agent with "
            f"{t['slots']} slots, {t['concurrency']} client connections (C load generator); "
            f"target: at least {t['target']:,.0f}",
            min=t["min"], max=t["max"], runs=t["repeats"], target=t["target"],
            higher_is_better=True),
        row("ferryd resident memory, idle", m["idle_rss_mib"], "MiB",
            f"VmRSS of a ferryd with no execution yet; target: at most {m['idle_target_mib']:g}",
            target=m["idle_target_mib"]),
    ]
    if m.get("kib_per_queued") is not None:
        rows.append(row(
            f"ferryd resident memory per queued execution ({m['queued']:,} queued)",
            m["kib_per_queued"], "KiB",
            "VmRSS growth over the queue, in an environment of the test compute plugin whose "
            f"worker never finishes launching; target: at most {m['kib_per_queued_target']:g}"
            + (f"; the queue stopped short of {m['queued_asked']:,}: {m['error']}"
               if m.get("error") else ""),
            target=m["kib_per_queued_target"], queued_asked=m["queued_asked"]))
    r = m.get("restart_ms")
    if r:
        peer = peer_value = None
        extra = {}
        what = (f"ferryd stopped with {r['stored']:,} executions stored, all queued, started "
                "again on the same data dir: exec -> the API answers with all of them queued "
                f"(page cache warm; VmRSS then {r['rss_after_kib'] / 1024:.0f} MiB)")
        sr = ((all_data.get("slurm") or {}).get("configs", {}).get("tuned") or {}).get(
            "restart_ms")
        if sr:
            peer, peer_value = (f"slurmctld restart, {sr['jobs']:,} held jobs (tuned "
                                "configuration)"), sr["median"]
            extra = stats("peer_", sr)
            what += (f"; peer: slurmctld stopped with {sr['jobs']:,} jobs held in its state, "
                     "started again: exec -> `squeue` answers with the last one")
        else:
            what += "; no peer measured in this run"
        rows.append(row(f"ferryd restart with {r['stored']:,} executions stored", r["median"],
                        "ms", what, peer=peer, peer_value=peer_value, min=r["min"], max=r["max"],
                        runs=r["runs"], **extra))
    return rows


def restart_running_rows(data, all_data):
    """Issue 16 (tests/bench/restart_running.py): no peer, ratio to the target."""
    r = data["restart_running"]
    setup = (f"{r['executions']:,} executions running on {r['workers']} ferry-fake-agent "
             f"workers of the test compute plugin ({r['slots']} slots each), ferryd stopped "
             "with SIGTERM and started again on the same data dir and port; after each "
             "restart all of them still `started` and every agent still running; fake agents "
             "retry a failed poll from 50 ms, doubling (ferry-agent: from 0.5 s)")
    rows = []
    for key, name in (("answering_ms", "SIGTERM -> the new ferryd answers"),
                      ("reconnected_ms", "SIGTERM -> every agent has called again")):
        s = r[key]
        rows.append(row(f"graceful restart with {r['executions']:,} executions running: {name}, "
                        "median", s["median"], "ms",
                        f"{setup}; the old ferryd exited {r['stop_ms']['median']:.0f} ms after "
                        f"the SIGTERM (median); target: all under {r['target_ms']:,.0f}",
                        target=r["target_ms"], **stats("", s)))
    return rows


def logs_rows(data, all_data):
    """Issue 4 (tests/bench/logs.py)."""
    t, f = data["log_throughput_mb_s"], data["follow_latency_ms"]
    return [
        row(f"log shipping, one execution writing {t['size_bytes'] // 1000000:,} MB of "
            f"{t['size_bytes'] // t['lines']}-byte lines, median (higher is better)",
            t["median"], "MB/s",
            "remote agent joined over HTTPS, local-process runtime; ferryd's started -> ended "
            "(the log stored whole before it ends); peer: the floor, the same command writing "
            f"to a file on the same disk; target: at least {t['target']:g}",
            peer=t["peer"], peer_value=t["peer_median"], min=t["min"], max=t["max"],
            runs=t["repeats"], target=t["target"], higher_is_better=True),
        row("`ferry logs -f`: line printed -> line shown, median", f["median"], "ms",
            "an execution printing its clock every 50 ms, followed over HTTPS; "
            f"target: under {f['target']:g}",
            min=f["min"], max=f["max"], p95=f["p95"], runs=f["lines"], target=f["target"]),
    ]


def docker_rows(data, all_data):
    """Issue 5 (tests/bench/docker_overhead.py)."""
    d = data["docker_overhead_ms"]
    f, p = d["ferry"], d["docker_run_rm"]
    return [row("trivial execution in a container, submit -> complete, median", f["median"], "ms",
                "ferryd, one warm `local` worker with the local-docker runtime, interleaved with "
                f"the peer on the same dockerd, image {d.get('image', '?')}; "
                f"target: ratio at most {d['target_ratio']:g}",
                peer="docker run --rm IMAGE true", peer_value=p["median"], **stats("", f),
                **stats("peer_", p), target_ratio=d["target_ratio"])]


def s3_rows(data, all_data):
    """Issue 6 (tests/bench/s3.py): outputs through s3-storage against aws-cli."""
    rows = []
    for what in ("upload", "download"):
        d = data[f"s3_{what}_s"]
        f, a = d["ferry"], d["aws"]
        size = (f"{d['size_bytes'] / (1 << 30):.2g} GiB" if d["size_bytes"] >= 1 << 29
                else f"{d['size_bytes'] >> 20} MiB")
        how = ("a ferry execution, from its command's last line to its end (walk and SHA-256 "
               "of outputs/, parts from the agent completed by ferryd, reports)"
               if what == "upload" else
               "`ferry outputs --download` (presigned redirects, SHA-256 checked)")
        rows.append(row(
            f"outputs {what}, {size}: one large file and {d['small_files']} of "
            f"{d['small_bytes'] // 1024} KiB, median", f["median"], "s",
            f"{how}, to the s3rver of tests/services; peer: Debian's aws-cli, same server, "
            "alternately, each with its defaults; target: ratio at most 1",
            peer=d[f"peer_{what}"], peer_value=a["median"], **stats("", f),
            **stats("peer_", a), target_ratio=1.0))
    return rows


def git_rows(data, all_data):
    """Issue 17 (tests/bench/git.py): fetch against `git fetch`, a commit's
    snapshot against `git archive`, a reused snapshot against an ad-hoc one.
    A part the script could not measure (ferryd without executions of a
    commit) has no row."""
    rows = []
    f = data.get("git_fetch")
    if f:
        rows.append(row(
            f"`ferry project fetch` of one new commit, {f['base_commits']:,}-commit mirror, median",
            f["ferry"]["median"], "ms",
            "the CLI end to end (its process, POST /v1/projects/P/fetch, libgit2's fetch on "
            "ferryd's thread pool, the changes printed) against a real `git daemon` on "
            "loopback (git://); peer: `git fetch` in a `git clone --mirror` of the same "
            f"repository, one new commit upstream per repeat (the mirrors grow to "
            f"{f['commits']:,}), alternately ({f['git_version']}; "
            "both mostly wait on TCP: git's two negotiation round trips each stall about 40 ms "
            f"on loopback, delayed ACK); target: ratio at most {f['target_ratio']:g}",
            peer=f["peer"], peer_value=f["git"]["median"], **stats("", f["ferry"]),
            **stats("peer_", f["git"]), target_ratio=f["target_ratio"]))
    s = data.get("git_snapshot")
    direct = (s or {}).get("direct")
    if s and direct:
        mb = s["size_bytes"] / 1e6
        why = ("ferryd did not take executions of a commit yet, " + s["not_measured"][:60] +
               "...)" if s.get("not_measured") else "the part of the row above that is the build)")
        alone = row(
            f"snapshot of a commit ({s['files']:,} files, {mb:.0f} MB): the build alone"
            f"{' (interim)' if s.get('not_measured') else ''}, median",
            direct["ferry"]["median"], "ms",
            "ferry_git_build_snapshot (core/git/gitsnap.c) driven by tests/bench/git_snap_bench: "
            "the commit's tree read from a libgit2 mirror, the deterministic .tar.gz built and "
            "hashed on the thread pool, answered on the loop (no HTTP, no store write, no step "
            f"file read: {why}; "
            f"{direct['snapshot_bytes'] / 1e6:.0f} MB against git's "
            f"{direct['git_archive_bytes'] / 1e6:.0f} MB; peer: `git archive --format=tar.gz` of "
            f"the same commit in the same mirror, alternately ({direct['git_version']}); "
            f"target: ratio at most {direct['target_ratio']:g}",
            peer=direct["peer"], peer_value=direct["git"]["median"],
            **stats("", direct["ferry"]), **stats("peer_", direct["git"]),
            target_ratio=direct["target_ratio"])
    if s and s.get("not_measured") and direct:
        rows.append(alone)
    if s and not s.get("not_measured"):
        mb = s["size_bytes"] / 1e6
        rows.append(row(
            f"snapshot of a commit ({s['files']:,} files, {mb:.0f} MB), first execution, median",
            s["ferry"]["median"], "ms",
            "POST /v1/executions {project, step, commit} answered, whole (ref resolved, tree "
            "read from ferryd's mirror, .tar.gz built, hashed and stored; nothing subtracted), "
            "a new tree each repeat; peer: `git archive --format=tar.gz` of the same commit in "
            f"ferryd's mirror, alternately ({s['git_version']}); "
            f"target: ratio at most {s['target_ratio']:g}",
            peer=s["peer"], peer_value=s["git"]["median"], **stats("", s["ferry"]),
            **stats("peer_", s["git"]), target_ratio=s["target_ratio"]))
        if direct:
            rows.append(alone)
        c, h = s["reuse"]["commit"], s["reuse"]["adhoc"]
        same = s["reuse"].get("adhoc_same")
        small = s["reuse"].get("commit_small")
        if small:  # the figure: a one-file commit against the one-file ad-hoc project
            for key, what in (("answered", "created (POST answered)"), ("started", "started")):
                rows.append(row(
                    f"second execution of a one-file commit (snapshot reused): submit -> {what}, "
                    "median", small[key]["median"], "ms",
                    "POST /v1/executions {commit} of a commit already built (the ref resolved in "
                    "ferryd's mirror, the tree's snapshot found in the cache); one warm `local` "
                    "worker; peer: an ad-hoc execution of a one-file project, alternately; "
                    f"target: within {s['reuse_target_ms']:g} ms of the peer",
                    peer="ad-hoc execution, one-file snapshot", peer_value=h[key]["median"],
                    **stats("", small[key]), **stats("peer_", h[key]),
                    target_ms=s["reuse_target_ms"]))
        for key, what, how in (
                ("answered", "created (POST answered)",
                 "the ref resolved, the tree's snapshot found in the cache, the step file read"),
                ("started", "started",
                 "-> ferryd's started_at, the agent's download and extraction of the "
                 f"{s['snapshot_bytes'] / 1e6:.0f} MB snapshot included" +
                 (f" (an ad-hoc execution of that same snapshot: "
                  f"{same['started']['median']:.0f} ms)" if same else ""))):
            rows.append(row(
                f"second execution of the {s['size_bytes'] / 1e6:.0f} MB commit (snapshot "
                f"reused): submit -> {what}, median",
                c[key]["median"], "ms",
                f"POST /v1/executions {{commit}} of a commit already built: {how}; one warm "
                "`local` worker; peer: an ad-hoc execution of a one-file project, alternately; "
                "for scale (the size counts here; the one-file commit's row is the figure)",
                peer="ad-hoc execution, one-file snapshot", peer_value=h[key]["median"],
                **stats("", c[key]), **stats("peer_", h[key])))
    return rows


# top-level key of a script's JSON -> (its rows, notes printed under the table)
HANDLERS = [
    ("single_submit_to_complete_ms", skeleton_rows, slurm_notes),
    ("slurm", None, None),  # rows made with skeleton's
    ("throughput", throughput_rows, None),
    ("restart_running", restart_running_rows, None),
    ("log_throughput_mb_s", logs_rows, None),
    ("docker_overhead_ms", docker_rows, None),
    ("s3_upload_s", s3_rows, None),
    ("git_fetch", git_rows, None),
]


def num(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(r, prefix=""):
    v = r["value"] if not prefix else r["peer_value"]
    if v is None:
        return "-"
    parts = []
    if r.get(prefix + "min") is not None:
        parts.append(f"{num(r[prefix + 'min'])}-{num(r[prefix + 'max'])}")
    if r.get(prefix + "p95") is not None and (r.get(prefix + "runs") or 10) >= 10:
        parts.append(f"p95 {num(r[prefix + 'p95'])}")
    if r.get(prefix + "runs") is not None:
        parts.append(f"n={r[prefix + 'runs']}")
    return num(v) + (f" ({', '.join(parts)})" if parts else "")


def table(rows):
    lines = ["| figure | ferry | peer | ratio | unit | what was run |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        peer = f"{r['peer']}: {cell(r, 'peer_')}" if r["peer"] else "-"
        ratio = "-"
        if r["ratio"] is not None:
            ratio = f"{r['ratio']:,.0f}" if r["ratio"] >= 100 else f"{r['ratio']:.3g}"
        cells = [r["name"], cell(r), peer, ratio, r["unit"], r["what"]]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")
                                        for c in cells) + " |")
    return lines


def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()


def merge_rows(old_rows, new_rows):
    """--update: NEW rows replace the OLD ones of the same name, in place;
    the rest of NEW is appended."""
    new_by_name = {r["name"]: r for r in new_rows}
    merged = [new_by_name.pop(r["name"], r) for r in old_rows]
    return merged + [r for r in new_rows if r["name"] in new_by_name]


def old_report(out):
    """The committed rows (each with the commit it was measured at) and the
    notes under the committed table, for --update."""
    with open(os.path.join(out, "bench-results.json")) as f:
        rows = json.load(f)
    with open(os.path.join(out, "BENCHMARKS.md")) as f:
        text = f.read()
    m = re.search(r"at commit (\w+)", text)
    for r in rows:
        r.setdefault("commit", m.group(1) if m else "?")
    lines = text.split("\n")
    end = max(i for i, line in enumerate(lines) if line.startswith("|"))
    # The first measurement and every update since, each its own paragraph.
    header = "\n\n".join(line for line in lines if line.startswith(("Measured by", "Updated at")))
    return rows, lines[end + 1:], header


def main():
    args = sys.argv[1:]
    quick = "--quick" in args
    update = "--update" in args
    out = "."
    if "--out" in args:
        i = args.index("--out")
        out = args[i + 1]
        del args[i:i + 2]
    files = [a for a in args if a not in ("--quick", "--update")]
    if not files:
        sys.exit(__doc__)
    all_data = {}
    for path in files:
        with open(path) as f:
            data = json.load(f)
        key = next((k for k, _, _ in HANDLERS if k in data), None)
        if key is None:
            sys.exit(f"{path}: not the result of a benchmark script this report knows")
        all_data[key] = data
    all_data["slurm"] = (all_data.get("slurm") or {}).get("slurm")
    commit = git("rev-parse", "--short", "HEAD")
    # The results this report writes are not changes to what was measured.
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md",
                ":!bench-results.json")
    at = f"{commit}{' (with uncommitted changes)' if dirty else ''}"
    rows, notes = [], []
    for key, rows_fn, notes_fn in HANDLERS:
        if key in all_data and rows_fn and all_data[key]:
            rows += rows_fn(all_data[key], all_data)
            if notes_fn:
                notes += notes_fn(all_data)
    for r in rows:
        r["commit"] = at
    measured = (f"Measured by `tests/bench/run{' --quick' if quick else ''}` at commit {at} "
                f"on {machine()}.")
    if update:
        old_rows, notes, old_header = old_report(out)
        rows = merge_rows(old_rows, rows)
        names = ", ".join(f"`{os.path.basename(p)}`" for p in files)
        measured = (f"{old_header}\n\nUpdated at commit {at} with the rows of {names} alone "
                    f"(each row's commit is in bench-results.json), on {machine()}.")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench-results.json"), "w") as f:
        json.dump(rows, f, indent=2)
    lines = ["# Benchmarks", "", measured, "",
             "Every figure is the median of repeated runs, warm-up runs excluded; in brackets "
             "min-max, p95 where measured over 10 runs or more, and n, the number of runs. "
             "Each peer ran in the same run on the same machine. ratio = ferry / peer: lower "
             "is better, except where the figure says higher is better. Figures with a target "
             "but no peer give the target in the last column.", ""]
    lines += table(rows)
    if update:
        lines += notes
    else:
        lines += [""] + notes
        # Checks made by hand on other machines, kept in bench/observations.md.
        obs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "observations.md")
        if os.path.exists(obs) and not quick:
            with open(obs) as f:
                lines += [f.read().rstrip(), ""]
    with open(os.path.join(out, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
