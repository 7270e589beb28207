#!/usr/bin/env bash
#
# e2e dead_link: a stalled path (no TCP error, nothing gets through) is
# noticed by the PING/dead-timeout machinery, not by waiting forever.
#  - proxy (--dead-timeout 3000) -> wsmux-faultrelay -> edge -> sshd, edge
#    with pingIntervalMs 1000 / deadTimeoutMs 3000;
#  - an interactive session answers; `fault stall` for 8 s;
#  - both sides declare the link dead within a few seconds (their logs say
#    so); after `fault restore` the proxy reconnects, resumes, and the
#    session answers again.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack_with_proxy --via-fault \
  --edge-json '"pingIntervalMs": 1000, "deadTimeoutMs": 3000' \
  -- --log-level info --dead-timeout 3000

start_session s1
session_echo s1 one 30

fault stall
_proxy_dead() { grep -q 'the link is dead' "$PROXY_ERR"; }
_edge_dead() { grep -q 'connection dead' "$EDGE_ERR"; }
wait_until 8 "the proxy to declare the stalled link dead" _proxy_dead
wait_until 8 "the edge to declare the stalled link dead" _edge_dead
log "both sides noticed the stalled link"
fault restore

session_echo s1 two 30
session_exit s1 30 || fail "ssh did not exit"
((WAIT_RC == 0)) || fail "ssh exited $WAIT_RC after the stall"
grep -q 'session resumed' "$PROXY_ERR" ||
  fail "the proxy did not resume: $(tail -n 15 "$PROXY_ERR")"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
