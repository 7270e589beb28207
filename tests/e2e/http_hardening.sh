#!/usr/bin/env bash
#
# e2e http_hardening: what an unauthenticated or careless client can do to
# the edge's listener (docs/PROTOCOL.md section 1, docs/EDGE_CONFIG.md
# "Limits"). A real edge (TLS) with handshakeTimeoutMs 4000,
# maxUnauthenticated 10, maxUnauthenticatedPerAddress 4 and trustedProxies
# 127.0.0.3, a real sshd behind it.
#
#  1. Ambiguous or body-smuggling requests are refused with a status line of
#     our own ("HTTP/1.1 NNN Reason"), an X-Wsmux-Error saying why and
#     Connection: close: no Host on HTTP/1.1, two Content-Lengths,
#     Content-Length with Transfer-Encoding, "Content-Length :", a
#     non-numeric or huge Content-Length (400); chunked or length-less
#     bodies (411); an upgrade by POST or with a body (400). Each counts in
#     wsmux_edge_requests_malformed_total.
#  2. A POST without a token announcing 1 MB of body is answered 401 at once,
#     from its head: the body is never waited for.
#  3. Bodies trickled one byte every 250 ms (token valid, so only the deadline
#     stops them): four at once are cut 4..15 s after connecting, with no
#     answer; counted as limit_rejections{handshake_timeout}; afterwards the
#     edge holds as many descriptors as before.
#  4. Connections that send nothing: four from 127.0.0.1 are held (gauge
#     wsmux_edge_connections_unauthenticated 4), a fifth is closed at once
#     (limit unauthenticated_per_address); five from the trusted proxy
#     127.0.0.3 (not capped per address) and one from 127.0.0.2 fill the
#     overall cap of 10, the next is closed at once (limit
#     unauthenticated). Meanwhile a WebSocket opened
#     before goes on answering PINGs; once the deadline has dropped the idle
#     ones, a new WebSocket is accepted. After 3 and 4 the edge holds as
#     many descriptors as before them and its RSS grew by less than 4 MiB.
#  5. Close frames: code 5000, code 1005 and a 1-byte payload are answered
#     with 1002; a reason that is not UTF-8 with 1007; 1000 "bye" with 1000.
# At the end the edge is alive (and, at cleanup, no sanitizer report).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"
command -v socat >/dev/null || fail "socat is needed (scripts/setup)"

CRLF=$'\r\n'
PING=frame\ PING\ 0\ 0102030405060708

# ASan keeps freed memory in a quarantine before reusing it; at lib.sh's 16
# MiB the TLS handshakes below fill it and RSS grows by several MiB with
# nothing retained. One MiB still catches a use after a recent free and
# leaves the RSS check below its meaning.
E2E_SAN_ENV[0]="ASAN_OPTIONS=quarantine_size_mb=1:detect_leaks=1"
start_stack --edge-json '"metricsListen": "127.0.0.1:0", "handshakeTimeoutMs": 4000, "maxUnauthenticated": 10, "maxUnauthenticatedPerAddress": 4, "trustedProxies": ["127.0.0.3/32"]'
edge_metrics_port
WS_PATH=$(ws_path "$E2E_SSH_SERVICE")
LIMIT='wsmux_edge_limit_rejections_total{limit='
UNAUTH=wsmux_edge_connections_unauthenticated
MALFORMED=wsmux_edge_requests_malformed_total

# --- 1. ambiguous requests ---------------------------------------------------
# refused NAME STATUS ERROR REQUEST: the edge answers STATUS with ERROR.
NMALFORMED=0
refused() {
  local name=$1 want=$2 err=$3 req=$4 f=$T/http-$1
  https_raw "$req" >"$f" || true
  split_response "$f"
  [[ $RESP_STATUS =~ ^HTTP/1\.1\ $want\ [A-Z] ]] ||
    fail "$name: status line '$RESP_STATUS', want 'HTTP/1.1 $want Reason'"
  [[ $(header X-Wsmux-Error "$f.head") == "$err" ]] ||
    fail "$name: X-Wsmux-Error '$(header X-Wsmux-Error "$f.head")', want '$err'"
  [[ $(header Connection "$f.head") == close ]] ||
    fail "$name: no 'Connection: close'"
  [[ $(header Content-Length "$f.head") == "$(wc -c <"$f.body")" ]] ||
    fail "$name: Content-Length does not match the body"
  log "$name: $RESP_STATUS ($err)"
}
AUTHZ="Authorization: Bearer $EDGE_TOKEN"
POST="POST /v1/identities HTTP/1.1${CRLF}Host: e${CRLF}$AUTHZ${CRLF}"
UPGRADE="Upgrade: websocket${CRLF}Connection: Upgrade${CRLF}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==${CRLF}Sec-WebSocket-Version: 13${CRLF}Sec-WebSocket-Protocol: wsmux.v1${CRLF}$AUTHZ${CRLF}"

refused no_host 400 "an HTTP/1.1 request needs a Host header" \
  "GET /healthz HTTP/1.1${CRLF}${CRLF}"
refused two_hosts 400 "more than one Host header" \
  "GET /healthz HTTP/1.1${CRLF}Host: a${CRLF}Host: b${CRLF}${CRLF}"
refused two_lengths 400 "more than one Content-Length header" \
  "${POST}Content-Length: 2${CRLF}Content-Length: 2${CRLF}${CRLF}{}"
refused length_and_chunked 400 "both Content-Length and Transfer-Encoding" \
  "${POST}Content-Length: 2${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}2${CRLF}{}${CRLF}0${CRLF}${CRLF}"
refused space_colon 400 "white space before a header's colon" \
  "${POST}Content-Length : 2${CRLF}${CRLF}{}"
refused negative_length 400 "invalid Content-Length" \
  "${POST}Content-Length: -1${CRLF}${CRLF}{}"
refused hex_length 400 "invalid Content-Length" \
  "${POST}Content-Length: 0x2${CRLF}${CRLF}{}"
refused huge_length 400 "invalid Content-Length" \
  "${POST}Content-Length: 99999999999999999999${CRLF}${CRLF}{}"
refused chunked 411 "chunked request bodies are not accepted: send Content-Length" \
  "${POST}Transfer-Encoding: chunked${CRLF}${CRLF}2${CRLF}{}${CRLF}0${CRLF}${CRLF}"
refused no_length 411 "a request with a body needs Content-Length" \
  "${POST}${CRLF}{}"
refused upgrade_post 400 "a WebSocket upgrade is a GET" \
  "POST $WS_PATH HTTP/1.1${CRLF}Host: e${CRLF}Content-Length: 0${CRLF}${UPGRADE}${CRLF}"
refused upgrade_body 400 "a WebSocket upgrade has no body" \
  "GET $WS_PATH HTTP/1.1${CRLF}Host: e${CRLF}Content-Length: 4${CRLF}${UPGRADE}${CRLF}abcd"
# A well-formed request still works, with a status line of its own.
https_raw "GET /healthz HTTP/1.1${CRLF}Host: e${CRLF}Connection: close${CRLF}${CRLF}" >"$T/healthz" || true
split_response "$T/healthz"
[[ $RESP_STATUS == "HTTP/1.1 200 OK" ]] || fail "healthz: '$RESP_STATUS'"
https_raw "GET /nothing HTTP/1.1${CRLF}Host: e${CRLF}$AUTHZ${CRLF}Connection: close${CRLF}${CRLF}" >"$T/nothing" || true
split_response "$T/nothing"
[[ $RESP_STATUS == "HTTP/1.1 404 Not Found" ]] || fail "unknown path: '$RESP_STATUS'"
[[ $(metric_now "$MALFORMED") == 12 ]] ||
  fail "$MALFORMED is $(metric_now "$MALFORMED"), want 12"
log "ambiguous requests refused and counted"

# --- 2. 401 from the head ----------------------------------------------------
https_raw "POST /v1/identities HTTP/1.1${CRLF}Host: e${CRLF}Content-Type: application/json${CRLF}Content-Length: 1000000${CRLF}${CRLF}{" >"$T/early" || true
split_response "$T/early"
[[ $RESP_STATUS == "HTTP/1.1 401 Unauthorized" ]] ||
  fail "no token, 1 MB announced: '$RESP_STATUS', want 401 before the body"
grep -q 'invalid or missing API token' "$T/early.body" ||
  fail "401 body: $(cat "$T/early.body")"
grep -q '401 (before the body)' "$EDGE_ERR" ||
  fail "the edge did not log the early 401"
log "no token: 401 from the head, body never read"

# --- 3. trickled bodies ------------------------------------------------------
fds() { find "/proc/$EDGE_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
FDS_BEFORE=$(fds)
RSS_BEFORE=$(rss_kb "$EDGE_PID")
TIMEOUTS_BEFORE=$(metric_now "${LIMIT}\"handshake_timeout\"}")
# trickle NAME: a POST of 200 bytes sent one byte every 250 ms; the time
# until the edge closed, in ms, into $T/trickle-NAME.ms.
trickle() {
  (
    start=$(date +%s%3N)
    {
      printf '%sContent-Type: application/json%sContent-Length: 200%s%s' \
        "$POST" "$CRLF" "$CRLF" "$CRLF"
      for _ in $(seq 200); do
        printf x
        sleep 0.25
      done
    } | timeout -k 2 60 openssl s_client -quiet -connect "127.0.0.1:$EDGE_PORT" \
      -CAfile "$EDGE_CERT" >"$T/trickle-$1.out" 2>"$T/run-trickle-$1.err" ||
      true # the writer dies of SIGPIPE once the edge has closed
    echo $(($(date +%s%3N) - start)) >"$T/trickle-$1.ms"
  ) &
  track $! "trickled body $1"
  TRICKLE_PIDS+=($!)
}
TRICKLE_PIDS=()
for i in 1 2 3 4; do trickle "$i"; done
for pid in "${TRICKLE_PIDS[@]}"; do
  wait_exit "$pid" 40 || fail "a trickled body was not cut within 40 s"
done
for i in 1 2 3 4; do
  ms=$(cat "$T/trickle-$i.ms")
  ((ms >= 4000 && ms <= 15000)) ||
    fail "trickle $i: closed after $ms ms, want 4000..15000 (handshakeTimeoutMs 4000)"
  [[ ! -s $T/trickle-$i.out ]] ||
    fail "trickle $i: the edge answered: $(head -c 200 "$T/trickle-$i.out")"
done
((TIMEOUTS_BEFORE + 4 == $(metric_now "${LIMIT}\"handshake_timeout\"}"))) ||
  fail "handshake_timeout went from $TIMEOUTS_BEFORE to $(metric_now "${LIMIT}\"handshake_timeout\"}"), want +4"
_fds_back() { (($(fds) <= FDS_BEFORE)); }
wait_until 10 "the edge's descriptors to be back at $FDS_BEFORE" _fds_back
log "trickled bodies cut by the deadline, descriptors back at $FDS_BEFORE"

# --- 4. connections that send nothing -----------------------------------------
# A WebSocket opened before the flood, pinging through it.
wsraw held 120 "$WS_PATH" <<EOF &
$PING
expect-frame PONG 0
$(for _ in 1 2 3 4 5 6 7 8; do printf 'sleep 1000\n%s\nexpect-frame PONG 0\n' "$PING"; done)
EOF
HELD_PID=$!
track "$HELD_PID" "held WebSocket"
_held_up() { grep -q 'frame PONG' "$T/raw-held.out" 2>/dev/null; }
wait_until 20 "the held WebSocket to answer" _held_up

# idle NAME SRC: a TCP connection from SRC that sends nothing; the time until
# the edge closed it, in ms, into $T/idle-NAME.ms.
idle() {
  (
    start=$(date +%s%3N)
    timeout -k 2 60 socat -u "TCP:127.0.0.1:$EDGE_PORT,bind=$2" \
      "OPEN:$T/idle-$1.out,creat" 2>"$T/run-idle-$1.err" || true
    echo $(($(date +%s%3N) - start)) >"$T/idle-$1.ms"
  ) &
  track $! "idle connection $1"
  IDLE_PID=$!
}
# refused_at_once NAME SRC: idle from SRC is closed well before the deadline.
refused_at_once() {
  idle "$1" "$2"
  wait_exit "$IDLE_PID" 10 || fail "$1: the connection from $2 was kept"
  (($(cat "$T/idle-$1.ms") < 2000)) ||
    fail "$1: closed after $(cat "$T/idle-$1.ms") ms, want at once"
}
for i in 1 2 3 4; do idle "local$i" 127.0.0.1; done
wait_until 10 "$UNAUTH 4" metric_now_is "$UNAUTH" 4
refused_at_once local5 127.0.0.1
[[ $(metric_now "${LIMIT}\"unauthenticated_per_address\"}") == 1 ]] ||
  fail "limit unauthenticated_per_address not counted"
log "a fifth connection from one address closed at once"
for i in 1 2 3 4 5; do idle "proxy$i" 127.0.0.3; done # exempt per address
idle other1 127.0.0.2
wait_until 10 "$UNAUTH 10" metric_now_is "$UNAUTH" 10
refused_at_once other2 127.0.0.2
[[ $(metric_now "${LIMIT}\"unauthenticated\"}") == 1 ]] ||
  fail "limit unauthenticated: $(metric_now "${LIMIT}\"unauthenticated\"}"), want 1"
for i in 1 2 3 4 5; do
  [[ ! -e $T/idle-proxy$i.ms ]] ||
    fail "proxy$i: a connection of the trusted proxy was closed early"
done
log "the trusted proxy is not capped per address; the overall cap of 10 holds"
wait_exit "$HELD_PID" 60 || fail "the held WebSocket did not finish"
((WAIT_RC == 0)) || fail "the held WebSocket failed: $(cat "$T/run-raw-held.err")"
wait_until 20 "the deadline to drop the idle connections" metric_now_is "$UNAUTH" 0
wsraw after 30 "$WS_PATH" <<EOF
$PING
expect-frame PONG 0
EOF
log "the open WebSocket kept working; a new one is accepted after the flood"
# Nothing of the slow and idle connections stays: descriptors and memory.
wait_until 10 "the edge's descriptors to be back at $FDS_BEFORE" _fds_back
RSS_AFTER=$(rss_kb "$EDGE_PID")
((RSS_AFTER - RSS_BEFORE < 4096)) ||
  fail "the edge grew by $((RSS_AFTER - RSS_BEFORE)) KiB over the slow and idle connections"
log "RSS $RSS_BEFORE -> $RSS_AFTER KiB, descriptors back at $FDS_BEFORE"

# --- 5. close frames ------------------------------------------------------------
# close_with NAME HEX WANT: a masked (key 0) close frame with payload HEX;
# the edge answers close WANT.
close_with() {
  local len=$((${#2} / 2))
  wsraw "close_$1" 30 "$WS_PATH" <<EOF
$PING
expect-frame PONG 0
sendraw 88$(printf '%02x' $((0x80 | len)))00000000$2
expect-close $3
EOF
  log "close $1: $(grep '^close' "$RAW_OUT")"
}
close_with code_5000 1388 1002
close_with code_1005 03ed 1002
close_with one_byte 03 1002
close_with not_utf8 03e8c328 1007
close_with normal 03e8627965 1000

assert_alive "$EDGE_PID" wsmux-edge
log "done"
