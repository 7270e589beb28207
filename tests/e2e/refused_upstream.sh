#!/usr/bin/env bash
#
# e2e refused_upstream: an upstream that refuses connections fails only the
# streams that try to open, never the others nor the proxy.
#  1. service "bulk" -> wsmux-testsrv. A 128 MiB echo runs (rate-limited to
#     16 MiB/s, so it lasts about 8 s); testsrv gets SIGUSR1 and closes its
#     listener; a new connection through the proxy is closed with no data
#     (OPEN_FAIL REFUSED), the proxy logs REFUSED, the running echo still
#     completes, verified.
#  2. service "dead" -> a port where nothing listens: ssh through its proxy
#     fails (non-zero, not a hang), REFUSED is logged, the proxy keeps
#     running and keeps accepting connections.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

ECHO_BYTES=$((128 << 20))

start_stack --upstream testsrv "bulk testsrv" "dead closed"

# --- 1. upstream starts refusing while a stream is running ---------------
start_proxy bulk
BULK_PID=$PROXY_PID BULK_ERR=$PROXY_ERR
A=$PROXY_ADDR P=$PROXY_PORT

"$WSMUX_TESTCLI" --connect "$A:$P" --mode echo --bytes "$ECHO_BYTES" \
  --rate 16M --timeout 200 </dev/null >"$T/echo.out" 2>"$T/echo.err" &
ECHO_PID=$!
track "$ECHO_PID" "testcli echo"
wait_output 30 "the echo stream to reach wsmux-testsrv" "$ECHO_PID" \
  "the echo client exited early" "$T/echo.err" \
  -E '^conn [0-9]+ ECHO$' "$T/testsrv.out"

kill -USR1 "$TESTSRV_PID"
wait_until 10 "wsmux-testsrv to close its listener" \
  grep -qx 'listener closed' "$T/testsrv.out"
out=$(timeout 20 "$WSMUX_TESTCLI" --connect "127.0.0.1:$TESTSRV_PORT" \
  --mode expect-closed) || fail "testcli expect-closed (direct) failed"
[[ $out == "closed (connection refused)" ]] ||
  fail "wsmux-testsrv still accepts connections after SIGUSR1 ($out)"

out=$(timeout 20 "$WSMUX_TESTCLI" --connect "$A:$P" --mode expect-closed \
  2>"$T/closed.err") ||
  fail "a connection through the proxy to a refusing upstream was not" \
    "closed: $(cat "$T/closed.err")"
[[ $out == closed ]] ||
  fail "expected the proxy to accept and then close the connection; got '$out'"
wait_until 10 "REFUSED on the proxy's stderr" grep -q REFUSED "$BULK_ERR"
log "refused stream closed; proxy says: $(grep -m1 REFUSED "$BULK_ERR")"

kill -0 "$ECHO_PID" 2>/dev/null ||
  fail "the echo finished before the refusal was tested (is --rate ignored?)"
wait_exit "$ECHO_PID" 200 || fail "the 128 MiB echo did not finish"
((WAIT_RC == 0)) || fail "the running echo failed: $(cat "$T/echo.err")"
[[ $(cat "$T/echo.out") == "ok $ECHO_BYTES bytes" ]] ||
  fail "echo printed '$(cat "$T/echo.out")'"
log "the running 128 MiB echo completed"
assert_alive "$BULK_PID" "wsmux proxy for bulk"

# --- 2. upstream with no listener at all ---------------------------------
start_proxy dead
DEAD_PID=$PROXY_PID DEAD_ERR=$PROXY_ERR
rc=0
timeout 60 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" "$LOGIN_USER@$PROXY_ADDR" \
  true </dev/null >"$T/ssh-dead.out" 2>"$T/ssh-dead.err" || rc=$?
((rc != 0)) || fail "ssh to a service with no upstream listener succeeded"
((rc != 124)) || fail "ssh to a service with no upstream listener hung"
log "ssh via the dead service failed as expected ($rc): $(head -n 1 "$T/ssh-dead.err")"
wait_until 10 "REFUSED on the dead proxy's stderr" grep -q REFUSED "$DEAD_ERR"
assert_alive "$DEAD_PID" "wsmux proxy for dead"
out=$(timeout 20 "$WSMUX_TESTCLI" --connect "$PROXY_ADDR:$PROXY_PORT" \
  --mode expect-closed) || fail "second connection to the dead proxy"
[[ $out == closed ]] || fail "the dead proxy stopped accepting ($out)"
assert_alive "$DEAD_PID" "wsmux proxy for dead"
assert_alive "$EDGE_PID" wsmux-edge

stop_proxy "$DEAD_PID" "$DEAD_ERR"
stop_proxy "$BULK_PID" "$BULK_ERR"
