# shellcheck shell=bash
#
# tests/e2e/lib.sh: shared harness of the wsmux end-to-end tests.
#
# Sourced by every tests/e2e/*.sh (and by scripts/demo). Real processes on
# loopback only: sshd, wsmux-edge, the wsmux proxy, wsmux-testsrv.
#
# What sourcing it does:
#   - set -euo pipefail;
#   - creates the per-test temp dir $T (mktemp, removed on exit unless
#     E2E_KEEP=1);
#   - traps EXIT/INT/TERM/HUP: every process started through this file (or
#     registered with `track`) is stopped in reverse start order (SIGTERM,
#     then SIGKILL after a bounded wait), the stderr of every wsmux /
#     wsmux-edge run is checked for sanitizer reports (a report fails the
#     test), logs are shown when the test failed, $T is removed;
#   - starts a watchdog: after E2E_DEADLINE seconds (default 540, below
#     ctest's 600 s TIMEOUT; 0 disables it) the test is stopped with
#     SIGTERM, so cleanup still runs; if the test shell dies without
#     cleaning up (SIGKILL), the watchdog kills what it left behind.
#
# Environment (set by ctest; the defaults fit scripts/test's ./build-asan):
#   WSMUX_BIN, WSMUX_EDGE_BIN, WSMUX_TESTSRV, WSMUX_TESTCLI, WSMUX_FREEPORT,
#   WSMUX_FAULTRELAY, WSMUX_WSRAW
#   WSMUX_EDGE_HOST   host of the edge URL given to wsmux (default 127.0.0.1;
#                     the throwaway cert covers localhost and 127.0.0.1)
#   E2E_EDGE_LOG_LEVEL  --log-level of wsmux-edge (default info)
#   E2E_KEEP=1        keep $T after the test (its path is printed)
#   E2E_KEEP_ON_FAIL=1  keep $T only when the test fails (a test sets it
#                     when $T holds what explains a failure: screenshots)
#   E2E_DEADLINE      seconds, see above
#   E2E_WINDOW_BYTES  windowBytes of the edge config (default 131072, the
#                     edge's own default)
#   E2E_EDGE_EXTRA_JSON  extra top-level members of the edge config, written
#                     verbatim (e.g. '"resumeGraceMs": 3000'; default none)
#   E2E_FAULTRELAY_SECONDS  lifetime of wsmux-faultrelay (default 900)
#   E2E_EDGE_URL_OVERRIDE  --edge URL start_proxy gives wsmux instead of
#                     $EDGE_URL (start_proxy_via_fault sets it to the relay)
#   E2E_PROXY_RUNTIME_DIR  XDG_RUNTIME_DIR of the proxies start_proxy starts
#                     (default: one of their own each, so that a test can run
#                     two proxies for one service)
#
# XDG_RUNTIME_DIR is exported as $T/xdg-runtime: the runtime files of every
# wsmux started here (pidfiles, control sockets, logs: `wsmux proxy`) stay in
# the test's directory, apart from the user's and from other tests.
#
# The HTTP proxy variables of the caller (HTTPS_PROXY, ALL_PROXY, NO_PROXY,
# ... and WSMUX_HTTP_PROXY_FILE) are unset: every wsmux here goes straight
# to its loopback edge unless a test sets them (http_proxy.sh, with a
# tinyproxy of its own: start_tinyproxy).
#
# PostgreSQL: start_postgres, stop_postgres, restart_postgres, pg_new_db.
# Fleets: start_named_edge, haproxy_example_config, start_haproxy, haproxy_cli,
# haproxy_server_up.
# HTTP proxies: start_tinyproxy, tinyproxy_connects.
# sshds taking their keys from wsmux-edge: prepare_keys_cmd, start_keys_sshd.
# Helpers: log, fail, track, untrack, wait_until, wait_output, wait_port,
# wait_exit, stop_pid, stop_proxy, check_sanitizers, assert_alive, gen_keys,
# gen_cert, start_sshd, service_json, write_edge_config, start_edge,
# keep_edge_log, start_proxy, ssh_echo, start_testsrv, rss_kb, ws_path,
# wsraw, wsmux_run, wsmux_bounded, scp_upload_start, remote_size,
# wait_upload_past, cpu_share_start/cpu_share_end; the array SSH_OPTS (set
# by gen_keys). The usual start-up in one call: start_stack (keys, cert, upstream, config, edge), prepare_stack (the
# same without the edge), start_stack_with_proxy (and a proxy, optionally
# through a fault relay).
# Fault injection (see the end of this file): start_faultrelay, fault,
# fault_stats, assert_relay_reconnected, start_proxy_via_fault,
# assert_proxy_alive; long-lived ssh sessions: start_session, session_send,
# session_expect, session_echo, session_end, session_exit.
#
# Output-format assumptions (the contract with the programs):
#   wsmux-edge prints "wsmux-edge: listening on wss://HOST:PORT" on stderr.
#   wsmux prints "SSH proxy started on endpoint: ADDR:PORT, stop with Ctrl+C"
#   on stdout and flushes it (stdout is a file here, not a terminal).

set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WSMUX_REPO=$(cd "$E2E_DIR/../.." && pwd)
: "${WSMUX_BUILD_DIR:=$WSMUX_REPO/build-asan}"
: "${WSMUX_BIN:=$WSMUX_BUILD_DIR/wsmux}"
: "${WSMUX_EDGE_BIN:=$WSMUX_BUILD_DIR/wsmux-edge}"
: "${WSMUX_TESTSRV:=$WSMUX_BUILD_DIR/tests/wsmux-testsrv}"
: "${WSMUX_TESTCLI:=$WSMUX_BUILD_DIR/tests/wsmux-testcli}"
: "${WSMUX_FREEPORT:=$WSMUX_BUILD_DIR/tests/wsmux-freeport}"
: "${WSMUX_FAULTRELAY:=$WSMUX_BUILD_DIR/tests/wsmux-faultrelay}"
: "${WSMUX_WSRAW:=$WSMUX_BUILD_DIR/tests/wsmux-wsraw}"
: "${WSMUX_EDGE_HOST:=127.0.0.1}"
: "${E2E_DEADLINE:=540}"
: "${E2E_EDGE_LOG_LEVEL:=info}"
: "${E2E_WINDOW_BYTES:=131072}"
: "${E2E_FAULTRELAY_SECONDS:=900}"
# SIGTERM makes the edge drain open streams this long: short, so cleanup
# stays within its bound (a test of draining sets its own).
: "${E2E_DRAIN_MS:=2000}"
: "${E2E_PROJECT:=p1}"       # project id of every service in the config
: "${E2E_SSH_SERVICE:=ssh}"  # id of the service whose upstream is sshd

LOGIN_USER=$(id -un)
E2E_NAME=$(basename "$0")
E2E_NAME=${E2E_NAME%.sh}

# Environment of every wsmux / wsmux-edge run. A quarantine of 16 MiB (not
# ASan's 256) bounds ASan's own share of an RSS measurement; a test that
# measures a few MiB lowers it (http_hardening.sh). Leaks are reported at exit.
E2E_LSAN_OPTIONS=""
if [[ -f $E2E_DIR/lsan.supp ]]; then
  E2E_LSAN_OPTIONS="suppressions=$E2E_DIR/lsan.supp"
fi
E2E_SAN_ENV=(
  "ASAN_OPTIONS=quarantine_size_mb=16:detect_leaks=1"
  "UBSAN_OPTIONS=print_stacktrace=1"
  "LSAN_OPTIONS=$E2E_LSAN_OPTIONS"
)

unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy \
  NO_PROXY no_proxy WSMUX_HTTP_PROXY_FILE

T=$(mktemp -d "${TMPDIR:-/tmp}/wsmux-e2e-$E2E_NAME.XXXXXX")
chmod 755 "$T"
export XDG_RUNTIME_DIR=$T/xdg-runtime
mkdir -m 700 "$XDG_RUNTIME_DIR"

E2E_PIDS=()                 # tracked pids, in start order
declare -A E2E_PNAME=()     # pid -> name shown in messages
declare -A E2E_PSAN=()      # pid -> 1 when it is a wsmux/wsmux-edge run
declare -A E2E_PSIG=()      # pid -> the signal that stops it (default TERM)
E2E_SAN_LOGS=()             # stderr files checked for sanitizer reports
E2E_PROBLEMS=()             # found during cleanup; they fail the test
E2E_NPROXY=0
E2E_WATCHDOG=""

log() {
  printf '[%s %(%H:%M:%S)T] %s\n' "$E2E_NAME" -1 "$*" >&2
}

fail() {
  printf '\nFAIL [%s]: %s\n\n' "$E2E_NAME" "$*" >&2
  exit 1
}

_now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  _NOW_MS=$((10#$t / 1000))
}

# track PID NAME [sanitized]: stop PID at exit. sanitized=1 marks a
# wsmux/wsmux-edge process (longer stop timeout, must not need SIGKILL).
track() {
  E2E_PIDS+=("$1")
  E2E_PNAME[$1]=$2
  E2E_PSAN[$1]=${3:-0}
  printf '%s %s\n' "$1" "$(_starttime "$1")" >>"$T/.pids"
}

# _starttime PID: the process's start time (field 22 of /proc/PID/stat),
# which unlike its name does not change at exec; tells a reused pid apart.
_starttime() {
  local s f
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  s=${s##*) }
  read -ra f <<<"$s"
  printf '%s' "${f[19]:-}"
}

untrack() {
  local pid=$1 p keep=()
  for p in "${E2E_PIDS[@]}"; do
    [[ $p == "$pid" ]] || keep+=("$p")
  done
  E2E_PIDS=("${keep[@]}")
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.1 s until
# it succeeds; fail the test after SECONDS.
wait_until() {
  local secs=$1 desc=$2
  shift 2
  _now_ms
  local end=$((_NOW_MS + secs * 1000))
  until "$@"; do
    _now_ms
    if ((_NOW_MS >= end)); then
      fail "timed out after ${secs} s waiting for $desc"
    fi
    sleep 0.1
  done
}

# wait_output SECONDS WHAT PID DIED ERRFILE GREP_ARGS...: wait_until WHAT,
# `grep -q GREP_ARGS`; once PID has exited, fail with "DIED: <ERRFILE>".
wait_output() {
  wait_until "$1" "$2" _output_or_exit "${@:3}"
}

_output_or_exit() {
  local pid=$1 died=$2 err=$3
  shift 3
  grep -q "$@" 2>/dev/null && return 0
  kill -0 "$pid" 2>/dev/null || fail "$died: $(cat "$err")"
  return 1
}

# wait_port HOST PORT SECONDS [PID]: returns 0 once HOST:PORT accepts a TCP
# connection, 1 after SECONDS or as soon as PID has exited.
wait_port() {
  local host=$1 port=$2 secs=$3 pid=${4:-}
  _now_ms
  local end=$((_NOW_MS + secs * 1000))
  while :; do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    _now_ms
    ((_NOW_MS < end)) || return 1
    sleep 0.1
  done
}

# wait_exit PID SECONDS: wait (without signalling) for PID to exit. Returns 0
# and sets WAIT_RC to its exit status, or returns 1 if it is still running.
wait_exit() {
  local pid=$1 secs=$2
  _now_ms
  local end=$((_NOW_MS + secs * 1000))
  while kill -0 "$pid" 2>/dev/null; do
    _now_ms
    ((_NOW_MS < end)) || return 1
    sleep 0.05
  done
  WAIT_RC=0
  wait "$pid" 2>/dev/null || WAIT_RC=$?
  untrack "$pid"
  return 0
}

# stop_pid PID [SECONDS [SIGNAL]]: SIGNAL (default TERM), wait up to
# SECONDS (default 10), then SIGKILL. Sets STOP_RC (exit status; 137 when
# killed). Returns 1 when SIGKILL was needed.
stop_pid() {
  local pid=$1 secs=${2:-10} sig=${3:-TERM}
  kill -"$sig" "$pid" 2>/dev/null || true
  if wait_exit "$pid" "$secs"; then
    STOP_RC=$WAIT_RC
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_exit "$pid" 5 || true
  STOP_RC=137
  return 1
}

# check_sanitizers FILE...: print and return 1 if a file holds an
# AddressSanitizer / LeakSanitizer / UndefinedBehaviorSanitizer report.
check_sanitizers() {
  local f bad=0
  local re='ERROR: (AddressSanitizer|LeakSanitizer)|LeakSanitizer has encountered|AddressSanitizer:DEADLYSIGNAL|runtime error:|SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)'
  for f in "$@"; do
    [[ -f $f ]] || continue
    if grep -Eq "$re" "$f"; then
      printf '\n==== sanitizer report in %s ====\n' "$f" >&2
      grep -E -A40 "$re" "$f" | head -n 120 >&2
      bad=1
    fi
  done
  return "$bad"
}

# stop_proxy PID ERRFILE: SIGTERM a proxy, which must exit 0 within 5 s with
# no sanitizer report.
stop_proxy() {
  local pid=$1 err=$2
  stop_pid "$pid" 5 ||
    fail "wsmux (pid $pid) did not exit within 5 s of SIGTERM"
  check_sanitizers "$err" || fail "sanitizer report on wsmux's stderr ($err)"
  ((STOP_RC == 0)) ||
    fail "wsmux exited with status $STOP_RC after SIGTERM (want 0); stderr:
$(tail -n 20 "$err")"
}

assert_alive() {
  kill -0 "$1" 2>/dev/null || fail "$2 (pid $1) is not running any more"
}

_show_logs() {
  local f
  for f in "$T"/edge*.err "$T"/proxy*.err "$T"/sshd.log "$T"/testsrv.err \
    "$T"/faultrelay.err "$T"/run-*.err "$T"/postgres.log "$T"/haproxy.log \
    "$T"/tinyproxy*.log; do
    [[ -s $f ]] || continue
    printf '\n---- %s (last 40 lines) ----\n' "${f#"$T"/}" >&2
    tail -n 40 "$f" >&2
  done
}

_e2e_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  if [[ -n $E2E_WATCHDOG ]]; then
    kill -TERM "$E2E_WATCHDOG" 2>/dev/null
    wait "$E2E_WATCHDOG" 2>/dev/null
  fi
  local i pid name
  for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${E2E_PIDS[i]}
    name=${E2E_PNAME[$pid]:-process}
    if kill -0 "$pid" 2>/dev/null; then
      if [[ ${E2E_PSAN[$pid]:-0} == 1 ]]; then
        stop_pid "$pid" 10 ||
          E2E_PROBLEMS+=("$name (pid $pid) did not exit within 10 s of SIGTERM")
      else
        stop_pid "$pid" 5 "${E2E_PSIG[$pid]:-TERM}"
      fi
    else
      wait "$pid" 2>/dev/null
    fi
  done
  if ((${#E2E_SAN_LOGS[@]})) && ! check_sanitizers "${E2E_SAN_LOGS[@]}"; then
    E2E_PROBLEMS+=("sanitizer report(s) on the stderr of wsmux/wsmux-edge")
  fi
  if ((${#E2E_PROBLEMS[@]})); then
    for name in "${E2E_PROBLEMS[@]}"; do
      printf 'FAIL [%s]: %s\n' "$E2E_NAME" "$name" >&2
    done
    ((rc != 0)) || rc=1
  fi
  if ((rc != 0)) && [[ ${E2E_QUIET_FAIL:-0} != 1 ]]; then
    _show_logs
  fi
  if [[ ${E2E_KEEP:-0} == 1 ]] ||
    { ((rc != 0)) && [[ ${E2E_KEEP_ON_FAIL:-0} == 1 ]]; }; then
    log "kept $T"
  else
    rm -rf "$T"
  fi
  if ((rc == 0)) && [[ ${E2E_QUIET_PASS:-0} != 1 ]]; then
    printf 'PASS [%s]\n' "$E2E_NAME" >&2
  fi
  exit "$rc"
}
trap _e2e_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The watchdog: see the header. Its stdout is /dev/null so that it never
# holds ctest's output pipe open for long.
if ((E2E_DEADLINE > 0)); then
  (
    trap - EXIT INT TERM HUP
    main=$$
    end=$((EPOCHSECONDS + E2E_DEADLINE))
    while kill -0 "$main" 2>/dev/null; do
      if ((EPOCHSECONDS >= end)); then
        printf '\nFAIL [%s]: test deadline of %s s reached; stopping it\n' \
          "$E2E_NAME" "$E2E_DEADLINE" >&2
        kill -TERM "$main" 2>/dev/null
        # bash runs the trap only once its foreground command is over:
        # end that command (a direct child of the test shell, not this one).
        sleep 0.5
        for c in $(pgrep -P "$main"); do
          [[ $c == "$BASHPID" ]] || kill -TERM "$c" 2>/dev/null
        done
        end=$((EPOCHSECONDS + 60)) # the test's own cleanup gets 60 s
      fi
      sleep 1
    done
    # The test shell is gone. If it could not clean up, do it here.
    if [[ -f $T/.pids ]]; then
      while read -r p st; do
        if [[ -n $st && $(_starttime "$p") == "$st" ]]; then
          kill -KILL "$p" 2>/dev/null
        fi
      done <"$T/.pids"
      [[ ${E2E_KEEP:-0} == 1 ]] || rm -rf "$T"
    fi
  ) </dev/null >/dev/null &
  E2E_WATCHDOG=$!
fi

# --------------------------------------------------------------------------
# Fixtures

_freeport() {
  if [[ -x $WSMUX_FREEPORT ]]; then
    "$WSMUX_FREEPORT"
  else
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  fi
}

# gen_keys: client key $CLIENT_KEY (ed25519, authorized in
# $T/authorized_keys), sshd host key $T/host_key, and SSH_OPTS, the options
# for ssh/scp/sftp (add the port: ssh -p, scp -P, sftp -P).
gen_keys() {
  CLIENT_KEY=$T/client_key
  ssh-keygen -q -t ed25519 -N '' -C wsmux-e2e-client -f "$CLIENT_KEY"
  ssh-keygen -q -t ed25519 -N '' -C wsmux-e2e-host -f "$T/host_key"
  cp "$CLIENT_KEY.pub" "$T/authorized_keys"
  # shellcheck disable=SC2034 # used by the tests
  SSH_OPTS=(-F /dev/null -i "$CLIENT_KEY" -o IdentitiesOnly=yes
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=10)
}

# gen_cert: throwaway self-signed cert $EDGE_CERT / $EDGE_KEY for the edge.
gen_cert() {
  EDGE_CERT=$T/edge.crt
  EDGE_KEY=$T/edge.key
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$EDGE_KEY" -out "$EDGE_CERT" >"$T/openssl.log" 2>&1 ||
    fail "openssl could not make the test certificate: $(cat "$T/openssl.log")"
}

# start_postgres: a PostgreSQL 15 server of this test's own: initdb into
# $T/pg (trust authentication, superuser wsmux), listening on
# 127.0.0.1:$PG_PORT and a socket in $T/pgsock. Sets PG_PID, PG_PORT and
# PG_DSN (database postgres). Run as root, the server runs as the user
# postgres (initdb refuses root). Stopped with a fast shutdown (SIGINT:
# clients are disconnected) at exit; stop_postgres/restart_postgres for a
# database outage.
PG_BIN=/usr/lib/postgresql/15/bin
start_postgres() {
  [[ -x $PG_BIN/postgres ]] || fail "PostgreSQL 15 is not installed (scripts/setup installs it)"
  mkdir -p "$T/pg" "$T/pgsock"
  PG_AS=()
  if ((EUID == 0)); then
    chown postgres: "$T/pg" "$T/pgsock"
    PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$T/pg" -A trust -U wsmux -E UTF8 \
    --no-sync >"$T/initdb.log" 2>&1 || fail "initdb failed: $(tail -n 5 "$T/initdb.log")"
  PG_PORT=$(_freeport)
  restart_postgres
  PG_DSN="host=127.0.0.1 port=$PG_PORT user=wsmux dbname=postgres"
}

# restart_postgres: start the server of start_postgres again (same port and
# data) after stop_postgres, waiting until it accepts connections.
restart_postgres() {
  "${PG_AS[@]}" "$PG_BIN/postgres" -D "$T/pg" -k "$T/pgsock" -p "$PG_PORT" \
    -c listen_addresses=127.0.0.1 >>"$T/postgres.log" 2>&1 &
  PG_PID=$!
  track "$PG_PID" postgres
  E2E_PSIG[$PG_PID]=INT
  _pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U wsmux -d postgres; }
  wait_until 30 "PostgreSQL on port $PG_PORT" _pg_ready
}

# stop_postgres: a fast shutdown of the server (the database goes away).
stop_postgres() {
  stop_pid "$PG_PID" 20 INT || fail "PostgreSQL did not stop within 20 s"
}

# pg_new_db NAME: create database NAME; prints its DSN.
pg_new_db() {
  psql -qX "$PG_DSN" -c "CREATE DATABASE \"$1\"" >/dev/null ||
    fail "cannot create database $1"
  printf 'host=127.0.0.1 port=%s user=wsmux dbname=%s' "$PG_PORT" "$1"
}

# start_tinyproxy NAME [--auth USER PASSWORD] [--port PORT] CONNECT_PORT...:
# Debian's tinyproxy in the foreground (-d) on 127.0.0.1 (a free port, or
# PORT to come back where it was), allowing CONNECT to the CONNECT_PORTs
# only (ConnectPort), with Basic authentication when asked (BasicAuth: a
# wrong password is answered 401, none 407). Every request is logged
# (LogLevel Connect) to $T/NAME.log, which the test reads and which is
# shown when it fails. Sets TP_PID, TP_PORT, TP_LOG; stopped at exit.
start_tinyproxy() {
  local name=$1 auth="" port="" p
  shift
  command -v tinyproxy >/dev/null ||
    fail "tinyproxy is not installed (scripts/setup installs it)"
  while (($#)); do
    case $1 in
      --auth)
        auth="BasicAuth $2 $3"
        shift 3
        ;;
      --port)
        port=$2
        shift 2
        ;;
      *) break ;;
    esac
  done
  TP_PORT=${port:-$(_freeport)}
  TP_LOG=$T/$name.log
  {
    printf 'Port %s\nListen 127.0.0.1\nTimeout 600\nMaxClients 100\n' "$TP_PORT"
    printf 'LogLevel Connect\nLogFile "%s"\n' "$TP_LOG"
    for p in "$@"; do
      printf 'ConnectPort %s\n' "$p"
    done
    [[ -z $auth ]] || printf '%s\n' "$auth"
  } >"$T/$name.conf"
  tinyproxy -d -c "$T/$name.conf" </dev/null >>"$T/$name.out" 2>&1 &
  TP_PID=$!
  track "$TP_PID" "tinyproxy $name"
  wait_port 127.0.0.1 "$TP_PORT" 10 "$TP_PID" ||
    fail "tinyproxy $name did not listen on 127.0.0.1:$TP_PORT: $(cat "$T/$name.out" "$TP_LOG" 2>/dev/null)"
  log "tinyproxy $name pid $TP_PID on 127.0.0.1:$TP_PORT (CONNECT to $*${auth:+, Basic auth})"
}

# tinyproxy_connects LOG [TARGET]: how many CONNECT requests (to TARGET,
# host:port, when given) the tinyproxy of LOG received.
tinyproxy_connects() {
  local n
  n=$(grep -cE "Request \(file descriptor [0-9]+\): CONNECT ${2:-[^ ]+} " \
    "$1" 2>/dev/null) || true
  printf '%s\n' "${n:-0}"
}

# _sshd_safe_path FILE: 0 when sshd would run FILE as a command: OpenSSH's
# safe_path() wants the program and every directory above it (symlinks
# resolved) owned by root and not writable by group or others.
_sshd_safe_path() {
  local p uid mode
  p=$(realpath -e "$1") || return 1
  while :; do
    read -r uid mode < <(stat -Lc '%u %a' "$p") || return 1
    ((uid == 0 && (8#$mode & 8#022) == 0)) || return 1
    [[ $p == / ]] && return 0
    p=$(dirname "$p")
  done
}

# prepare_keys_cmd: KEYS_CMD, a wsmux-edge that sshd will run as its
# AuthorizedKeysCommand: $WSMUX_EDGE_BIN itself, or (a build under /tmp,
# mode 1777, does not qualify) a copy in a private root-owned directory,
# removed at exit. Needs root.
prepare_keys_cmd() {
  local base
  KEYS_CMD=$(realpath -e "$WSMUX_EDGE_BIN")
  _sshd_safe_path "$KEYS_CMD" && return 0
  KEYS_SAFE_DIR=""
  for base in /run /var/lib "$HOME"; do
    _sshd_safe_path "$base" || continue
    KEYS_SAFE_DIR=$(mktemp -d "$base/wsmux-e2e-$E2E_NAME.XXXXXX") || continue
    break
  done
  [[ -n $KEYS_SAFE_DIR ]] ||
    fail "$KEYS_CMD is not a safe path for sshd and no safe directory found"
  # Removed before lib.sh's cleanup, which then sees the test's status
  # (set +e first: under set -e, `(exit N)` with N > 0 would end the trap
  # before the cleanup).
  # shellcheck disable=SC2154 # _rc is assigned inside the trap
  trap '_rc=$?; set +e; rm -rf "$KEYS_SAFE_DIR"; (exit $_rc); _e2e_cleanup' EXIT
  install -m 0755 "$KEYS_CMD" "$KEYS_SAFE_DIR/wsmux-edge"
  KEYS_CMD=$KEYS_SAFE_DIR/wsmux-edge
  log "sshd would not run $WSMUX_EDGE_BIN (unsafe path); using a copy in $KEYS_SAFE_DIR"
}

# _start_sshd_conf LABEL CONF LOG OUT LINES: sshd -D on a free port with
# CONF written from the lines every test sshd has plus LINES (its keys and
# the like), checked with sshd -t first; three tries, as the port may be
# taken between the pick and the bind. Sets _SSHD_PORT and _SSHD_PID.
_start_sshd_conf() {
  local label=$1 conf=$2 slog=$3 out=$4 lines=$5 attempt
  mkdir -p /run/sshd 2>/dev/null || true
  for attempt in 1 2 3; do
    _SSHD_PORT=$(_freeport)
    cat >"$conf" <<EOF
Port $_SSHD_PORT
ListenAddress 127.0.0.1
HostKey $T/host_key
$lines
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 200
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
    /usr/sbin/sshd -t -f "$conf" >"$T/sshd-t.log" 2>&1 ||
      fail "sshd rejected its config: $(cat "$T/sshd-t.log")"
    /usr/sbin/sshd -D -f "$conf" -E "$slog" </dev/null >"$out" 2>&1 &
    _SSHD_PID=$!
    track "$_SSHD_PID" "$label"
    if wait_port 127.0.0.1 "$_SSHD_PORT" 15 "$_SSHD_PID"; then
      log "$label pid $_SSHD_PID on 127.0.0.1:$_SSHD_PORT"
      return 0
    fi
    if kill -0 "$_SSHD_PID" 2>/dev/null; then
      fail "$label does not accept connections on port $_SSHD_PORT after 15 s"
    fi
    wait_exit "$_SSHD_PID" 1 || true
    log "$label exited at start (attempt $attempt): $(tail -n 3 "$slog")"
  done
  fail "$label could not be started"
}

# start_keys_sshd NAME CONFIG PROJECT SERVICE: an sshd on a free port whose
# only keys come from `$KEYS_CMD authorized-keys --config CONFIG --project
# PROJECT --service SERVICE` (prepare_keys_cmd first; CONFIG may be written
# later, sshd reads it at each login). Sets SSHD_PORTS[NAME].
declare -A SSHD_PORTS=()
start_keys_sshd() {
  local name=$1 config=$2 project=$3 service=$4
  _start_sshd_conf "sshd ($name)" "$T/sshd-$name.conf" "$T/sshd-$name.log" \
    /dev/null "AuthorizedKeysFile none
AuthorizedKeysCommand $KEYS_CMD authorized-keys --config $config --project $project --service $service
AuthorizedKeysCommandUser root
PidFile $T/sshd-$name.pid"
  SSHD_PORTS[$name]=$_SSHD_PORT
}

# start_sshd: a real sshd on 127.0.0.1:$SSHD_PORT (pid $SSHD_PID) that
# accepts $CLIENT_KEY for $LOGIN_USER. Needs gen_keys first.
start_sshd() {
  _start_sshd_conf sshd "$T/sshd_config" "$T/sshd.log" "$T/sshd.out" \
    "AuthorizedKeysFile $T/authorized_keys
PidFile $T/sshd.pid
StrictModes no
MaxSessions 64"
  SSHD_PORT=$_SSHD_PORT SSHD_PID=$_SSHD_PID
}

# service_json ID UPSTREAM [KIND] [SSH_ENABLED]: one entry of "services".
service_json() {
  printf '{"id":"%s","projectId":"%s","kind":"%s","tags":["t1"],"sshEnabled":%s,"upstream":"%s"}' \
    "$1" "$E2E_PROJECT" "${3:-service}" "${4:-true}" "$2"
}

# write_edge_config [SERVICE_JSON...]: $T/edge.json with the token
# $EDGE_TOKEN (generated unless already set), the project $E2E_PROJECT, the
# service $E2E_SSH_SERVICE -> sshd (127.0.0.1:1 when no sshd runs) and the
# given extra services. Needs gen_cert first.
# shellcheck disable=SC2120 # the extra services are optional
write_edge_config() {
  : "${EDGE_TOKEN:=wsmux-e2e-$(openssl rand -hex 16)}"
  local sha services s
  sha=$(printf '%s' "$EDGE_TOKEN" | sha256sum | cut -d' ' -f1)
  services=$(service_json "$E2E_SSH_SERVICE" "127.0.0.1:${SSHD_PORT:-1}")
  for s in "$@"; do
    services+=$',\n    '"$s"
  done
  EDGE_CONFIG=$T/edge.json
  cat >"$EDGE_CONFIG" <<EOF
{
  "listen": "127.0.0.1:0",
  "tls": {"cert": "$EDGE_CERT", "key": "$EDGE_KEY"},
  "windowBytes": $E2E_WINDOW_BYTES,
  "drainTimeoutMs": $E2E_DRAIN_MS,${E2E_EDGE_EXTRA_JSON:+
  $E2E_EDGE_EXTRA_JSON,}
  "tokens": [{"id": "test", "sha256": "$sha"}],
  "projects": [{"id": "$E2E_PROJECT", "name": "Demo"}],
  "services": [
    $services
  ]
}
EOF
}

_edge_ready() {
  grep -Eq 'wsmux-edge: listening on wss?://.+:[0-9]+[[:space:]]*$' \
    "$EDGE_ERR" 2>/dev/null && return 0
  kill -0 "$EDGE_PID" 2>/dev/null ||
    fail "wsmux-edge exited before listening; stderr:
$(tail -n 30 "$EDGE_ERR")"
  return 1
}

# start_edge: wsmux-edge on $EDGE_CONFIG. Sets EDGE_PID, EDGE_PORT, EDGE_URL
# (scheme from the edge's line, host $WSMUX_EDGE_HOST), EDGE_ERR.
start_edge() {
  [[ -x $WSMUX_EDGE_BIN ]] ||
    fail "wsmux-edge not found at $WSMUX_EDGE_BIN (build it or set WSMUX_EDGE_BIN)"
  EDGE_ERR=$T/edge.err
  # E2E_EDGE_NOFILE=N: under an open-files limit of N, soft and hard (the
  # edge raises its soft limit to the hard one).
  (
    [[ -z ${E2E_EDGE_NOFILE:-} ]] || ulimit -n "$E2E_EDGE_NOFILE"
    exec env "${E2E_SAN_ENV[@]}" "$WSMUX_EDGE_BIN" --config "$EDGE_CONFIG" \
      --log-level "$E2E_EDGE_LOG_LEVEL"
  ) </dev/null >"$T/edge.out" 2>"$EDGE_ERR" &
  EDGE_PID=$!
  track "$EDGE_PID" wsmux-edge 1
  E2E_SAN_LOGS+=("$EDGE_ERR")
  wait_until 20 "wsmux-edge's 'listening on' line" _edge_ready
  local line re='wsmux-edge: listening on (wss?)://(.+):([0-9]+)[[:space:]]*$'
  line=$(grep -Em1 "$re" "$EDGE_ERR")
  [[ $line =~ $re ]] || fail "cannot parse the edge's line: $line"
  EDGE_SCHEME=${BASH_REMATCH[1]}
  EDGE_PORT=${BASH_REMATCH[3]}
  EDGE_URL="$EDGE_SCHEME://$WSMUX_EDGE_HOST:$EDGE_PORT"
  log "wsmux-edge pid $EDGE_PID at $EDGE_URL"
}

# start_named_edge NAME CONFIG: one more wsmux-edge (of a fleet) with its
# own config, stderr in $T/edge-NAME.err. Sets EDGE_PIDS[NAME],
# EDGE_PORTS[NAME], EDGE_URLS[NAME].
declare -A EDGE_PIDS=() EDGE_PORTS=() EDGE_URLS=()
start_named_edge() {
  local name=$1 config=$2 err=$T/edge-$1.err pid line
  local re='wsmux-edge: listening on (wss?)://(.+):([0-9]+)[[:space:]]*$'
  env "${E2E_SAN_ENV[@]}" "$WSMUX_EDGE_BIN" --config "$config" \
    --log-level "$E2E_EDGE_LOG_LEVEL" </dev/null >/dev/null 2>"$err" &
  pid=$!
  track "$pid" "wsmux-edge ($name)" 1
  E2E_SAN_LOGS+=("$err")
  wait_output 30 "edge $name listening" "$pid" "edge $name exited" "$err" \
    -E "$re" "$err"
  line=$(grep -Em1 "$re" "$err")
  [[ $line =~ $re ]] || fail "cannot parse edge $name's line: $line"
  EDGE_PIDS[$name]=$pid
  EDGE_PORTS[$name]=${BASH_REMATCH[3]}
  EDGE_URLS[$name]="${BASH_REMATCH[1]}://$WSMUX_EDGE_HOST:${BASH_REMATCH[3]}"
  log "edge $name pid $pid at ${EDGE_URLS[$name]}"
}

# start_haproxy CONFIG PORT: HAProxy in master-worker mode (-W, as Debian's
# unit runs it) in the foreground, its master CLI on $T/haproxy-master.sock,
# log lines in $T/haproxy.log; waits for PORT to accept connections. Sets
# HAPROXY_PID (the master: SIGUSR2 reloads, SIGTERM stops).
start_haproxy() {
  local config=$1 port=$2
  command -v haproxy >/dev/null || fail "haproxy is not installed (scripts/setup installs it)"
  haproxy -c -q -f "$config" >"$T/haproxy-check.log" 2>&1 ||
    fail "haproxy -c refused $config: $(cat "$T/haproxy-check.log")"
  haproxy -W -db -f "$config" -S "$T/haproxy-master.sock" \
    </dev/null >>"$T/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  track "$HAPROXY_PID" haproxy
  wait_port 127.0.0.1 "$port" 20 "$HAPROXY_PID" ||
    fail "haproxy does not listen on $port: $(tail -n 20 "$T/haproxy.log")"
  log "haproxy pid $HAPROXY_PID on 127.0.0.1:$port"
}

# haproxy_example_config OUT PORT LOG SOURCE NAME=PORT...: OUT is
# packaging/haproxy/wsmux-edge.cfg with only its places replaced, so that
# what is tested (or measured) is the example as shipped: TLS on
# 127.0.0.1:PORT with the test's certificate ($T/haproxy.pem), the runtime
# API on $T/haproxy-admin.sock (HAPROXY_SOCK), log lines to HAProxy's
# stdout ($T/haproxy.log) with LOG "stdout", or none at all with LOG "none"
# (the example logs every request: not in a benchmark), connections to the edges from SOURCE
# (an address; "" leaves it to the kernel), and server edge-NAME at
# 127.0.0.1:PORT for each NAME=PORT; the example's other servers are left
# out. Fails when a line naming a place was not replaced.
haproxy_example_config() {
  local out=$1 port=$2 logto=$3 source=$4 sv
  shift 4
  local sub=(-e "s#/run/haproxy/wsmux-admin.sock#$T/haproxy-admin.sock#"
    -e "s#bind :443 ssl crt /etc/haproxy/wsmux.pem#bind 127.0.0.1:$port ssl crt $T/haproxy.pem#")
  case $logto in
  stdout) sub+=(-e "s#log /dev/log local0 info#log stdout format raw local0 info#") ;;
  none) sub+=(-e "/^    log \/dev\/log /d" -e "s#^    log global\$#    no log#"
    -e "/^    option httplog\$/d") ;;
  *) fail "haproxy_example_config: LOG is stdout or none, not '$logto'" ;;
  esac
  [[ -z $source ]] || sub+=(-e "s#^\(    default-server .*\)\$#\1 source $source#")
  for sv in "$@"; do
    sub+=(-e "s#^\(    server edge-${sv%%=*}\) 10\.0\.0\.[0-9]*:8080\$#\1 127.0.0.1:${sv#*=}#")
  done
  sub+=(-e "/^    server edge-[a-z]* 10\.0\.0\.[0-9]*:8080\$/d")
  cat "$EDGE_CERT" "$EDGE_KEY" >"$T/haproxy.pem"
  HAPROXY_SOCK=$T/haproxy-admin.sock
  sed "${sub[@]}" "$WSMUX_REPO/packaging/haproxy/wsmux-edge.cfg" >"$out"
  if grep -nE '10\.0\.0\.|/etc/haproxy|/run/haproxy|/dev/log|:443 ' "$out"; then
    fail "the example HAProxy config changed: the substitutions miss the lines above"
  fi
  (($(grep -c '^    server ' "$out") == $#)) ||
    fail "the example HAProxy config has no server line for one of: $*"
}

# haproxy_cli SOCKET COMMAND: one command to HAProxy's runtime API.
haproxy_cli() {
  printf '%s\n' "$2" | socat -t 5 - "UNIX-CONNECT:$1"
}

# haproxy_server_up SOCKET BACKEND/SERVER: 0 when HAProxy has it UP.
haproxy_server_up() {
  local be=${2%/*} sv=${2#*/}
  haproxy_cli "$1" "show stat" |
    awk -F, -v be="$be" -v sv="$sv" '$1 == be && $2 == sv {print $18}' |
    grep -q '^UP'
}

# keep_edge_log NAME: $EDGE_ERR becomes $T/edge-NAME.err (still checked for
# sanitizer reports), so that start_edge can run again.
keep_edge_log() {
  mv "$EDGE_ERR" "$T/edge-$1.err"
  E2E_SAN_LOGS+=("$T/edge-$1.err")
}

_PROXY_LINE_RE='^SSH proxy started on endpoint: (.+):([0-9]+), stop with Ctrl\+C$'

_proxy_ready() {
  grep -Eq "$_PROXY_LINE_RE" "$PROXY_OUT" 2>/dev/null && return 0
  kill -0 "$PROXY_PID" 2>/dev/null ||
    fail "wsmux exited before its proxy started; stderr:
$(tail -n 30 "$PROXY_ERR")"
  return 1
}

# start_proxy SERVICE [EXTRA_ARGS...]: `wsmux ssh service --proxyOnly` for
# SERVICE on 127.0.0.1 with a kernel-chosen port, token from WSMUX_TOKEN,
# edge $E2E_EDGE_URL_OVERRIDE if set, else $EDGE_URL.
# Sets (and exports) PROXY_PID, PROXY_ADDR, PROXY_PORT, PROXY_OUT, PROXY_ERR;
# a test that runs several proxies saves them after each call.
start_proxy() {
  local service=$1
  shift
  [[ -x $WSMUX_BIN ]] ||
    fail "wsmux not found at $WSMUX_BIN (build it or set WSMUX_BIN)"
  E2E_NPROXY=$((E2E_NPROXY + 1))
  PROXY_OUT=$T/proxy$E2E_NPROXY.out
  PROXY_ERR=$T/proxy$E2E_NPROXY.err
  # E2E_DERIVED_ENDPOINT=1: let wsmux derive address and port itself.
  local where=(--address 127.0.0.1 --port 0)
  [[ ${E2E_DERIVED_ENDPOINT:-0} == 1 ]] && where=()
  local run=${E2E_PROXY_RUNTIME_DIR:-$T/xdg-runtime-proxy$E2E_NPROXY}
  mkdir -p -m 700 "$run"
  env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="$EDGE_TOKEN" XDG_RUNTIME_DIR="$run" \
    "$WSMUX_BIN" ssh service --projectId "$E2E_PROJECT" \
    --serviceId "$service" --proxyOnly \
    --edge "${E2E_EDGE_URL_OVERRIDE:-$EDGE_URL}" --ca "$EDGE_CERT" \
    "${where[@]}" --user "$LOGIN_USER" "$@" \
    </dev/null >"$PROXY_OUT" 2>"$PROXY_ERR" &
  PROXY_PID=$!
  track "$PROXY_PID" "wsmux proxy for $service" 1
  E2E_SAN_LOGS+=("$PROXY_ERR")
  wait_until 20 "the proxy for $service to print its endpoint" _proxy_ready
  local line
  line=$(grep -Em1 "$_PROXY_LINE_RE" "$PROXY_OUT")
  [[ $line =~ $_PROXY_LINE_RE ]] || fail "cannot parse: $line"
  PROXY_ADDR=${BASH_REMATCH[1]}
  PROXY_PORT=${BASH_REMATCH[2]}
  export PROXY_ADDR PROXY_PORT PROXY_PID PROXY_OUT PROXY_ERR
  log "proxy for $service pid $PROXY_PID on $PROXY_ADDR:$PROXY_PORT"
}

# ssh_echo WORD WHAT [PORT [ADDR]]: `echo WORD` over ssh through a proxy
# (default $PROXY_PORT, $PROXY_ADDR; 60 s); fail (WHAT if ssh does) unless
# it prints WORD.
ssh_echo() {
  local word=$1 what=$2 port=${3:-$PROXY_PORT} addr=${4:-$PROXY_ADDR} out
  out=$(timeout 60 ssh "${SSH_OPTS[@]}" -p "$port" "$LOGIN_USER@$addr" \
    "echo $word") || fail "$what"
  [[ $out == "$word" ]] || fail "ssh printed '$out'"
}

# start_testsrv: wsmux-testsrv on 127.0.0.1, kernel-chosen port. Sets
# TESTSRV_PID, TESTSRV_PORT; its stdout (per-connection lines) is
# $T/testsrv.out.
start_testsrv() {
  [[ -x $WSMUX_TESTSRV ]] || fail "wsmux-testsrv not found at $WSMUX_TESTSRV"
  "$WSMUX_TESTSRV" --listen 127.0.0.1:0 --max-seconds 900 \
    </dev/null >"$T/testsrv.out" 2>"$T/testsrv.err" &
  TESTSRV_PID=$!
  track "$TESTSRV_PID" wsmux-testsrv
  wait_output 10 "wsmux-testsrv to listen" "$TESTSRV_PID" \
    "wsmux-testsrv exited at start" "$T/testsrv.err" \
    '^listening [0-9]' "$T/testsrv.out"
  TESTSRV_PORT=$(awk '/^listening /{print $2; exit}' "$T/testsrv.out")
  log "wsmux-testsrv pid $TESTSRV_PID on 127.0.0.1:$TESTSRV_PORT"
}

# prepare_stack [START_STACK_ARGS...]: start_stack without start_edge, for
# a test that changes the config or its own limits first.
# shellcheck disable=SC2120 # the options and services are optional
prepare_stack() {
  local keys=1 upstream=sshd extra=${E2E_EDGE_EXTRA_JSON:-}
  while (($#)); do
    case $1 in
      --no-keys) keys=0 ;;
      --upstream)
        upstream=$2
        shift
        ;;
      --edge-json)
        extra=$2
        shift
        ;;
      --*) fail "prepare_stack: unknown option $1" ;;
      *) break ;;
    esac
    shift
  done
  if ((keys)); then
    gen_keys
  fi
  gen_cert
  case $upstream in
    sshd) start_sshd ;;
    testsrv) start_testsrv ;;
    none) ;;
    *) fail "prepare_stack: unknown upstream $upstream" ;;
  esac
  # The upstreams' ports are known only now, hence the names in the specs.
  local spec words services=()
  for spec in "$@"; do
    read -ra words <<<"$spec"
    case ${words[1]} in
      sshd) words[1]=127.0.0.1:$SSHD_PORT ;;
      testsrv) words[1]=127.0.0.1:$TESTSRV_PORT ;;
      closed)
        CLOSED_PORT=$(_freeport)
        words[1]=127.0.0.1:$CLOSED_PORT
        ;;
    esac
    services+=("$(service_json "${words[@]}")")
  done
  E2E_EDGE_EXTRA_JSON=$extra write_edge_config "${services[@]}"
}

# start_stack [--no-keys] [--upstream sshd|testsrv|none] [--edge-json JSON]
# [SERVICE...]: gen_keys, gen_cert, the upstream (default sshd), the edge
# config with E2E_EDGE_EXTRA_JSON=JSON and the extra SERVICEs, start_edge.
# SERVICE: service_json's arguments in one word, "ID UPSTREAM [KIND]
# [SSH]", UPSTREAM `sshd`/`testsrv` (the one started) or `closed` (a port
# nothing listens on; sets CLOSED_PORT).
# shellcheck disable=SC2120 # the options and services are optional
start_stack() {
  prepare_stack "$@"
  start_edge
}

# rss_kb PID: resident set size of PID in KiB (VmRSS).
rss_kb() {
  local v
  v=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null) || true
  [[ -n $v ]] || {
    echo "rss_kb: no process $1" >&2
    return 1
  }
  printf '%s\n' "$v"
}

# http_raw PORT REQUEST: send REQUEST to 127.0.0.1:PORT as is and print all
# the server sends until it closes the connection (10 s bound).
http_raw() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout -k 2 10 bash -c \
    'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 && cat <&3' \
    _ "$1" "$2"
}

# split_response RAW: RAW's head (through the empty line) into RAW.head,
# its body into RAW.body; RESP_STATUS is the status line (no CR).
split_response() {
  local n
  n=$(grep -n -m1 $'^\r$' "$1" | cut -d: -f1) ||
    fail "no end of the head in the response: $(head -c 300 "$1")"
  head -n "$n" "$1" | tr -d '\r' >"$1.head"
  tail -n +"$((n + 1))" "$1" >"$1.body"
  RESP_STATUS=$(head -n 1 "$1.head")
}

# header NAME FILE.head: the value of header NAME (any case).
header() {
  sed -n "s/^$1: //Ip" "$2"
}

# https_raw REQUEST: send REQUEST to the edge's TLS listener as is (stdin of
# openssl s_client) and print all it sends until it closes (20 s bound).
https_raw() {
  printf '%s' "$1" |
    timeout -k 2 20 openssl s_client -quiet -connect "127.0.0.1:$EDGE_PORT" \
      -CAfile "$EDGE_CERT" 2>/dev/null
}

# CPU accounting, for the noise of a long run (scripts/bench, scripts/soak):
# cpu_share_start, then cpu_share_end sets CPU_OWN, CPU_OTHER and CPU_STEAL,
# the percentages of all CPUs' time in between that went to this script and
# everything it started, to other processes, and to the hypervisor.
_machine_ticks() { # "BUSY STEAL TOTAL" clock ticks of all CPUs since boot
  awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i
    print $2 + $3 + $4 + $7 + $8, $9, t; exit}' /proc/stat
}
# _own_ticks: the reaped children are in this shell's cutime/cstime, the
# running ones (sshd, the edge, ...) are read directly, with their reaped
# children. A running child of a running process is in neither (HAProxy's
# worker): scripts/bench stops HAProxy before cpu_share_end.
_own_ticks() {
  local p sum=0 f
  for p in $$ "${E2E_PIDS[@]}"; do
    f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    f=${f##*) }
    read -ra f <<<"$f"
    sum=$((sum + f[11] + f[12] + f[13] + f[14]))
  done
  printf '%s' "$sum"
}
cpu_share_start() {
  read -r _CPU_BUSY0 _CPU_STEAL0 _CPU_TOTAL0 <<<"$(_machine_ticks)"
  _CPU_OWN0=$(_own_ticks)
}
cpu_share_end() {
  local busy steal total own
  read -r busy steal total <<<"$(_machine_ticks)"
  own=$(_own_ticks)
  # shellcheck disable=SC2034 # read by the scripts
  read -r CPU_OWN CPU_OTHER CPU_STEAL <<<"$(awk -v b=$((busy - _CPU_BUSY0)) \
    -v s=$((steal - _CPU_STEAL0)) -v t=$((total - _CPU_TOTAL0)) \
    -v o=$((own - _CPU_OWN0)) \
    'BEGIN { if (t <= 0) t = 1; other = b - o; if (other < 0) other = 0
      printf "%.1f %.1f %.1f", 100 * o / t, 100 * other / t, 100 * s / t }')"
}

# edge_metrics_port: the port of the edge's metricsListen (from its log line)
# into METRICS_PORT.
edge_metrics_port() {
  local line re='wsmux-edge: metrics on http://127\.0\.0\.1:([0-9]+)/metrics[[:space:]]*$'
  line=$(grep -Em1 "$re" "$EDGE_ERR") ||
    fail "the edge did not log its metrics URL: $(cat "$EDGE_ERR")"
  [[ $line =~ $re ]] || fail "cannot parse: $line"
  METRICS_PORT=${BASH_REMATCH[1]}
}

# metric_now SERIES: its value in a fresh scrape of $METRICS_PORT (0 when
# absent); metric_now_is SERIES VALUE: whether it is VALUE (for wait_until).
metric_now() {
  local v
  http_raw "$METRICS_PORT" $'GET /metrics HTTP/1.0\r\n\r\n' >"$T/scrape-now" ||
    fail "no answer from the metrics endpoint"
  v=$(awk -v s="$1" '$1 == s {print $2}' "$T/scrape-now")
  printf '%s\n' "${v:-0}"
}
metric_now_is() { [[ $(metric_now "$1") == "$2" ]]; }

# ws_path SERVICE: the edge's WebSocket path for SERVICE of $E2E_PROJECT.
ws_path() {
  printf '/v1/projects/%s/services/%s/ssh' "$E2E_PROJECT" "$1"
}

# wsraw NAME SECONDS PATH [WSRAW_ARGS...]: wsmux-wsraw against the edge
# (TLS, --token $EDGE_TOKEN unless given), script on stdin, fail unless it
# exits 0 within SECONDS. Sets RAW_OUT ($T/raw-NAME.out; stderr
# $T/run-raw-NAME.err).
wsraw() {
  local name=$1 secs=$2 path=$3 rc=0 auth=(--token "$EDGE_TOKEN")
  shift 3
  RAW_OUT=$T/raw-$name.out
  [[ " $* " == *" --token "* ]] && auth=()
  timeout -k 5 "$secs" "$WSMUX_WSRAW" --connect "127.0.0.1:$EDGE_PORT" --tls \
    --ca "$EDGE_CERT" --path "$path" "${auth[@]}" --verbose --script - \
    "$@" >"$RAW_OUT" 2>"$T/run-raw-$name.err" || rc=$?
  ((rc == 0)) || fail "$name: wsmux-wsraw exited $rc:
$(tail -n 5 "$T/run-raw-$name.err")
output:
$(cat "$RAW_OUT")"
}

# wsmux_run NAME SECS [ENV_ARG...] -- ARGS...: wsmux ARGS under the
# sanitizer settings, with env(1)'s ENV_ARGs (VAR=VALUE, -u VAR) first,
# stdin ${WSMUX_STDIN:-/dev/null}, killed after SECS s, which fails the
# test. Sets RUN_RC and the files RUN_OUT and RUN_ERR ($T/run-NAME.out and
# .err; RUN_ERR is checked for sanitizer reports at the end).
wsmux_run() {
  local name=$1 secs=$2 envs=()
  shift 2
  while (($#)) && [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  RUN_OUT=$T/run-$name.out
  RUN_ERR=$T/run-$name.err
  E2E_SAN_LOGS+=("$RUN_ERR")
  RUN_RC=0
  env "${envs[@]}" "${E2E_SAN_ENV[@]}" timeout -k 5 "$secs" "$WSMUX_BIN" "$@" \
    <"${WSMUX_STDIN:-/dev/null}" >"$RUN_OUT" 2>"$RUN_ERR" || RUN_RC=$?
  ((RUN_RC != 124 && RUN_RC != 137)) ||
    fail "$name: wsmux did not exit within $secs s"
}

# scp_upload_start SECS SRC ADDR PORT DEST LABEL: scp SRC to
# $LOGIN_USER@ADDR:DEST through PORT in the background, killed after SECS;
# SCP_PID (tracked as LABEL), its stderr in $T/run-scp.err.
scp_upload_start() {
  timeout "$1" scp "${SSH_OPTS[@]}" -q -P "$4" "$2" "$LOGIN_USER@$3:$5" \
    </dev/null >"$T/run-scp.out" 2>"$T/run-scp.err" &
  SCP_PID=$!
  track "$SCP_PID" "$6"
}

# remote_size PATH: REMOTE_SIZE, the size of PATH (0 while there is none).
remote_size() {
  REMOTE_SIZE=$(stat -c %s "$1" 2>/dev/null) || REMOTE_SIZE=0
}

# wait_upload_past PATH BYTES: wait up to 120 s until PATH holds more than
# BYTES, for a cut in the middle of the upload $SCP_PID; fails when the
# upload ends first.
wait_upload_past() {
  wait_until 120 "$1 to grow past $(($2 >> 20)) MiB" _upload_past "$1" "$2"
}
_upload_past() {
  remote_size "$1"
  ((REMOTE_SIZE > $2)) && return 0
  kill -0 "$SCP_PID" 2>/dev/null && return 1
  fail "scp ended before $1 reached $(($2 >> 20)) MiB (size $REMOTE_SIZE); its stderr:
$(tail -n 10 "$T/run-scp.err")"
}

# wsmux_bounded ARGS...: wsmux ARGS under the sanitizer settings with the
# token ${TOKEN:-$EDGE_TOKEN}, killed after 60 s; stdin, stdout, stderr and
# the status are the caller's.
wsmux_bounded() {
  env "${E2E_SAN_ENV[@]}" WSMUX_TOKEN="${TOKEN:-$EDGE_TOKEN}" \
    timeout -k 5 60 "$WSMUX_BIN" "$@"
}

# --------------------------------------------------------------------------
# Fault injection: wsmux-faultrelay between the proxy and the edge
# (proxy -> relay -> edge), driven with `fault COMMAND`. See
# tests/tools/faultrelay.c for the commands (cut, reset, stall, delay MS PCT,
# throttle BPS, restore, retarget PORT, stats).

# start_faultrelay TO_PORT: wsmux-faultrelay on 127.0.0.1 (kernel-chosen
# port) forwarding every connection to 127.0.0.1:TO_PORT, controlled through
# the UNIX socket $FAULT_CTL; its log is $T/faultrelay.err (shown when the
# test fails). It exits by itself after E2E_FAULTRELAY_SECONDS (default
# 900; a longer run sets more). Sets FAULT_PID, FAULT_PORT, FAULT_CTL and FAULT_URL, the edge
# URL through the relay (the edge's scheme, host $WSMUX_EDGE_HOST, which the
# edge's certificate covers). Call after start_edge.
start_faultrelay() {
  local to=$1
  [[ -x $WSMUX_FAULTRELAY ]] ||
    fail "wsmux-faultrelay not found at $WSMUX_FAULTRELAY (build it or set WSMUX_FAULTRELAY)"
  FAULT_CTL=$T/fault.ctl
  "$WSMUX_FAULTRELAY" --listen 127.0.0.1:0 --to "127.0.0.1:$to" \
    --control "$FAULT_CTL" --max-seconds "$E2E_FAULTRELAY_SECONDS" \
    </dev/null >"$T/faultrelay.out" 2>"$T/faultrelay.err" &
  FAULT_PID=$!
  track "$FAULT_PID" wsmux-faultrelay
  wait_output 10 "wsmux-faultrelay to listen" "$FAULT_PID" \
    "wsmux-faultrelay exited at start" "$T/faultrelay.err" \
    '^listening [0-9]' "$T/faultrelay.out"
  FAULT_PORT=$(awk '/^listening /{print $2; exit}' "$T/faultrelay.out")
  FAULT_URL="${EDGE_SCHEME:-wss}://$WSMUX_EDGE_HOST:$FAULT_PORT"
  log "wsmux-faultrelay pid $FAULT_PID on 127.0.0.1:$FAULT_PORT -> 127.0.0.1:$to"
}

# fault COMMAND [ARG...]: one command to the relay. It has taken effect when
# this returns; the test fails unless the relay answers "ok...". The answer
# is left in FAULT_ANSWER. Do not call it in $(...): fail would only end the
# subshell.
fault() {
  local rc=0
  [[ -n ${FAULT_CTL:-} ]] || fail "fault $*: no relay (call start_faultrelay)"
  FAULT_ANSWER=$("$WSMUX_FAULTRELAY" --send "$FAULT_CTL" "$@" 2>&1) || rc=$?
  ((rc == 0)) ||
    fail "fault $*: wsmux-faultrelay answered '$FAULT_ANSWER' (status $rc)"
  log "fault $*: $FAULT_ANSWER"
}

# fault_stats: `fault stats` parsed into FAULT_STATS[accepted|refused|open|
# up|down|held|port|mode|corrupted].
declare -A FAULT_STATS=()
fault_stats() {
  local kv
  fault stats
  FAULT_STATS=()
  for kv in ${FAULT_ANSWER#ok}; do
    # shellcheck disable=SC2034 # used by the tests
    FAULT_STATS[${kv%%=*}]=${kv#*=}
  done
}

# assert_relay_reconnected WHICH: fault_stats; fail unless the relay
# forwarded 2 or more connections from the proxy (WHICH says which).
assert_relay_reconnected() {
  fault_stats
  ((FAULT_STATS[accepted] >= 2)) || fail "the relay saw" \
    "${FAULT_STATS[accepted]} connection(s) from the proxy, want at least 2 ($1)"
}

# start_proxy_via_fault SERVICE [EXTRA_ARGS...]: start_proxy with the edge
# URL pointing at the relay ($FAULT_URL).
start_proxy_via_fault() {
  [[ -n ${FAULT_URL:-} ]] ||
    fail "start_proxy_via_fault: no relay (call start_faultrelay first)"
  local E2E_EDGE_URL_OVERRIDE=$FAULT_URL
  start_proxy "$@"
}

# assert_proxy_alive WHEN: the proxy $PROXY_PID still runs; otherwise fail
# with its exit status and the end of its stderr.
assert_proxy_alive() {
  kill -0 "$PROXY_PID" 2>/dev/null && return 0
  local rc=0
  wait "$PROXY_PID" 2>/dev/null || rc=$?
  untrack "$PROXY_PID"
  fail "the proxy (pid $PROXY_PID) exited with status $rc $1; it must keep running (reconnect) instead. Its stderr ends with:
$(tail -n 30 "$PROXY_ERR")"
}

# start_stack_with_proxy [--via-fault] [START_STACK_ARGS...] [--
# PROXY_ARGS...]: start_stack, then start_proxy $E2E_SSH_SERVICE PROXY_ARGS
# (--via-fault: start_faultrelay, then start_proxy_via_fault).
# shellcheck disable=SC2120 # the arguments are optional
start_stack_with_proxy() {
  local via_fault=0 stack=()
  while (($#)) && [[ $1 != -- ]]; do
    case $1 in
      --via-fault) via_fault=1 ;;
      --edge-json | --upstream)
        stack+=("$1" "$2")
        shift
        ;;
      *) stack+=("$1") ;;
    esac
    shift
  done
  if (($#)); then
    shift
  fi
  start_stack "${stack[@]}"
  if ((via_fault)); then
    start_faultrelay "$EDGE_PORT"
    start_proxy_via_fault "$E2E_SSH_SERVICE" "$@"
  else
    start_proxy "$E2E_SSH_SERVICE" "$@"
  fi
}

# --------------------------------------------------------------------------
# Long-lived interactive ssh sessions

declare -A SESSION_PID=() SESSION_FD=()

# start_session NAME [PORT [ADDR]]: `ssh -T` through the proxy (default
# $PROXY_PORT on $PROXY_ADDR) running a remote `bash -s`. Its stdin is the
# FIFO $T/NAME.in, held open (read-write, so that opening never blocks and a
# write never raises SIGPIPE) on a descriptor of this shell: session_send
# writes command lines into it. Its stdout is $T/run-NAME.out, its stderr
# $T/run-NAME.err (shown when the test fails). Returns once the remote shell
# has answered (30 s). Sets SESSION_PID[NAME] (tracked) and SESSION_FD[NAME].
start_session() {
  local name=$1 port=${2:-$PROXY_PORT} addr=${3:-$PROXY_ADDR} fd
  mkfifo "$T/$name.in"
  exec {fd}<>"$T/$name.in"
  SESSION_FD[$name]=$fd
  ssh -T "${SSH_OPTS[@]}" -p "$port" "$LOGIN_USER@$addr" 'exec bash -s' \
    <"$T/$name.in" >"$T/run-$name.out" 2>"$T/run-$name.err" {fd}>&- &
  SESSION_PID[$name]=$!
  track "${SESSION_PID[$name]}" "ssh session $name"
  session_echo "$name" "ready-$name" 30
  log "ssh session $name (pid ${SESSION_PID[$name]}) ready"
}

# session_send NAME LINE: send one command line to the remote shell.
session_send() {
  kill -0 "${SESSION_PID[$1]}" 2>/dev/null ||
    fail "ssh session $1 ended before '$2' could be sent; its stderr:
$(tail -n 10 "$T/run-$1.err")"
  printf '%s\n' "$2" >&"${SESSION_FD[$1]}"
}

_session_has() {
  grep -qxF -- "$2" "$T/run-$1.out" 2>/dev/null && return 0
  kill -0 "${SESSION_PID[$1]}" 2>/dev/null && return 1
  grep -qxF -- "$2" "$T/run-$1.out" 2>/dev/null && return 0
  fail "ssh session $1 ended while waiting for the line '$2'; its output:
$(tail -n 10 "$T/run-$1.out")
its stderr:
$(tail -n 10 "$T/run-$1.err")"
}

# session_expect NAME LINE SECONDS: wait until the session printed LINE (a
# whole line); fail after SECONDS or if the session ends first.
session_expect() {
  wait_until "$3" "the line '$2' from ssh session $1" _session_has "$1" "$2"
}

# session_echo NAME WORD SECONDS: send `echo WORD`, session_expect WORD.
session_echo() {
  session_send "$1" "echo $2"
  session_expect "$1" "$2" "$3"
}

# session_end NAME: close this shell's end of the session's stdin (the
# remote shell then reads EOF). Wait for it with wait_exit.
session_end() {
  local fd=${SESSION_FD[$1]:-}
  [[ -n $fd ]] || return 0
  exec {fd}>&-
  SESSION_FD[$1]=
}

# session_exit NAME SECONDS: session_send `exit`, session_end, wait_exit
# SECONDS for the ssh (1 if it still runs; else WAIT_RC).
session_exit() {
  session_send "$1" exit
  session_end "$1"
  wait_exit "${SESSION_PID[$1]}" "$2"
}
