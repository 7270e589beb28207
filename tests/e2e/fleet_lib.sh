# shellcheck shell=bash
#
# tests/e2e/fleet_lib.sh: the fleet of the fleet_* tests, sourced after
# lib.sh. start_fleet starts, all on loopback:
#   PostgreSQL (one database, migrated),
#   a real sshd (keys from $T/authorized_keys, as start_sshd),
#   three wsmux-edge (nodeId edge-a, edge-b, edge-c; plain ws://; the state
#   in PostgreSQL; trustedProxies: 127.0.0.3, HAProxy's source address),
#   HAProxy from packaging/haproxy/wsmux-edge.cfg with only its addresses,
#   ports and paths replaced: TLS on $HAPROXY_PORT with the test's
#   certificate, the edges as its three servers, connecting from 127.0.0.3
#   (so an edge can tell HAProxy, its TCP peer, from the client in
#   X-Forwarded-For), its runtime API on $HAPROXY_SOCK.
# and waits until HAProxy has every edge UP. HAPROXY_URL is its wss:// URL.

FLEET_NODES=(a b c)

# fleet_edge_config NAME: the config of edge NAME.
fleet_edge_config() {
  cat >"$T/edge-$1.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "plainWs": true,
  "nodeId": "edge-$1",
  "trustedProxies": ["127.0.0.3"],
  "drainTimeoutMs": ${FLEET_DRAIN_MS:-8000},
  "store": {"postgres": {"dsnFile": "$T/pg.dsn"}},
  "tokens": [{"id": "ci", "sha256": "$(printf '%s' "$EDGE_TOKEN" | sha256sum | cut -d' ' -f1)"}],
  "projects": [{"id": "$E2E_PROJECT"}],
  "services": [
    {"id": "$E2E_SSH_SERVICE", "projectId": "$E2E_PROJECT", "sshEnabled": true,
     "upstream": "127.0.0.1:$SSHD_PORT"}
  ]
}
EOF
}

start_fleet() {
  local n
  : "${EDGE_TOKEN:=wsmux-e2e-$(openssl rand -hex 16)}"
  start_postgres
  pg_new_db wsmux >"$T/pg.dsn"
  gen_keys
  gen_cert
  start_sshd
  for n in "${FLEET_NODES[@]}"; do
    fleet_edge_config "$n"
  done
  "$WSMUX_EDGE_BIN" migrate --config "$T/edge-a.json" >"$T/migrate.out" 2>&1 ||
    fail "migrate: $(cat "$T/migrate.out")"
  for n in "${FLEET_NODES[@]}"; do
    start_named_edge "$n" "$T/edge-$n.json"
  done

  HAPROXY_PORT=$(_freeport)
  haproxy_example_config "$T/haproxy.cfg" "$HAPROXY_PORT" stdout 127.0.0.3 \
    a="${EDGE_PORTS[a]}" b="${EDGE_PORTS[b]}" c="${EDGE_PORTS[c]}"
  start_haproxy "$T/haproxy.cfg" "$HAPROXY_PORT"
  HAPROXY_URL="wss://$WSMUX_EDGE_HOST:$HAPROXY_PORT"
  for n in "${FLEET_NODES[@]}"; do
    # shellcheck disable=SC2317 # called by wait_until
    _up() { haproxy_server_up "$HAPROXY_SOCK" "be_wsmux/edge-$1"; }
    wait_until 20 "HAProxy to see edge-$n UP" _up "$n"
  done
}

# fleet_opens: "a:N b:N c:N", how many WebSockets each edge has opened.
fleet_opens() {
  local n out=""
  for n in "${FLEET_NODES[@]}"; do
    out+="$n:$(grep -c 'connection open: ' "$T/edge-$n.err" || true) "
  done
  printf '%s\n' "${out% }"
}

# fleet_new_open BEFORE: FLEET_NEW, the node whose count of WebSockets grew
# since BEFORE (a fleet_opens result); fails unless exactly one did. (Not
# in $(...): fail would only end the subshell.)
fleet_new_open() {
  local before=$1 after n grown=()
  after=$(fleet_opens)
  for n in "${FLEET_NODES[@]}"; do
    [[ " $before " == *" $n:"* ]] || continue
    local b a
    b=$(sed -n "s/.*\b$n:\([0-9]*\).*/\1/p" <<<"$before")
    a=$(sed -n "s/.*\b$n:\([0-9]*\).*/\1/p" <<<"$after")
    ((a > b)) && grown+=("$n")
  done
  ((${#grown[@]} == 1)) ||
    fail "want exactly one edge with a new WebSocket: before '$before', after '$after'"
  FLEET_NEW=${grown[0]}
}
