#!/usr/bin/env bash
#
# e2e cli_conventions: the conventions every command of wsmux and
# wsmux-edge follows (README "Conventions", wsmux(1), wsmux-edge(8)):
#   - every command and subcommand: --help and -h exit 0 with its usage on
#     stdout and nothing on stderr; an unknown option exits 1 with
#     "wsmux: error: ..." on stderr and nothing on stdout. The commands
#     listed by the dispatchers' own help are all covered;
#   - --version of both programs;
#   - the docs follow the code: every command has its section in wsmux.1,
#     every option a usage string prints is in the man page and in the bash
#     completion, every exit code of cli/exitcode.h is in EXIT STATUS;
#   - each exit code 0-7 provoked for real against a real edge, errors on
#     stderr and nothing on stdout (the detailed cases live in
#     cli_admin.sh, auth_errors.sh and doctor.sh);
#   - colour: bold table headers and a red "error:" on a terminal (script(1)),
#     none with NO_COLOR set, with TERM=dumb or when not a terminal.
#
# The completion is sourced in subshells on purpose, so that it cannot
# touch this shell: nothing set there is meant to come back.
# shellcheck disable=SC2031
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

MAN1=$WSMUX_REPO/packaging/man/wsmux.1
MAN8=$WSMUX_REPO/packaging/man/wsmux-edge.8
COMPLETION=$WSMUX_REPO/packaging/bash-completion/wsmux
EXITCODE_H=$WSMUX_REPO/cli/exitcode.h

export XDG_CONFIG_HOME=$T/xdg XDG_RUNTIME_DIR=$T/run
mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
unset WSMUX_EDGE WSMUX_TOKEN NO_COLOR

# run NAME PROGRAM ARGS...: PROGRAM (wsmux or wsmux-edge) with stdin from
# /dev/null, bounded; RUN_RC, RUN_OUT, RUN_ERR (files).
run() {
  local name=$1 bin=$WSMUX_BIN
  [[ $2 == wsmux-edge ]] && bin=$WSMUX_EDGE_BIN
  shift 2
  RUN_OUT=$T/$name.out
  RUN_ERR=$T/$name.err
  E2E_SAN_LOGS+=("$RUN_ERR")
  RUN_RC=0
  env "${E2E_SAN_ENV[@]}" timeout -k 5 30 "$bin" "$@" </dev/null \
    >"$RUN_OUT" 2>"$RUN_ERR" || RUN_RC=$?
  ((RUN_RC != 124 && RUN_RC != 137)) || fail "$name: did not exit within 30 s"
  check_sanitizers "$RUN_ERR" || fail "$name: sanitizer report"
}

# expect_ok NAME: exit 0, something on stdout, nothing on stderr.
expect_ok() {
  ((RUN_RC == 0)) || fail "$1: exit $RUN_RC, want 0; stderr: $(cat "$RUN_ERR")"
  [[ -s $RUN_OUT ]] || fail "$1: nothing on stdout"
  [[ ! -s $RUN_ERR ]] || fail "$1: unexpected stderr: $(cat "$RUN_ERR")"
}

# expect_error NAME CODE PROG TEXT: exit CODE, "PROG: error: ...TEXT..." on
# stderr, nothing on stdout.
expect_error() {
  local name=$1 code=$2 prog=$3 text=$4
  ((RUN_RC == code)) ||
    fail "$name: exit $RUN_RC, want $code; stderr: $(cat "$RUN_ERR")"
  grep "^$prog: error: " "$RUN_ERR" | grep -qF -- "$text" ||
    fail "$name: no '$prog: error: ...$text...' on stderr: $(cat "$RUN_ERR")"
  [[ ! -s $RUN_OUT ]] || fail "$name: unexpected stdout: $(cat "$RUN_OUT")"
}

# --- every command: --help, -h, unknown option ------------------------------

# The dispatchers (their --help lists commands) and the leaf commands.
DISPATCHERS=("" project service "service ssh" ssh ssh-identity proxy)
LEAVES=(login "project list" "service list" "service ssh enable"
  "service ssh disable" "ssh service" "ssh config" "ssh doctor"
  "ssh-identity create" "ssh-identity list" "ssh-identity get"
  "ssh-identity update" "ssh-identity delete" "proxy list" "proxy stop"
  "proxy up" "proxy reload")

# Every command a dispatcher's help lists must be one of LEAVES/DISPATCHERS.
known=" ${DISPATCHERS[*]/%/,} ${LEAVES[*]/%/,} "
for g in "${DISPATCHERS[@]}"; do
  # shellcheck disable=SC2086 # the words of the group
  run help_list wsmux $g --help
  expect_ok "wsmux $g --help"
  while read -r cmd; do
    full="${g:+$g }$cmd"
    [[ $known == *" $full,"* ]] ||
      fail "'wsmux $g --help' lists '$cmd', which this test does not know: add it here, to wsmux.1 and to the completion"
  done < <(sed -n '/^commands:/,/^$/{s/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)*\)  .*/\1/p}' "$RUN_OUT")
done

for path in "${DISPATCHERS[@]}" "${LEAVES[@]}"; do
  words=()
  read -ra words <<<"$path"
  for h in --help -h; do
    run help wsmux "${words[@]}" "$h"
    expect_ok "wsmux $path $h"
    first=$(head -n 1 "$RUN_OUT")
    last=wsmux
    ((${#words[@]} == 0)) || last=${words[-1]}
    [[ $first == "usage: wsmux "* && $first == *"$last"* ]] ||
      fail "wsmux $path $h: first line is not its usage: $first"
  done
  # The whole usage of a leaf (later: its options must be documented).
  [[ -n $path ]] && cp "$RUN_OUT" "$T/usage-${path// /_}.txt"
  run unknown wsmux "${words[@]}" --no-such-option
  ((RUN_RC == 1)) || fail "wsmux $path --no-such-option: exit $RUN_RC, want 1"
  grep -q '^wsmux: error: .*--no-such-option' "$RUN_ERR" ||
    fail "wsmux $path --no-such-option: no error naming it: $(cat "$RUN_ERR")"
  [[ ! -s $RUN_OUT ]] ||
    fail "wsmux $path --no-such-option: unexpected stdout: $(cat "$RUN_OUT")"
done
log "--help, -h and unknown options: ${#DISPATCHERS[@]} dispatchers, ${#LEAVES[@]} commands"

for args in "" "authorized-keys"; do
  read -ra words <<<"$args"
  for h in --help -h; do
    run edge_help wsmux-edge "${words[@]}" "$h"
    expect_ok "wsmux-edge $args $h"
    grep -q '^usage: wsmux-edge' "$RUN_OUT" || fail "wsmux-edge $args $h: no usage"
  done
  run edge_unknown wsmux-edge "${words[@]}" --no-such-option
  # The error is followed by the usage, on stderr too.
  ((RUN_RC == 1)) || fail "wsmux-edge $args --no-such-option: exit $RUN_RC"
  grep -q '^wsmux-edge: error: .*--no-such-option' "$RUN_ERR" ||
    fail "wsmux-edge $args --no-such-option: stderr: $(cat "$RUN_ERR")"
  [[ ! -s $RUN_OUT ]] || fail "wsmux-edge $args --no-such-option: stdout: $(cat "$RUN_OUT")"
done
run edge_usage wsmux-edge --help
cp "$RUN_OUT" "$T/usage-edge.txt"

version=$(sed -n 's/^project(wsmux VERSION \([0-9.]*\).*/\1/p' "$WSMUX_REPO/CMakeLists.txt")
[[ -n $version ]] || fail "no version in CMakeLists.txt"
run version wsmux --version
expect_ok "wsmux --version"
[[ $(cat "$RUN_OUT") == "wsmux $version" ]] || fail "wsmux --version: $(cat "$RUN_OUT")"
run edge_version wsmux-edge --version
expect_ok "wsmux-edge --version"
[[ $(cat "$RUN_OUT") == "wsmux-edge $version" ]] ||
  fail "wsmux-edge --version: $(cat "$RUN_OUT")"
log "--version: $version"

# --- the docs follow the code ------------------------------------------------

# man_has FILE OPTION: the man page source names --OPTION (as \-\-option).
man_has() {
  local o=${2//-/\\-}
  grep -qF -- "$o" "$1"
}
# The command words of each ".SS" heading of wsmux.1 ("a|b" for two).
mapfile -t SECTIONS < <(sed -n 's/^\.SS "wsmux \(.*\)"$/\1/p' "$MAN1" |
  sed 's/\\-/-/g')
# has_section PATH: a heading starts with the words of PATH.
has_section() {
  local want line n i alt
  read -ra want <<<"$1"
  n=${#want[@]}
  for line in "${SECTIONS[@]}"; do
    read -ra got <<<"$line"
    ((${#got[@]} >= n)) || continue
    for ((i = 0; i < n - 1; i++)); do
      [[ ${got[i]} == "${want[i]}" ]] || continue 2
    done
    for alt in ${got[n - 1]//|/ }; do
      [[ $alt == "${want[n - 1]}" ]] && return 0
    done
  done
  return 1
}
# options_of USAGE_FILE: the options a usage defines: those of its
# synopsis (up to the first empty line) and of the lines that start with
# one; not those its prose mentions (of other commands).
options_of() {
  awk 'NR == 1, /^$/ { print; next } /^ +--[A-Za-z]/ { print $1 }' "$1" |
    grep -oE -- '--[A-Za-z][A-Za-z-]*' | sort -u
}
# offered WORDS...: what the completion offers for the last word of the
# command line WORDS, one per line (in a subshell: nothing leaks).
offered() {
  (
    # shellcheck disable=SC1090
    source "$COMPLETION"
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    if [[ $1 == wsmux-edge ]]; then _wsmux_edge; else _wsmux; fi
    printf '%s\n' "${COMPREPLY[@]}"
  )
}
for path in "${LEAVES[@]}"; do
  has_section "$path" || fail "wsmux.1 has no section for 'wsmux $path'"
  read -ra words <<<"$path"
  offered wsmux "${words[@]}" -- >"$T/offered.txt"
  usage=$T/usage-${path// /_}.txt
  for opt in $(options_of "$usage"); do
    man_has "$MAN1" "$opt" || fail "wsmux.1 does not describe $opt of 'wsmux $path'"
    grep -qxF -- "$opt" "$T/offered.txt" ||
      fail "the completion of 'wsmux $path --' does not offer $opt"
  done
done
{
  offered wsmux-edge --
  offered wsmux-edge authorized-keys --
  offered wsmux-edge migrate --
} >"$T/offered.txt"
for opt in $(options_of "$T/usage-edge.txt"); do
  man_has "$MAN8" "$opt" || fail "wsmux-edge.8 does not describe $opt"
  grep -qxF -- "$opt" "$T/offered.txt" ||
    fail "the completion of wsmux-edge does not offer $opt"
done
# Every exit code of cli/exitcode.h is in EXIT STATUS of wsmux.1.
status=$(sed -n '/^\.SH "EXIT STATUS"/,/^\.SH /p' "$MAN1")
codes=$(sed -n 's/^ *EXIT_[A-Z_]* = \([0-9]*\),.*/\1/p' "$EXITCODE_H")
[[ -n $codes ]] || fail "no exit codes found in $EXITCODE_H"
for c in $codes; do
  grep -qx "\.B $c" <<<"$status" || fail "wsmux.1 EXIT STATUS lacks code $c"
done
# Every top-level config key of docs/EDGE_CONFIG.md is in wsmux-edge.8.
# shellcheck disable=SC2016 # backquotes of Markdown, not of the shell
mapfile -t KEYS < <(sed -n '/^## Top level/,/^### /{s/^| `\([a-zA-Z]*\)` *|.*/\1/p}' \
  "$WSMUX_REPO/docs/EDGE_CONFIG.md")
((${#KEYS[@]} > 10)) || fail "no config keys found in docs/EDGE_CONFIG.md"
for key in "${KEYS[@]}"; do
  grep -qE "^\.BR? $key( |\$)" "$MAN8" || fail "wsmux-edge.8 does not describe config key $key"
done
log "man pages and completion cover every command, option, exit code and config key"

# --- exit codes 0-7 for real ----------------------------------------------

start_stack --no-keys --upstream none "nossh 127.0.0.1:1 service false"
CONN=(--edge "$EDGE_URL" --ca "$EDGE_CERT")
export WSMUX_TOKEN=$EDGE_TOKEN

# 0: data on stdout, nothing on stderr.
run code0 wsmux project list "${CONN[@]}"
expect_ok "exit 0"
grep -Eq '^p1 +Demo$' "$RUN_OUT" || fail "exit 0: project list: $(cat "$RUN_OUT")"
# 1: usage.
run code1 wsmux service list "${CONN[@]}"
expect_error "exit 1" 1 wsmux "--projectId is required"
# 2: no token anywhere.
unset WSMUX_TOKEN
run code2 wsmux project list "${CONN[@]}"
expect_error "exit 2" 2 wsmux "not logged in"
export WSMUX_TOKEN=$EDGE_TOKEN
# 3: an unknown service.
run code3 wsmux service ssh enable --projectId p1 --serviceId nosuch "${CONN[@]}"
expect_error "exit 3" 3 wsmux "not found"
# 4: nothing listens there.
closed=$(_freeport)
run code4 wsmux project list --edge "wss://127.0.0.1:$closed" --ca "$EDGE_CERT"
expect_error "exit 4" 4 wsmux "connect"
# 5: the proxy of a service with SSH disabled: no banner.
run code5 wsmux ssh service --projectId p1 --serviceId nossh --proxyOnly \
  --address 127.0.0.1 --port 0 "${CONN[@]}"
expect_error "exit 5" 5 wsmux "SSH is not enabled for service nossh"
# 6: the edge refuses an invalid key.
run code6 wsmux ssh-identity create --name bad --key "ssh-ed25519 @@@@" "${CONN[@]}"
expect_error "exit 6" 6 wsmux "(HTTP 400)"
# 7: doctor, the key is in no identity: the report is data (stdout).
ssh-keygen -q -t ed25519 -N '' -C conventions -f "$T/key"
run code7 wsmux ssh doctor --projectId p1 --serviceId "$E2E_SSH_SERVICE" \
  --key-file "$T/key.pub" "${CONN[@]}"
((RUN_RC == 7)) || fail "exit 7: doctor exited $RUN_RC: $(cat "$RUN_OUT" "$RUN_ERR")"
grep -q '^FAIL  key' "$RUN_OUT" || fail "exit 7: no FAIL line: $(cat "$RUN_OUT")"
log "exit codes 0-7 provoked, errors on stderr only"

# --- colour: only on a terminal, never with NO_COLOR or TERM=dumb ----------

ESC=$'\033'
# on_tty NAME CMD...: run CMD (wsmux with its args; $TTY_BIN instead of
# wsmux when set) in a pseudo-terminal (script(1)), its stdout and stderr
# both the terminal unless CMD redirects one; the terminal's bytes are in
# $T/NAME.tty.
on_tty() {
  local name=$1 cmd
  shift
  printf -v cmd '%q ' env "${E2E_SAN_ENV[@]}" "${TTY_BIN:-$WSMUX_BIN}" "$@"
  TTY_RC=0
  timeout -k 5 30 script -qefc "$cmd $TTY_REDIR" /dev/null \
    </dev/null >"$T/$name.tty" 2>&1 || TTY_RC=$?
  E2E_SAN_LOGS+=("$T/$name.tty")
}
TTY_REDIR=""
TERM=xterm on_tty bold project list "${CONN[@]}"
((TTY_RC == 0)) || fail "project list on a terminal: exit $TTY_RC: $(cat "$T/bold.tty")"
grep -qF "${ESC}[1mID${ESC}[0m" "$T/bold.tty" ||
  fail "no bold table header on a terminal: $(od -c "$T/bold.tty" | head)"
grep -q 'p1' "$T/bold.tty" || fail "no data on the terminal: $(cat "$T/bold.tty")"
TERM=xterm NO_COLOR='' on_tty bold_empty project list "${CONN[@]}"
grep -qF "${ESC}[1mID" "$T/bold_empty.tty" || fail "an empty NO_COLOR turned colour off"
TERM=xterm NO_COLOR=1 on_tty nocolor project list "${CONN[@]}"
TERM=dumb on_tty dumb project list "${CONN[@]}"
for f in nocolor dumb; do
  ((TTY_RC == 0)) || fail "$f: exit $TTY_RC"
  grep -q p1 "$T/$f.tty" || fail "$f: no data: $(cat "$T/$f.tty")"
  ! grep -qF "$ESC" "$T/$f.tty" || fail "$f: escape sequences written: $(od -c "$T/$f.tty" | head)"
done
! grep -qF "$ESC" "$T/code0.out" "$T/code1.err" ||
  fail "escape sequences written to a file"
# stderr on the terminal, stdout to a file: a red error:, nothing else.
TTY_REDIR=">$(printf %q "$T/err_tty.out")"
TERM=xterm on_tty err_tty service list
((TTY_RC == 1)) || fail "error on a terminal: exit $TTY_RC"
grep -qF "wsmux: ${ESC}[1;31merror:${ESC}[0m --projectId is required" "$T/err_tty.tty" ||
  fail "no red error: on a terminal: $(od -c "$T/err_tty.tty" | head)"
[[ ! -s $T/err_tty.out ]] || fail "error on a terminal: stdout: $(cat "$T/err_tty.out")"
TERM=xterm NO_COLOR=yes on_tty err_nocolor service list
grep -qF "wsmux: error: --projectId is required" "$T/err_nocolor.tty" ||
  fail "NO_COLOR: error line: $(cat "$T/err_nocolor.tty")"
! grep -qF "$ESC" "$T/err_nocolor.tty" || fail "NO_COLOR: escape sequences in the error"
# The same for the errors of ssh service, of --detach and of wsmux-edge.
# red_error NAME PROG TEXT: $T/NAME.tty has "PROG: error: TEXT", error: red.
red_error() {
  grep -qF "$2: ${ESC}[1;31merror:${ESC}[0m $3" "$T/$1.tty" ||
    fail "$1: no red error: $(od -c "$T/$1.tty" | head)"
}
TERM=xterm on_tty err_ssh ssh service --projectId p1 --serviceId s \
  --proxyOnly --stdio
red_error err_ssh wsmux "--proxyOnly and --stdio exclude each other"
# The log file cannot be opened: a directory is in its place.
mkdir -p "$XDG_RUNTIME_DIR/wsmux/p1.s.log"
TERM=xterm on_tty err_detach ssh service --projectId p1 --serviceId s \
  --proxyOnly --detach --address 127.0.0.1 --port 0 "${CONN[@]}"
((TTY_RC == 1)) || fail "err_detach: exit $TTY_RC"
red_error err_detach wsmux "cannot open the log file"
TERM=xterm TTY_BIN=$WSMUX_EDGE_BIN on_tty err_edge --no-such-option
red_error err_edge wsmux-edge "unknown option"
# stdout on the terminal, stderr to a file: the file gets no colour.
TTY_REDIR="2>$(printf %q "$T/err_file.err")"
TERM=xterm on_tty err_file service list
grep -q '^wsmux: error: --projectId is required' "$T/err_file.err" ||
  fail "stderr to a file: $(cat "$T/err_file.err")"
! grep -qF "$ESC" "$T/err_file.err" || fail "escape sequences in stderr redirected to a file"
log "colour only on a terminal, not with NO_COLOR or TERM=dumb"

log "PASS"
