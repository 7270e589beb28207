#!/usr/bin/env bash
#
# e2e slow_link: a link with latency spikes is slow, not dead.
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the proxy logs at info;
#  - an interactive session (ssh -T, remote `bash -s` fed by a FIFO) is
#    open;
#  - `fault delay 200 1`: 1 % of the chunks the relay forwards (each way)
#    are held 200 ms, the ones behind them wait (order kept);
#  - meanwhile a 64 MiB scp upload and a 64 MiB scp download run at the
#    same time; both finish with status 0, byte-identical (cmp);
#  - while they run, the session is probed every 0.5 s (`echo probe-N`):
#    every probe is answered within 10 s;
#  - the relay did hold chunks (else the test proved nothing), the link was
#    never dropped (one connection from the proxy, nothing reset), the
#    session ends with status 0.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE=$((64 << 20))
PROBE_S=10

start_stack_with_proxy --via-fault -- --log-level info
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT
R=$T/remote
mkdir -p "$R"

head -c "$SIZE" /dev/urandom >"$T/up.bin"
head -c "$SIZE" /dev/urandom >"$R/down.bin"
start_session s1

fault delay 200 1
_now_ms
t0=$_NOW_MS
timeout 300 scp "${SSH_OPTS[@]}" -q -P "$P" "$T/up.bin" "$U@$A:$R/up.bin" \
  </dev/null >/dev/null 2>"$T/run-scp-up.err" &
UP_PID=$!
track "$UP_PID" "scp upload"
timeout 300 scp "${SSH_OPTS[@]}" -q -P "$P" "$U@$A:$R/down.bin" \
  "$T/down.bin" </dev/null >/dev/null 2>"$T/run-scp-down.err" &
DOWN_PID=$!
track "$DOWN_PID" "scp download"

# Probe the session until both transfers are over (at least once).
n=0 worst=0
while :; do
  n=$((n + 1))
  _now_ms
  p0=$_NOW_MS
  session_echo s1 "probe-$n" "$PROBE_S"
  _now_ms
  ((_NOW_MS - p0 <= worst)) || worst=$((_NOW_MS - p0))
  kill -0 "$UP_PID" 2>/dev/null || kill -0 "$DOWN_PID" 2>/dev/null || break
  ((_NOW_MS - t0 < 320000)) || fail "the transfers still run after 320 s"
  sleep 0.5
done
log "$n probes answered during the transfers, slowest in $worst ms"

wait_exit "$UP_PID" 10 || fail "scp upload still runs"
rc_up=$WAIT_RC
wait_exit "$DOWN_PID" 10 || fail "scp download still runs"
rc_down=$WAIT_RC
_now_ms
log "both transfers over in $(((_NOW_MS - t0) / 1000)) s"
((rc_up == 0)) || fail "scp upload failed (status $rc_up) on the slow link:
$(tail -n 10 "$T/run-scp-up.err")"
((rc_down == 0)) || fail "scp download failed (status $rc_down) on the slow" \
  "link:
$(tail -n 10 "$T/run-scp-down.err")"
cmp "$T/up.bin" "$R/up.bin" || fail "the uploaded file differs"
cmp "$R/down.bin" "$T/down.bin" || fail "the downloaded file differs"
log "64 MiB up and 64 MiB down byte-identical"

fault_stats
fault restore
((FAULT_STATS[held] > 0)) ||
  fail "the relay held no chunk: the delay was not exercised"
((FAULT_STATS[accepted] == 1 && FAULT_STATS[refused] == 0)) ||
  fail "the proxy made ${FAULT_STATS[accepted]} connections through the" \
    "relay, want 1: a slow link must not be taken for a dead one"
log "relay held ${FAULT_STATS[held]} chunks; one connection throughout"

session_echo s1 last 30
session_exit s1 30 || fail "ssh did not exit within 30 s"
((WAIT_RC == 0)) || fail "the session's ssh exited with status $WAIT_RC"

assert_proxy_alive "at the end"
assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
