#!/usr/bin/env bash
#
# e2e endpoint: without --address/--port the proxy listens on an endpoint
# derived from project and service (an address in 127.0.0.0/8 other than
# 127.0.0.1, a port in 20000-31999), the same on every run so ssh's
# known_hosts entry stays valid; when that port is taken, a second proxy for
# the same service falls back to one of the next ports on the same address.
# ssh works through both.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack

E2E_DERIVED_ENDPOINT=1 start_proxy "$E2E_SSH_SERVICE"
A1=$PROXY_ADDR P1=$PROXY_PORT PID1=$PROXY_PID ERR1=$PROXY_ERR
[[ $A1 =~ ^127\.([0-9]+)\.([0-9]+)\.([0-9]+)$ && $A1 != 127.0.0.1 ]] ||
  fail "derived address $A1 is not a 127/8 address other than 127.0.0.1"
((P1 >= 20000 && P1 < 32000 + 16)) || fail "derived port $P1 out of range"

# The same service again: same address, one of the next ports.
E2E_DERIVED_ENDPOINT=1 start_proxy "$E2E_SSH_SERVICE"
A2=$PROXY_ADDR P2=$PROXY_PORT PID2=$PROXY_PID ERR2=$PROXY_ERR
[[ $A2 == "$A1" ]] || fail "second proxy on $A2, want the same $A1"
((P2 > P1 && P2 <= P1 + 15)) ||
  fail "second proxy on port $P2, want one of $((P1 + 1))..$((P1 + 15))"

for ep in "$A1:$P1" "$A2:$P2"; do
  out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "${ep##*:}" \
    "$LOGIN_USER@${ep%:*}" 'echo via-derived') ||
    fail "ssh through $ep failed"
  [[ $out == via-derived ]] || fail "ssh through $ep printed '$out'"
done
stop_proxy "$PID2" "$ERR2"
stop_proxy "$PID1" "$ERR1"

# Stable across runs: a new proxy gets the first endpoint back.
E2E_DERIVED_ENDPOINT=1 start_proxy "$E2E_SSH_SERVICE"
[[ $PROXY_ADDR:$PROXY_PORT == "$A1:$P1" ]] ||
  fail "restarted proxy on $PROXY_ADDR:$PROXY_PORT, want $A1:$P1 again"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
