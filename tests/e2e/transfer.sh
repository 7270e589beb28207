#!/usr/bin/env bash
#
# e2e transfer: bulk data through one proxy, checked byte for byte.
#  - scp upload and download of a 256 MiB random file (cmp);
#  - sftp -b batch put and get of the same file (cmp);
#  - rsync -a of a tree of 2000 small files in nested dirs plus one 32 MiB
#    file: push, pull back (diff -r), then a delta push after changing some
#    files (diff -r).
# The "remote" side is a directory under $T (sshd runs on this machine).
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack_with_proxy
U=$LOGIN_USER A=$PROXY_ADDR P=$PROXY_PORT
R=$T/remote
mkdir -p "$R"

# timed DESC COMMAND...: run COMMAND (already wrapped in timeout), log time.
timed() {
  local desc=$1 rc=0
  shift
  _now_ms
  local t0=$_NOW_MS
  "$@" || rc=$?
  ((rc == 0)) || fail "$desc failed (status $rc)"
  _now_ms
  log "$desc: $(((_NOW_MS - t0) / 1000)).$(((_NOW_MS - t0) % 1000 / 100)) s"
}

same() {
  cmp "$1" "$2" || fail "$1 and $2 differ"
}

head -c $((256 << 20)) /dev/urandom >"$T/big"

# scp (OpenSSH 9 speaks the SFTP protocol for scp by default).
timed "scp upload 256 MiB" timeout 300 scp "${SSH_OPTS[@]}" -q -P "$P" \
  "$T/big" "$U@$A:$R/big.scp"
same "$T/big" "$R/big.scp"
timed "scp download 256 MiB" timeout 300 scp "${SSH_OPTS[@]}" -q -P "$P" \
  "$U@$A:$R/big.scp" "$T/big.scp.down"
same "$T/big" "$T/big.scp.down"
rm -f "$R/big.scp" "$T/big.scp.down"

# sftp batch mode.
cat >"$T/sftp.batch" <<EOF
put $T/big $R/big.sftp
get $R/big.sftp $T/big.sftp.down
EOF
timed "sftp put+get 256 MiB" timeout 600 sftp "${SSH_OPTS[@]}" -q -P "$P" \
  -b "$T/sftp.batch" "$U@$A" >"$T/sftp.out"
same "$T/big" "$R/big.sftp"
same "$T/big" "$T/big.sftp.down"
rm -f "$T/big" "$R/big.sftp" "$T/big.sftp.down"

# A tree: 20 x 10 directories of 10 files (0..4 KiB, some empty), plus one
# 32 MiB random file. Built with shell builtins only (fast).
make_tree() {
  local root=$1 d s f pad
  for d in {0..19}; do
    for s in {0..9}; do
      mkdir -p "$root/d$d/s$s"
      for f in {0..9}; do
        if ((f == 0 && s % 3 == 0)); then
          : >"$root/d$d/s$s/f$f.txt"
          continue
        fi
        printf -v pad '%*s' $((RANDOM % 4096)) ''
        printf 'file d%s/s%s/f%s %s\n%s\n' "$d" "$s" "$f" "$RANDOM" "$pad" \
          >"$root/d$d/s$s/f$f.txt"
      done
    done
  done
  head -c $((32 << 20)) /dev/urandom >"$root/big.bin"
}
make_tree "$T/tree"
nfiles=$(find "$T/tree" -type f | wc -l)
((nfiles == 2001)) || fail "the test tree has $nfiles files, want 2001"

RSH="ssh ${SSH_OPTS[*]} -p $P"
timed "rsync push (2001 files, 32 MiB)" timeout 300 rsync -a -e "$RSH" \
  "$T/tree/" "$U@$A:$R/tree/"
diff -r "$T/tree" "$R/tree" >"$T/diff.log" ||
  fail "rsync push: trees differ: $(head -n 20 "$T/diff.log")"
timed "rsync pull" timeout 300 rsync -a -e "$RSH" \
  "$U@$A:$R/tree/" "$T/tree.back/"
diff -r "$T/tree" "$T/tree.back" >"$T/diff.log" ||
  fail "rsync pull: trees differ: $(head -n 20 "$T/diff.log")"

# Delta transfer: change some files, append to the big one, push again.
for d in {0..19}; do
  printf 'changed %s\n' "$RANDOM" >>"$T/tree/d$d/s1/f3.txt"
done
head -c $((1 << 20)) /dev/urandom >>"$T/tree/big.bin"
timed "rsync delta push" timeout 300 rsync -a -e "$RSH" \
  "$T/tree/" "$U@$A:$R/tree/"
diff -r "$T/tree" "$R/tree" >"$T/diff.log" ||
  fail "rsync delta push: trees differ: $(head -n 20 "$T/diff.log")"

assert_alive "$EDGE_PID" wsmux-edge
stop_proxy "$PROXY_PID" "$PROXY_ERR"
