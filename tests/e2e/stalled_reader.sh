#!/usr/bin/env bash
#
# e2e stalled_reader: one stream whose local reader never reads must not
# hold up the other streams nor grow memory.
#  - service "bulk" -> wsmux-testsrv; one proxy for it;
#  - `wsmux-testcli --mode stall` (SOURCE: the upstream writes endlessly,
#    the client reads 16 bytes and then never again) stays stalled;
#  - meanwhile a 64 MiB echo through the same proxy completes, verified;
#  - then the RSS of the proxy and of the edge, sampled 4 times over 3 s,
#    grows by less than 32 MiB and stays under 400 MiB: neither side may
#    buffer more than the flow-control window for the stalled stream.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

ECHO_BYTES=67108864
RSS_GROWTH_MAX_KB=$((32 * 1024))
RSS_MAX_KB=$((400 * 1024))

start_stack --no-keys --upstream testsrv "bulk testsrv"
start_proxy bulk
A=$PROXY_ADDR P=$PROXY_PORT

"$WSMUX_TESTCLI" --connect "$A:$P" --mode stall --timeout 400 \
  </dev/null >"$T/stall.out" 2>"$T/stall.err" &
STALL_PID=$!
track "$STALL_PID" "testcli stall"
wait_output 30 "the stalled reader to get its first bytes" "$STALL_PID" \
  "testcli --mode stall exited" "$T/stall.err" -x stalled "$T/stall.out"
sleep 1 # let the stalled stream fill every buffer it can
log "stalled reader in place; proxy RSS $(rss_kb "$PROXY_PID") KiB," \
  "edge RSS $(rss_kb "$EDGE_PID") KiB"

_now_ms
t0=$_NOW_MS
out=$(timeout 200 "$WSMUX_TESTCLI" --connect "$A:$P" --mode echo \
  --bytes "$ECHO_BYTES" --timeout 180 2>"$T/echo.err") ||
  fail "64 MiB echo beside a stalled stream failed: $(cat "$T/echo.err")"
[[ $out == "ok $ECHO_BYTES bytes" ]] || fail "echo printed '$out'"
_now_ms
log "64 MiB echo beside the stalled stream: $(((_NOW_MS - t0) / 1000)) s"

kill -0 "$STALL_PID" 2>/dev/null || fail "the stalled reader exited"
[[ $(cat "$T/stall.out") == stalled ]] || fail "stall output changed"

# RSS samples after the transfer, the stalled stream still open.
proxy_rss=() edge_rss=()
for k in 0 1 2 3; do
  ((k == 0)) || sleep 1
  v=$(rss_kb "$PROXY_PID") || fail "the proxy is gone"
  proxy_rss+=("$v")
  v=$(rss_kb "$EDGE_PID") || fail "the edge is gone"
  edge_rss+=("$v")
done
log "proxy RSS samples (KiB): ${proxy_rss[*]}"
log "edge RSS samples (KiB): ${edge_rss[*]}"
check_rss() {
  local name=$1
  shift
  local first=$1 last=${!#} v
  for v in "$@"; do
    ((v < RSS_MAX_KB)) || fail "$name RSS $v KiB >= $RSS_MAX_KB KiB"
  done
  ((last - first < RSS_GROWTH_MAX_KB)) ||
    fail "$name RSS grew from $first to $last KiB in 3 s with a stalled stream"
}
check_rss proxy "${proxy_rss[@]}"
check_rss edge "${edge_rss[@]}"

# Once the stalled reader goes away, the proxy still works.
stop_pid "$STALL_PID" 5 || true
out=$(timeout 60 "$WSMUX_TESTCLI" --connect "$A:$P" --mode echo \
  --bytes 1M --timeout 50) || fail "echo after the stall ended failed"
[[ $out == "ok 1048576 bytes" ]] || fail "echo printed '$out'"

assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
