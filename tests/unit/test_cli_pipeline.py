#!/usr/bin/env python3
"""`ferry pipeline` (issue 20) against a fake ferryd (tests/fakes/
fake_pipelines.py): what `run` sends (the ad-hoc snapshot uploaded first,
parameters as text, tags, title, the reuse flags; --commit: the commit's
step file checked, nothing uploaded), a pipeline not in the step file
refused before anything is sent, a -p without '=', what list and
show print, stop and approve/reject and their paths, a node's log, and the
exit status of --watch for each outcome.

Usage: test_cli_pipeline.py PATH-TO-ferry
"""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fakes"))
import fake_pipelines as fake  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
FAILURES = []

STEPFILE = """\
- step:
    name: train
    image: busybox:1.36
    command:
      - echo training {parameters}
      - mkdir -p /valohai/outputs && echo m > /valohai/outputs/model.bin
    parameters:
      - {name: epochs, type: integer, default: 2}
- step: {name: evaluate, image: "busybox:1.36", command: "ls /valohai/inputs/model"}
- pipeline:
    name: train-eval
    parameters:
      - name: rate
        targets: [train.parameter.epochs]
    nodes:
      - name: train
        type: execution
        step: train
      - name: evaluate
        type: execution
        step: evaluate
    edges:
      - [train.output.model*, evaluate.input.model]
- pipeline:
    name: nightly
    nodes:
      - name: train
        type: execution
        step: train
    edges: []
"""


def fail(msg):
    FAILURES.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def ferry(*args, cwd=None, env_extra=None):
    env = dict(os.environ, FERRY_SERVER=SERVER)
    env.pop("FERRY_TOKEN", None)
    env.pop("FERRY_PROJECT", None)
    env.update(env_extra or {})
    p = subprocess.run([FERRY] + list(args), cwd=cwd or PROJ, env=env, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check(name, got_rc, want_rc, text, *wants):
    if got_rc != want_rc:
        fail("%s: exit status %d, expected %d; output: %s" % (name, got_rc, want_rc, text))
        return
    for w in wants:
        if w not in text:
            fail("%s: output lacks %r: %s" % (name, w, text))


def requests(method=None, prefix=""):
    with fake.LOCK:
        return [r for r in fake.REQUESTS
                if (method is None or r["method"] == method) and r["path"].startswith(prefix)]


def clear_requests():
    with fake.LOCK:
        del fake.REQUESTS[:]


def run_cmd(name, want_rc, *args, wants=(), cwd=None):
    rc, out, err = ferry(*args, cwd=cwd)
    check(name, rc, want_rc, out + err, *wants)
    return rc, out, err


# ---- the setup ----
SERVER = fake.start()
work = tempfile.mkdtemp(prefix="ferry-test-pipeline-")
atexit.register(shutil.rmtree, work, ignore_errors=True)
PROJ = os.path.join(work, "hello")
os.makedirs(PROJ)
with open(os.path.join(PROJ, "valohai.yaml"), "w") as f:
    f.write(STEPFILE)
with open(os.path.join(PROJ, "train.py"), "w") as f:
    f.write("print('hi')\n")

# ---- help and usage ----
run_cmd("pipeline alone: the usage", 2, "pipeline", wants=("run NAME", "approve ID NODE"))
run_cmd("pipeline --help", 0, "pipeline", "--help", wants=("list", "show ID", "logs ID NODE"))
for sub in ("run", "list", "show", "stop", "logs", "approve"):
    run_cmd("pipeline %s --help" % sub, 0, "pipeline", sub, "--help",
            wants=("usage: ferry pipeline " + sub,))
run_cmd("unknown subcommand", 2, "pipeline", "frob", wants=("unknown subcommand 'frob'",))
rc, out, err = ferry("--help")
check("ferry --help lists pipeline", rc, 0, out,
      "pipeline  run and follow pipelines: run, list, show, stop, logs, approve")

# ---- run: refused locally, nothing sent ----
clear_requests()
run_cmd("unknown pipeline refused locally", 2, "pipeline", "run", "nope", "--adhoc",
        wants=("ferry pipeline run: no pipeline 'nope' in valohai.yaml; known pipelines: "
               "train-eval, nightly",))
run_cmd("-p without '='", 2, "pipeline", "run", "train-eval", "--adhoc", "-p", "rate",
        wants=("-p wants NODE.PARAM=VALUE or PARAM=VALUE, not 'rate'",))
run_cmd("no NAME", 2, "pipeline", "run", "--adhoc", wants=("expected a pipeline NAME",))
run_cmd("--commit and --adhoc", 2, "pipeline", "run", "train-eval", "--adhoc", "--commit", "v1",
        wants=("--commit and --adhoc exclude each other",))
if requests():
    fail("local refusals sent requests: %s" % requests())

# ---- run: the body ----
clear_requests()
rc, out, err = run_cmd("run --adhoc", 0, "pipeline", "run", "train-eval", "--adhoc", PROJ,
                       "-p", "train.epochs=5", "-p", "rate=0.5", "--tag", "nightly", "--tag",
                       "try", "--title", "first", "--reuse", "--reuse-from", "pl-uuid-0001",
                       "--project", "hello", cwd=work,
                       wants=("pipeline #3 (pl-uuid-0003) created: train-eval",
                              "NODE      STEP      STATUS   EXECUTION  ATTEMPTS  NOTES",
                              "train     train     pending  -          0"))
posts = requests("POST", "/v1/snapshots")
creates = requests("POST", "/v1/pipelines")
if len(posts) != 1 or len(creates) != 1:
    fail("run: expected one snapshot upload and one create: %s" % requests())
else:
    body = creates[0]["body"]
    sha = next(iter(fake.SNAPSHOTS))
    want = {"project": "hello", "pipeline": "train-eval", "snapshot": sha,
            "parameters": {"train.epochs": "5", "rate": "0.5"}, "tags": ["nightly", "try"],
            "title": "first", "reuse": True, "reuse_from": "pl-uuid-0001"}
    if body != want:
        fail("run body: %s, expected %s" % (json.dumps(body), json.dumps(want)))
    # The snapshot went up before the pipeline was created, and is the folder.
    order = [r["path"] for r in requests() if r["method"] in ("POST", "HEAD")]
    if not order[-1] == "/v1/pipelines" or not any(p.startswith("/v1/snapshots") for p in order):
        fail("run: snapshot not sent before the create: %s" % order)

# Without the options: no reuse flags, no title, an empty tag list.
clear_requests()
run_cmd("run plain", 0, "pipeline", "run", "nightly", "--adhoc")
creates = requests("POST", "/v1/pipelines")
body = creates[0]["body"] if creates else {}
for key in ("reuse", "reuse_from", "title"):
    if key in body:
        fail("run without --%s sends %s: %s" % (key, key, body))
if body.get("tags") != [] or body.get("parameters") != {} or body.get("project") != "hello":
    fail("run plain: tags/parameters/project: %s" % body)
# An unchanged folder is not uploaded again: HEAD says ferryd has it.
if requests("POST", "/v1/snapshots"):
    fail("run plain: the same snapshot was uploaded again")

rc, out, err = run_cmd("run --json", 0, "pipeline", "run", "nightly", "--adhoc", "--json")
try:
    if json.loads(out).get("name") != "nightly":
        fail("run --json: not the pipeline object: %s" % out)
except ValueError:
    fail("run --json: not JSON: %s" % out)

# ---- run --commit: the commit's step file is checked; nothing is uploaded ----
gitproj = os.path.join(work, "gitproj")
os.makedirs(gitproj)
with open(os.path.join(gitproj, "valohai.yaml"), "w") as f:
    f.write(STEPFILE.replace("name: nightly", "name: weekly"))
git = ["git", "-C", gitproj, "-c", "user.name=T", "-c", "user.email=t@x"]
subprocess.run(git[:3] + ["init", "-q"], check=True)
subprocess.run(git + ["add", "-A"], check=True)
subprocess.run(git + ["commit", "-qm", "one"], check=True)
sha = subprocess.run(git[:3] + ["rev-parse", "HEAD"], check=True, capture_output=True,
                     text=True).stdout.strip()
# What is in the folder now is not what runs: the commit's file is checked.
with open(os.path.join(gitproj, "valohai.yaml"), "w") as f:
    f.write(STEPFILE)
clear_requests()
run_cmd("--commit: the commit's step file", 2, "pipeline", "run", "nightly", "--commit",
        sha[:10], "--project", "hello", cwd=gitproj,
        wants=("no pipeline 'nightly' in %s:valohai.yaml; known pipelines: train-eval, weekly"
               % sha[:7],))
run_cmd("--commit", 0, "pipeline", "run", "weekly", "--commit", sha[:10], "--project", "hello",
        cwd=gitproj, wants=("created: weekly",))
creates = requests("POST", "/v1/pipelines")
body = creates[0]["body"] if creates else {}
if body.get("commit") != sha[:10] or "snapshot" in body or requests("POST", "/v1/snapshots"):
    fail("run --commit: the body names the commit, and nothing is uploaded: %s" % requests())

# ---- run --watch: each change a line; the exit status of the outcome ----
for outcome, want_rc in (("complete", 0), ("error", 1), ("stopped", 2)):
    rc, out, err = run_cmd("watch " + outcome, want_rc, "pipeline", "run", "train-eval",
                           "--adhoc", "--watch", "--title", "outcome:" + outcome)
    check("watch %s: the changes" % outcome, rc, want_rc, out,
          "train: started (execution #20)", "train: complete (execution #20)",
          "evaluate: started (execution #21)", "evaluate: %s (execution #21" % outcome)
    check("watch %s: the outcome" % outcome, rc, want_rc, err, "): " + outcome)
    if out.count("train: started (execution #20)") != 1:
        fail("watch %s: a change printed more than once: %s" % (outcome, out))
rc, out, err = ferry("pipeline", "run", "train-eval", "--adhoc", "--watch", "--title",
                     "outcome:error")
check("watch error: the reasons", rc, 1, out + err, "exit code 1", "node evaluate ended in error")

# ---- list ----
clear_requests()
rc, out, err = run_cmd("list", 0, "pipeline", "list")
lines = out.splitlines()
if not lines or lines[0].split() != ["#", "NAME", "PROJECT", "STATUS", "NODES", "CREATED", "ID"]:
    fail("list: heading: %s" % out)
row1 = [l for l in lines if l.startswith("1 ")]
if not row1 or row1[0].split()[:5] != ["1", "train-eval", "hello", "started", "2/3"]:
    fail("list: pipeline #1's row (2 of 3 nodes ended): %s" % out)
rc, out, err = run_cmd("list --project", 0, "pipeline", "list", "--project", "other")
if requests("GET")[-1]["path"] != "/v1/pipelines?project=other":
    fail("list --project: path %s" % requests("GET")[-1]["path"])
if "nightly" not in out or "train-eval" in out:
    fail("list --project other: %s" % out)
rc, out, err = run_cmd("list --json", 0, "pipeline", "list", "--json")
if "pipelines" not in json.loads(out or "{}"):
    fail("list --json: %s" % out)

# ---- show ----
rc, out, err = run_cmd("show by counter", 0, "pipeline", "show", "1", "--project", "hello",
                       wants=("Pipeline #1 (pl-uuid-0001)", "  name       train-eval",
                              "  project    hello", "  status     started", "  ended      -"))
node_lines = {l.split()[0]: l.split() for l in out.splitlines()[1:] if l and not l[0].isspace()}
if node_lines.get("train", [])[:5] != ["train", "train", "complete", "#12", "1"] or \
        "reused" not in node_lines.get("train", []):
    fail("show: train's line: %s" % out)
if node_lines.get("deploy", [])[:5] != ["deploy", "deploy", "approval", "-", "0"] or \
        "approval: waiting" not in out:
    fail("show: deploy's line: %s" % out)
if requests("GET")[-1]["path"] != "/v1/pipelines/1?project=hello":
    fail("show: path %s" % requests("GET")[-1]["path"])
run_cmd("show a counter of another project", 5, "pipeline", "show", "1", "--project", "other",
        wants=("no pipeline '1'",))
run_cmd("show without ID", 2, "pipeline", "show", wants=("expected one pipeline ID",))
run_cmd("stop with two IDs", 2, "pipeline", "stop", "1", "2", wants=("expected one pipeline ID",))
run_cmd("show by uuid", 0, "pipeline", "show", "pl-uuid-0002", wants=("  name       nightly",))
failed = [p for p in fake.PIPELINES if p["status"] == "error"]
if failed:
    run_cmd("show a failed one: its reason", 0, "pipeline", "show", failed[0]["id"],
            wants=("  reason     node evaluate ended in error",))
else:
    fail("no pipeline ended in error to show")
run_cmd("show --json", 0, "pipeline", "show", "pl-uuid-0001", "--json",
        wants=('"edges"',))

# ---- approve, reject ----
clear_requests()
run_cmd("approve", 0, "pipeline", "approve", "1", "deploy", "--project", "hello",
        wants=("Pipeline #1 (pl-uuid-0001): node deploy approved",))
if not requests("POST", "/v1/pipelines/pl-uuid-0001/nodes/deploy/approve"):
    fail("approve: path: %s" % requests("POST"))
run_cmd("approve again: ferryd's 409", 5, "pipeline", "approve", "pl-uuid-0001", "deploy",
        wants=("node 'deploy' waits for no approval",))
with fake.LOCK:
    fake.PIPELINES[0]["nodes"][2].update(status="approval", approval="waiting")
clear_requests()
run_cmd("reject", 0, "pipeline", "approve", "pl-uuid-0001", "deploy", "--reject",
        wants=("node deploy rejected",))
if not requests("POST", "/v1/pipelines/pl-uuid-0001/nodes/deploy/reject"):
    fail("reject: path: %s" % requests("POST"))
run_cmd("approve an unknown node", 2, "pipeline", "approve", "pl-uuid-0001", "ship",
        wants=("has no node 'ship'; its nodes: train, evaluate, deploy",))
run_cmd("approve without NODE", 2, "pipeline", "approve", "pl-uuid-0001",
        wants=("expected a pipeline ID and a NODE",))

# ---- logs ----
rc, out, err = run_cmd("logs of a node", 0, "pipeline", "logs", "pl-uuid-0001", "train")
if out != "epoch 1 loss 0.5\nepoch 2 loss 0.25\n":
    fail("logs: stdout %r" % out)
if "--- started" not in err or "a warning" not in err:
    fail("logs: stderr %r" % err)
got = [r["path"] for r in requests("GET", "/v1/executions/")]
if not got or not got[-1].startswith("/v1/executions/exec-12/logs"):
    fail("logs: not the node's execution: %s" % got)
rc, out, err = run_cmd("logs --tail", 0, "pipeline", "logs", "pl-uuid-0001", "evaluate",
                       "--tail", "2")
if out != "epoch 2 loss 0.25\n" or "exec-13/logs" not in requests("GET")[-1]["path"]:
    fail("logs --tail 2 of evaluate: %r %s" % (out, requests("GET")[-1]["path"]))
rc, out, err = run_cmd("logs -f", 0, "pipeline", "logs", "1", "train", "-f", "--project", "hello")
if out != "epoch 1 loss 0.5\nepoch 2 loss 0.25\n" or \
        "follow=1" not in [r["path"] for r in requests("GET", "/v1/executions/exec-12/logs")][-1]:
    fail("logs -f: %r" % out)
run_cmd("logs of an unknown node", 2, "pipeline", "logs", "pl-uuid-0001", "ship",
        wants=("has no node 'ship'; its nodes: train, evaluate, deploy",))
run_cmd("logs of a node with no execution yet", 1, "pipeline", "logs", "pl-uuid-0001", "deploy",
        wants=("node 'deploy' of pipeline #1 has no execution yet",))
run_cmd("logs: bad --tail", 2, "pipeline", "logs", "1", "train", "--tail", "x",
        wants=("ferry pipeline logs: --tail wants a number",))

# ---- stop ----
clear_requests()
run_cmd("stop", 0, "pipeline", "stop", "1", "--project", "hello",
        wants=("Pipeline #1 (pl-uuid-0001): stopped",))
if not requests("POST", "/v1/pipelines/pl-uuid-0001/stop"):
    fail("stop: path: %s" % requests("POST"))
run_cmd("stop an ended pipeline: ferryd's 409", 5, "pipeline", "stop", "2", "--project", "other",
        wants=("pipeline #2 has ended",))
run_cmd("stop an unknown pipeline", 5, "pipeline", "stop", "pl-nope", wants=("no pipeline",))

# ---- an unreachable ferryd ----
rc, out, err = ferry("pipeline", "list", env_extra={"FERRY_SERVER": "http://127.0.0.1:1"})
check("unreachable", rc, 4, err, "cannot reach ferryd at http://127.0.0.1:1")

if FAILURES:
    print("%d check(s) failed" % len(FAILURES), file=sys.stderr)
    sys.exit(1)
print("all ferry pipeline checks passed")
