#!/usr/bin/env bash
#
# e2e concurrent: 32 ssh sessions at once over one proxy (one WebSocket).
# Every session first waits until all 32 are logged in (so they really are
# open at the same time), then streams ~200 KB of text naming itself, whose
# length depends on the session number: a byte from one stream landing in
# another is caught. Every session must succeed with exactly its output, and
# the edge must have seen exactly one WebSocket.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

N=32

start_stack_with_proxy

declare -A client=()
for ((i = 1; i <= N; i++)); do
  len=$((200000 + i))
  timeout 120 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" \
    "$LOGIN_USER@$PROXY_ADDR" \
    "touch $T/in-$i; for _ in \$(seq 100); do [ \$(ls $T | grep -c '^in-') -ge $N ] && break; sleep 0.1; done; yes session-$i | head -c $len" \
    </dev/null >"$T/session-$i.out" 2>"$T/session-$i.err" &
  client[$i]=$!
  track "${client[$i]}" "ssh session $i"
done
log "started $N ssh sessions"

failed=0
for ((i = 1; i <= N; i++)); do
  wait_exit "${client[$i]}" 150 || fail "ssh session $i still running"
  len=$((200000 + i))
  want=$( (yes "session-$i" || true) | head -c "$len" | sha256sum)
  got=$(sha256sum <"$T/session-$i.out")
  if ((WAIT_RC != 0)); then
    log "session $i: ssh exited $WAIT_RC: $(head -c 500 "$T/session-$i.err")"
    failed=$((failed + 1))
  elif [[ $got != "$want" ]]; then
    log "session $i: output of $(wc -c <"$T/session-$i.out") bytes differs"
    failed=$((failed + 1))
  fi
done
((failed == 0)) || fail "$failed of $N concurrent ssh sessions failed"
log "all $N sessions ok"

n=$(ls "$T" | grep -c '^in-' || true)
((n == N)) || fail "only $n of $N sessions were logged in at once"
opens=$(grep -c 'connection open' "$EDGE_ERR" || true)
((opens == 1)) || fail "the edge saw $opens WebSockets, want exactly 1"
assert_alive "$PROXY_PID" "wsmux proxy"
assert_alive "$EDGE_PID" wsmux-edge
# The proxy still serves a new session afterwards.
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" "$LOGIN_USER@$PROXY_ADDR" \
  'echo after') || fail "ssh after the concurrent sessions failed"
[[ $out == after ]] || fail "ssh after the concurrent sessions printed '$out'"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
