"""A fake ferryd for the CLI's `ferry pipeline` (issue 20): the pipeline
endpoints as docs/api.md's contract has them, the snapshot upload, and an
execution's log as ferryd streams it (NDJSON, `after`, `tail`, `follow`).

It keeps every request it got (method, path, JSON body) in REQUESTS, for
the test to read what the CLI sent. Pipelines it creates move on one step
each time they are fetched (created, then started with train running, then
evaluate running, then ended): --watch sees every change. How one ends is
what its title says: "outcome:error" or "outcome:stopped", else complete.

Seeded: pipeline #1 "train-eval" of project hello (train reused and
complete, evaluate complete, deploy waiting for approval) and #2 of project
other, complete.
"""
import hashlib
import json
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_http  # noqa: E402  (the handler's HTTP side, shared with the cloud fakes)

LOCK = threading.Lock()
REQUESTS = []  # {"method", "path", "body"}
SNAPSHOTS = {}  # sha256 -> size
PIPELINES = []  # newest last; listed newest first
EXEC_LOG = [
    {"i": 1, "stream": "status", "time": "2026-12-01T10:00:00.000Z", "text": "started"},
    {"i": 2, "stream": "stdout", "time": "2026-12-01T10:00:01.000Z", "text": "epoch 1 loss 0.5"},
    {"i": 3, "stream": "stderr", "time": "2026-12-01T10:00:02.000Z", "text": "a warning"},
    {"i": 4, "stream": "stdout", "time": "2026-12-01T10:00:03.000Z", "text": "epoch 2 loss 0.25"},
    {"i": 5, "stream": "status", "time": "2026-12-01T10:00:04.000Z", "text": "complete"},
]


def execution(counter, status):
    return {"id": "exec-%d" % counter, "counter": counter, "status": status}


def node(name, step, status="pending", exec_=None, attempts=0, reused=False, approval=None,
         reason=None):
    return {"name": name, "type": "execution", "step": step, "status": status,
            "execution": exec_, "attempts": attempts, "reused": reused, "approval": approval,
            "reason": reason}


def pipeline(counter, project, name, status, nodes, **more):
    pl = {"id": "pl-uuid-%04d" % counter, "counter": counter, "project": project, "name": name,
          "owner": "alice", "status": status, "reason": None, "snapshot": "ab" * 32,
          "commit": None, "title": None, "tags": [], "reuse": False, "reuse_from": None,
          "parameters": {}, "created_at": "2026-12-01T10:00:00.000Z",
          "started_at": None, "ended_at": None, "nodes": nodes,
          "edges": [{"source": "train.output.model*", "target": "evaluate.input.model"}]}
    pl.update(more)
    return pl


def reset():
    with LOCK:
        del REQUESTS[:]
        SNAPSHOTS.clear()
        del PIPELINES[:]
        PIPELINES.append(pipeline(1, "hello", "train-eval", "started", [
            node("train", "train", "complete", execution(12, "complete"), 1, reused=True),
            node("evaluate", "evaluate", "complete", execution(13, "complete"), 2),
            node("deploy", "deploy", "approval", None, 0, approval="waiting"),
        ], started_at="2026-12-01T10:00:05.000Z"))
        PIPELINES.append(pipeline(2, "other", "nightly", "complete", [
            node("train", "train", "complete", execution(14, "complete"), 1),
        ], started_at="2026-12-01T11:00:00.000Z", ended_at="2026-12-01T11:05:00.000Z"))


def advance(pl):
    """One step on for a pipeline the fake created (_phase set)."""
    phase = pl.get("_phase")
    if phase is None or phase >= 3:
        return
    pl["_phase"] = phase = phase + 1
    train, evaluate = pl["nodes"]
    if phase == 1:
        pl["status"] = "started"
        train.update(status="started", execution=execution(20, "started"), attempts=1)
    elif phase == 2:
        train.update(status="complete", execution=execution(20, "complete"))
        evaluate.update(status="started", execution=execution(21, "started"), attempts=1)
    else:
        outcome = pl.pop("_outcome")
        evaluate.update(status=outcome, execution=execution(21, outcome))
        pl["status"] = outcome
        pl["ended_at"] = "2026-12-01T12:00:00.000Z"
        if outcome == "error":
            evaluate["reason"] = "exit code 1"
            pl["reason"] = "node evaluate ended in error"


def public(pl):
    return {k: v for k, v in pl.items() if not k.startswith("_")}


def find(ident, project):
    for pl in PIPELINES:
        if pl["id"] == ident:
            return pl
    if ident.isdigit():
        for pl in PIPELINES:
            if pl["counter"] == int(ident) and (project is None or pl["project"] == project):
                return pl
    return None


class Handler(fake_http.Handler):
    def answer(self, code, obj, ctype="application/json"):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send(code, data, ctype, head=self.command == "HEAD")

    def route(self):
        raw = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        body = None
        if self.headers.get("Content-Type", "").startswith("application/json") and raw:
            body = json.loads(raw)
        with LOCK:
            REQUESTS.append({"method": self.command, "path": self.path, "body": body})
            return self.dispatch(parts, query, raw, body)

    def dispatch(self, parts, query, raw, body):
        if parts[:2] == ["v1", "snapshots"]:
            if self.command == "HEAD":
                return self.answer(200 if parts[2] in SNAPSHOTS else 404, {})
            sha = hashlib.sha256(raw).hexdigest()
            SNAPSHOTS[sha] = len(raw)
            return self.answer(201, {"snapshot": sha})
        if parts[:2] == ["v1", "projects"]:
            return self.answer(200, {"projects": []})
        if parts[:2] == ["v1", "executions"]:
            return self.executions(parts[2:], query)
        if parts[:2] != ["v1", "pipelines"]:
            return self.answer(404, {"error": "no such path"})
        rest = parts[2:]
        if not rest and self.command == "POST":
            return self.create(body)
        if not rest:
            listed = [public(p) for p in reversed(PIPELINES)
                      if query.get("project") in (None, p["project"])]
            return self.answer(200, {"pipelines": listed})
        pl = find(rest[0], query.get("project"))
        if pl is None:
            return self.answer(404, {"error": "no pipeline '%s'" % rest[0]})
        if len(rest) == 1 and self.command == "GET":
            advance(pl)
            return self.answer(200, public(pl))
        if rest[1:] == ["stop"] and self.command == "POST":
            if pl["status"] in ("complete", "error", "stopped"):
                return self.answer(409, {"error": "pipeline #%d has ended" % pl["counter"]})
            pl["status"] = "stopped"
            for nd in pl["nodes"]:
                if nd["status"] not in ("complete", "error", "stopped", "skipped"):
                    nd["status"] = "stopped"
            return self.answer(200, public(pl))
        if len(rest) == 4 and rest[1] == "nodes" and rest[3] in ("approve", "reject"):
            nd = next((x for x in pl["nodes"] if x["name"] == rest[2]), None)
            if nd is None:
                return self.answer(404, {"error": "no node '%s'" % rest[2], "field": "node"})
            if nd["approval"] != "waiting":
                return self.answer(409, {"error": "node '%s' waits for no approval" % rest[2]})
            nd["approval"] = "approved" if rest[3] == "approve" else "rejected"
            nd["status"] = "created" if rest[3] == "approve" else "skipped"
            return self.answer(200, public(pl))
        return self.answer(404, {"error": "no such path"})

    def create(self, body):
        for key in ("project", "pipeline"):
            if not isinstance(body.get(key), str):
                return self.answer(400, {"error": "'%s' is required" % key, "field": key})
        if "snapshot" in body and body["snapshot"] not in SNAPSHOTS:
            return self.answer(400, {"error": "no snapshot %s" % body["snapshot"],
                                     "field": "snapshot"})
        counter = max(p["counter"] for p in PIPELINES) + 1
        title = body.get("title") or ""
        outcome = title[len("outcome:"):] if title.startswith("outcome:") else "complete"
        pl = pipeline(counter, body["project"], body["pipeline"], "created",
                      [node("train", "train"), node("evaluate", "evaluate")],
                      title=body.get("title"), tags=body.get("tags", []),
                      parameters=body.get("parameters", {}), reuse=bool(body.get("reuse")),
                      reuse_from=body.get("reuse_from"), snapshot=body.get("snapshot"),
                      _phase=0, _outcome=outcome)
        PIPELINES.append(pl)
        return self.answer(201, public(pl))

    def executions(self, rest, query):
        if len(rest) == 1:
            return self.answer(200, {"id": rest[0], "counter": 12, "status": "complete"})
        if rest[1:] != ["logs"]:
            return self.answer(404, {"error": "no such path"})
        events = [e for e in EXEC_LOG if e["i"] > int(query.get("after", "0"))]
        if "tail" in query:
            events = events[-int(query["tail"]):] if int(query["tail"]) else []
        data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
        return self.answer(200, data, "application/x-ndjson")

    do_GET = do_POST = do_HEAD = do_PUT = route


def start():
    """Serve in a thread; returns the base URL."""
    reset()
    srv = fake_http.listen(Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return "http://127.0.0.1:%d" % srv.server_address[1]
