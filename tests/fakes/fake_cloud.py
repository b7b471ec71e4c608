"""What the compute fakes (fake_ec2.py, fake_gce.py) share beyond HTTP
(fake_http.py): instances whose state moves on by itself a little after a
call (later), each booted as a host with --boot once it runs and unbooted
once it stops (netns_host.py); the options that say where those hosts go;
and the control calls that end an instance from outside or hand out its
boot script.
"""
import os
import shutil
import threading

import fake_http
import netns_host


def later(seconds, fn, *a):
    """fn(*a) in `seconds`, on a timer thread: what the cloud does by itself
    after answering (an instance boots, an operation ends)."""
    t = threading.Timer(seconds, fn, a)
    t.daemon = True
    t.start()


def add_host_arguments(ap, net, prefix, directory, script):
    """--boot and where the hosts go (netns_host.py), and --end-delay (how
    long an instance takes to go once it is going)."""
    ap.add_argument("--boot", action="store_true", help="run each %s in a netns" % script)
    ap.add_argument("--net", default=net, help="10.X.Y: instance k is .4k+1/.4k+2")
    ap.add_argument("--prefix", default=prefix, help="names of namespaces and interfaces")
    ap.add_argument("--dir", default=directory, help="instances' files")
    ap.add_argument("--end-delay", type=float, default=0.5)


class Fleet:
    """A compute fake's instances: STATE["instances"] (key -> instance) and
    STATE["order"] (their keys as they were made), under LOCK, an RLock (a
    state change may come from a call that holds it). An instance is a dict
    with its "slot" (k of netns_host.py) and its state, host name and boot
    script under the keys the fake names; the Fleet keeps its "netns" (None
    while it has none) and "pid" (its script's)."""

    def __init__(self, state, lock, log, state_key, up, down, name_key, script_key,
                 script_name):
        self.args = None  # the fake's options, once parsed (--boot, --net, --prefix, --dir)
        self.state, self.lock, self.log = state, lock, log
        self.state_key, self.up, self.down = state_key, up, down
        self.name_key, self.script_key, self.script_name = name_key, script_key, script_name

    def new_slot(self):
        """The next instance's slot (never one again, even after a reset:
        a namespace being deleted may still hold its name)."""
        with self.lock:
            slot = self.state["next_slot"]
            self.state["next_slot"] += 1
            return slot

    def set_state(self, key, value, only_from=None):
        """The instance `key` (when it is still there, and in one of the
        states only_from when given) is now in state `value`: into the up
        state it boots (--boot, and a boot script), into a down one its
        host goes."""
        with self.lock:
            inst = self.state["instances"].get(key)
            if inst is None or (only_from and inst[self.state_key] not in only_from):
                return
            inst[self.state_key] = value
            if value in self.down:
                self.unboot(inst)
            if value == self.up and self.args.boot and inst[self.script_key]:
                threading.Thread(target=self.boot, args=(inst,), daemon=True).start()

    def boot(self, inst):
        """Runs the boot script as a new host in a namespace of its own."""
        def on_netns(ns):
            with self.lock:
                inst["netns"] = ns

        pid = netns_host.boot(inst["slot"], inst[self.name_key], inst[self.script_key],
                              self.args.net, self.args.prefix, self.args.dir, self.log, on_netns,
                              self.script_name)
        if pid is not None:
            with self.lock:
                inst["pid"] = pid

    def unboot(self, inst):
        netns_host.unboot(inst["slot"], inst.get("netns"), self.args.prefix)
        inst["netns"] = None

    def reset(self, **more):
        """Every host goes; the fake forgets its instances, requests and
        rules, and sets what else it keeps to `more`."""
        with self.lock:
            for inst in self.state["instances"].values():
                self.unboot(inst)
            self.state.update(instances={}, order=[], requests=[], rules=[], **more)

    def serve(self, srv, default_dir):
        """Serves srv (fake_http.serve) until SIGTERM, which takes every host
        down, and the instances' files with them when they are under the
        default folder (a test's own --dir is the test's to remove)."""
        os.makedirs(self.args.dir, exist_ok=True)

        def stop():
            self.reset()
            if self.args.dir.startswith(default_dir):
                shutil.rmtree(self.args.dir, ignore_errors=True)

        fake_http.serve(srv, stop)


class Handler(fake_http.Handler):
    """A compute fake's handler: FLEET (its Fleet, whose state and lock are
    STATE and LOCK) and, besides fake_http's, the control calls
      GET  /__<its name for it>?id=ID   the instance's boot script, as given
      POST /__kill?id=ID&how=HOW        the instance ends by itself
    (the fake's end_instance(inst, how): whether it could).
    """
    FLEET = None

    def control_script(self, q, body):
        inst = self.find_instance(q.get("id", ""))
        self.send(200 if inst else 404, inst[self.FLEET.script_key] if inst else b"", "text/plain")

    def control_kill(self, q, body):
        with self.LOCK:
            inst = self.STATE["instances"].get(q.get("id", ""))
            ok = inst is not None and self.end_instance(inst, q.get("how", "spot"))
        self.control_done(ok)

    def find_instance(self, key):
        with self.LOCK:
            return self.STATE["instances"].get(key)
