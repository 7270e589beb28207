#!/usr/bin/env bash
#
# e2e demo: scripts/demo run as a user would, without a terminal, in a
# process group of its own, with HOME holding a key of "yours":
#  - it registers your key and its throwaway key as SSH identities and
#    says so; its sshd takes keys from the edge (AuthorizedKeysCommand), so
#    ssh through the printed endpoint works with your key;
#  - after the ready-made commands it prints the export line for a second
#    terminal (WSMUX_EDGE, WSMUX_TOKEN, WSMUX_CA) and the next commands;
#    with that environment `wsmux ssh-identity list` shows both identities
#    and `wsmux ssh doctor` passes;
#  - SIGTERM: the demo exits and no process of its group is left after
#    10 s; the same for SIGHUP (a terminal closed).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

export WSMUX_BIN WSMUX_EDGE_BIN WSMUX_FREEPORT
export HOME=$T/home
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -C yours -f "$HOME/.ssh/id_ed25519"

# demo NAME: scripts/demo in the background, in a new process group (its
# pid is the group's id), no build, its build dir in $T. Sets DEMO_PID,
# DEMO_OUT, DEMO_ERR once it printed its next commands.
demo() {
  DEMO_OUT=$T/$1.out DEMO_ERR=$T/$1.err
  WSMUX_BUILD_DIR=$T/build WSMUX_DEMO_BUILD=0 \
    setsid bash "$WSMUX_REPO/scripts/demo" </dev/null >"$DEMO_OUT" 2>"$DEMO_ERR" &
  DEMO_PID=$!
  track "$DEMO_PID" "scripts/demo ($1)"
  wait_output 60 "the demo's next commands" "$DEMO_PID" "scripts/demo exited" \
    "$DEMO_ERR" -F "Stop with Ctrl+C, or kill $DEMO_PID" "$DEMO_OUT"
  [[ $(ps -o pgid= -p "$DEMO_PID" | tr -d ' ') == "$DEMO_PID" ]] ||
    fail "the demo does not lead its own process group"
}

# group_gone PGID: no process is left in the group.
group_gone() { ! pgrep -g "$1" >/dev/null; }

# stop_demo SIGNAL: send it, then the demo must exit and its whole group
# be gone within 10 s.
stop_demo() {
  local n
  n=$(pgrep -g "$DEMO_PID" | wc -l)
  ((n >= 4)) || fail "only $n processes in the demo's group: $(pgrep -ag "$DEMO_PID")"
  kill -"$1" "$DEMO_PID"
  wait_until 10 "every process of the demo to exit after SIG$1" group_gone "$DEMO_PID"
  wait_exit "$DEMO_PID" 1 || fail "the demo still runs"
  log "SIG$1: the demo exited ($WAIT_RC) with all of its $n processes within 10 s"
}

# --- the flow -------------------------------------------------------------

demo term
grep -qF "Your keys (~/.ssh/id_ed25519.pub) are SSH identity \"demo-$LOGIN_USER\"." "$DEMO_OUT" ||
  fail "the demo does not say it registered your key: $(cat "$DEMO_OUT")"
grep -qE 'The throwaway key .* is SSH identity "demo-throwaway"' "$DEMO_OUT" ||
  fail "the demo does not name the throwaway identity"
re='^SSH proxy started on endpoint: (.+):([0-9]+), stop with Ctrl\+C$'
line=$(grep -E "$re" "$DEMO_OUT") || fail "no endpoint line: $(cat "$DEMO_OUT")"
[[ $line =~ $re ]]
A=${BASH_REMATCH[1]} PORT=${BASH_REMATCH[2]}
# The export line comes after the ready-made commands.
exp=$(grep -n '^    export WSMUX_EDGE=' "$DEMO_OUT") || fail "no export line: $(cat "$DEMO_OUT")"
scp=$(grep -n '^> SCP: ' "$DEMO_OUT" | cut -d: -f1)
((${exp%%:*} > scp)) || fail "the export line is not after the ready-made commands"
eval "${exp#*:}"
[[ -n $WSMUX_EDGE && -n $WSMUX_TOKEN && -f $WSMUX_CA ]] || fail "export line: $exp"
grep -qE '^    .*wsmux ssh-identity list$' "$DEMO_OUT" &&
  grep -qE "^    .*wsmux ssh doctor --projectId demo --serviceId web --key-file $HOME/.ssh/id_ed25519.pub\$" "$DEMO_OUT" ||
  fail "the next commands are missing: $(cat "$DEMO_OUT")"

# Your key, through the proxy, authorized by the edge's identities.
out=$(timeout 60 ssh -F /dev/null -i "$HOME/.ssh/id_ed25519" -o IdentitiesOnly=yes \
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes \
  -o LogLevel=ERROR -p "$PORT" "$LOGIN_USER@$A" echo via-demo 2>"$T/ssh.err") ||
  fail "ssh through the demo: $(cat "$T/ssh.err")"
[[ $out == via-demo ]] || fail "ssh printed '$out'"
# The second terminal's commands.
env "${E2E_SAN_ENV[@]}" "$WSMUX_BIN" ssh-identity list >"$T/ids.out" 2>"$T/ids.err" ||
  fail "ssh-identity list: $(cat "$T/ids.err")"
grep -q "demo-$LOGIN_USER" "$T/ids.out" && grep -q demo-throwaway "$T/ids.out" ||
  fail "ssh-identity list: $(cat "$T/ids.out")"
env "${E2E_SAN_ENV[@]}" "$WSMUX_BIN" ssh doctor --projectId demo --serviceId web \
  --key-file "$HOME/.ssh/id_ed25519.pub" >"$T/doctor.out" 2>&1 ||
  fail "ssh doctor: $(cat "$T/doctor.out")"
log "your key registered and usable; the export line and next commands work"
stop_demo TERM
((WAIT_RC == 143)) || fail "the demo exited $WAIT_RC after SIGTERM, want 143"

# --- SIGHUP ---------------------------------------------------------------

demo hup
stop_demo HUP
((WAIT_RC == 129)) || fail "the demo exited $WAIT_RC after SIGHUP, want 129"

log "PASS"
