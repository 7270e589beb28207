#!/usr/bin/env bash
#
# e2e fleet_store: two edges on one PostgreSQL (a real server started here)
# serve one platform.
#  - `wsmux-edge migrate`: a fresh database migrated by two edges at once
#    (both exit 0, version 1); again: nothing to do; an import of a state
#    file, and a second import refused; a corrupt state file refused with its
#    byte offset, the database untouched;
#  - one real sshd whose keys come from `AuthorizedKeysCommand wsmux-edge
#    authorized-keys` reading the database;
#  - an identity created through edge A lets ssh in through edge B; deleted
#    through B, it is gone from A's API within 1 s and ssh through A is
#    refused;
#  - two creates of one name raced through A and B: one 201, one 409;
#  - each edge counts only its own connections of a service in the API's
#    "open" and says that other edges may hold more (otherEdges);
#  - SSH disabled through A closes a live interactive session held through
#    B (the proxy exits 5, "SSH was disabled");
#  - the database stopped while sessions run: the session goes on, admin
#    writes get 503 (exit 4) while some writes race the stop, reads are
#    served from the view, /metrics says the store is down, the outage is
#    logged once; a new WebSocket is still authorized (within maxStaleMs)
#    and a new ssh login works (authorized-keys falls back to its cache);
#    started again: writes work, and every write that was answered 2xx is
#    in the database.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

((EUID == 0)) || fail "needs root (sshd runs the AuthorizedKeysCommand as root)"
prepare_keys_cmd

start_postgres
DSN=$(pg_new_db wsmux)
psql_q() { psql -qXAt "$DSN" -c "$1"; }

gen_keys
gen_cert
EDGE_TOKEN=wsmux-e2e-$(openssl rand -hex 16)
TOKEN_SHA=$(printf '%s' "$EDGE_TOKEN" | sha256sum | cut -d' ' -f1)
start_keys_sshd main "$T/edge-a.json" p1 ssh

# edge_config NAME METRICS_PORT: the config of edge NAME on the database.
edge_config() {
  cat >"$T/edge-$1.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "tls": {"cert": "$EDGE_CERT", "key": "$EDGE_KEY"},
  "metricsListen": "127.0.0.1:$2",
  "drainTimeoutMs": 2000,
  "store": {"postgres": {"dsnFile": "$T/pg.dsn"}, "maxStaleMs": 60000,
            "connectTimeoutMs": 2000, "queryTimeoutMs": 2000},
  "tokens": [{"id": "ci", "sha256": "$TOKEN_SHA"}],
  "projects": [{"id": "p1"}],
  "services": [
    {"id": "ssh", "projectId": "p1", "tags": ["prod"], "sshEnabled": true,
     "upstream": "127.0.0.1:${SSHD_PORTS[main]}"}
  ]
}
EOF
}
printf '%s\n' "$DSN" >"$T/pg.dsn"
chmod 600 "$T/pg.dsn"
METRICS_A=$(_freeport)
METRICS_B=$(_freeport)
edge_config a "$METRICS_A"
edge_config b "$METRICS_B"

# edge_cmd NAME ARGS...: a one-shot wsmux-edge command; EDGE_RC, EDGE_OUT.
edge_cmd() {
  local name=$1
  shift
  EDGE_OUT=$T/run-edge-$name.out
  E2E_SAN_LOGS+=("$T/run-edge-$name.err")
  EDGE_RC=0
  env "${E2E_SAN_ENV[@]}" timeout -k 5 60 "$WSMUX_EDGE_BIN" "$@" \
    >"$EDGE_OUT" 2>"$T/run-edge-$name.err" || EDGE_RC=$?
  cat "$T/run-edge-$name.err" >>"$EDGE_OUT"
}

# ---- migrate ---------------------------------------------------------------

# An edge does not start on a database without the schema.
edge_cmd nostart --config "$T/edge-a.json"
((EDGE_RC == 1)) || fail "an edge started on an unmigrated database (exit $EDGE_RC)"
grep -q "no wsmux schema: run \`wsmux-edge migrate --config FILE\` first" "$EDGE_OUT" ||
  fail "no schema: $(cat "$EDGE_OUT")"
grep -q "$DSN\|password" "$EDGE_OUT" && fail "the DSN was printed: $(cat "$EDGE_OUT")"

# Two at once, as two edges deployed together would.
env "${E2E_SAN_ENV[@]}" "$WSMUX_EDGE_BIN" migrate --config "$T/edge-a.json" \
  >"$T/run-m1.out" 2>"$T/run-m1.err" &
m1=$!
env "${E2E_SAN_ENV[@]}" "$WSMUX_EDGE_BIN" migrate --config "$T/edge-b.json" \
  >"$T/run-m2.out" 2>"$T/run-m2.err" &
m2=$!
E2E_SAN_LOGS+=("$T/run-m1.err" "$T/run-m2.err")
wait "$m1" || fail "migrate (a) failed: $(cat "$T/run-m1.err")"
wait "$m2" || fail "migrate (b) failed: $(cat "$T/run-m2.err")"
cat "$T/run-m1.out" "$T/run-m2.out" | sort >"$T/migrate.out"
printf 'schema: at version 1 already, nothing to do\nschema: migrated from version 0 to 1\n' |
  diff - "$T/migrate.out" >/dev/null ||
  fail "two concurrent migrates printed: $(cat "$T/migrate.out")"
[[ $(psql_q "SELECT string_agg(version::text, ',') FROM wsmux_schema") == 1 ]] ||
  fail "schema versions: $(psql_q 'SELECT * FROM wsmux_schema')"
edge_cmd again migrate --config "$T/edge-a.json"
((EDGE_RC == 0)) && grep -qx 'schema: at version 1 already, nothing to do' "$EDGE_OUT" ||
  fail "a second migrate: exit $EDGE_RC: $(cat "$EDGE_OUT")"
log "migrate: concurrent runs safe, the second a no-op"

# A corrupt state file: refused with the byte offset, nothing written.
printf '{"version": 1, "identities": [}' >"$T/bad-state.json"
edge_cmd badimport migrate --config "$T/edge-a.json" --from-file "$T/bad-state.json"
((EDGE_RC == 1)) || fail "a corrupt state file was imported (exit $EDGE_RC)"
grep -q "bad-state.json: invalid JSON at byte offset 30" "$EDGE_OUT" ||
  fail "corrupt import: $(cat "$EDGE_OUT")"
[[ $(psql_q "SELECT count(*) FROM wsmux_imports") == 0 ]] || fail "a failed import left a mark"

# A good one, once.
OLD_KEY=$T/key_old
ssh-keygen -q -t ed25519 -N '' -C old@e2e -f "$OLD_KEY"
cat >"$T/old-state.json" <<EOF
{"version": 1, "identities": [{"id": "idt-00000000000000aa", "name": "old-laptop",
  "keys": ["$(tr -d '\n' <"$OLD_KEY.pub")"],
  "createdAt": "2026-11-25T12:00:00Z", "updatedAt": "2026-11-25T12:00:00Z"}],
 "services": []}
EOF
edge_cmd import migrate --config "$T/edge-a.json" --from-file "$T/old-state.json"
((EDGE_RC == 0)) || fail "import: exit $EDGE_RC: $(cat "$EDGE_OUT")"
grep -q "imported 1 SSH identities and 0 SSH switches from $T/old-state.json" "$EDGE_OUT" ||
  fail "import printed: $(cat "$EDGE_OUT")"
edge_cmd import2 migrate --config "$T/edge-a.json" --from-file "$T/old-state.json"
((EDGE_RC == 1)) && grep -q "already imported into this database ($T/old-state.json, at " "$EDGE_OUT" ||
  fail "a second import: exit $EDGE_RC: $(cat "$EDGE_OUT")"
[[ $(psql_q "SELECT count(*) FROM wsmux_identities") == 1 ]] || fail "the second import changed the database"
log "import: once; a corrupt file refused with its offset"

# ---- two edges -------------------------------------------------------------

start_named_edge a "$T/edge-a.json"
start_named_edge b "$T/edge-b.json"
EDGE_A_PID=${EDGE_PIDS[a]} EDGE_A_URL=${EDGE_URLS[a]}
EDGE_B_PID=${EDGE_PIDS[b]} EDGE_B_URL=${EDGE_URLS[b]}
grep -q 'state: 1 SSH identities, 0 SSH switches (PostgreSQL)' "$T/edge-a.err" ||
  fail "edge a did not read the state: $(cat "$T/edge-a.err")"

# cli EDGE NAME ARGS...: wsmux against edge A or B; CLI_RC, CLI_OUT.
cli() {
  local url=$1 name=$2
  shift 2
  wsmux_run "cli-$name" 60 "WSMUX_EDGE=$url" "WSMUX_TOKEN=$EDGE_TOKEN" -- \
    "$@" --ca "$EDGE_CERT"
  CLI_RC=$RUN_RC CLI_OUT=$RUN_OUT
  cat "$RUN_ERR" >>"$CLI_OUT"
}

# A proxy for the service through each edge.
start_proxy_to() {
  E2E_EDGE_URL_OVERRIDE=$1 start_proxy ssh
  E2E_EDGE_URL_OVERRIDE=""
}
start_proxy_to "$EDGE_B_URL"
PROXY_B_PID=$PROXY_PID PROXY_B_PORT=$PROXY_PORT PROXY_B_ERR=$PROXY_ERR
start_proxy_to "$EDGE_A_URL"
PROXY_A_PID=$PROXY_PID PROXY_A_PORT=$PROXY_PORT

# can_login PORT: 0 when ssh with the client key gets in.
can_login() {
  timeout 30 ssh "${SSH_OPTS[@]}" -o BatchMode=yes -p "$1" \
    "$LOGIN_USER@127.0.0.1" true </dev/null >/dev/null 2>"$T/run-login.err"
}

# The imported identity logs in, the client key not yet.
timeout 30 ssh "${SSH_OPTS[@]}" -i "$OLD_KEY" -o BatchMode=yes -p "$PROXY_B_PORT" \
  "$LOGIN_USER@127.0.0.1" true </dev/null || fail "the imported identity cannot log in"
can_login "$PROXY_B_PORT" && fail "a key in no identity logged in"
grep -q 'Permission denied (publickey)' "$T/run-login.err" ||
  fail "refusal: $(cat "$T/run-login.err")"

# Created through A, in force through B.
cli "$EDGE_A_URL" create ssh-identity create --name laptop --key-file "$CLIENT_KEY.pub"
((CLI_RC == 0)) || fail "create through A: exit $CLI_RC: $(cat "$CLI_OUT")"
can_login "$PROXY_B_PORT" || fail "an identity created through A does not log in through B: $(cat "$T/run-login.err")"
log "created through A: ssh in through B"

# Deleted through B: gone from A's API within 1 s, ssh through A refused.
cli "$EDGE_B_URL" delete ssh-identity delete laptop
((CLI_RC == 0)) || fail "delete through B: exit $CLI_RC: $(cat "$CLI_OUT")"
_now_ms
t0=$_NOW_MS
_gone_from_a() {
  cli "$EDGE_A_URL" list ssh-identity list --output json
  ((CLI_RC == 0)) && ! grep -q '"laptop"' "$CLI_OUT"
}
wait_until 1 "the delete through B seen by A" _gone_from_a
_now_ms
log "deleted through B: gone from A after $((_NOW_MS - t0)) ms"
can_login "$PROXY_A_PORT" && fail "a deleted identity still logs in through A"

# The race: one name through both edges at once.
race() { # EDGE OUT
  env "${E2E_SAN_ENV[@]}" WSMUX_EDGE="$1" WSMUX_TOKEN="$EDGE_TOKEN" \
    timeout -k 5 60 "$WSMUX_BIN" ssh-identity create --name racer \
    --key-file "$CLIENT_KEY.pub" --ca "$EDGE_CERT" >"$2" 2>&1
}
E2E_SAN_LOGS+=("$T/run-race-a.out" "$T/run-race-b.out")
race "$EDGE_A_URL" "$T/run-race-a.out" &
ra=$!
race "$EDGE_B_URL" "$T/run-race-b.out" &
rb=$!
rc_a=0 rc_b=0
wait "$ra" || rc_a=$?
wait "$rb" || rc_b=$?
[[ "$(printf '%s\n' "$rc_a" "$rc_b" | sort | tr '\n' ' ')" == "0 5 " ]] ||
  fail "the race: exit codes $rc_a and $rc_b (want 0 and 5):
$(cat "$T/run-race-a.out" "$T/run-race-b.out")"
grep -q 'name "racer" is already used by .*(HTTP 409)' "$T/run-race-a.out" "$T/run-race-b.out" ||
  fail "the loser's message: $(cat "$T/run-race-a.out" "$T/run-race-b.out")"
[[ $(psql_q "SELECT count(*) FROM wsmux_identities WHERE name = 'racer'") == 1 ]] ||
  fail "the race left $(psql_q "SELECT count(*) FROM wsmux_identities WHERE name = 'racer'") identities"
log "the race: one 201, one 409"

# ---- SSH off through A closes a session held through B ----------------------

start_session live "$PROXY_B_PORT"
session_echo live hello-before 30
# What each edge says SSH off would close: its own connections only, and
# that other edges of the fleet may hold more (docs/ADMIN_API.md).
open_of() { # EDGE_URL: the "open" of service ssh through that edge
  curl -sS --max-time 20 --cacert "$EDGE_CERT" \
    -H "Authorization: Bearer $EDGE_TOKEN" \
    "${1/wss:/https:}/v1/projects/p1/services/ssh" | jq -c .open
}
_open_is() { [[ $(open_of "$1") == "$2" ]]; } # EDGE_URL WANT
# B holds the live session's proxy and its stream; A the idle proxy A.
wait_until 10 "edge B to count 1 proxy, 1 stream" _open_is "$EDGE_B_URL" \
  '{"proxies":1,"streams":1,"otherEdges":true}'
wait_until 10 "edge A to count 1 proxy, 0 streams" _open_is "$EDGE_A_URL" \
  '{"proxies":1,"streams":0,"otherEdges":true}'
cli "$EDGE_A_URL" off service ssh disable --projectId p1 --serviceId ssh
((CLI_RC == 0)) || fail "disable through A: exit $CLI_RC: $(cat "$CLI_OUT")"
wait_exit "$PROXY_B_PID" 10 ||
  fail "the proxy through B is still running 10 s after SSH was disabled through A"
((WAIT_RC == 5)) || fail "the proxy through B exited $WAIT_RC, want 5"
grep -q 'SSH was disabled for service ssh' "$PROXY_B_ERR" ||
  fail "proxy B's reason: $(tail -n 5 "$PROXY_B_ERR")"
wait_exit "${SESSION_PID[live]}" 10 || fail "the ssh session through B outlived its WebSocket"
grep -q 'SSH disabled for project=p1 service=ssh: closing 1 connection' "$T/edge-b.err" ||
  fail "edge B did not close its connection: $(grep -i ssh "$T/edge-b.err" | tail -n 5)"
log "SSH disabled through A closed the session held through B"
cli "$EDGE_B_URL" on service ssh enable --projectId p1 --serviceId ssh
((CLI_RC == 0)) || fail "enable through B: exit $CLI_RC: $(cat "$CLI_OUT")"

# ---- the database away ------------------------------------------------------

cli "$EDGE_A_URL" create2 ssh-identity create --name laptop --key-file "$CLIENT_KEY.pub"
((CLI_RC == 0)) || fail "create: exit $CLI_RC: $(cat "$CLI_OUT")"
start_proxy_to "$EDGE_B_URL"
PROXY_B_PORT=$PROXY_PORT
start_session during "$PROXY_B_PORT"
session_echo during one 30

# Writes racing the stop: each answer is kept to check against the database.
writer() {
  local i rc
  for ((i = 0; i < 40; i++)); do
    rc=0
    env WSMUX_EDGE="$EDGE_A_URL" WSMUX_TOKEN="$EDGE_TOKEN" timeout -k 5 30 \
      "$WSMUX_BIN" ssh-identity create --name "w$i" \
      --key-file "$CLIENT_KEY.pub" --ca "$EDGE_CERT" >/dev/null \
      2>>"$T/run-writer.err" || rc=$?
    printf 'w%d %d\n' "$i" "$rc"
  done >"$T/writes.txt"
}
writer &
WRITER=$!
track "$WRITER" writer
_some_writes() { [[ $(wc -l <"$T/writes.txt" 2>/dev/null || echo 0) -ge 5 ]]; }
wait_until 60 "some writes before the stop" _some_writes
stop_postgres
log "PostgreSQL stopped"
wait_exit "$WRITER" 120 || fail "the writer did not finish"

session_echo during two 30
log "the interactive session through B goes on without the database"

cli "$EDGE_A_URL" down ssh-identity create --name refused --key-file "$CLIENT_KEY.pub"
((CLI_RC == 4)) || fail "a write with the database away: exit $CLI_RC, want 4: $(cat "$CLI_OUT")"
grep -q 'database' "$CLI_OUT" && grep -q 'HTTP 503' "$CLI_OUT" ||
  fail "the 503's message: $(cat "$CLI_OUT")"
# Reads still work from the view (younger than maxStaleMs).
cli "$EDGE_B_URL" readdown ssh-identity list
((CLI_RC == 0)) || fail "a read with the database away: exit $CLI_RC: $(cat "$CLI_OUT")"
metric() { # PORT SERIES
  curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s {print $2}'
}
_store_down() { [[ $(metric "$METRICS_A" wsmux_edge_store_up) == 0 ]]; }
wait_until 15 "edge A's metrics saying the store is down" _store_down
# A new WebSocket within maxStaleMs: still authorized from the view, and
# sshd's authorized-keys answers from its cache of the last good read.
start_proxy_to "$EDGE_A_URL"
ssh_echo still-in "ssh through a new WebSocket with the database away" "$PROXY_PORT"
grep -c 'store: PostgreSQL at .* is unavailable' "$T/edge-a.err" | grep -qx 1 ||
  fail "edge A logged the outage $(grep -c 'is unavailable' "$T/edge-a.err") times"

restart_postgres
log "PostgreSQL started again"
_store_up() { [[ $(metric "$METRICS_A" wsmux_edge_store_up) == 1 ]]; }
wait_until 30 "edge A's store back up" _store_up
grep -q 'store: PostgreSQL at .* is back' "$T/edge-a.err" ||
  fail "no recovery line: $(grep store: "$T/edge-a.err")"
cli "$EDGE_A_URL" up ssh-identity create --name after --key-file "$CLIENT_KEY.pub"
((CLI_RC == 0)) || fail "a write after the database came back: exit $CLI_RC: $(cat "$CLI_OUT")"
session_echo during three 30
session_exit during 10 || true

# Nothing answered 2xx is missing; nothing refused is there.
ok=0 bad=0
while read -r name rc; do
  n=$(psql_q "SELECT count(*) FROM wsmux_identities WHERE name = '$name'")
  if ((rc == 0)); then
    ok=$((ok + 1))
    [[ $n == 1 ]] || fail "$name was answered 201 but is not in the database"
  else
    bad=$((bad + 1))
  fi
done <"$T/writes.txt"
((ok >= 5 && bad >= 1)) || fail "the writes did not straddle the outage ($ok ok, $bad refused)"
log "writes around the outage: $ok answered 201 (all in the database), $bad refused"

assert_alive "$EDGE_A_PID" "edge A"
assert_alive "$EDGE_B_PID" "edge B"
