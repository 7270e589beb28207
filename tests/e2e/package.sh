#!/usr/bin/env bash
#
# e2e package: `cpack -G DEB` on the build directory ($WSMUX_BUILD_DIR, set
# by ctest), then, on the package extracted with `dpkg -x` into a scratch
# root:
#   - control fields: name, version (the programs' own), section, maintainer,
#     and Depends (dpkg-shlibdeps' libraries plus the dlopen()ed
#     libwebsockets-evlib-uv);
#   - every expected file is there: both binaries, wsmux.1, wsmux-edge.8,
#     the completion (for both names), both systemd units, the example
#     edge.json;
#   - the extracted `wsmux --version` / `wsmux-edge --version` print the
#     package's version;
#   - both man pages render with `man -l` and groff without a warning, with
#     the version filled in;
#   - the units pass `systemd-analyze verify` (and the edge unit's
#     `security` exposure is at most 2.0, "OK"); the stop timeout is longer
#     than the example's drainTimeoutMs; no reload is claimed (the edge has
#     none). Skipped with a message without systemd-analyze;
#   - the completion passes `bash -n` and completes commands, options and
#     file names;
#   - the example edge.json loads as is (`wsmux-edge authorized-keys` reads
#     the whole config), then, with only its listener, certificate, state
#     file and token replaced, the extracted wsmux-edge serves the
#     extracted wsmux (`project list`), answers GET /metrics on its
#     metricsListen, and drains on SIGTERM with status 0.
#
# The completion is sourced in subshells on purpose, so that it cannot
# touch this shell: nothing set there is meant to come back.
# shellcheck disable=SC2031
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

BUILD=${WSMUX_BUILD_DIR:?the build directory}
[[ -f $BUILD/CPackConfig.cmake ]] ||
  fail "no $BUILD/CPackConfig.cmake: configure the build first"
for tool in cpack dpkg-deb dpkg-shlibdeps man groff jq; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done

# --- build and inspect the package -----------------------------------------

mkdir "$T/pkg"
(cd "$BUILD" && timeout 300 cpack -G DEB -B "$T/pkg") >"$T/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -n 30 "$T/cpack.log")"
debs=("$T"/pkg/*.deb)
if ((${#debs[@]} != 1)) || [[ ! -f ${debs[0]} ]]; then
  fail "want one .deb in $T/pkg, got: ${debs[*]}"
fi
DEB=${debs[0]}
log "built $(basename "$DEB")"

field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == wsmux ]] || fail "Package: $(field Package)"
[[ $(field Section) == net ]] || fail "Section: $(field Section)"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
[[ $(field Description) == *"multiplexed WebSocket"* ]] ||
  fail "Description: $(field Description)"
VERSION=$(field Version)
VERSION=${VERSION%+sanitize} # a sanitizer build marks its package
DEPENDS=$(field Depends)
for dep in libc6 libssl3 libuv1 libcjson1 libwebsockets17 \
  libwebsockets-evlib-uv; do
  [[ ", $DEPENDS," == *", $dep"[\ ,]* ]] ||
    fail "Depends lacks $dep: $DEPENDS"
done
log "Version $VERSION, Depends: $DEPENDS"

ROOT=$T/root
dpkg -x "$DEB" "$ROOT"
MAN1=$ROOT/usr/share/man/man1/wsmux.1
MAN8=$ROOT/usr/share/man/man8/wsmux-edge.8
COMPLETION=$ROOT/usr/share/bash-completion/completions/wsmux
EDGE_UNIT=$ROOT/usr/lib/systemd/system/wsmux-edge.service
PROXY_UNIT=$ROOT/usr/lib/systemd/user/wsmux-proxy@.service
EXAMPLE=$ROOT/usr/share/doc/wsmux/examples/edge.json
HAPROXY_EXAMPLE=$ROOT/usr/share/doc/wsmux/examples/haproxy-wsmux-edge.cfg
for f in "$MAN1" "$MAN8" "$COMPLETION" "${COMPLETION}-edge" "$EDGE_UNIT" \
  "$PROXY_UNIT" "$EXAMPLE" "$HAPROXY_EXAMPLE"; do
  [[ -f $f && -r $f ]] || fail "missing from the package: ${f#"$ROOT"}"
done
for b in wsmux wsmux-edge; do
  [[ -f $ROOT/usr/bin/$b && -x $ROOT/usr/bin/$b ]] ||
    fail "missing or not executable: /usr/bin/$b"
done
cmp -s "$HAPROXY_EXAMPLE" "$WSMUX_REPO/packaging/haproxy/wsmux-edge.cfg" ||
  fail "the packaged HAProxy example differs from packaging/haproxy/wsmux-edge.cfg"
cmp -s "$COMPLETION" "${COMPLETION}-edge" ||
  fail "the completions of wsmux and wsmux-edge differ"
log "all expected files are in the package"

# --- the programs ----------------------------------------------------------

# The extracted binaries use the system's libraries only.
run_bin() {
  env "${E2E_SAN_ENV[@]}" "$ROOT/usr/bin/$1" "${@:2}"
}
out=$(run_bin wsmux --version 2>"$T/v.err") || fail "wsmux --version failed"
[[ $out == "wsmux $VERSION" ]] || fail "wsmux --version: '$out', want 'wsmux $VERSION'"
[[ ! -s $T/v.err ]] || fail "wsmux --version wrote to stderr: $(cat "$T/v.err")"
out=$(run_bin wsmux-edge --version 2>"$T/v.err") ||
  fail "wsmux-edge --version failed"
[[ $out == "wsmux-edge $VERSION" ]] ||
  fail "wsmux-edge --version: '$out', want 'wsmux-edge $VERSION'"
[[ ! -s $T/v.err ]] || fail "wsmux-edge --version wrote to stderr: $(cat "$T/v.err")"
log "extracted binaries print version $VERSION"

# --- man pages -------------------------------------------------------------

for page in "$MAN1" "$MAN8"; do
  name=$(basename "$page")
  MANWIDTH=80 man --warnings -l "$page" >"$T/$name.txt" 2>"$T/$name.warn" ||
    fail "man -l $name failed: $(cat "$T/$name.warn")"
  [[ ! -s $T/$name.warn ]] || fail "man -l $name warns: $(cat "$T/$name.warn")"
  groff -ww -z -man "$page" 2>"$T/$name.groff" ||
    fail "groff $name failed: $(cat "$T/$name.groff")"
  [[ ! -s $T/$name.groff ]] || fail "groff warns on $name: $(cat "$T/$name.groff")"
  grep -q '@[A-Z_]*@' "$page" && fail "$name has an unsubstituted @VAR@"
  grep -q "wsmux $VERSION" "$T/$name.txt" || fail "$name does not show version $VERSION"
  for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
    grep -q "^$section\$" "$T/$name.txt" || fail "$name has no $section section"
  done
done
grep -q '^ENVIRONMENT$' "$T/wsmux.1.txt" || fail "wsmux.1 has no ENVIRONMENT"
for s in SIGNALS METRICS CONFIGURATION "AUTHORIZED KEYS"; do
  grep -q "^$s\$" "$T/wsmux-edge.8.txt" || fail "wsmux-edge.8 has no $s section"
done
log "man pages render without warnings"

# --- systemd units ---------------------------------------------------------

drain_ms=$(jq -e '.drainTimeoutMs' "$EXAMPLE") || fail "example: no drainTimeoutMs"
stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$EDGE_UNIT")
[[ -n $stop_s ]] || fail "wsmux-edge.service: no TimeoutStopSec in seconds"
((stop_s * 1000 > drain_ms)) ||
  fail "TimeoutStopSec=${stop_s}s is not above drainTimeoutMs=$drain_ms"
grep -q '^KillSignal=SIGTERM$' "$EDGE_UNIT" || fail "the edge unit does not stop with SIGTERM"
grep -q '^ExecReload=' "$EDGE_UNIT" && fail "the edge unit claims a reload the edge does not have"
for opt in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
  PrivateTmp=yes PrivateDevices=yes DynamicUser=yes \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
  SystemCallFilter=@system-service StateDirectory=wsmux-edge; do
  grep -qxF "$opt" "$EDGE_UNIT" || fail "the edge unit lacks $opt"
done
# The example's state file is where the unit lets the edge write.
[[ $(jq -r .stateFile "$EXAMPLE") == /var/lib/wsmux-edge/* ]] ||
  fail "example stateFile is outside StateDirectory /var/lib/wsmux-edge"

if command -v systemd-analyze >/dev/null; then
  # systemd-analyze checks that ExecStart exists: point it at the
  # extracted binaries. Nothing else is changed.
  mkdir -p "$T/units" "$T/xdg-runtime"
  chmod 700 "$T/xdg-runtime"
  for u in "$EDGE_UNIT" "$PROXY_UNIT"; do
    sed "s|/usr/bin/|$ROOT/usr/bin/|" "$u" >"$T/units/$(basename "$u")"
  done
  systemd-analyze verify --man=no "$T/units/wsmux-edge.service" \
    >"$T/verify.log" 2>&1 || fail "systemd-analyze verify wsmux-edge.service:
$(cat "$T/verify.log")"
  [[ ! -s $T/verify.log ]] || fail "systemd-analyze verify wsmux-edge.service warns:
$(cat "$T/verify.log")"
  XDG_RUNTIME_DIR=$T/xdg-runtime systemd-analyze verify --user --man=no \
    "$T/units/wsmux-proxy@.service" >"$T/verify-user.log" 2>&1 ||
    fail "systemd-analyze verify --user wsmux-proxy@.service:
$(cat "$T/verify-user.log")"
  [[ ! -s $T/verify-user.log ]] || fail "systemd-analyze verify wsmux-proxy@.service warns:
$(cat "$T/verify-user.log")"
  systemd-analyze security --offline=yes --threshold=20 \
    "$T/units/wsmux-edge.service" >"$T/security.log" 2>&1 ||
    fail "wsmux-edge.service exposure above 2.0: $(tail -n 1 "$T/security.log")"
  log "units verified; edge $(grep -o 'exposure level.*' "$T/security.log")"
else
  log "SKIP systemd-analyze checks: systemd-analyze is not installed"
fi
# shellcheck disable=SC2016 # systemd expands ${PROJECT}, not bash
grep -q '^ExecStart=/usr/bin/wsmux ssh service --projectId ${PROJECT} --serviceId ${SERVICE} --proxyOnly --quiet' \
  "$PROXY_UNIT" || fail "the proxy unit does not run a quiet --proxyOnly proxy from its env file"
grep -q '^Restart=on-failure$' "$PROXY_UNIT" || fail "the proxy unit is not restarted on failure"

# --- bash completion -------------------------------------------------------

bash -n "$COMPLETION" || fail "bash -n on the completion failed"
mkdir "$T/files"
touch "$T/files/ca.pem" "$T/files/cert.pem"
# complete CMDLINE...: COMPREPLY for the last word, in a fresh bash.
complete_words() {
  (
    cd "$T/files"
    # shellcheck disable=SC1090
    source "$COMPLETION"
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMPREPLY=()
    fn=$(complete -p "$1" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
    "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf '%s\n' "${COMPREPLY[@]}"
  )
}
expect_completion() {
  local want=$1 got
  shift
  got=$(complete_words "$@") || fail "completion of '$*' failed"
  grep -qxF -- "$want" <<<"$got" ||
    fail "completing '$*' does not offer '$want'; got: $(tr '\n' ' ' <<<"$got")"
}
expect_completion ssh-identity wsmux ""
expect_completion proxy wsmux pro
expect_completion service wsmux ssh s
expect_completion --proxyOnly wsmux ssh service --projectId p1 --pro
expect_completion --detach wsmux ssh service --d
expect_completion json wsmux project list --output ""
expect_completion debug wsmux ssh service --log-level d
expect_completion ca.pem wsmux login --ca c
expect_completion --clear-tags wsmux ssh-identity update alice --clear
expect_completion disable wsmux service ssh ""
expect_completion --all wsmux proxy stop --
expect_completion authorized-keys wsmux-edge ""
expect_completion --service wsmux-edge authorized-keys --config x --s
expect_completion cert.pem wsmux-edge --config ce
got=$(complete_words wsmux ssh service --projectId p -- -v)
[[ -z $got ]] || fail "completion after -- offers: $got"
log "completion: bash -n and smoke test pass"

# --- the example config ----------------------------------------------------

# Verbatim: authorized-keys loads and checks the whole config (and the
# state file, absent here) without starting anything.
run_bin wsmux-edge authorized-keys --config "$EXAMPLE" --project p1 \
  --service web >"$T/ak.out" 2>"$T/ak.err" ||
  fail "the example edge.json does not load: $(cat "$T/ak.err")"
log "the example edge.json loads as is"

# Served for real, with what must differ on a test machine replaced.
gen_cert
EDGE_TOKEN=wsmux-e2e-$(openssl rand -hex 16)
sha=$(printf '%s' "$EDGE_TOKEN" | sha256sum | cut -d' ' -f1)
EDGE_CONFIG=$T/edge.json
jq --arg cert "$EDGE_CERT" --arg key "$EDGE_KEY" --arg state "$T/state.json" \
  --arg sha "$sha" '
  .listen = "127.0.0.1:0" | .tls = {cert: $cert, key: $key}
  | .stateFile = $state | .drainTimeoutMs = 2000
  | .tokens = [{id: "test", sha256: $sha}]
  | if has("metricsListen") then .metricsListen = "127.0.0.1:0" else . end' \
  "$EXAMPLE" >"$EDGE_CONFIG"
WSMUX_EDGE_BIN=$ROOT/usr/bin/wsmux-edge start_edge
env "${E2E_SAN_ENV[@]}" XDG_CONFIG_HOME="$T/xdg" WSMUX_TOKEN="$EDGE_TOKEN" \
  timeout 30 "$ROOT/usr/bin/wsmux" project list --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" >"$T/projects.out" 2>"$T/projects.err" ||
  fail "the extracted wsmux cannot list projects: $(cat "$T/projects.err")"
E2E_SAN_LOGS+=("$T/projects.err")
grep -Eq '^p1 +Demo project$' "$T/projects.out" ||
  fail "project list: $(cat "$T/projects.out")"
# The example's metricsListen (moved to a free port) serves /metrics.
mline=$(grep -Em1 'wsmux-edge: metrics on http://127\.0\.0\.1:[0-9]+/metrics' "$EDGE_ERR") ||
  fail "the example config's metricsListen: no 'metrics on' line: $(cat "$EDGE_ERR")"
mport=${mline##*:}
mport=${mport%%/*}
exec {m}<>"/dev/tcp/127.0.0.1/$mport"
printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&"$m"
timeout 10 cat <&"$m" >"$T/metrics.txt" || true
exec {m}>&-
grep -q '^wsmux_edge_up 1' "$T/metrics.txt" ||
  fail "GET /metrics: $(head -c 600 "$T/metrics.txt")"
grep -q '^wsmux_edge_connections_total' "$T/metrics.txt" ||
  fail "GET /metrics: no wsmux_edge_connections_total"
stop_pid "$EDGE_PID" 20 || fail "wsmux-edge did not stop on SIGTERM"
((STOP_RC == 0)) || fail "wsmux-edge exited $STOP_RC after SIGTERM, want 0"
log "the extracted edge serves the example config and its metrics, and drains on SIGTERM"

log "PASS"
