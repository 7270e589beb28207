#!/usr/bin/env bash
#
# e2e layers: the client binary links none of the edge's platform model.
# cli/ may use edge/identity (wsmux doctor checks keys the way the edge
# does) but nothing of the config parser (platform_), the state file
# (state_) or the admin API (admin_): those are the server's, and the
# helpers both sides need (ids, strict JSON, files, quoting) live in base/.
# A symbol of theirs in wsmux means a cli/ file reached for one of them
# again and pulled its object file in. wsmux-edge must have them, which
# also shows that nm can read the binaries (not stripped). Nor does wsmux
# call libwebsockets, which is the server's: the client's WebSocket and
# admin calls run on ws/netconn.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nm >/dev/null || fail "nm (binutils) is needed"

# defined NAME BINARY: the binary's defined symbols that start with NAME.
defined() {
  nm --defined-only -P "$2" | awk -v p="$1" 'index($1, p) == 1 { print $1 }'
}

for prefix in platform_ state_ admin_; do
  found=$(defined "$prefix" "$WSMUX_EDGE_BIN" | head -n 1)
  [[ -n $found ]] || fail "wsmux-edge has no $prefix symbol: is nm working?"
  found=$(defined "$prefix" "$WSMUX_BIN")
  [[ -z $found ]] || fail "wsmux links edge code ($prefix):
$found"
done
log "wsmux links no platform_, state_ or admin_ symbol"

# lws_*: defined in the shared library, so look at what each binary uses.
used_lws() {
  nm -P "$1" | awk '$1 ~ /^lws_/ { print $1 }'
}
[[ -n $(used_lws "$WSMUX_EDGE_BIN" | head -n 1) ]] ||
  fail "wsmux-edge uses no lws_ function: is nm working?"
found=$(used_lws "$WSMUX_BIN")
[[ -z $found ]] || fail "wsmux calls libwebsockets:
$found"
log "wsmux calls no lws_ function"

log "PASS"
