#!/usr/bin/env bash
# The gcp compute plugin (issue 8) against tests/fakes/fake_gce.py, which
# checks every OAuth2 assertion's RS256 signature with the test service
# account's public key, requires a live bearer token on every Compute call
# (tokens live 6 s here: ferryd must refresh them), and boots each
# instance's startup-script as a host in its own network namespace, where
# the real ferry-agent from ferryd's bundle joins over TLS. Covered:
#   - an execution on a GCE "instance": zone a's operation ends with
#     ZONE_RESOURCE_POOL_EXHAUSTED, zone b launches (and `ferry show` said
#     what each zone answered); what instances.insert carried (machine
#     type, image, disk, network, labels with the daemon and worker ids,
#     startup-script = the bootstrap script); outputs come back;
#   - tokens: every assertion checked out, several tokens were issued (a
#     refresh), every Compute call carried a live one;
#   - no credential (private key, access token) in the startup-script, the
#     agent's environment, the instance's console or ferryd's log;
#   - idle timeout: instances.delete, the record goes once instances.get
#     agrees;
#   - a spot VM preempted mid-run: error, with a reason that says so;
#   - an instance deleted outside ferry mid-run: error, nothing hangs;
#   - the orphan sweep (instances.list by label, paged); another daemon's
#     instance is left alone;
#   - kill -9 of ferryd while its worker idles: deleted after idle_timeout;
#   - a graceful stop of ferryd deletes the instances it had.
# Every part ends with the fake holding no running instance ferry launched.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_sched.sh"
. "$(dirname "${BASH_SOURCE[0]}")/lib_gcp.sh"

fake_start --token-ttl 6 --end-delay 3
gcp_conf "$(gcp_env gcp)" "$(MAXW=1 gcp_env gcp-spot 'spot = true;')"
gcp_ferryd_start ""
D=$(daemon_id)
DL=$(echo "$D" | tr '[:upper:]' '[:lower:]')
P=$({
  step_where GOOGLE_ 1
  step_spin
} | make_project cloud)

# --- zone a is exhausted: zone b launches; ferry show says so ---
fake_faults '[{"kind": "insert", "zone": "us-central1-a", "op_error": "ZONE_RESOURCE_POOL_EXHAUSTED", "times": -1}]'
id=$(run_id "$P" where)
why=$(queued_reason "$id" "us-central1-a: ZONE_RESOURCE_POOL_EXHAUSTED")
expect_contains "ferry show of the waiting execution: what zone a answered" "$why" \
  "us-central1-a: ZONE_RESOURCE_POOL_EXHAUSTED"
expect_contains "ferry show of the waiting execution: zone b launched" "$why" \
  "us-central1-b: launched ferry-"
expect_ran_on_instance "$id" "i['daemon'] == '$DL' and i['status'] == 'RUNNING'" GOOGLE_
expect_eq "instances.insert: zone a accepted (its operation failed), then zone b" \
  "$(fake_q "[r['zone'] for r in R if r['kind'] == 'insert']")" \
  "['us-central1-a', 'us-central1-b']"
expect_eq "the zone operations were waited on" \
  "$(fake_q "len([r for r in R if r['kind'] == 'operation']) >= 2")" True
q="[i for i in I if i['id'] == '$inst'][0]"
worker=$(fake_first "i['id'] == '$inst'" worker)
expect_eq "the instance: zone b, machine type, image, disk, network" \
  "$(fake_q "(${q}['zone'], ${q}['machine_type'], ${q}['image'], ${q}['disk_gb'], ${q}['network'])")" \
  "('us-central1-b', 'g2-standard-8', 'projects/debian-cloud/global/images/family/debian-12', '100', 'global/networks/default')"
expect_eq "the instance is named after its worker" "$(fake_q "${q}['name']")" "ferry-$worker"
expect_contains "ferryd knows the worker of its worker label" "$(cat "$FERRYD_LOG")" \
  "worker $worker registered"
expect_eq "on demand" "$(fake_q "${q}['spot']")" False

# --- tokens ---
expect_eq "every assertion's signature and claims checked out" \
  "$(fake GET /__state | python3 -c 'import json,sys; a=json.load(sys.stdin)["assertions"]; print(len(a) > 0 and all(x["ok"] for x in a))')" True
expect_eq "every Compute call carried a live token" \
  "$(fake_q "all(r['token_ok'] for r in R if r['kind'] != 'token')")" True

# --- no credential in the startup-script, the agent's environment or a log ---
curl -sS -o "$WORK/startup" "$FAKE/__startup?id=$inst"
ud=$(cat "$WORK/startup")
expect_contains "the startup-script is the bootstrap script" "$ud" "BUNDLE_SHA256="
expect_contains "the startup-script names the worker" "$ud" "FERRY_WORKER_ID='$worker'"
token=$(sed -n "s/^FERRY_BOOTSTRAP_TOKEN='\(.*\)'$/\1/p" "$WORK/startup")
if [ ${#token} -eq 64 ]; then pass; else fail "the startup-script carries no one-time token"; fi
expect_not_contains "no private key in the startup-script" "$ud" "$KEY_LINE"
expect_not_contains "no key file path in the startup-script" "$ud" "$SA/key.json"
expect_not_contains "no private key in ferryd's log" "$(cat "$FERRYD_LOG")" "$KEY_LINE"
expect_not_contains "no private key on the instance's console" \
  "$(cat "$WORK/gce/ferry-$worker/console.log")" "$KEY_LINE"
expect_not_contains "the one-time token is not in ferryd's log" "$(cat "$FERRYD_LOG")" "$token"
leaked=
for t in $(fake GET /__state | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["issued"]))'); do
  if grep -qF "$t" "$FERRYD_LOG" "$WORK/gce/ferry-$worker/console.log"; then leaked="$leaked $t"; fi
done
expect_eq "no access token in ferryd's log or on the console" "$leaked" ""
agent_env=$(agent_environ "$ns")
expect_contains "the agent runs on the instance" "$agent_env" "FERRY_WORKER_ID=$worker"
expect_not_contains "no GOOGLE_ variable in the agent's environment" "$agent_env" "GOOGLE_"

# --- idle: deleted, and the record goes once instances.get agrees ---
expect_eq "idle timeout: the worker is gone" "$(await_env_workers gcp "0 0 0 0" 20)" "0 0 0 0"
expect_eq "idle timeout: the instance is going" \
  "$(fake_q "${q}['status'] in ('STOPPING', 'DELETED')")" True
expect_eq "the record went after instances.delete, then instances.get of it" \
  "$(fake_q "[r['kind'] for r in R if r['name'] == 'ferry-$worker' and r['kind'] in ('delete', 'get')][:2]")" \
  "['delete', 'get']"
expect_eq "tokens were refreshed (they live 6 s)" \
  "$(fake GET /__state | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"] >= 2)')" True
fake_faults '[]'
expect_none_running "$DL" "after the first run"

# --- a spot VM preempted mid-run ---
id=$(run_id "$P" spin --environment gcp-spot)
inst=$(spin_instance "$id" "i['daemon'] == '$DL' and i['status'] == 'RUNNING'")
q="[i for i in I if i['id'] == '$inst'][0]"
expect_eq "spot: provisioningModel SPOT, deleted on preemption, no live migration" \
  "$(fake_q "(${q}['spot'], ${q}['termination_action'], ${q}['on_host_maintenance'])")" \
  "(True, 'DELETE', 'TERMINATE')"
fake POST "/__kill?id=$inst&how=spot" >/dev/null
"$FERRY" wait "$id" --timeout 30 >/dev/null || true
expect_eq "spot preemption: error" "$(json_field "$id" 'e["status"]')" error
expect_contains "spot preemption: the reason says so" "$(json_field "$id" 'e["status_reason"]')" \
  "spot preemption"
expect_none_running "$DL" "after the spot preemption"

# --- an instance deleted outside ferry mid-run ---
id=$(run_id "$P" spin)
inst=$(spin_instance "$id" "i['daemon'] == '$DL' and i['status'] == 'RUNNING'")
fake POST "/__kill?id=$inst&how=delete" >/dev/null
"$FERRY" wait "$id" --timeout 30 >/dev/null || true
expect_eq "deleted outside ferry: error" "$(json_field "$id" 'e["status"]')" error
r=$(json_field "$id" 'e["status_reason"]')
if [ -n "$r" ] && [ "$r" != None ]; then pass; else fail "deleted outside ferry: no reason"; fi
echo "deleted outside ferry: $r"
expect_none_running "$DL" "after the deletion outside ferry"

# --- the orphan sweep: listed by label, page after page ---
o1=$(fake_orphan "zone=us-central1-a&daemon=$DL&worker=nobody-knows")
o2=$(fake_orphan "zone=us-central1-a&daemon=$DL&worker=nobody-either")
o3=$(fake_orphan "zone=us-central1-a&daemon=$DL&worker=nor-this")
other=$(fake_orphan "zone=us-central1-b&daemon=someone-else&worker=w")
# The other is left alone: still booting or running (the fake boots it in
# steps), never stopping or deleted.
expect_sweep "instances with ferryd's label and no record: deleted by the sweep" \
  "i['status'] in ('STOPPING', 'DELETED')" "i['status'] in ('PROVISIONING', 'STAGING', 'RUNNING')" \
  "$other" "$o1" "$o2" "$o3"
expect_eq "instances.list was paged" \
  "$(fake_q "any(r['page_token'] for r in R if r['kind'] == 'list')")" True
expect_eq "instances.list filtered on ferryd's label" \
  "$(fake_q "sorted(set(r['filter'] for r in R if r['kind'] == 'list'))")" \
  "['labels.ferry-daemon=\"$DL\"']"
expect_none_running "$DL" "after the sweep"

# --- kill -9 of ferryd while its worker is idle: retired all the same ---
id=$(run_id "$P" where)
"$FERRY" wait "$id" --timeout 60 >/dev/null || true
expect_eq "idle at a crash: the execution completes" "$(json_field "$id" 'e["status"]')" complete
expect_idle_retired_across ferryd_kill gcp_ferryd_start "$DL" "idle at a crash"
# The fake takes --end-delay to delete it; ferryd keeps the record till then.
expect_eq "idle at a crash: its record goes once deleted" "$(await_env_workers gcp "0 0 0 0" 20)" "0 0 0 0"

# --- a graceful stop deletes the instances ferryd has ---
expect_graceful_stop "$P" gcp "$DL"
fake POST "/__kill?id=$other&how=delete" >/dev/null

finish
