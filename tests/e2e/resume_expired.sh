#!/usr/bin/env bash
#
# e2e resume_expired: an outage longer than the edge's resume grace ends
# the old sessions cleanly, and the proxy goes on serving new ones.
#  - the edge config sets "resumeGraceMs": 3000;
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the proxy logs at info;
#  - an interactive session (ssh -T, remote `bash -s` fed by a FIFO)
#    answers `echo one`;
#  - `fault cut` for 8 s (longer than the 3 s grace), `fault restore`;
#  - the old ssh ends with a non-zero status, at the latest 60 s after the
#    restore (its stream cannot be resumed: the proxy resets the local
#    connection, during the outage once the grace is over, or when the edge
#    refuses the resume);
#  - the proxy logged why (a stderr line since the cut matching
#    /expired|reset/i);
#  - the proxy still runs and a new ssh through it works (60 s bound).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

GRACE_MS=3000
OUTAGE_S=8

start_stack_with_proxy --via-fault --edge-json "\"resumeGraceMs\": $GRACE_MS" \
  -- --log-level info
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT

start_session s1
session_echo s1 one 30

# What the proxy logs from the cut on explains the end of the session
# (it may end it during the outage, once the grace is over, or after the
# reconnect, when the edge refuses the resume).
LOG_FROM=$(($(wc -l <"$PROXY_ERR") + 1))
fault cut
sleep "$OUTAGE_S"
assert_proxy_alive "during an ${OUTAGE_S} s outage"
ended_during_outage=0
kill -0 "${SESSION_PID[s1]}" 2>/dev/null || ended_during_outage=1
fault restore
_now_ms
t0=$_NOW_MS

# The session may already be over; a write into the FIFO never blocks.
kill -0 "${SESSION_PID[s1]}" 2>/dev/null && session_send s1 'echo two'
wait_exit "${SESSION_PID[s1]}" 60 ||
  fail "the old ssh session still runs 60 s after the network came back," \
    "though its resume grace (${GRACE_MS} ms) ran out during the" \
    "${OUTAGE_S} s outage: the proxy must reset its local connection;" \
    "session output: '$(tr '\n' ' ' <"$T/run-s1.out")'; proxy stderr:
$(tail -n 30 "$PROXY_ERR")"
_now_ms
((WAIT_RC != 0)) ||
  fail "the old ssh session exited 0; want a failure (its stream expired)"
if ((ended_during_outage)); then
  when="during the outage"
else
  when="$((_NOW_MS - t0)) ms after the restore"
fi
log "old session ended (ssh status $WAIT_RC) $when:" \
  "$(tail -n 1 "$T/run-s1.err")"
session_end s1
if grep -qx two "$T/run-s1.out"; then
  fail "the old session answered 'echo two' after its grace expired"
fi

assert_proxy_alive "after the expired resume"
tail -n "+$LOG_FROM" "$PROXY_ERR" >"$T/proxy-since-cut.log"
if ! grep -Eiq 'expired|reset' "$T/proxy-since-cut.log"; then
  fail "the proxy did not say why the old session ended (no stderr line" \
    "matching /expired|reset/i since the cut); its whole stderr:
$(cat "$PROXY_ERR")"
fi
grep -Eiq 'expired' "$T/proxy-since-cut.log" ||
  log "note: no 'expired' in the proxy's log, only 'reset'"
log "proxy says: $(grep -Ei 'expired|reset' "$T/proxy-since-cut.log" |
  head -n 3)"

# A new connection through the same proxy process.
_now_ms
t0=$_NOW_MS
out=$(timeout 60 ssh -o ConnectTimeout=50 "${SSH_OPTS[@]}" -p "$P" "$U@$A" \
  'echo fresh' 2>"$T/run-fresh.err") ||
  fail "a new ssh through the same proxy failed (status $?) after the old" \
    "session expired; its stderr:
$(tail -n 10 "$T/run-fresh.err")"
[[ $out == fresh ]] || fail "new ssh printed '$out', want 'fresh'"
_now_ms
log "a new ssh works ($((_NOW_MS - t0)) ms)"

assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
