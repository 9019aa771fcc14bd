#!/usr/bin/env bash
# System tests of what kaudit-node knows of the apiserver, against a real
# systemd (tests/system/sandbox.sh) running the kube-apiserver TEST STAND-IN:
#
#   ready        a changed apply returns only after /readyz answered 200
#   never_ready  /readyz never ready after the restart: rolled back, exit 6
#   unready      not ready before apply either: a warning, no rollback
#   identity     a unit running another program: refused, nothing written
#   pflag        --audit_log_path and --audit_log_maxbackup 1 in the vendor
#                line: removed and reported
#   version      a binary replaced by an older release: check WARNING with
#                both releases; a key that release lacks is refused
#
# Usage: tests/system/apiserver.sh [SCENARIO...]   (default: all)
# Needs root and systemd-container.
set -euo pipefail

TAG=apiserver
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN=/usr/local/bin/kube-apiserver
STANDIN_DROPIN=$DDIR/10-standin.conf

node_state() { in_sb sh -c "cat $DDIR/*.conf $POLICY 2>/dev/null | sha256sum"; }
json_num() { grep -o "\"$1\": [0-9]*" <<<"$2" | grep -o '[0-9]*$' || true; }

# The vendor's own drop-in setting the stand-in's environment (RELOAD=1:
# daemon-reload and restart now; otherwise systemd reads it at apply's reload).
standin_env() {
	printf '[Service]\nEnvironment=%s\n' "$1" >"$DIR/standin.conf"
	"$SB" put "$DIR" "$DIR/standin.conf" "$STANDIN_DROPIN" 0644
	if [[ ${RELOAD:-0} == 1 ]]; then
		in_sb systemctl daemon-reload
		in_sb systemctl restart "$UNIT"
	fi
}

# Seconds since midnight of HH:MM:SS.FRACTION: a klog header's time
# (`I1202 06:47:17.459978`; the stand-in logs in UTC) or `date -u +%T.%N`.
secs() { awk -F: '{ printf "%.6f\n", $1 * 3600 + $2 * 60 + $3 }' <<<"$1"; }

# --- scenarios ------------------------------------------------------------

scenario_ready() {
	boot kthw
	RELOAD=1 standin_env STANDIN_READY_AFTER=2s
	local pid0 out end first200 ready_ms event_ms
	pid0=$(main_pid)
	# The return time taken in the container, by the same clock as the stand-in's log.
	out=$(in_sb sh -c '/usr/local/sbin/kaudit-node apply --format json; echo "RETURNED $(date -u +%H:%M:%S.%N)"') ||
		fail "apply failed: $out"
	end=$(sed -n 's/^RETURNED //p' <<<"$out")
	[[ $(main_pid) != "$pid0" ]] || fail "apply did not restart"
	first200=$(in_sb journalctl -u "$UNIT" _PID="$(main_pid)" -o cat --no-pager |
		grep -F 'answered 200 for the first time' | head -1 | awk '{ print $2 }')
	[[ -n $first200 ]] || fail "the stand-in (PID $(main_pid)) never answered /readyz with 200"
	awk -v a="$(secs "$first200")" -v b="$(secs "$end")" 'BEGIN { exit !(a < b) }' ||
		fail "apply returned at $end, before the first 200 at $first200"
	ready_ms=$(json_num ready_ms "$out")
	event_ms=$(json_num first_event_ms "$out")
	[[ -n $ready_ms && -n $event_ms ]] || fail "no ready_ms or first_event_ms in the report: $out"
	((ready_ms >= event_ms + 1900)) || fail "ready_ms $ready_ms is not 2 s after the first event ($event_ms ms)"
	FIGURES+=("ready: first event ${event_ms} ms, ready ${ready_ms} ms after the restart job (STANDIN_READY_AFTER=2s); first 200 at $first200, apply returned at $end")
	PASSED+=("ready: a changed apply returns after the stand-in's first /readyz 200 ($first200 < $end), ready_ms $ready_ms")
}

scenario_never_ready() {
	boot kthw
	local out rc pid0
	kn apply >/dev/null || fail "first apply failed"
	pid0=$(main_pid)
	# The next process (the new configuration, and the rollback's) never gets ready.
	standin_env STANDIN_READY_AFTER=never
	config $'[log]\nmaxage = 31\n[apply]\nverify_timeout = "4s"\n'
	out=$(kn apply --detailed-exitcodes --format json 2>/dev/null) && rc=0 || rc=$?
	[[ $rc == 6 ]] || fail "exit $rc, want 6 (failed, changed, rolled back): $out"
	grep -q '"rolled_back": true' <<<"$out" || fail "not rolled back: $out"
	grep -q 'did not become ready within 4s' <<<"$out" || fail "the error does not say readiness: $out"
	grep -q 'did not answer ready within 4s after the rollback' <<<"$out" || fail "the rollback's wait is not reported: $out"
	[[ $(active) == active && $(main_pid) != "$pid0" ]] || fail "not active on a new PID after the rollback"
	[[ $(flag_value "$(main_pid)" audit-log-maxage) == 30 ]] || fail "the rollback did not restore maxage 30"
	PASSED+=("never_ready: /readyz never 200 after the restart: exit 6, rolled back to maxage 30, the rollback's readiness wait reported")
}

scenario_unready() {
	boot kthw
	RELOAD=1 standin_env STANDIN_READY_AFTER=never
	local out rc t0
	config $'[apply]\nverify_timeout = "3s"\n'
	t0=$(now)
	out=$(kn apply --format json 2>/dev/null) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "exit $rc, want 0 (not ready before either): $out"
	grep -q '"rolled_back": false' <<<"$out" || fail "rolled back: $out"
	grep -q 'it was not ready before apply either' <<<"$out" || fail "no warning: $out"
	grep -q '"ready_ms": null' <<<"$out" || fail "ready_ms is set: $out"
	[[ $(flag_value "$(main_pid)" audit-log-path) == "$LOG" ]] || fail "the new flags are not effective"
	PASSED+=("unready: an apiserver not ready before apply: exit 0 with a warning after $(since "$t0") s, not rolled back")
}

scenario_identity() {
	boot kthw
	local unit=atomic-openshift-master-api.service out rc before
	in_sb cp "$BIN" /usr/local/bin/openshift
	printf '[Service]\nExecStart=/usr/local/bin/openshift start master api --config=/etc/origin/master/master-config.yaml\n' >"$DIR/os.service"
	"$SB" install-unit "$DIR" "$unit" "$DIR/os.service"
	config "unit = \"$unit\""$'\n'
	before=$(in_sb sh -c "ls -a /etc/systemd/system/$unit.d /etc/kubernetes 2>&1; sha256sum /etc/systemd/system/$unit")
	for args in "apply" "apply --no-restart" "plan"; do
		# shellcheck disable=SC2086 # the words are the arguments
		out=$(kn $args 2>&1) && rc=0 || rc=$?
		[[ $rc == 65 ]] || fail "$args: exit $rc, want 65: $out"
		grep -q "$unit does not run kube-apiserver: the program is \"openshift\" (first argument \"start\") (/usr/local/bin/openshift)" <<<"$out" ||
			fail "$args: the message does not name the unit, the binary and what was found: $out"
	done
	[[ $(in_sb sh -c "ls -a /etc/systemd/system/$unit.d /etc/kubernetes 2>&1; sha256sum /etc/systemd/system/$unit") == "$before" ]] ||
		fail "files changed"
	PASSED+=("identity: a unit running openshift: apply, apply --no-restart and plan exit 65 naming unit and binary; nothing written")
}

scenario_pflag() {
	boot kthw
	local out pid
	sed 's|--audit-log-path=/var/log/audit.log|--audit_log_path=/var/log/old.log --audit_log_maxbackup 1|' \
		"$SYSTEM_TESTS/units/kthw.service" >"$DIR/pflag.service"
	grep -q 'audit_log_maxbackup 1' "$DIR/pflag.service" || fail "the unit template changed"
	"$SB" install-unit "$DIR" "$UNIT" "$DIR/pflag.service"
	in_sb systemctl restart "$UNIT"
	out=$(kn apply --format json 2>/dev/null) || fail "apply failed: $out"
	for w in '--audit_log_path=/var/log/old.log' '--audit_log_maxbackup 1'; do
		grep -qF "removed vendor flag $w" <<<"$out" || fail "$w is not reported: $out"
		in_sb grep -qxF "# removed-vendor-flag: $w" "$DROPIN" || fail "$w is not recorded in the drop-in header"
	done
	in_sb sh -c "grep -v '^#' $DROPIN" | grep -q 'audit_log' && fail "an underscore spelling is still in the drop-in's command line"
	pid=$(main_pid)
	[[ $(cmdline "$pid" | grep -c '^--audit[-_]log[-_]path') == 1 ]] || fail "more than one audit log path in /proc/$pid/cmdline"
	[[ $(flag_value "$pid" audit-log-maxbackup) == 10 ]] || fail "--audit-log-maxbackup is not 10"
	out=$(kn check 2>&1) || fail "check after apply: $out"
	PASSED+=("pflag: --audit_log_path and --audit_log_maxbackup 1 removed from the command line and reported; one log path in /proc/$pid/cmdline; check OK")
}

scenario_version() {
	boot kthw
	local out rc pid before
	out=$(kn apply --format json 2>/dev/null) || fail "first apply failed: $out"
	in_sb grep -q '^# kube-apiserver: v1.28.7-standin /usr/local/bin/kube-apiserver dev=' "$DROPIN" || fail "no identity in the drop-in header"
	pid=$(main_pid)
	# An "upgrade" to an older release: a new file (new inode) that reports v1.19.16.
	in_sb sh -c "echo v1.19.16 > $BIN.version && cp $BIN $BIN.new && mv $BIN.new $BIN"
	out=$(kn check 2>&1) && rc=0 || rc=$?
	[[ $rc == 1 ]] || fail "check: exit $rc, want 1 (WARNING): $out"
	grep -q "\[WARNING\] apiserver: $BIN changed since \`kaudit-node apply\`: v1.28.7-standin was recorded, v1.19.16-standin is on disk now, and PID $pid started before the change" <<<"$out" ||
		fail "check does not name both releases: $out"
	# A key that release cannot run: refused, naming the key and both versions.
	config $'[log]\ncompress = true\n'
	before=$(node_state)
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 78 ]] || fail "apply with log.compress on 1.19: exit $rc, want 78: $out"
	grep -q "log.compress: --audit-log-compress needs kube-apiserver ≥ 1.20; $UNIT runs v1.19.16-standin" <<<"$out" ||
		fail "the message does not name the key and the versions: $out"
	[[ $(node_state) == "$before" && $(main_pid) == "$pid" ]] || fail "apply changed the node"
	# Without that key: the new identity is recorded, systemd reloaded, no restart.
	config ''
	out=$(kn apply --format json 2>/dev/null) || fail "apply after the upgrade failed: $out"
	[[ $(main_pid) == "$pid" ]] || fail "recording the new identity restarted the apiserver"
	in_sb grep -q '^# kube-apiserver: v1.19.16-standin ' "$DROPIN" || fail "the new identity is not recorded"
	PASSED+=("version: binary replaced by v1.19.16: check WARNING naming both releases; log.compress refused (exit 78, nothing changed); the new identity recorded without a restart")
}

scenarios=("$@")
((${#scenarios[@]})) || scenarios=(ready never_ready unready identity pflag version)
need_root
build
run_scenarios "${scenarios[@]}"
