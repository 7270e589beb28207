#!/usr/bin/env bash
#
# e2e console: the web console (/console/) in headless Chromium, driven
# through the DevTools protocol by tests/browser/console_test.js, against a
# real edge (TLS, its throwaway certificate) whose service `web` is a real
# sshd taking its keys from `wsmux-edge authorized-keys`. The driver stops
# after each step ("STEP name") and this script checks the edge's state
# through the admin API (curl) and real ssh logins through a wsmux proxy
# before it goes on:
#   sign in (an empty and a wrong token first)   no identity, no login
#   create alice-laptop in the browser: a pasted key and a dropped .pub
#   file, project p1, tags prod+eu, "Match all tags", the live preview
#                                                  API state; both keys log in
#   the service page: commands and copy buttons, the ~/.ssh/config block
#   (= `wsmux ssh config`), why an identity is left out (= `wsmux ssh
#   doctor`'s words)
#   edit: one key only                             the other key is refused
#   SSH off with a session open: the question names what closes (1
#   proxy, 1 SSH connection); cancel first, then confirm
#                                                  session closed, no proxy
#   SSH on (keyboard, no question)                 logins again
#   delete (confirmed)                             API 404; key refused
#   bad input: an invalid key, a duplicate name (messages next to their
#   field), markup in a description and a tag (shown as text, no dialog)
#   the console's matching rule against the edge's authorized-keys, for
#   every identity and service
#   the member token viewer: the audit log, an SSH switch (nothing open:
#   no question) and a new identity refused by the edge (403, its message
#   shown)                                         nothing changed
#   audit page; keyboard (skip link, labels); the token revoked (edge
#   restarted without it): 401 -> signed out with the message; sign out
# Also: the console's files need no token and carry the CSP; `"console":
# false` turns them off. The page must raise no exception, CSP violation or
# JavaScript dialog. Screenshots of every page at 390 and 1440 px, light
# and dark, go to $T/screenshots; $T is kept when the test fails
# (CONSOLE_SCREENSHOTS=DIR also copies them there).
#
# Needs root (sshd runs the AuthorizedKeysCommand as root), chromium and
# node (scripts/setup installs both).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

((EUID == 0)) || fail "needs root (sshd runs the AuthorizedKeysCommand as root)"
: "${CHROMIUM:=/usr/bin/chromium}"
[[ -x $CHROMIUM ]] || fail "no Chromium at $CHROMIUM (scripts/setup installs it)"
command -v node >/dev/null || fail "no node (scripts/setup installs nodejs)"
command -v jq >/dev/null || fail "no jq (scripts/setup installs it)"
E2E_KEEP_ON_FAIL=1
DRIVER=$WSMUX_REPO/tests/browser/console_test.js
SHOTS=$T/screenshots

prepare_keys_cmd

# ---- keys, sshd, config -------------------------------------------------------

gen_keys # host key, SSH_OPTS (their -i is overridden per key below)
gen_cert
mkdir -p "$T/keys"
ssh-keygen -q -t ed25519 -N '' -C alice@laptop -f "$T/keys/k1"
ssh-keygen -q -t ecdsa -b 256 -N '' -C alice@desktop -f "$T/keys/k2"
ssh-keygen -q -t ed25519 -N '' -C ops@shared -f "$T/keys/k3"
pub() { tr -d '\n' <"$T/keys/$1.pub" | sed 's/ *$//'; }

EDGE_CONFIG=$T/edge.json
start_keys_sshd web "$EDGE_CONFIG" p1 web
EDGE_PORT_FIXED=$(_freeport) # the same after a restart: the page's origin

# write_config TOKEN_ID TOKEN [EXTRA_JSON]: $EDGE_CONFIG with that admin
# token and the member token viewer ($VIEWER_TOKEN: reads only).
VIEWER_TOKEN=wsmux-e2e-viewer-$(openssl rand -hex 16)
write_config() {
  cat >"$EDGE_CONFIG" <<EOF
{
  "listen": "127.0.0.1:$EDGE_PORT_FIXED",
  "tls": {"cert": "$EDGE_CERT", "key": "$EDGE_KEY"},
  "drainTimeoutMs": $E2E_DRAIN_MS,${3:+
  $3,}
  "tokens": [
    {"id": "$1", "role": "admin", "sha256": "$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)"},
    {"id": "viewer", "role": "member", "sha256": "$(printf '%s' "$VIEWER_TOKEN" | sha256sum | cut -d' ' -f1)"}
  ],
  "projects": [{"id": "p1", "name": "Demo"}, {"id": "p2", "name": "Staging"}],
  "services": [
    {"id": "web", "projectId": "p1", "name": "Web app", "tags": ["prod", "eu"],
     "sshEnabled": true, "upstream": "127.0.0.1:${SSHD_PORTS[web]}"},
    {"id": "api", "projectId": "p1", "tags": ["prod", "eu"], "upstream": "127.0.0.1:1"},
    {"id": "cache", "projectId": "p1", "tags": ["prod"], "sshEnabled": true,
     "upstream": "127.0.0.1:1"},
    {"id": "nightly", "projectId": "p1", "kind": "job"},
    {"id": "db", "projectId": "p2", "tags": ["prod", "eu"], "sshEnabled": true,
     "upstream": "127.0.0.1:1"}
  ]
}
EOF
}

EDGE_TOKEN=wsmux-e2e-$(openssl rand -hex 16)
write_config admin "$EDGE_TOKEN"
start_edge
E2E_PROJECT=p1
BASE=https://127.0.0.1:$EDGE_PORT

# ---- helpers -------------------------------------------------------------------

# api METHOD PATH [BODY]: curl with the token; API_STATUS, API_BODY.
api() {
  local method=$1 path=$2 body=${3-} args=()
  [[ -z $body ]] || args=(-H 'Content-Type: application/json' --data-binary "$body")
  API_BODY=$(curl -sS --max-time 20 --cacert "$EDGE_CERT" -X "$method" \
    -H "Authorization: Bearer $EDGE_TOKEN" "${args[@]}" \
    -w '\n%{http_code}' "$BASE$path") || fail "curl $method $path failed"
  API_STATUS=${API_BODY##*$'\n'}
  API_BODY=${API_BODY%$'\n'*}
  API_BODY=${API_BODY%$'\n'} # the API ends JSON with a newline
}

# expect_api STATUS METHOD PATH [BODY]
expect_api() {
  local want=$1
  shift
  api "$@"
  [[ $API_STATUS == "$want" ]] ||
    fail "$1 $2: HTTP $API_STATUS, want $want: $API_BODY"
}

# expect_json JQ_FILTER WHAT: the filter is true of $API_BODY.
expect_json() {
  [[ $(jq -r "$1" <<<"$API_BODY") == true ]] ||
    fail "$2: '$1' is false of $API_BODY"
}

# try_ssh KEY: one login to web through the proxy with only that key.
try_ssh() {
  SSH_ERR=$T/ssh-$1.err
  SSH_RC=0
  SSH_OUT=$(timeout 60 ssh "${SSH_OPTS[@]}" -i "$T/keys/$1" -p "$PROXY_PORT" \
    "$LOGIN_USER@$PROXY_ADDR" "echo in-$1" 2>"$SSH_ERR") || SSH_RC=$?
}

expect_in() {
  try_ssh "$1"
  if ((SSH_RC != 0)) || [[ $SSH_OUT != "in-$1" ]]; then
    fail "key $1: want a login, got exit $SSH_RC, '$SSH_OUT': $(cat "$SSH_ERR")"
  fi
  log "key $1: logged in"
}

expect_denied() {
  try_ssh "$1"
  if ((SSH_RC != 255)) || ! grep -q 'Permission denied (publickey)' "$SSH_ERR"; then
    fail "key $1: want 'Permission denied (publickey)', got exit $SSH_RC," \
      "'$SSH_OUT': $(cat "$SSH_ERR")"
  fi
  log "key $1: Permission denied (publickey)"
}

# run_wsmux NAME ARGS...: wsmux under the sanitizers with the token;
# RUN_RC, RUN_OUT (text), RUN_ERR (file).
run_wsmux() {
  local name=$1
  shift
  wsmux_run "$name" 30 "WSMUX_TOKEN=$EDGE_TOKEN" -- "$@"
  RUN_OUT=$(<"$RUN_OUT")
}

# ---- the console's files, without a browser --------------------------------------

# curl_head PATH [CURL_ARGS...]: the status line and headers, no token.
curl_head() {
  local path=$1
  shift
  curl -sS --max-time 20 --cacert "$EDGE_CERT" -o "$T/curl.body" -D - "$@" \
    "$BASE$path" | tr -d '\r'
}
head=$(curl_head /console)
grep -qx 'HTTP/1.1 301 .*' <<<"$head" || fail "/console: $head"
grep -qix 'location: /console/' <<<"$head" || fail "/console: no redirect: $head"
head=$(curl_head /console/)
grep -qx 'HTTP/1.1 200 .*' <<<"$head" || fail "/console/: $head"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self';.*require-trusted-types-for 'script'" <<<"$head" ||
  fail "/console/ without the CSP: $head"
grep -qix 'x-content-type-options: nosniff' <<<"$head" || fail "no nosniff: $head"
grep -q '<script type="module" src="js/app.js"></script>' "$T/curl.body" ||
  fail "/console/ is not the console's page"
etag=$(sed -n 's/^etag: //Ip' <<<"$head")
[[ $etag =~ ^\"[0-9a-f]{16}\"$ ]] || fail "/console/: ETag '$etag'"
head=$(curl_head /console/ -H "If-None-Match: $etag")
grep -qx 'HTTP/1.1 304 .*' <<<"$head" || fail "If-None-Match: $head"
head=$(curl_head /console/js/match.js)
grep -qix 'content-type: text/javascript; charset=utf-8' <<<"$head" ||
  fail "match.js: $head"
head=$(curl_head /console/no-such-file)
grep -qx 'HTTP/1.1 404 .*' <<<"$head" || fail "a missing file: $head"
head=$(curl_head /v1/projects)
grep -qx 'HTTP/1.1 401 .*' <<<"$head" || fail "the API without a token: $head"
# The page's scripts hold no HTML sink (Trusted Types would refuse it at
# run time too).
if grep -rnE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function' \
  "$WSMUX_REPO/edge/console"; then
  fail "the console's scripts must not build HTML from strings"
fi
log "console files: redirect, CSP, ETag/304, 404, no token needed"

start_proxy web

# ---- the steps ------------------------------------------------------------------

# Texts the driver leaves in $T, checked against the CLI.
step_signed_in() {
  expect_api 200 GET /v1/ssh-identities
  expect_json '.identities == []' "no identity yet"
}

step_before_create() {
  expect_denied k1
  expect_denied k2
}

step_created() {
  expect_api 200 GET /v1/ssh-identities/alice-laptop
  expect_json ".keys == [\"$(pub k1)\", \"$(pub k2)\"]" "the two keys"
  expect_json '.projects == ["p1"]' "the project"
  expect_json '(.tags | sort) == ["eu", "prod"]' "the tags"
  expect_json '.matchAllTags == true' "Match all tags"
  expect_json '.description == "Alice'"'"'s laptop"' "the description"
  expect_in k1
  expect_in k2
  expect_denied k3
}

step_service_page() {
  local want bin
  bin=$(realpath "$WSMUX_BIN")
  run_wsmux ssh-config ssh config --projectId p1 --serviceId web
  ((RUN_RC == 0)) || fail "wsmux ssh config: exit $RUN_RC"
  want=${RUN_OUT//"ProxyCommand $bin "/"ProxyCommand wsmux "}
  [[ $(cat "$T/console-ssh-config.txt") == "$want" ]] ||
    fail "the console's ~/.ssh/config block:
$(cat "$T/console-ssh-config.txt")
differs from wsmux ssh config's:
$want"
  # The same words as the doctor, for a project and for a tag restriction.
  local p s
  for ps in p2/db p1/cache; do
    p=${ps%/*} s=${ps#*/}
    run_wsmux "doctor-$s" ssh doctor --projectId "$p" --serviceId "$s" \
      --key-file "$T/keys/k1.pub" --edge "$EDGE_URL" --ca "$EDGE_CERT"
    ((RUN_RC == 7)) || fail "doctor on $s: exit $RUN_RC: $RUN_OUT"
    grep -qxF "      $(cat "$T/console-why-$s.txt")" <<<"$RUN_OUT" ||
      fail "doctor on $s does not say what the console says
($(cat "$T/console-why-$s.txt")):
$RUN_OUT"
    log "doctor and console agree on $s: $(cat "$T/console-why-$s.txt")"
  done
}

step_edited() {
  expect_api 200 GET /v1/ssh-identities/alice-laptop
  expect_json ".keys == [\"$(pub k2)\"]" "one key left"
  expect_json '.description == "Alice'"'"'s desktop only"' "the new description"
  expect_json '.matchAllTags == true' "Match all tags kept"
  expect_denied k1
  expect_in k2
}

step_session_open() {
  timeout 120 ssh "${SSH_OPTS[@]}" -i "$T/keys/k2" -p "$PROXY_PORT" \
    "$LOGIN_USER@$PROXY_ADDR" 'echo started; exec sleep 100' \
    >"$T/long.out" 2>"$T/long.err" &
  LONG_PID=$!
  track "$LONG_PID" "long ssh session"
  wait_until 30 "the long ssh session to start" grep -q started "$T/long.out"
}

step_ssh_cancelled() {
  expect_api 200 GET /v1/projects/p1/services/web
  expect_json '.sshEnabled == true' "SSH still on after Cancel"
  kill -0 "$LONG_PID" 2>/dev/null || fail "the session ended although cancelled"
}

step_ssh_off() {
  expect_api 200 GET /v1/projects/p1/services/web
  expect_json '.sshEnabled == false' "SSH off"
  wait_exit "$LONG_PID" 20 || fail "the ssh session survived disabling SSH"
  wait_exit "$PROXY_PID" 20 || fail "the proxy survived disabling SSH"
  grep -qF "SSH was disabled for service web" "$PROXY_ERR" ||
    fail "the proxy does not say why: $(cat "$PROXY_ERR")"
  run_wsmux proxy-refused ssh service --projectId p1 --serviceId web \
    --proxyOnly --edge "$EDGE_URL" --ca "$EDGE_CERT" --address 127.0.0.1 --port 0
  if ((RUN_RC != 5)) || ! grep -qF "SSH is not enabled for service web" "$RUN_ERR"; then
    fail "a proxy for web with SSH off: exit $RUN_RC: $(cat "$RUN_ERR")"
  fi
  log "SSH off: the session and the proxy were closed, a new proxy is refused"
}

step_ssh_on() {
  expect_api 200 GET /v1/projects/p1/services/web
  expect_json '.sshEnabled == true' "SSH on again"
  start_proxy web
  expect_in k2
}

step_deleted() {
  expect_api 404 GET /v1/ssh-identities/alice-laptop
  expect_denied k2
}

step_bad_input() {
  expect_api 200 GET /v1/ssh-identities
  expect_json '[.identities[].name] == ["ops"]' "only ops was created"
  expect_api 200 GET /v1/ssh-identities/ops
  expect_json '.description == "<img src=x onerror=alert(1)>"' "the description verbatim"
  expect_json '.tags == ["<script>alert(2)</script>"]' "the tag verbatim"
  expect_denied k3 # no service has that tag
}

# Identities with every kind of restriction, one key each, for the
# driver's comparison of the console's rule with the edge's.
step_agreement_setup() {
  local i restr=(
    ''
    '"projects": ["p1"]'
    '"projects": ["p2"]'
    '"tags": ["eu"]'
    '"tags": ["prod", "eu"], "matchAllTags": true'
    '"projects": ["p1", "p2"], "tags": ["eu", "prod"]'
    '"tags": ["eu", "nope"], "matchAllTags": true'
    '"projects": ["p1"], "tags": ["prod"], "matchAllTags": true'
  )
  for i in "${!restr[@]}"; do
    ssh-keygen -q -t ed25519 -N '' -C "agree-$i" -f "$T/keys/agree$i"
    expect_api 201 POST /v1/ssh-identities \
      "{\"name\": \"agree-$i\", \"keys\": [\"$(pub "agree$i")\"]${restr[i]:+, ${restr[i]}}}"
  done
}

step_agreement() {
  :
}

# The viewer's writes were refused (403) by the edge: nothing changed.
step_forbidden() {
  expect_api 200 GET /v1/projects/p1/services/cache
  expect_json '.sshEnabled == true' "cache untouched"
  expect_api 404 GET /v1/ssh-identities/not-allowed
}

step_revoke() {
  stop_proxy "$PROXY_PID" "$PROXY_ERR"
  stop_pid "$EDGE_PID" 10 || fail "wsmux-edge needed SIGKILL"
  ((STOP_RC == 0)) || fail "wsmux-edge exited $STOP_RC on SIGTERM"
  keep_edge_log 1
  local old=$EDGE_TOKEN
  EDGE_TOKEN=wsmux-e2e-$(openssl rand -hex 16)
  write_config ops "$EDGE_TOKEN"
  start_edge
  [[ $EDGE_PORT == "$EDGE_PORT_FIXED" ]] || fail "the edge moved to port $EDGE_PORT"
  local status
  status=$(curl -sS --cacert "$EDGE_CERT" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $old" "$BASE/v1/projects")
  [[ $status == 401 ]] || fail "the revoked token still gets $status"
  STEP_REPLY=$EDGE_TOKEN
}

step_signed_out() {
  :
}

# ---- the browser ------------------------------------------------------------------

mkdir -p "$SHOTS"
coproc DRV {
  exec env CONSOLE_URL="$BASE/console/" CONSOLE_TOKEN="$EDGE_TOKEN" \
    CONSOLE_VIEWER_TOKEN="$VIEWER_TOKEN" CONSOLE_KEYS="$T/keys" CONSOLE_WORK="$T" CONSOLE_SHOTS="$SHOTS" \
    CHROMIUM="$CHROMIUM" node "$DRIVER" 2>"$T/run-driver.err"
}
track "$DRV_PID" "the browser driver"
exec {DRV_IN}<&"${DRV[0]}" {DRV_OUT}>&"${DRV[1]}"

done_ok=0
while :; do
  line=""
  if ! read -r -t 120 -u "$DRV_IN" line; then
    fail "the browser driver said nothing for 120 s or exited; its log ends:
$(tail -n 20 "$T/run-driver.err")"
  fi
  case $line in
    "STEP "*)
      name=${line#STEP }
      log "step $name"
      STEP_REPLY=""
      "step_$name"
      printf 'go %s\n' "$STEP_REPLY" >&"$DRV_OUT"
      ;;
    DONE)
      done_ok=1
      break
      ;;
    *)
      fail "the browser test failed: $line
$(tail -n 20 "$T/run-driver.err")"
      ;;
  esac
done
((done_ok)) || fail "the driver did not finish"
wait_exit "$DRV_PID" 30 || fail "the driver did not exit"
((WAIT_RC == 0)) || fail "the driver exited $WAIT_RC"
nshots=$(find "$SHOTS" -name '*.png' | wc -l)
((nshots >= 40)) || fail "only $nshots screenshots in $SHOTS"
log "browser: every step passed; $nshots screenshots"
if [[ -n ${CONSOLE_SCREENSHOTS:-} ]]; then
  mkdir -p "$CONSOLE_SCREENSHOTS"
  cp "$SHOTS"/*.png "$CONSOLE_SCREENSHOTS/"
  log "screenshots copied to $CONSOLE_SCREENSHOTS"
fi

# ---- "console": false ---------------------------------------------------------

stop_pid "$EDGE_PID" 10 || fail "wsmux-edge needed SIGKILL"
keep_edge_log 2
write_config ops "$EDGE_TOKEN" '"console": false'
start_edge
head=$(curl_head /console/)
grep -qx 'HTTP/1.1 401 .*' <<<"$head" ||
  fail "with the console off, /console/ is the API's (401): $head"
api GET /console/
[[ $API_STATUS == 404 && $API_BODY == '{"error":"no such route: \"/console/\""}' ]] ||
  fail "with the console off and a token: $API_STATUS $API_BODY"
log "\"console\": false: /console/ is an unknown API route"

if grep -qF "$EDGE_TOKEN" "$T"/edge*.err "$T/edge.out" "$T/run-driver.err"; then
  fail "the API token appears in a log"
fi
