#!/usr/bin/env bash
#
# e2e cli_admin: the admin commands of wsmux against a real wsmux-edge
# (docs/ADMIN_API.md), with an isolated XDG_CONFIG_HOME under $T:
#   login: a bad token -> 2, nothing stored; a good one -> config 0600 in a
#          0700 directory, the token in no output; a group-readable config
#          is refused; a stored token is never sent to another edge
#   project list, service list (table and json)
#   service ssh disable -> `wsmux ssh service --proxyOnly` exits 5 with the
#          enable-SSH message; enable -> ssh through the proxy works; a job
#          -> 5; unknown service -> 3
#   ssh-identity create/list/get/update/delete and their output; an invalid
#          key -> 6 with the reason; a duplicate name -> 5; a private key is
#          refused locally (1)
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "job1 127.0.0.1:1 job" "web sshd service true"

export XDG_CONFIG_HOME=$T/xdg
CONFIG=$XDG_CONFIG_HOME/wsmux/config.json
unset WSMUX_EDGE WSMUX_TOKEN

# cli NAME ARGS...: run wsmux ARGS (stdin from $CLI_STDIN or /dev/null),
# bounded by timeout. Sets RUN_RC, RUN_OUT, RUN_ERR (files).
cli() {
  local name=$1
  shift
  WSMUX_STDIN=${CLI_STDIN:-/dev/null} wsmux_run "$name" 30 -- "$@"
  check_sanitizers "$RUN_ERR" || fail "$name: sanitizer report"
}

# ok NAME ARGS...: cli, which must exit 0 with nothing on stderr.
ok() {
  local name=$1
  cli "$@"
  ((RUN_RC == 0)) || fail "$name: wsmux $* exited $RUN_RC; stderr:
$(cat "$RUN_ERR")"
  [[ ! -s $RUN_ERR ]] || fail "$name: unexpected stderr: $(cat "$RUN_ERR")"
  log "$name: ok"
}

# ko NAME CODE MESSAGE ARGS...: cli, which must exit CODE with a
# `wsmux: error: ` line mentioning MESSAGE and print nothing on stdout.
ko() {
  local name=$1 code=$2 msg=$3
  shift 3
  cli "$name" "$@"
  ((RUN_RC == code)) || fail "$name: wsmux $* exited $RUN_RC, want $code;" \
    "stderr: $(cat "$RUN_ERR")"
  grep '^wsmux: error: ' "$RUN_ERR" | grep -qiF -- "$msg" ||
    fail "$name: no error mentioning '$msg': $(cat "$RUN_ERR")"
  [[ ! -s $RUN_OUT ]] || fail "$name: unexpected stdout: $(cat "$RUN_OUT")"
  log "$name: exit $RUN_RC: $(grep -m1 '^wsmux: error: ' "$RUN_ERR")"
}

# has NAME PATTERN: the last stdout has a line matching the ERE PATTERN.
has() {
  grep -Eq -- "$2" "$RUN_OUT" ||
    fail "$1: no line matching '$2' in:
$(cat "$RUN_OUT")"
}

mode_of() {
  stat -c %a "$1"
}

# --- login --------------------------------------------------------------

printf 'wsmux-e2e-wrong-%s\n' "$RANDOM$RANDOM" >"$T/bad.token"
CLI_STDIN=$T/bad.token ko login_bad 2 "(HTTP 401)" \
  login --edge "$EDGE_URL" --ca "$EDGE_CERT" --token -
[[ ! -e $CONFIG ]] || fail "login_bad: a config was stored: $(cat "$CONFIG")"

ko not_logged_in 2 "not logged in: run 'wsmux login" project list

ok login login --edge "$EDGE_URL" --token "$EDGE_TOKEN" --ca "$EDGE_CERT"
[[ $(cat "$RUN_OUT") == "Logged in to $EDGE_URL as context default" ]] ||
  fail "login printed: $(cat "$RUN_OUT")"
[[ -f $CONFIG ]] || fail "login stored no config at $CONFIG"
[[ $(mode_of "$CONFIG") == 600 ]] ||
  fail "config mode is $(mode_of "$CONFIG"), want 600"
[[ $(mode_of "${CONFIG%/*}") == 700 ]] ||
  fail "config directory mode is $(mode_of "${CONFIG%/*}"), want 700"
grep -qF "$EDGE_TOKEN" "$CONFIG" || fail "the config holds no token"
grep -qF "$(realpath "$EDGE_CERT")" "$CONFIG" ||
  fail "the config does not hold the CA's absolute path: $(cat "$CONFIG")"

# A second context from standard input becomes the current one.
printf '%s\n' "$EDGE_TOKEN" >"$T/good.token"
CLI_STDIN=$T/good.token ok login_stdin login --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" --token - --context e2e
[[ $(cat "$RUN_OUT") == "Logged in to $EDGE_URL as context e2e" ]] ||
  fail "login_stdin printed: $(cat "$RUN_OUT")"
grep -q '"current":[[:space:]]*"e2e"' "$CONFIG" ||
  fail "context e2e is not current: $(cat "$CONFIG")"
grep -q '"default":' "$CONFIG" || fail "context default was lost"

# --- projects and services ---------------------------------------------

ok projects project list
has projects '^ID +NAME$'
has projects "^$E2E_PROJECT +Demo\$"

ok projects_json project list --output json
has projects_json '^  "projects": \[$'
has projects_json "^      \"id\": \"$E2E_PROJECT\",?\$"

ok services service list --projectId "$E2E_PROJECT"
has services '^ID +NAME +KIND +TAGS +SSH$'
has services "^$E2E_SSH_SERVICE +[^ ]+ +service +t1 +enabled\$"
has services '^job1 +[^ ]+ +job +t1 +disabled$'
has services '^web +[^ ]+ +service +t1 +enabled$'

ok services_json service list --projectId "$E2E_PROJECT" --output json
has services_json '^  "services": \[$'
has services_json '^      "id": "web",$'
has services_json '^      "sshEnabled": (true|false),?$'

ko services_unknown 3 "project nosuch not found" service list --projectId nosuch

# --- the SSH switch ------------------------------------------------------

ok ssh_disable service ssh disable --projectId "$E2E_PROJECT" --serviceId web
[[ $(cat "$RUN_OUT") == "SSH disabled for service web in project $E2E_PROJECT" ]] ||
  fail "ssh_disable printed: $(cat "$RUN_OUT")"
ok services_off service list --projectId "$E2E_PROJECT"
has services_off '^web +[^ ]+ +service +t1 +disabled$'

# The proxy finds edge and token in the stored context.
ko proxy_refused 5 "SSH is not enabled for service web: enable SSH" \
  ssh service --projectId "$E2E_PROJECT" --serviceId web --proxyOnly \
  --address 127.0.0.1 --port 0 --user "$LOGIN_USER"

ok ssh_enable service ssh enable --projectId "$E2E_PROJECT" --serviceId web
[[ $(cat "$RUN_OUT") == "SSH enabled for service web in project $E2E_PROJECT" ]] ||
  fail "ssh_enable printed: $(cat "$RUN_OUT")"
start_proxy web
ssh_echo enabled-works "ssh through the proxy failed after enabling SSH"
stop_proxy "$PROXY_PID" "$PROXY_ERR"

ko ssh_job 5 "SSH access is available for services only" \
  service ssh enable --projectId "$E2E_PROJECT" --serviceId job1
ko ssh_unknown 3 "service nosuch not found" \
  service ssh enable --projectId "$E2E_PROJECT" --serviceId nosuch

# --- SSH identities ------------------------------------------------------

KEY=$(cat "$CLIENT_KEY.pub")
ssh-keygen -q -t ed25519 -N '' -C second -f "$T/second_key"
{
  echo '# two keys'
  echo
  cat "$CLIENT_KEY.pub" "$T/second_key.pub"
} >"$T/keys.txt"

ok id_create ssh-identity create --name alice --description "Alice's laptop" \
  --key-file "$T/keys.txt" --project "$E2E_PROJECT" --tag t1 --tag t2
has id_create '^ID: +idt-'
has id_create '^Name: +alice$'
has id_create "^Description: +Alice's laptop\$"
has id_create "^Keys: +${KEY%% *} "
has id_create '^ +ssh-ed25519 [^ ]+ second$'
has id_create "^Projects: +$E2E_PROJECT\$"
has id_create '^Tags: +t1, t2$'
has id_create '^Match tags: +any$'

ok id_create_json ssh-identity create --name bob --key "$KEY" --output json
has id_create_json '^  "name": "bob",$'
has id_create_json '^  "matchAllTags": false,?$'
BOB_ID=$(sed -n 's/^  "id": "\(idt-[^"]*\)",$/\1/p' "$RUN_OUT")
[[ -n $BOB_ID ]] || fail "no id in: $(cat "$RUN_OUT")"

ok id_list ssh-identity list
has id_list '^ID +NAME +KEYS +PROJECTS +TAGS +MATCH +DESCRIPTION$'
has id_list "^idt-[^ ]+ +alice +2 +$E2E_PROJECT +t1,t2 +any +Alice's laptop\$"
has id_list "^$BOB_ID +bob +1 +\(all\) +\(any\) +any +-\$"

ok id_list_json ssh-identity list --output json
has id_list_json '^  "identities": \[$'
has id_list_json '^      "name": "bob",$'

ok id_get ssh-identity get "$BOB_ID"
has id_get '^Name: +bob$'
ok id_get_json ssh-identity get alice --output json
has id_get_json '^  "description": "Alice'"'"'s laptop",$'

ok id_update ssh-identity update alice --description "new text" \
  --clear-projects --tag t1 --match-all-tags
has id_update '^Description: +new text$'
has id_update '^Projects: +\(all\)$'
has id_update '^Tags: +t1$'
has id_update '^Match tags: +all$'
ok id_update2 ssh-identity update alice --clear-tags --no-match-all-tags \
  --name alice2 --output json
has id_update2 '^  "name": "alice2",$'
has id_update2 '^  "tags": \[\],$'
has id_update2 '^  "matchAllTags": false,?$'

ko id_dup 5 "already used" ssh-identity create --name bob --key "$KEY"
ko id_dup_rename 5 "already used" ssh-identity update alice2 --name bob
ko id_bad_type 6 "unknown key type" \
  ssh-identity create --name carol --key "ssh-foo AAAAC3Nza carol"
grep -q '(HTTP 400)$' "$RUN_ERR" || fail "id_bad_type: no HTTP 400"
ko id_bad_base64 6 "invalid base64" \
  ssh-identity create --name carol --key "ssh-ed25519 ***notbase64***"
ko id_private 1 "is a private key" \
  ssh-identity create --name carol --key-file "$CLIENT_KEY"
ko id_get_missing 3 "nosuch" ssh-identity get nosuch
ko id_usage 1 "nothing to update" ssh-identity update bob

ok id_delete ssh-identity delete bob
[[ $(cat "$RUN_OUT") == "Deleted SSH identity bob" ]] ||
  fail "id_delete printed: $(cat "$RUN_OUT")"
ko id_deleted 3 "not found" ssh-identity get "$BOB_ID"
ko id_delete_again 3 "not found" ssh-identity delete bob
ok id_list2 ssh-identity list
grep -q ' carol ' "$RUN_OUT" && fail "a refused identity was created"
[[ $(grep -c '^idt-' "$RUN_OUT") == 1 ]] ||
  fail "want 1 identity left: $(cat "$RUN_OUT")"

# --- context resolution --------------------------------------------------

# A stored token is never sent to another edge.
DOWN_PORT=$(_freeport)
WSMUX_EDGE="$EDGE_SCHEME://127.0.0.1:$DOWN_PORT" ko other_edge 2 \
  "not logged in to $EDGE_SCHEME://127.0.0.1:$DOWN_PORT" project list
# Flags win over the stored context.
ko flag_token 2 "(HTTP 401)" project list --token wrong-token
# A config others can read is refused, with the fix.
chmod 644 "$CONFIG"
ko unsafe_config 1 "chmod 600" project list
chmod 600 "$CONFIG"
ok after_chmod project list

for f in "$T"/run-*.out "$T"/run-*.err "$EDGE_ERR" "$T/edge.out"; do
  if grep -qF "$EDGE_TOKEN" "$f"; then
    fail "the API token appears in $f"
  fi
done
