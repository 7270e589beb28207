#!/usr/bin/env bash
#
# e2e limits: the edge's refusals and limits (docs/PROTOCOL.md section 9),
# driven by wsmux-wsraw over TLS against a real edge and a real sshd. The
# edge config adds "maxStreams": 4, "maxConnectionsPerToken": 2,
# "handshakeTimeoutMs": 3000 and a second token.
#  1. Upgrades refused before any upstream is touched (sshd logs no new
#     "Connection from" line), each with its X-Wsmux-Error text: no
#     Sec-WebSocket-Protocol, or another one than wsmux.v1 -> 400; a wrong
#     token, or none -> 401. Then a control: one OPEN does reach sshd.
#  2. maxStreams: 5 OPENs on one WebSocket -> the 5th gets OPEN_FAIL LIMIT
#     (without reaching sshd) while the 4 others get OPEN_OK and sshd's
#     banner; after one of them is reset, a new OPEN is accepted.
#  3. maxConnectionsPerToken: with two WebSockets of one token open, a third
#     gets HTTP 429 "too many connections for this token"; the other token
#     still gets in; once one of the two closes, the first token gets in
#     again.
#  4. handshakeTimeoutMs: a TCP connection that sends nothing, and a TLS
#     connection that sends no HTTP request, are dropped 2.5..9 s after the
#     connect; an upgraded WebSocket idle for longer is not.
# The edge is alive at the end (and, at cleanup, has no sanitizer report).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"

PING=frame\ PING\ 0\ 0102030405060708
OPEN_WINDOW=00010000

prepare_stack --edge-json '"maxStreams": 4, "maxConnectionsPerToken": 2, "handshakeTimeoutMs": 3000'
# A second token, added to lib.sh's config.
TOKEN2=wsmux-e2e-other-$(openssl rand -hex 16)
SHA2=$(printf '%s' "$TOKEN2" | sha256sum | cut -d' ' -f1)
sed -i -e 's/^  "tokens": \[\({"id": "test", "sha256": "[0-9a-f]*"}\)\],$/  "tokens": [\1, {"id": "other", "sha256": "'"$SHA2"'"}],/' \
  "$EDGE_CONFIG"
if ! grep -q '"maxConnectionsPerToken": 2' "$EDGE_CONFIG" ||
  ! grep -q '"id": "other"' "$EDGE_CONFIG"; then
  fail "could not set up $EDGE_CONFIG (has write_edge_config's format changed?):
$(cat "$EDGE_CONFIG")"
fi
start_edge
WS_PATH=$(ws_path "$E2E_SSH_SERVICE")

# raw NAME [WSRAW_ARGS...]: run wsmux-wsraw against the edge (TLS, the ssh
# service, token $EDGE_TOKEN unless --token is given), the script on stdin
# when it is not a terminal. Output in $T/raw-NAME.out (RAW_OUT); fails the
# test when wsmux-wsraw fails.
raw() {
  wsraw "$1" 90 "$WS_PATH" "${@:2}"
  log "$1: $(tr '\n' '|' <"$RAW_OUT")"
}

# expect_refused NAME STATUS ERROR: raw NAME got STATUS and X-Wsmux-Error.
expect_refused() {
  [[ $(head -n 1 "$T/raw-$1.out") == "status $2" ]] ||
    fail "$1: want HTTP $2, got: $(cat "$T/raw-$1.out")"
  grep -qxF "X-Wsmux-Error: $3" "$T/raw-$1.out" ||
    fail "$1: want X-Wsmux-Error '$3', got: $(cat "$T/raw-$1.out")"
}

# Connections sshd has accepted so far: OpenSSH logs "Connection from" at
# LogLevel VERBOSE (lib.sh's sshd_config), not at the default INFO.
grep -qx 'LogLevel VERBOSE' "$T/sshd_config" ||
  fail "sshd does not run with LogLevel VERBOSE: its log would not show connections"
sshd_conns() {
  local n
  n=$(grep -c 'Connection from ' "$T/sshd.log" || true)
  printf '%s\n' "${n:-0}"
}

# sshd_conns_at_least N: for wait_until.
sshd_conns_at_least() {
  (($(sshd_conns) >= $1))
}

# --- 1. refused before any upstream is touched ----------------------------
c0=$(sshd_conns)
raw no_subprotocol --subprotocol none </dev/null
expect_refused no_subprotocol 400 \
  "the wsmux.v1 WebSocket subprotocol is required"
raw other_subprotocol --subprotocol chat </dev/null
expect_refused other_subprotocol 400 \
  "the wsmux.v1 WebSocket subprotocol is required"
raw wrong_token --token "wsmux-e2e-wrong-$RANDOM$RANDOM" </dev/null
expect_refused wrong_token 401 "invalid or missing API token"
raw no_token --token "" </dev/null
expect_refused no_token 401 "invalid or missing API token"
sleep 0.5
c1=$(sshd_conns)
((c1 == c0)) || fail "sshd saw $((c1 - c0)) connection(s) from refused upgrades"
# Control: the count does move when a stream is opened.
raw control <<EOF
frame OPEN 1 $OPEN_WINDOW
expect-frame OPEN_OK 1
expect-frame DATA 1
EOF
wait_until 10 "sshd to log the control stream's connection" \
  sshd_conns_at_least $((c1 + 1))
log "refused upgrades reached no upstream; the control stream did"

# --- 2. maxStreams 4 -------------------------------------------------------
c0=$(sshd_conns)
raw max_streams <<EOF
frames OPEN 1 $OPEN_WINDOW ; OPEN 3 $OPEN_WINDOW ; OPEN 5 $OPEN_WINDOW ; OPEN 7 $OPEN_WINDOW ; OPEN 9 $OPEN_WINDOW
expect-frame OPEN_FAIL 9 LIMIT
expect-frame OPEN_OK 1
expect-frame OPEN_OK 3
expect-frame OPEN_OK 5
expect-frame OPEN_OK 7
expect-frame DATA 1
expect-frame DATA 3
expect-frame DATA 5
expect-frame DATA 7
$PING
expect-frame PONG 0
expect-none RST 1
expect-none RST 3
expect-none RST 5
expect-none RST 7
# a free slot is usable again
frame RST 1 0007
frame OPEN 11 $OPEN_WINDOW
expect-frame OPEN_OK 11
expect-frame DATA 11
close
EOF
grep -q '^frame OPEN_FAIL 9 code=LIMIT ' "$RAW_OUT" ||
  fail "max_streams: no OPEN_FAIL LIMIT line: $(cat "$RAW_OUT")"
wait_until 10 "sshd to log the 5 accepted streams" \
  sshd_conns_at_least $((c0 + 5))
sleep 0.5
c1=$(sshd_conns)
((c1 == c0 + 5)) ||
  fail "sshd saw $((c1 - c0)) connections for 5 accepted streams (and 1 refused)"

# --- 3. maxConnectionsPerToken 2 -----------------------------------------
# hold NAME [WSRAW_ARGS...]: an upgraded WebSocket left open (idle, PINGs
# answered) until stopped. Sets HOLD_PID.
hold() {
  local name=$1
  shift
  printf 'sleep 300000\n' >"$T/hold.script"
  "$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --tls --ca "$EDGE_CERT" \
    --path "$WS_PATH" --verbose --max-seconds 400 --script "$T/hold.script" \
    "$@" </dev/null >"$T/hold-$name.out" 2>"$T/run-hold-$name.err" &
  HOLD_PID=$!
  track "$HOLD_PID" "wsmux-wsraw holding $name"
  _held() {
    grep -qx 'status 101' "$T/hold-$name.out" && return 0
    kill -0 "$HOLD_PID" 2>/dev/null ||
      fail "$name: the WebSocket was not established: $(cat "$T/hold-$name.out" "$T/run-hold-$name.err")"
    return 1
  }
  wait_until 20 "WebSocket $name to be established" _held
}
hold a --token "$EDGE_TOKEN"
HOLD_A=$HOLD_PID
hold b --token "$EDGE_TOKEN"
HOLD_B=$HOLD_PID
raw third </dev/null
expect_refused third 429 "too many connections for this token"
raw other_token --token "$TOKEN2" <<EOF
frame OPEN 1 $OPEN_WINDOW
expect-frame OPEN_OK 1
EOF
[[ $(head -n 1 "$RAW_OUT") == "status 101" ]] ||
  fail "other_token: the second token was refused: $(cat "$RAW_OUT")"
assert_alive "$HOLD_A" "the first WebSocket of the token"
assert_alive "$HOLD_B" "the second WebSocket of the token"
stop_pid "$HOLD_A" 5 || true
# The edge sees the close shortly after: the token has a free slot again.
_slot_free() {
  raw again </dev/null
  [[ $(head -n 1 "$RAW_OUT") == "status 101" ]]
}
wait_until 15 "a WebSocket of the first token to be accepted again" _slot_free
stop_pid "$HOLD_B" 5 || true
log "maxConnectionsPerToken: 429 for a third WebSocket, other token accepted"

# --- 4. handshakeTimeoutMs 3000 -------------------------------------------
# idle NAME [--tls ...]: connect, send nothing; closed within 2.5..9 s.
idle() {
  local name=$1 rc=0 ms
  shift
  timeout -k 5 60 "$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --idle \
    --timeout 20 "$@" >"$T/idle-$name.out" 2>"$T/run-idle-$name.err" || rc=$?
  ms=$(sed -n 's/^closed after \([0-9]*\) ms$/\1/p' "$T/idle-$name.out")
  [[ -n $ms ]] || fail "$name: the edge did not drop an idle connection" \
    "(status $rc): $(cat "$T/idle-$name.out" "$T/run-idle-$name.err")"
  ((ms >= 2500 && ms <= 9000)) ||
    fail "$name: dropped after $ms ms, want 2500..9000 (handshakeTimeoutMs 3000)"
  # Under load the deadline may fall in the TLS handshake: also a drop.
  log "$name: dropped after $ms ms$(grep -q 'during the TLS handshake' \
    "$T/run-idle-$name.err" && echo ' (during the TLS handshake)')"
}
# An upgraded WebSocket idle for longer than the handshake timeout stays.
raw idle_websocket <<EOF &
sleep 4500
$PING
expect-frame PONG 0
EOF
IDLE_WS_PID=$!
track "$IDLE_WS_PID" "idle WebSocket"
idle tcp
idle tls --tls --ca "$EDGE_CERT"
if ! wait_exit "$IDLE_WS_PID" 30 || ((WAIT_RC != 0)); then
  fail "an upgraded WebSocket did not survive the handshake timeout:
$(cat "$T/raw-idle_websocket.out" "$T/run-raw-idle_websocket.err")"
fi

assert_alive "$EDGE_PID" wsmux-edge
raw final <<EOF
$PING
expect-frame PONG 0
EOF
