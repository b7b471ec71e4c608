#!/usr/bin/env python3
"""A tiny in-memory S3 for the failure paths of tests/plugins/test_s3_storage.c,
path-style or virtual-hosted (bucket.localhost:PORT).

The real server tests use s3rver; this one exists to misbehave on purpose:
503 SlowDown a given number of times, 200 answers carrying an <Error>,
dropped connections, truncated and stalled bodies. It keeps the state a test
must check afterwards (objects, multipart uploads still open, every request
it saw). It does not check signatures: tests/unit/test_sigv4.c and s3rver do.

  fake_s3.py BUCKET        prints "PORT=<n>" once it listens on 127.0.0.1

Control (never S3 paths, they start with /__; fake_http.py answers
/__faults and /__reset, as in the other fakes):
  PUT  /__faults   body: JSON list of rules, replaces them and their counts
  GET  /__state    {"objects": {key: size}, "uploads": {id: key},
                    "requests": [{"method", "path", "query", "range", "status",
                                  "key_id", "host", "token"}]}
  POST /__reset    forget objects, uploads, requests and rules

A rule: {"method": "PUT", "query": "partNumber=2", "path": "big",
         "action": "status" | "error200" | "drop" | "truncate" | "stall" | "delay",
         "status": 503, "code": "SlowDown", "times": 2, "seconds": 3}
method/query/path match when equal/contained; times -1 is forever.
"delay" waits `seconds` before answering as usual (a slow part, so that a
test can kill what is uploading it).
"""
import hashlib
import os
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_http  # noqa: E402  (the server, rules, control calls: shared with fake_ec2.py, fake_gce.py)

BUCKET = sys.argv[1] if len(sys.argv) > 1 else "fake-bucket"
LOCK = threading.Lock()
STATE = {"objects": {}, "uploads": {}, "requests": [], "rules": []}


def xml_error(code, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            "<Message>%s</Message><RequestId>fake-%s</RequestId></Error>"
            % (code, message, uuid.uuid4().hex[:8])).encode()


def etag_of(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


class Handler(fake_http.Handler):
    STATE, LOCK = STATE, LOCK  # this module's, for the shared handlers
    CONTROL = {"/__state": ("GET", "control_state")}

    # ---- plumbing ----

    def send(self, status, body=b"", ctype=None, headers=None, head=False):
        self.record_status(status)  # before the answer: a test reads the state once it has it
        super().send(status, body, ctype, headers, head)

    def record_status(self, status):
        if self.path_only.startswith("/__"):
            return
        auth = self.headers.get("Authorization", "")
        key_id = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else ""
        self.record({"method": self.command, "path": self.path_only, "query": self.query,
                     "status": status, "range": self.headers.get("Range", ""), "key_id": key_id,
                     "host": self.headers.get("Host", ""),
                     "token": self.headers.get("X-Amz-Security-Token", "")})

    def error(self, status, code, message="fake error"):
        self.send(status, xml_error(code, message), "application/xml", head=self.command == "HEAD")

    def fault(self):
        """The rule for this request: method equal, query and path contained
        in the request's (fake_http.Handler.take_rule)."""
        return self.take_rule(lambda r: (r.get("query") is None or r["query"] in self.query) and
                              (not r.get("path") or r["path"] in self.path_only), method=self.command)

    # ---- dispatch ----

    def handle_any(self):
        parsed = urllib.parse.urlsplit(self.path)
        self.path_only = urllib.parse.unquote(parsed.path)
        self.query = parsed.query
        self.params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        if self.path_only.startswith("/__"):
            return self.control(self.path_only, self.query, self.read_body())
        data = self.read_body() if self.command in ("PUT", "POST") else b""
        rule = self.fault()
        if rule and self.apply(rule, data):
            return
        parts = self.path_only.lstrip("/").split("/", 1)
        host = self.headers.get("Host", "")
        if host.startswith(BUCKET + "."):  # virtual-hosted style: the bucket in the host
            parts = [BUCKET, self.path_only.lstrip("/")]
        if parts[0] != BUCKET:
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist")
        key = parts[1] if len(parts) > 1 else ""
        if key == "":
            return self.bucket_op()
        return self.object_op(key, data, rule)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    def apply(self, rule, data):
        """True when the rule answered (or dropped) the request itself."""
        a = rule["action"]
        if a == "status":
            self.error(rule.get("status", 500), rule.get("code", "InternalError"))
            return True
        if a == "error200" and self.command == "POST" and "uploadId" in self.params:
            self.send(200, xml_error(rule.get("code", "InternalError"), "failed after 200"), "application/xml")
            return True
        if a == "delay":
            time.sleep(rule.get("seconds", 3))
            return False
        if a == "drop":
            self.record_status(0)
            self.close_connection = True
            return True
        return False  # truncate and stall act on the object's body

    def control_done(self, ok=True):
        self.send(204 if ok else 404)  # not fake_http's 200 {}: the tests want 204

    def control_state(self, q, body):
        with LOCK:
            out = {"objects": {k: len(v[0]) for k, v in STATE["objects"].items()},
                   "uploads": {u: v["key"] for u, v in STATE["uploads"].items()},
                   "requests": list(STATE["requests"])}
        self.send_json(out)

    def reset_state(self):
        with LOCK:
            STATE.update(objects={}, uploads={}, requests=[], rules=[])

    # ---- the bucket: ListObjectsV2 ----

    def bucket_op(self):
        if self.command != "GET" or self.params.get("list-type") != "2":
            return self.error(501, "NotImplemented")
        prefix = self.params.get("prefix", "")
        max_keys = int(self.params.get("max-keys", "1000"))
        after = self.params.get("continuation-token", "")
        with LOCK:
            keys = sorted(k for k in STATE["objects"] if k.startswith(prefix) and k > after)
            sizes = {k: len(STATE["objects"][k][0]) for k in keys}
        page, more = keys[:max_keys], len(keys) > max_keys
        xml = ['<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>',
               "<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount>" % (BUCKET, prefix, len(page)),
               "<IsTruncated>%s</IsTruncated>" % ("true" if more else "false")]
        if more:
            xml.append("<NextContinuationToken>%s</NextContinuationToken>" % page[-1])
        for k in page:
            xml.append("<Contents><Key>%s</Key><Size>%d</Size></Contents>" % (k, sizes[k]))
        xml.append("</ListBucketResult>")
        self.send(200, "".join(xml).encode(), "application/xml")

    # ---- objects and multipart uploads ----

    def object_op(self, key, data, rule):
        c = self.command
        if c == "POST" and "uploads" in self.params:
            uid = uuid.uuid4().hex
            with LOCK:
                STATE["uploads"][uid] = {"key": key, "parts": {}}
            return self.send(200, ("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                                   "<UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                                   % (BUCKET, key, uid)).encode())
        if "uploadId" in self.params:
            return self.upload_op(key, data)
        if c == "PUT":
            with LOCK:
                STATE["objects"][key] = (data, etag_of(data))
            return self.send(200, b"", headers={"ETag": etag_of(data)})
        if c == "DELETE":
            with LOCK:
                STATE["objects"].pop(key, None)
            return self.send(204)
        with LOCK:
            obj = STATE["objects"].get(key)
        if obj is None:
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        content, etag = obj
        if self.headers.get("If-Match") not in (None, etag):
            return self.error(412, "PreconditionFailed")
        status, body, headers = 200, content, {"ETag": etag}
        rng = self.headers.get("Range")
        if rng:
            a, _, b = rng[len("bytes="):].partition("-")
            a = int(a)
            b = int(b) if b else len(content) - 1
            if a >= len(content):
                return self.error(416, "InvalidRange")
            b = min(b, len(content) - 1)
            status, body = 206, content[a:b + 1]
            headers["Content-Range"] = "bytes %d-%d/%d" % (a, b, len(content))
        if c == "HEAD":
            return self.send(status, body, headers=headers, head=True)
        if rule and rule["action"] in ("truncate", "stall"):
            return self.cut(status, body, headers, rule)
        self.send(status, body, headers=headers)

    def cut(self, status, body, headers, rule):
        """Headers for the whole body, half of it, then (after a stall) a drop."""
        self.record_status(-status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if rule["action"] == "stall":
            time.sleep(rule.get("seconds", 3))
        self.close_connection = True

    def upload_op(self, key, data):
        uid = self.params["uploadId"]
        with LOCK:
            up = STATE["uploads"].get(uid)
        if up is None or up["key"] != key:
            return self.error(404, "NoSuchUpload", "The specified upload does not exist.")
        c = self.command
        if c == "PUT":
            n = int(self.params["partNumber"])
            with LOCK:
                up["parts"][n] = data
            return self.send(200, b"", headers={"ETag": etag_of(data)})
        if c == "DELETE":
            with LOCK:
                STATE["uploads"].pop(uid, None)
            return self.send(204)
        if c == "POST":
            listed = []
            for part in data.decode().split("<Part>")[1:]:
                n = int(part.split("<PartNumber>")[1].split("<")[0])
                etag = part.split("<ETag>")[1].split("<")[0].replace("&quot;", '"')
                listed.append((n, etag))
            with LOCK:
                have = dict(up["parts"])
            if [n for n, _ in listed] != list(range(1, len(listed) + 1)) or \
                    any(n not in have or etag_of(have[n]) != e for n, e in listed):
                return self.error(400, "InvalidPart", "One or more of the specified parts could not be found.")
            content = b"".join(have[n] for n, _ in listed)
            md5s = b"".join(hashlib.md5(have[n]).digest() for n, _ in listed)
            etag = '"%s-%d"' % (hashlib.md5(md5s).hexdigest(), len(listed))
            with LOCK:
                STATE["objects"][key] = (content, etag)
                STATE["uploads"].pop(uid, None)
            return self.send(200, ("<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                                   "<ETag>%s</ETag></CompleteMultipartUploadResult>"
                                   % (BUCKET, key, etag.replace('"', "&quot;"))).encode())
        return self.error(405, "MethodNotAllowed")


def main():
    fake_http.serve(fake_http.listen(Handler))


if __name__ == "__main__":
    main()
