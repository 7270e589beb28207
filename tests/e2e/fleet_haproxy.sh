#!/usr/bin/env bash
#
# e2e fleet_haproxy: three edges on one PostgreSQL behind HAProxy (the
# example config of packaging/haproxy, tests/e2e/fleet_lib.sh), one proxy
# reaching HAProxy through a fault relay:
#  - the edge logs the user's address from X-Forwarded-For only when its
#    TCP peer is a trusted proxy (HAProxy, from 127.0.0.3); a forged header
#    sent straight to an edge, or through HAProxy, is not believed;
#  - 32 concurrent ssh sessions through the one proxy, outputs exact;
#  - a 256 MiB scp upload, the proxy<->HAProxy link reset mid-way: the proxy
#    reconnects, HAProxy routes the resume to the edge that holds the
#    session (X-Wsmux-Node), the file is byte-identical; an interactive
#    session survives a reset the same way; no other edge saw a WebSocket;
#  - HAProxy reloaded (SIGUSR2 to the master): the session goes on;
#    HAProxy killed and started again: the session resumes on its edge.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/fleet_lib.sh
source "$(dirname "$0")/fleet_lib.sh"

start_fleet
start_faultrelay "$HAPROXY_PORT"
before=$(fleet_opens)
start_proxy_via_fault "$E2E_SSH_SERVICE" --log-level info
fleet_new_open "$before"
HOLDER=$FLEET_NEW
log "the proxy's session is on edge-$HOLDER"
A=$PROXY_ADDR P=$PROXY_PORT U=$LOGIN_USER

# ---- the client's address ---------------------------------------------------
grep -q "connection open: .* from=127.0.0.1" "$T/edge-$HOLDER.err" ||
  fail "edge-$HOLDER did not log the client's address: $(grep 'connection open' "$T/edge-$HOLDER.err")"
grep -q "from=127.0.0.3" "$T/edge-$HOLDER.err" &&
  fail "edge-$HOLDER logged HAProxy's address instead of the client's"
# Straight to an edge (the peer is not trusted): the header is ignored.
curl -s -o /dev/null -H 'X-Forwarded-For: 6.6.6.6' \
  "http://127.0.0.1:${EDGE_PORTS[a]}/v1/projects" || true
grep -q 'admin: GET "/v1/projects" from=127.0.0.1: 401' "$T/edge-a.err" ||
  fail "a forged X-Forwarded-For straight to an edge: $(grep 'admin:' "$T/edge-a.err")"
# Through HAProxy: the client's own header is dropped there.
for ((i = 0; i < 3; i++)); do
  curl -sk -o /dev/null -H 'X-Forwarded-For: 6.6.6.6' \
    "https://127.0.0.1:$HAPROXY_PORT/v1/projects" || true
done
grep -h 'admin: GET "/v1/projects"' "$T"/edge-?.err | grep -q '6\.6\.6\.6' &&
  fail "an edge believed a client's X-Forwarded-For: $(grep -h 'admin: GET' "$T"/edge-?.err)"
# Four requests in all (one straight, three through HAProxy from 127.0.0.3),
# every one logged as the client's own 127.0.0.1.
[[ $(grep -h 'admin: GET "/v1/projects" from=127.0.0.1: 401' "$T"/edge-?.err | wc -l) == 4 ]] ||
  fail "the admin requests' addresses: $(grep -h 'admin: GET' "$T"/edge-?.err)"
log "client address: from X-Forwarded-For only through the trusted HAProxy"

# ---- 32 concurrent sessions -------------------------------------------------
pids=()
for ((i = 0; i < 32; i++)); do
  timeout 120 ssh "${SSH_OPTS[@]}" -p "$P" "$U@$A" "sleep 1; echo session-$i" \
    </dev/null >"$T/run-c$i.out" 2>"$T/run-c$i.err" &
  pids+=($!)
done
for ((i = 0; i < 32; i++)); do
  wait "${pids[i]}" || fail "concurrent session $i failed: $(cat "$T/run-c$i.err")"
  [[ $(cat "$T/run-c$i.out") == "session-$i" ]] ||
    fail "session $i printed '$(cat "$T/run-c$i.out")'"
done
log "32 concurrent ssh sessions through HAProxy: every output exact"

# ---- a reset during scp and during an interactive session -------------------
start_session live "$P"
R=$T/remote
mkdir -p "$R"
head -c $((256 << 20)) /dev/urandom >"$T/big"
fault throttle $((32 << 20))
scp_upload_start 400 "$T/big" "$A" "$P" "$R/big" "scp upload"
wait_upload_past "$R/big" $((64 << 20))
before=$(fleet_opens)
resumed_before=$(grep -c '(session resumed)' "$T/edge-$HOLDER.err" || true)
fault cut
fault restore
wait_exit "$SCP_PID" 400 || fail "scp did not finish"
((WAIT_RC == 0)) || fail "scp failed (status $WAIT_RC): $(cat "$T/run-scp.err")"
cmp -s "$T/big" "$R/big" || fail "the uploaded file differs from the original"
session_echo live after-reset 30
fleet_new_open "$before"
[[ $FLEET_NEW == "$HOLDER" ]] ||
  fail "the resume went to edge-$FLEET_NEW, not edge-$HOLDER which holds the session"
(($(grep -c '(session resumed)' "$T/edge-$HOLDER.err") > resumed_before)) ||
  fail "edge-$HOLDER did not resume the session: $(grep 'connection open' "$T/edge-$HOLDER.err")"
assert_proxy_alive "after the reset"
log "reset during scp and an interactive session: resumed on edge-$HOLDER, 256 MiB byte-exact"
rm -f "$T/big" "$R/big"

# ---- HAProxy reloaded, then restarted ---------------------------------------
before=$(fleet_opens)
loads=$(grep -c 'Loading success' "$T/haproxy.log" || true)
kill -USR2 "$HAPROXY_PID"
_reloaded() { (($(grep -c 'Loading success' "$T/haproxy.log") > loads)); }
wait_until 20 "HAProxy's reload" _reloaded
session_echo live after-reload 30
ssh_echo new-after-reload "ssh after the HAProxy reload"
[[ $(fleet_opens) == "$before" ]] ||
  fail "the reload moved WebSockets: before '$before', after '$(fleet_opens)'"
log "HAProxy reloaded: the session went on (no new WebSocket)"

before=$(fleet_opens)
resumed_before=$(grep -c '(session resumed)' "$T/edge-$HOLDER.err" || true)
for c in $(pgrep -P "$HAPROXY_PID"); do kill -KILL "$c" 2>/dev/null || true; done
# The master may be gone already: it exits when its worker dies.
kill -KILL "$HAPROXY_PID" 2>/dev/null || true
wait_exit "$HAPROXY_PID" 10 || fail "haproxy did not die"
start_haproxy "$T/haproxy.cfg" "$HAPROXY_PORT"
session_echo live after-restart 60
fleet_new_open "$before"
[[ $FLEET_NEW == "$HOLDER" ]] ||
  fail "after the HAProxy restart the resume went to edge-$FLEET_NEW, not edge-$HOLDER"
(($(grep -c '(session resumed)' "$T/edge-$HOLDER.err") > resumed_before)) ||
  fail "edge-$HOLDER did not resume after the HAProxy restart"
log "HAProxy killed and started again: the session resumed on edge-$HOLDER"
session_end live
stop_proxy "$PROXY_PID" "$PROXY_ERR"
