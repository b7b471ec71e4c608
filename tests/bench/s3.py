#!/usr/bin/env python3
"""Issue 6's figures: outputs through the s3-storage store against aws-cli.

1 GiB of outputs, one large file (~926 MiB) and 1,000 small ones (100 KiB
each), random bytes, to the s3rver of tests/services:

  upload    a ferry execution whose command hard-links the files into its
            outputs/ (no copy: the bytes are the ones aws-cli reads), so the
            time is what the user waits for once the commands are done:
            from the log line the command prints last (the agent's clock)
            to ferryd's ended_at (ferryd's clock, the same host). That span
            holds the agent's walk of outputs/ (size and SHA-256 of every
            file), registering them with ferryd, the uploads (the large file
            in parts from the agent, several at once, completed by ferryd;
            the small ones each a PUT, then a report to ferryd) and the
            finished report.
            Peer: `aws s3 cp` of the large file plus `aws s3 cp --recursive`
            of the folder of small ones, to the same s3rver, timed from the
            start of the first to the end of the second (its start-up
            included: it is part of what a user of aws-cli waits for).
  download  `ferry outputs ID --download DIR` (each file's SHA-256 checked
            against ferryd's record) against `aws s3 cp` of the large file
            plus `aws s3 cp --recursive` of the small ones, wall clock.

Both sides run with their defaults (ferry: 16 MiB parts, 8 transfers at
once; aws-cli: 8 MiB parts, 10 at once), alternately in each repeat; the
figures are medians over the repeats, lower is better, ratio = ferry / aws.
The objects of each repeat are removed before the next.

Needs s3rver running (tests/services/all.sh start) and Debian's aws-cli at
/usr/bin/aws.

Usage: s3.py --build BUILD_DIR [--size-mb 1024] [--small 1000] [--repeats 3]
Prints a JSON document on stdout.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SMALL_SIZE = 100 * 1024
AWS = "/usr/bin/aws"


def services_env():
    """FERRY_TEST_S3_* from the services' env file when not set already."""
    env = {}
    path = os.path.join(os.environ.get("FERRY_TEST_SERVICES", "/tmp/ferry-test-services"), "env")
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.strip().partition("=")
            env[k] = v
    env.update({k: v for k, v in os.environ.items() if k.startswith("FERRY_TEST_S3_")})
    if "FERRY_TEST_S3_ENDPOINT" not in env:
        sys.exit("s3rver is not running: start it with tests/services/all.sh start")
    return env


def iso_seconds(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make_data(root, size, small):
    """small files of SMALL_SIZE in root/small, the rest in root/big.bin."""
    os.makedirs(f"{root}/small")
    big = size - small * SMALL_SIZE
    with open("/dev/urandom", "rb") as rnd, open(f"{root}/big.bin", "wb") as f:
        left = big
        while left > 0:
            chunk = rnd.read(min(left, 8 << 20))
            f.write(chunk)
            left -= len(chunk)
        for i in range(small):
            with open(f"{root}/small/f{i:04d}.bin", "wb") as s:
                s.write(rnd.read(SMALL_SIZE))
    return big


class Ferry:
    def __init__(self, build, work, s3):
        self.build, self.work = build, work
        self.prefix = f"bench-{os.getpid()}/"
        with open(f"{work}/ferryd.conf", "w") as f:
            f.write(f'data_dir = "{work}/data";\n'
                    f'listen = "127.0.0.1:0";\n'
                    f'store = {{ plugin = "s3-storage"; bucket = "{s3["FERRY_TEST_S3_BUCKET"]}"; '
                    f'prefix = "{self.prefix}"; endpoint = "{s3["FERRY_TEST_S3_ENDPOINT"]}"; '
                    f'access_key_id = "{s3["FERRY_TEST_S3_ACCESS_KEY_ID"]}"; '
                    f'secret_access_key = "{s3["FERRY_TEST_S3_SECRET_ACCESS_KEY"]}"; }};\n'
                    f'environments = ( {{ name = "local"; compute = "local"; '
                    f'runtime = "local-process"; max_workers = 1; }} );\n')
        self.log = open(f"{work}/ferryd.log", "w")
        self.ferryd = subprocess.Popen([f"{build}/bin/ferryd", "-c", f"{work}/ferryd.conf",
                                        "--retire-workers"],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        self.url = self._wait_url()
        self.env = dict(os.environ, FERRY_SERVER=self.url)
        self.project = f"{work}/project"
        os.makedirs(self.project)

    def _wait_url(self):
        for _ in range(200):
            with open(f"{self.work}/ferryd.log") as f:
                m = re.findall(r"listening on (http://\S+)", f.read())
            if m:
                return m[-1]
            time.sleep(0.05)
        sys.exit("ferryd did not start: " + open(f"{self.work}/ferryd.log").read())

    def cli(self, *args):
        return subprocess.run([f"{self.build}/bin/ferry", *args], cwd=self.project, env=self.env,
                              check=True, capture_output=True, text=True).stdout

    def steps(self, text):
        with open(f"{self.project}/ferry.yaml", "w") as f:
            f.write(text)

    def logs(self, exec_id):
        with urllib.request.urlopen(f"{self.url}/v1/executions/{exec_id}/logs") as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]

    def close(self):
        self.ferryd.send_signal(signal.SIGTERM)
        try:
            self.ferryd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.ferryd.kill()
        subprocess.run(["pkill", "-KILL", "-f", "--", f"--work-dir {self.work}/data/"],
                       check=False)


def aws(env, *args):
    subprocess.run([AWS, "--endpoint-url", env["FERRY_TEST_S3_ENDPOINT"], *args], check=True,
                   capture_output=True, env=env["_aws_env"])


def ferry_upload(f, data_dir):
    """Seconds from the command's last line to ended_at, and the id."""
    exec_id = json.loads(f.cli("run", "upload", "--json"))["id"]
    f.cli("wait", exec_id, "--timeout", "1800")
    e = json.loads(f.cli("show", exec_id, "--json"))
    if e["status"] != "complete":
        sys.exit(f"the upload execution ended {e['status']}: {e['status_reason']}")
    linked = [ev for ev in f.logs(exec_id) if ev["stream"] == "stdout" and ev["text"] == "linked"]
    if not linked:
        sys.exit("the upload execution printed no 'linked'")
    return iso_seconds(e["ended_at"]) - iso_seconds(linked[-1]["time"]), exec_id, e


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def same_tree(a, b):
    return subprocess.run(["diff", "-rq", a, b], capture_output=True).returncode == 0


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def bench(f, s3, data_dir, big, small, repeats):
    f.steps("- step:\n    name: upload\n    image: none\n"
            f"    command:\n      - cp -al {data_dir}/. \"$FERRY_OUTPUTS_DIR/\"\n"
            "      - echo linked\n")
    bucket = s3["FERRY_TEST_S3_BUCKET"]
    peer = f"s3://{bucket}/{f.prefix}aws"
    up_f, up_a, down_f, down_a = [], [], [], []
    for _ in range(repeats):
        seconds, exec_id, e = ferry_upload(f, data_dir)
        up_f.append(seconds)
        up_a.append(timed(lambda: (aws(s3, "s3", "cp", "--quiet", f"{data_dir}/big.bin",
                                       f"{peer}/big.bin"),
                                   aws(s3, "s3", "cp", "--quiet", "--recursive",
                                       f"{data_dir}/small", f"{peer}/small"))))
        fd, ad = f"{f.work}/dl-ferry", f"{f.work}/dl-aws"
        down_f.append(timed(lambda: f.cli("outputs", exec_id, "--download", fd)))
        down_a.append(timed(lambda: (aws(s3, "s3", "cp", "--quiet", f"{peer}/big.bin",
                                         f"{ad}/big.bin"),
                                     aws(s3, "s3", "cp", "--quiet", "--recursive",
                                         f"{peer}/small", f"{ad}/small"))))
        if not same_tree(fd, data_dir) or not same_tree(ad, data_dir):
            sys.exit("a download differs from the data")
        shutil.rmtree(fd)
        shutil.rmtree(ad)
        aws(s3, "s3", "rm", "--quiet", "--recursive", f"s3://{bucket}/{f.prefix}")
    files = small + 1
    size = big + small * SMALL_SIZE
    common = {"size_bytes": size, "files": files, "large_bytes": big, "small_files": small,
              "small_bytes": SMALL_SIZE, "peer_upload": "aws s3 cp (large) + aws s3 cp --recursive (small)",
              "peer_download": "aws s3 cp (large) + aws s3 cp --recursive (small)"}
    up = {"ferry": stats(up_f), "aws": stats(up_a)}
    up["ratio"] = up["ferry"]["median"] / up["aws"]["median"]
    down = {"ferry": stats(down_f), "aws": stats(down_a)}
    down["ratio"] = down["ferry"]["median"] / down["aws"]["median"]
    return {"s3_upload_s": dict(common, **up), "s3_download_s": dict(common, **down)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--size-mb", type=int, default=1024, help="total MiB of outputs")
    ap.add_argument("--small", type=int, default=1000, help="how many 100 KiB files")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    s3 = services_env()
    s3["_aws_env"] = dict(os.environ, AWS_ACCESS_KEY_ID=s3["FERRY_TEST_S3_ACCESS_KEY_ID"],
                          AWS_SECRET_ACCESS_KEY=s3["FERRY_TEST_S3_SECRET_ACCESS_KEY"],
                          AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                          AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    work = tempfile.mkdtemp(prefix="ferry-bench-s3.")
    f = None
    try:
        data_dir = f"{work}/outputs-data"
        big = make_data(data_dir, args.size_mb << 20, args.small)
        f = Ferry(os.path.abspath(args.build), work, s3)
        result = bench(f, s3, data_dir, big, args.small, args.repeats)
        json.dump(result, sys.stdout, indent=2)
        print()
    finally:
        if f:
            f.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
