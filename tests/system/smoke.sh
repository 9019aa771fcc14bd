#!/usr/bin/env bash
# Smoke test of the system-test stand: a real systemd in a container (sandbox.sh)
# running the kube-apiserver TEST STAND-IN under the KTHW unit.
#
#  1. build the stand-in;
#  2. boot a sandbox;
#  3. install units/kthw.service as kube-apiserver.service, start it, check it is
#     active, and that its audit log exists and stays EMPTY (no policy: see
#     docs/reference.md, Log writer and rotation);
#  4. add a hand-written drop-in with --audit-policy-file (a Metadata policy) and
#     --audit-log-path=/var/log/kubernetes/audit/audit.log; daemon-reload, restart;
#     wait for a JSON Event line in that log, written by the new MainPID (its
#     /proc/PID/fd links to the log, its cmdline has the flags);
#  5. replace the policy by a v1beta1 one, restart: the unit fails and the journal has
#     upstream's message;
#  6. tear the sandbox down.
#
# Prints the time of each phase. Needs root and systemd-container (see sandbox.sh).
set -euo pipefail

TAG=smoke
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE=$SYSTEM_TESTS
AUDIT_LOG=$LOG
WORK=$(mktemp -d)
declare -a TIMINGS=()

step() { echo "smoke: $*"; }
record() { TIMINGS+=("$(printf '%-42s %8s s' "$1" "$2")"); }

# lib.sh's exit trap powers the sandbox off (after fail() has shown the
# journal); this one also removes the scratch directory.
cleanup() {
	local rc=$?
	rm -rf -- "$WORK"
	(exit "$rc")
	on_exit
}
trap cleanup EXIT

# Polls CMD every 20 ms until it succeeds or TIMEOUT seconds pass.
wait_for() {
	local timeout=$1 t0
	shift
	t0=$(now)
	until "$@"; do
		awk -v a="$t0" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }' && return 1
		sleep 0.02
	done
}

unit_prop() { in_sb systemctl show -p "$1" --value "$UNIT"; }

# --- 1. build
t=$(now)
step "building the stand-in"
(cd "$REPO" && cargo build -q -p kube-apiserver-standin)
record "build (cargo build -p kube-apiserver-standin)" "$(since "$t")"

# --- 2. boot
t=$(now)
DIR=/var/tmp/kaudit-smoke-$$
step "booting a sandbox at $DIR"
"$SB" up "$DIR"
record "sandbox boot (up → running)" "$(since "$t")"
# shellcheck source=/dev/null
source "$DIR/env"

# --- 3. the KTHW unit, no policy
t=$(now)
"$SB" install-flavor "$DIR" kthw
in_sb systemctl start "$UNIT"
[[ $(in_sb systemctl is-active "$UNIT") == active ]] || fail "$UNIT is not active after start"
record "kthw: start → active" "$(since "$t")"
pid=$(unit_prop MainPID)
[[ $pid != 0 ]] || fail "no MainPID"
step "kthw unit active, MainPID $pid (in the container)"
sleep 1.5
[[ $(in_sb systemctl is-active "$UNIT") == active ]] || fail "$UNIT did not stay active"
[[ $(unit_prop NRestarts) == 0 ]] || fail "$UNIT restarted"
[[ -f $ROOT/var/log/audit.log ]] || fail "/var/log/audit.log was not created"
[[ ! -s $ROOT/var/log/audit.log ]] || fail "/var/log/audit.log is not empty, yet there is no policy"
step "kthw: /var/log/audit.log created and empty after 1.5 s (no policy: no events, as upstream)"

# --- 4. a drop-in adding the policy and a new log path
cat >"$WORK/policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
EOF
"$SB" put "$DIR" "$WORK/policy.yaml" "$POLICY" 0600
# ExecStart= cannot be appended to: reset it and repeat the vendor command line with
# the audit flags at the end (pflag: the last --audit-log-path wins).
{
	echo "# Hand-written by tests/system/smoke.sh"
	echo "[Service]"
	echo "ExecStart="
	awk '/^ExecStart=/ { on = 1 } on { print; if ($0 !~ /\\$/) exit }' "$HERE/units/kthw.service" |
		sed '$ s/$/ \\/'
	echo "  --audit-policy-file=$POLICY \\"
	echo "  --audit-log-path=$AUDIT_LOG"
} >"$WORK/50-audit.conf"
"$SB" put "$DIR" "$WORK/50-audit.conf" "/etc/systemd/system/$UNIT.d/50-audit.conf"
in_sb systemctl daemon-reload
[[ $(unit_prop NeedDaemonReload) == no ]] || fail "NeedDaemonReload after daemon-reload"
grep -q 50-audit.conf <<<"$(in_sb systemctl show -p DropInPaths --value "$UNIT")" || fail "drop-in not loaded"

t=$(now)
in_sb systemctl restart "$UNIT"
has_event_line() {
	[[ -s $ROOT$AUDIT_LOG ]] && grep -q '^{"kind":"Event","apiVersion":"audit.k8s.io/v1",' <<<"$(head -n 1 "$ROOT$AUDIT_LOG")"
}
wait_for 10 has_event_line || fail "no audit event in $AUDIT_LOG within 10 s of the restart"
first_event=$(since "$t")
record "restart → first audit event in the log" "$first_event"
newpid=$(unit_prop MainPID)
[[ $newpid != 0 && $newpid != "$pid" ]] || fail "MainPID did not change ($pid → $newpid)"
head -n 1 "$ROOT$AUDIT_LOG" | python3 -c '
import json, sys
ev = json.loads(sys.stdin.readline())
assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1", ev
assert ev["level"] == "Metadata", ev
' || fail "the first line is not a Metadata audit Event"
# shellcheck disable=SC2016 # expanded by the container's sh
grep -qx "$AUDIT_LOG" <<<"$(in_sb sh -c 'for fd in /proc/$1/fd/*; do readlink "$fd"; done' sh "$newpid")" ||
	fail "MainPID $newpid has no descriptor on $AUDIT_LOG"
in_sb cat "/proc/$newpid/cmdline" | tr '\0' '\n' | grep -- '^--audit-log-path=' | tail -n 1 |
	grep -qx -- "--audit-log-path=$AUDIT_LOG" || fail "the effective --audit-log-path is not $AUDIT_LOG"
mode=$(stat -c %a "$ROOT$AUDIT_LOG")
dmode=$(stat -c %a "$ROOT$(dirname "$AUDIT_LOG")")
[[ $mode == 600 && $dmode == 700 ]] || fail "log mode $mode / dir mode $dmode, expected 600 / 700"
step "audit events flowing: MainPID $newpid writes $AUDIT_LOG (0600, dir 0700), first line after $first_event s"

# --- 5. a v1beta1 policy makes the unit fail
cat >"$WORK/v1beta1.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1beta1
kind: Policy
rules:
- level: Metadata
EOF
"$SB" put "$DIR" "$WORK/v1beta1.yaml" "$POLICY" 0600
t=$(now)
since_epoch=$(date +%s)
in_sb systemctl restart "$UNIT" || true
expected='no kind \"Policy\" is registered for version \"audit.k8s.io/v1beta1\"'
journal_has_failure() {
	in_sb journalctl -u "$UNIT" --since "@$since_epoch" --no-pager -o cat |
		grep -F 'run.go:74] "command failed" err="loading audit policy file: failed decoding:' |
		grep -qF "$expected"
}
wait_for 10 journal_has_failure || fail "the journal has no v1beta1 failure message"
unit_failed() {
	[[ $(unit_prop Result) == exit-code && $(unit_prop ExecMainStatus) == 1 ]]
}
wait_for 5 unit_failed || fail "$UNIT did not fail with exit code 1"
record "restart with v1beta1 → failure in journal" "$(since "$t")"
step "v1beta1 policy: $UNIT failed ($(unit_prop ActiveState)/$(unit_prop SubState)), journal says:"
in_sb journalctl -u "$UNIT" --since "@$since_epoch" --no-pager -o cat | grep -m1 'command failed' | sed 's/^/    /'

# --- 6. down
t=$(now)
down
record "sandbox down" "$(since "$t")"

echo "smoke: timings"
printf '  %s\n' "${TIMINGS[@]}"
echo "smoke: PASS"
