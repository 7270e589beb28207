#!/usr/bin/env bash
#
# e2e proxy_up: `wsmux proxy up -f FILE`, several services in one process.
#  - three services, each on its own endpoint (derived, or as the file
#    says) with its own WebSocket, the ready-made commands of each and a
#    summary line; ssh works through each;
#  - `proxy list` shows one row per service, one pid, the file (upFile);
#  - each service holds its own pidfile: a --proxyOnly for one of them
#    shows the running one and starts nothing; `proxy stop` of one service
#    is refused (exit 5); a second `proxy up` of the file starts nothing;
#  - SIGHUP after removing one service and adding another: the untouched
#    one's interactive ssh session keeps running (same ssh, same shell),
#    the removed one's session is closed and its endpoint refuses, the new
#    one works;
#  - a bad file is refused by `proxy reload` (exit 1, the JSON path named)
#    and by SIGHUP (the process says so), and nothing changes;
#  - `proxy reload` applies a changed setting (restart of that service
#    only) and lists the services; `proxy stop -f FILE` stops them all and
#    removes every file;
#  - `--detach`, then `proxy stop --all` stops the process once;
#  - a service the edge refuses (SSH off) stops alone, the others run; once
#    SSH is enabled, a reload starts it.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "s2 sshd" "s3 sshd" "s4 sshd" "off sshd service false"
P=$E2E_PROJECT S1=$E2E_SSH_SERVICE U=$LOGIN_USER
RUN=$XDG_RUNTIME_DIR/wsmux
UP=$T/up.json

# wsmux ARGS...: the CLI with the test's environment, bounded in time.
wsmux() { wsmux_bounded "$@"; }

# write_up SERVICE_JSON...: the file, edge and CA in it, user $U.
write_up() {
  local IFS=,
  printf '{"edge": "%s", "ca": "edge.crt", "user": "%s",\n "services": [%s]}\n' \
    "$EDGE_URL" "$U" "$*" >"$UP"
}
svc() { printf '{"projectId": "%s", "serviceId": "%s"%s}' "$P" "$1" "${2:-}"; }

# endpoint SERVICE FILE: "ADDR PORT" from the last banner of SERVICE.
endpoint() {
  sed -nE "s|^SSH proxy for $P/$1 started on endpoint: (.+):([0-9]+)\$|\\1 \\2|p" \
    "$2" | tail -n 1
}

# --- three services --------------------------------------------------------

write_up "$(svc "$S1")" "$(svc s2)" "$(svc s3 ', "address": "127.0.0.1", "port": 0')"
OUT=$T/up.out ERR=$T/up.err
env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" "$WSMUX_BIN" proxy up \
  -f "$UP" --log-level info </dev/null >"$OUT" 2>"$ERR" &
UPID=$!
track "$UPID" "wsmux proxy up" 1
E2E_SAN_LOGS+=("$ERR")
wait_output 30 "the summary of proxy up" "$UPID" "proxy up exited" "$ERR" \
  -F "3 services up from $UP (pid $UPID)" "$OUT"
declare -A ADDR=() PORT=()
for s in "$S1" s2 s3; do
  read -r ADDR[$s] PORT[$s] < <(endpoint "$s" "$OUT")
  [[ -n ${PORT[$s]} ]] || fail "no banner for $s: $(cat "$OUT")"
  grep -qxF "> SSH session: ssh $U@${ADDR[$s]} -p ${PORT[$s]}" "$OUT" ||
    fail "no ready-made ssh command for $s: $(cat "$OUT")"
  ssh_echo "via-$s" "ssh through $s" "${PORT[$s]}" "${ADDR[$s]}"
done
# Derived endpoints as --proxyOnly derives them; the file's own for s3.
for s in "$S1" s2; do
  want=$(wsmux ssh config --projectId "$P" --serviceId "$s" |
    sed -n 's/^  HostName //p')
  [[ ${ADDR[$s]} == "$want" && $want == 127.* && $want != 127.0.0.1 ]] ||
    fail "$s listens on ${ADDR[$s]}, the derived address is $want"
done
[[ ${ADDR[s3]} == 127.0.0.1 ]] || fail "s3 is not on 127.0.0.1: ${ADDR[s3]}"
log "three services up (pid $UPID), ssh through each"

# --- list, pidfiles ---------------------------------------------------------

wsmux proxy list --output json >"$T/list.json" || fail "proxy list failed"
[[ $(jq length "$T/list.json") == 3 ]] || fail "proxy list: $(cat "$T/list.json")"
[[ $(jq -r '[.[].pid] | unique | .[]' "$T/list.json") == "$UPID" ]] ||
  fail "proxy list: not one pid $UPID: $(cat "$T/list.json")"
[[ $(jq -r '[.[].upFile] | unique | .[]' "$T/list.json") == "$UP" ]] ||
  fail "proxy list: upFile: $(cat "$T/list.json")"
[[ $(jq -r '[.[].serviceId] | sort | join(",")' "$T/list.json") == "s2,s3,$S1" ]] ||
  fail "proxy list: services: $(cat "$T/list.json")"
[[ $(jq -r '.[] | select(.serviceId == "s2") | .endpoint' "$T/list.json") == "${ADDR[s2]}:${PORT[s2]}" ]] ||
  fail "proxy list: endpoint of s2: $(cat "$T/list.json")"
[[ -f $RUN/$P.s2.pid && -S $RUN/$P.s2.sock ]] || fail "no pidfile/socket for s2"
wsmux proxy list >"$T/list.txt" || fail "proxy list (table) failed"
[[ $(grep -c " $UPID " "$T/list.txt") == 3 ]] || fail "table: $(cat "$T/list.txt")"

# --proxyOnly for a service of it: shows it, starts nothing.
rc=0
wsmux ssh service --projectId "$P" --serviceId s2 --proxyOnly --user "$U" \
  --edge "$EDGE_URL" --ca "$EDGE_CERT" </dev/null >"$T/dup.out" 2>"$T/dup.err" || rc=$?
((rc == 0)) || fail "--proxyOnly of s2: exit $rc: $(cat "$T/dup.err")"
grep -qF "A proxy for $P/s2 is already running (pid $UPID)" "$T/dup.err" ||
  fail "--proxyOnly of s2: $(cat "$T/dup.err")"
grep -qF "SSH proxy started on endpoint: ${ADDR[s2]}:${PORT[s2]}" "$T/dup.out" &&
  grep -qF "It is served by \`wsmux proxy up -f $UP\`" "$T/dup.out" ||
  fail "--proxyOnly of s2: stdout: $(cat "$T/dup.out")"
# proxy stop of one service of it: refused, nothing stopped.
rc=0
wsmux proxy stop --projectId "$P" --serviceId s2 >"$T/stop1.out" 2>"$T/stop1.err" || rc=$?
((rc == 5)) || fail "proxy stop of s2: exit $rc, want 5"
grep -qF "wsmux: error: $P/s2 is served by \`wsmux proxy up -f $UP\` (pid $UPID)" "$T/stop1.err" ||
  fail "proxy stop of s2: $(cat "$T/stop1.err")"
assert_alive "$UPID" "proxy up"
# A second proxy up of the same file: shows the running one.
rc=0
wsmux proxy up -f "$UP" --log-level info </dev/null >"$T/up2.out" 2>"$T/up2.err" || rc=$?
((rc == 0)) || fail "second proxy up: exit $rc: $(cat "$T/up2.err")"
grep -qF "\`wsmux proxy up\` of $UP is already running (pid $UPID)" "$T/up2.err" &&
  [[ $(grep -c '^SSH proxy for ' "$T/up2.out") == 3 ]] ||
  fail "second proxy up: $(cat "$T/up2.out" "$T/up2.err")"
log "list, pidfiles, a --proxyOnly, stop of one service and a second up refused"

# --- SIGHUP: s2 removed, s4 added; s3's session keeps running ---------------

start_session keep "${PORT[s3]}" "${ADDR[s3]}"
session_send keep 'echo "shell $$"'
wait_until 10 "the remote shell's pid" grep -q '^shell [0-9]' "$T/run-keep.out"
SHELL_PID=$(sed -n 's/^shell //p' "$T/run-keep.out" | head -n1)
start_session gone "${PORT[s2]}" "${ADDR[s2]}"
write_up "$(svc "$S1")" "$(svc s3 ', "address": "127.0.0.1", "port": 0')" "$(svc s4)"
kill -HUP "$UPID"
wait_output 20 "the reload's summary" "$UPID" "proxy up exited on SIGHUP" "$ERR" \
  -F "Reloaded $UP: 1 started, 1 stopped, 0 restarted (settings changed), 2 unchanged" "$OUT"
wait_until 20 "the banner of s4" grep -q "^SSH proxy for $P/s4 started" "$OUT"
read -r A4 P4 < <(endpoint s4 "$OUT")
ssh_echo via-s4 "ssh through the added s4" "$P4" "$A4"
# The untouched session: same ssh process, same remote shell.
session_send keep 'echo "shell $$"'
session_expect keep "shell $SHELL_PID" 10
session_echo keep still-here 10
assert_alive "${SESSION_PID[keep]}" "the ssh session through s3"
# The removed service's session was closed, its endpoint refuses.
wait_exit "${SESSION_PID[gone]}" 15 || fail "the session through the removed s2 still runs"
session_end gone
! (exec 3<>"/dev/tcp/${ADDR[s2]}/${PORT[s2]}") 2>/dev/null ||
  fail "the removed s2 still accepts connections"
[[ ! -e $RUN/$P.s2.pid ]] || fail "the pidfile of the removed s2 is still there"
wsmux proxy list --output json >"$T/list2.json"
[[ $(jq -r '[.[].serviceId] | sort | join(",")' "$T/list2.json") == "s3,s4,$S1" ]] ||
  fail "after the reload: $(cat "$T/list2.json")"
log "SIGHUP: s2 stopped (its session closed), s4 started, s3's session untouched"

# --- a bad file is refused, nothing changes ---------------------------------

cp "$UP" "$T/up.good"
write_up "$(svc "$S1")" "$(svc s3 ', "port": 70000')"
rc=0
wsmux proxy reload -f "$UP" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
((rc == 1)) || fail "reload of a bad file: exit $rc, want 1"
grep -qF "services[1].port: expected an integer 0..65535, got 70000" "$T/bad.err" &&
  grep -qF "nothing was changed" "$T/bad.err" || fail "reload of a bad file: $(cat "$T/bad.err")"
kill -HUP "$UPID"
wait_output 20 "the refused reload's error" "$UPID" "proxy up exited" "$ERR" \
  -F "reload refused, nothing changed: $UP: services[1].port" "$ERR"
wsmux proxy list --output json >"$T/list3.json"
[[ $(jq -r '[.[].serviceId] | sort | join(",")' "$T/list3.json") == "s3,s4,$S1" ]] ||
  fail "a bad file changed something: $(cat "$T/list3.json")"
session_echo keep after-bad-file 10
log "a bad file: refused by proxy reload (exit 1) and by SIGHUP, nothing changed"

# --- proxy reload: a changed setting restarts that service only -------------

write_up "$(svc "$S1")" "$(svc s3 ', "address": "127.0.0.1", "port": 0')" \
  "$(svc s4 ', "user": "nobody"')"
rc=0
wsmux proxy reload >"$T/reload.out" 2>"$T/reload.err" || rc=$?
((rc == 0)) || fail "proxy reload: exit $rc: $(cat "$T/reload.err")"
grep -qE "^reloaded $UP \(pid $UPID\):( $P/(s3|s4|$S1)){3}\$" "$T/reload.out" ||
  fail "proxy reload: $(cat "$T/reload.out")"
wait_until 20 "s4 restarted with user nobody" \
  grep -qF "> SSH session: ssh nobody@" "$OUT"
grep -qF "1 restarted (settings changed), 2 unchanged" "$OUT" ||
  fail "the restart was not reported: $(tail -n 5 "$OUT")"
session_echo keep after-restart 10
log "proxy reload: s4 restarted for its new user, s3's session untouched"

# --- proxy stop -f FILE -----------------------------------------------------

session_exit keep 10 || fail "the session through s3 did not end"
wsmux proxy stop -f "$UP" >"$T/stop.out" 2>"$T/stop.err" ||
  fail "proxy stop -f: $(cat "$T/stop.err")"
[[ $(sort "$T/stop.out") == "$(printf 'stopped %s/%s (pid %s)\n' "$P" s3 "$UPID" "$P" s4 "$UPID" "$P" "$S1" "$UPID" | sort)" ]] ||
  fail "proxy stop -f: $(cat "$T/stop.out")"
wait_exit "$UPID" 5 || fail "proxy up still runs after proxy stop -f"
((WAIT_RC == 0)) || fail "proxy up exited $WAIT_RC after SIGTERM"
[[ -z $(ls "$RUN"/*.pid "$RUN"/*.sock 2>/dev/null) ]] || fail "files left: $(ls "$RUN")"
rc=0
wsmux proxy stop -f "$UP" 2>"$T/stop2.err" || rc=$?
((rc == 3)) || fail "proxy stop -f with nothing running: exit $rc, want 3"
log "proxy stop -f: every service stopped, files removed"

# --- --detach, then proxy stop --all ----------------------------------------

cp "$T/up.good" "$UP"
rc=0
(cd "$T" && wsmux proxy up -f up.json --detach </dev/null >"$T/det.out" 2>"$T/det.err") || rc=$?
((rc == 0)) || fail "proxy up --detach: exit $rc: $(cat "$T/det.err")"
re='^3 services running in the background \(pid ([0-9]+)\), log: (.+)$'
line=$(grep -E "$re" "$T/det.out") || fail "proxy up --detach: $(cat "$T/det.out" "$T/det.err")"
[[ $line =~ $re ]]
BG=${BASH_REMATCH[1]}
track "$BG" "proxy up --detach" 1
E2E_SAN_LOGS+=("${BASH_REMATCH[2]}")
[[ $(grep -c '^SSH proxy for ' "$T/det.out") == 3 ]] || fail "--detach: $(cat "$T/det.out")"
read -r A P1 < <(endpoint "$S1" "$T/det.out")
ssh_echo via-detached "ssh through the detached proxy up" "$P1" "$A"
wsmux proxy stop --all >"$T/all.out" 2>"$T/all.err" || fail "stop --all: $(cat "$T/all.err")"
[[ $(grep -c "^stopped $P/.* (pid $BG)\$" "$T/all.out") == 3 ]] || fail "stop --all: $(cat "$T/all.out")"
wait_exit "$BG" 5 || fail "the detached proxy up still runs"
log "--detach, then proxy stop --all"

# --- a service refused by the edge: alone; a reload brings it back ---------

write_up "$(svc "$S1")" "$(svc off)"
OUT=$T/up3.out ERR=$T/up3.err
env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" "$WSMUX_BIN" proxy up \
  -f "$UP" </dev/null >"$OUT" 2>"$ERR" &
UPID=$!
track "$UPID" "wsmux proxy up (off)" 1
E2E_SAN_LOGS+=("$ERR")
wait_output 30 "the summary with one service" "$UPID" "proxy up exited" "$ERR" \
  -F "1 service up from $UP (pid $UPID)" "$OUT"
grep -qF "wsmux[$P/off]: error: SSH is not enabled for service off" "$ERR" &&
  grep -qF "$P/off stopped (exit 5); the other services keep running" "$ERR" ||
  fail "the refused service: $(cat "$ERR")"
read -r A P1 < <(endpoint "$S1" "$OUT")
ssh_echo beside-off "ssh beside the refused service" "$P1" "$A"
wsmux service ssh enable --projectId "$P" --serviceId off --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" >/dev/null || fail "service ssh enable off"
wsmux proxy reload -f "$UP" >"$T/reload2.out" 2>"$T/reload2.err" ||
  fail "reload after enabling SSH: $(cat "$T/reload2.err")"
wait_until 20 "the banner of off" grep -q "^SSH proxy for $P/off started" "$OUT"
read -r A P2 < <(endpoint off "$OUT")
ssh_echo via-off "ssh through the service started again" "$P2" "$A"
stop_proxy "$UPID" "$ERR"
log "a service refused by the edge stops alone; a reload starts it again"

log "PASS"
