#!/usr/bin/env bash
#
# e2e auth_errors: every refusal gives its exit code and message on stderr
# ("wsmux: error: ..."), prints no proxy banner, and leaves the edge
# serving:
#   wrong token (env or --token) -> 2 "invalid or missing API token"
#   unknown service / project    -> 3 "service S not found in project P"
#   sshEnabled false             -> 5 "SSH is not enabled for service S: ..."
#   a job                        -> 5 "SSH access is available for services only"
#   no token at all              -> 2, names WSMUX_TOKEN
#   no --ca (self-signed edge)   -> 4, mentions "certificate"
#   no edge listening            -> 4
#   an unrelated --ca            -> 4, mentions "certificate"
# Then a good proxy runs an ssh command, --insecure connects despite the
# unrelated CA (with a warning), and the token appears in no log.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "job1 127.0.0.1:1 job" "nossh sshd service false"

# run_wsmux NAME [VAR=VALUE...] -- WSMUX_ARGS...: run `wsmux ssh service`
# with WSMUX_TOKEN unset unless given, bounded by timeout; RUN_RC, RUN_ERR.
run_wsmux() {
  local name=$1
  shift
  local envs=()
  while (($#)) && [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  wsmux_run "$name" 30 -u WSMUX_TOKEN "${envs[@]}" -- ssh service --proxyOnly \
    --address 127.0.0.1 --port 0 --user "$LOGIN_USER" "$@"
}

# expect NAME CODE MESSAGE: after run_wsmux NAME. CODE "nonzero" accepts any
# failure status except a timeout.
expect() {
  local name=$1 code=$2 msg=$3
  ((RUN_RC != 124 && RUN_RC != 137)) ||
    fail "$name: wsmux did not exit within 30 s"
  if [[ $code == nonzero ]]; then
    ((RUN_RC != 0)) || fail "$name: wsmux exited 0, want a failure"
  else
    ((RUN_RC == code)) || fail "$name: wsmux exited $RUN_RC, want $code;" \
      "stderr: $(cat "$RUN_ERR")"
  fi
  grep -q '^wsmux: error: ' "$RUN_ERR" ||
    fail "$name: no 'wsmux: error: ' line on stderr: $(cat "$RUN_ERR")"
  grep '^wsmux: error: ' "$RUN_ERR" | grep -qiF -- "$msg" ||
    fail "$name: the error does not mention '$msg': $(cat "$RUN_ERR")"
  if grep -q 'SSH proxy started' "$RUN_OUT"; then
    fail "$name: wsmux printed the proxy banner"
  fi
  check_sanitizers "$RUN_ERR" || fail "$name: sanitizer report"
  log "$name: exit $RUN_RC: $(grep -m1 '^wsmux: error: ' "$RUN_ERR")"
}

# target SERVICE [PROJECT] [EDGE_URL]: --projectId/--serviceId/--edge/--ca
target() {
  printf '%s\n' --projectId "${2:-$E2E_PROJECT}" --serviceId "$1" \
    --edge "${3:-$EDGE_URL}" --ca "$EDGE_CERT"
}
mapfile -t SSH_TARGET < <(target "$E2E_SSH_SERVICE")
GOOD="WSMUX_TOKEN=$EDGE_TOKEN"
BAD_TOKEN=wsmux-e2e-wrong-$RANDOM$RANDOM

run_wsmux wrong_token "WSMUX_TOKEN=$BAD_TOKEN" -- "${SSH_TARGET[@]}"
expect wrong_token 2 "invalid or missing API token"

run_wsmux wrong_token_flag -- "${SSH_TARGET[@]}" --token "$BAD_TOKEN"
expect wrong_token_flag 2 "invalid or missing API token"

mapfile -t args < <(target nosuch)
run_wsmux unknown_service "$GOOD" -- "${args[@]}"
expect unknown_service 3 "service nosuch not found in project $E2E_PROJECT"

mapfile -t args < <(target "$E2E_SSH_SERVICE" nosuchproject)
run_wsmux unknown_project "$GOOD" -- "${args[@]}"
expect unknown_project 3 \
  "service $E2E_SSH_SERVICE not found in project nosuchproject"

mapfile -t args < <(target nossh)
run_wsmux ssh_disabled "$GOOD" -- "${args[@]}"
expect ssh_disabled 5 \
  "SSH is not enabled for service nossh: enable SSH in the service's Resources"

mapfile -t args < <(target job1)
run_wsmux job "$GOOD" -- "${args[@]}"
expect job 5 "SSH access is available for services only"

# Isolated from any context of the user running the tests.
run_wsmux missing_token "XDG_CONFIG_HOME=$T/xdg-empty" -- "${SSH_TARGET[@]}"
expect missing_token 2 "WSMUX_TOKEN"

run_wsmux no_ca "$GOOD" -- --projectId "$E2E_PROJECT" \
  --serviceId "$E2E_SSH_SERVICE" --edge "$EDGE_URL"
expect no_ca 4 "certificate"

DOWN_PORT=$(_freeport) # nothing listens there
mapfile -t args < <(target "$E2E_SSH_SERVICE" "$E2E_PROJECT" \
  "$EDGE_SCHEME://$WSMUX_EDGE_HOST:$DOWN_PORT")
run_wsmux edge_down "$GOOD" -- "${args[@]}"
expect edge_down 4 ""

for f in "$T"/run-*.err; do
  if grep -qF "$BAD_TOKEN" "$f"; then
    fail "a token was printed on wsmux's stderr ($f)"
  fi
done

# The edge is unharmed and a good proxy works.
assert_alive "$EDGE_PID" wsmux-edge
start_proxy "$E2E_SSH_SERVICE"
ssh_echo still-works "ssh through a good proxy after the error cases failed"
stop_proxy "$PROXY_PID" "$PROXY_ERR"

# --insecure: this is the one test that needs it, to check the flag itself.
# With an unrelated CA the edge's certificate fails verification (exit 4);
# --insecure connects anyway and warns on stderr.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca \
  -keyout "$T/other.key" -out "$T/other.crt" 2>/dev/null ||
  fail "openssl could not make the unrelated CA"
run_wsmux wrong_ca "$GOOD" -- --projectId "$E2E_PROJECT" \
  --serviceId "$E2E_SSH_SERVICE" --edge "$EDGE_URL" --ca "$T/other.crt"
expect wrong_ca 4 "certificate"
EDGE_CERT=$T/other.crt start_proxy "$E2E_SSH_SERVICE" --insecure
grep -q "warning: --insecure" "$PROXY_ERR" ||
  fail "--insecure printed no warning: $(cat "$PROXY_ERR")"
ssh_echo insecure-works "ssh through an --insecure proxy failed"
stop_proxy "$PROXY_PID" "$PROXY_ERR"

if grep -qF "$EDGE_TOKEN" "$EDGE_ERR" "$T/edge.out" "$PROXY_ERR" "$PROXY_OUT"; then
  fail "the API token appears in the edge's or the proxy's output"
fi
