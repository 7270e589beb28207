#!/usr/bin/env bash
#
# e2e fleet_failover: three edges on one PostgreSQL behind HAProxy (the
# example config, tests/e2e/fleet_lib.sh), edges going away:
#  - SIGTERM to the edge that holds a proxy's session: its /healthz answers
#    503 at once, HAProxy takes it out of the rotation, new ssh through that
#    proxy lands on another edge (GOAWAY: a new WebSocket), a command that
#    ends within drainTimeoutMs finishes with its output, an interactive
#    session that exits within it too, and the edge exits 0 once they did;
#  - SIGKILL to the edge that holds another proxy's session: that proxy
#    stays up, says once per stream that it was reset and why ("the session
#    was on edge edge-X, which is gone..."), a new ssh through it works
#    within 5 s of the kill, and a session held by the third edge is
#    untouched.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/fleet_lib.sh
source "$(dirname "$0")/fleet_lib.sh"

FLEET_DRAIN_MS=15000
start_fleet
U=$LOGIN_USER

# proxy_on NAME: a proxy through HAProxy; sets NAME_PID/PORT/ERR and the
# edge its session is on (NAME_EDGE).
proxy_on() {
  local before
  before=$(fleet_opens)
  E2E_EDGE_URL_OVERRIDE=$HAPROXY_URL start_proxy "$E2E_SSH_SERVICE" --log-level info
  fleet_new_open "$before"
  printf -v "${1}_PID" '%s' "$PROXY_PID"
  printf -v "${1}_PORT" '%s' "$PROXY_PORT"
  printf -v "${1}_ERR" '%s' "$PROXY_ERR"
  printf -v "${1}_EDGE" '%s' "$FLEET_NEW"
  log "proxy $1 (port $PROXY_PORT): session on edge-$FLEET_NEW"
}

# ---- drain -------------------------------------------------------------------
proxy_on P1
H1=$P1_EDGE
start_session s1 "$P1_PORT"
timeout 120 ssh "${SSH_OPTS[@]}" -p "$P1_PORT" "$U@127.0.0.1" 'sleep 4; echo finished-in-drain' \
  </dev/null >"$T/run-long.out" 2>"$T/run-long.err" &
LONG_PID=$!
track "$LONG_PID" "ssh (long command)"
_long_started() { grep -q 'stream [0-9]* open' "$T/edge-$H1.err" &&
  (($(grep -c 'stream [0-9]* open' "$T/edge-$H1.err") >= 2)); }
wait_until 30 "the long command's stream on edge-$H1" _long_started

before=$(fleet_opens)
kill -TERM "${EDGE_PIDS[$H1]}"
health() { curl -s -o "$T/health.body" -w '%{http_code}' "http://127.0.0.1:${EDGE_PORTS[$H1]}/healthz" || true; }
_draining() { [[ $(health) == 503 ]]; }
wait_until 5 "edge-$H1's /healthz to answer 503" _draining
grep -q '"status":"draining","node":"edge-'"$H1"'"' "$T/health.body" ||
  fail "/healthz while draining: $(cat "$T/health.body")"
_out_of_rotation() { ! haproxy_server_up "$HAPROXY_SOCK" "be_wsmux/edge-$H1"; }
wait_until 15 "HAProxy to take edge-$H1 out" _out_of_rotation
log "SIGTERM: edge-$H1 answers /healthz 503, HAProxy took it out"

# The GOAWAY makes the proxy open a WebSocket for new connections at once.
_moved() { [[ $(fleet_opens) != "$before" ]]; }
wait_until 10 "proxy P1's new WebSocket after the GOAWAY" _moved
fleet_new_open "$before"
[[ $FLEET_NEW != "$H1" ]] || fail "a new WebSocket went to the draining edge-$H1"
P1_EDGE=$FLEET_NEW
streams_before=$(grep -c 'stream [0-9]* open' "$T/edge-$P1_EDGE.err" || true)
ssh_echo new-during-drain "a new ssh while edge-$H1 drains" "$P1_PORT" 127.0.0.1
(($(grep -c 'stream [0-9]* open' "$T/edge-$P1_EDGE.err") > streams_before)) ||
  fail "the new ssh did not go through edge-$P1_EDGE"
log "new ssh during the drain: on edge-$P1_EDGE"

wait_exit "$LONG_PID" 60 || fail "the long command did not finish"
((WAIT_RC == 0)) && [[ $(cat "$T/run-long.out") == finished-in-drain ]] ||
  fail "the command that ended within the drain: status $WAIT_RC, '$(cat "$T/run-long.out")': $(cat "$T/run-long.err")"
session_echo s1 still-there 30
session_exit s1 10 || fail "session s1 did not end"
wait_exit "${EDGE_PIDS[$H1]}" 20 || fail "edge-$H1 did not exit after its streams finished"
((WAIT_RC == 0)) || fail "edge-$H1 exited $WAIT_RC after draining"
grep -q 'drained: every stream finished' "$T/edge-$H1.err" ||
  fail "edge-$H1: $(tail -n 5 "$T/edge-$H1.err")"
log "drain: what ended within it was not lost; edge-$H1 exited 0"

# ---- SIGKILL ----------------------------------------------------------------
X=$P1_EDGE
start_session s3 "$P1_PORT"
# A second proxy, on the other live edge.
for attempt in 1 2 3 4; do
  proxy_on P2
  [[ $P2_EDGE != "$X" ]] && break
  stop_proxy "$P2_PID" "$P2_ERR"
done
[[ $P2_EDGE != "$X" ]] || fail "no proxy session on an edge other than edge-$X"
Y=$P2_EDGE
start_session s2 "$P2_PORT"
session_echo s2 before-kill 30

kill -KILL "${EDGE_PIDS[$Y]}"
_now_ms
t_kill=$_NOW_MS
log "SIGKILL to edge-$Y"
_works() {
  timeout 4 ssh "${SSH_OPTS[@]}" -p "$P2_PORT" "$U@127.0.0.1" 'echo alive-again' \
    </dev/null 2>/dev/null | grep -qx alive-again
}
wait_until 5 "a new ssh through proxy P2 within 5 s of the kill" _works
_now_ms
log "new ssh through P2 works $((_NOW_MS - t_kill)) ms after the kill"
wait_exit "${SESSION_PID[s2]}" 10 || fail "session s2 outlived its edge"
kill -0 "$P2_PID" || fail "proxy P2 exited after its edge was killed: $(tail -n 5 "$P2_ERR")"
n=$(grep -c "reset: the session was on edge edge-$Y, which is gone or out of reach (now connected to edge edge-$X)" "$P2_ERR" || true)
((n == 1)) || fail "proxy P2 reported the lost stream $n times, want once: $(grep -i 'reset\|reconnected' "$P2_ERR")"
session_echo s3 untouched 30
log "SIGKILL: P2 said its stream was lost (once), the session on edge-$X went on"
session_exit s3 10 || true
