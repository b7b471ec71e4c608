"""The HTTP side that the fake endpoints share (fake_ec2.py, fake_gce.py,
fake_s3.py): each is a threaded HTTP/1.1 server on 127.0.0.1 that prints
"PORT=<n>" once it listens, keeps every request it saw and a list of fault
rules in a STATE dict under a lock, and answers control calls (paths that
start with /__, which no cloud API uses) that the tests drive it with.

Every fake has these two control calls:
  PUT  /__faults   body: JSON list of rules (replaces them and their counts)
  POST /__reset    forget what the fake holds (its reset_state())
and its own others, named in its Handler's CONTROL.

A rule is a dict that names what it matches (each fake says which fields
and how they compare) and "times": how many requests it still applies to
(absent: 1; -1 is forever). The first rule that matches and has times left
applies, and one time is counted off it.
"""
import http.server
import json
import os
import signal
import urllib.parse


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def listen(handler):
    """A server for `handler` on a free port of 127.0.0.1 (not serving yet:
    a fake may want its port first, for the URLs it hands out)."""
    return Server(("127.0.0.1", 0), handler)


def serve(srv, on_stop=None):
    """Says the port, then serves forever. With on_stop, SIGTERM and SIGINT
    run it and exit 0 at once (the requests in flight are dropped)."""
    if on_stop:
        def stop(*_):
            on_stop()
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
    print("PORT=%d" % srv.server_address[1], flush=True)
    srv.serve_forever()


def rule_names(rule, **request):
    """Whether each of these fields, where the rule names it (present and not
    empty), equals the request's."""
    return all(not rule.get(k) or rule[k] == v for k, v in request.items())


# The control calls every fake has: path -> (the method it needs, the
# Handler method that answers it).
COMMON_CONTROL = {"/__faults": ("PUT", "control_faults"), "/__reset": ("POST", "control_reset")}


class Handler(http.server.BaseHTTPRequestHandler):
    """A fake's request handler: HTTP/1.1 with keep-alive (the plugins'
    clients reuse their connections) and no access log. A subclass sets
    STATE (a dict with "requests" and "rules", at least) and LOCK, routes the
    methods it serves (do_GET = ... = its handler) and passes control calls
    to control()."""
    protocol_version = "HTTP/1.1"
    STATE = None
    LOCK = None
    # The Content-Type of answers that name none (None: no such header) and
    # of the JSON answers to control calls.
    CTYPE = None
    CONTROL_CTYPE = "application/json"
    # Its own control calls: path -> (the method it needs, None for any; the
    # name of the method that answers, called with the query as a dict and
    # the body).
    CONTROL = {}

    def log_message(self, *args):
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", ctype=None, headers=None, head=False):
        """The answer, whole; with head, its headers only (a HEAD request)."""
        self.send_response(status)
        if ctype or self.CTYPE:
            self.send_header("Content-Type", ctype or self.CTYPE)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head or not body:
            return
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a delay the test asked for)

    def send_json(self, obj, status=200):
        self.send(status, json.dumps(obj).encode(), self.CONTROL_CTYPE)

    def record(self, rec):
        """Keeps a request as /__state shows it."""
        with self.LOCK:
            self.STATE["requests"].append(rec)

    def answer(self, rec, status, body, ctype=None, **outcome):
        """Keeps the request `rec` with its outcome (its status and the
        fake's fields), then answers."""
        rec.update(status=status, **outcome)
        self.record(rec)
        self.send(status, body, ctype)

    def take_rule(self, matches=None, **request):
        """The fault rule for this request, counted off (a copy, or None):
        the first with times left whose fields among `request` match it
        (rule_names) and, given `matches`, for which matches(rule) holds."""
        with self.LOCK:
            for r in self.STATE["rules"]:
                if r.get("times", 1) == 0:
                    continue
                if not rule_names(r, **request) or (matches and not matches(r)):
                    continue
                if r.get("times", 1) > 0:
                    r["times"] = r.get("times", 1) - 1
                return dict(r)
        return None

    # ---- control calls ----

    def control(self, path, query, body):
        """Answers a control call: one of COMMON_CONTROL or CONTROL with the
        method it needs, else 404."""
        want, name = dict(COMMON_CONTROL, **self.CONTROL).get(path, (None, None))
        if name is None or (want and want != self.command):
            return self.control_done(False)
        getattr(self, name)(dict(urllib.parse.parse_qsl(query, keep_blank_values=True)), body)

    def control_done(self, ok=True):
        """The answer to a control call that returns nothing: 200 {}, or 404
        {} when what it names is not there."""
        self.send(200 if ok else 404, b"{}", self.CONTROL_CTYPE)

    def control_faults(self, q, body):
        rules = json.loads(body or b"[]")
        with self.LOCK:
            self.STATE["rules"] = rules
        self.control_done()

    def control_reset(self, q, body):
        self.reset_state()
        self.control_done()

    def reset_state(self):
        """Forgets what the fake holds (instances, objects...), the requests
        and the rules."""
        raise NotImplementedError
