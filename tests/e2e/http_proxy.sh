#!/usr/bin/env bash
#
# e2e http_proxy: wsmux reaches the edge through a real HTTP proxy, Debian's
# tinyproxy, with CONNECT: one open, one with Basic auth (BasicAuth), both
# allowing CONNECT to the edge's port and the fault relay's only
# (ConnectPort). wsmux -> tinyproxy -> [wsmux-faultrelay ->] edge -> sshd.
#  - admin calls: login (HTTPS_PROXY), project list (WSMUX_HTTP_PROXY_FILE
#    0600, --http-proxy with a warning about ps), an SSH identity created
#    and deleted (request bodies), doctor's `via` line and its FAIL line
#    when the proxy refuses;
#  - refusals: wrong credentials (401) and none (407) -> exit 8 with the
#    message, a port the proxy does not allow (403) -> exit 8, the edge
#    down behind the proxy (500) -> exit 4, the proxy down -> exit 4, a
#    proxy file others can read -> exit 1;
#  - NO_PROXY matching the edge: no proxy used (no CONNECT in its log), a
#    NO_PROXY entry for another port: the proxy is used;
#  - sessions: a direct ssh session (--http-proxy), --stdio as ssh's
#    ProxyCommand (HTTPS_PROXY), and through each tinyproxy a --proxyOnly
#    proxy: ssh, a 64 MiB scp up cut in the middle (fault relay between
#    tinyproxy and the edge) and resumed, byte-exact (cmp), 64 MiB down;
#  - the reconnect loop: tinyproxy stopped under a running proxy is retried
#    (connection refused); back with other credentials, the first refusal
#    ends the proxy with exit 8, after exactly one CONNECT;
#  - the proxy's password appears in no output of wsmux.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE=$((64 << 20))
CUT_AT=$((16 << 20))
OUTAGE_S=3

start_stack
start_faultrelay "$EDGE_PORT"
CLOSED_PORT=$(_freeport) # allowed by the open proxy, nothing listens there
start_tinyproxy tinyproxy-open "$EDGE_PORT" "$FAULT_PORT" "$CLOSED_PORT"
OPEN_PID=$TP_PID OPEN_PORT=$TP_PORT OPEN_LOG=$TP_LOG
OPEN_URL=http://127.0.0.1:$OPEN_PORT
PASS=pw-$RANDOM$RANDOM
start_tinyproxy tinyproxy-auth --auth alice "$PASS" "$EDGE_PORT" "$FAULT_PORT"
AUTH_PID=$TP_PID AUTH_PORT=$TP_PORT AUTH_LOG=$TP_LOG
AUTH_URL=http://alice:$PASS@127.0.0.1:$AUTH_PORT
AUTH_SHOWN="http://***@127.0.0.1:$AUTH_PORT"
EDGE_AT=127.0.0.1:$EDGE_PORT
assert_alive "$OPEN_PID" "tinyproxy-open"

export XDG_CONFIG_HOME=$T/xdg
CONN=(--edge "$EDGE_URL" --ca "$EDGE_CERT")

# cli NAME [VAR=VALUE...] -- ARGS...: wsmux ARGS with the variables given
# (WSMUX_TOKEN is the edge's unless given), stdin /dev/null, bounded;
# RUN_RC, RUN_OUT, RUN_ERR.
cli() {
  local name=$1
  shift
  wsmux_run "$name" 60 "WSMUX_TOKEN=$EDGE_TOKEN" "$@"
}

# ok NAME: exit 0.
ok() {
  ((RUN_RC == 0)) || fail "$1: exit $RUN_RC, want 0; stderr: $(cat "$RUN_ERR")"
}

# refused NAME CODE TEXT...: exit CODE, each TEXT in a "wsmux: error:" line.
refused() {
  local name=$1 code=$2 t
  shift 2
  ((RUN_RC == code)) ||
    fail "$name: exit $RUN_RC, want $code; stderr: $(cat "$RUN_ERR")"
  for t in "$@"; do
    grep '^wsmux: error: ' "$RUN_ERR" | grep -qF -- "$t" ||
      fail "$name: no 'wsmux: error: ...$t...' on stderr: $(cat "$RUN_ERR")"
  done
  log "$name: exit $RUN_RC: $(grep -m1 '^wsmux: error: ' "$RUN_ERR")"
}

# connects LOG: CONNECTs to the edge itself in a tinyproxy log.
connects() {
  tinyproxy_connects "$1" "$EDGE_AT"
}

# --- admin calls -------------------------------------------------------------

n0=$(connects "$OPEN_LOG")
cli login HTTPS_PROXY="$OPEN_URL" -- login "${CONN[@]}" --token "$EDGE_TOKEN"
ok login
grep -q "^Logged in to $EDGE_URL" "$RUN_OUT" || fail "login: $(cat "$RUN_OUT")"
(($(connects "$OPEN_LOG") == n0 + 1)) ||
  fail "login did not go through tinyproxy-open: $(tail -n 5 "$OPEN_LOG")"
log "login through tinyproxy-open (HTTPS_PROXY)"

printf '%s\n' "$AUTH_URL" >"$T/proxy.url"
chmod 600 "$T/proxy.url"
n0=$(connects "$AUTH_LOG")
cli list_file WSMUX_HTTP_PROXY_FILE="$T/proxy.url" -- project list
ok list_file
grep -Eq '^p1 +Demo$' "$RUN_OUT" || fail "project list: $(cat "$RUN_OUT")"
(($(connects "$AUTH_LOG") == n0 + 1)) ||
  fail "project list did not go through tinyproxy-auth: $(tail -n 5 "$AUTH_LOG")"
[[ ! -s $RUN_ERR ]] || fail "list_file: stderr: $(cat "$RUN_ERR")"
cli list_flag -- project list --http-proxy "$AUTH_URL"
ok list_flag
grep -q '^wsmux: warning: --http-proxy holds a password' "$RUN_ERR" ||
  fail "no warning about a password in --http-proxy: $(cat "$RUN_ERR")"
grep -Eq '^p1 +Demo$' "$RUN_OUT" || fail "project list: $(cat "$RUN_OUT")"
chmod 644 "$T/proxy.url"
cli list_unsafe -- project list --http-proxy-file "$T/proxy.url"
refused list_unsafe 1 "holds a password but group or others can read it" \
  "chmod 600"
chmod 600 "$T/proxy.url"

# Request bodies: an identity created and deleted through the proxy (doctor
# needs it below).
PX=(WSMUX_HTTP_PROXY_FILE="$T/proxy.url")
cli id_create "${PX[@]}" -- ssh-identity create --name via-proxy \
  --key-file "$CLIENT_KEY.pub" --output json
ok id_create
grep -q '"name": *"via-proxy"' "$RUN_OUT" || fail "id_create: $(cat "$RUN_OUT")"
cli id_temp "${PX[@]}" -- ssh-identity create --name temp \
  --key "$(cat "$CLIENT_KEY.pub")"
ok id_temp
cli id_delete "${PX[@]}" -- ssh-identity delete temp
ok id_delete
log "admin calls through tinyproxy-auth: a proxy file, --http-proxy, bodies"

# doctor says how it reaches the edge.
cli doctor_proxy HTTPS_PROXY="$AUTH_URL" -- ssh doctor --projectId p1 \
  --serviceId "$E2E_SSH_SERVICE" --key-file "$CLIENT_KEY.pub"
ok doctor_proxy
grep -qxF "via   HTTP proxy $AUTH_SHOWN (from HTTPS_PROXY)" "$RUN_OUT" ||
  fail "doctor: no via line for the proxy: $(cat "$RUN_OUT")"
grep -q '^all checks passed' "$RUN_OUT" || fail "doctor: $(cat "$RUN_OUT")"
n0=$(connects "$OPEN_LOG")
cli doctor_np HTTPS_PROXY="$OPEN_URL" NO_PROXY="localhost,127.0.0.1" -- \
  ssh doctor --projectId p1 --serviceId "$E2E_SSH_SERVICE" \
  --key-file "$CLIENT_KEY.pub"
ok doctor_np
grep -qxF "via   direct (NO_PROXY matches 127.0.0.1)" "$RUN_OUT" ||
  fail "doctor: no direct via line: $(cat "$RUN_OUT")"
cli doctor_direct -- ssh doctor --projectId p1 --serviceId "$E2E_SSH_SERVICE" \
  --key-file "$CLIENT_KEY.pub"
grep -qxF "via   direct" "$RUN_OUT" || fail "doctor: $(cat "$RUN_OUT")"
log "doctor: via the proxy (redacted), direct by NO_PROXY, direct"

# --- NO_PROXY --------------------------------------------------------------

cli np_match HTTPS_PROXY="$OPEN_URL" no_proxy=".example.com,127.0.0.0/8" -- \
  project list
ok np_match
cli np_port HTTPS_PROXY="$OPEN_URL" NO_PROXY="127.0.0.1:1" -- project list
ok np_port
(($(connects "$OPEN_LOG") == n0 + 1)) ||
  fail "NO_PROXY: want exactly one CONNECT (the one for another port):" \
    "$(grep CONNECT "$OPEN_LOG" | tail -n 5)"
log "NO_PROXY matching the edge: no CONNECT; an entry for another port: proxied"

# --- refusals ------------------------------------------------------------------

WRONG_URL=http://alice:wrong-$PASS@127.0.0.1:$AUTH_PORT
cli wrong_pw HTTPS_PROXY="$WRONG_URL" -- project list
refused wrong_pw 8 "the HTTP proxy at $AUTH_SHOWN refused the credentials" \
  "(HTTP 401 Unauthorized)"
cli doctor_refused HTTPS_PROXY="$WRONG_URL" -- ssh doctor --projectId p1 \
  --serviceId "$E2E_SSH_SERVICE" --key-file "$CLIENT_KEY.pub"
refused doctor_refused 8 "refused the credentials"
grep -qF "FAIL  proxy: the HTTP proxy $AUTH_SHOWN refused the tunnel to $EDGE_URL" \
  "$RUN_OUT" || fail "doctor: no FAIL line for the proxy: $(cat "$RUN_OUT")"
cli no_creds HTTPS_PROXY="http://127.0.0.1:$AUTH_PORT" -- project list
refused no_creds 8 "requires credentials (HTTP 407" "http://USER:PASSWORD@"
cli wrong_ssh HTTPS_PROXY="$WRONG_URL" -- ssh service --projectId p1 \
  --serviceId "$E2E_SSH_SERVICE" --proxyOnly --address 127.0.0.1 --port 0 \
  "${CONN[@]}"
refused wrong_ssh 8 "cannot connect to the edge: the HTTP proxy at" \
  "refused the credentials"
[[ ! -s $RUN_OUT ]] || fail "wrong_ssh printed: $(cat "$RUN_OUT")"
cli forbidden HTTPS_PROXY="$OPEN_URL" -- project list \
  --edge "wss://127.0.0.1:$((EDGE_PORT == 65535 ? 1 : EDGE_PORT + 1))" \
  --ca "$EDGE_CERT"
refused forbidden 8 "the HTTP proxy at $OPEN_URL refused to connect to" \
  "(HTTP 403"
cli edge_down HTTPS_PROXY="$OPEN_URL" -- project list \
  --edge "wss://127.0.0.1:$CLOSED_PORT" --ca "$EDGE_CERT"
refused edge_down 4 "through the HTTP proxy at $OPEN_URL: the proxy answered HTTP 500"
DOWN_PORT=$(_freeport)
cli proxy_down HTTPS_PROXY="http://127.0.0.1:$DOWN_PORT" -- project list
refused proxy_down 4 "cannot reach the HTTP proxy at http://127.0.0.1:$DOWN_PORT: connection refused"
cli socks ALL_PROXY="socks5://127.0.0.1:1080" -- project list
refused socks 1 "ALL_PROXY: SOCKS proxies are not supported"

# --- sessions --------------------------------------------------------------------

n0=$(connects "$OPEN_LOG")
rc=0
out=$(timeout 60 env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" \
  "$WSMUX_BIN" ssh service --projectId p1 --serviceId "$E2E_SSH_SERVICE" \
  "${CONN[@]}" --user "$LOGIN_USER" --http-proxy "$OPEN_URL" -- \
  "${SSH_OPTS[@]}" 'echo direct-ok' 2>"$T/run-direct.err") || rc=$?
E2E_SAN_LOGS+=("$T/run-direct.err")
((rc == 0)) && [[ $out == direct-ok ]] ||
  fail "direct session through the proxy: exit $rc, '$out': $(cat "$T/run-direct.err")"
(($(connects "$OPEN_LOG") == n0 + 1)) || fail "the direct session did not use tinyproxy-open"
log "direct ssh session through tinyproxy-open (--http-proxy)"

n0=$(connects "$AUTH_LOG")
printf -v pcmd '%q ' env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" \
  HTTPS_PROXY="$AUTH_URL" "$WSMUX_BIN" ssh service --projectId p1 \
  --serviceId "$E2E_SSH_SERVICE" --stdio "${CONN[@]}"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -o "ProxyCommand=$pcmd 2>>$T/run-stdio.err" \
  "$LOGIN_USER@stdio-host" 'echo stdio-ok' 2>>"$T/run-stdio-ssh.err") ||
  fail "ssh with --stdio through tinyproxy-auth failed: $(cat "$T/run-stdio.err" "$T/run-stdio-ssh.err")"
E2E_SAN_LOGS+=("$T/run-stdio.err")
[[ $out == stdio-ok ]] || fail "--stdio session printed '$out'"
(($(connects "$AUTH_LOG") == n0 + 1)) || fail "--stdio did not use tinyproxy-auth"
log "--stdio (ssh's ProxyCommand) through tinyproxy-auth (HTTPS_PROXY)"

R=$T/remote
mkdir -p "$R"
head -c "$SIZE" /dev/urandom >"$T/big"

# through NAME URL LOG: a --proxyOnly proxy to the edge through the fault
# relay, by way of the tinyproxy at URL: ssh, 64 MiB up with a cut between
# tinyproxy and the edge in the middle, 64 MiB down, all byte-exact.
through() {
  local name=$1 url=$2 tlog=$3 relay_at=127.0.0.1:$FAULT_PORT n
  n=$(tinyproxy_connects "$tlog" "$relay_at")
  HTTPS_PROXY=$url start_proxy_via_fault "$E2E_SSH_SERVICE" --log-level info
  grep -q "reaching the edge through the HTTP proxy http://" "$PROXY_ERR" ||
    fail "$name: the proxy did not log its HTTP proxy: $(cat "$PROXY_ERR")"
  ssh_echo "ssh-$name" "ssh through $name"
  rm -f "$R/big"
  fault throttle $((8 << 20))
  scp_upload_start 300 "$T/big" "$PROXY_ADDR" "$PROXY_PORT" "$R/big" \
    "scp upload through $name"
  wait_upload_past "$R/big" "$CUT_AT"
  fault cut
  remote_size "$R/big"
  ((REMOTE_SIZE < SIZE)) && kill -0 "$SCP_PID" 2>/dev/null ||
    fail "$name: the upload was over at the cut: the test could not cut it"
  sleep "$OUTAGE_S"
  assert_proxy_alive "during a ${OUTAGE_S} s outage behind $name"
  fault restore
  wait_exit "$SCP_PID" 240 || fail "$name: scp did not finish after the restore"
  ((WAIT_RC == 0)) || fail "$name: scp failed ($WAIT_RC) across the cut: $(tail -n 5 "$T/run-scp.err")"
  cmp "$T/big" "$R/big" || fail "$name: the upload differs after the resume"
  grep -q 'session resumed' "$PROXY_ERR" ||
    fail "$name: no resume in the proxy's log: $(tail -n 20 "$PROXY_ERR")"
  timeout 300 scp "${SSH_OPTS[@]}" -q -P "$PROXY_PORT" \
    "$LOGIN_USER@$PROXY_ADDR:$T/big" "$T/big.down" </dev/null 2>"$T/run-scp-down.err" ||
    fail "$name: download failed: $(tail -n 5 "$T/run-scp-down.err")"
  cmp "$T/big" "$T/big.down" || fail "$name: the download differs"
  rm -f "$T/big.down"
  stop_proxy "$PROXY_PID" "$PROXY_ERR"
  (($(tinyproxy_connects "$tlog" "$relay_at") >= n + 2)) ||
    fail "$name: want the first CONNECT and a reconnect's in its log"
  log "$name: ssh, 64 MiB up across a ${OUTAGE_S} s cut (resumed) and down, byte-exact"
}
through tinyproxy-open "$OPEN_URL" "$OPEN_LOG"
through tinyproxy-auth "$AUTH_URL" "$AUTH_LOG"

# --- the reconnect loop and a proxy that refuses ----------------------------------

HTTPS_PROXY=$AUTH_URL start_proxy "$E2E_SSH_SERVICE" --log-level info
ssh_echo before-refusal "ssh before the proxy went away"
stop_pid "$AUTH_PID" 5 || fail "tinyproxy-auth did not stop"
_retried() { (($(grep -c 'reconnecting in' "$PROXY_ERR") >= 2)); }
wait_until 20 "the proxy to retry a proxy that is down" _retried
assert_proxy_alive "while its HTTP proxy is down (it must retry)"
grep -qF "cannot reach the HTTP proxy at $AUTH_SHOWN: connection refused" "$PROXY_ERR" ||
  fail "no 'cannot reach the HTTP proxy' in the log: $(tail -n 10 "$PROXY_ERR")"
start_tinyproxy tinyproxy-auth2 --auth alice "other-$PASS" --port "$AUTH_PORT" \
  "$EDGE_PORT"
wait_exit "$PROXY_PID" 30 ||
  fail "the proxy still runs 30 s after its HTTP proxy refused the credentials"
((WAIT_RC == 8)) || fail "the proxy exited $WAIT_RC after a refusal, want 8: $(tail -n 10 "$PROXY_ERR")"
grep -qF "wsmux: error: cannot connect to the edge: the HTTP proxy at $AUTH_SHOWN refused the credentials" \
  "$PROXY_ERR" || fail "no refusal message: $(tail -n 10 "$PROXY_ERR")"
(($(tinyproxy_connects "$TP_LOG") == 1)) ||
  fail "want exactly one CONNECT to the refusing proxy, got $(tinyproxy_connects "$TP_LOG")"
log "proxy down: retried; back with other credentials: one CONNECT, exit 8"

# --- no password anywhere ---------------------------------------------------------

for f in "$T"/run-*.err "$T"/run-*.out "$T"/proxy*.err "$T"/proxy*.out; do
  [[ -f $f ]] || continue
  if grep -qF -- "$PASS" "$f"; then
    fail "the proxy's password appears in $f"
  fi
done
assert_alive "$EDGE_PID" wsmux-edge
log "the password of the proxy appears in no output"
