#!/usr/bin/env bash
#
# e2e ssh_basic: one proxy, one real sshd behind wsmux-edge.
#  - the proxy prints exactly its six-line banner with the right user,
#    address and port;
#  - `ssh` through the proxy runs a command whose output is checked exactly;
#  - the remote exit status (7) comes back as ssh's exit status;
#  - SIGTERM makes the proxy exit 0 within a few seconds (no sanitizer
#    report), and its port stops accepting connections.
#  - started under a soft open-files limit of 512, the proxy and the edge
#    raise it to the hard limit (a stream costs a socket on each side).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

prepare_stack
# A low soft limit, as on many desktops (1024): both programs raise it.
HARD_NOFILE=$(ulimit -Hn)
[[ $HARD_NOFILE == unlimited || $HARD_NOFILE -gt 512 ]] && ulimit -Sn 512
start_edge
start_proxy "$E2E_SSH_SERVICE"
soft_nofile() { awk '/^Max open files/ {print $4}' "/proc/$1/limits"; }
hard_nofile() { awk '/^Max open files/ {print $5}' "/proc/$1/limits"; }
for pid in "$EDGE_PID" "$PROXY_PID"; do
  want=$(hard_nofile "$pid") # raised to the hard limit, at most 2^20
  [[ $want == unlimited || $want -gt 1048576 ]] && want=1048576
  [[ $(soft_nofile "$pid") == "$want" ]] ||
    fail "pid $pid has a soft open-files limit of $(soft_nofile "$pid"), not $want"
done
log "open-files limit raised to $(soft_nofile "$PROXY_PID") in the proxy and the edge"

[[ $PROXY_ADDR == 127.0.0.1 ]] ||
  fail "proxy address is $PROXY_ADDR, want 127.0.0.1 (--address 127.0.0.1)"
if ! [[ $PROXY_PORT =~ ^[1-9][0-9]*$ ]] || ((PROXY_PORT > 65535)); then
  fail "proxy port '$PROXY_PORT' is not a port (--port 0: kernel-chosen)"
fi

# The banner: the six lines, exactly (all printed at once; allow a moment).
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT
expected="SSH proxy started on endpoint: $A:$P, stop with Ctrl+C
Use with any SSH compatible client. Example usages:
> SSH session: ssh $U@$A -p $P
> SFTP: sftp -P $P $U@$A
> RSYNC: rsync -avz -e \"ssh -p $P\" ./data/ $U@$A:/rsync-test/
> SCP: scp -P $P file.txt $U@$A:/remote/path/"
_six_lines() { (($(wc -l <"$PROXY_OUT") >= 6)); }
wait_until 5 "the proxy's six banner lines" _six_lines
actual=$(cat "$PROXY_OUT")
[[ $actual == "$expected" ]] || fail "proxy stdout differs from the expected banner:
$(diff <(printf '%s\n' "$expected") <(printf '%s\n' "$actual"))"

# A command through the proxy, output checked exactly.
token="hello-$RANDOM-token"
out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$P" "$U@$A" "echo $token; id -un") ||
  fail "ssh through the proxy failed (status $?)"
[[ $out == "$token"$'\n'"$U" ]] ||
  fail "ssh output: '$out', want '$token' and '$U' on two lines"
log "ssh command ok"

# The remote exit status comes back.
rc=0
timeout 60 ssh "${SSH_OPTS[@]}" -p "$P" "$U@$A" 'exit 7' || rc=$?
((rc == 7)) || fail "ssh 'exit 7' through the proxy returned $rc, want 7"
log "remote exit status ok"

# Input goes through too (stdin -> remote -> stdout).
out=$(printf 'line-%s\n' 1 2 3 | timeout 60 ssh "${SSH_OPTS[@]}" -p "$P" \
  "$U@$A" 'cat; echo done') || fail "ssh with stdin failed (status $?)"
[[ $out == $'line-1\nline-2\nline-3\ndone' ]] || fail "stdin round trip: '$out'"

assert_alive "$EDGE_PID" wsmux-edge

# SIGTERM: exit 0 within 5 s, then nothing listens on the port.
stop_proxy "$PROXY_PID" "$PROXY_ERR"
if (exec 3<>"/dev/tcp/$A/$P") 2>/dev/null; then
  fail "something still accepts connections on $A:$P after the proxy exited"
fi
log "proxy exited 0 on SIGTERM"
