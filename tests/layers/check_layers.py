#!/usr/bin/env python3
"""The layers of ferry's tree, checked on every quoted #include.

    check_layers.py ROOT

Each folder below is a layer; a file may include headers of its own layer
and of the layers listed for it, nothing else (shared/DESIGN.md, "Layout";
core/README.md). A header is found the way the build finds it: first next
to the including file, then by name in the layer folders. Exits 1 and names
every include that goes against the layers, or one it cannot find.
"""
import os
import re
import sys

# layer: (folders, layers it may include)
LAYERS = {
    "sdk": (["sdk/include", "sdk/src"], []),
    "lib": (["lib"], ["sdk"]),
    "stepfile": (["lib/stepfile"], ["lib", "sdk"]),
    "config": (["core"], ["lib", "sdk"]),
    "state": (["core/state"], ["config", "lib", "sdk"]),
    "sched": (["core/sched"], ["state", "config", "lib", "sdk"]),
    "store": (["core/store"], ["state", "config", "lib", "sdk"]),
    "git": (["core/git"], ["state", "config", "lib", "sdk"]),
    "http": (["core/http"], ["git", "store", "sched", "state", "config", "stepfile", "lib", "sdk"]),
    "agent": (["agent"], ["lib", "sdk"]),
    "cli": (["cli"], ["stepfile", "lib", "sdk"]),
    "conformance": (["sdk/conformance"], ["lib", "sdk"]),
}
# The daemon's wiring sees every core layer.
WIRING = {"core/ferryd.c": ["http", "git", "store", "sched", "state", "config", "stepfile", "lib", "sdk"]}
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.M)


def layer_of(rel):
    """The layer whose folder holds `rel` most closely, or None."""
    best, best_len = None, -1
    here = os.path.dirname(rel)
    for name, (dirs, _) in LAYERS.items():
        for d in dirs:
            inside = here == d or (d == "sdk/include" and here.startswith(d + "/"))
            if inside and len(d) > best_len:
                best, best_len = name, len(d)
    return best


def headers_by_name(root):
    found = {}
    for name, (dirs, _) in LAYERS.items():
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.isdir(full):
                continue
            # A layer is its folder's own files (sub-folders are layers of
            # their own), but for the SDK's headers, found as "ferry/x.h".
            for dirpath, subdirs, files in os.walk(full):
                if d != "sdk/include":
                    subdirs.clear()
                for f in files:
                    if f.endswith(".h"):
                        rel = os.path.relpath(os.path.join(dirpath, f), root)
                        key = os.path.relpath(rel, d) if d == "sdk/include" else f
                        found.setdefault(key, []).append(rel)
    return found


def resolve(root, rel, inc, by_name):
    local = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
    if os.path.isfile(os.path.join(root, local)):
        return local
    hits = by_name.get(inc, [])
    return hits[0] if len(hits) == 1 else (None if not hits else hits)


def add_plugins(root):
    """Each plugin is a layer of its own on top of the SDK alone."""
    plugins = os.path.join(root, "plugins")
    if os.path.isdir(plugins):
        for name in sorted(os.listdir(plugins)):
            if os.path.isdir(os.path.join(plugins, name)):
                LAYERS["plugin " + name] = (["plugins/" + name], ["sdk"])


def main(root):
    add_plugins(root)
    by_name = headers_by_name(root)
    problems = []
    for name, (dirs, _) in LAYERS.items():
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.isdir(full):
                continue
            for f in sorted(os.listdir(full)):
                if not f.endswith((".c", ".h")):
                    continue
                rel = os.path.join(d, f)
                if layer_of(rel) != name:
                    continue
                allowed = set(WIRING.get(rel, LAYERS[name][1])) | {name}
                text = open(os.path.join(root, rel), encoding="utf-8").read()
                for m in INCLUDE.finditer(text):
                    line = text.count("\n", 0, m.start()) + 1
                    target = resolve(root, rel, m.group(1), by_name)
                    if target is None:
                        problems.append(f"{rel}:{line}: \"{m.group(1)}\" is not a header of any layer")
                        continue
                    if isinstance(target, list):
                        problems.append(f"{rel}:{line}: \"{m.group(1)}\" is ambiguous: {', '.join(target)}")
                        continue
                    to = layer_of(target)
                    if to not in allowed:
                        problems.append(
                            f"{rel}:{line}: includes {target}: layer {name} may not depend on {to}"
                            f" (it may use: {', '.join(sorted(allowed))})")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) against the layers")
        return 1
    print("layers: every include goes down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
