#!/usr/bin/env bash
#
# e2e doctor: `wsmux ssh doctor` names the first failing check, in order,
# with its exit code, and passes when ssh would work:
#   bad token -> 2; unknown project / service -> 3; a job -> 5;
#   SSH disabled -> 5; key in no identity -> 7; key only in identities that
#   exclude the service (other project; missing tags with matchAllTags) ->
#   7 naming the restriction; key in a matching identity -> 0, from
#   --key-file and from ssh-agent. The passing case is then confirmed by a
#   real ssh login through the proxy with an sshd whose keys come from
#   `wsmux-edge authorized-keys`.
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

start_stack "job1 127.0.0.1:1 job" "nossh sshd service false"

export WSMUX_EDGE=$EDGE_URL WSMUX_TOKEN=$EDGE_TOKEN
export XDG_CONFIG_HOME=$T/xdg
cli=(env "${E2E_SAN_ENV[@]}" "$WSMUX_BIN")

# doctor NAME CODE TEXT [ARGS...]: run doctor, check exit code and output.
doctor() {
  local name=$1 code=$2 text=$3 rc=0
  shift 3
  E2E_SAN_LOGS+=("$T/doctor-$name.err")
  timeout 60 "${cli[@]}" ssh doctor --ca "$EDGE_CERT" "$@" \
    >"$T/doctor-$name.out" 2>"$T/doctor-$name.err" || rc=$?
  ((rc == code)) || fail "doctor $name: exit $rc, want $code:" \
    "$(cat "$T/doctor-$name.out" "$T/doctor-$name.err")"
  grep -qF -- "$text" "$T/doctor-$name.out" ||
    fail "doctor $name: output lacks '$text': $(cat "$T/doctor-$name.out")"
  log "doctor $name: exit $rc: $(grep -m1 FAIL "$T/doctor-$name.out" || echo passed)"
}

P=$E2E_PROJECT S=$E2E_SSH_SERVICE
KEY=(--key-file "$CLIENT_KEY.pub")
WSMUX_TOKEN=wrong-token doctor bad_token 2 "FAIL  token" \
  --projectId "$P" --serviceId "$S" "${KEY[@]}"
doctor no_project 3 "FAIL  project" --projectId nope --serviceId "$S" "${KEY[@]}"
doctor no_service 3 "FAIL  service" --projectId "$P" --serviceId nope "${KEY[@]}"
doctor job 5 "SSH access is available for services only" \
  --projectId "$P" --serviceId job1 "${KEY[@]}"
doctor ssh_off 5 "FAIL  ssh: SSH is not enabled on nossh" \
  --projectId "$P" --serviceId nossh "${KEY[@]}"
doctor no_identity 7 "is in no SSH identity" \
  --projectId "$P" --serviceId "$S" "${KEY[@]}"

ident() {
  timeout 60 "${cli[@]}" ssh-identity "$1" --ca "$EDGE_CERT" "${@:2}" \
    >>"$T/ident.out" 2>>"$T/ident.err" ||
    fail "ssh-identity $*: $(cat "$T/ident.err")"
}
ident create --name other-project --key-file "$CLIENT_KEY.pub" \
  --project elsewhere
doctor other_project 7 "restricted to projects [elsewhere]" \
  --projectId "$P" --serviceId "$S" "${KEY[@]}"
ident create --name all-tags --key-file "$CLIENT_KEY.pub" --tag t1 --tag t9 \
  --match-all-tags
doctor all_tags 7 "needs all of the tags [t1, t9]; the service has [t1]" \
  --projectId "$P" --serviceId "$S" "${KEY[@]}"
ident update all-tags --no-match-all-tags
doctor any_tag 0 "all checks passed" --projectId "$P" --serviceId "$S" "${KEY[@]}"
grep -qF "key: in identity all-tags" "$T/doctor-any_tag.out" ||
  fail "doctor any_tag did not name the matching identity"

# From ssh-agent instead of --key-file.
eval "$(ssh-agent -s)" >/dev/null
track "$SSH_AGENT_PID" ssh-agent
ssh-add -q "$CLIENT_KEY" 2>/dev/null || fail "ssh-add failed"
doctor agent 0 "all checks passed" --projectId "$P" --serviceId "$S"
