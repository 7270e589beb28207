#!/usr/bin/env bash
#
# e2e store_conformance: the store's conformance suite (tests/unit/
# test_store.c) against a real PostgreSQL 15 started here: every case the
# file backend passes (unit_store_file), plus what only a shared database
# has (two edges seeing each other's writes within 1 s, a create raced
# through two edges, a stale view, the schema check, migrate twice, the
# import once, a DSN's password never in a message).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

: "${WSMUX_TEST_STORE:=$WSMUX_BUILD_DIR/tests/test_store}"
start_postgres
log "PostgreSQL on port $PG_PORT"
env "${E2E_SAN_ENV[@]}" WSMUX_TEST_PG_DSN="$PG_DSN" \
  timeout 300 "$WSMUX_TEST_STORE" postgres >"$T/run-store.out" 2>"$T/run-store.err" ||
  fail "the postgres conformance suite failed:
$(tail -n 40 "$T/run-store.out")
$(tail -n 20 "$T/run-store.err")"
grep -hE "^\[  PASSED  \]" "$T/run-store.out" "$T/run-store.err" >&2 || true
check_sanitizers "$T/run-store.err" || fail "sanitizer report from test_store"
