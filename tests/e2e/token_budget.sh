#!/usr/bin/env bash
#
# e2e token_budget: what one API token may hold of the edge (issue 13,
# docs/PROTOCOL.md section 9), driven by wsmux-wsraw against a real edge
# whose service "tsrv" is wsmux-testsrv (a connection that sends nothing
# stays open, so every stream holds an upstream socket).
#
# Edge 1: maxStreams 4, maxStreamsPerToken 6, maxConnectionsPerToken 3,
# resumeGraceMs 6000, tokens "test" and "other".
#  1. Close 1000 ends the session at once: four times "upgrade, 4 OPENs,
#     close 1000" with one token; after each the edge holds no stream, and
#     the fourth is not refused (nothing was kept for a resume).
#  2. maxStreamsPerToken: a session of "test" with 4 streams, a second one
#     of "test" gets 2 more, the third OPEN is refused with LIMIT "too many
#     streams for this token (maxStreamsPerToken 6)"; "other" still opens 4.
#  3. Held sessions count: both sessions of "test" dropped without a close
#     (SIGKILL) are held with their 6 streams; with a third one open, a new
#     upgrade of "test" gets 429, the resume of a held one is let in (HELLO
#     resumed=1), and once the grace is over the token is free again.
# Edge 2: run with an open-files limit of 160 (hard and soft), fdReserve 64,
# resumeGraceMs 0.
#  4. One session opening 150 streams gets some, then OPEN_FAIL(LIMIT) "the
#     edge is near its open-files limit"; meanwhile another token's upgrade
#     gets 101 and the admin API answers; the edge never logs "Too many open
#     files". Once that session is closed, the other token opens streams.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

[[ -x $WSMUX_WSRAW ]] || fail "wsmux-wsraw not found at $WSMUX_WSRAW"

CRLF=$'\r\n'
PING=frame\ PING\ 0\ 0102030405060708
OPEN_WINDOW=00010000
TOKEN2=wsmux-e2e-other-$(openssl rand -hex 16)
SHA2=$(printf '%s' "$TOKEN2" | sha256sum | cut -d' ' -f1)

# edge_with JSON [NOFILE]: (re)start the edge with JSON added to its config,
# a second token, and under an open-files limit of NOFILE when given.
edge_with() {
  if [[ -n ${EDGE_PID:-} ]]; then
    stop_pid "$EDGE_PID" 10 || fail "the edge did not stop"
    untrack "$EDGE_PID"
  fi
  E2E_EDGE_EXTRA_JSON='"metricsListen": "127.0.0.1:0", '$1 write_edge_config \
    "$(service_json tsrv "127.0.0.1:$TESTSRV_PORT")"
  sed -i -e 's/^  "tokens": \[\({"id": "test", "sha256": "[0-9a-f]*"}\)\],$/  "tokens": [\1, {"id": "other", "sha256": "'"$SHA2"'"}],/' \
    "$EDGE_CONFIG"
  grep -q '"id": "other"' "$EDGE_CONFIG" ||
    fail "could not add a token to $EDGE_CONFIG: $(cat "$EDGE_CONFIG")"
  E2E_EDGE_NOFILE=${2:-} start_edge
  edge_metrics_port
}
STREAMS=wsmux_edge_streams_open
CONNS=wsmux_edge_connections_open
LIMIT='wsmux_edge_limit_rejections_total{limit='

# opens FIRST N: N OPEN frames for the odd streams from FIRST, in one message.
opens() {
  local i id=$1 line=frames sep=' '
  for ((i = 0; i < $2; i++)); do
    line+="$sep""OPEN $id $OPEN_WINDOW"
    sep=' ; '
    id=$((id + 2))
  done
  printf '%s\n' "$line"
}
# four NAME [WSRAW_ARGS...]: a session opening 4 streams, all accepted, then
# closed with 1000.
four() {
  raw "$@" <<EOF
$(opens 1 4)
expect-frame OPEN_OK 1
expect-frame OPEN_OK 3
expect-frame OPEN_OK 5
expect-frame OPEN_OK 7
close
EOF
}
# raw NAME [WSRAW_ARGS...]: the script on stdin, against tsrv.
raw() {
  wsraw "$1" 60 "$(ws_path tsrv)" "${@:2}"
  log "$1: $(grep -v '^frame PONG' "$RAW_OUT" | tr '\n' '|' | cut -c1-400)"
}
# hold NAME SCRIPT [WSRAW_ARGS...]: wsmux-wsraw in the background running
# SCRIPT (then idling), output in $T/raw-NAME.out. Sets HOLD_PID.
hold() {
  local name=$1
  printf '%s\nsleep 300000\n' "$2" >"$T/hold-$name.script"
  "$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --tls --ca "$EDGE_CERT" \
    --path "$(ws_path tsrv)" --token "$EDGE_TOKEN" --verbose --wait 30000 \
    --max-seconds 400 --script "$T/hold-$name.script" "${@:3}" </dev/null \
    >"$T/raw-$name.out" 2>"$T/run-raw-$name.err" &
  HOLD_PID=$!
  track "$HOLD_PID" "wsmux-wsraw $name"
}
# count_frames TYPE NAME: frames of TYPE the held NAME received (--verbose).
count_frames() { grep -c "^wsmux-wsraw: received frame $1 " "$T/run-raw-$2.err" || true; }

prepare_stack --upstream testsrv --edge-json '"maxStreams": 4'
[[ -n ${TESTSRV_PORT:-} ]] || fail "no testsrv"
edge_with '"maxStreams": 4, "maxStreamsPerToken": 6, "maxConnectionsPerToken": 3, "resumeGraceMs": 6000'

# --- 1. close 1000 ends the session ------------------------------------------
for round in 1 2 3 4; do
  four "close$round"
  grep -q '^close 1000' "$RAW_OUT" || fail "close$round: no close 1000 from the edge"
  wait_until 5 "the edge to drop the streams of close$round" metric_now_is "$STREAMS" 0
done
[[ $(metric_now "${LIMIT}\"connections_per_token\"}") == 0 ]] ||
  fail "a session closed with 1000 was kept: the token was limited"
grep -q 'streams kept for a resume' "$EDGE_ERR" &&
  fail "a session closed with 1000 was kept for a resume"
log "close 1000 ends the session at once, four times in a row"

# --- 2. maxStreamsPerToken ----------------------------------------------------
hold s1 "expect-frame HELLO 0
$(opens 1 4)"
S1=$HOLD_PID
wait_until 20 "4 streams of s1" metric_now_is "$STREAMS" 4
hold s2 "$(opens 1 2)"
S2=$HOLD_PID
wait_until 20 "6 streams of the token" metric_now_is "$STREAMS" 6
raw third_stream_session <<EOF
frame OPEN 1 $OPEN_WINDOW
expect-frame OPEN_FAIL 1 LIMIT
EOF
grep -qF 'reason=too many streams for this token (maxStreamsPerToken 6)' "$RAW_OUT" ||
  fail "no LIMIT naming maxStreamsPerToken: $(cat "$RAW_OUT")"
[[ $(head -n1 "$RAW_OUT") == "status 101" ]] || fail "third session refused"
four other_token --token "$TOKEN2"
[[ $(metric_now "${LIMIT}\"streams_per_token\"}") == 1 ]] ||
  fail "limit streams_per_token: $(metric_now "${LIMIT}\"streams_per_token\"}"), want 1"
log "maxStreamsPerToken: the 7th stream of one token refused, another token unaffected"

# --- 3. held sessions count -------------------------------------------------
SESSION1=$(sed -n 's/^frame HELLO 0 session=\([0-9a-f]*\) resumed=0.*/\1/p' "$T/raw-s1.out")
[[ ${#SESSION1} == 32 ]] || fail "no session id in s1's HELLO: $(head -5 "$T/raw-s1.out")"
kill -KILL "$S1" "$S2"
wait_until 10 "both WebSockets to be gone" metric_now_is "$CONNS" 0
[[ $(metric_now "$STREAMS") == 6 ]] || fail "the held sessions' streams: $(metric_now "$STREAMS"), want 6"
hold s3 ""
S3=$HOLD_PID
wait_until 20 "s3 to be open" metric_now_is "$CONNS" 1
raw held_full </dev/null
[[ $(head -n1 "$RAW_OUT") == "status 429" ]] ||
  fail "a third session with two held: $(cat "$RAW_OUT"), want 429"
grep -qxF 'X-Wsmux-Error: too many connections for this token' "$RAW_OUT" ||
  fail "429 without its reason: $(cat "$RAW_OUT")"
grep -q 'has 3 sessions (open, or held for a resume)' "$EDGE_ERR" ||
  fail "the edge did not log why"
raw resume_held --header "X-Wsmux-Resume: $SESSION1" <<EOF
expect-frame HELLO 0
close
EOF
grep -q "^frame HELLO 0 session=$SESSION1 resumed=1" "$RAW_OUT" ||
  fail "the held session was not resumed: $(cat "$RAW_OUT")"
log "two held sessions and one open: a new one gets 429, a resume is let in"
# The resumed session ended with 1000; the other one expires with the grace.
wait_until 20 "the held session to expire" metric_now_is "$STREAMS" 0
raw after_grace <<EOF
frame OPEN 1 $OPEN_WINDOW
expect-frame OPEN_OK 1
close
EOF
stop_pid "$S3" 5 || true
log "after the grace the token is free again"

# --- 4. the descriptor reserve -------------------------------------------------
edge_with '"maxStreams": 1000, "fdReserve": 64, "resumeGraceMs": 0' 160
hold big "$(opens 1 150)"
BIG=$HOLD_PID
_all_answered() {
  local ok fail
  ok=$(count_frames OPEN_OK big)
  fail=$(count_frames OPEN_FAIL big)
  ((ok + fail == 150))
}
wait_until 60 "all 150 OPENs answered" _all_answered
OK=$(count_frames OPEN_OK big)
((OK >= 20 && OK < 150)) || fail "$OK of 150 streams accepted under 160 files, want some but not all"
grep -q 'code=LIMIT reason=the edge is near its open-files limit (160, 64 kept for new connections)' "$T/run-raw-big.err" ||
  fail "no LIMIT naming the open-files limit: $(grep OPEN_FAIL "$T/run-raw-big.err" | head -3)"
[[ $(metric_now "${LIMIT}\"open_files\"}") == $((150 - OK)) ]] ||
  fail "limit open_files: $(metric_now "${LIMIT}\"open_files\"}"), want $((150 - OK))"
log "$OK of 150 streams accepted, the rest refused before the edge ran out"
raw reserve_other --token "$TOKEN2" <<EOF
$PING
expect-frame PONG 0
close
EOF
[[ $(head -n1 "$RAW_OUT") == "status 101" ]] || fail "another token's upgrade was refused"
https_raw "GET /v1/projects HTTP/1.1${CRLF}Host: e${CRLF}Authorization: Bearer $TOKEN2${CRLF}Connection: close${CRLF}${CRLF}" >"$T/api" || true
split_response "$T/api"
[[ $RESP_STATUS == "HTTP/1.1 200 OK" ]] || fail "the admin API with the reserve in use: '$RESP_STATUS'"
! grep -qi 'too many open files' "$EDGE_ERR" || fail "the edge ran out of descriptors: $(grep -i 'too many open files' "$EDGE_ERR" | head -3)"
log "a new WebSocket and the admin API still served"
stop_pid "$BIG" 5 || true
wait_until 10 "the big session's streams to close" metric_now_is "$STREAMS" 0
four after_big --token "$TOKEN2"
assert_alive "$EDGE_PID" wsmux-edge
log "done"
