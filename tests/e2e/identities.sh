#!/usr/bin/env bash
#
# e2e identities: SSH identities decide who may log in, through a real sshd
# whose only source of keys is
#   AuthorizedKeysCommand /abs/wsmux-edge authorized-keys --config C
#                         --project P --service S
#   AuthorizedKeysCommandUser root
# (no AuthorizedKeysFile). Two services, each with its own sshd:
#   both  (project p1, tags a, b)      one  (project p1, tag a)
# and one key per identity, put in place by writing the edge's state file
# before the edge starts. Through `wsmux ssh service --proxyOnly`:
#   open (no restriction)           -> both: in    one: in
#   p1   (projects [p1])            -> both: in
#   p2   (projects [p2])            -> both: Permission denied (publickey)
#   tagc (tags [c])                 -> both: denied
#   anybc (tags [b, c], any of)     -> both: in    one: denied
#   allab (tags [a, b], matchAllTags) -> both: in  one: denied
# The authorized-keys command itself: its output (a key without a comment
# gets "wsmux:<identity>"), unknown and ambiguous services, a corrupt state
# file (exit 1, nothing on stdout).
# Then the admin API of the running edge over HTTPS (openssl s_client):
# 401 without a token, listing, a POSTed identity can log in at once and a
# DELETEd one no more, authorized-keys as text/plain, PATCH ssh=false
# closes the service's open WebSocket (1008, "SSH was disabled for service
# both") and refuses new ones, the switch survives an edge restart, and
# an edge refuses to start on a corrupt state file (byte offset in the
# message, the file left as it was).
#
# sshd runs an AuthorizedKeysCommand only if its path is absolute and the
# program and every directory above it (after resolving symlinks) are owned
# by root and not writable by group or others (OpenSSH's safe_path()); a
# build under /tmp (mode 1777) does not qualify, so the binary is then
# copied to a private root-owned directory first. AuthorizedKeysCommandUser
# root needs the test to run as root, as the other e2e tests do.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

((EUID == 0)) || fail "needs root (sshd runs the AuthorizedKeysCommand as root)"

P1=p1
STATE=$T/wsmux-edge-state.json # the default: next to the config

prepare_keys_cmd

# ---- keys, sshds, config, state -------------------------------------------

gen_keys # host key, SSH_OPTS (their -i is overridden per key below)
gen_cert
NAMES=(open p1 p2 tagc anybc allab newcomer)
for n in "${NAMES[@]}"; do
  comment="$n@e2e"
  [[ $n == open ]] && comment="" # rendered as "wsmux:open-laptop"
  ssh-keygen -q -t ed25519 -N '' -C "$comment" -f "$T/key_$n"
done
pub() { tr -d '\n' <"$T/key_$1.pub" | sed 's/ *$//'; }

start_keys_sshd both "$T/edge.json" "$P1" both
start_keys_sshd one "$T/edge.json" "$P1" one

EDGE_TOKEN=wsmux-e2e-$(openssl rand -hex 16)
EDGE_CONFIG=$T/edge.json
cat >"$EDGE_CONFIG" <<EOF
{
  "listen": "127.0.0.1:0",
  "tls": {"cert": "$EDGE_CERT", "key": "$EDGE_KEY"},
  "tokens": [{"id": "test", "sha256": "$(printf '%s' "$EDGE_TOKEN" | sha256sum | cut -d' ' -f1)"}],
  "projects": [{"id": "$P1"}, {"id": "p2"}],
  "services": [
    {"id": "both", "projectId": "$P1", "tags": ["a", "b"], "sshEnabled": true,
     "upstream": "127.0.0.1:${SSHD_PORTS[both]}"},
    {"id": "one", "projectId": "$P1", "tags": ["a"], "sshEnabled": true,
     "upstream": "127.0.0.1:${SSHD_PORTS[one]}"},
    {"id": "twin", "projectId": "$P1", "kind": "job"},
    {"id": "twin", "projectId": "p2", "kind": "job"}
  ]
}
EOF

# identity N NAME RESTRICTIONS: one stored Identity for key N.
identity() {
  printf '{"id": "idt-00000000000000%02d", "name": "%s", "keys": ["%s"], %s
      "createdAt": "2026-11-25T12:00:00Z", "updatedAt": "2026-11-25T12:00:00Z"}' \
    "$1" "$2" "$(pub "$3")" "$4"
}
cat >"$STATE" <<EOF
{"version": 1, "identities": [
  $(identity 1 open-laptop open ''),
  $(identity 2 only-p1 p1 '"projects": ["p1"],'),
  $(identity 3 only-p2 p2 '"projects": ["p2"],'),
  $(identity 4 tag-c tagc '"tags": ["c"],'),
  $(identity 5 any-b-c anybc '"tags": ["b", "c"],'),
  $(identity 6 all-a-b allab '"tags": ["a", "b"], "matchAllTags": true,')
], "services": []}
EOF

# ---- the authorized-keys command -------------------------------------------

# keys_cmd NAME ARGS...: run it under the sanitizers; KEYS_RC, KEYS_OUT,
# KEYS_ERR (files).
keys_cmd() {
  local name=$1
  shift
  KEYS_OUT=$T/run-keys-$name.out
  KEYS_ERR=$T/run-keys-$name.err
  E2E_SAN_LOGS+=("$KEYS_ERR")
  KEYS_RC=0
  env "${E2E_SAN_ENV[@]}" timeout -k 5 30 "$KEYS_CMD" authorized-keys \
    --config "$EDGE_CONFIG" "$@" >"$KEYS_OUT" 2>"$KEYS_ERR" || KEYS_RC=$?
  check_sanitizers "$KEYS_ERR" || fail "keys $name: sanitizer report"
}

# The lines for "both", in state order; "open" has no comment of its own.
keys_cmd both --project "$P1" --service both
((KEYS_RC == 0)) || fail "authorized-keys both: exit $KEYS_RC: $(cat "$KEYS_ERR")"
want=$(printf '%s wsmux:open-laptop\n%s\n%s\n%s\n' "$(pub open)" "$(pub p1)" \
  "$(pub anybc)" "$(pub allab)")
[[ $(cat "$KEYS_OUT") == "$want" ]] ||
  fail "authorized-keys both printed:
$(cat "$KEYS_OUT")
want:
$want"
[[ ! -s $KEYS_ERR ]] || fail "authorized-keys wrote to stderr: $(cat "$KEYS_ERR")"

# Without --project the service id is unique here.
keys_cmd one --service one
((KEYS_RC == 0)) || fail "authorized-keys one: exit $KEYS_RC: $(cat "$KEYS_ERR")"
want=$(printf '%s wsmux:open-laptop\n%s\n' "$(pub open)" "$(pub p1)")
[[ $(cat "$KEYS_OUT") == "$want" ]] ||
  fail "authorized-keys one printed: $(cat "$KEYS_OUT")"

# expect_keys_error NAME MESSAGE ARGS...: exit 1, MESSAGE on stderr, no keys.
expect_keys_error() {
  local name=$1 msg=$2
  shift 2
  keys_cmd "$name" "$@"
  ((KEYS_RC == 1)) || fail "keys $name: exit $KEYS_RC, want 1"
  [[ ! -s $KEYS_OUT ]] || fail "keys $name printed: $(cat "$KEYS_OUT")"
  grep -qF -- "wsmux-edge: error: $msg" "$KEYS_ERR" ||
    fail "keys $name: stderr lacks '$msg': $(cat "$KEYS_ERR")"
  log "keys $name: $(head -n1 "$KEYS_ERR")"
}
expect_keys_error unknown "service nosuch not found in any project" \
  --service nosuch
expect_keys_error unknown_in_project "service one not found in project p2" \
  --project p2 --service one
expect_keys_error ambiguous \
  "service twin is ambiguous, pass --project: it exists in projects p1 p2" \
  --service twin
expect_keys_error no_service "--service is required"

# ---- logins through the proxy ------------------------------------------------

start_edge
start_proxy both
BOTH_ADDR=$PROXY_ADDR BOTH_PORT=$PROXY_PORT BOTH_PID=$PROXY_PID
BOTH_ERR=$PROXY_ERR
start_proxy one
ONE_ADDR=$PROXY_ADDR ONE_PORT=$PROXY_PORT

# try_ssh KEY SERVICE: one login with only that key; SSH_RC, SSH_ERR.
try_ssh() {
  local key=$1 svc=$2 addr port
  if [[ $svc == both ]]; then
    addr=$BOTH_ADDR port=$BOTH_PORT
  else
    addr=$ONE_ADDR port=$ONE_PORT
  fi
  SSH_ERR=$T/ssh-$key-$svc.err
  SSH_RC=0
  SSH_OUT=$(timeout 60 ssh "${SSH_OPTS[@]}" -i "$T/key_$key" -p "$port" \
    "$LOGIN_USER@$addr" "echo in-$key" 2>"$SSH_ERR") || SSH_RC=$?
}

expect_in() {
  try_ssh "$1" "$2"
  if ((SSH_RC != 0)) || [[ $SSH_OUT != "in-$1" ]]; then
    fail "key $1 on $2: want a login, got exit $SSH_RC, '$SSH_OUT':
$(cat "$SSH_ERR")
sshd ($2): $(tail -n 15 "$T/sshd-$2.log")"
  fi
  log "key $1 on $2: logged in"
}

expect_denied() {
  try_ssh "$1" "$2"
  if ((SSH_RC != 255)) || ! grep -q 'Permission denied (publickey)' "$SSH_ERR"; then
    fail "key $1 on $2: want 'Permission denied (publickey)', got exit" \
      "$SSH_RC, '$SSH_OUT': $(cat "$SSH_ERR")"
  fi
  log "key $1 on $2: Permission denied (publickey)"
}

expect_in open both
expect_in p1 both
expect_denied p2 both
expect_denied tagc both
expect_in anybc both
expect_in allab both
expect_in open one
expect_denied anybc one
expect_denied allab one
expect_denied newcomer both # in no identity

# ---- the admin API over HTTPS ------------------------------------------------

# api METHOD PATH [BODY] [TOKEN]: one request with openssl s_client; sets
# API_STATUS, API_TYPE, API_BODY. TOKEN "" sends no Authorization.
api() {
  local method=$1 path=$2 body=${3-} token=${4-$EDGE_TOKEN} len
  len=$(printf '%s' "$body" | wc -c)
  {
    printf '%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n' \
      "$method" "$path"
    [[ -z $token ]] || printf 'Authorization: Bearer %s\r\n' "$token"
    [[ -z $body ]] ||
      printf 'Content-Type: application/json\r\nContent-Length: %d\r\n' "$len"
    printf '\r\n%s' "$body"
  } >"$T/api.req"
  timeout 20 openssl s_client -quiet -verify_return_error \
    -CAfile "$EDGE_CERT" -servername localhost \
    -connect "127.0.0.1:$EDGE_PORT" <"$T/api.req" >"$T/api.resp" \
    2>"$T/api.err" || true
  API_STATUS=$(head -n1 "$T/api.resp" | awk '{print $2}')
  API_TYPE=$(sed -n '1,/^\r$/p' "$T/api.resp" |
    awk -F': *' 'tolower($1) == "content-type" {print $2}' | tr -d '\r')
  API_BODY=$(sed '1,/^\r$/d' "$T/api.resp")
}

# expect_api STATUS METHOD PATH [BODY] [TOKEN]
expect_api() {
  local want=$1
  shift
  api "$@"
  [[ $API_STATUS == "$want" ]] ||
    fail "$1 $2: HTTP '$API_STATUS', want $want: $(cat "$T/api.resp" "$T/api.err")"
  local flat=${API_BODY//$'\n'/ | }
  log "$1 $2: $API_STATUS ${flat:0:100}"
}

expect_api 401 GET /v1/projects "" ""
[[ $API_BODY == '{"error":"invalid or missing API token"}' ]] ||
  fail "401 body: $API_BODY"
expect_api 401 GET /v1/ssh-identities "" "wrong-token"

expect_api 200 GET /v1/ssh-identities
[[ $API_TYPE == application/json ]] || fail "content type '$API_TYPE'"
for n in open-laptop only-p1 only-p2 tag-c any-b-c all-a-b; do
  grep -qF "\"name\":\"$n\"" <<<"$API_BODY" || fail "$n not listed: $API_BODY"
done

# "open": the proxy for one, its logins over (their streams may take a
# moment to be closed on the edge's side too).
_service_one_is() {
  expect_api 200 GET /v1/projects/p1/services/one
  [[ $API_BODY == "$1" ]]
}
wait_until 10 "service one as JSON, with 1 proxy and no stream open" \
  _service_one_is '{"id":"one","projectId":"p1","name":"one","kind":"service","tags":["a"],"sshEnabled":true,"open":{"proxies":1,"streams":0,"otherEdges":false}}'

# A new identity: written to the state file, so sshd sees it at once.
expect_api 201 POST /v1/ssh-identities \
  "{\"name\":\"newcomer\",\"keys\":[\"$(pub newcomer)\"],\"projects\":[\"p1\"],\"tags\":[\"b\"]}"
grep -qE '"name":[[:space:]]*"newcomer"' "$STATE" ||
  fail "newcomer not in $STATE"
expect_in newcomer both
expect_denied newcomer one # no tag b there
expect_api 200 GET /v1/projects/p1/services/both/authorized-keys
[[ $API_TYPE == text/plain* ]] || fail "authorized-keys content type '$API_TYPE'"
grep -qxF "$(pub newcomer)" <<<"$API_BODY" ||
  fail "newcomer's key not in authorized-keys: $API_BODY"

expect_api 400 POST /v1/ssh-identities '{"name":"bad","keys":["ssh-foo AAAA"]}'
[[ $API_BODY == '{"error":"keys[0]: unknown key type \"ssh-foo\""}' ]] ||
  fail "400 body: $API_BODY"
expect_api 409 POST /v1/ssh-identities \
  "{\"name\":\"newcomer\",\"keys\":[\"$(pub p2)\"]}"

expect_api 204 DELETE /v1/ssh-identities/newcomer
expect_denied newcomer both
expect_api 404 GET /v1/ssh-identities/newcomer

# Disabling SSH closes the open WebSocket of the service (and the session
# in it) with 1008, and refuses new ones.
timeout 120 ssh "${SSH_OPTS[@]}" -i "$T/key_open" -p "$BOTH_PORT" \
  "$LOGIN_USER@$BOTH_ADDR" 'echo started; exec sleep 100' \
  >"$T/long.out" 2>"$T/long.err" &
LONG_PID=$!
track "$LONG_PID" "long ssh session"
wait_until 30 "the long ssh session to start" grep -q started "$T/long.out"
expect_api 200 PATCH /v1/projects/p1/services/both '{"ssh":false}'
[[ $API_BODY == *'"sshEnabled":false'* ]] || fail "PATCH body: $API_BODY"
wait_exit "$LONG_PID" 20 || fail "the ssh session survived disabling SSH"
wait_exit "$BOTH_PID" 20 || fail "the proxy for both survived disabling SSH"
grep -qF "SSH was disabled for service both" "$BOTH_ERR" ||
  fail "the proxy does not report the close reason: $(cat "$BOTH_ERR")"
log "open session closed; proxy: $(grep -m1 'disabled' "$BOTH_ERR")"
grep -q 'closing 1 connection' "$EDGE_ERR" ||
  fail "the edge did not log closing the connection"

RUN_ERR=$T/run-disabled.err
E2E_SAN_LOGS+=("$RUN_ERR")
rc=0
env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" timeout -k 5 30 "$WSMUX_BIN" \
  ssh service --projectId p1 --serviceId both --proxyOnly --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" --address 127.0.0.1 --port 0 \
  </dev/null >/dev/null 2>"$RUN_ERR" || rc=$?
if ((rc != 5)) || ! grep -qF "SSH is not enabled for service both" "$RUN_ERR"; then
  fail "a new proxy for the disabled service: exit $rc: $(cat "$RUN_ERR")"
fi

# The switch is in the state file and survives a restart.
grep -qE '"sshEnabled":[[:space:]]*false' "$STATE" ||
  fail "no switch in $STATE"
stop_pid "$EDGE_PID" 10 || fail "wsmux-edge needed SIGKILL"
((STOP_RC == 0)) || fail "wsmux-edge exited $STOP_RC on SIGTERM"
keep_edge_log 1
start_edge
expect_api 200 GET /v1/projects/p1/services/both
[[ $API_BODY == *'"sshEnabled":false'* ]] || fail "after restart: $API_BODY"
expect_api 200 PATCH /v1/projects/p1/services/both '{"ssh":true}'
start_proxy both
BOTH_ADDR=$PROXY_ADDR BOTH_PORT=$PROXY_PORT
expect_in open both
stop_proxy "$PROXY_PID" "$PROXY_ERR"

# ---- a corrupt state file ---------------------------------------------------

stop_pid "$EDGE_PID" 10 || fail "wsmux-edge needed SIGKILL"
printf '{"version": 1, "identities": [' >"$STATE"
sum=$(sha256sum <"$STATE")
keys_cmd corrupt --project "$P1" --service both
if ((KEYS_RC != 1)) || [[ -s $KEYS_OUT ]]; then
  fail "authorized-keys on a corrupt state: exit $KEYS_RC, out $(cat "$KEYS_OUT")"
fi
rc=0
env "${E2E_SAN_ENV[@]}" timeout -k 5 30 "$WSMUX_EDGE_BIN" --config "$EDGE_CONFIG" \
  </dev/null >/dev/null 2>"$T/run-edge-corrupt.err" || rc=$?
E2E_SAN_LOGS+=("$T/run-edge-corrupt.err")
((rc == 1)) || fail "wsmux-edge on a corrupt state file: exit $rc"
grep -qF "wsmux-edge: error: $STATE: invalid JSON at byte offset 29" \
  "$T/run-edge-corrupt.err" ||
  fail "unexpected error: $(cat "$T/run-edge-corrupt.err")"
[[ $(sha256sum <"$STATE") == "$sum" ]] || fail "the corrupt state file was changed"
log "corrupt state refused: $(head -n1 "$T/run-edge-corrupt.err")"

# sshd ran the command for every attempt; it must never have failed.
if grep -E 'AuthorizedKeysCommand .*(returned status|exited on signal|failed)' \
  "$T"/sshd-*.log; then
  fail "the authorized-keys command failed under sshd (see above)"
fi
if grep -qF "$EDGE_TOKEN" "$T/edge-1.err" "$EDGE_ERR" "$T/edge.out"; then
  fail "the API token appears in the edge's output"
fi
