#!/usr/bin/env bash
# Request bodies are limited before they are read (issue 25, #3): a large
# body is taken only by a snapshot upload or a blob PUT whose token or
# signature the headers carry; every other request, and those without
# credentials, is refused at its headers (413) without ferryd reading or
# spooling the body. A large snapshot with a valid token still uploads, and
# only 8 large bodies are read at once (the next one: 503, Retry-After).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

T_ALICE="alice-$$-$RANDOM"
cat >"$WORK/ferryd.conf" <<EOF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
environments = ( { name = "local"; compute = "local"; max_workers = 1; } );
max_snapshot_mb = 100;
EOF
ferryd_start -c "$WORK/ferryd.conf"
BIG=200000000

# The most ferryd holds in files while a body comes in: its data/tmp folder
# and the files it has open (h2o spools a body to an unlinked file in /tmp).
spooled() {
  local n=0 f s
  for f in /proc/"$FERRYD_PID"/fd/*; do
    [ -f "$f" ] || continue
    s=$(stat -L -c %s "$f" 2>/dev/null || echo 0)
    n=$((n + s))
  done
  s=$(du -sb "$DATA/tmp" 2>/dev/null | cut -f1 || true)
  echo $((n + ${s:-0}))
}

# big_post METHOD PATH [CURL ARGS...]: streams $BIG zero bytes as the body
# (no Expect: 100-continue, so the body is sent at once); prints
# "<status> <bytes sent> <most spooled>".
big_post() {
  local method=$1 path=$2 most=0 now pid
  shift 2
  { head -c "$BIG" /dev/zero || true; } |
    curl -s -o "$WORK/reply" -w '%{http_code} %{size_upload}' --max-time 30 -X "$method" \
      -H "Content-Length: $BIG" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
      -T - "$@" "$FERRY_SERVER$path" >"$WORK/curl.out" 2>/dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    now=$(spooled)
    [ "$now" -gt "$most" ] && most=$now
    sleep 0.02
  done
  wait "$pid" || true
  echo "$(cat "$WORK/curl.out") $most"
}

check_refused() { # check_refused WHAT METHOD PATH [CURL ARGS...]
  local what=$1 start out code sent most
  shift
  start=$(date +%s)
  out=$(big_post "$@")
  read -r code sent most <<<"$out"
  case "$code" in 401 | 403 | 413 | 000) pass ;; *) fail "$what: status $code, expected 401/403/413" ;; esac
  [ "$((sent))" -lt 64000000 ] && pass || fail "$what: ferryd read $sent of $BIG bytes before answering"
  [ "$most" -lt 8000000 ] && pass || fail "$what: ferryd spooled $most bytes"
  [ "$(($(date +%s) - start))" -le 10 ] && pass || fail "$what: took $(($(date +%s) - start)) s"
}

check_refused "snapshot without a token" POST /v1/snapshots
check_refused "snapshot with a wrong token" POST /v1/snapshots -H "Authorization: Bearer nope"
check_refused "execution without a token" POST /v1/executions
check_refused "execution with a valid token" POST /v1/executions -H "Authorization: Bearer $T_ALICE"
check_refused "blob PUT without a signature" PUT /v1/blobs/outputs/x/y
check_refused "blob PUT with a bad signature" PUT "/v1/blobs/outputs/x/y?expires=99999999999&sig=00"
check_refused "agent poll" POST /v1/agent/poll
check_refused "web page" POST /index.html

# The same refusal when the client may wait for 100 Continue: ferryd
# answers at the head and does not read the body. (h2o 2.2 may have sent
# its "100 Continue" already when the 413 closes the connection; curl then
# reports 100 as the last code: what counts is that the body stays unread.)
out=$({ head -c "$BIG" /dev/zero || true; } | curl -s -o /dev/null -w '%{http_code} %{size_upload}' \
  --max-time 30 -X POST -H "Content-Length: $BIG" -T - "$FERRY_SERVER/v1/snapshots" || true)
read -r code sent <<<"$out"
case "$code" in 413 | 100) pass ;; *) fail "100-continue without a token: status $code, expected 413" ;; esac
[ "$((sent))" -lt 64000000 ] && pass || fail "100-continue without a token: $sent bytes sent"

# ferryd still answers, and a small JSON body is read as before.
out=$(curl -s -H "Authorization: Bearer $T_ALICE" "$FERRY_SERVER/v1/whoami")
expect_contains "whoami after the refusals" "$out" '"alice"'
out=$(curl -s -X POST -d '{}' "$FERRY_SERVER/v1/executions")
expect_contains "small body without a token" "$out" "requires a token"

# A snapshot body larger than it may expand to (max_snapshot_mb) is refused
# at its headers, token or not.
check_refused "snapshot over max_snapshot_mb with a valid token" POST /v1/snapshots \
  -H "Authorization: Bearer $T_ALICE"

# A large snapshot with a valid token is read whole and stored.
mkdir -p "$WORK/snap"
head -c 12000000 /dev/urandom >"$WORK/snap/blob.bin"
tar -czf "$WORK/snap.tar.gz" -C "$WORK/snap" blob.bin
size=$(stat -c %s "$WORK/snap.tar.gz")
out=$(curl -s -o "$WORK/reply" -w '%{http_code} %{size_upload}' -X POST \
  -H "Authorization: Bearer $T_ALICE" -H 'Content-Type: application/gzip' \
  --data-binary @"$WORK/snap.tar.gz" "$FERRY_SERVER/v1/snapshots")
expect_eq "large snapshot with a valid token" "$out" "201 $size"
expect_contains "its reply" "$(cat "$WORK/reply")" "$(sha256sum "$WORK/snap.tar.gz" | cut -d' ' -f1)"
# The same, chunked (no Content-Length).
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $T_ALICE" \
  -H 'Transfer-Encoding: chunked' -T - "$FERRY_SERVER/v1/snapshots" <"$WORK/snap.tar.gz")
expect_eq "chunked large snapshot with a valid token" "$out" "201"
# Chunked without a token: cut at the small limit.
out=$(big_post POST /v1/executions -H 'Transfer-Encoding: chunked')
read -r code sent most <<<"$out"
[ "$most" -lt 16000000 ] && pass || fail "chunked without a token: ferryd spooled $most bytes"

# At most 8 large bodies at once: eight slow uploads hold the slots, the
# ninth is told to come back later.
slow=()
for i in 1 2 3 4 5 6 7 8; do
  { head -c 50000000 /dev/zero || true; } | curl -s -o /dev/null --limit-rate 200k --max-time 6 -X POST \
    -H "Authorization: Bearer $T_ALICE" -H 'Content-Length: 50000000' -H 'Expect:' \
    -T - "$FERRY_SERVER/v1/snapshots" &
  slow+=($!)
done
sleep 1
out=$({ head -c 50000000 /dev/zero || true; } | curl -s -D "$WORK/headers" -o "$WORK/reply" -w '%{http_code}' \
  --max-time 10 -X POST -H "Authorization: Bearer $T_ALICE" -H 'Content-Length: 50000000' \
  -T - "$FERRY_SERVER/v1/snapshots" || true)
expect_eq "a ninth large body" "$out" "503"
expect_contains "its Retry-After" "$(cat "$WORK/headers")" "Retry-After:"
expect_contains "its reason" "$(cat "$WORK/reply")" "too many uploads"
for p in "${slow[@]}"; do wait "$p" 2>/dev/null || true; done
# The slots come back when those connections go.
sleep 0.5
out=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $T_ALICE" \
  --data-binary @"$WORK/snap.tar.gz" "$FERRY_SERVER/v1/snapshots")
expect_eq "a large body after the slow ones" "$out" "201"

# --- the same over TLS: HTTP/1.1 as above; HTTP/2 never takes a large body
# (h2o decodes its head), whatever its token ---
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
  2>>"$WORK/openssl.log"
echo "tls = { cert = \"$WORK/cert.pem\"; key = \"$WORK/key.pem\"; };" >>"$WORK/ferryd.conf"
ferryd_stop
ferryd_start -c "$WORK/ferryd.conf"
expect_contains "ferryd serves https" "$FERRY_SERVER" "https://"
check_refused "https: snapshot without a token" POST /v1/snapshots -k --http1.1
check_refused "https: execution with a valid token" POST /v1/executions -k --http1.1 \
  -H "Authorization: Bearer $T_ALICE"
check_refused "h2: snapshot without a token" POST /v1/snapshots -k --http2
check_refused "h2: snapshot with a valid token" POST /v1/snapshots -k --http2 \
  -H "Authorization: Bearer $T_ALICE"
out=$(curl -sk -o /dev/null -w '%{http_code} %{http_version}' -X POST \
  -H "Authorization: Bearer $T_ALICE" --data-binary @"$WORK/snap.tar.gz" \
  --http1.1 "$FERRY_SERVER/v1/snapshots")
expect_eq "https: large snapshot with a valid token" "$out" "201 1.1"
out=$(curl -sk -w '%{http_version}' -H "Authorization: Bearer $T_ALICE" "$FERRY_SERVER/v1/whoami")
expect_contains "h2 still answers" "$out" '"alice"'
expect_eq "h2 still answers: over h2" "${out##*$'\n'}" 2

finish
