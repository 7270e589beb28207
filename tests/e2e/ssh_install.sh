#!/usr/bin/env bash
#
# e2e ssh_install: `wsmux ssh config --install / --uninstall` on a
# ~/.ssh/config with Host blocks of its own, comments and odd spacing
# (HOME points into the test's directory):
#  - --install for a project writes the blocks of its SSH-enabled services
#    (not the disabled one, not the job) into ~/.ssh/wsmux.conf (0600) and
#    puts one Include line at the top of ~/.ssh/config: every other byte
#    and the mode stay; `ssh -G wsmux-P-S` resolves the ProxyCommand, the
#    other Host blocks resolve as before, and ssh connects through it;
#  - a second --install changes nothing (bytes and mtimes);
#  - --install of one service replaces its section only;
#  - --uninstall restores the original bytes and removes wsmux.conf;
#  - a symlinked ~/.ssh/config stays a symlink; a missing ~/.ssh is made;
#  - where a private mount namespace is possible: HOME is the passwd home,
#    the line is "Include ~/.ssh/wsmux.conf" and plain `ssh -G` finds it.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "s2 sshd" "off 127.0.0.1:1 service false" "job1 sshd job"
P=$E2E_PROJECT S1=$E2E_SSH_SERVICE U=$LOGIN_USER
export HOME=$T/home
mkdir -p "$HOME/.ssh"
chmod 700 "$HOME/.ssh"
CFG=$HOME/.ssh/config CONF=$HOME/.ssh/wsmux.conf
# Comments, tabs, trailing spaces, a CRLF line, no final newline.
printf '%s\n' '# my own config' '' 'Host foo' '    HostName 10.1.2.3' \
  $'\tUser bob   ' $'Host bar\r' '  # indented comment' '   Port   2200' '' >"$CFG"
printf 'Host *\n  ServerAliveInterval 30' >>"$CFG"
chmod 640 "$CFG"
cp -p "$CFG" "$T/config.orig"

# wsmux ARGS...: the CLI with the test's environment, bounded in time.
wsmux() { wsmux_bounded "$@"; }
# resolved HOST KEY: the value of KEY in `ssh -G HOST` with our config.
resolved() {
  ssh -F "$CFG" -G "$1" 2>/dev/null | sed -n "s/^$2 //p"
}

# --- install a project ------------------------------------------------------

wsmux ssh config --install --projectId "$P" --user "$U" --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" >"$T/i1.out" 2>"$T/i1.err" ||
  fail "--install: $(cat "$T/i1.err")"
grep -qxF "Host wsmux-$P-$S1, wsmux-$P-$S1-proxy: service $S1 of project $P" "$T/i1.out" &&
  grep -qxF "Host wsmux-$P-s2, wsmux-$P-s2-proxy: service s2 of project $P" "$T/i1.out" &&
  grep -qxF "$CONF: written" "$T/i1.out" &&
  grep -qxF "$CFG: added \"Include\" at the top" "$T/i1.out" ||
  fail "--install printed: $(cat "$T/i1.out" "$T/i1.err")"
# One line more, at the top; every other byte as it was; the mode kept.
[[ $(head -n 1 "$CFG") == "Include $CONF" ]] || fail "first line: $(head -n 1 "$CFG")"
cmp <(tail -n +2 "$CFG") "$T/config.orig" || fail "the rest of ~/.ssh/config changed"
[[ $(stat -c %a "$CFG") == 640 ]] || fail "the mode of ~/.ssh/config changed"
[[ $(stat -c %a "$CONF") == 600 ]] || fail "wsmux.conf is not 0600"
grep -c '^Host ' "$CONF" | grep -qx 4 || fail "wsmux.conf: $(cat "$CONF")"
! grep -qE "wsmux-$P-(off|job1)" "$CONF" || fail "a service without SSH was installed"
# ssh resolves ours and still resolves the others.
[[ $(resolved "wsmux-$P-$S1" proxycommand) == *"ssh service --projectId $P --serviceId $S1 --stdio --edge $EDGE_URL --ca $EDGE_CERT" ]] ||
  fail "ssh -G wsmux-$P-$S1: $(ssh -F "$CFG" -G "wsmux-$P-$S1" 2>&1 | grep -i proxycommand)"
[[ $(resolved "wsmux-$P-$S1" hostkeyalias) == "wsmux-$P-$S1" ]] || fail "no HostKeyAlias"
[[ $(resolved "wsmux-$P-s2-proxy" hostname) == 127.* ]] || fail "no HostName for -proxy"
[[ $(resolved foo hostname) == 10.1.2.3 && $(resolved foo user) == bob ]] ||
  fail "Host foo no longer resolves as before"
[[ $(resolved bar port) == 2200 ]] || fail "Host bar no longer resolves as before"
# And a real connection through the installed ProxyCommand (--stdio).
out=$(WSMUX_TOKEN=$EDGE_TOKEN timeout 60 ssh -F "$CFG" -i "$CLIENT_KEY" \
  -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
  -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
  "wsmux-$P-$S1" echo through-include 2>"$T/ssh.err") ||
  fail "ssh wsmux-$P-$S1: $(cat "$T/ssh.err")"
[[ $out == through-include ]] || fail "ssh printed '$out'"
log "--install of a project: two services, one Include line, ssh connects"

# --- a second install changes nothing ------------------------------------

cp -p "$CFG" "$T/config.1"
cp -p "$CONF" "$T/conf.1"
m1=$(stat -c %Y.%y "$CFG" "$CONF")
wsmux ssh config --install --projectId "$P" --user "$U" --edge "$EDGE_URL" \
  --ca "$EDGE_CERT" >"$T/i2.out" 2>"$T/i2.err" || fail "second --install: $(cat "$T/i2.err")"
cmp "$CFG" "$T/config.1" && cmp "$CONF" "$T/conf.1" || fail "a second --install changed a file"
[[ $(stat -c %Y.%y "$CFG" "$CONF") == "$m1" ]] || fail "a second --install rewrote a file"
grep -qxF "$CONF: unchanged" "$T/i2.out" && grep -qxF "$CFG: already includes it" "$T/i2.out" ||
  fail "second --install: $(cat "$T/i2.out")"
[[ $(grep -c "^Include " "$CFG") == 1 ]] || fail "the Include line is there twice"

# --- one service: only its section changes ----------------------------------

wsmux ssh config --install --projectId "$P" --serviceId s2 --user nobody \
  >"$T/i3.out" 2>"$T/i3.err" || fail "--install of s2: $(cat "$T/i3.err")"
[[ $(resolved "wsmux-$P-s2" user) == nobody ]] || fail "s2 was not replaced"
[[ $(resolved "wsmux-$P-$S1" user) == "$U" ]] || fail "$S1 changed with s2"
[[ $(grep -c "^# >>> wsmux $P/s2\$" "$CONF") == 1 ]] || fail "s2 twice: $(cat "$CONF")"
log "a second --install changes nothing; one service replaces its section only"

# --- uninstall: the original bytes --------------------------------------------

wsmux ssh config --uninstall --projectId "$P" --serviceId s2 >/dev/null ||
  fail "--uninstall of s2"
[[ -z $(resolved "wsmux-$P-s2" proxycommand) ]] || fail "s2 still installed"
[[ -n $(resolved "wsmux-$P-$S1" proxycommand) ]] || fail "$S1 went with s2"
wsmux ssh config --uninstall >"$T/u.out" 2>"$T/u.err" || fail "--uninstall: $(cat "$T/u.err")"
cmp "$CFG" "$T/config.orig" || fail "--uninstall did not restore ~/.ssh/config:
$(diff <(od -c "$T/config.orig") <(od -c "$CFG"))"
[[ $(stat -c %a "$CFG") == 640 ]] || fail "the mode of ~/.ssh/config changed"
[[ ! -e $CONF ]] || fail "wsmux.conf is still there"
grep -qxF "$CONF: removed (no block left)" "$T/u.out" &&
  grep -qxF "$CFG: removed \"Include\"" "$T/u.out" || fail "--uninstall printed: $(cat "$T/u.out")"
wsmux ssh config --uninstall >/dev/null 2>&1 || fail "a second --uninstall failed"
cmp "$CFG" "$T/config.orig" || fail "a second --uninstall changed ~/.ssh/config"
log "--uninstall: original bytes and mode back, wsmux.conf removed"

# --- a symlinked config; no ~/.ssh at all --------------------------------------

mkdir -p "$T/dotfiles"
mv "$CFG" "$T/dotfiles/ssh_config"
ln -s "$T/dotfiles/ssh_config" "$CFG"
wsmux ssh config --install --projectId "$P" --serviceId "$S1" >/dev/null ||
  fail "--install with a symlinked config"
[[ -L $CFG && $(head -n 1 "$T/dotfiles/ssh_config") == "Include $CONF" ]] ||
  fail "the symlinked config was replaced, not written through"
wsmux ssh config --uninstall >/dev/null || fail "--uninstall with a symlinked config"
[[ -L $CFG ]] && cmp "$T/dotfiles/ssh_config" "$T/config.orig" ||
  fail "the symlinked config was not restored"
mkdir "$T/home2"
HOME=$T/home2 wsmux ssh config --install --projectId "$P" --serviceId "$S1" \
  >/dev/null || fail "--install without ~/.ssh"
[[ $(stat -c %a "$T/home2/.ssh") == 700 && $(stat -c %a "$T/home2/.ssh/config") == 600 ]] ||
  fail "~/.ssh or its config not made private"
HOME=$T/home2 wsmux ssh config --uninstall >/dev/null || fail "--uninstall in home2"
[[ -z $(ls -A "$T/home2/.ssh") ]] || fail "left in ~/.ssh: $(ls -A "$T/home2/.ssh")"
log "a symlinked config stays one; a missing ~/.ssh is made 0700"

# --- HOME is the passwd home: "Include ~/.ssh/wsmux.conf" -----------------------

PWHOME=$(getent passwd "$(id -u)" | cut -d: -f6)
if unshare -m --propagation private true 2>/dev/null && [[ -d $PWHOME ]]; then
  mkdir -p "$T/home3/.ssh"
  cp -p "$T/config.orig" "$T/home3/.ssh/config"
  # In a private mount namespace, the test's home is mounted on the real
  # one: nothing outside the namespace sees it.
  unshare -m --propagation private env "${E2E_SAN_ENV[@]}" \
    WSMUX_BIN="$WSMUX_BIN" PWHOME="$PWHOME" H3="$T/home3" P="$P" S="$S1" \
    bash -c 'set -e
      mount --bind "$H3" "$PWHOME"
      export HOME=$PWHOME
      "$WSMUX_BIN" ssh config --install --projectId "$P" --serviceId "$S" >/dev/null
      head -n 1 "$HOME/.ssh/config"
      ssh -G "wsmux-$P-$S" | sed -n "s/^hostkeyalias //p"
      "$WSMUX_BIN" ssh config --uninstall >/dev/null' >"$T/tilde.out" 2>"$T/tilde.err" ||
    fail "the passwd home case: $(cat "$T/tilde.err")"
  [[ $(cat "$T/tilde.out") == "Include ~/.ssh/wsmux.conf"$'\n'"wsmux-$P-$S1" ]] ||
    fail "the passwd home case printed: $(cat "$T/tilde.out")"
  cmp "$T/home3/.ssh/config" "$T/config.orig" || fail "the passwd home case was not restored"
  log "HOME = the passwd home: \"Include ~/.ssh/wsmux.conf\", found by plain ssh -G"
else
  log "no private mount namespace here: the \"~\" form is covered by the unit tests only"
fi

log "PASS"
