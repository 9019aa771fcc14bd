#!/usr/bin/env bash
# System tests of `kaudit-node check` against a real systemd (PID 1 of a
# systemd-nspawn container, tests/system/sandbox.sh) running the
# kube-apiserver TEST STAND-IN (tests/standin) under the kthw unit.
#
# kaudit-node runs inside the container, as a monitoring agent runs it. The
# audit log directory is a small tmpfs (8 MiB, mounted before apply), so the
# free-space probe can be driven to WARNING and CRITICAL. Each scenario
# breaks one thing, asserts the exit code and the reason on the summary line,
# and repairs it: healthy → OK (and the check is read-only: same main PID,
# no daemon-reload, same files); as nobody → UNKNOWN; the shipped timer's
# service writes the Prometheus file; filesystem filled → WARNING then
# CRITICAL; a generic logrotate rule → CRITICAL; the vendor unit edited →
# WARNING (drift); the stand-in paused → WARNING then CRITICAL with small
# thresholds; `rm` of the live log → CRITICAL (deleted inode);
# `systemctl revert` → CRITICAL; a unit systemd does not know, with no
# drop-in → one UNKNOWN; the unit stopped → CRITICAL.
#
# Usage: tests/system/check.sh      Needs root and systemd-container.
set -euo pipefail

TAG=system
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PROMDIR=/var/lib/prometheus/node-exporter
PROM=$PROMDIR/kaudit-node.prom
OUT=""
RC=0

node_hash() { in_sb sh -c "cat $DROPIN $POLICY; stat -c '%n %a %u %g' $DROPIN $POLICY; ls -1A $LOGDIR /etc/logrotate.d /tmp" | sha256sum; }

# Runs `kaudit-node check ARGS…`; sets OUT (stdout and stderr) and RC.
chk() { OUT=$(kn check "$@" 2>&1) && RC=0 || RC=$?; }

# expect CODE REGEX [ARGS…]: the check exits CODE and its summary line
# (the first line) matches REGEX.
expect() {
	local code=$1 re=$2 first
	shift 2
	chk "$@"
	first=$(head -n1 <<<"$OUT")
	[[ $RC == "$code" ]] || fail "exit $RC, want $code: $OUT"
	grep -qE -- "$re" <<<"$first" || fail "the summary line does not match /$re/: $OUT"
}

# Waits (up to 15 s) until the check is OK again after a repair.
until_ok() {
	local i
	for ((i = 0; i < 75; i++)); do
		chk
		[[ $RC == 0 ]] && return 0
		sleep 0.2
	done
	fail "not OK again after the repair: $OUT"
}

# Free space of the log's filesystem: blocks available, block size, total blocks.
fs_stat() { in_sb stat -f -c '%a %S %b' "$LOGDIR"; }

# Fills the log's filesystem until PCT percent is left free (a filler file).
fill_to() {
	local pct=$1 avail bs total want
	read -r avail bs total < <(fs_stat)
	want=$((avail * bs - total * bs * pct / 100))
	((want > 0)) || fail "the filesystem is already below $pct% free"
	in_sb fallocate -l "$want" "$LOGDIR/filler.$pct"
}

# --- scenarios ------------------------------------------------------------

scenario_healthy() {
	local pid r0 h0 out n
	pid=$(main_pid)
	r0=$(reloads)
	h0=$(node_hash)
	expect 0 "^AUDIT OK - $UNIT: 13 probes OK; $LOG last written [0-9]+s ago \| 'restarts'=0 'log_age_seconds'=[0-9.]+s;300;900 'log_bytes'=[0-9]+B;;;0 'log_fs_free_bytes'=[0-9]+B;[0-9]+:;[0-9]+:;0;[0-9]+ 'log_fs_free_inodes'="
	[[ $(grep -c '^\[OK\] ' <<<"$OUT") == 13 ]] || fail "not 13 probe lines: $OUT"
	out=$(kn check --format json) || fail "check --format json: exit $?"
	n=$(grep -c '"name": "' <<<"$out" || true)
	((n >= 11)) || fail "JSON lacks probes: $out"
	grep -q '"exit_code": 0' <<<"$out" || fail "JSON exit_code: $out"
	# Read-only: no restart, no daemon-reload, no file changed.
	[[ $(main_pid) == "$pid" ]] || fail "the check restarted the apiserver"
	[[ $(reloads) == "$r0" ]] || fail "the check reloaded systemd"
	[[ $(node_hash) == "$h0" ]] || fail "the check changed a file"
	local t0
	t0=$(now)
	kn check >/dev/null
	FIGURES+=("one check, debug build, through nsenter: $(since "$t0") s")
	PASSED+=("healthy: exit 0, 13 probes OK, performance data; JSON; read-only (same PID, no reload, same files)")
}

scenario_nobody() {
	# What a user cannot read is UNKNOWN with the reason; what it can read is checked.
	OUT=$(in_sb setpriv --reuid=65534 --regid=65534 --clear-groups /usr/local/sbin/kaudit-node check 2>&1) && RC=0 || RC=$?
	[[ $RC == 3 ]] || fail "as nobody: exit $RC, want 3: $OUT"
	grep -q '^\[UNKNOWN\] log_open: .*Permission denied' <<<"$OUT" || fail "as nobody: log_open not UNKNOWN with the reason: $OUT"
	grep -q '^\[UNKNOWN\] policy: .*Permission denied' <<<"$OUT" || fail "as nobody: policy not UNKNOWN: $OUT"
	grep -q '^\[OK\] unit: ' <<<"$OUT" || fail "as nobody: the unit probe did not run: $OUT"
	grep -q '^\[OK\] flags: ' <<<"$OUT" || fail "as nobody: the flags probe did not run: $OUT"
	PASSED+=("as nobody: exit 3 (UNKNOWN), unreadable probes name the permission error, readable ones run")
}

scenario_timer() {
	# The shipped units, as the packages install them.
	"$SB" put "$DIR" "$KAUDIT_BIN" /usr/sbin/kaudit-node 0755
	"$SB" put "$DIR" "$REPO/units/kaudit-node-check.service" /etc/systemd/system/kaudit-node-check.service
	"$SB" put "$DIR" "$REPO/units/kaudit-node-check.timer" /etc/systemd/system/kaudit-node-check.timer
	in_sb mkdir -p "$PROMDIR"
	in_sb systemctl daemon-reload
	in_sb systemctl start kaudit-node-check.service || fail "the check service failed: $(in_sb journalctl -u kaudit-node-check.service -n 20 --no-pager -o cat)"
	local prom
	prom=$(in_sb cat "$PROM") || fail "the service did not write $PROM"
	grep -qx "kaudit_node_status{unit=\"$UNIT\"} 0" <<<"$prom" || fail "$PROM: status is not 0: $prom"
	grep -qx "kaudit_node_probe_state{probe=\"log_open\",unit=\"$UNIT\"} 0" <<<"$prom" || fail "$PROM: log_open not 0 under the service's sandbox: $prom"
	grep -q '^# TYPE kaudit_node_log_age_seconds gauge$' <<<"$prom" || fail "$PROM: no log age gauge"
	grep -qvx 'kaudit-node.prom' <<<"$(in_sb sh -c "ls -A $PROMDIR")" && fail "a temporary file was left in $PROMDIR"
	in_sb systemctl enable --now kaudit-node-check.timer >/dev/null 2>&1 || fail "cannot enable the timer"
	[[ $(in_sb systemctl is-active kaudit-node-check.timer) == active ]] || fail "the timer is not active"
	in_sb systemctl disable --now kaudit-node-check.timer >/dev/null 2>&1
	# By hand, to any file: written atomically, the state as exit code.
	expect 0 "^AUDIT OK" --prometheus /tmp/by-hand.prom
	in_sb grep -q '^kaudit_node_status{unit="kube-apiserver.service"} 0$' /tmp/by-hand.prom || fail "--prometheus by hand"
	# Prometheus' own readers: promtool's lint, and a real node_exporter
	# serving the textfile directory on the container's loopback.
	local lint metrics m
	lint=$(in_sb sh -c "promtool check metrics < $PROM 2>&1") || fail "promtool check metrics: $lint"
	in_sb sh -c "prometheus-node-exporter --collector.disable-defaults --collector.textfile --collector.textfile.directory=$PROMDIR --web.listen-address=127.0.0.1:19100 >/run/ne.log 2>&1 & echo \$! >/run/ne.pid"
	for ((i = 0; i < 50; i++)); do
		metrics=$(in_sb curl -fsS http://127.0.0.1:19100/metrics 2>/dev/null) && break
		sleep 0.1
	done
	in_sb sh -c 'kill "$(cat /run/ne.pid)"'
	[[ -n ${metrics:-} ]] || fail "node_exporter did not serve: $(in_sb cat /run/ne.log)"
	grep -q '^node_textfile_scrape_error 0$' <<<"$metrics" || fail "node_exporter could not read $PROM: $(grep textfile <<<"$metrics")"
	# Every sample with its value (node_exporter prints numbers its own way:
	# 6.8e+10 for 68000000000), compared as numbers.
	local series value served
	while read -r series value; do
		served=$(awk -v s="$series" '$1 == s { print $2 }' <<<"$metrics")
		[[ -n $served ]] || fail "node_exporter does not serve $series"
		awk -v a="$value" -v b="$served" 'BEGIN { exit !(a + 0 == b + 0) }' || fail "node_exporter serves $series $served, the file says $value"
	done < <(grep '^kaudit_node_' <<<"$prom")
	PASSED+=("units: kaudit-node-check.service (hardened) writes $PROM with status 0 and log_open 0; the timer enables; promtool check metrics passes and a real node_exporter serves every kaudit_node_* sample with its value")
}

scenario_fs() {
	fill_to 7
	expect 1 "^AUDIT WARNING - log_fs: [6-7]\.[0-9]% free .* on the filesystem of $LOGDIR \(warning below 10%, critical below 5%\)"
	fill_to 2
	expect 2 "^AUDIT CRITICAL - log_fs: [0-9]\.[0-9]% free"
	in_sb sh -c "rm -f $LOGDIR/filler.*"
	until_ok
	PASSED+=("a filled 8 MiB tmpfs under the log: 7% free → WARNING, 2% → CRITICAL")
}

scenario_logrotate() {
	in_sb sh -c 'printf "/var/log/kubernetes/*/*.log {\n    daily\n    copytruncate\n}\n" > /etc/logrotate.d/allvarlogs'
	expect 2 "^AUDIT CRITICAL - rotation: /etc/logrotate.d/allvarlogs:1: \"/var/log/kubernetes/\*/\*.log\" matches the audit log; the apiserver owns rotation"
	in_sb rm /etc/logrotate.d/allvarlogs
	until_ok
	PASSED+=("a generic logrotate rule matching the log → CRITICAL, named by file and line")
}

scenario_drift() {
	in_sb sed -i 's/--v=2$/--v=3/' /etc/systemd/system/$UNIT
	in_sb systemctl daemon-reload
	expect 1 "^AUDIT WARNING - drift: the vendor command line \(/etc/systemd/system/$UNIT:[0-9]+\) changed since .kaudit-node apply."
	in_sb sed -i 's/--v=3$/--v=2/' /etc/systemd/system/$UNIT
	in_sb systemctl daemon-reload
	until_ok
	PASSED+=("vendor unit edited after apply → WARNING (drift)")
}

scenario_trust() {
	# A configuration other users can write, after apply: a warning (apply refuses it).
	in_sb sh -c 'mkdir -p /etc/kaudit-node && [ -e /etc/kaudit-node/config.toml ] || : > /etc/kaudit-node/config.toml'
	in_sb chmod 0666 /etc/kaudit-node/config.toml
	expect 1 "^AUDIT WARNING - trust: /etc/kaudit-node/config.toml: the configuration is not trusted: /etc/kaudit-node/config.toml is writable by others \(owner 0:0, mode 0666\).* Fix: chmod go-w /etc/kaudit-node/config.toml"
	in_sb chmod 0644 /etc/kaudit-node/config.toml
	until_ok
	PASSED+=("configuration made writable by others after apply → WARNING (trust), naming owner, mode and fix")
}

scenario_paused() {
	local pid
	pid=$(main_pid)
	in_sb kill -USR2 "$pid" # the stand-in's pause toggle: no more events
	sleep 2.6
	expect 1 "^AUDIT WARNING - log_age: $LOG last written [0-9.]+s ago \(warning at 2s, critical at 5s\)" --warn-age 2s --crit-age 5s
	sleep 2.5
	expect 2 "^AUDIT CRITICAL - log_age: $LOG last written [0-9.]+s ago" --warn-age 2s --crit-age 5s
	in_sb kill -USR2 "$pid"
	until_ok
	PASSED+=("stand-in paused → WARNING after 2s, CRITICAL after 5s (--warn-age 2s --crit-age 5s)")
}

scenario_deleted() {
	in_sb rm "$LOG"
	expect 2 "^AUDIT CRITICAL - .*log_open: PID [0-9]+ writes to a deleted or replaced file, not $LOG"
	in_sb systemctl restart "$UNIT"
	until_ok
	PASSED+=("rm of the live log → CRITICAL (the process holds a deleted inode)")
}

scenario_revert() {
	in_sb systemctl revert "$UNIT" >/dev/null 2>&1
	in_sb test ! -e "$DROPIN" || fail "systemctl revert left $DROPIN"
	expect 2 "^AUDIT CRITICAL - dropin: $DROPIN is missing \(removed by .systemctl revert.\?\)"
	kn apply >/dev/null || fail "apply after revert failed"
	until_ok
	PASSED+=("systemctl revert → CRITICAL (drop-in missing); apply repairs it")
}

scenario_unmanaged() {
	# A unit systemd does not know, with no kaudit-node drop-in (a static-pod
	# node, a wrong `unit`): one UNKNOWN line, from systemd's own LoadState.
	in_sb sh -c 'printf "unit = \"kube-nope.service\"\n" >/run/unmanaged.toml'
	expect 3 "^AUDIT UNKNOWN - unit: kube-nope.service: no such unit file .*there is no kaudit-node configuration to check on this node" --config /run/unmanaged.toml
	[[ $(grep -c '^\[' <<<"$OUT") == 1 ]] || fail "more than one probe reported: $OUT"
	PASSED+=("a unit systemd does not know, no drop-in → one UNKNOWN line saying why")
}

scenario_stopped() {
	in_sb systemctl stop "$UNIT"
	expect 2 "^AUDIT CRITICAL - unit: $UNIT is inactive \(dead\)"
	PASSED+=("unit stopped → CRITICAL")
}

# --- main -----------------------------------------------------------------

need_root
build
DIR=/var/tmp/kaudit-check-$$
t0=$(now)
"$SB" up "$DIR" 2>/dev/null
"$SB" install-flavor "$DIR" kthw >/dev/null
"$SB" put "$DIR" "$KAUDIT_BIN" /usr/local/sbin/kaudit-node 0755
# A small filesystem for the log, before apply, so the log lives on it.
in_sb mkdir -p "$LOGDIR"
in_sb mount -t tmpfs -o size=8m,mode=0700 kaudit-check-log "$LOGDIR"
in_sb systemctl start "$UNIT"
kn apply >/dev/null || fail "apply failed"
until_ok
say "sandbox ready ($(since "$t0") s)"
run_scenarios healthy nobody timer fs logrotate drift trust paused deleted revert unmanaged stopped
