#!/usr/bin/env bash
#
# e2e proxy_detach: background proxies and `wsmux proxy list|stop`.
#  - `--proxyOnly --detach` exits 0 once the proxy is up, after printing the
#    ready-made commands, its pid and log, and how to stop it; the pidfile,
#    control socket and log (0600, timestamped lines) are in
#    $XDG_RUNTIME_DIR/wsmux/; a relative --ca still works from "/";
#  - ssh goes through it;
#  - `proxy list` (table and json) shows it with open streams, bytes each
#    way and the link state, from its control socket; from its pidfile,
#    live figures unknown, when the socket does not answer;
#  - a second start, detached or not, prints the running one's endpoint and
#    exits 0 without starting anything;
#  - `proxy stop` stops it cleanly (process gone, files removed, exit 0);
#    stopping again exits 3; `--all` stops every proxy, foreground ones too;
#  - a proxy killed with SIGKILL leaves files that `proxy list` removes;
#  - a detached start with a bad token exits 2 with the edge's error and
#    leaves no process and no pidfile.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "ssh2 sshd"

RUN=$XDG_RUNTIME_DIR/wsmux
P=$E2E_PROJECT S=$E2E_SSH_SERVICE U=$LOGIN_USER
cp "$EDGE_CERT" "$T/relative-ca.crt"

# wsmux ARGS...: the CLI with the test's environment, bounded in time.
wsmux() { wsmux_bounded "$@"; }

# detach NAME SERVICE [ARGS...]: start a background proxy from $T with a
# relative --ca; stdout $T/NAME.out, stderr $T/NAME.err, status in RC.
detach() {
  local name=$1 service=$2
  shift 2
  RC=0
  (cd "$T" && wsmux ssh service --projectId "$P" --serviceId "$service" \
    --proxyOnly --detach --edge "$EDGE_URL" --ca relative-ca.crt \
    --address 127.0.0.1 --port 0 --user "$U" "$@" \
    </dev/null >"$T/$name.out" 2>"$T/$name.err") || RC=$?
}

# bg_pid NAME: the pid the detached start printed; tracked for cleanup.
bg_pid() {
  local re='^Proxy running in the background \(pid ([0-9]+)\), log: (.+)$'
  local line
  line=$(grep -E "$re" "$T/$1.out") ||
    fail "$1: no 'Proxy running in the background' line: $(cat "$T/$1.out" "$T/$1.err")"
  [[ $line =~ $re ]]
  BG_PID=${BASH_REMATCH[1]}
  BG_LOG=${BASH_REMATCH[2]}
  track "$BG_PID" "background proxy ($1)" 1
  E2E_SAN_LOGS+=("$BG_LOG")
}

# endpoint_of FILE: "ADDR PORT" from the banner's first line.
endpoint_of() {
  sed -nE 's/^SSH proxy started on endpoint: (.+):([0-9]+)$/\1 \2/p' "$1"
}

# procs: pids of the wsmux processes running with this test's runtime
# directory.
WSMUX_EXE=$(readlink -f "$WSMUX_BIN")
procs() {
  local d
  for d in /proc/[0-9]*; do
    [[ $(readlink "$d/exe" 2>/dev/null) == "$WSMUX_EXE" ]] &&
      grep -qzx "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR" "$d/environ" 2>/dev/null &&
      echo "${d#/proc/}"
  done
  return 0
}

# json_field NAME FILE: the first value of "NAME" in pretty-printed JSON.
json_field() {
  sed -nE "s/^ *\"$1\": \"?([^\",]*)\"?,?\$/\1/p" "$2" | head -n 1
}

# gone PID: the process has exited, every thread of it. A zombie waiting
# for init counts (the background proxy's parent exited long ago), but only
# once it is its last thread: after SIGKILL the main thread can be a zombie
# while the proxy's other threads are still exiting, holding its open files
# (and the pidfile's lock) for a while longer.
gone() {
  local s
  s=$(cat "/proc/$1/status" 2>/dev/null) || return 0
  [[ $s == *$'\nState:\tZ'* && $s == *$'\nThreads:\t1\n'* ]]
}

# --- a background proxy -----------------------------------------------------

detach d1 "$S"
((RC == 0)) || fail "--detach exited $RC: $(cat "$T/d1.err")"
bg_pid d1
PID=$BG_PID
read -r A PORT < <(endpoint_of "$T/d1.out")
[[ -n $A && -n $PORT ]] || fail "no endpoint line: $(cat "$T/d1.out")"
expected="SSH proxy started on endpoint: $A:$PORT
Use with any SSH compatible client. Example usages:
> SSH session: ssh $U@$A -p $PORT
> SFTP: sftp -P $PORT $U@$A
> RSYNC: rsync -avz -e \"ssh -p $PORT\" ./data/ $U@$A:/rsync-test/
> SCP: scp -P $PORT file.txt $U@$A:/remote/path/
Proxy running in the background (pid $PID), log: $RUN/$P.$S.log
Stop it with: wsmux proxy stop --projectId $P --serviceId $S"
[[ $(cat "$T/d1.out") == "$expected" ]] || fail "--detach stdout differs:
$(diff <(printf '%s\n' "$expected") "$T/d1.out")"
[[ ! -s $T/d1.err ]] || fail "--detach printed on stderr: $(cat "$T/d1.err")"
assert_alive "$PID" "the background proxy"
[[ $(stat -c %a "$RUN") == 700 ]] || fail "$RUN is not 0700"
[[ -f $RUN/$P.$S.pid && -S $RUN/$P.$S.sock ]] ||
  fail "no pidfile or socket in $RUN: $(ls -la "$RUN")"
[[ $(stat -c %a "$RUN/$P.$S.log") == 600 ]] || fail "the log is not 0600"
grep -q "\"pid\":$PID," "$RUN/$P.$S.pid" ||
  fail "the pidfile does not name pid $PID: $(cat "$RUN/$P.$S.pid")"
# A daemon: its own session, cwd /, nothing of the caller's held open.
[[ $(ps -o sid= -p "$PID" | tr -d ' ') == "$PID" ]] ||
  fail "the background proxy is not a session leader"
[[ $(readlink "/proc/$PID/cwd") == / ]] || fail "its cwd is not /"
[[ $(readlink "/proc/$PID/fd/1") == "$RUN/$P.$S.log" ]] ||
  fail "its stdout is not the log: $(readlink "/proc/$PID/fd/1")"
log "detached: pid $PID on $A:$PORT"

ssh_echo via-bg "ssh through the background proxy failed" "$PORT" "$A"

# --- proxy list, with a session open -----------------------------------------

start_session s1 "$PORT" "$A"
session_send s1 'head -c 100000 /dev/zero | tr "\0" x; echo; echo sent-100k'
session_expect s1 sent-100k 30
# The first ssh has exited, but its stream ends in the proxy only once the
# edge has closed its side too (after sshd hung up): wait for that.
_one_stream() {
  wsmux proxy list --output json >"$T/list.json" &&
    [[ $(json_field streams "$T/list.json") == 1 ]]
}
wait_until 20 "one open stream in proxy list" _one_stream
wsmux proxy list >"$T/list.out" 2>"$T/list.err" || fail "proxy list failed"
head -n 1 "$T/list.out" | grep -Eq \
  '^PROJECT +SERVICE +ENDPOINT +PID +UPTIME +STREAMS +UP +DOWN +LINK$' ||
  fail "proxy list header: $(cat "$T/list.out")"
row=$(grep -E "^$P +$S " "$T/list.out") || fail "no row: $(cat "$T/list.out")"
read -r _ _ ep pid up streams tx tx_u rx rx_u link <<<"$row"
[[ $ep == "$A:$PORT" && $pid == "$PID" && $streams == 1 &&
  $link == connected ]] || fail "proxy list row: '$row'"
[[ $up =~ ^[0-9]+(m[0-9]{2})?s$ ]] || fail "uptime '$up'"
[[ $tx != 0 && $rx_u == kB ]] ||
  fail "proxy list bytes up '$tx $tx_u' down '$rx $rx_u' (want > 0, ~100 kB)"
wsmux proxy list --output json >"$T/list.json" || fail "list json failed"
[[ $(json_field pid "$T/list.json") == "$PID" &&
  $(json_field endpoint "$T/list.json") == "$A:$PORT" &&
  $(json_field projectId "$T/list.json") == "$P" &&
  $(json_field link "$T/list.json") == connected &&
  $(json_field streams "$T/list.json") == 1 ]] ||
  fail "proxy list json: $(cat "$T/list.json")"
((   $(json_field streamsTotal "$T/list.json") >= 2 &&
  $(json_field bytesUp "$T/list.json") > 0 &&
  $(json_field bytesDown "$T/list.json") > 100000)) ||
  fail "proxy list json counters: $(cat "$T/list.json")"
session_end s1
wait_exit "${SESSION_PID[s1]}" 30 || fail "the ssh session did not end"
log "proxy list: table and json from the control socket"

# A proxy that does not answer (stopped) is listed from its pidfile, its
# live figures unknown, within the 1 s the socket is given.
kill -STOP "$PID"
rc=0
wsmux proxy list >"$T/list-stopped.out" || rc=$?
wsmux proxy list --output json >"$T/list-stopped.json" || rc=$?
kill -CONT "$PID"
((rc == 0)) || fail "proxy list of a stopped proxy exited $rc"
grep -Eq "^$P +$S +$A:$PORT +$PID +[0-9]+(m[0-9]{2})?s +- +- +- +-$" \
  "$T/list-stopped.out" || fail "stopped proxy row: $(cat "$T/list-stopped.out")"
[[ $(json_field link "$T/list-stopped.json") == null &&
  $(json_field bytesUp "$T/list-stopped.json") == null &&
  $(json_field endpoint "$T/list-stopped.json") == "$A:$PORT" ]] ||
  fail "stopped proxy json: $(cat "$T/list-stopped.json")"
log "proxy list: a proxy that does not answer is shown from its pidfile"

# --- a second start ----------------------------------------------------------

before=$(procs | sort | tr '\n' ' ')
detach d2 "$S"
((RC == 0)) || fail "second --detach exited $RC: $(cat "$T/d2.err")"
grep -qx "wsmux: A proxy for $P/$S is already running (pid $PID)" \
  "$T/d2.err" || fail "second start stderr: $(cat "$T/d2.err")"
[[ $(endpoint_of "$T/d2.out") == "$A $PORT" ]] ||
  fail "second start does not show the running endpoint: $(cat "$T/d2.out")"
after=$(procs | sort | tr '\n' ' ')
[[ $after == "$before" ]] ||
  fail "a second start left processes: before '$before', after '$after'"
rc=0
wsmux ssh service --projectId "$P" --serviceId "$S" --proxyOnly \
  --edge "$EDGE_URL" --ca "$EDGE_CERT" --user "$U" </dev/null \
  >"$T/fg2.out" 2>"$T/fg2.err" || rc=$?
((rc == 0)) && grep -q "already running (pid $PID)" "$T/fg2.err" &&
  [[ $(endpoint_of "$T/fg2.out") == "$A $PORT" ]] ||
  fail "second foreground start: status $rc, $(cat "$T/fg2.out" "$T/fg2.err")"
log "a second start shows the running proxy and starts nothing"

# --- proxy stop --------------------------------------------------------------

out=$(wsmux proxy stop --projectId "$P" --serviceId "$S") ||
  fail "proxy stop failed: $out"
[[ $out == "stopped $P/$S (pid $PID)" ]] || fail "proxy stop printed '$out'"
gone "$PID" || fail "the proxy still runs after proxy stop"
untrack "$PID"
[[ ! -e $RUN/$P.$S.pid && ! -e $RUN/$P.$S.sock ]] ||
  fail "files left after stop: $(ls -la "$RUN")"
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{4} wsmux: stopping$' \
  "$RUN/$P.$S.log" || fail "no timestamped 'stopping' line in the log:
$(cat "$RUN/$P.$S.log")"
check_sanitizers "$RUN/$P.$S.log" || fail "sanitizer report in the log"
rc=0
wsmux proxy stop --projectId "$P" --serviceId "$S" 2>"$T/stop2.err" || rc=$?
((rc == 3)) || fail "stopping a stopped proxy exited $rc, want 3"
grep -q "no proxy running for $P/$S" "$T/stop2.err" ||
  fail "stop again: $(cat "$T/stop2.err")"
log "proxy stop: clean, files removed; again exits 3"

# --- --all, a foreground proxy among them -------------------------------------

detach d3 "$S"
((RC == 0)) || fail "--detach (d3) exited $RC: $(cat "$T/d3.err")"
bg_pid d3
PID3=$BG_PID
E2E_PROXY_RUNTIME_DIR=$XDG_RUNTIME_DIR start_proxy ssh2
FG_PID=$PROXY_PID
wsmux proxy list >"$T/list3.out" || fail "proxy list (3) failed"
grep -Eq "^$P +ssh2 +127\.0\.0\.1:$PROXY_PORT +$FG_PID " "$T/list3.out" ||
  fail "the foreground proxy is not listed: $(cat "$T/list3.out")"
wsmux proxy stop --all >"$T/all.out" || fail "proxy stop --all failed"
sort "$T/all.out" >"$T/all.sorted"
printf 'stopped %s/%s (pid %s)\n' "$P" "$S" "$PID3" "$P" ssh2 "$FG_PID" |
  sort | diff - "$T/all.sorted" >/dev/null ||
  fail "proxy stop --all printed: $(cat "$T/all.out")"
gone "$PID3" || fail "--all left the background proxy running"
wait_exit "$FG_PID" 5 || fail "--all left the foreground proxy running"
((WAIT_RC == 0)) || fail "the foreground proxy exited $WAIT_RC on stop, want 0"
untrack "$PID3"
[[ -z $(find "$RUN" -name '*.pid' -o -name '*.sock') ]] ||
  fail "files left after --all: $(ls -la "$RUN")"
log "proxy stop --all: background and foreground proxies stopped"

# --- a proxy that died: stale files ----------------------------------------------

detach d4 "$S"
((RC == 0)) || fail "--detach (d4) exited $RC: $(cat "$T/d4.err")"
bg_pid d4
kill -KILL "$BG_PID"
wait_until 10 "the killed proxy to be gone" gone "$BG_PID"
untrack "$BG_PID"
[[ -e $RUN/$P.$S.pid ]] || fail "no pidfile left by SIGKILL (test premise)"
wsmux proxy list >"$T/list4.out" 2>"$T/list4.err" || fail "list (4) failed"
[[ ! -s $T/list4.out ]] || fail "a dead proxy is listed: $(cat "$T/list4.out")"
grep -q "no proxies running" "$T/list4.err" || fail "list4: $(cat "$T/list4.err")"
[[ ! -e $RUN/$P.$S.pid && ! -e $RUN/$P.$S.sock ]] ||
  fail "stale files not removed: $(ls -la "$RUN")"
log "stale pidfile and socket removed by proxy list"

# --- a failing start ----------------------------------------------------------------

TOKEN=wrong-token detach d5 "$S"
((RC == 2)) || fail "--detach with a bad token exited $RC, want 2"
grep -q "error: invalid or missing API token" "$T/d5.err" ||
  fail "bad token stderr: $(cat "$T/d5.err")"
[[ ! -s $T/d5.out ]] || fail "bad token printed on stdout: $(cat "$T/d5.out")"
[[ -z $(procs) ]] || fail "processes left after a failed start: $(procs)"
[[ ! -e $RUN/$P.$S.pid && ! -e $RUN/$P.$S.sock ]] ||
  fail "files left after a failed start: $(ls -la "$RUN")"
check_sanitizers "$RUN/$P.$S.log" || fail "sanitizer report in the log"
log "a failed detached start exits 2 and leaves nothing running"
