#!/usr/bin/env bash
# System tests of `kaudit-node events` against a real systemd (PID 1 of a
# systemd-nspawn container, tests/system/sandbox.sh) running the
# kube-apiserver TEST STAND-IN (tests/standin) under the kthw unit.
#
# kaudit-node runs inside the container, as an operator runs it. Each scenario
# boots its own sandbox, applies, and pauses the stand-in's event writing
# (STANDIN_PAUSE_FILE) whenever it compares kaudit-node's output with the
# files, so that both see the same log:
#
#   history    the embedded defaults (apiserver rotation): `events --since 1m`
#              prints one text line per event of the live log, each starting
#              with a recent timestamp, in stageTimestamp order, the stand-in's
#              system:apiserver among the users; `--count` (also with --verb,
#              --user) equals the lines; --since/--until an RFC 3339 time
#              split them; `--format json` prints the live log's lines byte
#              for byte in stageTimestamp order, then one kaudit-node.Summary
#              trailer
#   apiserver  `events --follow --format json` (a transient unit in the
#              sandbox) while the stand-in writes 300 requests/s into a 1 MB
#              lumberjack log: across the real rename to audit-<time>.log, the
#              follower prints every line written after it started, from the
#              old file (up to the rename) and from the new live file, none
#              twice, none from before it started (no --since: no history)
#   logrotate  the same with log.rotation = "logrotate" and a real
#              `logrotate -f` on kaudit-node's snippet (copytruncate): every
#              line written after the truncate is printed; a line of the old
#              file the follower missed can only be among its last ones (the
#              copy-to-truncate window); nothing torn, nothing twice
#
# Usage: tests/system/events.sh [SCENARIO...]   (default: all)
# Needs root and systemd-container. Prints how many lines each follower saw.
set -euo pipefail

TAG=events
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The stand-in writes no event while this file exists (STANDIN_PAUSE_FILE).
PAUSE=/run/standin-pause
# Requests per second in the follow scenarios: with the metadata preset one
# Metadata event of about 800 bytes each, about 230 KB/s: 1 MB in about 4.5 s.
RATE=300
# The follower: a transient unit in the sandbox, its output in files there.
FOLLOWER=kaudit-node-events-follow.service
FOLLOW_OUT=/run/kaudit-node-follow.out
FOLLOW_ERR=/run/kaudit-node-follow.err
SNIPPET=/etc/logrotate.d/kaudit-node
EVENT_RE='^\{"kind":"Event",.*\}$'
TRAILER_RE='^\{"kind":"kaudit-node\.Summary"'
export LC_ALL=C

# Polls CMD… every 0.1 s until it succeeds or SECS seconds pass.
wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# A test drop-in for the stand-in: the pause file, and RATE requests per second if given.
standin_env() {
	in_sb sh -c "mkdir -p $DDIR && printf '[Service]\nEnvironment=STANDIN_PAUSE_FILE=$PAUSE${1:+ STANDIN_RATE=$1}\n' >$DDIR/10-test-events.conf"
	in_sb systemctl daemon-reload
}

log_size() { in_sb stat -c %s "$LOG"; }
log_lines() { in_sb sh -c "wc -l <$LOG"; }
live_has_lines() { (($(log_lines) >= $1)); }
# The lumberjack backups (audit-<time>.log[.gz]) and logrotate's copies
# (audit.log-YYYYMMDD-<epoch>[.gz]), oldest first.
backups() { in_sb sh -c "cd $LOGDIR && ls -1 | grep -E '^audit-.*\.log(\.gz)?\$' | sort" || true; }
copies() { in_sb sh -c "cd $LOGDIR && ls -1 | grep -E '^audit\.log-[0-9]{8}-[0-9]+(\.gz)?\$' | sort" || true; }
has_backup() { [[ -n $(backups) ]]; }
# The content of the files named on standard input (in LOGDIR), in that order.
cat_files() {
	local f
	while read -r f; do in_sb zcat -f "$LOGDIR/$f"; done
}

# Pauses event writing and waits until the log has stopped growing.
pause() {
	local a b i
	in_sb touch "$PAUSE"
	b=$(log_size)
	for ((i = 0; i < 50; i++)); do
		sleep 0.2
		a=$b
		b=$(log_size)
		[[ $a == "$b" ]] && return 0
	done
	fail "$LOG still grows 10 s after $PAUSE was created"
}
resume() { in_sb rm -f "$PAUSE"; }

# Runs `kaudit-node ARGS…` in the sandbox; sets OUT (standard output) and RC;
# standard error goes to $DIR/stderr.
KN_OUT=""
RC=0
knr() { KN_OUT=$(kn "$@" 2>"$DIR/stderr") && RC=0 || RC=$?; }
# The same, failing unless it exits 0.
kn_ok() {
	knr "$@"
	[[ $RC == 0 ]] || fail "kaudit-node $*: exit $RC: $(cat "$DIR/stderr") $KN_OUT"
}

follower_pid() { in_sb systemctl show -p MainPID --value "$FOLLOWER"; }
follower_holds_log() {
	local pid
	pid=$(follower_pid)
	[[ $pid != 0 ]] && grep -qx "$LOG" <<<"$(in_sb sh -c "readlink /proc/$pid/fd/*" 2>/dev/null)"
}
follower_state() { in_sb systemctl show -p ActiveState,SubState,Result,ExecMainStatus --value "$FOLLOWER" | paste -sd' '; }
follower_err() { in_sb cat "$FOLLOW_ERR" 2>/dev/null | tail -n 5; }

# Starts `kaudit-node events --follow --format json` as a transient unit
# in the sandbox (at most 120 s) and waits until it holds the live log open.
follow_start() {
	in_sb rm -f "$FOLLOW_OUT" "$FOLLOW_ERR"
	in_sb systemd-run --quiet --unit="$FOLLOWER" --property=RuntimeMaxSec=120 \
		--property=StandardOutput="file:$FOLLOW_OUT" --property=StandardError="file:$FOLLOW_ERR" \
		/usr/local/sbin/kaudit-node events --follow --format json ||
		fail "systemd-run of the follower failed"
	wait_until 10 follower_holds_log ||
		fail "events --follow does not hold $LOG open 10 s after it started ($(follower_state)): $(follower_err)"
}

# Stops the follower (it must still be running) and copies its output to $DIR/follow.out.
follow_stop() {
	[[ $(in_sb systemctl is-active "$FOLLOWER" || true) == active ]] ||
		fail "events --follow exited by itself ($(follower_state)): $(follower_err)"
	in_sb systemctl stop "$FOLLOWER"
	in_sb cat "$FOLLOW_OUT" >"$DIR/follow.out"
}

# The follower's output so far, in $DIR/follow.out.
follow_snapshot() { in_sb cat "$FOLLOW_OUT" >"$DIR/follow.out" 2>/dev/null || : >"$DIR/follow.out"; }
# Lines of file A that are not in file B.
missing() { comm -23 <(sort -u "$1") <(sort -u "$2"); }
# Whether the follower printed every line of FILE (on the host).
follow_has_all() {
	follow_snapshot
	[[ -z $(missing "$1" "$DIR/follow.out") ]]
}

# The checks both follow scenarios share: the follower's lines are whole
# events and its last line a trailer, if any; none twice; none of HISTORY
# (written before it started).
check_follow_output() {
	local history=$1 bad dups old
	grep -E "$EVENT_RE" "$DIR/follow.out" >"$DIR/follow.events" || true
	bad=$(grep -Evc -e "$EVENT_RE" -e "$TRAILER_RE" "$DIR/follow.out" || true)
	[[ $bad == 0 ]] || fail "events --follow printed $bad lines that are neither whole events nor the trailer: $(grep -Ev -e "$EVENT_RE" -e "$TRAILER_RE" "$DIR/follow.out" | head -c 600)"
	if grep -qE "$TRAILER_RE" "$DIR/follow.out"; then
		tail -n 1 "$DIR/follow.out" | grep -qE "$TRAILER_RE" || fail "events --follow: the trailer is not the last line"
	fi
	dups=$(sort "$DIR/follow.events" | uniq -d | wc -l)
	[[ $dups == 0 ]] || fail "events --follow printed $dups events twice"
	old=$(comm -12 <(sort -u "$history") <(sort -u "$DIR/follow.events") | wc -l)
	[[ $old == 0 ]] || fail "events --follow without --since printed $old events written before it started"
}

# --- scenarios ------------------------------------------------------------

scenario_history() {
	boot kthw
	standin_env
	kn_ok apply
	wait_events || fail "no audit event in $LOG after apply"
	wait_until 20 live_has_lines 20 || fail "fewer than 20 events in $LOG 20 s after apply (the stand-in writes about 4/s under the recommended preset)"
	pause
	in_sb cat "$LOG" >"$DIR/live.log"
	local n text count json trailer t_now stamps old_or_future
	n=$(grep -cE "$EVENT_RE" "$DIR/live.log" || true)
	[[ $n == $(wc -l <"$DIR/live.log") ]] || fail "$LOG has lines that are not events"

	# Text: one line per event of the live log (all younger than a minute).
	kn_ok events --since 1m
	text=$KN_OUT
	printf '%s\n' "$text" >"$DIR/text.out"
	[[ -n $text ]] || fail "events --since 1m printed nothing; $LOG has $n events"
	[[ $(wc -l <"$DIR/text.out") == "$n" ]] ||
		fail "events --since 1m printed $(wc -l <"$DIR/text.out") lines, $LOG has $n events (all written in the last minute): $(head -n 3 "$DIR/text.out")"
	# Each line: <stageTimestamp> <user> <verb> <resource> <ns/name> <code> <latency>.
	awk 'NF < 7 { print NR": "$0; exit 1 }' "$DIR/text.out" >"$DIR/short" || fail "events: a text line has fewer than 7 fields: $(cat "$DIR/short")"
	! grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}' "$DIR/text.out" ||
		fail "events: a text line does not start with an RFC 3339 timestamp: $(grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$DIR/text.out" | head -n 1)"
	stamps=$(cut -d' ' -f1 "$DIR/text.out" | date -f - +%s.%N) || fail "events: unparsable timestamps: $(cut -d' ' -f1 "$DIR/text.out" | head -n 3)"
	t_now=$(date +%s)
	old_or_future=$(awk -v now="$t_now" '$1 < now - 180 || $1 > now + 5' <<<"$stamps" | wc -l)
	[[ $old_or_future == 0 ]] || fail "events: $old_or_future timestamps are not within the last 3 minutes: $(head -n 2 "$DIR/text.out")"
	sort -c -g <<<"$stamps" 2>/dev/null || fail "events: the lines are not in stageTimestamp order: $(head -n 5 "$DIR/text.out")"
	awk '{ print $2 }' "$DIR/text.out" | grep -qx 'system:apiserver' ||
		fail "events: the stand-in's user system:apiserver is not in the second field: $(head -n 3 "$DIR/text.out")"
	# The first line describes the first event (stageTimestamp order) of the log.
	local first_ts first_user first_verb a b c
	first_ts=$(grep -o '"stageTimestamp":"[^"]*"' "$DIR/live.log" | cut -d'"' -f4 | sort | head -n 1)
	first_user=$(grep -F "\"stageTimestamp\":\"$first_ts\"" "$DIR/live.log" | head -n 1 | grep -o '"username":"[^"]*"' | cut -d'"' -f4)
	first_verb=$(grep -F "\"stageTimestamp\":\"$first_ts\"" "$DIR/live.log" | head -n 1 | grep -o '"verb":"[^"]*"' | cut -d'"' -f4)
	read -r a b c _ <"$DIR/text.out"
	[[ $(date -d "$a" +%s.%N) == $(date -d "$first_ts" +%s.%N) && $b == "$first_user" && $c == "$first_verb" ]] ||
		fail "events: first line '$a $b $c …', want the log's first event $first_ts $first_user $first_verb"

	# --count: one integer, the same number; and with filters.
	kn_ok events --since 1m --count
	count=$KN_OUT
	[[ $count =~ ^[0-9]+$ ]] || fail "events --count printed '$count', want one integer"
	[[ $count == "$n" ]] || fail "events --since 1m --count = $count, but $n text lines"
	local want
	want=$(grep -c '"verb":"list"' "$DIR/live.log" || true)
	kn_ok events --since 1m --count --verb list
	[[ $KN_OUT == "$want" ]] || fail "events --since 1m --count --verb list = $KN_OUT, $LOG has $want list events"
	want=$(grep -c '"username":"system:apiserver"' "$DIR/live.log" || true)
	kn_ok events --since 1m --count --user 'system:api*'
	[[ $KN_OUT == "$want" ]] || fail "events --since 1m --count --user 'system:api*' = $KN_OUT, $LOG has $want events by system:apiserver"

	# --since and --until an RFC 3339 time: at or after it, before it.
	local stamps_sorted mid n_after n_before
	stamps_sorted=$(grep -o '"stageTimestamp":"[^"]*"' "$DIR/live.log" | cut -d'"' -f4 | sort)
	mid=$(sed -n "$(((n + 1) / 2))p" <<<"$stamps_sorted")
	n_after=$(awk -v t="$mid" '$0 >= t' <<<"$stamps_sorted" | wc -l)
	n_before=$((n - n_after))
	kn_ok events --since "$mid" --count
	[[ $KN_OUT == "$n_after" ]] || fail "events --since $mid --count = $KN_OUT, $LOG has $n_after events at or after it"
	kn_ok events --since 1h --until "$mid" --count
	[[ $KN_OUT == "$n_before" ]] || fail "events --since 1h --until $mid --count = $KN_OUT, $LOG has $n_before events before it"

	# JSON: the log's own lines, untouched, then the trailer.
	kn_ok events --since 1m --format json
	json=$KN_OUT
	printf '%s\n' "$json" >"$DIR/json.out"
	[[ $(wc -l <"$DIR/json.out") == $((n + 1)) ]] || fail "events --format json printed $(wc -l <"$DIR/json.out") lines, want $n events and a trailer"
	trailer=$(tail -n 1 "$DIR/json.out")
	grep -qE "$TRAILER_RE" <<<"$trailer" || fail "events --format json: the last line is not a kaudit-node.Summary trailer: ${trailer:0:300}"
	head -n "$n" "$DIR/json.out" >"$DIR/json.events"
	local i line
	for i in 1 2 $((n / 2)) "$n"; do
		line=$(sed -n "${i}p" "$DIR/json.events")
		grep -qxF -- "$line" "$DIR/live.log" || fail "events --format json: line $i is not a line of $LOG: ${line:0:300}"
	done
	[[ -z $(missing "$DIR/json.events" "$DIR/live.log") ]] || fail "events --format json: $(missing "$DIR/json.events" "$DIR/live.log" | wc -l) lines are not byte-identical to a line of $LOG"
	[[ -z $(missing "$DIR/live.log" "$DIR/json.events") ]] || fail "events --format json: $(missing "$DIR/live.log" "$DIR/json.events" | wc -l) lines of $LOG are missing"
	grep -o '"stageTimestamp":"[^"]*"' "$DIR/json.events" | sort -c 2>/dev/null || fail "events --format json: the lines are not in stageTimestamp order"
	resume
	PASSED+=("history (default configuration, apiserver rotation): events --since 1m = the $n events of the live log, recent timestamps in order, system:apiserver; --count (also --verb, --user) the same; --since/--until an RFC 3339 time split them ($n_after/$n_before); --format json the raw lines in order and a trailer")
	FIGURES+=("history: $n events; first text line: $(head -n 1 "$DIR/text.out")")
	FIGURES+=("history: trailer ${trailer:0:200}")
}

scenario_apiserver() {
	boot kthw
	standin_env "$RATE"
	config $'[policy]\npreset = "metadata"\n[log]\nmaxsize = 1\n'
	kn_ok apply
	wait_events || fail "no audit event in $LOG after apply"
	pause
	[[ -z $(backups) ]] || fail "the log rotated before the follower started ($(backups)): lower RATE"
	in_sb cat "$LOG" >"$DIR/history.log"
	local n0
	n0=$(wc -l <"$DIR/history.log")
	follow_start
	resume
	wait_until 30 has_backup || fail "no lumberjack backup audit-*.log in $LOGDIR 30 s after the follower started (maxsize 1 MB, $RATE requests/s; $(log_size) bytes)"
	local rotated_at
	rotated_at=$(backups | head -n 1)
	wait_until 20 live_has_lines 300 || fail "fewer than 300 events in the new $LOG 20 s after the rotation to $rotated_at"
	pause
	# What was written after the follower started: the rest of the file that
	# was live then (now the oldest backup), later backups, the live file.
	backups | cat_files >"$DIR/backups.log"
	in_sb cat "$LOG" >"$DIR/live.log"
	head -n "$n0" "$DIR/backups.log" | cmp -s - "$DIR/history.log" || fail "the oldest backup does not start with the log as it was when the follower started"
	tail -n +"$((n0 + 1))" "$DIR/backups.log" >"$DIR/old.log"
	cat "$DIR/old.log" "$DIR/live.log" >"$DIR/expected.log"
	wait_until 10 follow_has_all "$DIR/expected.log" || true
	follow_stop
	check_follow_output "$DIR/history.log"
	local lost_old lost_new extra
	lost_old=$(missing "$DIR/old.log" "$DIR/follow.events" | wc -l)
	lost_new=$(missing "$DIR/live.log" "$DIR/follow.events" | wc -l)
	extra=$(missing "$DIR/follow.events" "$DIR/expected.log" | wc -l)
	[[ -s $DIR/old.log && -s $DIR/live.log ]] || fail "nothing written to the old or the new file ($(wc -l <"$DIR/old.log") and $(wc -l <"$DIR/live.log") lines)"
	[[ $lost_new == 0 ]] || fail "events --follow missed $lost_new of the $(wc -l <"$DIR/live.log") events of the new live file (after the rename to $rotated_at); printed $(wc -l <"$DIR/follow.events")"
	[[ $lost_old == 0 ]] || fail "events --follow missed $lost_old of the $(wc -l <"$DIR/old.log") events written to the old file after it started (lost at the rename to $rotated_at?)"
	[[ $extra == 0 ]] || fail "events --follow printed $extra events that are in no file: $(missing "$DIR/follow.events" "$DIR/expected.log" | head -n 1 | head -c 300)"
	PASSED+=("apiserver rotation: events --follow --format json across the rename to $rotated_at: all $(wc -l <"$DIR/old.log") later events of the old file and all $(wc -l <"$DIR/live.log") of the new one, once each, no history")
	FIGURES+=("apiserver: $(backups | wc -l) rotation(s) at maxsize 1 MB, $RATE requests/s; the follower printed $(wc -l <"$DIR/follow.events") events")
}

scenario_logrotate() {
	boot kthw
	standin_env "$RATE"
	config $'[policy]\npreset = "metadata"\n[log]\nrotation = "logrotate"\n'
	kn_ok apply
	grep -q "wrote $SNIPPET" <<<"$KN_OUT$(cat "$DIR/stderr")" || fail "apply did not report writing the logrotate snippet $SNIPPET: $KN_OUT"
	in_sb grep -qx '    copytruncate' "$SNIPPET" || fail "$SNIPPET has no copytruncate"
	wait_events || fail "no audit event in $LOG after apply"
	pause
	in_sb cat "$LOG" >"$DIR/history.log"
	local n0
	n0=$(wc -l <"$DIR/history.log")
	follow_start
	resume
	wait_until 20 live_has_lines $((n0 + 300)) || fail "fewer than 300 new events in $LOG 20 s after the follower started"
	in_sb logrotate -f "$SNIPPET" || fail "logrotate -f $SNIPPET failed"
	local copy
	copy=$(copies)
	[[ -n $copy && $(wc -l <<<"$copy") == 1 ]] || fail "logrotate -f: want one copy audit.log-YYYYMMDD-<epoch> in $LOGDIR, found: $(in_sb ls "$LOGDIR" | paste -sd' ')"
	wait_until 20 live_has_lines 300 || fail "fewer than 300 events in $LOG 20 s after the copytruncate"
	pause
	cat_files <<<"$copy" >"$DIR/copy.log"
	in_sb cat "$LOG" >"$DIR/live.log"
	head -n "$n0" "$DIR/copy.log" | cmp -s - "$DIR/history.log" || fail "the copy $copy does not start with the log as it was when the follower started"
	tail -n +"$((n0 + 1))" "$DIR/copy.log" >"$DIR/old.log"
	wait_until 10 follow_has_all "$DIR/live.log" || true
	follow_stop
	check_follow_output "$DIR/history.log"
	local lost_new seen_old first_missed lost_old gap bad_gap
	lost_new=$(missing "$DIR/live.log" "$DIR/follow.events" | wc -l)
	[[ -s $DIR/old.log && -s $DIR/live.log ]] || fail "nothing written before or after the copytruncate ($(wc -l <"$DIR/old.log") and $(wc -l <"$DIR/live.log") lines)"
	[[ $lost_new == 0 ]] || fail "events --follow missed $lost_new of the $(wc -l <"$DIR/live.log") events written after logrotate's copytruncate; printed $(wc -l <"$DIR/follow.events")"
	# The old file's lines the follower printed: all of them, those it had not
	# read before the truncate from logrotate's copy.
	awk 'NR == FNR { seen[$0] = 1; next } { print (($0 in seen) ? 1 : 0) }' "$DIR/follow.events" "$DIR/old.log" >"$DIR/old.seen"
	seen_old=$(grep -c 1 "$DIR/old.seen" || true)
	first_missed=$(grep -n -m1 0 "$DIR/old.seen" | cut -d: -f1 || true)
	[[ -z $first_missed ]] || fail "events --follow missed $(grep -c 0 "$DIR/old.seen") of the $(wc -l <"$DIR/old.log") events written before the copytruncate (the first at line $((n0 + first_missed)) of $copy)"
	lost_old=$(($(wc -l <"$DIR/old.log") - seen_old))
	# Lines in neither file: written between logrotate's copy and its truncate;
	# the follower may have read them. Whole events, a few.
	gap=$(missing "$DIR/follow.events" <(cat "$DIR/old.log" "$DIR/live.log") | wc -l)
	bad_gap=$(missing "$DIR/follow.events" <(cat "$DIR/old.log" "$DIR/live.log") |
		python3 -c 'import json, sys
print(sum(1 for l in sys.stdin if json.loads(l).get("kind") != "Event"))' 2>&1) || bad_gap="unparsable"
	[[ $bad_gap == 0 && $gap -lt 100 ]] || fail "events --follow printed $gap lines in neither $copy nor $LOG (bad: $bad_gap): $(missing "$DIR/follow.events" <(cat "$DIR/old.log" "$DIR/live.log") | head -n 1 | head -c 300)"
	PASSED+=("logrotate rotation: events --follow --format json across a real logrotate -f (copytruncate): all $(wc -l <"$DIR/live.log") events written after the truncate, all $seen_old before it (the unread ones from the copy), once each, no history")
	FIGURES+=("logrotate: the follower printed $(wc -l <"$DIR/follow.events") events; $lost_old of the old file's lines missed; $gap read from the copy-to-truncate window")
}

# --- main -----------------------------------------------------------------

need_root
build
scenarios=("$@")
((${#scenarios[@]})) || scenarios=(history apiserver logrotate)
run_scenarios "${scenarios[@]}"
