#!/usr/bin/env bash
# System test of the .deb (and the .rpm's scriptlets) against a real systemd
# (PID 1 of a systemd-nspawn container, tests/system/sandbox.sh) running the
# kube-apiserver TEST STAND-IN under the kthw unit.
#
# Builds the packages with packaging/build.sh (release 1, and release 2 as the
# upgrade), then inside one sandbox, as an admin would:
#   no unit      dpkg -i with no kube-apiserver.service: installed, nothing
#                applied, the reason printed; dpkg -P
#   no apply     KAUDIT_NODE_NO_APPLY=1 dpkg -i: no drop-in, no restart; dpkg -P
#   install      dpkg -i: drop-in, restart, audit events, `kaudit-node check` OK
#                (SKIP when this build has no check command), units installed
#                and not enabled
#   upgrade      an edited config.toml, applied; dpkg -i of release 2: the edit
#                survives, the same main PID (no restart on a converged node)
#   failure      apply fails during postinst: dpkg exits 0, the package is
#                configured, the message says what failed and how to retry,
#                the apiserver is back on its previous flags
#   remove       dpkg -r: drop-in and policy gone, apiserver active on the
#                vendor command line, audit logs and config.toml kept
#   purge        dpkg -P: /etc/kaudit-node gone, audit logs kept
#   rpm          rpm -i / -U / -e (Debian's rpm, --nodeps): the same steps
#                through the .rpm's scriptlets
#
# Usage: tests/system/packages.sh [SCENARIO...]  (deb, rpm; default: both)
# Needs root, systemd-container, rpm, cargo-deb, cargo-generate-rpm and the
# musl target (packaging/install-tools.sh).
set -euo pipefail

TAG=packages
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENDOR_LOG=/var/log/audit.log
CONF=/etc/kaudit-node/config.toml

# shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
dpkg_status() { in_sb dpkg-query -W -f '${Status}' kaudit-node 2>/dev/null || true; }

# A fresh sandbox with both releases of both packages in /root, and no unit.
boot_packages() {
	down
	DIR=/var/tmp/kaudit-packages-$$-$1
	"$SB" up "$DIR" 2>/dev/null
	"$SB" put "$DIR" "$DEB1" /root/kaudit-node-1.deb
	"$SB" put "$DIR" "$DEB2" /root/kaudit-node-2.deb
	"$SB" put "$DIR" "$RPM1" /root/kaudit-node-1.rpm
	"$SB" put "$DIR" "$RPM2" /root/kaudit-node-2.rpm
}

start_apiserver() {
	"$SB" install-flavor "$DIR" kthw >/dev/null
	in_sb systemctl start "$UNIT"
	[[ $(active) == active ]] || fail "$UNIT did not start"
}

# Runs a package-manager command in the sandbox; sets OUT and RC.
pm() {
	OUT=$(in_sb "$@" 2>&1) && RC=0 || RC=$?
}

# kaudit-node check, when this build has it; asserts OK.
assert_check_ok() {
	local what=$1 out rc
	if ! in_sb /usr/sbin/kaudit-node check --help >/dev/null 2>&1; then
		say "SKIP [$SCENARIO]: kaudit-node check (this build has no check command)"
		FIGURES+=("$what: check SKIPPED (no check command)")
		return 0
	fi
	out=$(in_sb /usr/sbin/kaudit-node check 2>&1) && rc=0 || rc=$?
	[[ $rc == 0 ]] || fail "$what: kaudit-node check: exit $rc, want 0 (OK): $out"
	FIGURES+=("$what: kaudit-node check: $(head -1 <<<"$out" | cut -d'|' -f1)")
}

assert_vendor_back() {
	local what=$1 pid
	pid=$(main_pid)
	[[ $(active) == active ]] || fail "$what: $UNIT is not active"
	in_sb test ! -e "$DROPIN" || fail "$what: the drop-in is still there"
	in_sb test ! -e "$POLICY" || fail "$what: the installed policy is still there"
	[[ $(flag_value "$pid" audit-log-path) == "$VENDOR_LOG" ]] || fail "$what: not on the vendor command line: $(cmdline "$pid" | tr '\n' ' ')"
	grep -q '^--audit-policy-file' <<<"$(cmdline "$pid")" && fail "$what: --audit-policy-file still in the command line"
	[[ $(events) =~ ^[1-9] ]] || fail "$what: the audit log $LOG was not kept"
	return 0
}

# --- the .deb --------------------------------------------------------------

scenario_deb() {
	boot_packages deb
	local pid0 pid1 pid2 sum

	SCENARIO="deb: no unit"
	pm dpkg -i /root/kaudit-node-1.deb
	[[ $RC == 0 ]] || fail "dpkg -i without the apiserver's unit: exit $RC: $OUT"
	[[ $(dpkg_status) == "install ok installed" ]] || fail "status: $(dpkg_status)"
	grep -q 'audit logging not applied' <<<"$OUT" || fail "no 'not applied' message: $OUT"
	grep -q "$UNIT" <<<"$OUT" || fail "the message does not name $UNIT: $OUT"
	local msg
	msg=$(grep '^ *kaudit-node' <<<"$OUT" | tr -s ' ' | paste -sd' ')
	in_sb test ! -e "$DROPIN" || fail "a drop-in was written"
	[[ $(in_sb systemctl is-enabled kaudit-node-check.timer 2>&1 || true) == disabled ]] || fail "kaudit-node-check.timer is not 'disabled'"
	pm dpkg -P kaudit-node
	[[ $RC == 0 ]] || fail "dpkg -P without the apiserver's unit: exit $RC: $OUT"
	PASSED+=("deb, no unit: installed, nothing applied, the reason printed: $msg")

	SCENARIO="deb: KAUDIT_NODE_NO_APPLY"
	start_apiserver
	pid0=$(main_pid)
	pm env KAUDIT_NODE_NO_APPLY=1 dpkg -i /root/kaudit-node-1.deb
	[[ $RC == 0 ]] || fail "dpkg -i: exit $RC: $OUT"
	grep -q 'KAUDIT_NODE_NO_APPLY=1: audit logging not applied' <<<"$OUT" || fail "no message: $OUT"
	in_sb test ! -e "$DROPIN" || fail "a drop-in was written"
	[[ $(main_pid) == "$pid0" ]] || fail "the apiserver was restarted"
	pm dpkg -P kaudit-node
	[[ $RC == 0 ]] || fail "dpkg -P: exit $RC: $OUT"
	[[ $(main_pid) == "$pid0" ]] || fail "dpkg -P of a never-applied install restarted the apiserver"
	PASSED+=("deb, KAUDIT_NODE_NO_APPLY=1: installed, no drop-in, no restart; purge leaves the apiserver alone")

	SCENARIO="deb: install"
	local t0
	t0=$(now)
	pm dpkg -i /root/kaudit-node-1.deb
	[[ $RC == 0 ]] || fail "dpkg -i: exit $RC: $OUT"
	FIGURES+=("dpkg -i with apply: $(since "$t0") s")
	[[ $(dpkg_status) == "install ok installed" ]] || fail "status: $(dpkg_status)"
	grep -q 'turning on audit logging' <<<"$OUT" || fail "postinst did not apply: $OUT"
	pid1=$(main_pid)
	[[ $pid1 != "$pid0" ]] || fail "the apiserver was not restarted"
	in_sb test -f "$DROPIN" || fail "no drop-in"
	wait_events || fail "no audit event in $LOG"
	[[ $(flag_value "$pid1" audit-log-path) == "$LOG" ]] || fail "--audit-log-path is not effective"
	in_sb test -x /usr/sbin/kaudit-node || fail "no /usr/sbin/kaudit-node"
	in_sb sh -c 'man -w kaudit-node kaudit-node.toml' >/dev/null 2>&1 || fail "man pages not found by man -w"
	in_sb systemctl cat kaudit-node-check.timer >/dev/null 2>&1 || fail "kaudit-node-check.timer not known to systemd"
	[[ $(in_sb systemctl is-enabled kaudit-node-check.timer 2>&1 || true) == disabled ]] || fail "kaudit-node-check.timer is not 'disabled'"
	[[ $(in_sb systemctl is-active kaudit-node-check.timer 2>&1 || true) == inactive ]] || fail "kaudit-node-check.timer was started"
	assert_check_ok "after dpkg -i"
	PASSED+=("deb, install: postinst applied (new main PID, drop-in, events), units installed but not enabled")

	SCENARIO="deb: upgrade"
	in_sb sed -i 's/^#maxage = 30$/maxage = 45/' "$CONF"
	sum=$(in_sb sha256sum "$CONF")
	pm /usr/sbin/kaudit-node apply
	[[ $RC == 0 ]] || fail "apply of the edited config: exit $RC: $OUT"
	pid2=$(main_pid)
	[[ $(flag_value "$pid2" audit-log-maxage) == 45 ]] || fail "maxage 45 not effective"
	pm dpkg -i /root/kaudit-node-2.deb
	[[ $RC == 0 ]] || fail "dpkg -i (upgrade): exit $RC: $OUT"
	# shellcheck disable=SC2016 # dpkg-query's format
	[[ $(in_sb dpkg-query -W -f '${Version}' kaudit-node) == *-2 ]] || fail "not upgraded to release 2"
	[[ $(in_sb sha256sum "$CONF") == "$sum" ]] || fail "the edited $CONF did not survive the upgrade"
	grep -q 'already in place' <<<"$OUT" || fail "postinst did not see the converged node: $OUT"
	[[ $(main_pid) == "$pid2" ]] || fail "the upgrade restarted the apiserver ($pid2 -> $(main_pid))"
	pm /usr/sbin/kaudit-node plan
	[[ $RC == 0 ]] || fail "plan after the upgrade: exit $RC: $OUT"
	PASSED+=("deb, upgrade to release 2: edited config.toml kept, converged node untouched (main PID $pid2 kept)")

	SCENARIO="deb: failed apply"
	# The stand-in exits at once when started with --audit-log-maxage=31.
	in_sb sh -c "printf '[Service]\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-maxage=31\n' > /etc/systemd/system/$UNIT.d/10-test-fail.conf"
	in_sb systemctl daemon-reload
	in_sb cp "$CONF" /root/config.toml.good
	in_sb sed -i -e 's/^maxage = 45$/maxage = 31/' -e 's/^#verify_timeout = .*/verify_timeout = "20s"/' "$CONF"
	pm dpkg -i /root/kaudit-node-2.deb
	[[ $RC == 0 ]] || fail "dpkg -i with a failing apply: exit $RC, want 0: $OUT"
	[[ $(dpkg_status) == "install ok installed" ]] || fail "status after a failed apply: $(dpkg_status)"
	grep -q 'apply FAILED' <<<"$OUT" || fail "no failure message: $OUT"
	grep -q 'retry with: kaudit-node apply' <<<"$OUT" || fail "no retry instruction: $OUT"
	grep -q 'rolled back' <<<"$OUT" || fail "the rollback is not reported: $OUT"
	[[ $(active) == active ]] || fail "the apiserver is not active after the rollback"
	[[ $(flag_value "$(main_pid)" audit-log-maxage) == 45 ]] || fail "not back on maxage 45"
	in_sb rm "/etc/systemd/system/$UNIT.d/10-test-fail.conf"
	in_sb systemctl daemon-reload
	in_sb cp /root/config.toml.good "$CONF"
	FIGURES+=("failed apply in postinst: $(grep -c . <<<"$OUT") lines of output, dpkg exit 0")
	PASSED+=("deb, failing apply in postinst: dpkg exit 0, package configured, cause + retry printed, rolled back")

	SCENARIO="deb: remove"
	pid2=$(main_pid)
	pm dpkg -r kaudit-node
	[[ $RC == 0 ]] || fail "dpkg -r: exit $RC: $OUT"
	[[ $(dpkg_status) == "deinstall ok config-files" ]] || fail "status: $(dpkg_status)"
	[[ $(main_pid) != "$pid2" ]] || fail "remove did not restart the apiserver"
	assert_vendor_back "dpkg -r"
	in_sb test -f "$CONF" || fail "$CONF was not kept"
	in_sb test ! -e /usr/sbin/kaudit-node || fail "the binary is still there"
	in_sb test ! -e /usr/lib/systemd/system/kaudit-node-check.timer || fail "the timer unit is still there"
	PASSED+=("deb, remove: drop-in and policy gone, apiserver active on the vendor command line, logs and config kept")

	SCENARIO="deb: purge"
	pm dpkg -P kaudit-node
	[[ $RC == 0 ]] || fail "dpkg -P: exit $RC: $OUT"
	[[ -z $(dpkg_status) || $(dpkg_status) == "unknown ok not-installed" ]] || fail "status: $(dpkg_status)"
	in_sb test ! -e /etc/kaudit-node || fail "/etc/kaudit-node is still there"
	[[ $(events) =~ ^[1-9] ]] || fail "the audit log was not kept"
	[[ $(active) == active ]] || fail "$UNIT is not active"
	PASSED+=("deb, purge: /etc/kaudit-node gone, audit log kept ($(events) events)")
}

# --- the .rpm's scriptlets, through Debian's rpm ---------------------------

scenario_rpm() {
	boot_packages rpm
	start_apiserver
	local pid0 pid1 pid2 rpm_i=(rpm -i --nodeps --force-debian) rpm_u=(rpm -U --nodeps --force-debian)
	in_sb mkdir -p /var/lib/rpm
	in_sb rpm --initdb

	SCENARIO="rpm: install"
	pid0=$(main_pid)
	pm "${rpm_i[@]}" /root/kaudit-node-1.rpm
	[[ $RC == 0 ]] || fail "rpm -i: exit $RC: $OUT"
	grep -q 'turning on audit logging' <<<"$OUT" || fail "%post did not apply: $OUT"
	pid1=$(main_pid)
	[[ $pid1 != "$pid0" ]] || fail "the apiserver was not restarted"
	wait_events || fail "no audit event"
	[[ $(in_sb systemctl is-enabled kaudit-node-check.timer 2>&1 || true) == disabled ]] || fail "kaudit-node-check.timer is not 'disabled'"
	assert_check_ok "after rpm -i"

	SCENARIO="rpm: upgrade"
	in_sb sed -i 's/^#maxage = 30$/maxage = 45/' "$CONF"
	pm /usr/sbin/kaudit-node apply
	[[ $RC == 0 ]] || fail "apply: exit $RC: $OUT"
	pid2=$(main_pid)
	pm "${rpm_u[@]}" /root/kaudit-node-2.rpm
	[[ $RC == 0 ]] || fail "rpm -U: exit $RC: $OUT"
	grep -q 'already in place' <<<"$OUT" || fail "%post did not see the converged node: $OUT"
	[[ $(main_pid) == "$pid2" ]] || fail "the upgrade restarted the apiserver"
	in_sb grep -qx 'maxage = 45' "$CONF" || fail "the edited config did not survive"
	in_sb test -f /usr/sbin/kaudit-node || fail "the old package's %preun/%postun removed the binary"
	in_sb test -f "$DROPIN" || fail "the upgrade removed the drop-in (old %preun ran remove)"

	SCENARIO="rpm: erase"
	pm rpm -e --nodeps kaudit-node
	[[ $RC == 0 ]] || fail "rpm -e: exit $RC: $OUT"
	assert_vendor_back "rpm -e"
	in_sb test -f "$CONF.rpmsave" || fail "the modified config.toml was not saved as .rpmsave"
	in_sb test ! -e "$CONF" || fail "$CONF is still there"
	PASSED+=("rpm scriptlets (Debian's rpm, --nodeps): -i applies, -U on a converged node keeps main PID $pid2 and the edit, -e gives the vendor command line back (config.toml.rpmsave, logs kept)")
}

# --- main -------------------------------------------------------------------

need_root
cd "$REPO"
cargo build -q --locked -p kube-apiserver-standin
t0=$(now)
mapfile -t P1 < <(bash packaging/build.sh --release 1 2>/dev/null)
mapfile -t P2 < <(bash packaging/build.sh --release 2 2>/dev/null)
((${#P1[@]} == 2 && ${#P2[@]} == 2)) || fail "packaging/build.sh failed (run it alone to see why)"
DEB1=$REPO/${P1[0]} RPM1=$REPO/${P1[1]} DEB2=$REPO/${P2[0]} RPM2=$REPO/${P2[1]}
FIGURES+=("packages built (release 1 and 2) in $(since "$t0") s")
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(deb rpm)
run_scenarios "${scenarios[@]}"
