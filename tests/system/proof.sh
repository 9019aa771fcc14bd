#!/usr/bin/env bash
# System tests of apply's proof of logging for narrow policies, against a
# real systemd (tests/system/sandbox.sh) running the kube-apiserver TEST
# STAND-IN, whose HTTPS port audits requests without credentials as a real
# apiserver does (401 with no user, or 403 as system:anonymous):
#
#   narrow     pods/exec only, one user's Secrets only (ResponseStarted
#              omitted), RBAC writes only: each applies with exit 0, no
#              rollback, well under verify_timeout; proof "probe" with the
#              probe's event in the log, or "process" with the warning for
#              the policy no request without credentials can match;
#              `check --probe` OK on each, CRITICAL once the log is deleted
#   noanon     --anonymous-auth=false: the probe gets 401 and its event has
#              no user, at stage ResponseStarted
#
# Usage: tests/system/proof.sh [SCENARIO...]   (default: all)
# Needs root and systemd-container.
set -euo pipefail

TAG=proof
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NARROW=/etc/kubernetes/narrow-policy.yaml
TIMEOUT=30

EXEC_POLICY='apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  resources:
  - group: ""
    resources: ["pods/exec", "pods/attach"]
- level: None
'
ALICE_POLICY='apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
  users: ["alice"]
  resources:
  - group: ""
    resources: ["secrets"]
  omitStages: ["ResponseStarted"]
- level: None
'
RBAC_POLICY='apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: RequestResponse
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
  resources:
  - group: "rbac.authorization.k8s.io"
- level: None
'

json_str() { grep -o "\"$1\": \"[a-z]*\"" <<<"$2" | sed 's/.*: "//; s/"$//' || true; }

# Applies POLICY (as policy.file) and checks the outcome: PROOF is the proof
# apply must report. Sets OUT to apply's JSON and SECS to its wall time.
apply_policy() {
	local name=$1 policy=$2 proof=$3 rc t0
	printf '%s' "$policy" >"$DIR/narrow.yaml"
	"$SB" put "$DIR" "$DIR/narrow.yaml" "$NARROW" 0600
	config "[policy]"$'\n'"file = \"$NARROW\""$'\n'"[apply]"$'\n'"verify_timeout = \"${TIMEOUT}s\""$'\n'
	t0=$(now)
	OUT=$(kn apply --format json 2>/dev/null) && rc=0 || rc=$?
	SECS=$(since "$t0")
	[[ $rc == 0 ]] || fail "$name: exit $rc, want 0: $OUT"
	grep -q '"rolled_back": false' <<<"$OUT" || fail "$name: rolled back: $OUT"
	[[ $(json_str proof "$OUT") == "$proof" ]] || fail "$name: proof $(json_str proof "$OUT"), want $proof: $OUT"
	awk -v s="$SECS" -v t="$TIMEOUT" 'BEGIN { exit !(s < t / 3) }' || fail "$name: apply took $SECS s of a ${TIMEOUT} s timeout"
	[[ $(flag_value "$(main_pid)" audit-policy-file) == "$POLICY" ]] || fail "$name: --audit-policy-file not effective"
}

# The log's events for kaudit-node's probes.
probe_events() { in_sb sh -c "grep -F 'kaudit-node-probe-' $LOG || true"; }

scenario_narrow() {
	boot kthw
	local ev out rc

	# pods/exec only: no regular traffic is recorded; the probe is.
	apply_policy exec "$EXEC_POLICY" probe
	ev=$(probe_events)
	[[ -n $ev ]] || fail "exec: no probe event in $LOG"
	grep -q '"subresource":"exec"' <<<"$ev" || fail "exec: the probe event is not on pods/exec: $ev"
	grep -q '"userAgent":"kaudit-node/[^"]* (probe)"' <<<"$ev" || fail "exec: the probe event lacks kaudit-node's user agent: $ev"
	grep -q '"username":"system:anonymous"' <<<"$ev" || fail "exec: anonymous auth is on (RBAC), want system:anonymous: $ev"
	[[ $(in_sb sh -c "grep -vc 'kaudit-node-probe-' $LOG" || true) == 0 ]] || fail "exec: events other than the probe's were recorded"
	out=$(kn check --probe 2>&1) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "exec: check --probe exit $rc: $out"
	grep -q '^\[OK\] probe: GET /api/v1/namespaces/default/pods/kaudit-node-probe-check-[0-9]*/exec (HTTP 403) was written to' <<<"$out" ||
		fail "exec: check --probe did not see its event: $out"
	grep -q '^\[OK\] log_age: .*a quiet log is normal' <<<"$out" || fail "exec: log_age is not information: $out"
	PASSED+=("pods/exec only: exit 0 in $SECS s, proof probe, the probe's event (system:anonymous, 403) in the log; check --probe OK")

	# alice's Secrets only, ResponseStarted omitted: no probe can match.
	apply_policy alice "$ALICE_POLICY" process
	grep -q 'no audit event proves the log: every rule that records anything names users or groups (alice)' <<<"$OUT" ||
		fail "alice: the warning does not say why: $OUT"
	out=$(kn check --probe 2>&1) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "alice: check --probe exit $rc: $out"
	grep -q '^\[OK\] probe: not probed: no request kaudit-node can send is recorded by this policy' <<<"$out" ||
		fail "alice: check --probe: $out"
	PASSED+=("alice's Secrets only: exit 0 in $SECS s, proof process with the warning naming why; check --probe OK (not probed)")

	# RBAC writes only.
	in_sb sh -c ": > $LOG"
	apply_policy rbac "$RBAC_POLICY" probe
	ev=$(probe_events)
	grep -q '"verb":"delete"' <<<"$ev" && grep -q '"apiGroup":"rbac.authorization.k8s.io"' <<<"$ev" ||
		fail "rbac: the probe event is not an RBAC write: $ev"
	out=$(kn check --probe 2>&1) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "rbac: check --probe exit $rc: $out"

	# The log deleted: the probe's event cannot appear where it is looked for.
	in_sb rm -f "$LOG"
	out=$(kn check --probe 2>&1) && rc=0 || rc=$?
	[[ $rc == 2 ]] || fail "check --probe with the log deleted: exit $rc, want 2: $out"
	grep -q '^\[CRITICAL\] probe: .* no event for it appeared in' <<<"$out" || fail "the probe is not CRITICAL: $out"
	PASSED+=("RBAC writes only: exit 0 in $SECS s, proof probe (an RBAC delete); check --probe OK, then CRITICAL with the log deleted")
}

scenario_noanon() {
	boot kthw
	local ev
	sed 's|--authorization-mode=Node,RBAC|--authorization-mode=Node,RBAC --anonymous-auth=false|' \
		"$SYSTEM_TESTS/units/kthw.service" >"$DIR/noanon.service"
	grep -q 'anonymous-auth=false' "$DIR/noanon.service" || fail "the unit template changed"
	"$SB" install-unit "$DIR" "$UNIT" "$DIR/noanon.service"
	in_sb systemctl restart "$UNIT"
	apply_policy exec "$EXEC_POLICY" probe
	ev=$(probe_events)
	grep -q '"stage":"ResponseStarted"' <<<"$ev" && grep -q '"user":{}' <<<"$ev" && grep -q '"code":401' <<<"$ev" ||
		fail "noanon: want a 401 event at ResponseStarted with no user: $ev"
	PASSED+=("--anonymous-auth=false: the probe got 401, its event has no user at ResponseStarted; exit 0 in $SECS s")
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(narrow noanon)
need_root
build
run_scenarios "${scenarios[@]}"
