#!/usr/bin/env python3
"""Issue 17's figures: projects linked to git repositories.

  1. fetch: `ferry project fetch P` of one new commit on a mirror of a
     repository of C commits (default 10,000), end to end (the CLI's
     process, ferryd's libgit2 fetch on its thread pool, the answer
     printed), side by side with `git fetch` of the same commit in a
     `git clone --mirror` kept beside it. The repository is served by a
     real `git daemon` on loopback (git://). Each repeat adds one commit
     upstream, then times both, in alternating order. Target: ratio at
     most 1.5.
  2. snapshot (against issue 17's API contract, POST /v1/executions with
     "project" and "commit"): a commit of F files (default 5,000 in 50
     folders, 200 MB; seeded, a mix of source-like text and incompressible
     data) as the first execution of it, POST -> answered (ferryd
     resolves the ref, builds the .tar.gz of the tree and stores it: the
     whole request, nothing subtracted), side by side with `git archive
     --format=tar.gz -o x.tgz COMMIT` run in ferryd's own mirror. Each
     repeat is a new commit (a new tree: one file changed), so every build
     is a first one. Target: ratio at most 1.2. Then the second execution
     of the same commit (snapshot reused) against an ad-hoc execution of a
     one-file project, POST -> queued and POST -> started (ferryd's
     started_at; the agent's download of the snapshot included). Target:
     within 10 ms.
     When ferryd does not take "commit" yet (an HTTP error), the part says
     so in its JSON ("not_measured", the answer) and measures, in the
     interim, the build alone: ferry_git_build_snapshot (core/git/gitsnap.c)
     through tests/bench/git_snap_bench (no HTTP, no store write) against
     `git archive` of the same commit in the same mirror ("direct"). With
     ferryd taking "commit", that build alone is measured too, to tell it
     from the rest of the request (storing, reading the step file).

  git.py [--build DIR] [--commits C] [--repeats R] [--files F] [--size-mb M]
         [--snap-repeats S] [--part fetch|snapshot|all]

Prints a JSON document on stdout. Needs git (the CLI, git-daemon).
"""
import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import Ferryd  # noqa: E402

FETCH_TARGET_RATIO = 1.5
SNAPSHOT_TARGET_RATIO = 1.2
REUSE_TARGET_MS = 10.0
STEP = b"- step:\n    name: noop\n    image: none\n    command: 'true'\n"

# Hermetic git: none of the caller's config, a fixed identity and clock.
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_TERMINAL_PROMPT="0", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@x",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@x")
for k in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_SSH_COMMAND", "GIT_ASKPASS"):
    GIT_ENV.pop(k, None)
T0 = 1700000000  # the first commit's time; one second more per commit


def git(*args, cwd=None, stdin=None, check=True):
    r = subprocess.run(["git", *args], cwd=cwd, input=stdin, env=GIT_ENV,
                       capture_output=True)
    if check and r.returncode != 0:
        sys.exit(f"git {' '.join(args)}: {r.stderr.decode(errors='replace')[-2000:]}")
    return r.stdout.decode().strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, env=None):
    """Wall ms of one command (which must succeed), and its stdout."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env or GIT_ENV, capture_output=True)
    ms = (time.perf_counter() - t0) * 1000
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: "
                 f"{(r.stdout + r.stderr).decode(errors='replace')[-2000:]}")
    return ms, r.stdout.decode()


def summary(v):
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)}


class Commits:
    """Commits appended to branch main of a bare repository through one
    `git fast-import` each batch (thousands of commits in a second, where
    `git commit` would take minutes). Every commit is one file changed in
    a tree of 100 files in 10 folders, dated one second after the last."""

    def __init__(self, bare):
        self.bare = bare
        self.n = 0

    def add(self, count):
        out = []
        for i in range(self.n, self.n + count):
            path = f"src/m{i % 10}/f{(i // 10) % 10}.py"
            body = f"# change {i}\nVALUE = {i}\n".encode() + b"x = 1\n" * (i % 50)
            msg = f"change {i}".encode()
            out.append(b"commit refs/heads/main\n")
            out.append(f"committer Bench <b@x> {T0 + i} +0000\n".encode())
            out.append(b"data %d\n%s\n" % (len(msg), msg))
            if i == self.n and self.n > 0:
                out.append(b"from refs/heads/main^0\n")
            if i == 0:
                out.append(b"M 100644 inline ferry.yaml\ndata %d\n%s\n" % (len(STEP), STEP))
            out.append(f"M 100644 inline {path}\n".encode())
            out.append(b"data %d\n%s\n" % (len(body), body))
        git("fast-import", "--quiet", cwd=self.bare, stdin=b"".join(out))
        self.n += count
        return git("rev-parse", "main", cwd=self.bare)


class Daemon:
    """git-daemon on loopback serving the bare repositories of `base`."""

    def __init__(self, base, log):
        self.port = free_port()
        exe = os.path.join(git("--exec-path"), "git-daemon")
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [exe, "--export-all", f"--base-path={base}", "--reuseaddr", "--listen=127.0.0.1",
             f"--port={self.port}", base], stdout=self.log, stderr=subprocess.STDOUT,
            env=GIT_ENV)
        for _ in range(200):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.025)
        sys.exit(f"git daemon did not start (see {log})")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def fetch_part(a, work):
    up_base = os.path.join(work, "srv")
    bare = os.path.join(up_base, "up.git")
    os.makedirs(bare)
    git("init", "--bare", "-q", "-b", "main", bare)
    commits = Commits(bare)
    t0 = time.perf_counter()
    commits.add(a.commits)
    made_s = time.perf_counter() - t0
    # One pack, as a served repository's would be after its gc.
    git("repack", "-a", "-d", "-q", cwd=bare)
    daemon = Daemon(up_base, os.path.join(work, "daemon.log"))
    url = f"git://127.0.0.1:{daemon.port}/up.git"
    d = None
    try:
        conf = (f'projects = ( {{ name = "bench"; repository = "{url}"; '
                f'default_ref = "main"; }} );\n')
        d = Ferryd(a.build, conf, os.path.join(work, "ferryd"))
        ferry = [os.path.join(a.build, "bin", "ferry"), "--server", d.url]
        first_ms, out = timed(ferry + ["project", "fetch", "bench"])
        mirror = os.path.join(d.data, "git", "bench.git")
        head = git("rev-parse", "main", cwd=bare)
        if git("rev-parse", "main", cwd=mirror) != head:
            sys.exit(f"ferry's mirror is not at {head} after the first fetch: {out}")
        peer = os.path.join(work, "peer.git")
        clone_ms, _ = timed(["git", "clone", "--mirror", "-q", url, peer])
        ferry_ms, git_ms = [], []
        for i in range(a.repeats + 1):  # the first: a warm-up, not counted
            new = commits.add(1)
            order = ("ferry", "git") if i % 2 == 0 else ("git", "ferry")
            for who in order:
                if who == "ferry":
                    ms, out = timed(ferry + ["project", "fetch", "bench"])
                    if new[:7] not in out or git("rev-parse", "main", cwd=mirror) != new:
                        sys.exit(f"ferry project fetch did not fetch {new}: {out}")
                    if i:
                        ferry_ms.append(ms)
                else:
                    ms, _ = timed(["git", "-C", peer, "fetch", "-q"])
                    if git("rev-parse", "main", cwd=peer) != new:
                        sys.exit(f"git fetch did not fetch {new}")
                    if i:
                        git_ms.append(ms)
    finally:
        if d is not None:
            d.stop()
        daemon.stop()
    return {"base_commits": a.commits, "commits": commits.n, "made_s": made_s,
            "first_fetch_ms": first_ms,
            "first_clone_ms": clone_ms, "ferry": summary(ferry_ms), "git": summary(git_ms),
            "peer": "git fetch (a git clone --mirror of the same repository)",
            "git_version": git("--version"), "target_ratio": FETCH_TARGET_RATIO}


# --- snapshot ---

WORDS = None


def text_pool(rng, size):
    """Source-like text: lines of words from a vocabulary of 4,000, indented."""
    global WORDS
    if WORDS is None:
        letters = "abcdefghijklmnopqrstuvwxyz_"
        WORDS = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
                 for _ in range(4000)]
        WORDS += ["(", ")", "=", "+", "return", "def", "if", "for", "in", "self", "0", "1", ":"]
    parts, n = [], 0
    while n < size:
        indent = "    " * rng.randint(0, 3)  # drawn before the words
        line = indent + " ".join(rng.choices(WORDS, k=rng.randint(3, 12))) + "\n"
        parts.append(line)
        n += len(line)
    return "".join(parts).encode()


def make_big_repo(bare, files, size_mb, seed=17):
    """One commit of `files` files in 50 folders, `size_mb` MB in all: four
    in five source-like text (slices of a seeded text pool, about 3x
    compressible), one in five seeded random bytes (data, incompressible).
    Built with one `git fast-import`; deterministic for a given seed."""
    rng = random.Random(seed)
    total = size_mb * 1000 * 1000
    pool = text_pool(rng, 8 << 20)
    avg = total // files
    out = [b"commit refs/heads/main\n", f"committer Bench <b@x> {T0} +0000\n".encode(),
           b"data 8\nbig tree\n",
           b"M 100644 inline ferry.yaml\ndata %d\n%s\n" % (len(STEP), STEP)]
    written = 0
    for i in range(files):
        size = max(64, int(rng.expovariate(1 / avg))) if i < files - 1 else max(64, total - written)
        size = min(size, avg * 8, max(64, total - written))
        folder = f"d{i % 50:02d}"
        if i % 5 == 4:
            body, path = rng.randbytes(size), f"{folder}/data{i}.bin"
        else:
            off = rng.randrange(0, len(pool) - min(size, len(pool) - 1))
            body = (f"# file {i}\n".encode() + pool[off:off + size])[:size]
            while len(body) < size:  # a file longer than the pool: more slices
                off = rng.randrange(0, len(pool) // 2)
                body += pool[off:off + size - len(body)]
            path = f"{folder}/mod{i}.py"
        if i % 97 == 0:
            script = b"#!/bin/sh\necho ok %d\n" % i
            out.append(f"M 100755 inline {folder}/run{i}.sh\n".encode())
            out.append(b"data %d\n%s\n" % (len(script), script))
        out.append(f"M 100644 inline {path}\n".encode())
        out.append(b"data %d\n" % len(body))
        out.append(body)
        out.append(b"\n")
        written += len(body)
    git("init", "--bare", "-q", "-b", "main", bare)
    git("fast-import", "--quiet", cwd=bare, stdin=b"".join(out))
    git("repack", "-a", "-d", "-q", cwd=bare)
    return written


def make_one_file_repo(bare):
    """A repository whose one commit holds only ferry.yaml: the commit twin
    of the ad-hoc one-file project the reuse figure is measured against."""
    stream = (b"commit refs/heads/main\n" + f"committer Bench <b@x> {T0} +0000\n".encode()
              + b"data 8\none file\n"
              + b"M 100644 inline ferry.yaml\ndata %d\n%s\n" % (len(STEP), STEP))
    git("init", "--bare", "-q", "-b", "main", bare)
    git("fast-import", "--quiet", cwd=bare, stdin=stream)
    return git("rev-parse", "main", cwd=bare)


def new_tree_commit(bare, i):
    """A commit on main changing one small file: a new tree, so a snapshot
    that must be built (ferry caches them by tree)."""
    body = f"build {i}\n".encode()
    msg = f"rebuild {i}".encode()
    stream = (b"commit refs/heads/main\n" + f"committer Bench <b@x> {T0 + 10 + i} +0000\n".encode()
              + b"data %d\n%s\nfrom refs/heads/main^0\n" % (len(msg), msg)
              + b"M 100644 inline BUILD\ndata %d\n%s\n" % (len(body), body))
    git("fast-import", "--quiet", cwd=bare, stdin=stream)
    return git("rev-parse", "main", cwd=bare)


def ts(v):
    """ferryd's timestamp (unix seconds, or an ISO 8601 string) as seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    from datetime import datetime
    return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()


def submit_wait(d, body):
    """POST /v1/executions, then wait for it to end: (POST -> answered ms,
    POST -> queued ms, POST -> started ms, the execution) from ferryd's
    timestamps against the client's clock at the POST (one machine)."""
    wall0, t0 = time.time(), time.perf_counter()
    e = d.call("POST", "/v1/executions", body)
    answered = (time.perf_counter() - t0) * 1000
    while e["status"] not in ("complete", "error", "stopped"):
        e = d.call("GET", f"/v1/executions/{e['id']}/wait?timeout=60")
    if e["status"] != "complete":
        sys.exit(f"execution {e['id']} ended {e['status']}: {e.get('status_reason')}")
    return (answered, (ts(e["queued_at"]) - wall0) * 1000, (ts(e["started_at"]) - wall0) * 1000,
            e)


def direct_build(a, work, conf, mirror, bare):
    """The build alone (the interim figure while ferryd's API does not take
    "commit"), ferry_git_build_snapshot through tests/bench/git_snap_bench
    (its own mirror, fetched once; the thread pool hop included, no HTTP, no
    store write), each run against `git archive` of the same commit in that
    mirror, alternately. The same tree each time: the function does not
    cache, its caller does."""
    bench = os.path.join(a.build, "bin", "git_snap_bench")
    if not os.access(bench, os.X_OK):
        return {"direct": None}
    data = os.path.join(work, "direct")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "ferryd.conf"), "w") as f:
        f.write(conf)
    out, tgz = os.path.join(work, "direct.tar.gz"), os.path.join(work, "x.tgz")
    mirror = os.path.join(data, "git", "big.git")
    build_ms, archive_ms = [], []
    snap_bytes = None
    for i in range(a.snap_repeats + 1):  # the first: a warm-up (and the fetch)
        order = ("ferry", "git") if i % 2 == 0 else ("git", "ferry")
        for who in order:
            if who == "ferry":
                _, res = timed([bench, os.path.join(data, "ferryd.conf"), data, "big", "main",
                                "1", out])
                r = json.loads(res)
                snap_bytes = r["bytes"]
                if i:
                    build_ms.extend(r["build_ms"])
            elif os.path.isdir(mirror):
                ms, _ = timed(["git", "-C", mirror, "archive", "--format=tar.gz", "-o", tgz,
                               "main"])
                if i:
                    archive_ms.append(ms)
    return {"direct": {"ferry": summary(build_ms), "git": summary(archive_ms),
                       "snapshot_bytes": snap_bytes, "git_archive_bytes": os.path.getsize(tgz),
                       "peer": "git archive --format=tar.gz -o x.tgz main (in the same mirror)",
                       "git_version": git("--version"), "target_ratio": SNAPSHOT_TARGET_RATIO}}


def snapshot_part(a, work):
    srv = os.path.join(work, "snap-srv")
    os.makedirs(srv)
    bare = os.path.join(srv, "big.git")
    t0 = time.perf_counter()
    size = make_big_repo(bare, a.files, a.size_mb)
    made_s = time.perf_counter() - t0
    one_bare = os.path.join(srv, "one.git")
    one_sha = make_one_file_repo(one_bare)
    conf = (f'environments = ( {{ name = "local"; max_workers = 1; }} );\n'
            f'projects = ( {{ name = "big"; repository = "file://{bare}"; '
            f'default_ref = "main"; }},\n'
            f'  {{ name = "one"; repository = "file://{one_bare}"; }} );\n')
    d = Ferryd(a.build, conf, os.path.join(work, "ferryd-snap"))
    try:
        ferry = [os.path.join(a.build, "bin", "ferry"), "--server", d.url]
        timed(ferry + ["project", "fetch", "big"])
        mirror = os.path.join(d.data, "git", "big.git")
        probe = d.call("POST", "/v1/executions",
                       {"project": "big", "step": "noop", "commit": "main"}, may_fail=True)
        if probe is None:
            # Asked again to keep the error's text (may_fail drops it).
            d.conn.request("POST", "/v1/executions", body=json.dumps(
                {"project": "big", "step": "noop", "commit": "main"}).encode(),
                headers={"Content-Type": "application/json"})
            r = d.conn.getresponse()
            why = (f"POST /v1/executions with \"commit\": HTTP {r.status}: "
                   f"{r.read()[:300].decode(errors='replace').strip()}")
            d.stop()
            return dict(direct_build(a, work, conf, mirror, bare), not_measured=why,
                        files=a.files, size_bytes=size, made_s=made_s)
        while probe["status"] not in ("complete", "error", "stopped"):  # warms the worker
            probe = d.call("GET", f"/v1/executions/{probe['id']}/wait?timeout=60")
        build_ms, archive_ms, tgz = [], [], 0
        for i in range(a.snap_repeats):
            sha = new_tree_commit(bare, i)
            timed(ferry + ["project", "fetch", "big"])
            outs = os.path.join(work, "x.tgz")
            order = ("ferry", "git") if i % 2 == 0 else ("git", "ferry")
            for who in order:
                if who == "ferry":
                    t1 = time.perf_counter()
                    e = d.call("POST", "/v1/executions",
                               {"project": "big", "step": "noop", "commit": sha})
                    build_ms.append((time.perf_counter() - t1) * 1000)
                    if (e.get("commit") or {}).get("sha") != sha:
                        sys.exit(f"execution {e['id']} is not of commit {sha}: {e.get('commit')}")
                    while e["status"] not in ("complete", "error", "stopped"):
                        e = d.call("GET", f"/v1/executions/{e['id']}/wait?timeout=60")
                else:
                    ms, _ = timed(["git", "-C", mirror, "archive", "--format=tar.gz", "-o",
                                   outs, sha])
                    archive_ms.append(ms)
                    tgz = os.path.getsize(outs)
        snap_bytes = next((os.path.getsize(os.path.join(dp, e["snapshot"] + ".tar.gz"))
                           for dp, _, names in os.walk(d.data)
                           if e["snapshot"] + ".tar.gz" in names), None)
        # Reuse: the last commit again (its snapshot built), against an
        # ad-hoc one-file snapshot, alternately.
        one = d.snapshot()
        # And, to tell the commit path from the snapshot's size, an ad-hoc
        # execution of that same big snapshot.
        big = e["snapshot"]
        # The figure itself: a one-file commit run again (its snapshot
        # built by the first run, a warm-up below) against the one-file
        # ad-hoc project: what the commit path adds, the size aside.
        whos = ("commit_small", "adhoc", "commit", "adhoc_same")
        reuse = {w: {"answered": [], "queued": [], "started": []} for w in whos}
        bodies = {"commit_small": {"project": "one", "step": "noop", "commit": one_sha},
                  "commit": {"project": "big", "step": "noop", "commit": sha},
                  "adhoc": {"project": "bench", "step": "noop", "snapshot": one},
                  "adhoc_same": {"project": "bench", "step": "noop", "snapshot": big}}
        for i in range(a.reuse_runs + 2):
            for who in whos[i % 4:] + whos[:i % 4]:
                body = bodies[who]
                ans, q, s, e = submit_wait(d, body)
                if who == "commit" and e.get("snapshot") != big:
                    sys.exit(f"execution {e['id']} did not reuse snapshot {big}: "
                             f"{e.get('snapshot')}")
                if i >= 2:  # warm-up
                    for k, v in (("answered", ans), ("queued", q), ("started", s)):
                        reuse[who][k].append(v)
    finally:
        d.stop()
    # The build alone beside it, to tell it from the rest of the request.
    return {**direct_build(a, work, conf, mirror, bare), "files": a.files, "size_bytes": size, "made_s": made_s, "snapshot_bytes": snap_bytes,
            "git_archive_bytes": tgz, "ferry": summary(build_ms), "git": summary(archive_ms),
            "peer": "git archive --format=tar.gz -o x.tgz COMMIT (in ferryd's mirror)",
            "git_version": git("--version"), "target_ratio": SNAPSHOT_TARGET_RATIO,
            "reuse": {who: {k: summary(v) for k, v in r.items()} for who, r in reuse.items()},
            "reuse_target_ms": REUSE_TARGET_MS}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(here, "..", "..", "build-bench"))
    ap.add_argument("--commits", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--size-mb", type=int, default=200)
    ap.add_argument("--snap-repeats", type=int, default=5)
    ap.add_argument("--reuse-runs", type=int, default=20)
    ap.add_argument("--part", choices=("fetch", "snapshot", "all"), default="all")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    work = tempfile.mkdtemp(prefix="ferry-bench-git-")
    out = {"git_fetch": None, "git_snapshot": None}
    try:
        if a.part in ("fetch", "all"):
            out["git_fetch"] = fetch_part(a, work)
        if a.part in ("snapshot", "all"):
            out["git_snapshot"] = snapshot_part(a, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
