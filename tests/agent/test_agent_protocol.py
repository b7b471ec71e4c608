"""ferry-agent against a fake ferryd (docs/api.md), with the real
local-process runtime plugin.

Usage: test_agent_protocol.py --agent PATH --plugin-dir DIR
"""

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zlib

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_ferryd import FakeFerryd, sha256  # noqa: E402

BOOTSTRAP = "boot-" + uuid.uuid4().hex
GRACE_MS = 3000
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)
    return cond


def make_snapshot():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [("repo_file.txt", b"from the snapshot\n"),
                           ("pkg/module.py", b"print('hi')\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def spec_for(fake, command, snapshot, inputs=None, time_limit=0, counter=1,
             no_output_timeout=0, gpus=None):
    eid = str(uuid.uuid4())
    execution = {"id": eid, "counter": counter, "project": "hello", "step": "train",
                 "status": "queued", "command": command, "parameters": {"epochs": 3},
                 "tags": ["t1"], "metadata": {}}
    return {
        "id": eid, "counter": counter, "project": "hello", "step": "train",
        "image": "python:3.12", "command": command,
        "env": {"MY_VAR": "my value", "NUM": 7}, "valohai": False,
        "time_limit": time_limit, "no_output_timeout": no_output_timeout, "gpus": gpus,
        "parameters": {"epochs": 3, "lr": "0.1", "layers": ["a", "b"]},
        "snapshot": {"url": fake.url + "/v1/blobs/snap?expires=1&sig=snapsecret",
                     "sha256": sha256(snapshot)},
        "inputs": inputs if inputs is not None else [],
        "execution": execution,
    }


def wait_finished(fake, eid, timeout):
    ok = fake.wait_for(lambda: any(b.get("status") == "finished"
                                   for _, b in fake.status.get(eid, [])), timeout)
    check(ok, "execution %s finished within %s s" % (eid, timeout))
    return fake.finished(eid)


LONG = 70000
COMMAND_A = r"""
echo "line one"
echo "err one" >&2
i=1; while [ $i -le 1200 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done
cat repo_file.txt
echo "env $FERRY_EXECUTION_ID $FERRY_STEP $FERRY_PROJECT $FERRY_EXECUTION_COUNTER $MY_VAR $NUM"
echo "token=${FERRY_BOOTSTRAP_TOKEN:-unset}"
printf '\377\376bad\n'
head -c %d /dev/zero | tr '\0' x; echo
mkdir -p "$FERRY_OUTPUTS_DIR/sub" "$FERRY_OUTPUTS_DIR/config"
cp "$FERRY_INPUTS_DIR/data/data.csv" "$FERRY_OUTPUTS_DIR/sub/copy.csv"
cp "$FERRY_CONFIG_DIR"/*.json "$FERRY_CONFIG_DIR"/*.yaml "$FERRY_OUTPUTS_DIR/config/"
echo hello > "$FERRY_OUTPUTS_DIR/top.txt"
ln -s /etc/passwd "$FERRY_OUTPUTS_DIR/link"
printf 'no newline at the end'
exit 3
""" % LONG


def run_a(fake, snapshot, agent_log):
    data = b"a,b\n1,2\n" * 1000
    fake.add_blob("/input/data.csv", data)
    inputs = [{"name": "data", "files": [
        {"url": fake.url + "/input/data.csv?token=inputsecret", "filename": "data.csv"}]}]
    spec = spec_for(fake, COMMAND_A, snapshot, inputs)
    eid = spec["id"]
    fake.give_work(spec)
    fin = wait_finished(fake, eid, 60)
    if fin is None:
        return spec
    statuses = fake.statuses(eid)
    check([b["status"] for b in statuses] == ["started", "finished"],
          "A: started, then finished: %r" % statuses)
    check(fin.get("exit_code") == 3, "A: exit_code 3: %r" % fin)
    check(fin.get("reason") is None, "A: reason null: %r" % fin)

    events = fake.event_list(eid)
    seqs = [e["seq"] for e in events]
    check(seqs == list(range(1, len(seqs) + 1)), "A: seqs consecutive from 1")
    check(fake.duplicate_events > 0, "A: a lost answer made the agent resend (dedup seen)")
    check(all(isinstance(e["time"], float) and abs(e["time"] - time.time()) < 300
              for e in events), "A: times are epoch floats")
    lines = fake.line_list(eid)
    out = [e["text"] for e in lines if e["stream"] == "stdout"]
    err = [e["text"] for e in lines if e["stream"] == "stderr"]
    status = [e["text"] for e in lines if e["stream"] == "status"]
    check(set(e["stream"] for e in events) <= {"stdout", "stderr", "status"}, "A: streams")
    expected_out = (["line one"] + ["out %d" % i for i in range(1, 1201)] +
                    ["from the snapshot",
                     "env %s train hello 1 my value 7" % eid, "token=unset",
                     "\ufffd\ufffdbad", "x" * 65536, "x" * (LONG - 65536),
                     "no newline at the end"])
    check(out == expected_out, "A: stdout lines once, in order (%d lines, first difference "
          "at %s)" % (len(out), next((i for i, (x, y) in enumerate(zip(out, expected_out))
                                      if x != y), min(len(out), len(expected_out)))))
    check(err == ["err one"] + ["err %d" % i for i in range(1, 1201)],
          "A: stderr lines once, in order")
    check(any("link not uploaded" in s and "symbolic" in s for s in status),
          "A: status event about the refused symlink: %r" % status)
    check(any("exited with code 3" in s for s in status), "A: status event with the exit")

    outs = {o["name"]: o for o in fake.outputs.get(eid, [])}
    expected_names = {"sub/copy.csv", "top.txt", "config/parameters.json",
                      "config/parameters.yaml", "config/inputs.json", "config/execution.json"}
    check(set(outs) == expected_names, "A: outputs listed: %r" % sorted(outs))
    for name in expected_names & set(outs):
        got = fake.uploads.get((eid, name))
        if not check(got is not None, "A: %s uploaded" % name):
            continue
        check(outs[name]["size"] == len(got), "A: %s size" % name)
        check(outs[name]["sha256"] == sha256(got), "A: %s sha256" % name)
    check(fake.uploads.get((eid, "sub/copy.csv")) == data, "A: input bytes came through")
    check(fake.uploads.get((eid, "top.txt")) == b"hello\n", "A: top.txt bytes")

    def config(name):
        try:
            return json.loads(fake.uploads.get((eid, "config/" + name)) or b"null")
        except ValueError:
            return None
    check(config("parameters.json") == spec["parameters"], "A: parameters.json")
    # parameters.yaml: the same values (JSON text is YAML)
    check(config("parameters.yaml") == spec["parameters"], "A: parameters.yaml")
    check(config("execution.json") == spec["execution"], "A: execution.json")
    inputs_json = config("inputs.json") or {}
    files = inputs_json.get("data", {}).get("files", [])
    check(len(files) == 1 and files[0].get("name") == "data.csv" and
          files[0].get("path", "").endswith("/executions/%s/inputs/data/data.csv" % eid) and
          files[0].get("url") == fake.url + "/input/data.csv",
          "A: inputs.json (no query string in the url): %r" % inputs_json)
    return spec


def run_failed_input(fake, snapshot):
    inputs = [{"name": "data", "files": [
        {"url": fake.url + "/missing.csv?token=inputsecret", "filename": "m.csv"}]}]
    spec = spec_for(fake, "echo should not run", snapshot, inputs, counter=2)
    eid = spec["id"]
    fake.give_work(spec)
    fin = wait_finished(fake, eid, 30)
    if fin is None:
        return
    check([b["status"] for b in fake.statuses(eid)] == ["started", "finished"],
          "C: started, then finished")
    check(fin.get("exit_code") == -1, "C: exit_code -1: %r" % fin)
    reason = fin.get("reason") or ""
    check(reason.startswith("could not start: ") and "data" in reason, "C: reason %r" % reason)
    texts = [e["text"] for e in fake.line_list(eid)]
    check(not any(e["stream"] == "stdout" for e in fake.event_list(eid)), "C: nothing ran")
    url = fake.url + "/missing.csv"
    check(any('input "data"' in t and url in t and "HTTP 404" in t for t in texts),
          "C: a status event names the input, the URL and the HTTP status: %r" % texts)
    check(not any("inputsecret" in t for t in texts), "C: no query string in events")
    check(fake.downloads.get("/v1/blobs/snap") == 1,
          "C: the snapshot came from the cache (downloads: %r)" % fake.downloads)


def run_stop(fake, snapshot):
    spec = spec_for(fake, "echo sleeping; sleep 60", snapshot, counter=3)
    eid = spec["id"]
    fake.give_work(spec)
    check(fake.wait_for(lambda: fake.has_line(eid, "sleeping"), 30),
          "B: the run started")
    # The heartbeat poll lists the execution and no free slot.
    check(fake.wait_for(lambda: any(eid in b.get("running", []) and b.get("free_slots") == 0
                                    for _, b in fake.polls), 10),
          "B: a poll carries the running id and free_slots 0")
    t0 = time.monotonic()
    fake.order_stop(eid)
    fin = wait_finished(fake, eid, 30)
    took = time.monotonic() - t0
    if fin is None:
        return
    check(fin.get("reason") == "stopped", "B: reason stopped: %r" % fin)
    with fake.cond:
        finished_at = [t for t, b in fake.status[eid] if b["status"] == "finished"][0]
    check(finished_at - t0 < GRACE_MS / 1000.0, "B: ended within the grace (%.2f s)" % took)


def make_bomb(zero_bytes):
    """A gzip'd tar of one file of zeros, a few MB packed (a bomb): made
    here, block by block, never kept."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = zero_bytes
    info.mode = 0o644
    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    out = [z.compress(info.tobuf(tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    left = zero_bytes + (-zero_bytes % 512) + 1024  # padding, end-of-archive blocks
    while left > 0:
        out.append(z.compress(chunk[:min(left, len(chunk))]))
        left -= len(chunk)
    out.append(z.flush())
    return b"".join(out)


def bomb_spec(fake, command, bomb, counter, **bounds):
    spec = spec_for(fake, command, b"", counter=counter)
    path = "/v1/blobs/bomb-%d" % counter
    fake.add_blob(path, bomb)
    spec["snapshot"] = dict({"url": fake.url + path + "?sig=snapsecret",
                             "sha256": sha256(bomb)}, **bounds)
    return spec


def run_snapshot_bound(fake):
    """The work spec's bound on a snapshot's uncompressed size holds: the
    extraction stops there and the execution fails, naming the bound."""
    spec = bomb_spec(fake, "echo should not run", make_bomb(8 << 20), 30, max_bytes=1 << 20)
    eid = spec["id"]
    fake.give_work(spec)
    fin = wait_finished(fake, eid, 30)
    if fin is None:
        return
    reason = fin.get("reason") or ""
    check(fin.get("exit_code") == -1 and reason.startswith("could not start: snapshot") and
          "more than 1048576 bytes" in reason, "bound: the snapshot's bound is named: %r" % fin)
    check(not any(e["stream"] == "stdout" for e in fake.event_list(eid)), "bound: nothing ran")


def disk_use(path):
    try:
        return os.stat(path).st_blocks * 512
    except OSError:
        return -1


def run_stop_mid_extract(fake, work):
    """A stop while a snapshot (a bomb of 1 GiB of zeros) is extracted ends
    the extraction; the stop is reported once it did, not before."""
    total = 1 << 30
    spec = bomb_spec(fake, "echo should not run", make_bomb(total), 31)
    eid = spec["id"]
    zeros = os.path.join(work, "executions", eid, "repository", "zeros.bin")
    seen = {}
    fake.on_finished = lambda e: seen.setdefault(e, disk_use(zeros))
    fake.give_work(spec)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and disk_use(zeros) < (8 << 20):
        time.sleep(0.01)
    check(disk_use(zeros) >= (8 << 20), "mid-extract: the extraction is under way")
    fake.order_stop(eid)
    fin = wait_finished(fake, eid, 30)
    fake.on_finished = None
    if fin is None:
        return
    check(fin.get("reason") == "stopped", "mid-extract: reason stopped: %r" % fin)
    check(0 <= seen.get(eid, -1) < total // 2,
          "mid-extract: the extraction ended at the stop, before the report (%d of %d bytes "
          "written when reported)" % (seen.get(eid, -1), total))
    check(fake.wait_for(lambda: not os.path.exists(os.path.dirname(zeros)), 10),
          "mid-extract: the repository folder is removed")


def run_output_swapped(fake, snapshot, work, tmp):
    """A file of outputs/ swapped for a symlink (or its folder for one)
    between the walk and the upload: the worker's file is not uploaded."""
    secret = os.path.join(tmp, "worker-secret")
    os.makedirs(secret, exist_ok=True)
    for name in ("o.txt", "p.txt"):
        with open(os.path.join(secret, name), "wb") as f:
            f.write(b"worker secret\n")
    spec = spec_for(fake, 'mkdir -p "$FERRY_OUTPUTS_DIR/sub"; echo mine > "$FERRY_OUTPUTS_DIR/o.txt";'
                    ' echo mine > "$FERRY_OUTPUTS_DIR/sub/p.txt"', snapshot, counter=32)
    eid = spec["id"]
    outputs = os.path.join(work, "executions", eid, "outputs")

    def swap(e, outs):
        if e != eid:
            return
        os.unlink(os.path.join(outputs, "o.txt"))
        os.symlink(os.path.join(secret, "o.txt"), os.path.join(outputs, "o.txt"))
        sub = os.path.join(outputs, "sub")
        os.rename(sub, sub + ".moved")
        os.symlink(secret, sub)
    fake.on_outputs = swap
    fake.give_work(spec)
    fin = wait_finished(fake, eid, 30)
    fake.on_outputs = None
    if fin is None:
        return
    with fake.cond:
        sent = {k[1]: v for k, v in fake.uploads.items() if k[0] == eid}
    check(sorted(o["name"] for o in fake.outputs.get(eid, [])) == ["o.txt", "sub/p.txt"],
          "swap: the walk saw both files: %r" % fake.outputs.get(eid))
    check(not any(b"worker secret" in v for v in sent.values()),
          "swap: the worker's files are not uploaded: %r" % sent)
    check("not be stored" in (fin.get("reason") or "") or "unsafe" in (fin.get("reason") or ""),
          "swap: the execution says its outputs were not stored: %r" % fin)


def run_time_limit(fake, snapshot):
    spec = spec_for(fake, "sleep 30", snapshot, time_limit=1, counter=4)
    eid = spec["id"]
    t0 = time.monotonic()
    fake.give_work(spec)
    fin = wait_finished(fake, eid, 20)
    if fin is None:
        return
    took = time.monotonic() - t0
    check(fin.get("reason") == "time limit exceeded (1 s)", "D: reason: %r" % fin)
    check(1.0 <= took < 1.0 + GRACE_MS / 1000.0 + 2, "D: stopped after about 1 s (%.2f)" % took)


def run_sigterm(fake, snapshot, agent):
    spec = spec_for(fake, "echo waiting; sleep 60", snapshot, counter=5)
    eid = spec["id"]
    fake.give_work(spec)
    check(fake.wait_for(lambda: fake.has_line(eid, "waiting"), 30),
          "E: the run started")
    agent.send_signal(signal.SIGTERM)
    try:
        rc = agent.wait(20)
    except subprocess.TimeoutExpired:
        agent.kill()
        rc = None
    check(rc == 0, "E: the agent exits 0 after SIGTERM (rc %r)" % rc)
    fin = fake.finished(eid)
    check(fin is not None and fin.get("reason") == "stopped",
          "E: the run was stopped and reported: %r" % fin)


def stdout_of(fake, eid):
    return [e["text"] for e in fake.line_list(eid) if e["stream"] == "stdout"]


def run_no_output(fake, snapshot):
    """A silent run is stopped after no_output_timeout; a chatty one with the
    same timeout runs to its end. Both at once (two slots)."""
    silent = spec_for(fake, "sleep 30", snapshot, no_output_timeout=1, counter=10)
    chatty = spec_for(fake, "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.4; done",
                      snapshot, no_output_timeout=1, counter=11)
    t0 = time.monotonic()
    fake.give_work(silent)
    fake.give_work(chatty)
    fin = wait_finished(fake, silent["id"], 20)
    took = time.monotonic() - t0
    if fin is not None:
        check(fin.get("reason") == "no output for 1 s", "F: silent: reason: %r" % fin)
        check(fin.get("exit_code") == 128 + signal.SIGTERM, "F: silent: SIGTERM's code: %r" % fin)
        check(1.0 <= took < 2.5, "F: silent: stopped after about 1 s (%.2f s)" % took)
    fin = wait_finished(fake, chatty["id"], 20)
    if fin is not None:
        check(fin.get("exit_code") == 0 and fin.get("reason") is None,
              "F: chatty: ran to its end: %r" % fin)
        check(stdout_of(fake, chatty["id"]) == ["tick %d" % i for i in range(1, 9)],
              "F: chatty: all its output: %r" % stdout_of(fake, chatty["id"]))


def run_gpus(fake, snapshot):
    """gpus reaches the commands as CUDA_VISIBLE_DEVICES; none, none at all."""
    command = 'echo "cuda=${CUDA_VISIBLE_DEVICES-unset}"'
    one = spec_for(fake, command, snapshot, gpus="1", counter=12)
    none = spec_for(fake, command, snapshot, gpus=None, counter=13)
    bad = spec_for(fake, command, snapshot, gpus="1; rm -rf /", counter=14)
    for spec in (one, none, bad):
        fake.give_work(spec)
    for spec, want in ((one, ["cuda=1"]), (none, ["cuda=unset"])):
        fin = wait_finished(fake, spec["id"], 20)
        check(fin is not None and fin.get("exit_code") == 0, "G: gpus %r: ran: %r"
              % (spec["gpus"], fin))
        check(stdout_of(fake, spec["id"]) == want, "G: gpus %r: the commands saw %r"
              % (spec["gpus"], stdout_of(fake, spec["id"])))
    fin = wait_finished(fake, bad["id"], 20) or {}
    check(fin.get("exit_code") == -1 and "gpus" in (fin.get("reason") or "")
          and not stdout_of(fake, bad["id"]),
          "G: malformed gpus: not run: %r" % fin)


def run_two_slots(fake, snapshot):
    """With --slots 2, two executions run at the same time."""
    specs = [spec_for(fake, "echo begin; sleep 1.5; echo end", snapshot, counter=c)
             for c in (15, 16)]
    for spec in specs:
        fake.give_work(spec)
    check(fake.wait_for(lambda: any(len(b.get("running", [])) == 2 and b.get("free_slots") == 0
                                    for _, b in fake.polls), 20),
          "H: a poll lists both as running, with no free slot")
    fins = [wait_finished(fake, spec["id"], 20) for spec in specs]
    if None in fins:
        return
    with fake.cond:
        times = {s["id"]: {b["status"]: t for t, b in fake.status[s["id"]]} for s in specs}
    a, b = (times[s["id"]] for s in specs)
    check(a["started"] < b["finished"] and b["started"] < a["finished"],
          "H: the two runs overlap: %r" % times)
    check(all(f.get("exit_code") == 0 for f in fins), "H: both complete: %r" % fins)


def old_cache_entries(work):
    """Cache entries (and a download in progress) last used an hour ago."""
    paths = {"snapshot": os.path.join(work, "snapshots", "0" * 64 + ".tar.gz"),
             "input": os.path.join(work, "inputs-cache", "1" * 64),
             "part": os.path.join(work, "snapshots", "2" * 64 + ".x.part")}
    hour_ago = time.time() - 3600
    for path in paths.values():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"x" * 4096)
        os.utime(path, (hour_ago, hour_ago))
    return paths


def run_slots_agent(args, tmp, snapshot):
    """A second agent with two slots: no_output_timeout, gpus, concurrency;
    and a cache limit of 0 MB: what was used long ago goes, what is in use
    (the snapshot of these runs) stays, and so does a download in progress."""
    fake = FakeFerryd(BOOTSTRAP, poll_timeout=2).start()
    fake.lose_event_answers = set()
    fake.add_blob("/v1/blobs/snap", snapshot)
    work = os.path.join(tmp, "work-slots")
    old = old_cache_entries(work)
    log_path = os.path.join(tmp, "agent-slots.log")
    env = dict(os.environ, FERRY_BOOTSTRAP_TOKEN=BOOTSTRAP, CUDA_VISIBLE_DEVICES="7")
    with open(log_path, "wb") as log:
        agent = subprocess.Popen(
            [args.agent, "--server", fake.url, "--work-dir", work,
             "--slots", "2", "--plugin-dir", args.plugin_dir,
             "--stop-grace-ms", str(GRACE_MS), "--cache-max-mb", "0"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        check(fake.wait_for(lambda: fake.polls, 20), "slots: the agent registers and polls")
        reg = fake.registrations[0] if fake.registrations else {}
        check(reg.get("slots") == 2, "slots: register says 2 slots: %r" % reg.get("slots"))
        check(fake.polls and fake.polls[0][1] == {"running": [], "free_slots": 2},
              "slots: the first poll has two free slots")
        run_no_output(fake, snapshot)
        run_gpus(fake, snapshot)
        run_two_slots(fake, snapshot)
        check(not os.path.exists(old["snapshot"]) and not os.path.exists(old["input"]),
              "cache: entries used an hour ago are removed over the limit")
        check(os.path.exists(old["part"]), "cache: a download in progress is left alone")
        check(os.path.exists(os.path.join(work, "snapshots", sha256(snapshot) + ".tar.gz")),
              "cache: the snapshot in use stays")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        fake.stop()
    check(not fake.unauthorized and not fake.anomalies,
          "slots: protocol: %r %r" % (fake.unauthorized, fake.anomalies))
    if failures:
        with open(log_path, "rb") as f:
            print("--- slots agent log ---\n" + f.read().decode("utf-8", "replace")[-6000:],
                  file=sys.stderr)


def run_refused_and_give_up(args, tmp):
    """A refused bootstrap token and an unreachable ferryd both end the agent
    with a non-zero code and a clear message, without busy looping."""
    fake = FakeFerryd("another-token").start()
    env = dict(os.environ, FERRY_BOOTSTRAP_TOKEN=BOOTSTRAP)
    base = [args.agent, "--work-dir", os.path.join(tmp, "work2"), "--plugin-dir",
            args.plugin_dir]
    try:
        p = subprocess.run(base + ["--server", fake.url], env=env, capture_output=True,
                           timeout=30)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 1, "a refused registration exits 1 (rc %r)" % p.returncode)
        check("registration" in err and "bootstrap token refused" in err,
              "the refusal is explained: %r" % err[-400:])
        check(BOOTSTRAP not in err, "the refused token is not logged")
    finally:
        fake.stop()
    url = fake.url  # nobody listens there any more
    t0 = time.monotonic()
    p = subprocess.run(base + ["--server", url, "--give-up-after", "2"], env=env,
                       capture_output=True, timeout=60)
    took = time.monotonic() - t0
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 1, "an unreachable ferryd makes the agent exit 1 (rc %r)" % p.returncode)
    check(2 <= took < 30, "it gives up after about --give-up-after (%.1f s)" % took)
    check("unreachable for more than 2 s" in err, "the give-up is explained: %r" % err[-400:])
    check(err.count("\n") < 20, "retries back off instead of looping (%d log lines)"
          % err.count("\n"))


# ---- the spool: ferryd away, the agent killed ----

def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def sanitized(pid):
    """Under AddressSanitizer freed memory sits in a quarantine (256 MB):
    the resident size says nothing about what the agent holds."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def start_agent(args, fake, work, log_path, token=BOOTSTRAP, extra=()):
    env = dict(os.environ)
    env.pop("FERRY_BOOTSTRAP_TOKEN", None)
    if token:
        env["FERRY_BOOTSTRAP_TOKEN"] = token
    log = open(log_path, "ab")
    try:
        return subprocess.Popen(
            [args.agent, "--server", fake.url, "--worker-id", "worker-s", "--work-dir", work,
             "--plugin-dir", args.plugin_dir, "--stop-grace-ms", str(GRACE_MS)] + list(extra),
            env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def stop_agent(agent):
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


BURST_LINES = 50000  # of 1000 bytes: 50 MB while ferryd is away


def run_ferryd_away(fake, snapshot, work, agent):
    """ferryd goes away mid-run (connections refused and cut): the commands
    go on, their output goes to the spool on disk (not to memory), and once
    ferryd is back every line arrives once, in order."""
    command = ("i=1; while [ $i -le 3000 ]; do echo \"l $i\"; "
               "case $i in *00) sleep 0.1;; esac; i=$((i+1)); done\n"
               "head -c %d /dev/zero | tr '\\0' y | fold -w 1000\n"
               "echo kept > \"$FERRY_OUTPUTS_DIR/result.txt\"\n" % (BURST_LINES * 1000))
    spec = spec_for(fake, command, snapshot, counter=20)
    eid = spec["id"]
    folder = os.path.join(work, "executions", eid)
    spool = os.path.join(folder, "events.spool")
    fake.give_work(spec)
    check(fake.wait_for(lambda: fake.has_line(eid, "l 1"), 30),
          "away: the first line arrived")
    fake.pause()
    t0 = time.monotonic()
    # The commands end while ferryd is away: their result is saved next to
    # the spool, which holds everything they printed.
    ended = False
    while time.monotonic() - t0 < 60 and not ended:
        ended = os.path.exists(os.path.join(folder, "finished.json"))
        time.sleep(0.1)
    check(ended, "away: the commands ran to their end while ferryd was away")
    check(file_size(spool) > BURST_LINES * 1000,
          "away: the output is in the spool on disk (%d bytes)" % file_size(spool))
    check(agent.poll() is None, "away: the agent keeps going")
    check(not fake.finished(eid), "away: nothing reported while away")
    fake.resume()
    fin = wait_finished(fake, eid, 90)
    if fin is None:
        return
    check(fin.get("exit_code") == 0 and fin.get("reason") is None, "away: complete: %r" % fin)
    events = fake.event_list(eid)
    check([e["seq"] for e in events] == list(range(1, len(events) + 1)),
          "away: seqs consecutive from 1")
    out = stdout_of(fake, eid)
    expected = ["l %d" % i for i in range(1, 3001)] + ["y" * 1000] * BURST_LINES
    check(out == expected, "away: every line once, in order (%d lines of %d; first difference "
          "at %s)" % (len(out), len(expected),
                      next((i for i, (x, y) in enumerate(zip(out, expected)) if x != y),
                           min(len(out), len(expected)))))
    check(fake.uploads.get((eid, "result.txt")) == b"kept\n", "away: the output file uploaded")
    check(fake.wait_for(lambda: not os.path.exists(folder), 10),
          "away: the folder (and its spool) is removed once reported")
    rss = peak_rss_kib(agent.pid)
    if sanitized(agent.pid):
        print("away: peak RSS %s KiB not checked: AddressSanitizer keeps freed memory" % rss)
    else:
        check(rss is not None and rss < 40 * 1024,
              "away: the agent's memory stays bounded (peak %s KiB for 50 MB of output)" % rss)


def run_agent_killed_after_run(args, fake, snapshot, work, log_path):
    """The agent is SIGKILLed after the commands ended, with events ferryd
    did not take: the next start (same work folder, no bootstrap token)
    sends them, the outputs and the saved result."""
    n_polls = len(fake.polls)
    agent = start_agent(args, fake, work, log_path)
    command = ("i=1; while [ $i -le 500 ]; do echo \"k $i\"; i=$((i+1)); done\n"
               "echo out > \"$FERRY_OUTPUTS_DIR/o.txt\"; exit 3\n")
    spec = spec_for(fake, command, snapshot, counter=21)
    eid = spec["id"]
    folder = os.path.join(work, "executions", eid)
    try:
        check(fake.wait_for(lambda: len(fake.polls) > n_polls, 20), "killed: the agent polls")
        fake.refuse_events = True
        fake.give_work(spec)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and not os.path.exists(
                os.path.join(folder, "finished.json")):
            time.sleep(0.05)
        check(os.path.exists(os.path.join(folder, "finished.json")),
              "killed: the commands ended, the result is saved")
    finally:
        agent.kill()
        agent.wait()
    check(os.path.exists(os.path.join(work, "agent.json")), "killed: the agent's token is kept")
    mode = os.stat(os.path.join(work, "agent.json")).st_mode & 0o777
    check(mode == 0o600, "killed: agent.json is readable by its owner only (%o)" % mode)
    check(not fake.finished(eid), "killed: nothing was reported")
    fake.refuse_events = False
    n_reg = len(fake.registrations)
    n_polls = len(fake.polls)
    agent = start_agent(args, fake, work, log_path, token=None)
    try:
        fin = wait_finished(fake, eid, 30)
        check(len(fake.registrations) == n_reg,
              "killed: the restarted agent used its saved token (no registration)")
        with fake.cond:
            first = fake.polls[n_polls][1] if len(fake.polls) > n_polls else {}
        check(eid in first.get("running", []),
              "killed: the first poll after the restart lists the execution: %r" % first)
        if fin is not None:
            check(fin.get("exit_code") == 3 and fin.get("reason") is None,
                  "killed: the saved result is reported: %r" % fin)
            check(stdout_of(fake, eid) == ["k %d" % i for i in range(1, 501)],
                  "killed: every line once, in order")
            events = fake.event_list(eid)
            check([e["seq"] for e in events] == list(range(1, len(events) + 1)),
                  "killed: seqs consecutive")
            check(any("ferry-agent restarted" in e["text"] for e in events
                      if e["stream"] == "status"), "killed: a status event tells of the restart")
            check(fake.uploads.get((eid, "o.txt")) == b"out\n", "killed: the output uploaded")
        check(fake.wait_for(lambda: not os.path.exists(folder), 10),
              "killed: the folder is removed once reported")
        run_agent_killed_mid_run(args, fake, snapshot, work, log_path, agent)
    finally:
        stop_agent(agent)


def run_agent_killed_mid_run(args, fake, snapshot, work, log_path, agent):
    """SIGKILLed while the commands run: the next start reports what was
    printed until then, once and in order, and the end as lost (-1)."""
    spec = spec_for(fake, "i=1; while :; do echo \"t $i\"; i=$((i+1)); sleep 0.01; done",
                    snapshot, counter=22)
    eid = spec["id"]
    fake.give_work(spec)
    check(fake.wait_for(lambda: fake.has_line(eid, "t 5"), 30),
          "mid-run: the commands print")
    fake.refuse_events = True
    spool = os.path.join(work, "executions", eid, "events.spool")
    size = file_size(spool)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10 and file_size(spool) < size + 2000:
        time.sleep(0.05)
    agent.kill()
    agent.wait()
    # As after a crash of the machine: the acknowledgement file is lost (so
    # everything is sent again, and ferryd drops what it has) and the spool
    # ends in half a record.
    os.unlink(os.path.join(work, "executions", eid, "events.acked"))
    with open(spool, "ab") as f:
        f.write(b"FSP1\x40\x00\x00\x00torn")
    dups = fake.duplicate_events
    fake.refuse_events = False
    agent2 = start_agent(args, fake, work, log_path, token=None)
    try:
        fin = wait_finished(fake, eid, 30)
        if fin is None:
            return
        check(fin.get("exit_code") == -1 and
              fin.get("reason") == "ferry-agent restarted before the execution ended",
              "mid-run: reported as ended by the restart: %r" % fin)
        out = stdout_of(fake, eid)
        check(len(out) > 5 and out == ["t %d" % i for i in range(1, len(out) + 1)],
              "mid-run: the lines printed before the kill, once and in order (%d)" % len(out))
        check(fake.duplicate_events > dups,
              "mid-run: without events.acked the agent sent everything again (ferryd dropped "
              "%d events it had)" % (fake.duplicate_events - dups))
        events = fake.event_list(eid)
        check([e["seq"] for e in events] == list(range(1, len(events) + 1)),
              "mid-run: seqs consecutive (the torn record was cut off)")
    finally:
        stop_agent(agent2)


def run_spool_agent(args, tmp, snapshot):
    fake = FakeFerryd(BOOTSTRAP, poll_timeout=2).start()
    fake.lose_event_answers = set()
    fake.add_blob("/v1/blobs/snap", snapshot)
    work = os.path.join(tmp, "work-spool")
    log_path = os.path.join(tmp, "agent-spool.log")
    n_fail = len(failures)
    agent = start_agent(args, fake, work, log_path)
    try:
        check(fake.wait_for(lambda: fake.polls, 20), "spool: the agent registers and polls")
        run_ferryd_away(fake, snapshot, work, agent)
    finally:
        stop_agent(agent)
    try:
        run_agent_killed_after_run(args, fake, snapshot, work, log_path)
    finally:
        fake.stop()
    check(not fake.unauthorized and not fake.anomalies,
          "spool: protocol: %r %r" % (fake.unauthorized, fake.anomalies))
    with open(log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    for secret in (BOOTSTRAP, fake.token):
        check(secret not in log, "spool: the agent's log does not contain %s..." % secret[:6])
    if len(failures) > n_fail:
        print("--- spool agent log ---\n" + log[-6000:], file=sys.stderr)


# ---- one agent per work folder ----

def second_agent(args, fake, work):
    """Another agent started on a folder in use: (rc, stderr, seconds), or
    (None, ...) when it was still running after 10 s."""
    env = dict(os.environ, FERRY_BOOTSTRAP_TOKEN=BOOTSTRAP)
    t0 = time.monotonic()
    try:
        p = subprocess.run([args.agent, "--server", fake.url, "--work-dir", work,
                            "--plugin-dir", args.plugin_dir], env=env, capture_output=True,
                           timeout=10)
        return p.returncode, p.stderr.decode("utf-8", "replace"), time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        return None, (e.stderr or b"").decode("utf-8", "replace"), time.monotonic() - t0


def run_lock_agent(args, tmp, snapshot):
    """Two agents on one work folder would take each other's executions for
    ones left by an earlier run: the second exits at once, naming the folder
    and the holder; the first goes on; the lock goes with its holder (kill -9
    too) and is not inherited by the commands."""
    fake = FakeFerryd(BOOTSTRAP, poll_timeout=2).start()
    fake.lose_event_answers = set()
    fake.add_blob("/v1/blobs/snap", snapshot)
    work = os.path.join(tmp, "work-lock")
    log_path = os.path.join(tmp, "agent-lock.log")
    n_fail = len(failures)
    first = start_agent(args, fake, work, log_path)
    try:
        check(fake.wait_for(lambda: fake.polls, 20), "lock: the first agent registers and polls")
        spec = spec_for(fake, "i=1; while [ $i -le 40 ]; do echo \"w $i\"; sleep 0.05; "
                        "i=$((i+1)); done; for f in /proc/$$/fd/*; do "
                        "echo \"fd $(readlink $f)\"; done", snapshot, counter=30)
        eid = spec["id"]
        fake.give_work(spec)
        check(fake.wait_for(lambda: fake.has_line(eid, "w 1"), 30), "lock: the commands run")
        n_reg = len(fake.registrations)
        # the same folder, spelt differently: the lock is on the folder itself
        rc, err, took = second_agent(args, fake, work + "/./")
        check(rc is not None and rc != 0,
              "lock: a second agent on the folder exits non-zero (rc %r)" % rc)
        check(took < 2, "lock: ... at once (%.1f s)" % took)
        check(os.path.realpath(work) in err and ("pid %d" % first.pid) in err,
              "lock: the message names the folder and the holder's PID %d: %r"
              % (first.pid, err[-400:]))
        check("earlier run" not in err, "lock: the second agent read nothing: %r" % err[-400:])
        check(len(fake.registrations) == n_reg, "lock: the second agent did not register")
        fin = wait_finished(fake, eid, 30)
        check(first.poll() is None, "lock: the first agent keeps going")
        if fin is not None:
            out = stdout_of(fake, eid)
            check(fin.get("exit_code") == 0 and fin.get("reason") is None,
                  "lock: the first agent's execution ends well: %r" % fin)
            check([x for x in out if x.startswith("w ")] == ["w %d" % i for i in range(1, 41)],
                  "lock: every line of the first agent's execution once")
            fds = [x for x in out if x.startswith("fd ")]
            check(fds and not any(x.endswith("/.lock") for x in fds),
                  "lock: the commands list their descriptors, the lock not among them: %r" % fds)
    finally:
        first.kill()  # kill -9: the kernel lets the lock go with the process
        first.wait()
    n_polls = len(fake.polls)
    third = start_agent(args, fake, work, log_path, token=None)
    try:
        check(fake.wait_for(lambda: len(fake.polls) > n_polls, 20),
              "lock: after a kill -9 of the holder a new agent on the folder starts and polls")
        check(third.poll() is None, "lock: ... and keeps running")
    finally:
        stop_agent(third)
    check(third.returncode == 0, "lock: it stops cleanly (rc %r)" % third.returncode)
    fourth = start_agent(args, fake, work, log_path, token=None)
    try:
        check(fake.wait_for(lambda: len(fake.polls) > n_polls + 1, 20) and fourth.poll() is None,
              "lock: after a clean exit a new agent on the folder starts")
    finally:
        stop_agent(fourth)
        fake.stop()
    check(not fake.unauthorized and not fake.anomalies,
          "lock: protocol: %r %r" % (fake.unauthorized, fake.anomalies))
    if len(failures) > n_fail:
        with open(log_path, "rb") as f:
            print("--- lock agent log ---\n" + f.read().decode("utf-8", "replace")[-6000:],
                  file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.plugin_dir, "local-process.so")):
        print("the local-process plugin is not built in %s" % args.plugin_dir, file=sys.stderr)
        return 1

    snapshot = make_snapshot()
    fake = FakeFerryd(BOOTSTRAP, poll_timeout=2).start()
    fake.add_blob("/v1/blobs/snap", snapshot)
    with tempfile.TemporaryDirectory(prefix="ferry-agent-test-") as tmp:
        work = os.path.join(tmp, "work")
        log_path = os.path.join(tmp, "agent.log")
        env = dict(os.environ, FERRY_BOOTSTRAP_TOKEN=BOOTSTRAP)
        with open(log_path, "wb") as log:
            agent = subprocess.Popen(
                [args.agent, "--server", fake.url, "--worker-id", "worker-7",
                 "--work-dir", work, "--runtime", "local-process", "--slots", "1",
                 "--plugin-dir", args.plugin_dir, "--stop-grace-ms", str(GRACE_MS),
                 "--environment", "local"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            check(fake.wait_for(lambda: fake.polls, 20), "the agent registers and polls")
            reg = fake.registrations[0] if fake.registrations else {}
            check(reg.get("bootstrap_token") == BOOTSTRAP, "register carries the bootstrap token")
            check(reg.get("worker_id") == "worker-7" and reg.get("runtime") == "local-process"
                  and reg.get("slots") == 1 and reg.get("hostname"),
                  "register body: %r" % {k: v for k, v in reg.items() if k != "bootstrap_token"})
            check(fake.polls and fake.polls[0][1] == {"running": [], "free_slots": 1},
                  "the first poll: nothing running, one free slot")
            spec = run_a(fake, snapshot, log_path)
            folder = os.path.join(work, "executions", spec["id"])
            check(fake.wait_for(lambda: not os.path.exists(folder), 10),
                  "the execution folder is removed")
            check(os.path.exists(os.path.join(work, "snapshots", sha256(snapshot) + ".tar.gz")),
                  "the snapshot is cached by sha256")
            run_failed_input(fake, snapshot)
            run_time_limit(fake, snapshot)
            run_stop(fake, snapshot)
            run_snapshot_bound(fake)
            run_stop_mid_extract(fake, work)
            run_output_swapped(fake, snapshot, work, tmp)
            # heartbeat: polls keep coming while idle (poll_timeout is 2 s)
            n = len(fake.polls)
            check(fake.wait_for(lambda: len(fake.polls) >= n + 2, 10), "polls go on when idle")
            run_sigterm(fake, snapshot, agent)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            fake.stop()
        check(not fake.unauthorized, "every agent call carried its token: %r" % fake.unauthorized)
        check(not fake.anomalies, "protocol: %r" % fake.anomalies)
        with open(log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        for secret in (BOOTSTRAP, fake.token, "inputsecret", "snapsecret", "uploadsecret"):
            check(secret not in log, "the agent's log does not contain %s..." % secret[:6])
        if failures:
            print("--- agent log ---\n" + log[-6000:], file=sys.stderr)
        run_slots_agent(args, tmp, snapshot)
        run_spool_agent(args, tmp, snapshot)
        run_lock_agent(args, tmp, snapshot)
        run_refused_and_give_up(args, tmp)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
