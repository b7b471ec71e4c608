#!/usr/bin/env bash
# ferryd's configuration: --help, the embedded defaults, config file errors
# that name file, line and setting, the loopback rule, environments (the
# default one, the step's, -e) and a compute plugin that is not there.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FERRYD=$BIN/ferryd

# Run a ferryd that is expected to refuse to start; sets RC and OUT. A
# ferryd that starts anyway is ended by the timeout (RC 124).
refused() { # refused ARGS...
  RC=0
  OUT=$(timeout 5 "$FERRYD" "$@" 2>&1 </dev/null) || RC=$?
}

expect_refused() { # expect_refused WHAT: RC is a failure of ferryd's own
  if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then pass; else fail "$1: exit status $RC; output: $OUT"; fi
  expect_not_contains "$1: not started" "$OUT" "listening on"
  expect_not_contains "$1: the program name once" "$OUT" "ferryd: ferryd:"
}

conf() { # conf NAME < text: a config file under $WORK
  cat >"$WORK/$1.conf"
  echo "$WORK/$1.conf"
}

# --- --help ---
RC=0
OUT=$("$FERRYD" --help 2>&1) || RC=$?
expect_eq "ferryd --help exits 0" "$RC" 0
expect_contains "--help shows the usage" "$OUT" "usage: ferryd"
expect_contains "--help names the default port" "$OUT" "127.0.0.1:8470"
expect_contains "--help names FERRY_DATA_DIR" "$OUT" "FERRY_DATA_DIR"
for opt in -c --data-dir --listen --plugin-dir; do
  expect_contains "--help names $opt" "$OUT" "$opt"
done
RC=0
OUT=$("$FERRYD" --version 2>&1) || RC=$?
expect_eq "ferryd --version exits 0" "$RC" 0
expect_contains "--version" "$OUT" "ferryd "

# --- command-line mistakes ---
refused --no-such-flag
expect_refused "an unknown flag"
expect_contains "an unknown flag: usage" "$OUT" "usage: ferryd"
refused extra-argument
expect_refused "an extra argument"
expect_contains "an extra argument: names it" "$OUT" "extra-argument"
refused --data-dir "$WORK/x" --listen 127.0.0.1:0 --log-level chatty
expect_refused "an unknown log level"
expect_contains "an unknown log level: names it" "$OUT" "chatty"

# --- the loopback rule and --listen ---
refused --data-dir "$WORK/x" --listen 0.0.0.0:18471
expect_refused "--listen 0.0.0.0 with no users"
expect_contains "--listen 0.0.0.0: names the address" "$OUT" "0.0.0.0"
expect_contains "--listen 0.0.0.0: names loopback" "$OUT" "loopback"
refused --data-dir "$WORK/x" --listen '[::]:18471'
expect_refused "--listen [::] with no users"
expect_contains "--listen [::]: names loopback" "$OUT" "loopback"
refused --data-dir "$WORK/x" --listen garbage
expect_refused "--listen garbage"
expect_contains "--listen garbage: names the flag" "$OUT" "--listen"
expect_contains "--listen garbage: names the value" "$OUT" "garbage"
expect_contains "--listen garbage: says what is expected" "$OUT" "HOST:PORT"
refused --data-dir "$WORK/x" --listen 127.0.0.1:99999
expect_refused "--listen with port 99999"
expect_contains "--listen 99999: names the value" "$OUT" "99999"
refused --data-dir "$WORK/x" --listen 127.0.0.1:
expect_refused "--listen with no port"

# --- config file errors name the file, the line and the setting ---
f=$(conf syntax <<'EOF'
data_dir = "/tmp/x";
listen = "127.0.0.1:0"
environments = ( { name = "local" } ;
EOF
)
refused -c "$f"
expect_refused "a syntax error"
expect_contains "a syntax error: file:line" "$OUT" "$f:3"

f=$(conf unknown <<'EOF'
listen = "127.0.0.1:0";

max_wrokers = 4;
EOF
)
refused -c "$f"
expect_refused "an unknown setting"
expect_contains "an unknown setting: file:line" "$OUT" "$f:3"
expect_contains "an unknown setting: names it" "$OUT" "max_wrokers"

f=$(conf wrongtype <<'EOF'
# a number, not "HOST:PORT"
listen = 5;
EOF
)
refused -c "$f"
expect_refused "listen = 5"
expect_contains "listen = 5: file:line" "$OUT" "$f:2"
expect_contains "listen = 5: names the setting" "$OUT" "listen"
expect_contains "listen = 5: says a string is expected" "$OUT" "string"

# @include of a folder (libconfig's scanner used to exit() with only "input
# in flex scanner failed"), of a missing file, and of a folder from an
# included file: each error names the file and line of the @include.
mkdir -p "$WORK/confdir"
f=$(conf incdir <<EOF
listen = "127.0.0.1:0";
/* @include "$WORK/confdir" in a comment is not read */
@include "$WORK/confdir"
EOF
)
refused -c "$f" --data-dir "$WORK/x"
expect_refused "@include of a folder"
expect_contains "@include of a folder: file:line" "$OUT" "$f:3"
expect_contains "@include of a folder: names it" "$OUT" "'$WORK/confdir'"
expect_contains "@include of a folder: says why" "$OUT" "folder"
expect_not_contains "@include of a folder: not libconfig's exit" "$OUT" "flex scanner"
f=$(conf incmissing <<EOF
@include "$WORK/no-such.conf"
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "@include of a missing file"
expect_contains "@include of a missing file: file:line and name" "$OUT" \
  "$f:1: cannot include '$WORK/no-such.conf'"
inner=$(conf incinner <<EOF
# included
  @include "$WORK/confdir"
EOF
)
f=$(conf incouter <<EOF
@include "$inner"
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a nested @include of a folder"
expect_contains "a nested @include of a folder: the inner file:line" "$OUT" \
  "$inner:2: cannot include '$WORK/confdir'"

# A NUL byte inside an @include's path (found by fuzz_config): libconfig
# would read "." and exit() from its scanner; refused naming file and line.
f=$WORK/nul.conf
printf 'r = 1;\n@include ".\000\000worke\377e"\n' >"$f"
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a NUL byte in the file"
expect_contains "a NUL byte: file:line" "$OUT" "$f:2: a NUL byte"
expect_not_contains "a NUL byte: not libconfig's exit" "$OUT" "flex scanner"

f=$(conf badint <<'EOF'
environments = ( { name = "local"; compute = "local";
                   max_workers = "four"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "max_workers = \"four\""
expect_contains "max_workers = \"four\": file:line" "$OUT" "$f:2"
expect_contains "max_workers = \"four\": names the setting" "$OUT" "max_workers"

f=$(conf envtypo <<'EOF'
environments = ( { name = "local"; compute = "local";
                   max_worker = 2; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a setting the compute plugin does not read"
expect_contains "env typo: file:line" "$OUT" "$f:2"
expect_contains "env typo: names the setting" "$OUT" "max_worker"
expect_contains "env typo: names the plugin" "$OUT" "compute plugin 'local'"

f=$(conf storetypo <<'EOF'
store = { plugin = "local-storage"; pth = "/tmp/x"; };
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a store setting the store plugin does not read"
expect_contains "store typo: file:line" "$OUT" "$f:1"
expect_contains "store typo: names the setting" "$OUT" "'pth'"
expect_contains "store typo: says what it reads" "$OUT" "it reads: path"

f=$(conf noruntime <<'EOF'
environments = ( { name = "local"; compute = "local"; runtime = "nosuch"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a runtime plugin that does not exist"
expect_contains "unknown runtime: names it" "$OUT" "runtime plugin named 'nosuch'"

f=$(conf nodefault <<'EOF'
default_environment = "nowhere";
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "default_environment naming no environment"
expect_contains "default_environment: names the setting" "$OUT" "default_environment"
expect_contains "default_environment: names the value" "$OUT" "nowhere"

f=$(conf twice <<'EOF'
environments = ( { name = "a"; compute = "local"; },
                 { name = "a"; compute = "local"; } );
default_environment = "a";
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "an environment name used twice"
expect_contains "an environment name used twice: names it" "$OUT" "used twice"

f=$(conf minmax <<'EOF'
environments = ( { name = "local"; compute = "local"; min_workers = 3; max_workers = 1; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "min_workers > max_workers"
expect_contains "min_workers > max_workers: names them" "$OUT" "max_workers"

refused -c "$WORK/no-such.conf"
expect_refused "a config file that does not exist"
expect_contains "a missing config file: names it" "$OUT" "$WORK/no-such.conf"

f=$(conf loopback <<'EOF'
listen = "0.0.0.0:18471";
EOF
)
refused -c "$f" --data-dir "$WORK/x"
expect_refused "listen = 0.0.0.0 in the file"
expect_contains "listen = 0.0.0.0 in the file: names loopback" "$OUT" "loopback"

# --- a compute plugin that is not there ---
f=$(conf noplugin <<'EOF'
environments = ( { name = "local"; compute = "local"; },
                 { name = "gpu-farm"; compute = "no-such-cloud"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a missing compute plugin"
expect_contains "a missing compute plugin: names the environment" "$OUT" "gpu-farm"
expect_contains "a missing compute plugin: names the plugin" "$OUT" "no-such-cloud"

# --- runtime plugins: a missing one, and their settings in the block ---
f=$(conf noruntime <<'EOF'
environments = ( { name = "onprem"; compute = "static"; runtime = "local-dokcer";
                   join_token_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"; } );
default_environment = "onprem";
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a missing runtime plugin"
expect_contains "a missing runtime plugin: names it" "$OUT" \
  "environment 'onprem': no runtime plugin named 'local-dokcer'"
f=$(conf rtsetting <<'EOF'
environments = ( { name = "local"; compute = "local"; runtime = "local-process";
                   docker_sokcet = "/run/docker.sock"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a setting neither plugin reads"
expect_contains "a setting neither plugin reads: file, line and name" "$OUT" \
  "$f:2: environment 'local': setting 'docker_sokcet' is not known"

# --- registries: credentials for image pulls ---
f=$(conf regbad <<'EOF'
registries = ( { server = "https://registry.example:5000"; username = "u"; password = "p"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a registry given as a URL"
expect_contains "a registry given as a URL: says what to write" "$OUT" \
  "$f:1: setting 'server': a registry needs server = \"HOST[:PORT]\""
f=$(conf regnopw <<'EOF'
registries = ( { server = "registry.example:5000"; username = "u"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a registry without a password"
expect_contains "a registry without a password: names it" "$OUT" "setting 'password': is missing"
f=$(conf regtypo <<'EOF'
registries = ( { server = "registry.example:5000"; user = "u"; password = "p"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a registry setting misspelt"
expect_contains "a registry setting misspelt: names the known ones" "$OUT" \
  "setting 'user': unknown setting of a registry (known: server, username, password)"

# --- projects: git repositories ---
f=$(conf projtypo <<'EOF'
projects = ( { name = "mnist"; repo = "https://git.example/ml/mnist.git"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a project setting misspelt"
expect_contains "a project setting misspelt: file, line, name" "$OUT" \
  "$f:1: setting 'repo': unknown setting of a project (known: name, repository,"
f=$(conf projtwice <<'EOF'
projects = ( { name = "mnist"; },
             { name = "mnist"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a project named twice"
expect_contains "a project named twice: names it" "$OUT" "$f:2: setting 'name': project named twice"
f=$(conf projkey <<'EOF'
projects = ( { name = "mnist"; repository = "ssh://git@git.example/ml/mnist.git";
               ssh_key = "/no/such/deploy-key"; } );
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a project's key file missing"
expect_contains "a project's key file missing: file, project, line, setting" "$OUT" \
  "$f: project 'mnist' (line 1): setting 'ssh_key': cannot read /no/such/deploy-key"

f=$(conf nostore <<'EOF'
store = { plugin = "no-such-store"; };
EOF
)
refused -c "$f" --data-dir "$WORK/x" --listen 127.0.0.1:0
expect_refused "a missing store plugin"
expect_contains "a missing store plugin: names it" "$OUT" "no-such-store"

# None of the refused starts left anything running.
expect_eq "no ferryd left from the refused starts" "$(pgrep -f -- "$FERRYD .*$WORK" || true)" ""

# --- no config file: the embedded defaults, with FERRY_DATA_DIR ---
# Like ferryd_start (--retire-workers too), but without --data-dir: the state
# goes to $FERRY_DATA_DIR.
mkdir -p "$DATA"
FERRY_DATA_DIR=$DATA "$FERRYD" --listen 127.0.0.1:0 --retire-workers >>"$FERRYD_LOG" 2>&1 &
FERRYD_PID=$!
url=
for _ in $(seq 100); do
  url=$(sed -n "s/.*ferryd\[$FERRYD_PID\].*listening on \(http:[^ ]*\).*/\1/p" "$FERRYD_LOG" | tail -n 1)
  [ -n "$url" ] && break
  kill -0 "$FERRYD_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$url" ] || {
  cat "$FERRYD_LOG"
  exit 1
}
export FERRY_SERVER=$url
expect_contains "defaults: the data dir is \$FERRY_DATA_DIR" "$(cat "$FERRYD_LOG")" "data in $DATA"
expect_eq "defaults: ferry.db is in \$FERRY_DATA_DIR" "$([ -f "$DATA/ferry.db" ] && echo yes || echo no)" yes

P=$(make_project envs <<EOF
- step:
    name: where
    image: none
    command: echo "running in \$PWD"
- step:
    name: pinned
    image: none
    environment: local
    command: echo "running in \$PWD"
EOF
)
id=$(run_id "$P" where)
rc=0
"$FERRY" wait "$id" --timeout 20 >/dev/null || rc=$?
expect_eq "defaults: a run completes" "$rc" 0
expect_eq "defaults: it ran on 'local'" "$(json_field "$id" 'e["environment"]')" local
expect_contains "defaults: its worker lives under the data dir" "$("$FERRY" logs "$id" 2>/dev/null)" "running in $DATA/workers/"
# ferryd on the embedded defaults knows only 'local'.
RC=0
OUT=$(cd "$P" && "$FERRY" run where -e gpu 2>&1) || RC=$?
expect_eq "defaults: -e gpu is refused" "$RC" 5
expect_contains "defaults: -e gpu names the known environments" "$OUT" "known: local"
ferryd_stop
mv "$FERRYD_LOG" "$FERRYD_LOG.defaults"

# --- two environments; default_environment picks the second ---
# The second one's workers live in their own folder (still under $DATA, so
# that the harness cleans them up), which shows where a command ran.
f=$(conf twoenvs <<EOF
data_dir = "$WORK/file-data-dir";
default_environment = "second";
environments = (
  { name = "local"; compute = "local"; max_workers = 1; },
  { name = "second"; compute = "local"; runtime = "local-process"; max_workers = 1;
    idle_timeout = 60; work_dir = "$DATA/second-workers"; }
);
EOF
)
ferryd_start -c "$f"
id=$(run_id "$P" where)
rc=0
"$FERRY" wait "$id" --timeout 20 >/dev/null || rc=$?
expect_eq "default_environment: the run completes" "$rc" 0
expect_eq "default_environment: it went to 'second'" "$(json_field "$id" 'e["environment"]')" second
expect_contains "default_environment: a worker of 'second' ran it" "$("$FERRY" logs "$id" 2>/dev/null)" \
  "running in $DATA/second-workers/"

id=$(run_id "$P" where -e local)
rc=0
"$FERRY" wait "$id" --timeout 20 >/dev/null || rc=$?
expect_eq "-e local: the run completes" "$rc" 0
expect_eq "-e local: it went to 'local'" "$(json_field "$id" 'e["environment"]')" local
log=$("$FERRY" logs "$id" 2>/dev/null)
expect_contains "-e local: a worker of 'local' ran it" "$log" "running in $DATA/workers/"

id=$(run_id "$P" pinned)
"$FERRY" wait "$id" --timeout 20 >/dev/null || true
expect_eq "the step's environment wins over the default" "$(json_field "$id" 'e["environment"]')" local

id=$(run_id "$P" pinned -e second)
"$FERRY" wait "$id" --timeout 20 >/dev/null || true
expect_eq "-e wins over the step's environment" "$(json_field "$id" 'e["environment"]')" second

RC=0
OUT=$(cd "$P" && "$FERRY" run where -e nowhere 2>&1) || RC=$?
expect_eq "-e nowhere: exit 5" "$RC" 5
expect_contains "-e nowhere: names it" "$OUT" "nowhere"
expect_contains "-e nowhere: lists the known ones" "$OUT" "local, second"
# 1 from the run on the defaults (same data dir) + 4 above.
expect_eq "-e nowhere: nothing created" "$("$FERRY" list | tail -n +2 | wc -l | tr -d ' ')" 5

# Flags after -c override the file: ferryd_start's --data-dir, not the file's.
expect_contains "--data-dir overrides the file's data_dir" "$(cat "$FERRYD_LOG")" "data in $DATA;"
expect_eq "the file's data_dir is unused" "$([ -e "$WORK/file-data-dir" ] && echo used || echo unused)" unused

finish
