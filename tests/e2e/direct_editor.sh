#!/usr/bin/env bash
#
# e2e direct_editor: the ways to reach a service without a --proxyOnly
# proxy, with a real sshd behind the edge.
#  - direct session: `wsmux ssh service` (no --proxyOnly) runs the system
#    ssh through the WebSocket; arguments after -- go to ssh (a remote
#    command); wsmux returns ssh's exit status;
#  - editors: `wsmux ssh config` prints Host blocks; `ssh -F generated`
#    reaches the service through the ProxyCommand (--stdio) block, and
#    through the -proxy block while a --proxyOnly proxy runs;
#  - without a terminal, missing ids are named, not prompted for; on a
#    terminal (a pty from `script`) the project and the service are chosen
#    by number from the edge's lists, which show each service's SSH state.
# The project id is this test's own so the derived endpoint of the -proxy
# block is not shared with tests running alongside.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
E2E_PROJECT=p-editor

start_stack

wsmux_env=(env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN")
E2E_SAN_LOGS+=("$T/direct.err" "$T/stdio.err" "$T/config.err")

# Direct session: output, stdin, and ssh's exit status.
rc=0
out=$(echo from-stdin | timeout 60 "${wsmux_env[@]}" "$WSMUX_BIN" ssh service \
  --projectId "$E2E_PROJECT" --serviceId "$E2E_SSH_SERVICE" \
  --edge "$EDGE_URL" --ca "$EDGE_CERT" --user "$LOGIN_USER" -- \
  "${SSH_OPTS[@]}" 'echo direct-ok; cat; exit 7' 2>"$T/direct.err") || rc=$?
((rc == 7)) || fail "direct session exited $rc, want ssh's 7: $(cat "$T/direct.err")"
[[ $out == $'direct-ok\nfrom-stdin' ]] || fail "direct session printed '$out'"
log "direct session: output and exit status 7 passed through"

# Editors: the generated config.
"${wsmux_env[@]}" "$WSMUX_BIN" ssh config --projectId "$E2E_PROJECT" \
  --serviceId "$E2E_SSH_SERVICE" --user "$LOGIN_USER" --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" >"$T/ssh_config" 2>"$T/config.err" ||
  fail "wsmux ssh config failed: $(cat "$T/config.err")"
alias=wsmux-$E2E_PROJECT-$E2E_SSH_SERVICE
for want in "Host $alias" "HostKeyAlias $alias" "User $LOGIN_USER" \
  "ProxyCommand " "--stdio" "Host $alias-proxy" "HostName 127." "Port "; do
  grep -qF -- "$want" "$T/ssh_config" || fail "config lacks '$want'"
done
if grep -qF "$EDGE_TOKEN" "$T/ssh_config"; then
  fail "the generated config contains the token"
fi
# What a user adds for their own key; known_hosts keyed by the alias.
cat >>"$T/ssh_config" <<EOF2
Host *
  IdentityFile $CLIENT_KEY
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking accept-new
  UserKnownHostsFile $T/known_hosts
  LogLevel ERROR
EOF2
out=$(WSMUX_TOKEN=$EDGE_TOKEN timeout 60 ssh -F "$T/ssh_config" "$alias" \
  'echo ok' 2>"$T/stdio.err") ||
  fail "ssh -F through the ProxyCommand block failed: $(cat "$T/stdio.err")"
[[ $out == ok ]] || fail "ProxyCommand session printed '$out'"
grep -q "^$alias " "$T/known_hosts" ||
  fail "known_hosts has no entry under the alias $alias"
log "ssh -F generated config: ProxyCommand (--stdio) block works"

# A second --stdio connection: the host key is already known by alias.
out=$(WSMUX_TOKEN=$EDGE_TOKEN timeout 60 ssh -F "$T/ssh_config" \
  -o StrictHostKeyChecking=yes "$alias" 'echo again' 2>>"$T/stdio.err") ||
  fail "second ProxyCommand session failed: $(cat "$T/stdio.err")"
[[ $out == again ]] || fail "second ProxyCommand session printed '$out'"

# The -proxy block needs the proxy on its derived endpoint.
E2E_DERIVED_ENDPOINT=1 start_proxy "$E2E_SSH_SERVICE"
grep -qF "HostName $PROXY_ADDR" "$T/ssh_config" &&
  grep -qF "Port $PROXY_PORT" "$T/ssh_config" ||
  fail "the -proxy block does not name the proxy's endpoint $PROXY_ADDR:$PROXY_PORT"
out=$(timeout 60 ssh -F "$T/ssh_config" -o StrictHostKeyChecking=yes \
  "$alias-proxy" 'echo via-proxy' 2>>"$T/stdio.err") ||
  fail "ssh through the -proxy block failed: $(cat "$T/stdio.err")"
[[ $out == via-proxy ]] || fail "-proxy session printed '$out'"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
log "ssh -F generated config: -proxy block works, same host key alias"

# No terminal: the missing flag is named.
rc=0
"${wsmux_env[@]}" timeout 20 "$WSMUX_BIN" ssh service --serviceId x \
  --edge "$EDGE_URL" --ca "$EDGE_CERT" </dev/null >/dev/null \
  2>"$T/noid.err" || rc=$?
((rc == 1)) || fail "missing --projectId without a TTY exited $rc, want 1"
grep -q -- "--projectId is required" "$T/noid.err" ||
  fail "missing --projectId not named: $(cat "$T/noid.err")"

# On a terminal, missing ids are chosen from lists. `script` gives wsmux a
# pty; answers are written into a FIFO once each prompt has appeared.
mkfifo "$T/answers"
cmd=$(printf '%q ' env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" \
  "$WSMUX_BIN" ssh service --edge "$EDGE_URL" --ca "$EDGE_CERT" \
  --user "$LOGIN_USER" -- "${SSH_OPTS[@]}" 'echo picked-ok')
timeout 60 script -qefc "$cmd" /dev/null <"$T/answers" >"$T/pick.out" 2>&1 &
PICK_PID=$!
track "$PICK_PID" "interactive wsmux"
exec 3>"$T/answers"
_prompt() { grep -q "$1" "$T/pick.out"; }
wait_until 30 "the project list" _prompt 'Choose a project'
n=$(grep -oE "([0-9]+)\) $E2E_PROJECT" "$T/pick.out" | head -1 | cut -d')' -f1)
[[ -n $n ]] || fail "project $E2E_PROJECT not listed: $(cat "$T/pick.out")"
echo "${n// /}" >&3
wait_until 30 "the service list" _prompt 'Choose a service'
line=$(grep -E "[0-9]+\) $E2E_SSH_SERVICE " "$T/pick.out" | head -1)
[[ $line == *"[SSH on]"* ]] || fail "service line lacks its SSH state: '$line'"
n=$(grep -oE "[0-9]+\) $E2E_SSH_SERVICE " <<<"$line" | cut -d')' -f1)
echo "${n// /}" >&3
wait_exit "$PICK_PID" 60 || fail "interactive wsmux did not finish"
exec 3>&-
((WAIT_RC == 0)) || fail "interactive session exited $WAIT_RC: $(cat "$T/pick.out")"
grep -q picked-ok "$T/pick.out" ||
  fail "interactive session did not run the command: $(cat "$T/pick.out")"
log "interactive selection: project and service chosen by number"
