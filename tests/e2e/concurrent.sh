#!/usr/bin/env bash
#
# e2e concurrent: 32 ssh sessions at once over one proxy (one WebSocket).
# Each session prints a line naming it and the SHA-256 of a stream whose
# length depends on the session number, so a byte from one stream landing
# in another is caught. Every session must succeed with exactly its output.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

N=32

gen_keys
gen_cert
start_sshd
write_edge_config
start_edge
start_proxy "$E2E_SSH_SERVICE"

declare -A client=()
for ((i = 1; i <= N; i++)); do
  len=$((200000 + i))
  timeout 120 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" \
    "$LOGIN_USER@$PROXY_ADDR" \
    "echo session-$i; head -c $len /dev/zero | tr '\\0' x | sha256sum" \
    </dev/null >"$T/session-$i.out" 2>"$T/session-$i.err" &
  client[$i]=$!
  track "${client[$i]}" "ssh session $i"
done
log "started $N ssh sessions"

failed=0
for ((i = 1; i <= N; i++)); do
  wait_exit "${client[$i]}" 150 || fail "ssh session $i still running"
  len=$((200000 + i))
  want="session-$i
$(head -c "$len" /dev/zero | tr '\0' x | sha256sum)"
  got=$(cat "$T/session-$i.out")
  if ((WAIT_RC != 0)); then
    log "session $i: ssh exited $WAIT_RC: $(head -c 500 "$T/session-$i.err")"
    failed=$((failed + 1))
  elif [[ $got != "$want" ]]; then
    log "session $i: output '$got', want '$want'"
    failed=$((failed + 1))
  fi
done
((failed == 0)) || fail "$failed of $N concurrent ssh sessions failed"
log "all $N sessions ok"

assert_alive "$PROXY_PID" "wsmux proxy"
assert_alive "$EDGE_PID" wsmux-edge
# The proxy still serves a new session afterwards.
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" "$LOGIN_USER@$PROXY_ADDR" \
  'echo after') || fail "ssh after the concurrent sessions failed"
[[ $out == after ]] || fail "ssh after the concurrent sessions printed '$out'"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
