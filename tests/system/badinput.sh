#!/usr/bin/env bash
# The bad-input corpus (tests/bad-input/cases.toml) through `kaudit-node apply`
# on a live node: a real systemd (PID 1 of a systemd-nspawn container,
# tests/system/sandbox.sh) whose kube-apiserver.service (the KTHW unit) runs the
# kube-apiserver TEST STAND-IN: first as the vendor ships it, then with audit
# logging applied, the state in which an operator's next change goes wrong.
#
# For each case the harness (tests/bad_input.rs,
# bad_inputs_on_a_live_node_change_nothing) writes the case's configuration
# and files into the container, runs apply there, and asserts the exit code,
# the message, no secret printed, every managed file unchanged (content, mode,
# owner, inode), the same main PID and invocation, the unit active and no
# daemon-reload; then it restores the node and proves it did.
#
# Usage: tests/system/badinput.sh      Needs root and systemd-container.
# KAUDIT_BIN and STANDIN_BIN replace the debug builds (static builds for
# other roots: SANDBOX_LOWER, see matrix.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SB=$HERE/sandbox.sh
UNIT=kube-apiserver.service
LOG=/var/log/kubernetes/audit/audit.log
DIR=/var/tmp/kaudit-badinput-$$

say() { echo "badinput: $*" >&2; }
fail() {
	say "FAIL: $*"
	"$SB" exec "$DIR" journalctl -u "$UNIT" -n 25 --no-pager -o cat >&2 2>/dev/null || true
	exit 1
}
in_sb() { "$SB" exec "$DIR" "$@"; }
cleanup() {
	local rc=$?
	"$SB" down "$DIR" >/dev/null 2>&1 || true
	exit "$rc"
}

[[ $(id -u) == 0 ]] || {
	say "needs root"
	exit 1
}
cd "$REPO"
if [[ -z ${KAUDIT_BIN:-} ]]; then
	cargo build -q -p kube-apiserver-standin -p kaudit-node
	KAUDIT_BIN=$REPO/target/debug/kaudit-node
fi
# Build the harness before the sandbox boots: the build is the slow part.
cargo test -q --locked --test bad_input --no-run 2>/dev/null

trap cleanup EXIT
t0=$SECONDS
"$SB" up "$DIR" 2>/dev/null
"$SB" install-flavor "$DIR" kthw >/dev/null
"$SB" put "$DIR" "$KAUDIT_BIN" /usr/local/sbin/kaudit-node 0755
in_sb systemctl start "$UNIT"
main_pid() { in_sb systemctl show -p MainPID --value "$UNIT"; }
corpus() {
	KAUDIT_SANDBOX=$DIR KAUDIT_SANDBOX_NODE=$1 cargo test -q --locked --test bad_input -- \
		--ignored --exact bad_inputs_on_a_live_node_change_nothing --nocapture 2>&1 |
		grep -v '^$' | grep -v '^running 1 test' >&2
}

# 1. The unit as the vendor ships it, audit logging never applied.
pid=$(main_pid)
say "vendor node, $UNIT main PID $pid: the corpus through apply"
corpus vendor
[[ $(main_pid) == "$pid" ]] || fail "the main PID changed during the corpus"

# 2. Applied: the state in which an operator's next change goes wrong.
out=$(in_sb /usr/local/sbin/kaudit-node apply 2>&1) || fail "the first apply failed: $out"
for ((i = 0; i < 150; i++)); do
	in_sb grep -q '"kind":"Event"' "$LOG" 2>/dev/null && break
	sleep 0.1
done
in_sb grep -q '"kind":"Event"' "$LOG" || fail "no audit event in $LOG after the first apply"
pid=$(main_pid)
say "applied node, $UNIT main PID $pid: the corpus through apply"
corpus applied
[[ $(main_pid) == "$pid" ]] || fail "the main PID changed during the corpus"
say "ok: the corpus through apply on a vendor and an applied node ($((SECONDS - t0)) s)"
