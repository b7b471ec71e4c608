"""Instances of the fake clouds as hosts: a boot script runs in a network
namespace of its own, as cloud-init (EC2 user-data) or google-guest-agent
(a GCE startup-script) would run it.

Instance k's namespace is <prefix><k>, joined to the root namespace by a
veth pair <prefix><k>r (root side, <net>.(4k+1)/30) and <prefix><k>n (its
side, <net>.(4k+2)/30, default route to the root side). The script runs with
an empty environment (no credentials of the fake's caller): PATH, HOME and
the agent's directories under <dir>/<name>, plus the sanitizers' options.
Used through fake_cloud.py by fake_ec2.py and fake_gce.py; needs root and
`ip`.
"""
import os
import signal
import subprocess
import threading


def sh(*cmd):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def boot(slot, name, script, net, prefix, base_dir, log, on_netns=None, script_name="boot-script"):
    """Runs `script` (bytes) as host `name`; returns the pid, or None when
    the namespace could not be made. on_netns(ns) runs once it exists (so
    that an unboot racing with the boot finds it)."""
    ns = "%s%d" % (prefix, slot)
    root_if, ns_if = "%s%dr" % (prefix, slot), "%s%dn" % (prefix, slot)
    a, b = "%s.%d" % (net, 4 * slot + 1), "%s.%d" % (net, 4 * slot + 2)
    d = os.path.join(base_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, script_name)
    with open(path, "wb") as f:
        f.write(script)
    steps = [["ip", "netns", "add", ns],
             ["ip", "link", "add", root_if, "type", "veth", "peer", "name", ns_if],
             ["ip", "link", "set", ns_if, "netns", ns],
             ["ip", "addr", "add", a + "/30", "dev", root_if],
             ["ip", "link", "set", root_if, "up"],
             ["ip", "-n", ns, "link", "set", "lo", "up"],
             ["ip", "-n", ns, "addr", "add", b + "/30", "dev", ns_if],
             ["ip", "-n", ns, "link", "set", ns_if, "up"],
             ["ip", "-n", ns, "route", "add", "default", "via", a]]
    for s in steps:
        if sh(*s) != 0:
            log("boot %s: %s failed" % (name, " ".join(s)))
            return None
    if on_netns:
        on_netns(ns)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": d, "FERRY_AGENT_DIR": os.path.join(d, "agent"),
           "FERRY_WORK_DIR": os.path.join(d, "work")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    console = open(os.path.join(d, "console.log"), "ab")
    p = subprocess.Popen(["ip", "netns", "exec", ns, "sh", path], env=env,
                         stdin=subprocess.DEVNULL, stdout=console, stderr=console,
                         start_new_session=True)
    console.close()
    threading.Thread(target=p.wait, daemon=True).start()  # reap it
    return p.pid


def unboot(slot, ns, prefix):
    """Kills everything in the namespace and deletes it and its veth."""
    if not ns:
        return
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    sh("ip", "netns", "del", ns)
    sh("ip", "link", "del", "%s%dr" % (prefix, slot))
