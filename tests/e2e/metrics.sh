#!/usr/bin/env bash
#
# e2e metrics: the edge's Prometheus endpoint ("metricsListen"), scraped
# with plain HTTP over bash's /dev/tcp, against a real edge, sshd and proxy
# (proxy -> wsmux-faultrelay -> edge -> sshd). The edge config adds
# "metricsListen": "127.0.0.1:0", "maxStreams": 2,
# "maxConnectionsPerToken": 2, "handshakeTimeoutMs": 3000,
# "resumeGraceMs": 5000, a service with SSH disabled and one whose upstream
# refuses connections.
#  1. The edge logs "metrics on http://127.0.0.1:PORT/metrics". A scrape is
#     HTTP/1.1 200, Content-Type "text/plain; version=0.0.4", Connection:
#     close, Content-Length equal to the body's length; wsmux_edge_up is 1
#     and every other series 0 except the proxy's connection.
#  2. An ssh session through the proxy: streams_open is 1 while it runs and
#     from_upstream grows by the 300000 bytes it prints (and to_upstream by
#     a 50000-byte command line) while its stream is still open: live
#     counts, not totals made when a stream ends. Once it ended:
#     streams_open 0, stream_opens{ok} 1.
#  3. Authentication: a wrong token, no token, an unknown service, a
#     service with SSH disabled each add one to their reason.
#  4. Limits: a 3rd OPEN with maxStreams 2 (streams, and
#     stream_opens{limit}); a 3rd WebSocket of the token
#     (connections_per_token); a TCP connection that sends nothing
#     (handshake_timeout), while one closed at once by its client is not
#     counted. An upstream refusing the connection: stream_opens{refused}.
#  5. Resumes: the link reset under an open session -> resumes{ok} and the
#     session goes on; reset with no stream open (the edge keeps no
#     session) -> resumes{expired}.
#  6. Every *_total series of every scrape is >= the previous scrape's.
#  7. /metrics is not served on the WebSocket listener (even with a valid
#     token); on the metrics port another path is 404, POST 405, HTTP/1.1
#     without Host 400, a request head over 8 KiB 431.
#  8. SIGTERM with an idle scraper connected: the edge exits 0 within 5 s.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"

CRLF=$'\r\n'
OPEN_WINDOW=00010000

# Service "closed": nothing listens on its upstream, connections are refused.
start_stack --edge-json '"metricsListen": "127.0.0.1:0", "maxStreams": 2, "maxConnectionsPerToken": 2, "handshakeTimeoutMs": 3000, "resumeGraceMs": 5000' \
  "nossh sshd service false" "closed closed"

re='wsmux-edge: metrics on http://127\.0\.0\.1:([0-9]+)/metrics[[:space:]]*$'
line=$(grep -Em1 "$re" "$EDGE_ERR") ||
  fail "the edge did not log its metrics URL: $(cat "$EDGE_ERR")"
[[ $line =~ $re ]] || fail "cannot parse: $line"
METRICS_PORT=${BASH_REMATCH[1]}
((METRICS_PORT != EDGE_PORT)) || fail "metrics on the WebSocket port"
log "metrics on 127.0.0.1:$METRICS_PORT"

declare -A METRIC=() PREV=()
NSCRAPE=0

# scrape NAME: GET /metrics; checks the response's form, fills METRIC
# (series -> value) and checks no counter went down since the last scrape.
scrape() {
  local raw=$T/scrape-$1 series value n=0
  NSCRAPE=$((NSCRAPE + 1))
  http_raw "$METRICS_PORT" "GET /metrics HTTP/1.1${CRLF}Host: 127.0.0.1:$METRICS_PORT${CRLF}User-Agent: e2e${CRLF}${CRLF}" >"$raw" ||
    fail "scrape $1: no complete answer: $(head -c 300 "$raw")"
  split_response "$raw"
  [[ $RESP_STATUS == "HTTP/1.1 200 OK" ]] ||
    fail "scrape $1: status '$RESP_STATUS'"
  [[ $(header Content-Type "$raw.head") == "text/plain; version=0.0.4" ]] ||
    fail "scrape $1: Content-Type '$(header Content-Type "$raw.head")'"
  [[ $(header Connection "$raw.head") == close ]] ||
    fail "scrape $1: no 'Connection: close'"
  [[ $(header Content-Length "$raw.head") == "$(wc -c <"$raw.body")" ]] ||
    fail "scrape $1: Content-Length $(header Content-Length "$raw.head"), body $(wc -c <"$raw.body") bytes"
  METRIC=()
  while read -r series value; do
    [[ $series == '#'* || -z $series ]] && continue
    [[ $value =~ ^[0-9]+$ ]] || fail "scrape $1: bad sample '$series $value'"
    METRIC[$series]=$value
    n=$((n + 1))
  done <"$raw.body"
  ((n == 36)) || fail "scrape $1: $n samples, want 36: $(cat "$raw.body")"
  for series in "${!PREV[@]}"; do
    [[ $series == *_total* ]] || continue
    ((${METRIC[$series]:-0} >= ${PREV[$series]})) ||
      fail "scrape $1: counter $series went down: ${PREV[$series]} -> ${METRIC[$series]:-missing}"
  done
  PREV=()
  for series in "${!METRIC[@]}"; do
    PREV[$series]=${METRIC[$series]}
  done
}

m() {
  local v=${METRIC[$1]-}
  [[ -n $v ]] || fail "no series $1 in the last scrape"
  printf '%s\n' "$v"
}

# expect SERIES VALUE [WHAT]: in the last scrape.
expect() {
  [[ $(m "$1") == "$2" ]] ||
    fail "${3:-}${3:+: }$1 is $(m "$1"), want $2"
}

# metric_is SERIES VALUE: scrape and compare (for wait_until).
metric_is() {
  scrape "poll$NSCRAPE"
  [[ $(m "$1") == "$2" ]]
}

OPENS='wsmux_edge_stream_opens_total{result='
AUTH='wsmux_edge_auth_failures_total{reason='
LIMIT='wsmux_edge_limit_rejections_total{limit='
TO_UP='wsmux_edge_bytes_total{direction="to_upstream"}'
FROM_UP='wsmux_edge_bytes_total{direction="from_upstream"}'

# --- 1. the first scrape ------------------------------------------------
scrape start
expect wsmux_edge_up 1
# The state file store: up, the file backend, the view current.
expect wsmux_edge_store_up 1
expect 'wsmux_edge_store_backend{backend="file"}' 1
expect 'wsmux_edge_store_backend{backend="postgres"}' 0
for series in "${!METRIC[@]}"; do
  case $series in
  wsmux_edge_up | wsmux_edge_store_up | 'wsmux_edge_store_backend{backend="file"}') ;;
  wsmux_edge_store_reloads_total) expect "$series" 1 "the state file read at start" ;;
  *) expect "$series" 0 "before any client" ;;
  esac
done
log "scrape: 200, $(wc -c <"$T/scrape-start.body") bytes, every counter 0"

start_faultrelay "$EDGE_PORT"
start_proxy_via_fault "$E2E_SSH_SERVICE"
wait_until 10 "connections_open 1" metric_is wsmux_edge_connections_open 1
expect wsmux_edge_connections_total 1

# --- 2. an ssh session: live streams and bytes ------------------------------
start_session s1
scrape session_open
expect wsmux_edge_streams_open 1
expect "${OPENS}\"ok\"}" 1
to0=$(m "$TO_UP") from0=$(m "$FROM_UP")
((to0 > 0 && from0 > 0)) || fail "the ssh handshake moved no bytes: $to0 / $from0"
BIG=$(head -c 50000 /dev/zero | tr '\0' y)
session_send s1 ": $BIG; head -c 300000 /dev/zero | tr '\\0' x; echo; echo done1"
session_expect s1 done1 30
[[ $(awk 'length($0) == 300000' "$T/run-s1.out" | wc -l) == 1 ]] ||
  fail "the session did not print its 300000 bytes"
scrape session_busy
expect wsmux_edge_streams_open 1 "the session still runs"
to1=$(m "$TO_UP") from1=$(m "$FROM_UP")
((from1 - from0 >= 300000)) ||
  fail "from_upstream grew by $((from1 - from0)) while the session printed 300000 bytes (stream still open)"
((to1 - to0 >= 50000)) ||
  fail "to_upstream grew by $((to1 - to0)) while a 50000-byte line was sent (stream still open)"
log "live bytes while the stream is open: +$((from1 - from0)) from, +$((to1 - to0)) to the upstream"
session_end s1
wait_exit "${SESSION_PID[s1]}" 30 || fail "the ssh session did not end"
wait_until 10 "streams_open 0" metric_is wsmux_edge_streams_open 0
expect "${OPENS}\"ok\"}" 1
expect wsmux_edge_connections_open 1 "the proxy stays connected"

# --- 3. authentication failures --------------------------------------------
# raw NAME PATH [WSRAW_ARGS...]: wsraw with a 60 s bound.
raw() {
  wsraw "$1" 60 "$2" "${@:3}"
}
expect_status() {
  [[ $(head -n 1 "$RAW_OUT") == "status $1" ]] ||
    fail "want status $1, got: $(cat "$RAW_OUT")"
}

raw bad_token "$(ws_path "$E2E_SSH_SERVICE")" --token wsmux-e2e-wrong </dev/null
expect_status 401
scrape bad_token
expect "${AUTH}\"bad_token\"}" 1
expect "${AUTH}\"no_token\"}" 0
raw no_token "$(ws_path "$E2E_SSH_SERVICE")" --token "" </dev/null
expect_status 401
raw unknown "$(ws_path nope)" </dev/null
expect_status 404
raw nossh "$(ws_path nossh)" </dev/null
expect_status 409
scrape auth
expect "${AUTH}\"bad_token\"}" 1
expect "${AUTH}\"no_token\"}" 1
expect "${AUTH}\"not_found\"}" 1
expect "${AUTH}\"forbidden\"}" 1
expect wsmux_edge_connections_total 1 "refused upgrades are no connections"
log "auth failures counted by reason"

# --- 4. limits -------------------------------------------------------------
raw max_streams "$(ws_path "$E2E_SSH_SERVICE")" <<EOF
frames OPEN 1 $OPEN_WINDOW ; OPEN 3 $OPEN_WINDOW ; OPEN 5 $OPEN_WINDOW
expect-frame OPEN_FAIL 5 LIMIT
expect-frame OPEN_OK 1
expect-frame OPEN_OK 3
frame RST 1 0007
frame RST 3 0007
close
EOF
scrape max_streams
expect "${LIMIT}\"streams\"}" 1
expect "${OPENS}\"limit\"}" 1
expect "${OPENS}\"ok\"}" 3
expect wsmux_edge_connections_total 2

raw refused "$(ws_path closed)" <<EOF
frame OPEN 1 $OPEN_WINDOW
expect-frame OPEN_FAIL 1 REFUSED
close
EOF
scrape refused
expect "${OPENS}\"refused\"}" 1
expect "${OPENS}\"error\"}" 0
expect "${OPENS}\"denied\"}" 0

# The proxy holds one WebSocket of the token; a second one is held here,
# so a third is refused.
printf 'sleep 300000\n' >"$T/hold.script"
"$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --tls --ca "$EDGE_CERT" \
  --path "$(ws_path "$E2E_SSH_SERVICE")" --token "$EDGE_TOKEN" --verbose \
  --max-seconds 400 --script "$T/hold.script" </dev/null \
  >"$T/hold.out" 2>"$T/run-hold.err" &
HOLD_PID=$!
track "$HOLD_PID" "wsmux-wsraw holding a WebSocket"
wait_until 20 "connections_open 2" metric_is wsmux_edge_connections_open 2
raw third "$(ws_path "$E2E_SSH_SERVICE")" </dev/null
expect_status 429
scrape conns_per_token
expect "${LIMIT}\"connections_per_token\"}" 1
stop_pid "$HOLD_PID" 5 || true
wait_until 10 "connections_open 1" metric_is wsmux_edge_connections_open 1

# A client closing at once is no handshake timeout; one sending nothing is.
(exec 3<>"/dev/tcp/127.0.0.1/$EDGE_PORT") || fail "cannot connect to the edge"
sleep 1.5
scrape quick_close
expect "${LIMIT}\"handshake_timeout\"}" 0 "a client that closed by itself"
timeout -k 5 30 "$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --idle \
  --timeout 20 >"$T/idle.out" 2>"$T/run-idle.err" ||
  fail "the edge did not drop an idle connection: $(cat "$T/idle.out" "$T/run-idle.err")"
log "idle connection: $(cat "$T/idle.out")"
wait_until 10 "handshake_timeout 1" metric_is "${LIMIT}\"handshake_timeout\"}" 1
log "limit rejections counted: streams, connections_per_token, handshake_timeout"

# --- 5. resumes -------------------------------------------------------------
start_session s2
fault reset
wait_until 30 "resumes{ok} 1" metric_is 'wsmux_edge_resumes_total{result="ok"}' 1
session_echo s2 after-resume 30
expect 'wsmux_edge_resumes_total{result="expired"}' 0
session_end s2
wait_exit "${SESSION_PID[s2]}" 30 || fail "ssh session s2 did not end"
wait_until 10 "streams_open 0" metric_is wsmux_edge_streams_open 0
# No stream open: the edge keeps no session, so the resume finds none.
fault reset
wait_until 30 "resumes{expired} 1" metric_is \
  'wsmux_edge_resumes_total{result="expired"}' 1
wait_until 10 "connections_open 1" metric_is wsmux_edge_connections_open 1
log "resumes counted: ok, expired"

# --- 7. what is not served ---------------------------------------------------
# The WebSocket listener (TLS) answers its own 404, without metrics.
printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' "$EDGE_TOKEN" |
  timeout -k 2 10 openssl s_client -quiet -connect "127.0.0.1:$EDGE_PORT" \
    -CAfile "$EDGE_CERT" >"$T/main-metrics" 2>"$T/run-main-metrics.err" || true
split_response "$T/main-metrics"
[[ $RESP_STATUS == "HTTP/1.1 404"* ]] ||
  fail "GET /metrics on the WebSocket listener: '$RESP_STATUS', want 404"
! grep -q wsmux_edge_ "$T/main-metrics" ||
  fail "the WebSocket listener served metrics"

bad_request() {
  local name=$1 want=$2 req=$3
  http_raw "$METRICS_PORT" "$req" >"$T/bad-$name" ||
    fail "$name: no complete answer: $(head -c 300 "$T/bad-$name")"
  split_response "$T/bad-$name"
  [[ $RESP_STATUS == "HTTP/1.1 $want "* ]] ||
    fail "$name: '$RESP_STATUS', want $want"
  [[ $(header Connection "$T/bad-$name.head") == close ]] ||
    fail "$name: no 'Connection: close'"
  [[ $(header Content-Length "$T/bad-$name.head") == "$(wc -c <"$T/bad-$name.body")" ]] ||
    fail "$name: wrong Content-Length"
  ! grep -q wsmux_edge_ "$T/bad-$name.body" || fail "$name: metrics served"
}
bad_request other_path 404 "GET /other HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}"
bad_request root 404 "GET / HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}"
bad_request post 405 "POST /metrics HTTP/1.1${CRLF}Host: x${CRLF}Content-Length: 0${CRLF}${CRLF}"
grep -qx 'Allow: GET' "$T/bad-post.head" || fail "405 without 'Allow: GET'"
bad_request head 405 "HEAD /metrics HTTP/1.1${CRLF}Host: x${CRLF}${CRLF}"
bad_request no_host 400 "GET /metrics HTTP/1.1${CRLF}${CRLF}"
bad_request garbage 400 "hello${CRLF}${CRLF}"
bad_request http2 505 "GET /metrics HTTP/2.0${CRLF}Host: x${CRLF}${CRLF}"
bad_request too_big 431 "GET /metrics HTTP/1.1${CRLF}Host: x${CRLF}X-Pad: $(head -c 9000 /dev/zero | tr '\0' a)${CRLF}${CRLF}"
# HTTP/1.0 needs no Host.
http_raw "$METRICS_PORT" "GET /metrics HTTP/1.0${CRLF}${CRLF}" >"$T/http10"
split_response "$T/http10"
[[ $RESP_STATUS == "HTTP/1.1 200 OK" ]] || fail "HTTP/1.0 scrape: '$RESP_STATUS'"
scrape final
log "only GET /metrics is served, on the metrics port only"

# --- 8. SIGTERM with a scraper connected -----------------------------------
exec {IDLE_FD}<>"/dev/tcp/127.0.0.1/$METRICS_PORT"
_now_ms
t0=$_NOW_MS
stop_pid "$EDGE_PID" 10 || fail "the edge needed SIGKILL"
_now_ms
exec {IDLE_FD}>&-
((STOP_RC == 0)) || fail "the edge exited $STOP_RC after SIGTERM"
((_NOW_MS - t0 <= 5000)) ||
  fail "the edge took $((_NOW_MS - t0)) ms to exit with an idle scraper connected"
log "SIGTERM: the edge exited 0 after $((_NOW_MS - t0)) ms"
