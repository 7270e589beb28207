#!/usr/bin/env bash
#
# e2e resume_interactive: an open interactive session survives a network
# outage shorter than the edge's resume grace (default 60 s).
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the proxy logs at info;
#  - `ssh -T ... 'exec bash -s'` with its stdin on a FIFO: `echo one` is
#    answered;
#  - `fault cut` (connections reset, new ones reset at accept), 5 s,
#    `fault restore`; the proxy must still run;
#  - `echo two`, sent right after the restore, is answered within 30 s (the
#    proxy reconnected and resumed the stream; the sshd connection was kept
#    by the edge);
#  - `exit`: ssh exits 0 with exactly the expected output;
#  - the proxy logged a reconnect (/reconnect/i) and the relay saw more than
#    one connection from it.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

OUTAGE_S=5
ANSWER_S=30

start_stack_with_proxy --via-fault -- --log-level info

start_session s1
session_echo s1 one 30
log "session answers before the outage"

fault cut
sleep "$OUTAGE_S"
assert_proxy_alive "during a ${OUTAGE_S} s outage"
kill -0 "${SESSION_PID[s1]}" 2>/dev/null ||
  fail "the ssh session ended during the outage; it must be held open" \
    "(resumed after the reconnect); its stderr:
$(tail -n 10 "$T/run-s1.err")"
fault restore
_now_ms
t0=$_NOW_MS

session_echo s1 two "$ANSWER_S"
_now_ms
log "'echo two' answered $((_NOW_MS - t0)) ms after the network came back"

session_exit s1 30 || fail "ssh did not exit within 30 s of 'exit'"
((WAIT_RC == 0)) || fail "ssh exited with status $WAIT_RC after 'exit'," \
  "want 0; its stderr:
$(tail -n 10 "$T/run-s1.err")"
out=$(cat "$T/run-s1.out")
[[ $out == $'ready-s1\none\ntwo' ]] ||
  fail "session output is '$out', want ready-s1, one, two on three lines"

assert_proxy_alive "after the session"
grep -Eiq 'reconnect' "$PROXY_ERR" ||
  fail "the proxy logged no reconnect (no stderr line matching /reconnect/i" \
    "at --log-level info); its stderr:
$(tail -n 30 "$PROXY_ERR")"
assert_relay_reconnected "the first and the reconnect"

assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
