#!/usr/bin/env bash
#
# e2e edge_restart: the proxy outlives its edge.
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the proxy logs at info;
#  - an ssh command works; an interactive session is left open and idle;
#  - the edge is killed with SIGKILL (no GOAWAY, no close handshake): the
#    relay then passes on the reset, and the proxy's reconnects are refused
#    (nothing listens on the old port);
#  - the proxy must not exit; 3 s later a new edge starts with the same
#    config and state file; it listens on a new port: `fault retarget`;
#  - a new ssh through the same proxy, started right away (the proxy may
#    still be backing off), works within 60 s: it waits for the link and is
#    opened on the new session, even though the old session has expired
#    (the old session may fail or survive: its outcome is only logged);
#  - the relay saw more than one connection from the proxy.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

NEW_SSH_S=60

start_stack_with_proxy --via-fault -- --log-level info
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT

out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$P" "$U@$A" 'echo before') ||
  fail "ssh through the relay failed before the edge restart (status $?)"
[[ $out == before ]] || fail "ssh printed '$out', want 'before'"
start_session old

# SIGKILL: the edge gets no chance to say goodbye.
OLD_EDGE_PID=$EDGE_PID
kill -KILL "$OLD_EDGE_PID"
wait_exit "$OLD_EDGE_PID" 10 || fail "wsmux-edge survived SIGKILL"
keep_edge_log killed
log "wsmux-edge (pid $OLD_EDGE_PID) killed with SIGKILL"
sleep 3
assert_proxy_alive "after its edge was killed"

start_edge # same $EDGE_CONFIG, hence the same state file beside it
fault retarget "$EDGE_PORT"
_now_ms
t0=$_NOW_MS

# One new ssh, started while the proxy may still be backing off: a
# connection made while the link is down waits for it and is then opened
# on the new session (it is not one of the old streams, so the old
# session's expiry must not reset it). ConnectTimeout also bounds ssh's
# handshake, so it is raised to the test's bound.
rc=0
out=$(timeout "$NEW_SSH_S" ssh -o ConnectTimeout="$NEW_SSH_S" \
  "${SSH_OPTS[@]}" -p "$P" "$U@$A" 'echo after' 2>"$T/run-new.err") || rc=$?
if ((rc != 0)) || [[ $out != after ]]; then
  fail "a new ssh through the same proxy, started once the new edge" \
    "listened, failed (status $rc, output '$out'); it must wait for the" \
    "link and be opened on the new session, not be reset with the old" \
    "session's streams. ssh's stderr:
$(tail -n 5 "$T/run-new.err")
proxy's stderr:
$(tail -n 15 "$PROXY_ERR")"
fi
_now_ms
log "new ssh through the same proxy works $((_NOW_MS - t0)) ms after the" \
  "new edge started"

# The old session: either outcome is allowed; say which.
if kill -0 "${SESSION_PID[old]}" 2>/dev/null; then
  session_send old 'echo still-there'
  for _ in {1..50}; do
    grep -qx still-there "$T/run-old.out" && break
    kill -0 "${SESSION_PID[old]}" 2>/dev/null || break
    sleep 0.1
  done
  if grep -qx still-there "$T/run-old.out"; then
    log "the old session is still open and answers"
  else
    log "the old session is open but did not answer within 5 s (allowed)"
  fi
else
  wait_exit "${SESSION_PID[old]}" 1 || true
  log "the old session ended (ssh status $WAIT_RC; allowed):" \
    "$(tail -n 1 "$T/run-old.err")"
fi

assert_proxy_alive "at the end"
assert_relay_reconnected "the first and one to the new edge"
assert_alive "$EDGE_PID" "the new wsmux-edge"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
