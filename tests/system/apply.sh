#!/usr/bin/env bash
# System tests of `kaudit-node apply` and `remove` against a real systemd
# (PID 1 of a systemd-nspawn container, tests/system/sandbox.sh) running the
# kube-apiserver TEST STAND-IN (tests/standin) under real units.
#
# kaudit-node runs inside the container, as an operator runs it: its own
# /proc, its own system bus, its own files. Each scenario asserts exit codes,
# main PIDs, /proc/PID/cmdline, the audit log and the files on the node.
#
# Usage: tests/system/apply.sh [SCENARIO...]   (default: all)
# Needs root and systemd-container. Prints the figures it sees (time from
# restart to first event, wall time of a converged apply).
set -euo pipefail

TAG=system
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

node_hash() { in_sb sh -c "cat $DROPIN $POLICY /etc/logrotate.d/kaudit-node 2>/dev/null | sha256sum"; }

# --- scenarios ------------------------------------------------------------

scenario_kthw() {
	boot kthw
	local pid0 pid1 pid2 out t0 r0
	pid0=$(main_pid)

	# Fresh apply on the embedded defaults: changed, new PID, events, flags.
	out=$(kn apply --detailed-exitcodes --format json) && rc=0 || rc=$?
	[[ $rc == 2 ]] || fail "fresh apply: exit $rc, want 2 (changed): $out"
	pid1=$(main_pid)
	[[ $pid1 != "$pid0" && $pid1 != 0 ]] || fail "fresh apply: main PID $pid0 -> $pid1"
	[[ $(echo "$out" | grep -o '"new_main_pid": [0-9]*' | grep -o '[0-9]*$') == "$pid1" ]] || fail "report's new_main_pid is not $pid1: $out"
	FIGURES+=("kthw: first audit event $(echo "$out" | grep -o '"first_event_ms": [0-9]*' | grep -o '[0-9]*$') ms after the restart job")
	wait_events || fail "no audit event in $LOG"
	[[ $(flag_value "$pid1" audit-log-path) == "$LOG" ]] || fail "--audit-log-path is not effective in /proc/$pid1/cmdline"
	[[ $(flag_value "$pid1" audit-policy-file) == "$POLICY" ]] || fail "--audit-policy-file is not effective"
	[[ $(flag_value "$pid1" audit-log-maxbackup) == 10 ]] || fail "--audit-log-maxbackup is not 10"
	[[ $(cmdline "$pid1" | grep -c '^--audit-log-path') == 1 ]] || fail "duplicate --audit-log-path in the cmdline"
	grep -qx "$LOG" <<<"$(in_sb sh -c "readlink /proc/$pid1/fd/*" 2>/dev/null)" || fail "PID $pid1 does not hold $LOG open"

	# Apply again: converged. Same PID, no daemon-reload, exit 0.
	r0=$(reloads)
	t0=$(now)
	out=$(kn apply --detailed-exitcodes) && rc=0 || rc=$?
	FIGURES+=("converged apply wall time (inside the container): $(since "$t0") s")
	[[ $rc == 0 ]] || fail "second apply: exit $rc, want 0: $out"
	[[ $(main_pid) == "$pid1" ]] || fail "second apply restarted the apiserver"
	[[ $(reloads) == "$r0" ]] || fail "second apply reloaded systemd"
	out=$(kn plan) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "plan after apply: exit $rc, want 0: $out"

	# A configuration change: one restart, the new value effective.
	config $'[log]\nmaxage = 45\n'
	out=$(kn apply) || fail "apply with maxage = 45 failed: $out"
	pid2=$(main_pid)
	[[ $pid2 != "$pid1" ]] || fail "maxage change did not restart"
	[[ $(flag_value "$pid2" audit-log-maxage) == 45 ]] || fail "--audit-log-maxage=45 not effective"

	# An invalid policy: refused before anything changes.
	local before
	before=$(node_hash)
	in_sb sh -c 'mkdir -p /etc/kaudit-node && printf "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verb: [get]\n" > /etc/kaudit-node/policy.yaml'
	config $'[log]\nmaxage = 45\n[policy]\nfile = "/etc/kaudit-node/policy.yaml"\n'
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 65 ]] || fail "invalid policy: exit $rc, want 65: $out"
	grep -q 'unknown field "verb" (did you mean "verbs"?)' <<<"$out" || fail "invalid policy: message does not name the field: $out"
	[[ $(main_pid) == "$pid2" ]] || fail "invalid policy: the apiserver was restarted"
	[[ $(node_hash) == "$before" ]] || fail "invalid policy: files changed"

	# The apiserver fails with the new configuration: rolled back.
	in_sb sh -c "mkdir -p /etc/systemd/system/$UNIT.d && printf '[Service]\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-maxage=31\n' > /etc/systemd/system/$UNIT.d/10-test-fail.conf"
	config $'[log]\nmaxage = 31\n[apply]\nverify_timeout = "20s"\n'
	before=$(node_hash)
	out=$(kn apply --detailed-exitcodes 2>&1) && rc=0 || rc=$?
	[[ $rc == 6 ]] || fail "failing apiserver: exit $rc, want 6 (failed with changes): $out"
	grep -q 'rolled back' <<<"$out" || fail "failing apiserver: no rollback reported: $out"
	grep -qi 'exited\|restart job' <<<"$out" || fail "failing apiserver: the cause is not named: $out"
	[[ $(active) == active ]] || fail "failing apiserver: not active after the rollback"
	[[ $(flag_value "$(main_pid)" audit-log-maxage) == 45 ]] || fail "failing apiserver: not back on maxage 45"
	[[ $(node_hash) == "$before" ]] || fail "failing apiserver: the files were not restored"
	in_sb rm "/etc/systemd/system/$UNIT.d/10-test-fail.conf"
	in_sb systemctl daemon-reload
	config $'[log]\nmaxage = 45\n'

	# An admin drop-in that overrides ExecStart after ours: refused, no restart.
	local pid3
	pid3=$(main_pid)
	in_sb sh -c "printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/kube-apiserver --advertise-address=10.240.0.10 --v=4\n' > /etc/systemd/system/$UNIT.d/99-admin.conf"
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 65 ]] || fail "overriding drop-in: exit $rc, want 65: $out"
	grep -q '99-admin.conf: sets ExecStart= and sorts after' <<<"$out" || fail "overriding drop-in not named: $out"
	[[ $(main_pid) == "$pid3" ]] || fail "overriding drop-in: restarted"
	in_sb rm "/etc/systemd/system/$UNIT.d/99-admin.conf"

	# remove: vendor command line back, active, logs kept.
	out=$(kn remove) || fail "remove failed: $out"
	local pid4
	pid4=$(main_pid)
	[[ $(active) == active ]] || fail "remove: not active"
	[[ $pid4 != "$pid3" ]] || fail "remove: not restarted"
	[[ $(flag_value "$pid4" audit-log-path) == /var/log/audit.log ]] || fail "remove: not on the vendor command line"
	grep -q '^--audit-policy-file' <<<"$(cmdline "$pid4")" && fail "remove: --audit-policy-file still there"
	in_sb test ! -e "$DROPIN" || fail "remove: drop-in still there"
	in_sb test -s "$LOG" || fail "remove: the audit log was not kept"
	PASSED+=("kthw: fresh apply, converged no-op, config change, invalid policy refused, rollback, overriding drop-in refused, remove")
}

# remove, when things are not simple: the vendor command line does not come
# up (rolled back onto kaudit-node's configuration, never left down), and a
# policy the vendor command line uses (kept).
scenario_remove() {
	boot kthw
	local out rc pid hash
	out=$(kn apply 2>&1) || fail "apply: $out"
	wait_events || fail "no audit event after apply"
	# --dry-run: the removal plan, nothing changed.
	pid=$(main_pid)
	hash=$(node_hash)
	out=$(kn remove --dry-run 2>&1) || fail "remove --dry-run: $out"
	grep -q "^Removal plan for $UNIT" <<<"$out" || fail "remove --dry-run: no plan: $out"
	grep -q "^remove $DDIR/50-kaudit-node.conf: systemd drop-in" <<<"$out" || fail "remove --dry-run: the drop-in is not planned: $out"
	grep -q "^  restart $UNIT" <<<"$out" || fail "remove --dry-run: no restart planned: $out"
	[[ $(main_pid) == "$pid" && $(node_hash) == "$hash" ]] || fail "remove --dry-run changed the node"
	# The vendor's own flags now make the apiserver fail at start-up (the
	# running process does not see this drop-in until a restart).
	in_sb sh -c "printf '[Service]\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-path=/var/log/audit.log\n' >$DDIR/10-test-fail.conf"
	in_sb systemctl daemon-reload
	pid=$(main_pid)
	hash=$(node_hash)
	out=$(kn remove 2>&1) && rc=0 || rc=$?
	[[ $rc == 70 ]] || fail "remove onto a failing vendor command line: exit $rc, want 70: $out"
	grep -q 'FAILED at step "restart": .* on the vendor command line; ' <<<"$out" || fail "the failure is not reported: $out"
	grep -q '^  rolled back: the previous files are restored' <<<"$out" || fail "the rollback is not reported: $out"
	[[ $(active) == active ]] || fail "remove left the apiserver down"
	[[ $(main_pid) != "$pid" ]] || fail "not restarted after the rollback"
	[[ $(flag_value "$(main_pid)" audit-log-path) == "$LOG" ]] || fail "not back on kaudit-node's configuration"
	[[ $(node_hash) == "$hash" ]] || fail "kaudit-node's files were not put back"
	in_sb rm "$DDIR/10-test-fail.conf"
	in_sb systemctl daemon-reload

	# A policy the vendor command line uses: remove keeps it.
	in_sb sh -c "printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/kube-apiserver --advertise-address=10.240.0.10 --audit-policy-file=$POLICY --audit-log-path=/var/log/audit.log\n' >$DDIR/10-vendor.conf"
	out=$(kn apply 2>&1) || fail "apply with a vendor --audit-policy-file: $out"
	out=$(kn remove 2>&1) || fail "remove with a vendor --audit-policy-file: $out"
	grep -q "kept $POLICY: $UNIT's own command line uses it" <<<"$out" || fail "the kept policy is not reported: $out"
	in_sb test -s "$POLICY" || fail "remove deleted the policy the vendor command line uses"
	[[ $(active) == active ]] || fail "not active on the vendor command line"
	[[ $(flag_value "$(main_pid)" audit-policy-file) == "$POLICY" ]] || fail "the vendor command line does not run"
	PASSED+=("remove: --dry-run shows the removal plan and changes nothing; a vendor command line that fails is rolled back onto kaudit-node's configuration (exit 70, active); a policy the vendor command line uses is kept")
}

scenario_contrib() {
	boot contrib
	local out pid
	out=$(kn apply) || fail "contrib apply failed: $out"
	pid=$(main_pid)
	wait_events || fail "contrib: no audit event"
	[[ $(in_sb stat -c %U:%G "$(dirname $LOG)") == kube:kube ]] || fail "contrib: log directory not owned by kube"
	[[ $(in_sb stat -c %U "/proc/$pid") == kube ]] || fail "contrib: the apiserver does not run as kube"
	[[ $(flag_value "$pid" audit-log-path) == "$LOG" ]] || fail "contrib: flag not effective"
	PASSED+=("contrib (EnvironmentFile=, \$KUBE_API_ARGS, User=kube, Type=notify): apply, events written as kube")
}

scenario_hardened() {
	boot hardened
	local out
	out=$(kn apply) || fail "hardened apply failed: $out"
	wait_events || fail "hardened: no audit event"
	in_sb grep -qx "ReadWritePaths=$(dirname $LOG)" "$DROPIN" || fail "hardened: no ReadWritePaths= in the drop-in"
	PASSED+=("hardened (ProtectSystem=strict): apply adds ReadWritePaths=, events appear")
}

scenario_logrotate() {
	boot kthw
	config $'[log]\nrotation = "logrotate"\n'
	local out i
	out=$(kn apply) || fail "logrotate apply failed: $out"
	wait_events || fail "logrotate: no audit event"
	# logrotate skips a rule file that others can write or that root does not own.
	[[ $(in_sb stat -c '%a %U:%G' /etc/logrotate.d/kaudit-node) == "644 root:root" ]] ||
		fail "logrotate: the snippet is not 0644 root:root"
	# dateext names carry the second (-%s): one forced rotation per second.
	for ((i = 0; i < 5; i++)); do
		sleep 1.1
		in_sb logrotate -f /etc/logrotate.d/kaudit-node || fail "logrotate -f failed"
	done
	sleep 0.5
	# Every line of every file: a whole JSON event; no NUL bytes.
	in_sb cat "$LOG" >"$DIR/all.log"
	in_sb sh -c "zcat -f $(dirname $LOG)/audit.log-*" >>"$DIR/all.log" 2>/dev/null || true
	[[ $(tr -dc '\000' <"$DIR/all.log" | wc -c) == 0 ]] || fail "logrotate: NUL bytes in the log"
	local bad
	bad=$(grep -vc '^{"kind":"Event".*}$' "$DIR/all.log" || true)
	[[ $bad == 0 ]] || fail "logrotate: $bad torn or foreign lines"
	[[ $(in_sb sh -c "ls $(dirname $LOG) | grep -c '^audit.log-'") -ge 1 ]] || fail "logrotate: nothing rotated"
	local ids dups
	ids=$(grep -o '"auditID":"[^"]*"' "$DIR/all.log" | wc -l)
	dups=$(grep -o '"auditID":"[^"]*"' "$DIR/all.log" | sort | uniq -d | wc -l)
	[[ $dups == 0 ]] || fail "logrotate: $dups duplicated events"
	FIGURES+=("logrotate: 5 forced rotations, $ids events, 0 NUL bytes, 0 torn lines, 0 duplicates")
	PASSED+=("logrotate: real logrotate -f with copytruncate while the stand-in writes")
}

# --- main -----------------------------------------------------------------

need_root
build
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(kthw remove contrib hardened logrotate)
run_scenarios "${scenarios[@]}"
