#!/usr/bin/env bash
#
# e2e resume_scp: a bulk transfer survives a network outage.
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the proxy logs at info;
#  - scp uploads a 256 MiB random file; the relay throttles to 32 MiB/s
#    until the cut so that the transfer is surely still running then (a
#    no-op on a slower machine);
#  - once the remote file has grown past 64 MiB: `fault cut` (every
#    connection reset, new ones reset at accept: the network is down), 5 s
#    later `fault restore`;
#  - the proxy must not exit: it reconnects (with backoff) and resumes the
#    stream; scp finishes with status 0 and the remote file is
#    byte-identical (cmp);
#  - the proxy logged a reconnect (a stderr line matching /reconnect/i) and
#    the relay saw more than one connection from it.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE=$((256 << 20))
CUT_AT=$((64 << 20))
OUTAGE_S=5

start_stack_with_proxy --via-fault -- --log-level info
A=$PROXY_ADDR P=$PROXY_PORT
R=$T/remote
mkdir -p "$R"

head -c "$SIZE" /dev/urandom >"$T/big"

fault throttle $((32 << 20))
scp_upload_start 400 "$T/big" "$A" "$P" "$R/big" "scp upload"
wait_upload_past "$R/big" "$CUT_AT"

fault cut
remote_size "$R/big"
if ! kill -0 "$SCP_PID" 2>/dev/null || ((REMOTE_SIZE >= SIZE)); then
  fail "the transfer was already over at the cut (remote size $REMOTE_SIZE):" \
    "the test could not cut it in the middle"
fi
log "network cut with $((REMOTE_SIZE >> 20)) MiB of $((SIZE >> 20)) MiB written remotely"
sleep "$OUTAGE_S"
assert_proxy_alive "during a ${OUTAGE_S} s outage"
fault restore
_now_ms
t0=$_NOW_MS

if ! wait_exit "$SCP_PID" 300; then
  remote_size "$R/big"
  fail "scp did not finish within 300 s after the network came back (remote" \
    "size $REMOTE_SIZE of $SIZE): the stream was not resumed"
fi
((WAIT_RC == 0)) || fail "scp failed (status $WAIT_RC) after a ${OUTAGE_S} s" \
  "outage: the stream was not resumed; scp's stderr:
$(tail -n 10 "$T/run-scp.err")"
_now_ms
log "scp finished $(((_NOW_MS - t0) / 1000)) s after the restore"
cmp "$T/big" "$R/big" ||
  fail "the uploaded file differs from the original after the resume" \
    "(bytes lost, duplicated or reordered across the reconnect)"
log "256 MiB upload byte-identical across a ${OUTAGE_S} s outage"

assert_proxy_alive "after the transfer"
grep -Eiq 'reconnect' "$PROXY_ERR" ||
  fail "the proxy logged no reconnect (no stderr line matching /reconnect/i" \
    "at --log-level info); its stderr:
$(tail -n 30 "$PROXY_ERR")"
assert_relay_reconnected "the first and the reconnect"
log "the proxy reconnected (relay: ${FAULT_STATS[accepted]} connections" \
  "forwarded, ${FAULT_STATS[refused]} reset during the outage)"

assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
