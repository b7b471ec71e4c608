#!/usr/bin/env bash
# Snapshot bombs (issue 25): what a snapshot may expand to is bounded
# (max_snapshot_mb, members, compression ratio), an upload that breaks a
# bound is refused naming it, the step file is read under the same bounds on
# the thread pool (ferryd keeps answering meanwhile), and a snapshot whose
# step file cannot be read is not scanned again on each create. The archives
# are generated here: a few MB that expand to hundreds.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cat >"$WORK/ferryd.conf" <<'EOF'
max_snapshot_mb = 100;
EOF
ferryd_start -c "$WORK/ferryd.conf"

# gen PATH MIB RANDOM_PER_MIB LEVEL [NOTE]: a .tar.gz holding ferry.yaml, MIB
# MiB that are zeros but for RANDOM_PER_MIB random bytes at the start of each
# MiB, then ferry.yaml again (the later one wins, so a reader must get past
# the middle). NOTE makes the step file, and so the snapshot, distinct.
gen() {
  python3 - "$@" <<'EOF'
import io, os, sys, tarfile
path, mib, rnd, level = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
note = sys.argv[5] if len(sys.argv) > 5 else ""
yaml = ("# %s\n- step:\n    name: hello\n    image: none\n    command: echo hello\n" % note).encode()

class Big:
    def __init__(self):
        self.left, self.buf = mib, b""
        self.block = bytearray(1 << 20)
    def read(self, n=-1):
        while len(self.buf) < n and self.left > 0:
            if rnd:
                self.block[:rnd] = os.urandom(rnd)
            self.buf += bytes(self.block)
            self.left -= 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

def member(tf, name, size, f):
    ti = tarfile.TarInfo(name)
    ti.size = size
    tf.addfile(ti, f)

with tarfile.open(path, "w:gz", compresslevel=level) as tf:
    member(tf, "ferry.yaml", len(yaml), io.BytesIO(yaml))
    member(tf, "big.bin", mib << 20, Big())
    member(tf, "ferry.yaml", len(yaml), io.BytesIO(yaml))
EOF
}

# upload PATH: sets CODE and BODY.
upload() {
  CODE=$(curl -sS -o "$WORK/up.out" -w '%{http_code}' --data-binary @"$1" \
    -H 'Content-Type: application/gzip' "$FERRY_SERVER/v1/snapshots")
  BODY=$(cat "$WORK/up.out")
}
body_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1]).get('$1',''))" "$BODY"; }
create_body() { printf '{"project": "bounds", "step": "hello", "snapshot": "%s"}' "$1"; }

# --- bombs are refused at upload, naming the bound ---
gen "$WORK/zeros.tgz" 300 0 6 # ~300 KB: 300 MiB of zeros
expect_eq "the bomb is small" "$(($(stat -c %s "$WORK/zeros.tgz") < 2000000))" 1
upload "$WORK/zeros.tgz"
expect_eq "a gzip bomb: refused" "$CODE" 413
expect_contains "a gzip bomb: names the bound" "$(body_field error)" "compression ratio at most 200"
zeros_sha=$(sha256sum "$WORK/zeros.tgz" | cut -d' ' -f1)
expect_eq "a refused bomb is not stored" \
  "$(curl -s -o /dev/null -w '%{http_code}' -I "$FERRY_SERVER/v1/snapshots/$zeros_sha")" 404

gen "$WORK/over.tgz" 150 16384 1 # compresses ~60 times, expands past 100 MiB
upload "$WORK/over.tgz"
expect_eq "a snapshot past max_snapshot_mb: refused" "$CODE" 413
expect_contains "... naming max_snapshot_mb" "$(body_field error)" "max_snapshot_mb = 100"

# --- big but allowed: ferryd answers while they are read ---
shas=()
for i in 1 2 3 4; do
  gen "$WORK/big$i.tgz" 90 16384 1 "big $i"
  upload "$WORK/big$i.tgz"
  expect_eq "a big snapshot within the bounds: accepted ($i)" "$CODE" 201
  shas+=("$(body_field snapshot)")
done
pids=()
for i in 0 1 2 3; do
  curl -sS -o "$WORK/create$i.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$(create_body "${shas[$i]}")" "$FERRY_SERVER/v1/executions" >"$WORK/create$i.code" &
  pids+=($!)
done
sleep 0.1
start=$(date +%s%N)
who=$(curl -sS --max-time 1 "$FERRY_SERVER/v1/whoami" 2>&1) || who="no answer within 1 s: $who"
ms=$((($(date +%s%N) - start) / 1000000))
expect_contains "whoami while step files are read" "$who" '"user"'
wait "${pids[@]}" # not ferryd
for i in 0 1 2 3; do
  expect_eq "create on a big snapshot ($i)" "$(cat "$WORK/create$i.code")" 201
done
echo "whoami answered in $ms ms"

# --- a bomb already in the store (stored before the bounds): read on the
# thread pool, under the bounds, while ferryd answers. 4 GiB of zeros as
# concatenated gzip members, one compressed block repeated: a few MB. ---
planted=$(python3 - "$WORK/planted.tgz" <<'EOF'
import hashlib, sys, tarfile, zlib
def gz(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()
yaml = b"- step:\n    name: hello\n    image: none\n    command: echo hello\n"
def header(name, size):
    ti = tarfile.TarInfo(name)
    ti.size = size
    return ti.tobuf(tarfile.GNU_FORMAT)
def pad(n):
    return b"\0" * (-n % 512)
chunk = 64 << 20
head = header("ferry.yaml", len(yaml)) + yaml + pad(len(yaml)) + header("zeros.bin", 64 * chunk)
tail = header("ferry.yaml", len(yaml)) + yaml + pad(len(yaml)) + b"\0" * 1024
body = gz(head) + gz(b"\0" * chunk) * 64 + gz(tail)
open(sys.argv[1], "wb").write(body)
print(hashlib.sha256(body).hexdigest())
EOF
)
cp "$WORK/planted.tgz" "$DATA/store/snapshots/$planted.tar.gz"
curl -sS -o "$WORK/planted.out" -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "$(create_body "$planted")" "$FERRY_SERVER/v1/executions" >"$WORK/planted.code" &
pid=$!
sleep 0.2
who=$(curl -sS --max-time 1 "$FERRY_SERVER/v1/whoami" 2>&1) || who="no answer within 1 s: $who"
expect_contains "whoami while a planted bomb is read" "$who" '"user"'
wait "$pid"
expect_eq "create on a planted bomb: refused" "$(cat "$WORK/planted.code")" 400
expect_contains "... naming the bound" "$(cat "$WORK/planted.out")" "compression ratio at most 200"

# --- the read is bounded too: the bound lowered under a stored snapshot ---
ferryd_stop
echo "max_snapshot_mb = 50;" >"$WORK/ferryd.conf"
ferryd_start -c "$WORK/ferryd.conf"
for n in 1 2; do
  code=$(curl -sS -o "$WORK/c.out" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$(create_body "${shas[0]}")" "$FERRY_SERVER/v1/executions")
  expect_eq "create past the bound ($n): refused" "$code" 400
  expect_contains "... naming it ($n)" "$(cat "$WORK/c.out")" "max_snapshot_mb = 50"
done
# Remembered: the second create did not scan the snapshot again.
scans=$(grep -c "snapshot ${shas[0]}: the archive expands" "$FERRYD_LOG" || true)
expect_eq "a snapshot past the bound is read once" "$scans" 1

finish
