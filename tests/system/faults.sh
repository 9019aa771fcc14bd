#!/usr/bin/env bash
# Fault tests of `kaudit-node apply` against a real systemd (tests/system/
# sandbox.sh) with the kube-apiserver TEST STAND-IN:
#
# - a crash (SIGKILL) at each step of apply, with kaudit-node built with the
#   `failpoints` feature (src/failpoint.rs): afterwards every file is whole
#   (old or new), the unit loads, the apiserver is active or restartable, and
#   the next apply converges;
# - the apiserver crash-looping into its start limit: rolled back, active;
# - the restart job outlasting the verify timeout: rolled back;
# - the system bus unavailable: refused before any change;
# - a full filesystem under /etc/kubernetes and under the log directory:
#   refused before any change, nothing half-written;
# - a filesystem filling up between two writes (after the preflight): the
#   real ENOSPC, the written file put back, no restart;
# - the apiserver failing on the new configuration while the policy's
#   filesystem is full: the rollback restores what it can and restarts;
# - an overriding drop-in appearing during apply: refused after the reload,
#   files put back, no restart;
# - 10 concurrent applies: serialized, exactly one restart;
# - a run killed while holding the lock: the next one is not blocked;
# - not root: refused before any action; modes and owners of everything written.
#
# Usage: tests/system/faults.sh [SCENARIO...]   (default: all). Needs root.
set -euo pipefail

TAG=faults
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

knf() { in_sb env KAUDIT_FAILPOINT="$1" /usr/local/sbin/kaudit-node-failpoints "${@:2}"; }
starts() { in_sb journalctl -u "$UNIT" --no-pager -o cat 2>/dev/null | grep -c '^Started ' || true; }
files_hash() { in_sb sh -c "cat $DROPIN $POLICY 2>/dev/null | sha256sum"; }
leftovers() { in_sb sh -c "find /etc/systemd/system /etc/kubernetes $LOGDIR -name '.*.kaudit-node-*.tmp' 2>/dev/null | wc -l"; }

# lib.sh's boot, plus the failpoint build beside the normal one.
boot_fp() {
	boot "$1"
	"$SB" put "$DIR" "$FP_BIN" /usr/local/sbin/kaudit-node-failpoints 0755
}

# Starts `apply` (the failpoint build) in the background with POINT=wait and
# returns once it waits there, for the test to change the world;
# `fp_resume` lets it go on, waits for it, and sets FP_OUT to its output
# and FP_RC to its exit code.
fp_stop_at() {
	local i
	FP_POINT=$1
	in_sb rm -f "/run/kaudit-node-failpoint.$FP_POINT" /run/fp.out
	in_sb sh -c "KAUDIT_FAILPOINT=$FP_POINT=wait /usr/local/sbin/kaudit-node-failpoints apply >/run/fp.out 2>&1; echo \$? >>/run/fp.out" &
	FP_WAITER=$!
	for ((i = 0; i < 300; i++)); do
		in_sb test -e "/run/kaudit-node-failpoint.$FP_POINT" && return 0
		sleep 0.05
	done
	fail "apply never reached $FP_POINT: $(in_sb cat /run/fp.out)"
}
fp_resume() {
	in_sb rm "/run/kaudit-node-failpoint.$FP_POINT"
	wait "$FP_WAITER" || true
	FP_OUT=$(in_sb cat /run/fp.out)
	FP_RC=${FP_OUT##*$'\n'}
	FP_OUT=${FP_OUT%$'\n'*}
}

# After a fault is repaired: the next apply converges, the apiserver
# running with --audit-log-maxage=AGE. WHAT names the repair.
assert_converges() {
	local age=$1 what=$2 out
	out=$(kn apply 2>&1) || fail "apply after $what: $out"
	[[ $(flag_value "$(main_pid)" audit-log-maxage) == "$age" ]] || fail "the next apply after $what did not converge"
}

# The node is whole: no temporary file left, the unit with whatever drop-in
# is there loads, the policy there validates, and the apiserver is active or
# starts.
assert_whole() {
	[[ $(leftovers) == 0 ]] || fail "temporary files left behind"
	in_sb systemd-analyze verify --man=no "$UNIT" >/dev/null 2>&1 || fail "the unit does not load: $(in_sb systemd-analyze verify --man=no "$UNIT" 2>&1)"
	if in_sb test -e "$POLICY"; then
		kn policy validate "$POLICY" >/dev/null || fail "the installed policy does not validate"
	fi
	if [[ $(active) != active ]]; then
		in_sb systemctl daemon-reload
		in_sb systemctl restart "$UNIT" || fail "the apiserver is neither active nor restartable"
	fi
}

scenario_crash() {
	boot_fp kthw
	local point age=31 out rc before
	for point in after-backup between-writes after-reload restart-job first-event; do
		config "[log]
maxage = $age
"
		before=$(files_hash)
		out=$(knf "$point" apply 2>&1) && rc=0 || rc=$?
		[[ $rc == 137 ]] || fail "$point: the failpoint did not kill apply (exit $rc): $out"
		assert_whole
		# Each file is either the old one or the new one: the drop-in names
		# either no maxage of ours or the new one, never a mix of lines.
		if [[ $(files_hash) != "$before" ]] && in_sb test -e "$DROPIN"; then
			in_sb grep -q -- "--audit-log-maxage=$age" "$DROPIN" || in_sb grep -q -- "--audit-log-maxage=$((age - 1))" "$DROPIN" ||
				fail "$point: the drop-in is neither the old nor the new one"
		fi
		out=$(kn apply 2>&1) || fail "$point: the next apply failed: $out"
		out=$(kn apply --detailed-exitcodes 2>&1) && rc=0 || rc=$?
		[[ $rc == 0 ]] || fail "$point: not converged after the next apply (exit $rc): $out"
		[[ $(in_sb sh -c "tr '\\0' '\\n' </proc/$(main_pid)/cmdline | grep -c -- --audit-log-maxage=$age") == 1 ]] ||
			fail "$point: the apiserver does not run with maxage $age"
		age=$((age + 1))
	done
	PASSED+=("crash at after-backup, between-writes, after-reload, restart-job, first-event: whole files, unit loads, apiserver active, next apply converges")
}

scenario_startlimit() {
	boot kthw
	kn apply >/dev/null || fail "first apply"
	in_sb sh -c "printf '[Service]\nRestart=always\nRestartSec=100ms\nStartLimitBurst=3\nStartLimitIntervalSec=60\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-maxage=40\n' > $DDIR/10-test.conf"
	in_sb systemctl daemon-reload
	config $'[log]\nmaxage = 40\n[apply]\nverify_timeout = "15s"\n'
	local out rc t0
	t0=$(date +%s%N)
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 70 ]] || fail "exit $rc, want 70: $out"
	grep -q 'rolled back' <<<"$out" || fail "no rollback: $out"
	[[ $(active) == active ]] || fail "not active after the rollback"
	FIGURES+=("crash-looping apiserver with StartLimitBurst=3: rolled back and active in $((($(date +%s%N) - t0) / 1000000)) ms")
	in_sb rm "$DDIR/10-test.conf"
	in_sb systemctl daemon-reload
	PASSED+=("apiserver crash-looping into its start limit: rolled back (reset-failed), active on the previous configuration")
}

scenario_jobtimeout() {
	boot kthw
	kn apply >/dev/null || fail "first apply"
	in_sb sh -c "printf '[Service]\nExecStartPre=/bin/sleep 4\n' > $DDIR/10-slow.conf"
	in_sb systemctl daemon-reload
	config $'[log]\nmaxage = 41\n[apply]\nverify_timeout = "2s"\n'
	local out rc
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 70 ]] || fail "exit $rc, want 70: $out"
	grep -q 'ended with "timeout"' <<<"$out" || fail "the job timeout is not named: $out"
	grep -q 'rolled back' <<<"$out" || fail "no rollback: $out"
	[[ $(active) == active ]] || fail "not active after the rollback"
	in_sb rm "$DDIR/10-slow.conf"
	in_sb systemctl daemon-reload
	PASSED+=("restart job outlasting verify_timeout: named, rolled back, active")
}

scenario_nobus() {
	boot kthw
	local before out rc
	before=$(files_hash)
	out=$(in_sb env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent /usr/local/sbin/kaudit-node apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 69 ]] || fail "exit $rc, want 69: $out"
	grep -q 'cannot reach systemd on the system bus' <<<"$out" || fail "message: $out"
	[[ $(files_hash) == "$before" ]] || fail "files changed"
	PASSED+=("system bus unavailable: exit 69 before any change")
}

scenario_diskfull() {
	boot kthw
	local before out rc pid
	pid=$(main_pid)
	# /etc/kubernetes on a 64 KiB filesystem, filled.
	in_sb sh -c 'mkdir -p /etc/kubernetes && mount -t tmpfs -o size=64k tmpfs /etc/kubernetes && (dd if=/dev/zero of=/etc/kubernetes/fill bs=4k 2>/dev/null || true)'
	before=$(files_hash)
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 74 ]] || fail "/etc full: exit $rc, want 74: $out"
	grep -q 'the filesystem of /etc/kubernetes has' <<<"$out" || fail "/etc full: message: $out"
	[[ $(files_hash) == "$before" && $(leftovers) == 0 && $(main_pid) == "$pid" ]] || fail "/etc full: the node changed"
	in_sb umount /etc/kubernetes
	# The log directory on a full 1 MiB filesystem.
	in_sb sh -c "mkdir -p $LOGDIR && mount -t tmpfs -o size=1m tmpfs $LOGDIR && (dd if=/dev/zero of=$LOGDIR/fill bs=4k 2>/dev/null || true)"
	out=$(kn apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 74 ]] || fail "log full: exit $rc, want 74: $out"
	grep -q "the filesystem of $LOGDIR has" <<<"$out" || fail "log full: message: $out"
	[[ $(files_hash) == "$before" && $(leftovers) == 0 && $(main_pid) == "$pid" ]] || fail "log full: the node changed"
	in_sb umount "$LOGDIR"
	PASSED+=("full filesystem under /etc/kubernetes and under the log directory: exit 74, nothing written, no restart")
}

# The filesystem fills up after the preflight, while apply writes: the
# first file (the policy) is written, then the drop-in's filesystem (a small
# tmpfs mounted on the drop-in directory) is filled before the drop-in is
# written. The real write fails with ENOSPC; apply must put the policy back,
# leave the drop-in as it was, and never restart.
scenario_enospc() {
	boot_fp kthw
	local pid out rc policy0 dropin0 r0
	in_sb sh -c "mkdir -p $DDIR && mount -t tmpfs -o size=256k,mode=0755 kaudit-dropins $DDIR"
	out=$(kn apply 2>&1) || fail "first apply: $out"
	pid=$(main_pid)
	policy0=$(in_sb sh -c "sha256sum <$POLICY; stat -c '%a %U:%G' $POLICY")
	dropin0=$(in_sb sh -c "sha256sum <$DROPIN; stat -c '%a %U:%G %i' $DROPIN")
	r0=$(reloads)
	config $'[log]\nmaxage = 45\n[policy]\npreset = "cis"\n'
	fp_stop_at between-writes
	[[ $(in_sb sh -c "sha256sum <$POLICY; stat -c '%a %U:%G' $POLICY") != "$policy0" ]] || fail "the policy was not the first file written"
	in_sb sh -c "dd if=/dev/zero of=$DDIR/filler bs=4k 2>/dev/null || true"
	fp_resume
	out=$FP_OUT rc=$FP_RC
	[[ $rc == 74 ]] || fail "disk full while writing: exit $rc, want 74: $out"
	grep -q "$DROPIN.*No space left on device" <<<"$out" || fail "the message does not name the drop-in and ENOSPC: $out"
	grep -qi 'rolled back\|restored' <<<"$out" || fail "no rollback reported: $out"
	[[ $(in_sb sh -c "sha256sum <$POLICY; stat -c '%a %U:%G' $POLICY") == "$policy0" ]] || fail "the policy was not put back"
	[[ $(in_sb sh -c "sha256sum <$DROPIN; stat -c '%a %U:%G %i' $DROPIN") == "$dropin0" ]] || fail "the drop-in changed"
	[[ $(leftovers) == 0 ]] || fail "temporary files left behind"
	[[ $(main_pid) == "$pid" && $(active) == active ]] || fail "the apiserver was restarted or stopped"
	[[ $(reloads) == "$r0" ]] || fail "systemd was reloaded although it never saw a new file"
	# Space again: the next apply converges on the new configuration.
	in_sb rm "$DDIR/filler"
	assert_converges 45 "freeing space"
	PASSED+=("filesystem full after the preflight, between two writes: real ENOSPC on the drop-in, exit 74, the policy put back, the drop-in untouched, no reload, no restart; the next apply converges")
}

# Two faults at once: the apiserver fails on the new configuration, and
# the filesystem of the policy is full when the rollback must put the old
# policy back. The rollback restores what it can (the drop-in), still
# reloads and restarts, and says what it could not restore: the apiserver
# is back up on the old command line (with the new, valid, policy).
scenario_doublefault() {
	boot_fp kthw
	local out rc
	in_sb sh -c "mkdir -p /etc/kubernetes && mount -t tmpfs -o size=256k,mode=0755 kaudit-policy /etc/kubernetes"
	out=$(kn apply 2>&1) || fail "first apply: $out"
	in_sb sh -c "printf '[Service]\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-maxage=47\n' >$DDIR/10-test-fail.conf"
	in_sb systemctl daemon-reload
	config $'[log]\nmaxage = 47\n[policy]\npreset = "cis"\n[apply]\nverify_timeout = "20s"\n'
	fp_stop_at after-reload
	in_sb sh -c "dd if=/dev/zero of=/etc/kubernetes/filler bs=4k 2>/dev/null || true"
	fp_resume
	out=$FP_OUT rc=$FP_RC
	[[ $rc != 0 ]] || fail "apply succeeded: $out"
	grep -q "ROLLBACK INCOMPLETE: $POLICY: .*No space left on device.*; $UNIT is active again (main PID [0-9]*)" <<<"$out" ||
		fail "the incomplete rollback is not reported: $out"
	[[ $(active) == active ]] || fail "the apiserver was left down"
	[[ $(flag_value "$(main_pid)" audit-log-maxage) == 30 ]] || fail "not back on the previous command line (maxage $(flag_value "$(main_pid)" audit-log-maxage))"
	[[ $(leftovers) == 0 ]] || fail "temporary files left behind"
	# Space again, the cause fixed: the next apply converges.
	in_sb rm /etc/kubernetes/filler "$DDIR/10-test-fail.conf"
	in_sb systemctl daemon-reload
	assert_converges 47 "the repair"
	PASSED+=("the apiserver failing on the new configuration and the policy's filesystem full during the rollback: the drop-in put back, reloaded, restarted, active on the previous command line; the unrestorable policy named (ROLLBACK INCOMPLETE); the next apply converges")
}

# An admin's drop-in that overrides ExecStart appears while apply runs
# (after its plan, before its reload): systemd's effective ExecStart after
# the reload is not kaudit-node's, so apply refuses to restart, puts its
# files back and reloads again. The apiserver is never restarted: a restart
# would start it on the admin's command line, not on the previous one.
scenario_latedropin() {
	boot_fp kthw
	local pid out rc hash0 r0
	out=$(kn apply 2>&1) || fail "first apply: $out"
	pid=$(main_pid)
	hash0=$(files_hash)
	r0=$(reloads)
	config $'[log]\nmaxage = 46\n'
	fp_stop_at after-backup
	in_sb sh -c "printf '[Service]\nExecStart=\nExecStart=/usr/local/bin/kube-apiserver --advertise-address=10.240.0.10 --v=4\n' >$DDIR/99-late.conf"
	fp_resume
	out=$FP_OUT rc=$FP_RC
	[[ $rc == 65 ]] || fail "late drop-in: exit $rc, want 65: $out"
	grep -q "99-late.conf); not restarting" <<<"$out" || fail "the message does not name the late drop-in: $out"
	grep -q 'rolled back: .*the apiserver was not restarted' <<<"$out" || fail "the rollback is not reported as such: $out"
	[[ $(main_pid) == "$pid" && $(active) == active ]] || fail "the apiserver was restarted (onto the admin's command line)"
	[[ $(files_hash) == "$hash0" ]] || fail "kaudit-node's files were not put back"
	[[ $(($(reloads) - r0)) == 2 ]] || fail "want 2 daemon-reloads (apply's, the rollback's), got $(($(reloads) - r0))"
	# The admin removes the drop-in: the next apply converges.
	in_sb rm "$DDIR/99-late.conf"
	assert_converges 46 "removing the late drop-in"
	PASSED+=("an overriding drop-in appearing during apply: refused after the reload (exit 65, named), files put back and reloaded, the apiserver not restarted; the next apply converges")
}

scenario_concurrent() {
	boot kthw
	local s0 i rc=0 pids=()
	s0=$(starts)
	for ((i = 0; i < 10; i++)); do
		kn apply >"$DIR/run-$i.out" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || {
			rc=$?
			cat "$DIR/run-$i.out" >&2
			fail "concurrent apply $i failed (exit $rc)"
		}
	done
	[[ $(($(starts) - s0)) == 1 ]] || fail "$(($(starts) - s0)) restarts, want exactly 1"
	[[ $(grep -l 'changed\.' "$DIR"/run-*.out | wc -l) == 1 ]] || fail "not exactly one run changed the node"
	assert_whole
	kn apply --detailed-exitcodes >/dev/null || fail "not converged after the concurrent runs"
	PASSED+=("10 concurrent applies: serialized by the lock, exactly one restart, one run reports the change")
}

scenario_stalelock() {
	boot_fp kthw
	local t0 out
	in_sb sh -c 'KAUDIT_FAILPOINT=after-lock=sleep /usr/local/sbin/kaudit-node-failpoints apply >/dev/null 2>&1 & echo $! > /run/holder.pid'
	sleep 1
	# shellcheck disable=SC2016 # expanded by the container's sh
	in_sb sh -c 'kill -9 "$(cat /run/holder.pid)"'
	t0=$(date +%s%N)
	out=$(in_sb timeout 30 /usr/local/sbin/kaudit-node apply 2>&1) || fail "apply after a killed holder failed: $out"
	FIGURES+=("apply after a run killed while holding the lock: done in $((($(date +%s%N) - t0) / 1000000)) ms")
	PASSED+=("a run killed holding the lock does not block the next one")
}

scenario_security() {
	boot contrib
	local out rc
	out=$(in_sb setpriv --reuid=65534 --regid=65534 --clear-groups /usr/local/sbin/kaudit-node apply 2>&1) && rc=0 || rc=$?
	[[ $rc == 77 ]] || fail "not root: exit $rc, want 77: $out"
	grep -q 'run it as root' <<<"$out" || fail "not root: message: $out"
	in_sb test ! -e "$DROPIN" || fail "not root: something was written"
	kn apply >/dev/null || fail "apply"
	check_mode() {
		local got
		got=$(in_sb stat -c '%a %U:%G' "$1")
		[[ $got == "$2" ]] || fail "$1 is $got, want $2"
	}
	check_mode "$DROPIN" "644 root:root"
	check_mode "$POLICY" "640 root:kube"
	check_mode "$LOGDIR" "700 kube:kube"
	check_mode "$LOGDIR/audit.log" "600 kube:kube"
	check_mode /run/lock/kaudit-node.lock "600 root:root"
	PASSED+=("not root: exit 77 before any action; modes and owners of the drop-in, policy, log directory, log and lock")
}

need_root
build
# The failpoint build has a target directory of its own, so it never
# replaces the normal binary.
CARGO_TARGET_DIR=$REPO/target/failpoints cargo build -q --locked -p kaudit-node --features failpoints
FP_BIN=$REPO/target/failpoints/debug/kaudit-node
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(crash startlimit jobtimeout nobus diskfull enospc doublefault latedropin concurrent stalelock security)
run_scenarios "${scenarios[@]}"
