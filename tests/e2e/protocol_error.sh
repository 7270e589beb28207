#!/usr/bin/env bash
#
# e2e protocol_error: an edge that breaks the wsmux protocol mid-session.
# A plain ws:// edge behind wsmux-faultrelay, whose frames the relay can
# read: `fault corrupt` overwrites the length of the DATA frame carrying
# one echoed line with a length far past the end of its WebSocket message,
# which RFC-wise is a valid message and wsmux-wise a protocol error
# (docs/PROTOCOL.md section 1). The proxy must not resume that session (a
# failed session refuses every byte, so each resume would fail again while
# the local connection hangs until the grace runs out):
#   - the local connection whose bytes were in the frame is closed at once
#     (well before the 60 s grace), and the proxy says why ("the session
#     broke down: open connections reset");
#   - the proxy keeps running and reconnects with a new session, through
#     which a new connection echoes byte-exact;
#   - the edge does not keep the broken session for a resume.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

command -v socat >/dev/null || fail "socat is needed (scripts/setup)"

prepare_stack --no-keys --upstream testsrv "echo testsrv"
# Plain ws:// (as behind a TLS-terminating balancer), so that the relay
# sees the frames.
sed -i 's#^  "tls": {.*},$#  "plainWs": true,#' "$EDGE_CONFIG"
grep -q '"plainWs": true' "$EDGE_CONFIG" ||
  fail "lib.sh's edge config changed: no tls line to replace in $EDGE_CONFIG"
start_edge
[[ $EDGE_URL == ws://* ]] || fail "the edge is not plain ws://: $EDGE_URL"
start_faultrelay "$EDGE_PORT"
start_proxy_via_fault echo

# echo_client NAME: a connection through the proxy in ECHO mode (socat);
# lines go in through the fifo $T/client-NAME.in, the echo comes out in
# $T/client-NAME.out.
declare -A CLIENT_PID=() CLIENT_FD=()
echo_client() {
  local name=$1 fd
  mkfifo "$T/client-$name.in"
  socat - "TCP:$PROXY_ADDR:$PROXY_PORT" <"$T/client-$name.in" \
    >"$T/client-$name.out" 2>"$T/run-client-$name.err" &
  CLIENT_PID[$name]=$!
  track "$!" "client $name"
  exec {fd}>"$T/client-$name.in"
  CLIENT_FD[$name]=$fd
  printf 'ECHO\n' >&"$fd"
}
_echoed() { grep -qxF -- "$2" "$T/client-$1.out"; } # NAME LINE
# echo_line NAME LINE: LINE comes back within 10 s.
echo_line() {
  printf '%s\n' "$2" >&"${CLIENT_FD[$1]}"
  wait_until 10 "the echo of '$2' on connection $1" _echoed "$1" "$2"
}

echo_client a
echo_line a before-1
echo_line a before-2
log "a connection echoes through the proxy, the relay and the ws:// edge"

# --- the broken frame ---------------------------------------------------------
# The edge sends the echo of LINE as a DATA frame whose header ends with
# the payload length (4 bytes, big-endian); the relay makes that
# 0x7ffffff0. A line echoed in two pieces is not matched and comes back
# whole: then it is sent again.
LINE=PROTOCOL-BREAK
line_hex=$(printf '%s\n' "$LINE" | od -An -tx1 | tr -d ' \n')
len_hex=$(printf '%08x' $((${#LINE} + 1)))
fault corrupt "$len_hex$line_hex" "7ffffff0$line_hex"
_corrupted() {
  [[ $("$WSMUX_FAULTRELAY" --send "$FAULT_CTL" stats) == *" corrupted=1"* ]]
}
_echoes() { grep -cxF -- "$LINE" "$T/client-a.out" || true; }
_settled() { _corrupted || (($(_echoes) >= attempt)); }
for attempt in 1 2 3 4 5; do
  sent_at=$EPOCHREALTIME
  printf '%s\n' "$LINE" >&"${CLIENT_FD[a]}"
  wait_until 10 "the line to be echoed or its frame corrupted" _settled
  _corrupted && break
  log "attempt $attempt: echoed in pieces, not corrupted; again"
done
_corrupted || fail "the relay never found the frame to corrupt"

# The connection is closed at once (not after the grace), without the echo.
wait_exit "${CLIENT_PID[a]}" 10 ||
  fail "the connection whose session broke is still open 10 s later"
closed_ms=$(awk -v a="$sent_at" -v b="$EPOCHREALTIME" 'BEGIN{printf "%d", (b - a) * 1000}')
(($(_echoes) == attempt - 1)) ||
  fail "the corrupted frame's bytes reached the connection: $(tail -n 3 "$T/client-a.out")"
grep -q 'the session broke down: open connections reset' "$PROXY_ERR" ||
  fail "the proxy does not say why the connection was reset: $(tail -n 20 "$PROXY_ERR")"
log "the connection was closed ${closed_ms} ms after the broken frame, the proxy says why"

# --- the proxy goes on, with a new session ------------------------------------
assert_proxy_alive "after the protocol error"
fault restore
echo_client b
echo_line b after-1
testcli_out=$("$WSMUX_TESTCLI" --connect "$PROXY_ADDR:$PROXY_PORT" --mode echo \
  --bytes 4M --seed 7 --timeout 60 2>"$T/run-testcli.err") ||
  fail "4 MiB through the proxy after the protocol error: $(cat "$T/run-testcli.err")"
[[ $testcli_out == "ok 4194304 bytes" ]] || fail "testcli: '$testcli_out'"
# The second WebSocket did not resume the broken session.
if grep -q 'session resumed' "$PROXY_ERR"; then
  fail "the proxy resumed the broken session: $(grep 'session resumed' "$PROXY_ERR")"
fi
assert_proxy_alive "after the new connections"
log "the proxy reconnected with a new session: a line and 4 MiB echo byte-exact"

# --- the edge kept nothing ------------------------------------------------------
if grep -q '(streams kept for a resume)' "$EDGE_ERR"; then
  fail "the edge kept the broken session for a resume: $(grep 'kept for a resume' "$EDGE_ERR")"
fi
log "the edge did not keep the broken session"

fd=${CLIENT_FD[b]}
exec {fd}>&-
wait_exit "${CLIENT_PID[b]}" 10 || fail "client b did not finish after its EOF"
