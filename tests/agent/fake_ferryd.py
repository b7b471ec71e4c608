"""A fake ferryd that speaks the agent protocol of docs/api.md, for tests.

It records everything an agent sends and serves the blobs (snapshot, inputs)
and upload URLs of the work it hands out. Tests queue work and stop orders
and wait on conditions; every handler runs under one condition variable.
"""

import hashlib
import http.server
import json
import re
import secrets
import socket
import threading
import time


def parse_framed_events(raw):
    """An application/x-ferry-events body (docs/api.md): events back to back,
    each "<seq> <stream> <time> <length>\\n<text>\\n". ValueError if malformed."""
    events, pos = [], 0
    while pos < len(raw):
        nl = raw.index(b"\n", pos)
        seq, stream, when, length = raw[pos:nl].decode().split(" ")
        start, end = nl + 1, nl + 1 + int(length)
        if raw[end:end + 1] != b"\n":
            raise ValueError("event text not followed by a newline")
        events.append({"seq": int(seq), "stream": stream, "time": float(when),
                       "text": raw[start:end].decode("utf-8", "replace")})
        pos = end + 1
    return events


class FakeFerryd:
    def __init__(self, bootstrap_token, poll_timeout=2):
        self.bootstrap_token = bootstrap_token
        self.poll_timeout = poll_timeout
        self.token = "agent-token-" + secrets.token_hex(8)
        self.cond = threading.Condition()
        self.work = []            # specs waiting for a poll
        self.stops = []           # execution ids waiting for a poll
        self.registrations = []   # register bodies
        self.polls = []           # (time, body) of each poll
        self.events = {}          # id -> {seq: event}
        self.event_posts = 0
        self.duplicate_events = 0
        self.status = {}          # id -> [(time, body)]
        self.outputs = {}         # id -> [output]
        self.uploads = {}         # (id, name) -> bytes
        self.blobs = {}           # path -> bytes, served by GET
        self.downloads = {}       # path -> count
        self.unauthorized = []    # paths called without the right token
        self.anomalies = []       # protocol breaches other than auth
        self.handed_out = set()   # execution ids given to the agent
        # Numbers of event POSTs (1-based) that store the events and then
        # answer 500, as if the answer was lost: the agent must resend and
        # the events must still be stored once.
        self.lose_event_answers = {2}
        # While set, event POSTs answer 503 without storing anything.
        self.refuse_events = False
        # While set, the server is away: nothing listens, and requests on
        # connections already open are dropped without an answer.
        self.down = False
        # Optional hooks, called outside the lock: on_outputs(eid, outputs)
        # before the outputs are answered (between the agent's walk and its
        # uploads), on_finished(eid) before a finished report is stored.
        self.on_outputs = None
        self.on_finished = None
        self.port = 0
        self._listen()
        self.url = "http://127.0.0.1:%d" % self.port

    def _listen(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        with self.cond:
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def pause(self):
        """Like ferryd killed: connections are refused or cut."""
        with self.cond:
            self.down = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def resume(self):
        """Like ferryd started again on the same address, state intact."""
        self._listen()
        with self.cond:
            self.down = False
        self.thread.start()

    # ---- what tests call ----

    def add_blob(self, path, data):
        with self.cond:
            self.blobs[path] = data

    def give_work(self, spec):
        with self.cond:
            self.work.append(spec)
            self.cond.notify_all()

    def order_stop(self, execution_id):
        with self.cond:
            self.stops.append(execution_id)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout):
        """Waits until predicate() (called under the lock) is true."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.2))
            return True

    def statuses(self, execution_id):
        with self.cond:
            return [b for _, b in self.status.get(execution_id, [])]

    def finished(self, execution_id):
        for body in self.statuses(execution_id):
            if body.get("status") == "finished":
                return body
        return None

    def event_list(self, execution_id):
        """The events as received: one per seq, a text may hold several lines."""
        with self.cond:
            stored = self.events.get(execution_id, {})
            return [stored[k] for k in sorted(stored)]

    def line_list(self, execution_id):
        """One entry per line, as ferryd stores them (each keeps its event's seq)."""
        return [dict(e, text=line) for e in self.event_list(execution_id)
                for line in e["text"].split("\n")]

    def has_line(self, execution_id, text):
        with self.cond:
            events = list(self.events.get(execution_id, {}).values())
        return any(text in e.get("text", "").split("\n") for e in events)

    # ---- the server ----

    def _free_slots(self):
        slots = self.registrations[-1].get("slots", 1) if self.registrations else 0
        busy = [i for i in self.handed_out
                if not any(b.get("status") == "finished" for _, b in self.status.get(i, []))]
        return slots - len(busy)

    def _acked(self, stored):
        n = 0
        while n + 1 in stored:
            n += 1
        return n

    def _handler(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _gone(self):
                """The server is down: cut the connection, answer nothing."""
                if not fake.down:
                    return False
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return True

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, code, payload, content_type="application/json"):
                if self._gone():
                    return
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the agent went away (a poll it dropped on exit)

            def _authorized(self):
                if self.headers.get("Authorization") == "Bearer " + fake.token:
                    return True
                with fake.cond:
                    fake.unauthorized.append(self.path)
                    fake.cond.notify_all()
                self._send(401, {"error": "bad token"})
                return False

            def do_GET(self):
                if self._gone():
                    return
                path = self.path.split("?", 1)[0]
                with fake.cond:
                    data = fake.blobs.get(path)
                    fake.downloads[path] = fake.downloads.get(path, 0) + 1
                if data is None:
                    self._send(404, {"error": "no such blob"})
                else:
                    self._send(200, data, "application/octet-stream")

            def do_PUT(self):
                body = self._body()
                if self._gone():
                    return
                m = re.match(r"^/upload/([^/]+)/(.+)\?sig=", self.path)
                if not m:
                    self._send(403, {"error": "bad upload url"})
                    return
                with fake.cond:
                    fake.uploads[(m.group(1), m.group(2))] = body
                    fake.cond.notify_all()
                self._send(200, b"", "text/plain")

            def do_POST(self):
                raw = self._body()
                if self._gone():
                    return
                try:
                    if self.headers.get("Content-Type") == "application/x-ferry-events":
                        body = {"events": parse_framed_events(raw)}
                    else:
                        body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"error": "body is not JSON"})
                    return
                if self.path == "/v1/agent/register":
                    return self._register(body)
                if not self._authorized():
                    return
                if self.path == "/v1/agent/poll":
                    return self._poll(body)
                m = re.match(r"^/v1/agent/executions/([^/]+)/(events|status|outputs)$", self.path)
                if not m:
                    self._send(404, {"error": "no such path"})
                    return
                getattr(self, "_" + m.group(2))(m.group(1), body)

            def _register(self, body):
                with fake.cond:
                    fake.registrations.append(body)
                    fake.cond.notify_all()
                if body.get("bootstrap_token") != fake.bootstrap_token:
                    self._send(401, {"error": "bootstrap token refused"})
                    return
                self._send(200, {"agent_id": "agent-1", "token": fake.token,
                                 "poll_timeout": fake.poll_timeout})

            def _client_gone(self):
                """The agent closed the connection (it was killed while its
                poll was held): work handed to it would be lost."""
                try:
                    return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                except OSError:
                    return True

            def _poll(self, body):
                deadline = time.monotonic() + fake.poll_timeout
                with fake.cond:
                    fake.polls.append((time.time(), body))
                    fake.cond.notify_all()
                    # Like ferryd: a slot is busy from hand-out to the
                    # finished report, whatever an earlier poll said.
                    while not (fake.work and fake._free_slots() > 0) and not fake.stops:
                        if fake.down or self._client_gone():
                            break
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        fake.cond.wait(left)
                    n = max(fake._free_slots(), 0) if not self._client_gone() else 0
                    work, fake.work = fake.work[:n], fake.work[n:]
                    fake.handed_out.update(w["id"] for w in work)
                    stop, fake.stops = fake.stops, []
                self._send(200, {"work": work, "stop": stop})

            def _events(self, eid, body):
                with fake.cond:
                    if fake.refuse_events or fake.down:
                        refused = True
                    else:
                        refused = False
                        fake.event_posts += 1
                if refused:
                    self._send(503, {"error": "events refused for now"})
                    return
                with fake.cond:
                    lose = fake.event_posts in fake.lose_event_answers
                    stored = fake.events.setdefault(eid, {})
                    for ev in body.get("events", []):
                        if ev["seq"] in stored:
                            fake.duplicate_events += 1
                            if stored[ev["seq"]] != ev:
                                fake.anomalies.append("seq %d resent with other content" % ev["seq"])
                            continue
                        stored[ev["seq"]] = ev
                    acked = fake._acked(stored)
                    fake.cond.notify_all()
                if lose:
                    self._send(500, {"error": "answer lost"})
                else:
                    self._send(200, {"acked": acked})

            def _status(self, eid, body):
                if body.get("status") == "finished" and fake.on_finished:
                    fake.on_finished(eid)
                with fake.cond:
                    fake.status.setdefault(eid, []).append((time.monotonic(), body))
                    fake.cond.notify_all()
                self._send(200, {})

            def _outputs(self, eid, body):
                outs = body.get("outputs", [])
                if fake.on_outputs:
                    fake.on_outputs(eid, outs)
                with fake.cond:
                    fake.outputs[eid] = outs
                    fake.cond.notify_all()
                uploads = [{"name": o["name"],
                            "url": "%s/upload/%s/%s?sig=uploadsecret" % (fake.url, eid, o["name"])}
                           for o in outs]
                self._send(200, {"uploads": uploads})

        return Handler


def sha256(data):
    return hashlib.sha256(data).hexdigest()
