#!/usr/bin/env python3
"""Binary seeds, written at run time (never committed): snapshot tarballs
for fuzz_tarball, Docker stream frames for fuzz_docker_frames.

gen_seeds.py OUTDIR writes OUTDIR/<harness>/<name>. The tarballs include the
members the extractor must refuse (a '..' path, an absolute path, a hard
link, symlinks out, a device) next to ones it must take."""
import io
import os
import struct
import sys
import tarfile


def tarball(members, mode="w:gz"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as t:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type = m.get("type", tarfile.REGTYPE)
            info.mode = m.get("mode", 0o644)
            info.linkname = m.get("link", "")
            data = m.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


def D(name, mode=0o755):
    return {"name": name, "type": tarfile.DIRTYPE, "mode": mode}


def F(name, data=b"x\n", mode=0o644):
    return {"name": name, "data": data, "mode": mode}


def L(name, link):
    return {"name": name, "type": tarfile.SYMTYPE, "link": link}


TARBALLS = {
    "project.tar.gz": [D("./"), F("ferry.yaml", b"- step:\n    name: a\n    image: busybox\n    command: echo hi\n"),
                       D("src"), F("src/main.py", b"print(1)\n", 0o755), L("src/link", "main.py")],
    "dotdot.tar.gz": [F("ok"), F("../escaped")],
    "absolute.tar.gz": [F("/tmp/ferry-fuzz-absolute")],
    "hardlink.tar.gz": [F("a"), {"name": "b", "type": tarfile.LNKTYPE, "link": "a"}],
    "symlink_out.tar.gz": [L("up", ".."), F("up/escaped")],
    "symlink_chain.tar.gz": [D("d"), L("self", "."), L("x", "self/.."), L("d/y", "../x/z")],
    "symlink_later.tar.gz": [D("a"), L("l", "a/b"), F("a/b"), L("a", "..")],
    "device.tar.gz": [{"name": "dev", "type": tarfile.CHRTYPE}, {"name": "fifo", "type": tarfile.FIFOTYPE}],
    "modes.tar.gz": [D("locked", 0o000), F("locked/f"), F("setuid", b"#!/bin/sh\n", 0o4755)],
}


def frame(kind, payload):
    return struct.pack(">BxxxI", kind, len(payload)) + payload


FRAMES = {
    "mixed.bin": frame(1, b"out line\n") + frame(2, b"err line\n") + frame(0, b"stdin\n") + frame(3, b"daemon error"),
    "empty_frames.bin": frame(1, b"") + frame(2, b"") + frame(1, b"x"),
    "cut_header.bin": frame(1, b"abc") + b"\x02\x00\x00",
    "cut_payload.bin": frame(2, b"abcdef")[:-3],
    "bad_type.bin": frame(1, b"ok") + frame(7, b"no"),
    "create_answer.json": b'{"Id":"4fa6e0f0c6786287e131c3852c58a2e01cc697a68231826813597e4994f1d6e2","Warnings":[]}',
    "inspect_answer.json": b'{"State":{"OOMKilled":true,"ExitCode":137},"StatusCode":137}',
}


def main():
    out = sys.argv[1]
    # The same members uncompressed too (libarchive reads a plain tar as
    # well): mutations of those reach the tar reader, not the gzip CRC.
    tars = {k: tarball(v) for k, v in TARBALLS.items()}
    tars.update({k[:-3]: tarball(v, "w") for k, v in TARBALLS.items()})
    for harness, seeds in (("fuzz_tarball", tars),
                           ("fuzz_docker_frames", FRAMES)):
        os.makedirs(os.path.join(out, harness), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(out, harness, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
