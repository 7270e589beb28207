#!/usr/bin/env bash
#
# e2e status_line: the live status line of a foreground --proxyOnly proxy.
#  - on a terminal (a pty from script(1)) one line on stderr, rewritten in
#    place ("\r" + erase-line), at most twice a second: "connected", the
#    open streams, throughput and totals each way;
#  - when the link is down it says "reconnecting in N s", N the real
#    seconds to the next attempt (checked against the backoff the proxy
#    logs); log lines erase it first and never share its line; it is
#    erased at exit;
#  - with --quiet, or when stderr is not a terminal, nothing like it is
#    printed.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack
start_faultrelay "$EDGE_PORT"

U=$LOGIN_USER
ESC=$'\033'

# on_tty NAME ARGS...: `wsmux ssh service --proxyOnly ARGS` on a pty, its
# whole output (stdout and stderr) in $T/NAME.tty; its stdin is a FIFO held
# open on fd TTY_FD[NAME], so script(1) never sees EOF. Sets TTY_PID[NAME].
declare -A TTY_PID=() TTY_FD=()
on_tty() {
  local name=$1 fd cmd
  shift
  mkfifo "$T/$name.in"
  exec {fd}<>"$T/$name.in"
  TTY_FD[$name]=$fd
  mkdir -p -m 700 "$T/run-$name"
  cmd=$(printf '%q ' env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" \
    XDG_RUNTIME_DIR="$T/run-$name" "$WSMUX_BIN" ssh service \
    --projectId "$E2E_PROJECT" --serviceId "$E2E_SSH_SERVICE" --proxyOnly \
    --edge "$FAULT_URL" --ca "$EDGE_CERT" --address 127.0.0.1 --port 0 \
    --user "$U" "$@")
  timeout 300 script -qfec "$cmd" /dev/null <"$T/$name.in" \
    >"$T/$name.tty" 2>&1 {fd}>&- &
  TTY_PID[$name]=$!
  track "${TTY_PID[$name]}" "wsmux on a pty ($name)"
  E2E_SAN_LOGS+=("$T/$name.tty")
  _has() { grep -q "$2" "$T/$1.tty"; }
  wait_until 20 "the proxy on a pty to print its endpoint" _has "$name" \
    'SSH proxy started on endpoint'
  local re='SSH proxy started on endpoint: ([0-9.]+):([0-9]+)'
  [[ $(cat "$T/$name.tty") =~ $re ]] || fail "no endpoint in $name.tty"
  PROXY_ADDR=${BASH_REMATCH[1]}
  PROXY_PORT=${BASH_REMATCH[2]}
}

# stop_tty NAME: `wsmux proxy stop` it; script must exit 0.
stop_tty() {
  XDG_RUNTIME_DIR="$T/run-$1" env "${E2E_SAN_ENV[@]}" timeout 30 \
    "$WSMUX_BIN" proxy stop --projectId "$E2E_PROJECT" \
    --serviceId "$E2E_SSH_SERVICE" >/dev/null || fail "proxy stop ($1) failed"
  wait_exit "${TTY_PID[$1]}" 15 || fail "script ($1) did not exit"
  ((WAIT_RC == 0)) || fail "the proxy on a pty ($1) exited $WAIT_RC"
  local fd=${TTY_FD[$1]}
  exec {fd}>&-
}

# texts NAME: the successive texts of the status line, one per line.
texts() {
  perl -0777 -ne 'while (/\r([^\r\n\e]*)\e\[K/g) { print "$1\n" if length $1 }' \
    "$T/$1.tty"
}

_status() { texts "$1" | grep -Eq "$2"; }

# --- on a terminal -------------------------------------------------------------

on_tty tty
wait_until 10 "a 'connected | 0 streams' status line" _status tty \
  '^connected \| 0 streams \| ↑ [0-9.]+ [kMGT]?B/s ↓ [0-9.]+ [kMGT]?B/s \| total ↑ [0-9.]+ [kMGT]?B ↓ [0-9.]+ [kMGT]?B$'
start_session s1
wait_until 10 "a '1 stream' status line" _status tty '^connected \| 1 stream \|'
# Throughput shows while bytes flow: 20 MB to the terminal of the session.
session_send s1 'head -c 20000000 /dev/zero | tr "\0" x; echo; echo big-done'
session_expect s1 big-done 60
# The tick that shows the rate can come after the session's last line (a
# fast transfer fits between two ticks), and script(1) relays it later still.
wait_until 10 "a download rate in the status lines" _status tty \
  '↓ [0-9.]+ (kB|MB|GB)/s'
wait_until 10 "a status line with the 20 MB total" _status tty \
  '^connected \| 1 stream \| .* \| total ↑ [0-9.]+ kB ↓ 2[0-9.]* MB$'
log "status line: connected, streams, rates, totals"

# At most two updates a second: count the redraws over 3 s of quiet. The
# window is measured, not assumed: on a busy machine the sleep and the two
# reads take longer, and the redraws in that time count too.
_now_ms
t0=$_NOW_MS
before=$(texts tty | wc -l)
sleep 3
after=$(texts tty | wc -l)
_now_ms
most=$(((_NOW_MS - t0) / 500 + 1))
((after - before >= 3 && after - before <= most)) ||
  fail "$((after - before)) status updates in $((_NOW_MS - t0)) ms, want 3..$most"

# The link drops: "reconnecting in N s" with the real backoff.
fault cut
_backoff() { (($(grep -c 'reconnecting in [0-9]* ms' "$T/tty.tty") >= 4)); }
wait_until 20 "four reconnect attempts" _backoff
fault restore
wait_until 20 "'connected' again" _status tty '^connected \| 1 stream'
session_echo s1 after-cut 30
# Each attempt's delay D (ms, logged) against the seconds the next status
# line showed (drawn within one 500 ms tick): between ceil((D - 600) / 1000)
# and ceil(D / 1000).
perl -0777 -ne '
  my ($pending, $ok) = (undef, 0);
  while (/reconnecting in (\d+) ms \(attempt|\r([^\r\n\e]+)\e\[K/g) {
    if (defined $1) { $pending = $1; next }
    next unless defined $pending;
    my ($d, $t) = ($pending, $2);
    undef $pending;
    next unless $t =~ /^reconnecting in (\d+) s/;
    my $k = $1;
    my ($lo, $hi) = (int(($d - 600 + 999) / 1000), int(($d + 999) / 1000));
    $lo = 0 if $lo < 0;
    die "delay $d ms shown as $k s (want $lo..$hi)\n" if $k < $lo || $k > $hi;
    $ok++ if $k >= 1;
  }
  die "no reconnect delay followed by its countdown\n" unless $ok;
' "$T/tty.tty" || fail "reconnect countdown wrong: $(texts tty | grep recon | tail -n 8)"
texts tty | grep -Eq '^reconnecting in [1-9][0-9]* s \| 1 stream \|' ||
  fail "no 'reconnecting in N s' line: $(texts tty | tail -n 8)"
# Every log line starts on a line of its own: right after a newline or
# after the status line was erased.
perl -0777 -ne '
  while (/(.{0,5})wsmux: /sg) {
    my $pre = $1;
    die "log line glued to: " . ($pre =~ s/\e/ESC/gr) . "\n"
      unless $pre eq "" || $pre =~ /(\n|\r\e\[K)$/;
  }' "$T/tty.tty" || fail "a log line was mixed into the status line"
log "status line: reconnecting countdown, log lines apart"

session_exit s1 30 || fail "ssh did not exit"
_last() { texts tty | tail -n 1 | grep -Eq "$1"; }
wait_until 10 "a last status line with 0 streams" _last '^connected \| 0 streams'
stop_tty tty
# Erased at exit: an erase follows the last text drawn.
perl -0777 -ne '
  my $last = -1;
  $last = pos() while /\r[^\r\n\e]+\e\[K/g;
  exit($last >= 0 && substr($_, $last) =~ /\r\e\[K/ ? 0 : 1)' "$T/tty.tty" ||
  fail "the status line is not erased at exit: $(tail -c 300 "$T/tty.tty" | cat -v)"
log "status line erased at exit"

# --- --quiet, and no terminal: no status line ----------------------------------

on_tty quiet --quiet
timeout 60 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" "$U@$PROXY_ADDR" true ||
  fail "ssh through the --quiet proxy failed"
sleep 1.5 # several ticks of the status timer, were it running
stop_tty quiet
if grep -q "stream\|${ESC}\[K" "$T/quiet.tty"; then
  fail "--quiet printed a status line: $(cat -v "$T/quiet.tty")"
fi

start_proxy_via_fault "$E2E_SSH_SERVICE"
timeout 60 ssh "${SSH_OPTS[@]}" -p "$PROXY_PORT" "$U@$PROXY_ADDR" true ||
  fail "ssh through the proxy failed"
sleep 1.5
stop_proxy "$PROXY_PID" "$PROXY_ERR"
if grep -q "stream\|connected\|"$'\r' "$PROXY_ERR"; then
  fail "a status line without a terminal: $(cat -v "$PROXY_ERR")"
fi
log "no status line with --quiet or without a terminal"
