#!/usr/bin/env python3
"""A fake EC2 endpoint (Query API 2016-11-15) for the aws compute plugin's tests.

It speaks the Query protocol over HTTP on 127.0.0.1: POST form bodies (or a
GET query), answers shaped like tests/vectors/ec2 (RunInstances,
DescribeInstances with tag filters and NextToken paging, TerminateInstances)
and EC2's error documents. It CHECKS the SigV4 signature of every request
(the canonical request is rebuilt with tests/vectors/sigv4/verify_sigv4.py,
the reference signer that reproduces AWS's published vectors): an unknown
key is 401 AuthFailure, a wrong signature 403 SignatureDoesNotMatch, a date
more than 15 minutes off 400 RequestExpired.

With --boot, each instance "boots": its user-data runs as a new host, in a
network namespace of its own joined to the root namespace by a veth pair
(10.<net>.(4k+1) root side, .(4k+2) its side, default route to the root
side), with an empty environment, as cloud-init would run it (fake_cloud.py
and netns_host.py, shared with fake_gce.py). Terminating an instance kills
everything in its namespace and deletes it.

  fake_ec2.py --access-key ID --secret-key KEY [--boot --net 10.X.Y
              --prefix NAME --dir DIR]       prints "PORT=<n>" once it listens

Control (paths starting with /__, never signed; fake_http.py and
fake_cloud.py answer the ones every fake or both compute fakes have):
  GET  /__state    {"instances": [{id, state, zone, type, tags, worker, daemon,
                     client_token, spot, disk_gb, user_data_sha256, netns,
                     reason_code}], "requests": [{action, zone, status, code,
                     key_id, signed, client_token, user_data_sha256, ids,
                     next_token, instance}]}
  GET  /__userdata?id=ID   the instance's user-data, as it was given
  PUT  /__faults   body: JSON list of rules (replaces them)
  POST /__kill?id=ID&how=spot|user|stop   the instance dies on its own
  POST /__orphan?worker=W&daemon=D   a running instance nobody launched
  POST /__reset    forget instances (killing them), requests, rules

A rule: {"action": "RunInstances", "zone": "us-east-1a", "status": 500,
         "code": "InsufficientInstanceCapacity", "message": "...",
         "delay": 3, "after": "answer", "times": 2}
action/zone match when equal (absent: any); times -1 is forever. "delay"
sleeps before answering; with "after": "answer" the request is carried out
first and its answer is lost in the delay (a client that timed out retries).
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vectors", "sigv4"))
sys.path.insert(0, HERE)
import verify_sigv4 as sigv4  # noqa: E402  (the reference signer)
import fake_cloud  # noqa: E402  (instances as hosts, shared with fake_gce.py)
import fake_http  # noqa: E402  (the server, rules, control calls: shared with fake_gce.py, fake_s3.py)

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
               "stopping": 64, "stopped": 80}
DEATHS = {
    "spot": ("Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination", "terminated"),
    "user": ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown", "terminated"),
    "stop": ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown", "stopped"),
}

ARGS = None
LOCK = threading.RLock()
STATE = {"instances": {}, "order": [], "requests": [], "rules": [], "next_slot": 1}


def log(msg):
    print("fake_ec2: %s" % msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- signatures

def check_signature(method, path, query, headers, body):
    """(key_id, None) when the request is signed with our key, else
    (key_id, (status, code, message))."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "", (401, "MissingAuthenticationToken", "Request is missing Authentication Token")
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    cred = fields.get("Credential", "").split("/")
    if len(cred) != 5 or cred[4] != "aws4_request" or cred[3] != "ec2":
        return "", (400, "IncompleteSignature", "malformed Credential")
    key_id, date8, region = cred[0], cred[1], cred[2]
    if key_id != ARGS.access_key:
        return key_id, (401, "AuthFailure", "AWS was not able to validate the provided access credentials")
    if region != ARGS.region:
        return key_id, (401, "AuthFailure", "credential scope names region %s, not %s" % (region, ARGS.region))
    amz = headers.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return key_id, (400, "IncompleteSignature", "no X-Amz-Date")
    if abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) > 900 or amz[:8] != date8:
        return key_id, (400, "RequestExpired", "Request has expired")
    signed = fields.get("SignedHeaders", "").split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return key_id, (400, "IncompleteSignature", "host and x-amz-date must be signed")
    hlist = []
    for name in signed:
        values = headers.get_all(name) or []
        if not values:
            return key_id, (403, "SignatureDoesNotMatch", "signed header %s is missing" % name)
        hlist.extend([name, v] for v in values)
    token = headers.get("X-Amz-Security-Token")
    if ARGS.session_token and token != ARGS.session_token:
        return key_id, (401, "AuthFailure", "wrong or missing session token")
    target = path + ("?" + query if query else "")
    creq, _ = sigv4.canonical_request(method, target, hlist, sigv4.sha256_hex(body))
    scope = "%s/%s/ec2/aws4_request" % (date8, region)
    sts = sigv4.sts_for(creq, amz, scope)
    want = hmac.new(sigv4.signing_key(ARGS.secret_key, date8, region, "ec2"), sts.encode(),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, fields.get("Signature", "")):
        return key_id, (403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.")
    return key_id, None


# ---------------------------------------------------------------- XML

def error_xml(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
            "<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>"
            % (escape(code), escape(message), uuid.uuid4())).encode()


def state_xml(tag, state):
    return "<%s><code>%d</code><name>%s</name></%s>" % (tag, STATE_CODES[state], state, tag)


def instance_xml(inst):
    tags = "".join("<item><key>%s</key><value>%s</value></item>" % (escape(k), escape(v))
                   for k, v in inst["tags"].items())
    reason = ""
    if inst.get("reason_code"):
        reason = "<stateReason><code>%s</code><message>%s</message></stateReason>" % (
            escape(inst["reason_code"]), escape(inst["reason_message"]))
    groups = "".join("<item><groupId>%s</groupId><groupName>g</groupName></item>" % escape(g)
                     for g in inst["groups"])
    return ("<item><instanceId>%s</instanceId><imageId>%s</imageId>%s"
            "<privateDnsName/><dnsName/><reason/><amiLaunchIndex>0</amiLaunchIndex><productCodes/>"
            "<instanceType>%s</instanceType><launchTime>%s</launchTime>"
            "<placement><availabilityZone>%s</availabilityZone><groupName/><tenancy>default</tenancy></placement>"
            "<monitoring><state>disabled</state></monitoring><subnetId>%s</subnetId>"
            "<groupSet>%s</groupSet>%s<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>"
            "<rootDeviceName>/dev/xvda</rootDeviceName><clientToken>%s</clientToken>"
            "%s<tagSet>%s</tagSet><hypervisor>xen</hypervisor></item>"
            % (inst["id"], escape(inst["image"]), state_xml("instanceState", inst["state"]),
               escape(inst["type"]), inst["launch_time"], escape(inst["zone"]),
               escape(inst["subnet"]), groups, reason, escape(inst["client_token"]),
               "<instanceLifecycle>spot</instanceLifecycle>" if inst["spot"] else "", tags))


def response_xml(action, inner):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s"><requestId>%s</requestId>%s</%sResponse>'
            % (action, NS, uuid.uuid4(), inner, action)).encode()


# ---------------------------------------------------------------- instances as hosts

FLEET = fake_cloud.Fleet(STATE, LOCK, log, state_key="state", up="running",
                         down=("shutting-down", "terminated", "stopping", "stopped"),
                         name_key="id", script_key="user_data", script_name="user-data")


def end(inst, how):
    """The instance goes: shutting-down now, terminated (or stopped) soon."""
    code, message, final = DEATHS[how]
    with LOCK:
        if inst["state"] in ("terminated", "shutting-down", "stopped"):
            return False
        inst["reason_code"], inst["reason_message"] = code, message
        FLEET.set_state(inst["id"], "stopping" if final == "stopped" else "shutting-down")
    fake_cloud.later(ARGS.end_delay, FLEET.set_state, inst["id"], final)
    return True


# ---------------------------------------------------------------- actions

class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def indexed(params, prefix):
    """Values of prefix.1, prefix.2 ... in order."""
    out, i = [], 1
    while "%s.%d" % (prefix, i) in params:
        out.append(params["%s.%d" % (prefix, i)])
        i += 1
    return out


def tag_specs(params):
    tags = {}
    i = 1
    while "TagSpecification.%d.ResourceType" % i in params:
        if params["TagSpecification.%d.ResourceType" % i] == "instance":
            j = 1
            while "TagSpecification.%d.Tag.%d.Key" % (i, j) in params:
                tags[params["TagSpecification.%d.Tag.%d.Key" % (i, j)]] = params.get(
                    "TagSpecification.%d.Tag.%d.Value" % (i, j), "")
                j += 1
        i += 1
    return tags


def run_instances(params):
    for need in ("ImageId", "InstanceType"):
        if not params.get(need):
            raise ApiError(400, "MissingParameter", "The request must contain the parameter %s" % need)
    if params.get("MinCount") != "1" or params.get("MaxCount") != "1":
        raise ApiError(400, "InvalidParameterValue", "ferry launches one instance at a time")
    if not params["ImageId"].startswith("ami-"):
        raise ApiError(400, "InvalidAMIID.Malformed", "Invalid id: \"%s\"" % params["ImageId"])
    token = params.get("ClientToken", "")
    ud = base64.b64decode(params.get("UserData", "")) if params.get("UserData") else b""
    if len(ud) > 16384:
        raise ApiError(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
    fingerprint = hashlib.sha256(json.dumps(
        {k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True).encode()).hexdigest()
    with LOCK:
        if token:
            for inst in STATE["instances"].values():
                if inst["client_token"] == token:
                    if inst["fingerprint"] != fingerprint:
                        raise ApiError(400, "IdempotentParameterMismatch",
                                       "client token %s was used with other parameters" % token)
                    return response_xml("RunInstances", reservation_inner(inst)), inst
        inst = {"id": "i-" + uuid.uuid4().hex[:17], "slot": FLEET.new_slot(), "state": "pending",
                "zone": params.get("Placement.AvailabilityZone") or ARGS.region + "a",
                "subnet": params.get("SubnetId", "subnet-default"), "type": params["InstanceType"],
                "image": params["ImageId"], "groups": indexed(params, "SecurityGroupId"),
                "client_token": token, "fingerprint": fingerprint, "tags": tag_specs(params),
                "spot": params.get("InstanceMarketOptions.MarketType") == "spot",
                "disk_gb": params.get("BlockDeviceMapping.1.Ebs.VolumeSize"),
                "profile": params.get("IamInstanceProfile.Name") or params.get("IamInstanceProfile.Arn"),
                "user_data": ud, "netns": None, "pid": None, "reason_code": "", "reason_message": "",
                "launch_time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
        STATE["instances"][inst["id"]] = inst
        STATE["order"].append(inst["id"])
    fake_cloud.later(ARGS.pending_delay, FLEET.set_state, inst["id"], "running", ("pending",))
    return response_xml("RunInstances", reservation_inner(inst)), inst


def reservation_inner(inst):
    return ("<reservationId>r-%s</reservationId><ownerId>111122223333</ownerId><groupSet/>"
            "<instancesSet>%s</instancesSet>" % (inst["id"][2:], instance_xml(inst)))


def matches_filters(inst, params):
    i = 1
    while "Filter.%d.Name" % i in params:
        name = params["Filter.%d.Name" % i]
        values = indexed(params, "Filter.%d.Value" % i)
        if name.startswith("tag:"):
            if inst["tags"].get(name[4:]) not in values:
                return False
        elif name == "instance-state-name":
            if inst["state"] not in values:
                return False
        elif name == "instance-id":
            if inst["id"] not in values:
                return False
        else:
            raise ApiError(400, "InvalidParameterValue", "The filter '%s' is invalid" % name)
        i += 1
    return True


def describe_instances(params):
    ids = indexed(params, "InstanceId")
    page = params.get("MaxResults")
    if page is not None:
        if ids:
            raise ApiError(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the parameter maxResults")
        if not page.isdigit() or not 5 <= int(page) <= 1000:
            raise ApiError(400, "InvalidParameterValue", "MaxResults must be from 5 to 1000")
    with LOCK:
        for i in ids:
            if i not in STATE["instances"]:
                raise ApiError(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % i)
        found = [STATE["instances"][i] for i in (ids or STATE["order"])]
        found = [x for x in found if matches_filters(x, params)]
        start = 0
        if params.get("NextToken"):
            try:
                start = int(base64.b64decode(params["NextToken"]).decode())
            except Exception:
                raise ApiError(400, "InvalidParameterValue", "bad NextToken")
        n = int(page) if page else len(found)
        chunk = found[start:start + n]
        nxt = ""
        if start + n < len(found):
            nxt = "<nextToken>%s</nextToken>" % base64.b64encode(str(start + n).encode()).decode()
        body = "".join("<item><reservationId>r-%s</reservationId><ownerId>111122223333</ownerId>"
                       "<groupSet/><instancesSet>%s</instancesSet></item>" % (x["id"][2:], instance_xml(x))
                       for x in chunk)
        return response_xml("DescribeInstances", "<reservationSet>%s</reservationSet>%s" % (body, nxt))


def terminate_instances(params):
    ids = indexed(params, "InstanceId")
    if not ids:
        raise ApiError(400, "MissingParameter", "The request must contain the parameter InstanceId")
    items = []
    with LOCK:
        for i in ids:
            if i not in STATE["instances"]:
                raise ApiError(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist" % i)
        for i in ids:
            inst = STATE["instances"][i]
            prev = inst["state"]
            if prev not in ("terminated", "shutting-down"):
                inst["reason_code"] = "Client.UserInitiatedShutdown"
                inst["reason_message"] = "Client.UserInitiatedShutdown: User initiated shutdown"
                FLEET.set_state(i, "shutting-down")
                fake_cloud.later(ARGS.end_delay, FLEET.set_state, i, "terminated")
            items.append("<item><instanceId>%s</instanceId>%s%s</item>" % (
                i, state_xml("currentState", inst["state"]), state_xml("previousState", prev)))
    return response_xml("TerminateInstances", "<instancesSet>%s</instancesSet>" % "".join(items))


ACTIONS = {"RunInstances": run_instances, "DescribeInstances": describe_instances,
           "TerminateInstances": terminate_instances}


# ---------------------------------------------------------------- HTTP

class Handler(fake_cloud.Handler):
    STATE, LOCK, FLEET = STATE, LOCK, FLEET  # this module's, for the shared handlers
    CTYPE = "text/xml;charset=UTF-8"
    CONTROL = {"/__state": (None, "control_state"), "/__userdata": (None, "control_script"),
               "/__kill": ("POST", "control_kill"), "/__orphan": ("POST", "control_orphan")}

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/__"):
            return self.control(url.path, url.query, body)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if self.command == "POST":
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        key_id, bad = check_signature(self.command, url.path, url.query, self.headers, body)
        action = params.get("Action", "")
        rec = {"action": action, "zone": params.get("Placement.AvailabilityZone", ""),
               "key_id": key_id, "signed": bad is None, "client_token": params.get("ClientToken", ""),
               "user_data_sha256": hashlib.sha256(base64.b64decode(params["UserData"])).hexdigest()
               if params.get("UserData") else "", "ids": indexed(params, "InstanceId"),
               "next_token": params.get("NextToken", ""), "time": time.time()}
        if bad:
            return self.answer_error(rec, *bad)
        if params.get("Version") != "2016-11-15":
            return self.answer_error(rec, 400, "InvalidParameterValue", "unsupported Version")
        if action not in ACTIONS:
            return self.answer_error(rec, 400, "InvalidAction", "The action %s is not valid" % action)
        rule = self.take_rule(action=action, zone=rec["zone"])
        if rule and rule.get("delay") and rule.get("after") != "answer":
            time.sleep(rule["delay"])
        if rule and rule.get("code"):
            return self.answer_error(rec, rule.get("status", 400), rule["code"], rule.get("message", "fault"))
        if rule and rule.get("status"):
            return self.answer(rec, rule["status"], b"", "text/plain", code="")
        try:
            out = ACTIONS[action](params)
        except ApiError as e:
            return self.answer_error(rec, e.status, e.code, e.message)
        xml, inst = out if isinstance(out, tuple) else (out, None)
        rec.update(status=200, code="", instance=inst["id"] if inst else "")
        self.record(rec)
        if rule and rule.get("delay") and rule.get("after") == "answer":
            time.sleep(rule["delay"])  # carried out; the answer comes too late
        self.send(200, xml)

    do_GET = do_POST = do_PUT = handle_any

    def answer_error(self, rec, status, code, message):
        self.answer(rec, status, error_xml(code, message), code=code)

    end_instance = staticmethod(end)  # POST /__kill

    def control_state(self, q, body):
        with LOCK:
            out = {"instances": [summary(STATE["instances"][i]) for i in STATE["order"]],
                   "requests": STATE["requests"]}
        self.send_json(out)

    def control_orphan(self, q, body):
        params = {"ImageId": "ami-orphan", "InstanceType": "t3.micro", "MinCount": "1",
                  "MaxCount": "1", "TagSpecification.1.ResourceType": "instance",
                  "TagSpecification.1.Tag.1.Key": "ferry:daemon",
                  "TagSpecification.1.Tag.1.Value": q.get("daemon", ""),
                  "TagSpecification.1.Tag.2.Key": "ferry:worker",
                  "TagSpecification.1.Tag.2.Value": q.get("worker", "")}
        _, inst = run_instances(params)
        self.send_json({"id": inst["id"]})

    def reset_state(self):
        FLEET.reset()


def summary(inst):
    return {"id": inst["id"], "state": inst["state"], "zone": inst["zone"], "type": inst["type"],
            "image": inst["image"], "subnet": inst["subnet"], "groups": inst["groups"],
            "tags": inst["tags"], "worker": inst["tags"].get("ferry:worker", ""),
            "daemon": inst["tags"].get("ferry:daemon", ""), "client_token": inst["client_token"],
            "spot": inst["spot"], "disk_gb": inst["disk_gb"], "profile": inst["profile"],
            "user_data_sha256": hashlib.sha256(inst["user_data"]).hexdigest(),
            "netns": inst["netns"], "reason_code": inst["reason_code"]}


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--access-key", required=True)
    ap.add_argument("--secret-key", required=True)
    ap.add_argument("--session-token", default="")
    ap.add_argument("--region", default="us-east-1")
    fake_cloud.add_host_arguments(ap, "10.250.0", "fec", "/tmp/fake-ec2", "instance's user-data")
    ap.add_argument("--pending-delay", type=float, default=0.3)
    ARGS = FLEET.args = ap.parse_args()
    FLEET.serve(fake_http.listen(Handler), ap.get_default("dir"))


if __name__ == "__main__":
    main()
