#!/usr/bin/env bash
# TLS: with tls = { cert; key; } ferryd serves HTTPS. The CLI verifies it
# (--ca / FERRY_CA, else the system store: a private CA fails with a clear
# message and exit 4); local agents verify it with the CA ferryd hands them
# (tls.ca, else the certificate itself), and blob URLs are https too. Plain
# HTTP to the TLS port gets nothing. Bad certificate or key files stop ferryd
# with a message naming the file; beyond loopback ferryd needs tls (and
# users); public_url sets the URL agents are given. Config mistakes in tls
# name the file and the line.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"

FERRYD=$BIN/ferryd
T_ALICE="alice-$$-$RANDOM"
P=$WORK/pki
mkdir -p "$P"

# --- a private CA, a server certificate for localhost and 127.0.0.1 ---
ossl() { openssl "$@" 2>>"$WORK/openssl.log"; }
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" -days 2 \
  -subj "/CN=ferry test CA"
ossl req -newkey rsa:2048 -nodes -keyout "$P/server.key" -out "$P/server.csr" -subj "/CN=localhost"
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
  "extendedKeyUsage=serverAuth" >"$P/ext.cnf"
ossl x509 -req -in "$P/server.csr" -CA "$P/ca.pem" -CAkey "$P/ca.key" -CAcreateserial \
  -out "$P/server.pem" -days 2 -extfile "$P/ext.cnf"
# A self-signed one (its own CA), and a key that belongs to neither.
ossl req -x509 -newkey rsa:2048 -nodes -keyout "$P/self.key" -out "$P/self.pem" -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$P/other.key"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-256-cbc -pass pass:secret-pw \
  -out "$P/locked.key"
printf 'this is not a key\n' >"$P/garbage.key"

users="users = ( { name = \"alice\"; token_sha256 = \"$(sha256_of "$T_ALICE")\"; } );"
conf() { # conf NAME < body: a config file, its path printed
  cat >"$WORK/$1.conf"
  echo "$WORK/$1.conf"
}

# Run the CLI as alice; sets RC, OUT (stdout) and ERR (stderr).
cli() {
  RC=0
  OUT=$(FERRY_TOKEN=$T_ALICE "$FERRY" "$@" 2>"$WORK/err") || RC=$?
  ERR=$(cat "$WORK/err")
}

proj=$(make_project tls <<'EOF'
- step:
    name: write
    image: none
    command:
      - echo "hello over tls"
      - cp random.bin "$FERRY_OUTPUTS_DIR/random.bin"
      - echo "model v1" > "$FERRY_OUTPUTS_DIR/model.txt"
EOF
)
head -c 2097152 /dev/urandom >"$proj/random.bin"

# One execution end to end: snapshot up, agent in, log and outputs back.
run_through() { # run_through WHAT CLI-ARGS...
  local what=$1 id rc=0
  shift
  id=$(cd "$proj" && FERRY_TOKEN=$T_ALICE "$FERRY" "$@" run write --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') || true
  if [ -z "$id" ]; then
    fail "$what: ferry run did not create an execution"
    return
  fi
  FERRY_TOKEN=$T_ALICE "$FERRY" "$@" wait "$id" --timeout 60 >/dev/null || rc=$?
  expect_eq "$what: the execution completes" "$rc" 0
  cli "$@" logs "$id"
  expect_contains "$what: its log comes back" "$OUT" "hello over tls"
  rm -rf "$WORK/got"
  cli "$@" outputs "$id" --download "$WORK/got"
  expect_eq "$what: outputs download" "$RC" 0
  if cmp -s "$proj/random.bin" "$WORK/got/random.bin"; then pass; else
    fail "$what: the 2 MiB output differs after the round trip"
  fi
  expect_eq "$what: a small output" "$(cat "$WORK/got/model.txt" 2>/dev/null)" "model v1"
}

# --- ferryd with a CA-signed certificate; agents trust tls.ca ---
f=$(conf good <<EOF
$users
tls = { cert = "$P/server.pem"; key = "$P/server.key"; ca = "$P/ca.pem"; };
environments = ( { name = "local"; compute = "local"; max_workers = 2; } );
EOF
)
ferryd_start -c "$f"
expect_contains "ferryd says it serves https" "$FERRY_SERVER" "https://127.0.0.1:"
port=${FERRY_SERVER##*:}
cli --ca "$P/ca.pem" whoami
expect_eq "whoami with --ca" "$OUT" alice
RC=0
OUT=$(FERRY_CA=$P/ca.pem FERRY_TOKEN=$T_ALICE "$FERRY" whoami 2>&1) || RC=$?
expect_eq "whoami with FERRY_CA" "$OUT" alice
cli --server "https://localhost:$port" --ca "$P/ca.pem" whoami
expect_eq "the certificate names localhost too" "$OUT" alice
run_through "https with --ca" --ca "$P/ca.pem"
# Agents registered over https and fetched their snapshot from https blob URLs.
log=$(cat "$FERRYD_LOG")
expect_contains "an agent registered over https" "$log" "registered with https://127.0.0.1:$port"
expect_not_contains "no agent failed to verify ferryd" "$log" "certificate"
expect_not_contains "the key never reaches the log" "$log" "PRIVATE KEY"

# HTTP/1.1 still works over TLS (ALPN offers h2 and http/1.1).
got=$(curl -sS --http1.1 --cacert "$P/ca.pem" -H "Authorization: Bearer $T_ALICE" \
  "$FERRY_SERVER/v1/whoami" 2>&1 || true)
expect_contains "HTTP/1.1 over TLS" "$got" '"alice"'
got=$(curl -sS -o /dev/null -w '%{http_version}' --cacert "$P/ca.pem" \
  -H "Authorization: Bearer $T_ALICE" "$FERRY_SERVER/v1/whoami" 2>&1 || true)
expect_eq "HTTP/2 over TLS (ALPN h2)" "$got" 2
got=$(curl -sS -o /dev/null -w '%{http_code}' --tls-max 1.1 --cacert "$P/ca.pem" \
  "$FERRY_SERVER/v1/whoami" 2>&1 || true)
expect_not_contains "TLS 1.1 is refused" "$got" 200

# --- the CLI without the CA: the system store does not know it ---
cli whoami
expect_eq "no --ca: exit 4" "$RC" 4
expect_contains "no --ca: says the certificate cannot be verified" "$ERR" \
  "cannot verify ferryd's certificate at $FERRY_SERVER"
expect_contains "no --ca: tells what to do" "$ERR" "pass --ca FILE or set FERRY_CA"
cli --ca "$P/self.pem" whoami
expect_eq "the wrong CA: exit 4" "$RC" 4
expect_contains "the wrong CA: says so" "$ERR" "cannot verify ferryd's certificate"
cli --ca "$WORK/nowhere.pem" whoami
expect_eq "a missing CA file: usage error" "$RC" 2
expect_contains "a missing CA file: names it" "$ERR" "$WORK/nowhere.pem"
cli --server "https://127.0.0.2:$port" --ca "$P/ca.pem" whoami
expect_eq "a host the certificate does not name: exit 4" "$RC" 4

# --- plain HTTP to the TLS port gets no answer ---
cli --server "http://127.0.0.1:$port" whoami
expect_eq "http:// to the TLS port: exit 4" "$RC" 4
expect_contains "http:// to the TLS port: hints at https" "$ERR" "https://"
got=$(curl -sS "http://127.0.0.1:$port/v1/whoami" 2>&1 || true)
expect_not_contains "curl http:// gets no API answer" "$got" "alice"
ferryd_stop

# --- a self-signed certificate and no tls.ca: agents trust the certificate ---
f=$(conf self <<EOF
$users
tls = { cert = "$P/self.pem"; key = "$P/self.key"; };
EOF
)
ferryd_start -c "$f"
run_through "self-signed, agents given the certificate" --ca "$P/self.pem"
ferryd_stop

# --- beyond loopback: tls (and users) needed; agents get a reachable URL ---
refused() { # refused ARGS...: sets RC and OUT
  RC=0
  OUT=$(timeout 10 "$FERRYD" --data-dir "$WORK/x" "$@" 2>&1 </dev/null) || RC=$?
}
f=$(conf plain <<EOF
$users
EOF
)
refused -c "$f" --listen 0.0.0.0:0
expect_eq "0.0.0.0 without tls: refused" "$RC" 2
expect_contains "0.0.0.0 without tls: names the address" "$OUT" "0.0.0.0"
expect_contains "0.0.0.0 without tls: says why" "$OUT" "clear text"
expect_contains "0.0.0.0 without tls: names the setting" "$OUT" "tls"
expect_not_contains "0.0.0.0 without tls: not started" "$OUT" "listening on"
refused -c "$f" --listen '[::]:0'
expect_eq "[::] without tls: refused" "$RC" 2
expect_contains "[::] without tls: says why" "$OUT" "clear text"
f=$(conf notusers <<EOF
tls = { cert = "$P/server.pem"; key = "$P/server.key"; };
EOF
)
refused -c "$f" --listen 0.0.0.0:0
expect_eq "0.0.0.0 with tls, no users: refused" "$RC" 2
expect_contains "0.0.0.0 with tls, no users: says users are needed" "$OUT" "no users"
f=$(conf wild <<EOF
$users
tls = { cert = "$P/server.pem"; key = "$P/server.key"; ca = "$P/ca.pem"; };
EOF
)
ferryd_start -c "$f" --listen 0.0.0.0:0
expect_contains "0.0.0.0 with tls and users: serves" "$FERRY_SERVER" "https://0.0.0.0:"
port=${FERRY_SERVER##*:}
expect_contains "0.0.0.0: agents are given loopback" "$(cat "$FERRYD_LOG")" \
  "agents use https://127.0.0.1:$port"
cli --server "https://127.0.0.1:$port" --ca "$P/ca.pem" whoami
expect_eq "whoami on the 0.0.0.0 ferryd" "$OUT" alice
ferryd_stop

# --- public_url: the URL agents are given and blob URLs start with ---
free=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
f=$(conf public <<EOF
$users
public_url = "https://localhost:$free/";
tls = { cert = "$P/server.pem"; key = "$P/server.key"; ca = "$P/ca.pem"; };
EOF
)
ferryd_start -c "$f" --listen "127.0.0.1:$free"
expect_contains "public_url: the log says agents use it" "$(cat "$FERRYD_LOG")" \
  "agents use https://localhost:$free;"
run_through "public_url" --ca "$P/ca.pem"
expect_contains "public_url: agents registered with it" "$(cat "$FERRYD_LOG")" \
  "registered with https://localhost:$free"
ferryd_stop

# --- bad certificate and key files stop ferryd, naming the file ---
bad_tls() { # bad_tls CERT KEY: sets RC and OUT
  f=$(conf badtls <<EOF
tls = { cert = "$1"; key = "$2"; };
EOF
  )
  refused -c "$f" --listen 127.0.0.1:0
}
bad_tls "$P/server.pem" "$P/garbage.key"
expect_eq "a garbage key: ferryd exits 1" "$RC" 1
expect_contains "a garbage key: names the file" "$OUT" "TLS key $P/garbage.key"
expect_not_contains "a garbage key: not started" "$OUT" "listening on"
expect_not_contains "a garbage key: its content is not shown" "$OUT" "this is not a key"
bad_tls "$P/server.pem" "$P/other.key"
expect_eq "a key of another certificate: exits 1" "$RC" 1
expect_contains "a key of another certificate: says so" "$OUT" "does not belong to the certificate"
bad_tls "$P/server.pem" "$P/locked.key"
expect_eq "a passphrase-protected key: exits 1" "$RC" 1
expect_contains "a passphrase-protected key: says so" "$OUT" "passphrase"
bad_tls "$P/server.key" "$P/server.key"
expect_eq "a key as the certificate: exits 1" "$RC" 1
expect_contains "a key as the certificate: names the file" "$OUT" "TLS certificate $P/server.key"
bad_tls "$WORK/missing.pem" "$P/server.key"
expect_eq "a missing certificate: exits 1" "$RC" 1
expect_contains "a missing certificate: names it and why" "$OUT" \
  "$WORK/missing.pem: No such file or directory"
f=$(conf badca <<EOF
tls = { cert = "$P/server.pem"; key = "$P/server.key"; ca = "$WORK/no-ca.pem"; };
EOF
)
refused -c "$f" --listen 127.0.0.1:0
expect_eq "a missing tls.ca: exits 1" "$RC" 1
expect_contains "a missing tls.ca: names it" "$OUT" "tls.ca) $WORK/no-ca.pem"

# --- config mistakes in tls and public_url name the file and the line ---
config_error() { # config_error WHAT LINE NEEDLE < config
  f=$(conf cfgerr)
  refused -c "$f" --listen 127.0.0.1:0
  expect_eq "$1: exit 2" "$RC" 2
  expect_contains "$1: file:line" "$OUT" "$f:$2"
  expect_contains "$1: the message" "$OUT" "$3"
}
config_error "tls without key" 2 "setting 'tls.key': is missing" <<EOF
# comment
tls = { cert = "$P/server.pem"; };
EOF
config_error "tls without cert" 1 "setting 'tls.cert': is missing" <<EOF
tls = { key = "$P/server.key"; };
EOF
config_error "an unknown tls setting" 3 "setting 'tls.chain': unknown TLS setting (known: cert, key, ca)" <<EOF
tls = { cert = "$P/server.pem";
        key = "$P/server.key";
        chain = "x"; };
EOF
config_error "tls not a group" 1 "setting 'tls': expected a group" <<EOF
tls = "$P/server.pem";
EOF
config_error "an empty tls.key" 1 "setting 'tls.key': is empty" <<EOF
tls = { cert = "$P/server.pem"; key = ""; };
EOF
config_error "tls.cert a number" 1 "setting 'tls.cert': expected a string" <<EOF
tls = { cert = 5; key = "$P/server.key"; };
EOF
config_error "public_url not a URL" 2 "setting 'public_url': expected a base URL" <<EOF

public_url = "ferry.example.com:8470";
EOF
config_error "an unknown setting lists tls" 1 "public_url, tls" <<EOF
tsl = { cert = "x"; key = "y"; };
EOF
f=$(conf cfgerr <<EOF
public_url = "http://localhost:8470";
tls = { cert = "$P/server.pem"; key = "$P/server.key"; };
EOF
)
refused -c "$f" --listen 127.0.0.1:0
expect_eq "http:// public_url with tls: exit 2" "$RC" 2
expect_contains "http:// public_url with tls: says https" "$OUT" "setting 'public_url'"

finish
