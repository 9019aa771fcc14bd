#!/usr/bin/env bash
# Benchmark of `kaudit-node events` against jq, the tool a user would reach
# for, on one big audit log built from the real kube-apiserver v1.32 events
# (tests/bench/gen-events.py). Both sides answer the same questions on the
# same file in the same run, with the page cache warm, so the ratios compare
# the parsers and not the disk. Prints one Markdown table.
#
# It fails when a measurement cannot be made or when kaudit-node's count for
# a question differs from jq's (a correctness check); never on timing.
#
# Usage: tests/bench/events.sh [--quick] [--mb N]
#   --mb N:  the log's size in MiB (default 1024)
#   --quick: a 64 MiB log (CI keeps the benchmark working with it; its
#            figures are rough)
# Needs jq and python3. No root, no sandbox: it only reads a file.
set -euo pipefail
# One decimal point for $EPOCHREALTIME and awk, whatever the user's locale.
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MB=1024
# Best of RUNS for each side: the fastest run is the one least disturbed
# by whatever else the machine does.
RUNS=3
TMP=""

say() { echo "bench: $*" >&2; }
die() {
	say "$*"
	exit 1
}
usage() { die "usage: tests/bench/events.sh [--quick] [--mb N]"; }
cleanup() {
	local rc=$?
	if [[ -n $TMP ]]; then rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT

while (($#)); do
	case $1 in
	--quick) MB=64 ;;
	--mb)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage
		MB=$2
		shift
		;;
	*) usage ;;
	esac
	shift
done

command -v jq >/dev/null || die "jq is missing: apt-get install -y jq"
command -v python3 >/dev/null || die "python3 is missing: apt-get install -y python3"

cd "$REPO"
cargo build -q --release -p kaudit-node || die "cargo build --release -p kaudit-node failed"
BIN=$REPO/target/release/kaudit-node
"$BIN" events --help >/dev/null 2>&1 || die "$BIN has no \`events\` subcommand"

# /var/tmp, not /tmp: /tmp is often a tmpfs, and a 1 GiB log in RAM would
# be counted twice against the page cache it is read from.
TMP=$(mktemp -d /var/tmp/kaudit-bench-events.XXXXXX)
F=$TMP/audit.log
t0=$EPOCHREALTIME
python3 "$HERE/gen-events.py" --out "$F" --mb "$MB" 2>/dev/null || die "gen-events.py failed"
gen_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
size=$(stat -c %s "$F")
events=$(wc -l <"$F")
say "generated $size bytes, $events events in $gen_s s"
# Twice: the first read fills the cache, the second shows it stayed there.
cat "$F" >/dev/null
cat "$F" >/dev/null

# best CMD...: runs CMD RUNS times; sets $secs to the fastest wall time
# and $out to the standard output, which must be the same every run.
# $EPOCHREALTIME rather than `date +%s.%N`: no process start inside the
# timed region, which matters for the short kaudit-node runs of --quick.
secs=""
out=""
best() {
	local i t0 t1 o s
	secs=""
	for ((i = 0; i < RUNS; i++)); do
		t0=$EPOCHREALTIME
		o=$("$@") || die "failed: $*"
		t1=$EPOCHREALTIME
		if ((i > 0)) && [[ $o != "$out" ]]; then die "$* gave '$out', then '$o'"; fi
		out=$o
		s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
		if [[ -z $secs ]] || awk -v s="$s" -v m="$secs" 'BEGIN { exit !(s < m) }'; then secs=$s; fi
	done
}

# The questions: the kaudit-node flag and the jq filter a user would write.
declare -A JQ=(
	[secrets]='select(.objectRef.resource=="secrets")'
	[exec]='select(.objectRef.resource=="pods" and (.objectRef.subresource=="exec" or .objectRef.subresource=="attach" or .objectRef.subresource=="portforward"))'
	[rbac]='select(.objectRef.apiGroup=="rbac.authorization.k8s.io" and (.verb=="create" or .verb=="update" or .verb=="patch" or .verb=="delete" or .verb=="deletecollection"))'
	[denied]='select(.responseStatus.code==401 or .responseStatus.code==403)'
	[anonymous]='select(.user.username=="system:anonymous")'
)
QUESTIONS=(secrets exec rbac denied anonymous)

jq_count() { jq -c "${JQ[$1]}" "$F" | wc -l; }
kn_count() { "$BIN" events --file "$F" "--$1" --count; }
jq_text() { jq -c "${JQ[$1]}" "$F" >/dev/null; }
kn_text() { "$BIN" events --file "$F" "--$1" >/dev/null; }
cat_file() { cat "$F" >/dev/null; }

mibs() { awk -v b="$size" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }
fmt() { awk -v s="$1" 'BEGIN { printf "%.3f", s }'; }

best cat_file
cat_s=$secs
cat_rate=$(mibs "$cat_s")

rows=()
row() { # QUESTION JQ_S KN_S
	rows+=("| $1 | $(fmt "$2") | $(fmt "$3") | $(ratio "$2" "$3") | $(mibs "$3") | $cat_rate |")
}
for q in "${QUESTIONS[@]}"; do
	say "$q"
	best jq_count "$q"
	jq_s=$secs
	want=$((out))
	best kn_count "$q"
	kn_s=$secs
	[[ $out =~ ^[0-9]+$ ]] || die "$q: \`kaudit-node events --file F --$q --count\` printed '$out', not a count"
	if ((out != want)); then
		die "$q: kaudit-node counts $out events, jq counts $want (kaudit-node events --file F --$q --count; jq -c '${JQ[$q]}' F | wc -l)"
	fi
	row "$q (\`--$q --count\`, $want events)" "$jq_s" "$kn_s"
done
say "denied, text output"
best jq_text denied
jq_s=$secs
best kn_text denied
kn_s=$secs
row "denied, the events printed (\`--denied\` > /dev/null; jq: its lines)" "$jq_s" "$kn_s"

# Memory: the peak RSS of the two runs that hold the most (every event
# printed through the time-order window, and a --by table), which must not
# grow with the log.
rss() { /usr/bin/time -f %M "$BIN" events --file "$F" "$@" 2>&1 >/dev/null | tail -1; }
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install -y time"
rss_json=$(rss --format json)
rss_by=$(rss --by user)
[[ $rss_json =~ ^[0-9]+$ && $rss_by =~ ^[0-9]+$ ]] || die "no peak RSS from /usr/bin/time ($rss_json, $rss_by)"

cat <<EOF

kaudit-node events against jq, $(date -u +%F): $(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1048576 }') MiB ($size bytes), $events events; $(nproc) CPUs; $(jq --version); MiB = 2^20 bytes
(release build; gen-events.py --mb $MB, generated in $gen_s s; page cache warm; best of $RUNS runs per side; ratio = jq s / kaudit-node s)

| question | jq s | kaudit-node s | ratio | kaudit-node MiB/s | cat MiB/s |
|---|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")
| ceiling: \`cat F > /dev/null\`, $(fmt "$cat_s") s | — | — | — | — | $cat_rate |

Peak RSS: $((rss_json / 1024)) MiB printing every event (\`--format json\`), $((rss_by / 1024)) MiB for \`--by user\`.
EOF
