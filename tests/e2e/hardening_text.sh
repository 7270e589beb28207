#!/usr/bin/env bash
#
# e2e hardening_text: text from outside is never trusted, against a real
# wsmux-edge (TLS) with wsmux-wsraw and the wsmux CLI:
#   log injection: a WebSocket close reason and an RST reason holding
#     "\nwsmux-edge: FORGED ..." and ESC sequences reach the edge's log
#     escaped (\n, \e): no line of its stderr starts with "wsmux-edge:
#     FORGED" and no raw ESC byte is in it;
#   invalid UTF-8: an identity whose description is not UTF-8 is refused
#     with 400 naming "description" (the CLI exits 6 with it) and the state
#     file is unchanged; a config that is not UTF-8 is refused at start;
#   roles: a member token reads and connects but every write is 403 naming
#     its role (CLI exit 5), a token limited to project p2 sees only p2, is
#     refused p1 on the API and on the WebSocket (403, X-Wsmux-Error), and
#     may only create identities restricted to p2; the audit log names the
#     token of each write; a token without a role is an admin, with a
#     warning at start.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"

sha() {
  printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# Besides the admin token "test": "member", and "deploy", an admin of the
# project p2 only (which has a service of its own).
prepare_stack --upstream testsrv "echo testsrv"
MEMBER_TOKEN=wsmux-e2e-member-$(openssl rand -hex 16)
DEPLOY_TOKEN=wsmux-e2e-deploy-$(openssl rand -hex 16)
MEMBER_JSON="{\"id\": \"member\", \"sha256\": \"$(sha "$MEMBER_TOKEN")\", \"role\": \"member\"}"
DEPLOY_JSON="{\"id\": \"deploy\", \"sha256\": \"$(sha "$DEPLOY_TOKEN")\", \"role\": \"admin\", \"projects\": [\"p2\"]}"
WEB2_JSON="{\"id\": \"web2\", \"projectId\": \"p2\", \"sshEnabled\": true, \"upstream\": \"127.0.0.1:$TESTSRV_PORT\"}"
# (The projects first: the tokens bring a "projects" of their own.)
sed -i -e "s|\"projects\": \[|&{\"id\": \"p2\", \"name\": \"Second\"}, |" \
  -e "s|\"tokens\": \[|&$MEMBER_JSON, $DEPLOY_JSON, |" \
  -e "s|\"services\": \[|&$WEB2_JSON,|" "$EDGE_CONFIG"
if ! grep -q '"id": "deploy"' "$EDGE_CONFIG" ||
  ! grep -q '"id": "web2"' "$EDGE_CONFIG"; then
  fail "the tokens were not added: $(cat "$EDGE_CONFIG")"
fi
start_edge
WS_PATH=$(ws_path echo)
STATE=$T/wsmux-edge-state.json

# hex TEXT: TEXT's bytes as hex digits (for wsraw's payloads).
hex() {
  printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

# no_forgery WHAT: the edge's stderr has no forged line and no raw ESC.
no_forgery() {
  if grep -q '^wsmux-edge: FORGED' "$EDGE_ERR"; then
    fail "$1: a forged line is in the edge's log:
$(grep -n 'FORGED' "$EDGE_ERR")"
  fi
  if grep -q $'\x1b' "$EDGE_ERR"; then
    fail "$1: a raw ESC byte is in the edge's log:
$(grep -n $'\x1b' "$EDGE_ERR" | od -c | head -n 20)"
  fi
}

# --- log injection -------------------------------------------------------

FORGE_CLOSE=$'bye\nwsmux-edge: FORGED close \x1b[2J\x1b]0;pwned\x07'
FORGE_RST=$'rst\r\nwsmux-edge: FORGED reset \x1b[31m\xff'

# An RST of an open stream, then a close, each with a hostile reason. RST
# code 7 is RESET.
wsraw forge 60 "$WS_PATH" <<EOF
frame OPEN 1 00010000
expect-frame OPEN_OK 1
frame RST 1 0007$(hex "$FORGE_RST")
frame PING 0 0102030405060708
expect-frame PONG 0
close 1000 $(hex "$FORGE_CLOSE")
EOF
[[ $(head -n 1 "$RAW_OUT") == "status 101" ]] ||
  fail "forge: the upgrade was refused: $(cat "$RAW_OUT")"

wait_output 20 "the edge's line of the RST" "$EDGE_PID" "the edge exited" \
  "$EDGE_ERR" -F 'result=RESET: rst\r\nwsmux-edge: FORGED reset \e[31m\xff' \
  "$EDGE_ERR"
wait_output 20 "the edge's line of the close" "$EDGE_PID" "the edge exited" \
  "$EDGE_ERR" -F \
  'closed by peer (1000: bye\nwsmux-edge: FORGED close \e[2J\e]0;pwned\x07)' \
  "$EDGE_ERR"
no_forgery "close and RST reasons"
log "log injection: both reasons logged escaped on one line each"

# --- invalid UTF-8 ---------------------------------------------------------

export XDG_CONFIG_HOME=$T/xdg
unset WSMUX_EDGE WSMUX_TOKEN

# cli NAME ARGS...: wsmux ARGS against the edge with the token $AS (default
# $EDGE_TOKEN), bounded. Sets RUN_RC, RUN_OUT, RUN_ERR.
cli() {
  local name=$1
  shift
  wsmux_run "$name" 30 -- "$@" \
    --edge "$EDGE_URL" --ca "$EDGE_CERT" --token "${AS:-$EDGE_TOKEN}"
}

# expect_cli NAME CODE STDERR_TEXT ARGS...: cli; exit CODE and, unless
# STDERR_TEXT is empty, a `wsmux: error: ` line holding it.
expect_cli() {
  local name=$1 code=$2 msg=$3
  shift 3
  cli "$name" "$@"
  ((RUN_RC == code)) || fail "$name: wsmux $* exited $RUN_RC, want $code;" \
    "stderr: $(cat "$RUN_ERR")"
  if [[ -n $msg ]]; then
    grep '^wsmux: error: ' "$RUN_ERR" | grep -qF -- "$msg" ||
      fail "$name: no error holding '$msg': $(cat "$RUN_ERR")"
  fi
  log "$name: exit $RUN_RC${msg:+: $(grep -m1 '^wsmux: error: ' "$RUN_ERR")}"
}

KEY=$(cat "$CLIENT_KEY.pub")
expect_cli utf8_good 0 "" ssh-identity create --name alice \
  --description $'caf\xc3\xa9' --key "$KEY"
[[ -s $STATE ]] || fail "no state file at $STATE after a create"
cp "$STATE" "$T/state.before"

expect_cli utf8_bad 6 "description: invalid UTF-8 (HTTP 400)" \
  ssh-identity create --name mallory --description $'a\xff\x1b[2J' \
  --key "$KEY"
cmp -s "$STATE" "$T/state.before" ||
  fail "utf8_bad: the state file changed"
expect_cli utf8_bad_update 6 "description: invalid UTF-8 (HTTP 400)" \
  ssh-identity update alice --description $'\xed\xa0\x80'
cmp -s "$STATE" "$T/state.before" ||
  fail "utf8_bad_update: the state file changed"
expect_cli utf8_list 0 "" ssh-identity list
grep -Eq $' alice .* caf\xc3\xa9$' "$RUN_OUT" ||
  fail "utf8_list: alice's description is not listed: $(cat "$RUN_OUT")"
grep -q mallory "$RUN_OUT" && fail "utf8_list: mallory was stored"

# A config that is not UTF-8 is refused at start, naming the value.
sed "s/\"name\": \"Demo\"/\"name\": \"Demo\\xc0\\xaf\"/" "$EDGE_CONFIG" \
  >"$T/bad-utf8.json"
grep -q $'Demo\xc0\xaf' "$T/bad-utf8.json" || fail "the bad config was not made"
rc=0
timeout -k 5 20 "$WSMUX_EDGE_BIN" --config "$T/bad-utf8.json" \
  </dev/null >/dev/null 2>"$T/bad-utf8.err" || rc=$?
((rc == 1)) || fail "an edge with a non-UTF-8 config exited $rc"
grep -qF "$T/bad-utf8.json: projects[1].name: invalid UTF-8" \
  "$T/bad-utf8.err" || fail "bad config: $(cat "$T/bad-utf8.err")"
log "invalid UTF-8: refused in the API (state unchanged) and in the config"

# --- roles -----------------------------------------------------------------

# A member reads and connects...
AS=$MEMBER_TOKEN expect_cli member_list 0 "" ssh-identity list
grep -q ' alice ' "$RUN_OUT" || fail "member_list: $(cat "$RUN_OUT")"
AS=$MEMBER_TOKEN expect_cli member_projects 0 "" project list
wsraw member_ws 30 "$WS_PATH" --token "$MEMBER_TOKEN" <<EOF
frame OPEN 1 00010000
expect-frame OPEN_OK 1
EOF
[[ $(head -n 1 "$RAW_OUT") == "status 101" ]] ||
  fail "member_ws: the upgrade was refused: $(cat "$RAW_OUT")"
# ...and writes nothing.
AS=$MEMBER_TOKEN expect_cli member_create 5 \
  "token member has role member: it may not create SSH identities (HTTP 403)" \
  ssh-identity create --name eve --key "$KEY"
AS=$MEMBER_TOKEN expect_cli member_delete 5 \
  "token member has role member: it may not delete SSH identities (HTTP 403)" \
  ssh-identity delete alice
AS=$MEMBER_TOKEN expect_cli member_switch 5 \
  "token member has role member: it may not switch SSH of services (HTTP 403)" \
  service ssh disable --projectId "$E2E_PROJECT" --serviceId echo
cmp -s "$STATE" "$T/state.before" || fail "a member's request changed the state"

# A token of project p2 sees p2 only; p1 is refused on the API and the
# WebSocket.
AS=$DEPLOY_TOKEN expect_cli deploy_projects 0 "" project list
if ! grep -Eq '^p2 +Second$' "$RUN_OUT" || grep -q "^$E2E_PROJECT " "$RUN_OUT"; then
  fail "deploy_projects: $(cat "$RUN_OUT")"
fi
DENY_P1="token deploy has role admin for projects p2: it may not access project $E2E_PROJECT"
AS=$DEPLOY_TOKEN expect_cli deploy_p1 5 "$DENY_P1 (HTTP 403)" \
  service list --projectId "$E2E_PROJECT"
AS=$DEPLOY_TOKEN expect_cli deploy_proxy 5 "$DENY_P1" \
  ssh service --projectId "$E2E_PROJECT" --serviceId echo --proxyOnly \
  --address 127.0.0.1 --port 0 --user "$LOGIN_USER"
wsraw deploy_ws 30 "$WS_PATH" --token "$DEPLOY_TOKEN" </dev/null
[[ $(head -n 1 "$RAW_OUT") == "status 403" ]] ||
  fail "deploy_ws: want 403: $(cat "$RAW_OUT")"
grep -qxF "X-Wsmux-Error: $DENY_P1" "$RAW_OUT" ||
  fail "deploy_ws: $(cat "$RAW_OUT")"
wsraw deploy_ws2 30 "/v1/projects/p2/services/web2/ssh" \
  --token "$DEPLOY_TOKEN" </dev/null
[[ $(head -n 1 "$RAW_OUT") == "status 101" ]] ||
  fail "deploy_ws2: its own project was refused: $(cat "$RAW_OUT")"
# Identities: only ones restricted to p2.
AS=$DEPLOY_TOKEN expect_cli deploy_create_any 5 \
  "it may not create an SSH identity that applies outside its projects" \
  ssh-identity create --name dep --key "$KEY"
AS=$DEPLOY_TOKEN expect_cli deploy_create_p2 0 "" \
  ssh-identity create --name dep --key "$KEY" --project p2
AS=$DEPLOY_TOKEN expect_cli deploy_update_alice 5 \
  "it may not update SSH identity alice, which applies outside its projects" \
  ssh-identity update alice --description x
grep -Eq '"name":[[:space:]]*"dep"' "$STATE" || fail "deploy_create_p2: not stored"
grep -q '"tokenId":[[:space:]]*"deploy"' "$T/wsmux-edge-audit.jsonl" ||
  fail "the audit log does not name the token: $(cat "$T/wsmux-edge-audit.jsonl")"
log "roles: member and project-limited tokens refused with 403 and exit 5"

# The harness's own token has no "role": an admin, and the edge said so.
grep -qF "edge.json: tokens[2] (test) has no \"role\": it is an admin; give it \"role\": \"admin\" or \"member\"" \
  "$EDGE_ERR" || fail "no warning about the token without a role: $(cat "$EDGE_ERR")"
