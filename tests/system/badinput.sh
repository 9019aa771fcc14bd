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

TAG=badinput
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The corpus through apply in the sandbox, on a NODE (vendor or applied).
corpus() {
	KAUDIT_SANDBOX=$DIR KAUDIT_SANDBOX_NODE=$1 cargo test -q --locked --test bad_input -- \
		--ignored --exact bad_inputs_on_a_live_node_change_nothing --nocapture 2>&1 |
		grep -v '^$' | grep -v '^running 1 test' >&2
}

need_root
build
# Build the harness before the sandbox boots: the build is the slow part.
cargo test -q --locked --test bad_input --no-run 2>/dev/null
t0=$(now)
boot kthw

# 1. The unit as the vendor ships it, audit logging never applied.
SCENARIO=vendor
pid=$(main_pid)
say "vendor node, $UNIT main PID $pid: the corpus through apply"
corpus vendor
[[ $(main_pid) == "$pid" ]] || fail "the main PID changed during the corpus"

# 2. Applied: the state in which an operator's next change goes wrong.
SCENARIO=applied
out=$(kn apply 2>&1) || fail "the first apply failed: $out"
wait_events || fail "no audit event in $LOG after the first apply"
pid=$(main_pid)
say "applied node, $UNIT main PID $pid: the corpus through apply"
corpus applied
[[ $(main_pid) == "$pid" ]] || fail "the main PID changed during the corpus"
say "ok: the corpus through apply on a vendor and an applied node ($(since "$t0") s)"
