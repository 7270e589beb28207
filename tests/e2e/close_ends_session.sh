#!/usr/bin/env bash
#
# e2e close_ends_session: how the proxy's WebSocket ends decides whether the
# edge keeps its session (docs/PROTOCOL.md section 8, "Which ends are
# drops").
#  - proxy -> wsmux-faultrelay -> edge -> sshd; the edge serves metrics and
#    keeps dropped sessions for the default 60 s (resumeGraceMs);
#  - two interactive ssh sessions through the proxy: the edge has 2 streams
#    (wsmux_edge_streams_open) and 2 TCP connections to sshd (its sockets,
#    from /proc/PID/fd and /proc/net/tcp);
#  - `fault cut` (the link drops: no close frame): the edge logs "(streams
#    kept for a resume)"; 3 s later it still has both streams and both sshd
#    connections; `fault restore`: both sessions answer again (resumed);
#  - the proxy is stopped with SIGTERM: a GOAWAY and a close with 1000; it
#    exits 0, the edge logs the close (1000) as the end of the session, and
#    within 5 s (not the 60 s of the grace period) the edge has no stream
#    and no connection to sshd left; both ssh sessions end.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack_with_proxy --via-fault --edge-json '"metricsListen": "127.0.0.1:0"' \
  -- --log-level info

re='wsmux-edge: metrics on http://127\.0\.0\.1:([0-9]+)/metrics[[:space:]]*$'
line=$(grep -Em1 "$re" "$EDGE_ERR") ||
  fail "the edge did not log its metrics URL: $(cat "$EDGE_ERR")"
[[ $line =~ $re ]] || fail "cannot parse: $line"
METRICS_PORT=${BASH_REMATCH[1]}

# streams_open: wsmux_edge_streams_open from a scrape (10 s bound).
streams_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout -k 2 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" >&3 && cat <&3' \
    _ "$METRICS_PORT" | awk '$1 == "wsmux_edge_streams_open" {print $2}'
}

# sshd_conns: the edge's TCP connections to sshd: its socket inodes
# (/proc/PID/fd) among the established connections to $SSHD_PORT.
sshd_conns() {
  local port
  port=$(printf ':%04X' "$SSHD_PORT")
  find "/proc/$EDGE_PID/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null |
    sed 's/^socket:\[\([0-9]*\)\]$/\1/' | sort -u >"$T/edge-sockets"
  awk -v p="$port" 'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == p {
    print $10 }' /proc/net/tcp | sort -u | comm -12 - "$T/edge-sockets" | wc -l
}

# edge_holds N: N streams and N connections to sshd.
edge_holds() {
  local s c
  s=$(streams_open)
  c=$(sshd_conns)
  [[ $s == "$1" && $c == "$1" ]] && return 0
  HOLDS="streams_open=$s, connections to sshd=$c"
  return 1
}

start_session s1
start_session s2
edge_holds 2 || fail "with two ssh sessions open: $HOLDS, want 2 and 2"
log "two sessions: the edge has 2 streams and 2 connections to sshd"

# --- a drop: the session is kept ---------------------------------------------
fault cut
wait_output 10 "the edge to keep the dropped session" "$EDGE_PID" \
  "wsmux-edge exited" "$EDGE_ERR" -F '(streams kept for a resume)' "$EDGE_ERR"
sleep 3
edge_holds 2 || fail "3 s into the outage: $HOLDS, want 2 and 2 (kept for a resume)"
fault restore
session_echo s1 after-cut 30
session_echo s2 after-cut 30
assert_relay_reconnected "the first and the resumed"
edge_holds 2 || fail "after the resume: $HOLDS, want 2 and 2"
log "a cut link kept the session; both sessions resumed"

# --- a clean close: the session ends at once ---------------------------------
stop_proxy "$PROXY_PID" "$PROXY_ERR"
_now_ms
t0=$_NOW_MS
wait_until 5 "the edge to close its streams and sshd connections after the proxy's close 1000" \
  edge_holds 0
_now_ms
log "the edge freed its upstream connections $((_NOW_MS - t0)) ms after the proxy exited"
grep -E 'connection closed: .*closed by peer \(1000.*\(session ended' "$EDGE_ERR" >/dev/null ||
  fail "the edge did not log the close with 1000 as the end of the session:
$(grep 'connection closed' "$EDGE_ERR")"
grep -E 'closed by peer \(1000.*kept for a resume' "$EDGE_ERR" >/dev/null &&
  fail "the edge kept the session of a proxy that closed with 1000:
$(grep 'connection closed' "$EDGE_ERR")"
for s in s1 s2; do
  session_end "$s"
  wait_exit "${SESSION_PID[$s]}" 30 || fail "ssh session $s still runs after its proxy stopped"
  ((WAIT_RC != 0)) || fail "ssh session $s exited 0; its connection was reset, want non-zero"
done
assert_alive "$EDGE_PID" wsmux-edge
