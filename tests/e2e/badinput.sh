#!/usr/bin/env bash
#
# e2e badinput: malformed input from a client (docs/PROTOCOL.md sections 1-4)
# is contained: a broken frame closes only its own WebSocket with 1002, a
# broken stream rule resets only that stream, and everything else keeps
# working. The client is wsmux-wsraw (raw sockets + OpenSSL), talking TLS to
# a real edge whose service "ssh" is a real sshd. The edge's window is 16 KiB
# here, so that one DATA frame can overrun it without a byte reaching sshd.
#
# Meanwhile an ssh session through a normal proxy echoes a numbered line
# every 50 ms; at the end every line must have come back, in order.
#
# Each on its own WebSocket, closed by the edge with 1002:
#   a text message; a message ending inside a frame header; one ending
#   inside a payload; a DATA frame with payload length 65537 (all 65537
#   bytes sent); an unknown frame type (with a stream open to sshd); non-zero
#   flags; a non-zero reserved field; an OPEN with an even stream id.
# Then on one WebSocket that must stay open throughout (PING answered after
# each step, closed with 1000 at the end):
#   DATA for a stream never opened          -> RST UNKNOWN_STREAM
#   OPEN, then DATA beyond the edge's window -> RST FLOW_CONTROL
#   WINDOW raising the credit past 2^31-1   -> RST FLOW_CONTROL (granting
#                                              back the bytes received is
#                                              accepted)
#   WINDOW 0                                -> RST FLOW_CONTROL
#   RST from us (code RESET, and code NO_ERROR) -> the stream is gone
#   DATA/WINDOW/FIN/RST for closed streams  -> ignored (no RST back)
# After all: the edge runs, the session completed, the old proxy and a new
# one both carry ssh, and (at cleanup) no sanitizer report.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"

E2E_WINDOW_BYTES=16384
PING=frame\ PING\ 0\ 0102030405060708

start_stack_with_proxy
PROXY1_PID=$PROXY_PID PROXY1_ERR=$PROXY_ERR
P1_ADDR=$PROXY_ADDR P1_PORT=$PROXY_PORT
WS_PATH=$(ws_path "$E2E_SSH_SERVICE")

# --- the bystander: an ssh session echoing numbered lines ------------------
# The feeder stops at $T/stop (or after 300 s), then sends END.
# shellcheck disable=SC2016 # expanded by the remote shell
ECHO_CMD='while read -r l; do echo "got $l"; [ "$l" = END ] && exit 0; done
exit 3'
(
  i=0
  while ((i < 6000)) && [[ ! -e $T/stop ]]; do
    echo "$i"
    i=$((i + 1))
    sleep 0.05
  done
  echo END
) | timeout -k 5 400 ssh "${SSH_OPTS[@]}" -p "$P1_PORT" \
  "$LOGIN_USER@$P1_ADDR" "$ECHO_CMD" \
  >"$T/session.out" 2>"$T/run-session.err" &
BYSTANDER_PID=$!
track "$BYSTANDER_PID" "ssh session"
wait_output 60 "the ssh session's first echoed line" "$BYSTANDER_PID" \
  "the ssh session ended early" "$T/run-session.err" -x 'got 0' "$T/session.out"
log "ssh session running (pid $BYSTANDER_PID)"

# raw NAME: run wsmux-wsraw with the script on stdin against the edge (TLS,
# good token, the ssh service). Its stdout is in $RAW_OUT; fails the test
# unless it got 101 and every expectation of the script held.
raw() {
  wsraw "$1" 90 "$WS_PATH"
  [[ $(head -n 1 "$RAW_OUT") == "status 101" ]] ||
    fail "$1: the upgrade was refused: $(cat "$RAW_OUT")"
  log "$1: $(tail -n 1 "$RAW_OUT")"
}

# expect_reason NAME TEXT: the close line of raw NAME mentions TEXT.
expect_reason() {
  grep -q "^close 1002 .*$2" "$T/raw-$1.out" ||
    fail "$1: the close reason does not mention '$2': $(cat "$T/raw-$1.out")"
}

# --- protocol errors: each closes its WebSocket with 1002 -----------------
LINES_BEFORE=$(wc -l <"$T/session.out")
raw text <<EOF
sendtext hello
expect-close 1002
EOF
expect_reason text "text messages are not allowed"

raw truncated_header <<EOF
send 0400000000
expect-close 1002
EOF
expect_reason truncated_header "message ends inside a frame"

raw truncated_payload <<EOF
frame DATA 1 0102 length=10
expect-close 1002
EOF
expect_reason truncated_payload "message ends inside a frame"

raw oversize <<EOF
frame DATA 1 00*65537
expect-close 1002
EOF
expect_reason oversize "too large"

raw unknown_type <<EOF
frame OPEN 1 00010000
expect-frame OPEN_OK 1
frame 0x42 1 00
expect-close 1002
EOF
expect_reason unknown_type "unknown frame type"

raw flags <<EOF
$PING flags=1
expect-close 1002
EOF
expect_reason flags "non-zero flags"

raw reserved <<EOF
$PING reserved=0x0100
expect-close 1002
EOF
expect_reason reserved "non-zero flags or reserved bits"

raw even_open <<EOF
frame OPEN 2 00010000
expect-close 1002
EOF
expect_reason even_open "stream id 2"

# --- stream errors: RST of that stream only; the WebSocket stays open -----
# Stream 1 sends a valid SSH identification line first (sshd then waits for
# more), then one byte more than the rest of the window in a second frame.
BANNER="SSH-2.0-wsraw"$'\r\n'
BANNER_HEX=$(printf '%s' "$BANNER" | od -An -tx1 -v | tr -d ' \n')
OVER=$((E2E_WINDOW_BYTES - ${#BANNER} + 1))
raw stream_errors <<EOF
# never opened: RST UNKNOWN_STREAM, connection unaffected
frame DATA 101 68656c6c6f
expect-frame RST 101 UNKNOWN_STREAM
$PING
expect-frame PONG 0

# DATA beyond the window the edge granted in OPEN_OK
frame OPEN 1 00010000
expect-frame OPEN_OK 1
frames DATA 1 $BANNER_HEX ; DATA 1 00*$OVER
expect-frame RST 1 FLOW_CONTROL
$PING
expect-frame PONG 0

# WINDOW overflow: the edge's credit is at most 65536 (our OPEN's window)
frame OPEN 3 00010000
expect-frame OPEN_OK 3
frame WINDOW 3 7fffffff
expect-frame RST 3 FLOW_CONTROL
# granting back exactly the bytes received (sshd's banner) is fine...
frame OPEN 5 00010000
expect-frame OPEN_OK 5
expect-frame DATA 5
ack 5
$PING
expect-frame PONG 0
expect-none RST 5
# ...an increment that would push the credit past 2^31-1 is not
frame WINDOW 5 7fffffff
expect-frame RST 5 FLOW_CONTROL

# WINDOW 0
frame OPEN 7 00010000
expect-frame OPEN_OK 7
frame WINDOW 7 00000000
expect-frame RST 7 FLOW_CONTROL

# streams we reset ourselves, with RESET and with NO_ERROR: either way
# the edge drops the stream and its upstream connection (no RST back)
frame OPEN 9 00010000
expect-frame OPEN_OK 9
frame RST 9 0007
frame OPEN 11 00010000
expect-frame OPEN_OK 11
frame RST 11 0000
$PING
expect-frame PONG 0

# late frames for closed streams are ignored: no RST comes back
forbid RST 1
forbid RST 3
forbid RST 5
forbid RST 7
forbid RST 9
forbid RST 11
frames DATA 1 00 ; WINDOW 3 00001000 ; FIN 7 ; DATA 9 41 ; RST 5 0000
frames WINDOW 9 00000000 ; DATA 11 41 ; FIN 11
$PING
expect-frame PONG 0
expect-none RST 1
expect-none RST 9
expect-none RST 11

# still usable: a new stream reaches sshd
frame OPEN 13 00010000
expect-frame OPEN_OK 13
expect-frame DATA 13
close
EOF
grep -qx 'close 1000 .*' "$RAW_OUT" ||
  fail "stream_errors: the edge did not close with 1000: $(cat "$RAW_OUT")"
grep -q '^frame RST 101 code=UNKNOWN_STREAM' "$RAW_OUT" ||
  fail "stream_errors: no RST UNKNOWN_STREAM line: $(cat "$RAW_OUT")"
grep -qx "frame OPEN_OK 1 window=$E2E_WINDOW_BYTES" "$RAW_OUT" ||
  fail "stream_errors: OPEN_OK did not grant $E2E_WINDOW_BYTES bytes"
n=$(grep -c '^frame PONG 0 data=0102030405060708$' "$RAW_OUT")
((n == 5)) || fail "stream_errors: $n PONGs, want 5: $(cat "$RAW_OUT")"

# --- afterwards ------------------------------------------------------------
assert_alive "$EDGE_PID" wsmux-edge
_session_moved() {
  (($(wc -l <"$T/session.out") > LINES_BEFORE + 2))
}
wait_until 10 "the ssh session to echo more lines" _session_moved

touch "$T/stop"
wait_exit "$BYSTANDER_PID" 60 || fail "the ssh session did not end after END"
((WAIT_RC == 0)) ||
  fail "the ssh session exited $WAIT_RC: $(cat "$T/run-session.err")"
last=$(($(wc -l <"$T/session.out") - 2))
diff <(seq 0 "$last" | sed 's/^/got /'; echo 'got END') "$T/session.out" \
  >"$T/session.diff" ||
  fail "the ssh session's echo is not 0..$last then END:
$(head -n 20 "$T/session.diff")"
log "the ssh session echoed lines 0..$last in order and ended cleanly"

ssh_echo old-proxy-works \
  "ssh through the first proxy failed after the bad input" "$P1_PORT" "$P1_ADDR"
start_proxy "$E2E_SSH_SERVICE"
ssh_echo new-proxy-works "ssh through a new proxy failed after the bad input"
stop_proxy "$PROXY_PID" "$PROXY_ERR"
stop_proxy "$PROXY1_PID" "$PROXY1_ERR"
assert_alive "$EDGE_PID" wsmux-edge
