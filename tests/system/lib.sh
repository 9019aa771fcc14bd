# shellcheck shell=bash disable=SC2034 # what it defines is used by the scripts sourcing it
# What the system tests share (every tests/system/*.sh but sandbox.sh and
# matrix.sh, which run the others): sourced, never run.
#
# Before sourcing, a script sets TAG: the word its messages start with and
# part of its sandbox directories' names. DIR is the current sandbox (empty:
# none); SCENARIO names what runs, for failure messages; scenarios add lines
# to PASSED and FIGURES, which `run_scenarios` prints at the end. Sourcing
# installs an EXIT trap that powers the current sandbox off.

SYSTEM_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SYSTEM_TESTS/../.." && pwd)
SB=$SYSTEM_TESTS/sandbox.sh
UNIT=kube-apiserver.service
LOGDIR=/var/log/kubernetes/audit
LOG=$LOGDIR/audit.log
DDIR=/etc/systemd/system/$UNIT.d
DROPIN=$DDIR/50-kaudit-node.conf
POLICY=/etc/kubernetes/audit-policy.yaml
DIR=""
SCENARIO=setup
PASSED=()
FIGURES=()

say() { echo "$TAG: $*" >&2; }

# Fails the run, with the end of the apiserver's journal; a script with
# more to show (several sandboxes, a tool's output) defines fail_details,
# which is called instead.
fail() {
	echo "$TAG: FAIL [$SCENARIO]: $*" >&2
	if declare -F fail_details >/dev/null; then
		fail_details
	elif [[ -n $DIR ]]; then
		echo "--- journal of $UNIT" >&2
		in_sb journalctl -u "$UNIT" -n 25 --no-pager -o cat >&2 2>/dev/null || true
	fi
	exit 1
}

# Standard input is closed: nothing run in the sandbox (a maintainer
# script, systemctl) may read the test's.
in_sb() { "$SB" exec "$DIR" "$@" </dev/null; }
kn() { in_sb /usr/local/sbin/kaudit-node "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

main_pid() { in_sb systemctl show -p MainPID --value "$UNIT"; }
active() { in_sb systemctl is-active "$UNIT" 2>/dev/null || true; }
cmdline() { in_sb cat "/proc/$1/cmdline" | tr '\0' '\n'; }
# The last value of --NAME in a process's argv (pflag: last wins).
flag_value() { cmdline "$1" | sed -n "s/^--$2=//p" | tail -1; }
# How many times systemd (PID 1) has reloaded its units since boot.
reloads() { in_sb journalctl _PID=1 --no-pager -o cat 2>/dev/null | grep -c '^Reloading' || true; }
# Lines of the audit log that are JSON audit events.
events() { in_sb sh -c "grep -c '\"kind\":\"Event\"' $LOG 2>/dev/null || true"; }

# Waits up to 15 s for a JSON audit event in the log.
wait_events() {
	local i
	for ((i = 0; i < 150; i++)); do
		[[ $(events) =~ ^[1-9] ]] && return 0
		sleep 0.1
	done
	return 1
}

# Installs TEXT as /etc/kaudit-node/config.toml in the sandbox.
config() { printf '%s' "$1" >"$DIR/config.toml" && "$SB" put "$DIR" "$DIR/config.toml" /etc/kaudit-node/config.toml; }

need_root() {
	[[ $(id -u) == 0 ]] || {
		say "needs root"
		exit 1
	}
}

# Builds what the sandbox needs: the stand-in unless STANDIN_BIN names one
# (sandbox.sh), kaudit-node unless KAUDIT_BIN does (static builds for other
# roots: matrix.sh).
build() {
	local pkgs=()
	cd "$REPO" || exit
	[[ -n ${STANDIN_BIN:-} ]] || pkgs+=(-p kube-apiserver-standin)
	[[ -n ${KAUDIT_BIN:-} ]] || pkgs+=(-p kaudit-node)
	((${#pkgs[@]} == 0)) || cargo build -q --locked "${pkgs[@]}"
	KAUDIT_BIN=${KAUDIT_BIN:-$REPO/target/debug/kaudit-node}
}

# Powers the current sandbox off, if any.
down() {
	if [[ -n $DIR ]]; then "$SB" down "$DIR" >/dev/null 2>&1 || true; fi
	DIR=""
}

# Boots a fresh sandbox (replacing the current one) with FLAVOR's unit
# (sandbox.sh install-flavor) started and KAUDIT_BIN as
# /usr/local/sbin/kaudit-node. NAME (default: FLAVOR) tells sandboxes apart.
boot() {
	local flavor=$1
	down
	DIR=/var/tmp/kaudit-$TAG-$$-${2:-$flavor}
	"$SB" up "$DIR" 2>/dev/null
	"$SB" install-flavor "$DIR" "$flavor" >/dev/null
	"$SB" put "$DIR" "$KAUDIT_BIN" /usr/local/sbin/kaudit-node 0755
	in_sb systemctl start "$UNIT"
	[[ $(active) == active ]] || fail "$flavor: $UNIT did not start"
}

# Runs scenario_NAME for each NAME given, timing each; then powers the
# sandbox off and prints what passed and the figures.
run_scenarios() {
	local t0
	for SCENARIO in "$@"; do
		t0=$(now)
		"scenario_$SCENARIO"
		say "ok: $SCENARIO ($(since "$t0") s)"
	done
	SCENARIO=teardown
	down
	printf '%s: passed:\n' "$TAG" >&2
	printf '  %s\n' "${PASSED[@]}" >&2
	if ((${#FIGURES[@]})); then
		printf '%s: figures:\n' "$TAG" >&2
		printf '  %s\n' "${FIGURES[@]}" >&2
	fi
}

# On exit: the current sandbox powered off, then what a script with more
# to clean up (several sandboxes, outputs to keep) does in its
# cleanup_more, given the exit status.
on_exit() {
	local rc=$?
	down
	if declare -F cleanup_more >/dev/null; then cleanup_more "$rc"; fi
	exit "$rc"
}
trap on_exit EXIT
