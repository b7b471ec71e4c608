#!/usr/bin/env python3
"""A fake Compute Engine (v1 REST, JSON) and OAuth2 token endpoint for the
gcp compute plugin's tests.

Token endpoint (POST /token): the service-account JWT bearer grant. The
assertion's RS256 signature is CHECKED with the public key of the test's
service account (openssl), and its claims: iss = --client-email, a compute
scope, aud = this endpoint's URL (the key file's token_uri), iat within five
minutes of now, exp - iat at most an hour. A bad one is 400 invalid_grant.
Tokens live --token-ttl seconds (short, so clients must refresh).

Compute (/compute/v1/projects/P/zones/Z/...): instances.insert (answers a
zone Operation, DONE after --op-delay), zoneOperations.get, instances.get,
instances.list (filter labels.K="V", maxResults, pageToken),
instances.delete. Every call must carry a live bearer token: a missing,
unknown or expired one is 401 UNAUTHENTICATED. Shapes follow
tests/vectors/gcp (libcloud's fixtures, Google's error envelopes).

With --boot, a RUNNING instance (--boot-delay after its insert's operation
is DONE) "boots": its startup-script runs as a new
host in a network namespace of its own (fake_cloud.py and netns_host.py,
shared with fake_ec2.py). Stopping or deleting it kills everything in the
namespace.

  fake_gce.py --public-key PEM --client-email EMAIL [--project P]
              [--boot --net 10.X.Y --prefix NAME --dir DIR]
              prints "PORT=<n>" once it listens

Control (paths starting with /__, no token; fake_http.py and fake_cloud.py
answer the ones every fake or both compute fakes have):
  GET  /__state   {"instances": [{id, name, zone, status, labels, daemon,
                    worker, machine_type, image, disk_gb, network, spot,
                    termination_action, accelerators, on_host_maintenance,
                    service_account, startup_sha256, netns}],
                   "requests": [{method, kind, zone, status, reason,
                    token_ok, page_token, filter, name}],
                   "tokens": N, "issued": [token], "assertions": [{ok, why,
                    claims}]}
  GET  /__startup?id=ZONE/NAME   the instance's startup-script
  PUT  /__faults  body: JSON list of rules (replaces them)
  POST /__kill?id=ZONE/NAME&how=spot|stop|delete   the instance ends by
                  itself (spot: preempted, then its termination action)
  POST /__orphan?zone=Z&daemon=D&worker=W   a running instance nobody made
  POST /__revoke  every token issued so far stops working (401)
  POST /__reset   forget instances (killing them), requests, rules

A rule: {"kind": "insert"|"operation"|"get"|"list"|"delete"|"token",
         "zone": "us-central1-a", "status": 429, "reason":
         "rateLimitExceeded", "op_error": "ZONE_RESOURCE_POOL_EXHAUSTED",
         "delay": 3, "times": 2}
kind/zone match when equal (absent: any); times -1 is forever. "status"
answers that HTTP error with a Google envelope (reason, default by status);
"op_error" lets an insert be accepted and its operation end DONE with that
error (no instance made); "delay" sleeps first.
"""
import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_cloud  # noqa: E402  (instances as hosts, shared with fake_ec2.py)
import fake_http  # noqa: E402  (the server, rules, control calls: shared with fake_ec2.py, fake_s3.py)

ARGS = None
LOCK = threading.RLock()
STATE = {"instances": {}, "order": [], "ops": {}, "requests": [], "rules": [],
         "tokens": {}, "assertions": [], "next_slot": 1, "next_op": 1}
REASONS = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound",
           409: "alreadyExists", 429: "rateLimitExceeded", 500: "backendError",
           503: "backendError"}
STATUS_TEXT = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               429: "RESOURCE_EXHAUSTED", 409: "ALREADY_EXISTS", 400: "INVALID_ARGUMENT"}


def log(msg):
    sys.stderr.write("fake_gce: %s\n" % msg)
    sys.stderr.flush()


def now():
    return time.time()


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class ApiError(Exception):
    def __init__(self, status, reason=None, message=None):
        super().__init__(message or "")
        self.status = status
        self.reason = reason or REASONS.get(status, "invalid")
        self.message = message or self.reason


def envelope(status, reason, message):
    return json.dumps({"error": {"code": status, "message": message,
                                 "errors": [{"domain": "global", "reason": reason,
                                             "message": message}],
                                 "status": STATUS_TEXT.get(status, "UNKNOWN")}}).encode()


# ---------------------------------------------------------------- OAuth2

def verify_assertion(jwt, token_url):
    """None when the assertion is good, else why not."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return "not a compact JWS"
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception:
        return "undecodable"
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    with tempfile.NamedTemporaryFile(dir=ARGS.dir, delete=False) as f:
        f.write(sig)
        sig_path = f.name
    try:
        rc = subprocess.run(["openssl", "dgst", "-sha256", "-verify", ARGS.public_key,
                             "-signature", sig_path], input=(parts[0] + "." + parts[1]).encode(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    finally:
        os.unlink(sig_path)
    if rc != 0:
        return "bad signature"
    t = now()
    if claims.get("iss") != ARGS.client_email:
        return "iss is not the service account"
    if "https://www.googleapis.com/auth/compute" not in str(claims.get("scope", "")).split() and \
            "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split():
        return "no compute scope"
    if claims.get("aud") != token_url:
        return "aud is not the token URI"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "no iat/exp"
    if abs(iat - t) > 300 or exp - iat > 3600 or exp <= t:
        return "Token must be a short-lived token (60 minutes) and in a reasonable timeframe"
    return None


def token_ok(headers):
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return False
    with LOCK:
        exp = STATE["tokens"].get(auth[7:])
    return exp is not None and exp > now()


# ---------------------------------------------------------------- instances

def iid(zone, name):
    return "%s/%s" % (zone, name)


FLEET = fake_cloud.Fleet(STATE, LOCK, log, state_key="status", up="RUNNING",
                         down=("STOPPING", "TERMINATED", "SUSPENDED"),
                         name_key="name", script_key="startup", script_name="startup-script")


def remove(key):
    with LOCK:
        inst = STATE["instances"].pop(key, None)
        if inst is None:
            return
        FLEET.unboot(inst)
        STATE["order"].remove(key)
        inst["status"] = "DELETED"
        STATE.setdefault("deleted", []).append(inst)


def new_op(zone, kind, target, error=None):
    with LOCK:
        n = STATE["next_op"]
        STATE["next_op"] += 1
        op = {"kind": "compute#operation", "id": str(1000 + n), "name": "operation-%d-%s" % (n, secrets.token_hex(4)),
              "zone": "%s/projects/%s/zones/%s" % (ARGS.base, ARGS.project, zone),
              "operationType": kind, "targetLink": "%s/projects/%s/zones/%s/instances/%s" % (
                  ARGS.base, ARGS.project, zone, target),
              "status": "PENDING", "progress": 0,
              "selfLink": "", "insertTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        op["selfLink"] = "%s/projects/%s/zones/%s/operations/%s" % (ARGS.base, ARGS.project, zone, op["name"])
        STATE["ops"][(zone, op["name"])] = op
        result = dict(op)

    def finish():
        with LOCK:
            op["status"], op["progress"] = "DONE", 100
            if error:
                op["error"] = {"errors": [{"code": error, "message": {
                    "ZONE_RESOURCE_POOL_EXHAUSTED": "The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  Try a different zone, or try again later." % (ARGS.project, zone),
                    "QUOTA_EXCEEDED": "Quota 'GPUS_ALL_REGIONS' exceeded.  Limit: 0.0 globally."}.get(error, error)}]}
                op["httpErrorStatusCode"], op["httpErrorMessage"] = 503, "SERVICE UNAVAILABLE"
    fake_cloud.later(ARGS.op_delay, finish)
    return result


def instance_json(inst):
    zone_url = "%s/projects/%s/zones/%s" % (ARGS.base, ARGS.project, inst["zone"])
    out = {"kind": "compute#instance", "id": inst["numeric_id"], "name": inst["name"],
           "zone": zone_url, "status": inst["status"],
           "machineType": "%s/machineTypes/%s" % (zone_url, inst["machine_type"]),
           "labels": inst["labels"], "scheduling": inst["scheduling"],
           "selfLink": "%s/instances/%s" % (zone_url, inst["name"]),
           "metadata": {"kind": "compute#metadata", "fingerprint": "42WmSpB8rSM=",
                        "items": [{"key": "startup-script", "value": inst["startup"].decode()}]},
           "networkInterfaces": [{"network": inst["network"], "networkIP": "10.240.0.%d" % inst["slot"]}]}
    if inst.get("status_message"):
        out["statusMessage"] = inst["status_message"]
    return out


def insert(zone, body, rule):
    try:
        b = json.loads(body)
    except Exception:
        raise ApiError(400, "parseError", "Invalid JSON payload received.")
    name = b.get("name", "")
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
        raise ApiError(400, "invalid", "Invalid value for field 'resource.name': '%s'." % name)
    mt = b.get("machineType", "")
    if not mt.startswith("zones/%s/machineTypes/" % zone):
        raise ApiError(400, "invalid", "Invalid value for field 'resource.machineType': '%s'." % mt)
    disks = b.get("disks") or []
    if len(disks) != 1 or not disks[0].get("boot") or not disks[0].get("initializeParams", {}).get("sourceImage"):
        raise ApiError(400, "invalid", "a boot disk from an image is required")
    items = {i.get("key"): i.get("value") for i in (b.get("metadata") or {}).get("items", [])}
    labels = b.get("labels") or {}
    for k, v in labels.items():
        if not re.fullmatch(r"[a-z][-_a-z0-9]{0,62}", k) or not re.fullmatch(r"[-_a-z0-9]{0,63}", v):
            raise ApiError(400, "invalid", "Invalid value for field 'resource.labels': '%s'." % k)
    sched = b.get("scheduling") or {}
    accs = b.get("guestAccelerators") or []
    if accs and sched.get("onHostMaintenance") != "TERMINATE":
        raise ApiError(400, "invalid", "Instances with guest accelerators do not support live migration.")
    if sched.get("provisioningModel") == "SPOT" and sched.get("instanceTerminationAction") not in ("STOP", "DELETE"):
        raise ApiError(400, "invalid", "Spot VMs need instanceTerminationAction")
    key = iid(zone, name)
    with LOCK:
        if key in STATE["instances"]:
            raise ApiError(409, "alreadyExists",
                           "The resource 'projects/%s/zones/%s/instances/%s' already exists" % (ARGS.project, zone, name))
        if rule and rule.get("op_error"):
            return new_op(zone, "insert", name, rule["op_error"]), None
        slot = FLEET.new_slot()
        inst = {"slot": slot, "name": name, "zone": zone, "numeric_id": str(4006034190819017000 + slot),
                "status": "PROVISIONING", "labels": labels, "machine_type": mt.rsplit("/", 1)[1],
                "image": disks[0]["initializeParams"]["sourceImage"],
                "disk_gb": disks[0]["initializeParams"].get("diskSizeGb"),
                "network": ((b.get("networkInterfaces") or [{}])[0]).get("network", ""),
                "scheduling": sched, "accelerators": accs,
                "service_account": ((b.get("serviceAccounts") or [{}])[0]).get("email", ""),
                "startup": (items.get("startup-script") or "").encode(), "netns": None, "pid": None}
        STATE["instances"][key] = inst
        STATE["order"].append(key)
    # As on GCE, the insert's operation is done once the VM is made; it
    # boots (its startup-script runs) a little later.
    fake_cloud.later(ARGS.op_delay, FLEET.set_state, key, "STAGING", ("PROVISIONING",))
    fake_cloud.later(ARGS.op_delay + ARGS.boot_delay, FLEET.set_state, key, "RUNNING", ("PROVISIONING", "STAGING"))
    return new_op(zone, "insert", name), inst


def list_instances(zone, q):
    flt = q.get("filter", "")
    m = re.fullmatch(r'\s*labels\.([-_a-z0-9]+)\s*=\s*"?([-_a-z0-9]*)"?\s*', flt) if flt else None
    if flt and not m:
        raise ApiError(400, "invalid", "Invalid list filter expression '%s'." % flt)
    page = int(q.get("maxResults", "500"))
    if not 1 <= page <= 500:
        raise ApiError(400, "invalid", "Invalid value for field 'maxResults'")
    with LOCK:
        found = [STATE["instances"][k] for k in STATE["order"] if STATE["instances"][k]["zone"] == zone]
        if m:
            found = [i for i in found if i["labels"].get(m.group(1)) == m.group(2)]
        start = 0
        if q.get("pageToken"):
            try:
                start = int(b64url_decode(q["pageToken"]).decode().split(":")[1])
            except Exception:
                raise ApiError(400, "invalid", "Invalid value for field 'pageToken'")
        out = {"kind": "compute#instanceList", "id": "projects/%s/zones/%s/instances" % (ARGS.project, zone),
               "selfLink": "%s/projects/%s/zones/%s/instances" % (ARGS.base, ARGS.project, zone),
               "items": [instance_json(i) for i in found[start:start + page]]}
        if start + page < len(found):
            out["nextPageToken"] = base64.urlsafe_b64encode(("p:%d" % (start + page)).encode()).decode().rstrip("=")
    return out


def kill(inst, how):
    """POST /__kill: the instance ends by itself, when it is up."""
    if inst["status"] not in ("PROVISIONING", "STAGING", "RUNNING"):
        return False
    key = iid(inst["zone"], inst["name"])
    if how == "delete":
        remove(key)
        return True
    if how == "spot":
        inst["status_message"] = "Instance was preempted."
        action = inst["scheduling"].get("instanceTerminationAction", "STOP")
    else:
        inst["status_message"] = "Instance was stopped."
        action = "STOP"
    FLEET.set_state(key, "STOPPING")
    if action == "DELETE":
        fake_cloud.later(ARGS.end_delay, remove, key)
    else:
        fake_cloud.later(ARGS.end_delay, FLEET.set_state, key, "TERMINATED")
    return True


# ---------------------------------------------------------------- HTTP

PATH_RE = re.compile(r"^/compute/v1/projects/([^/]+)/zones/([^/]+)/(instances|operations)(?:/([^/]+))?$")


class Handler(fake_cloud.Handler):
    STATE, LOCK, FLEET = STATE, LOCK, FLEET  # this module's, for the shared handlers
    CTYPE = CONTROL_CTYPE = "application/json; charset=UTF-8"
    CONTROL = {"/__state": (None, "control_state"), "/__startup": (None, "control_script"),
               "/__kill": ("POST", "control_kill"), "/__orphan": ("POST", "control_orphan"),
               "/__revoke": ("POST", "control_revoke")}

    def error(self, rec, status, reason, message):
        self.answer(rec, status, envelope(status, reason, message), reason=reason)

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path.startswith("/__"):
            return self.control(url.path, url.query, body)
        if url.path == "/token" and self.command == "POST":
            return self.token(body)
        m = PATH_RE.match(url.path)
        if not m:
            return self.send(404, envelope(404, "notFound", "no such method"))
        project, zone, coll, name = m.groups()
        kind = {("instances", "POST", False): "insert", ("instances", "GET", False): "list",
                ("instances", "GET", True): "get", ("instances", "DELETE", True): "delete",
                ("operations", "GET", True): "operation"}.get((coll, self.command, name is not None))
        rec = {"method": self.command, "kind": kind or "?", "zone": zone, "name": name or "",
               "token_ok": token_ok(self.headers), "page_token": q.get("pageToken", ""),
               "filter": q.get("filter", ""), "time": now()}
        if not rec["token_ok"]:
            return self.error(rec, 401, "authError",
                              "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                              "login cookie or other valid authentication credential.")
        if kind is None:
            return self.error(rec, 400, "invalid", "unsupported method")
        if project != ARGS.project:
            return self.error(rec, 403, "forbidden",
                              "Required 'compute.instances.%s' permission for 'projects/%s'" % (kind, project))
        rule = self.take_rule(kind=kind, zone=zone)
        if rule and rule.get("delay"):
            time.sleep(rule["delay"])
        if rule and rule.get("status"):
            st = rule["status"]
            return self.error(rec, st, rule.get("reason") or REASONS.get(st, "backendError"),
                              rule.get("message") or "injected fault")
        try:
            if kind == "insert":
                op, inst = insert(zone, body, rule)
                rec["name"] = inst["name"] if inst else ""
                out = op
            elif kind == "operation":
                with LOCK:
                    op = STATE["ops"].get((zone, name))
                    if op is None:
                        raise ApiError(404, "notFound", "The resource 'operations/%s' was not found" % name)
                    out = dict(op)
            elif kind == "get":
                with LOCK:
                    inst = STATE["instances"].get(iid(zone, name))
                    if inst is None:
                        raise ApiError(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found" % (project, zone, name))
                    out = instance_json(inst)
            elif kind == "list":
                out = list_instances(zone, q)
            else:  # delete
                with LOCK:
                    inst = STATE["instances"].get(iid(zone, name))
                    if inst is None:
                        raise ApiError(404, "notFound", "The resource 'projects/%s/zones/%s/instances/%s' was not found" % (project, zone, name))
                    if inst["status"] not in ("STOPPING",):
                        FLEET.set_state(iid(zone, name), "STOPPING")
                        fake_cloud.later(ARGS.end_delay, remove, iid(zone, name))
                out = new_op(zone, "delete", name)
        except ApiError as e:
            return self.error(rec, e.status, e.reason, e.message)
        self.answer(rec, 200, json.dumps(out).encode(), reason="")

    do_GET = do_POST = do_PUT = do_DELETE = handle_any

    def token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        rec = {"method": "POST", "kind": "token", "zone": "", "name": "", "token_ok": True,
               "page_token": "", "filter": "", "time": now()}
        rule = self.take_rule(kind="token", zone="")
        if rule and rule.get("delay"):
            time.sleep(rule["delay"])
        if rule and rule.get("status"):
            return self.answer(rec, rule["status"], json.dumps({"error": rule.get("reason", "internal_failure")}).encode(),
                               reason="fault")
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.answer(rec, 400, b'{"error":"unsupported_grant_type"}', reason="unsupported_grant_type")
        why = verify_assertion(form.get("assertion", ""), ARGS.base_root + "/token")
        try:
            claims = json.loads(b64url_decode(form.get("assertion", "..").split(".")[1]))
        except Exception:
            claims = {}
        with LOCK:
            STATE["assertions"].append({"ok": why is None, "why": why or "", "claims": claims})
        if why:
            return self.answer(rec, 400, json.dumps({"error": "invalid_grant",
                                                     "error_description": "Invalid JWT: " + why}).encode(),
                               reason="invalid_grant")
        tok = "ya29.fake-" + secrets.token_urlsafe(24)
        with LOCK:
            STATE["tokens"][tok] = now() + ARGS.token_ttl
        self.answer(rec, 200, json.dumps({"access_token": tok, "expires_in": int(ARGS.token_ttl),
                                          "token_type": "Bearer"}).encode(), reason="")

    end_instance = staticmethod(kill)  # POST /__kill

    def control_state(self, q, body):
        with LOCK:
            out = {"instances": [summary(STATE["instances"][k]) for k in STATE["order"]] +
                   [summary(i) for i in STATE.get("deleted", [])],
                   "requests": STATE["requests"], "tokens": len(STATE["tokens"]),
                   "assertions": STATE["assertions"], "issued": list(STATE["tokens"])}
        self.send_json(out)

    def find_instance(self, key):
        """An instance made, or one deleted since (its startup-script is
        still asked for)."""
        with LOCK:
            inst = STATE["instances"].get(key)
            if inst is None:
                inst = next((i for i in STATE.get("deleted", []) if iid(i["zone"], i["name"]) == key), None)
            return inst

    def control_orphan(self, q, body):
        zone = q.get("zone", "us-central1-a")
        name = "orphan-" + secrets.token_hex(4)
        b = {"name": name, "machineType": "zones/%s/machineTypes/e2-micro" % zone,
             "disks": [{"boot": True, "initializeParams": {"sourceImage": "x"}}],
             "labels": {"ferry-daemon": q.get("daemon", ""), "ferry-worker": q.get("worker", "")}}
        insert(zone, json.dumps(b).encode(), None)
        self.send_json({"id": iid(zone, name)})

    def control_revoke(self, q, body):
        with LOCK:
            STATE["tokens"] = {}
        self.control_done()

    def reset_state(self):
        FLEET.reset(ops={}, deleted=[], assertions=[])


def summary(inst):
    sched = inst["scheduling"]
    return {"id": iid(inst["zone"], inst["name"]), "name": inst["name"], "zone": inst["zone"],
            "status": inst["status"], "labels": inst["labels"],
            "daemon": inst["labels"].get("ferry-daemon", ""), "worker": inst["labels"].get("ferry-worker", ""),
            "machine_type": inst["machine_type"], "image": inst["image"], "disk_gb": inst["disk_gb"],
            "network": inst["network"], "spot": sched.get("provisioningModel") == "SPOT",
            "termination_action": sched.get("instanceTerminationAction", ""),
            "on_host_maintenance": sched.get("onHostMaintenance", ""),
            "accelerators": inst["accelerators"], "service_account": inst["service_account"],
            "startup_sha256": hashlib.sha256(inst["startup"]).hexdigest(), "netns": inst["netns"]}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--public-key", required=True, help="PEM public key of the service account")
    ap.add_argument("--client-email", required=True)
    ap.add_argument("--project", default="ferry-test")
    ap.add_argument("--token-ttl", type=float, default=3600)
    fake_cloud.add_host_arguments(ap, "10.251.0", "fgc", "/tmp/fake-gce", "startup-script")
    ap.add_argument("--op-delay", type=float, default=0.3)
    ap.add_argument("--boot-delay", type=float, default=1.0, help="from the operation's end to RUNNING")
    ARGS = FLEET.args = ap.parse_args()
    srv = fake_http.listen(Handler)
    ARGS.base_root = "http://127.0.0.1:%d" % srv.server_address[1]
    ARGS.base = ARGS.base_root + "/compute/v1"
    FLEET.serve(srv, ap.get_default("dir"))


if __name__ == "__main__":
    main()
