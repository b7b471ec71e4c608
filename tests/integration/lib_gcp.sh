# shellcheck shell=bash
# Helpers of the gcp compute plugin's tests (issue 8); sourced after lib.sh
# and lib_sched.sh. lib_cloud.sh sets up the network, ferryd's TLS and the
# fake's control helpers; here: a throwaway service account (an RSA key made
# with openssl, its key file with token_uri on the fake) and the fake
# Compute Engine and token endpoint, which checks each assertion with the
# account's public key and the bearer token on every call. The key file's
# path reaches ferryd only (GOOGLE_APPLICATION_CREDENTIALS).
# Needs root and `ip netns`: without them the test fails, it does not skip.

PFX=fg$$
SA_EMAIL="ferry-test-$$@ferry-test.iam.gserviceaccount.com"
PROJECT=ferry-test
. "$(dirname "${BASH_SOURCE[0]}")/lib_cloud.sh"

SA=$WORK/sa
mkdir -p "$SA"
openssl genrsa -out "$SA/key.pem" 2048 2>>"$WORK/openssl.log"
openssl rsa -in "$SA/key.pem" -pubout -out "$SA/pub.pem" 2>>"$WORK/openssl.log"
# A line of the private key, to look for where it must never be.
# shellcheck disable=SC2034 # the tests use it
KEY_LINE=$(sed -n 5p "$SA/key.pem")

# gcp_key_file PATH [PEM]: a service-account key file for the fake.
gcp_key_file() {
  python3 - "$1" "${2:-$SA/key.pem}" "$FAKE/token" "$SA_EMAIL" "$PROJECT" <<'PY'
import json, sys
path, pem, token_uri, email, project = sys.argv[1:]
json.dump({"type": "service_account", "project_id": project, "private_key_id": "k1",
           "private_key": open(pem).read(), "client_email": email, "client_id": "1",
           "token_uri": token_uri}, open(path, "w"))
PY
}

# --- the fake Compute Engine ---
fake_start() { # fake_start [ARGS...]
  cloud_fake_start gce "$FERRY_SOURCE_DIR/tests/fakes/fake_gce.py" \
    --public-key "$SA/pub.pem" --client-email "$SA_EMAIL" --project "$PROJECT" "$@"
  gcp_key_file "$SA/key.json"
}

# Instances that carry ferryd's daemon label and are not going: the python
# expression over the fake's state, and its value now.
ours_up_expr() {
  echo "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['status'] in ('PROVISIONING', 'STAGING', 'RUNNING')))"
}
running_ours() { fake_q "$(ours_up_expr "$1")"; }
# How many deletions ferryd asked for.
terminations() { fake_q "len([r for r in R if r['kind'] == 'delete'])"; }

# --- ferryd with gcp environments ---
# gcp_env NAME [EXTRA SETTINGS]: one environment block on the fake, in
# zones $ZONES (us-central1-a, us-central1-b), idle timeout $IDLE (4 s),
# at most $MAXW workers (2).
gcp_env() {
  local zones='[ "us-central1-a", "us-central1-b" ]'
  [ -n "${ZONES:-}" ] && zones=$ZONES
  cat <<ENV
{ name = "$1"; compute = "gcp"; zones = $zones;
  machine_type = "g2-standard-8"; image = "projects/debian-cloud/global/images/family/debian-12";
  disk_gb = 100; network = "default";
  max_workers = ${MAXW:-2}; idle_timeout = ${IDLE:-4}; endpoint = "$FAKE/compute/v1"; call_timeout = 2;
  max_attempts = 4; poll_interval_ms = 200; list_page_size = 2; ${2:-} }
ENV
}
gcp_conf() { # gcp_conf ENV-BLOCKS...: writes $WORK/ferryd.conf
  local envs
  envs=$(printf '%s,\n' "$@")
  cat >"$WORK/ferryd.conf" <<CONF
users = ( { name = "alice"; token_sha256 = "$(sha256_of "$T_ALICE")"; } );
tls = { cert = "$PKI/server.pem"; key = "$PKI/server.key"; };
environments = ( ${envs%,} );
default_environment = "gcp";
worker_lost_timeout = 4;
instance_sweep_interval = 2;
CONF
}
# ferryd with the key file named in its environment only.
gcp_ferryd_start() { # gcp_ferryd_start [PORT]
  GOOGLE_APPLICATION_CREDENTIALS=$SA/key.json ferryd_start -c "$WORK/ferryd.conf" \
    --listen "$IP:${1:-0}"
  export FERRY_TOKEN=$T_ALICE FERRY_CA=$PKI/ca.pem CURL_CA_BUNDLE=$PKI/ca.pem
}
# The check every test ends with: no instance ferry launched still runs
# (deleted, or going).
expect_none_running() { # expect_none_running DAEMON-ID WHEN
  local left
  left=$(await_fake "' '.join(sorted(i['id'] for i in I if i['daemon'] == '$1' and i['status'] not in ('STOPPING', 'TERMINATED', 'DELETED')))" "" 20)
  expect_eq "$2: the fake holds no running instance ferry launched" "$left" ""
}
