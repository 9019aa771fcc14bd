#!/usr/bin/env bash
# Benchmark of `kaudit-node check` on a healthy sandbox node (a real systemd
# in a systemd-nspawn container, tests/system/sandbox.sh, running the
# kube-apiserver TEST STAND-IN after `kaudit-node apply`). Not a timed test:
# it prints figures and the targets, and exits 0 unless the node is not
# healthy or a tool is missing.
#
#   1. wall time of `kaudit-node check` as a ratio to `systemctl is-active
#      UNIT`, both run by hyperfine inside the container in the same rounds
#      (target ≤ 1.5);
#   2. peak RSS of the check, /usr/bin/time -f %M (target ≤ 8 MiB);
#   3. wall time of the check with a 5 GB log against a 1 MB log (target
#      ratio ≤ 1.1). The 5 GB log is SPARSE: the live 1 MB log extended with
#      `truncate -s 5G` (a hole), after which the stand-in appends real
#      event lines, so its last line is real. Rounds alternate the sizes,
#      and medians are compared, so load on the machine hits both alike.
#
# The release build of kaudit-node is measured (what the packages ship).
#
# Usage: tests/bench/check.sh [RUNS [ROUNDS]]   (hyperfine runs per command
# and round, default 30; rounds, default 10)
# Needs root, systemd-container, hyperfine and time (apt-get install -y
# hyperfine time).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SB=$REPO/tests/system/sandbox.sh
UNIT=kube-apiserver.service
LOG=/var/log/kubernetes/audit/audit.log
RUNS=${1:-30}
ROUNDS=${2:-10}
DIR=""

say() { echo "bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}
in_sb() { "$SB" exec "$DIR" "$@"; }
cleanup() {
	local rc=$?
	if [[ -n $DIR ]]; then "$SB" down "$DIR" >/dev/null 2>&1 || true; fi
	exit "$rc"
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || die "needs root"
command -v hyperfine >/dev/null || die "hyperfine is missing: apt-get install -y hyperfine"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install -y time"

cd "$REPO"
cargo build -q --release -p kaudit-node
cargo build -q -p kube-apiserver-standin
DIR=/var/tmp/kaudit-bench-$$
"$SB" up "$DIR" 2>/dev/null
"$SB" install-flavor "$DIR" kthw >/dev/null
"$SB" put "$DIR" "$REPO/target/release/kaudit-node" /usr/local/sbin/kaudit-node 0755
in_sb systemctl start "$UNIT"
in_sb /usr/local/sbin/kaudit-node apply >/dev/null || die "apply failed"

# Until the check is OK: the node is healthy.
healthy() {
	local i out
	for ((i = 0; i < 100; i++)); do
		if out=$(in_sb /usr/local/sbin/kaudit-node check); then
			return 0
		fi
		sleep 0.1
	done
	die "the node is not healthy: $out"
}

# Whole event lines appended until the log is at least 1 MiB.
in_sb sh -c "l=\$(tail -n1 $LOG); s=\$(stat -c %s $LOG); n=\$(( (1048576 - s) / (\${#l} + 1) + 1 )); yes \"\$l\" | head -n \$n >> $LOG"
healthy

# hyperfine inside the container, so every command pays the same costs.
# Prints "NAME MEDIAN_SECONDS MIN_SECONDS" per command.
measure() {
	local csv=/tmp/bench.csv
	in_sb hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-csv "$csv" "$@" >/dev/null
	in_sb cat "$csv" | awk -F, 'NR > 1 { print $1, $4, $7 }'
}

size_of() { in_sb stat -c %s "$LOG"; }

# Waits until the last line of the log is a real event again.
settle() {
	local i
	for ((i = 0; i < 100; i++)); do
		in_sb sh -c "tail -c 4096 $LOG | tail -n1 | grep -q '\"kind\":\"Event\"'" && break
		sleep 0.05
	done
	healthy
}

# Rounds alternate the same live log between 1 MB and 5 GB, so load from
# other processes on the machine hits both sizes alike. The 5 GB log is
# SPARSE: `truncate -s 5G` adds a hole, after which the stand-in appends real
# lines (its descriptor is O_APPEND); shrinking back cuts a line, and
# settle() waits for the next whole one.
SMALL=$(size_of)
results=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
	in_sb truncate -s "$SMALL" "$LOG"
	settle
	size1=$(size_of)
	measure -n is-active "systemctl is-active $UNIT" -n check-1mb "/usr/local/sbin/kaudit-node check" >>"$results"
	in_sb truncate -s 5G "$LOG"
	settle
	size5=$(size_of)
	blocks5=$(in_sb du -k "$LOG" | cut -f1)
	measure -n check-5gb "/usr/local/sbin/kaudit-node check" -n is-active "systemctl is-active $UNIT" >>"$results"
	rss5=$(for _ in 1 2 3; do in_sb /usr/bin/time -f %M /usr/local/sbin/kaudit-node check 2>&1 >/dev/null | tail -n1; done | sort -n | tail -n1)
	say "round $r of $ROUNDS done"
done
in_sb truncate -s "$SMALL" "$LOG"
settle
rss1=$(for _ in 1 2 3 4 5; do in_sb /usr/bin/time -f %M /usr/local/sbin/kaudit-node check 2>&1 >/dev/null | tail -n1; done | sort -n | tail -n1)

# The median over all rounds of each command's per-round medians.
med() { awk -v n="$1" '$1 == n { print $2 }' "$results" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The least of each command's minimums: its cost when nothing else ran.
least() { awk -v n="$1" '$1 == n { print $3 }' "$results" | sort -g | head -n1; }
active=$(med is-active)
check1=$(med check-1mb)
check5=$(med check-5gb)
active_min=$(least is-active)
check1_min=$(least check-1mb)
check5_min=$(least check-5gb)
rm -f "$results"

awk -v c1="$check1" -v a="$active" -v c5="$check5" -v rss1="$rss1" -v rss5="$rss5" \
	-v c1m="$check1_min" -v am="$active_min" -v c5m="$check5_min" \
	-v s1="$size1" -v s5="$size5" -v k5="$blocks5" -v runs="$RUNS" -v rounds="$ROUNDS" 'BEGIN {
	printf "kaudit-node check benchmark (release build, inside the sandbox; hyperfine, %d rounds of %d runs per command, medians)\n", rounds, runs
	printf "  1. wall time: check %.2f ms, systemctl is-active %.2f ms: ratio %.2f (target <= 1.5)\n", c1 * 1000, a * 1000, c1 / a
	printf "  2. peak RSS: %.2f MiB with the 1 MB log, %.2f MiB with the 5 GB log (target <= 8 MiB)\n", rss1 / 1024, rss5 / 1024
	printf "  3. log size: check %.2f ms with a %.1f MB log, %.2f ms with a %.2f GB log (SPARSE: %d KiB allocated): ratio %.2f (target <= 1.1)\n", c1 * 1000, s1 / 1e6, c5 * 1000, s5 / 1e9, k5, c5 / c1
	printf "  minimums: check %.2f ms (1 MB), %.2f ms (5 GB), systemctl is-active %.2f ms: ratios %.2f to is-active, %.2f 5 GB to 1 MB\n", c1m * 1000, c5m * 1000, am * 1000, c1m / am, c5m / c1m
}'
