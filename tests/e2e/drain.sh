#!/usr/bin/env bash
#
# e2e drain: SIGTERM on the edge drains instead of cutting.
#  - proxy -> wsmux-faultrelay -> edge A -> sshd; an interactive session is
#    open on A;
#  - SIGTERM to A: it sends GOAWAY, refuses new upgrades (503), and keeps
#    the open session for up to drainTimeoutMs (set to 30 s here);
#  - edge B starts (same config) and the relay sends new connections to it
#    (`fault retarget`); a new ssh through the same proxy works: the proxy
#    opened a new WebSocket after GOAWAY, and it reached B;
#  - the old session still answers on A, then exits; A then exits by itself
#    (drained) well before its drain timeout, and logged the drain;
#  - the edge logged one line per stream open and close, with the token id,
#    project, service, bytes each way and result.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

E2E_DRAIN_MS=30000

start_stack_with_proxy --via-fault -- --log-level info
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT

start_session old
session_echo old one 30

EDGE_A_PID=$EDGE_PID EDGE_A_ERR=$EDGE_ERR
kill -TERM "$EDGE_A_PID"
_draining() { grep -q 'draining: 1 open stream' "$EDGE_A_ERR"; }
wait_until 10 "edge A to start draining" _draining
keep_edge_log a
EDGE_A_ERR=$T/edge-a.err
kill -0 "$EDGE_A_PID" 2>/dev/null || fail "edge A exited with a stream open"

start_edge # edge B, same config
fault retarget "$EDGE_PORT"
out=$(timeout 60 ssh -o ConnectTimeout=60 "${SSH_OPTS[@]}" -p "$P" "$U@$A" \
  'echo via-b' 2>"$T/run-new.err") ||
  fail "a new ssh during the drain failed: $(tail -n 5 "$T/run-new.err");" \
    "proxy: $(tail -n 15 "$PROXY_ERR")"
[[ $out == via-b ]] || fail "new ssh printed '$out'"
grep -qi 'going away' "$PROXY_ERR" ||
  fail "the proxy did not log the GOAWAY: $(tail -n 15 "$PROXY_ERR")"
grep -q 'connection open' "$EDGE_ERR" || fail "edge B saw no connection"
log "GOAWAY: new connections went to edge B over a new WebSocket"

# The old session finishes on A.
session_echo old two 30
session_exit old 30 || fail "old ssh did not exit"
((WAIT_RC == 0)) || fail "old ssh exited $WAIT_RC during the drain"
wait_exit "$EDGE_A_PID" 20 || fail "edge A did not exit once drained"
untrack "$EDGE_A_PID"
grep -q 'drained: every stream finished' "$EDGE_A_ERR" ||
  fail "edge A did not log the drain: $(tail -n 10 "$EDGE_A_ERR")"
log "edge A exited once its last stream finished"

# Logs: one line per stream open and close, with who and how much.
grep -Eq 'stream [0-9]+ open: token=test project=[^ ]+ service=ssh upstream=' \
  "$EDGE_A_ERR" || fail "edge A logged no stream open line"
grep -Eq 'stream [0-9]+ closed: token=test project=[^ ]+ service=ssh to_service=[1-9][0-9]* from_service=[1-9][0-9]* result=NO_ERROR' \
  "$EDGE_A_ERR" || fail "edge A logged no stream close line with bytes: $(grep closed "$EDGE_A_ERR")"
if grep -q "$EDGE_TOKEN" "$EDGE_A_ERR" "$EDGE_ERR"; then
  fail "an edge logged the token"
fi
stop_proxy "$PROXY_PID" "$PROXY_ERR"
