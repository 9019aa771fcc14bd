#!/usr/bin/env bash
# System tests of the Ansible role contrib/ansible/roles/kaudit_node and its
# example playbook (contrib/ansible/playbook.yml), with real ansible-core from
# PyPI (contrib/ansible/tools.sh) against THREE real-systemd sandbox nodes
# (tests/system/sandbox.sh), each running the kube-apiserver TEST STAND-IN under
# the kthw unit. Ansible reaches each node through the community.docker.nsenter
# connection, which enters the container by the PID of its systemd: no network
# address is used. The role installs kaudit-node in binary mode (a stripped copy
# of the debug build, or KAUDIT_BIN).
#
# Scenarios (in this order; each starts from the state the previous one left):
#   converge   first run: the three nodes converge one after another (restart
#              of node N+1 after node N's first audit event), each reported
#              changed, audit events on each; the role's defaults give the
#              same node as kaudit-node's embedded defaults
#   idempotent second run: nothing changed, no restart, no daemon-reload;
#              the gate alone (--tags kaudit_node_check) passes on every node
#   check      --check --diff with a changed variable: the config.toml and
#              plan diffs shown for each node, nothing changed anywhere
#   invalid    an invalid value: refused by kaudit-node before config.toml is
#              replaced; node 1 failed with kaudit-node's message, nothing
#              changed anywhere, the play stops
#   failure    the stand-in on node 2 fails with the new configuration: node 1
#              changed, node 2 rolled back by kaudit-node and reported failed
#              with its message, node 3 untouched, the play (and the playbook)
#              stops
#   package    (when a .deb has been built: target/packages, or KAUDIT_DEB) a
#              fourth node, the role in package-file mode: installed with the
#              postinst's own apply skipped, applied by the role; then a no-op
#
# Usage: tests/system/ansible.sh      Needs root, systemd-container, python3
# (with venv) and PyPI for the first run. Prints the figures it sees.
set -euo pipefail

TAG=ansible-test
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CONTRIB=$REPO/contrib/ansible
CONF=/etc/kaudit-node/config.toml
NODE_BIN=/usr/local/sbin/kaudit-node
WORK=/var/tmp/kaudit-ansible-$$
NODES=(1 2 3)
BOOTED=()
OUT=""
RC=0
# Generous: three sandboxes share 2 cores with whatever else runs.
PLAY_TIMEOUT=${ANSIBLE_TEST_PLAY_TIMEOUT:-900}

# What lib.sh's fail shows for this test: the play's results and each
# node's journal.
fail_details() {
	if [[ -n $OUT && -s ${OUT%.out}.tsv ]]; then
		echo "--- ansible-playbook results (${OUT%.out}.tsv: play, task, host, status, message)" >&2
		cut -c1-400 "${OUT%.out}.tsv" >&2
	elif [[ -n $OUT && -f $OUT ]]; then
		echo "--- ansible-playbook output ($OUT), last 60 lines" >&2
		tail -n 60 "$OUT" >&2
		if [[ -s ${OUT%.out}.err ]]; then
			echo "--- its stderr (${OUT%.out}.err), last 20 lines" >&2
			tail -n 20 "${OUT%.out}.err" >&2
		fi
	fi
	local n
	for n in "${BOOTED[@]}"; do
		echo "--- journal of $UNIT on node$n" >&2
		in_node "$n" journalctl -u "$UNIT" -n 10 --no-pager -o cat >&2 2>/dev/null || true
	done
}
sbdir() { echo "/var/tmp/kaudit-ansible-$$-node$1"; }
in_node() {
	local n=$1
	shift
	"$SB" exec "$(sbdir "$n")" "$@"
}

node_main_pid() { in_node "$1" systemctl show -p MainPID --value "$UNIT"; }
node_active() { in_node "$1" systemctl is-active "$UNIT" 2>/dev/null || true; }
# The wall-clock start of the main process, in microseconds since the epoch
# (the clock is the host's: comparable across the nodes).
start_us() {
	in_node "$1" busctl get-property org.freedesktop.systemd1 \
		/org/freedesktop/systemd1/unit/kube_2dapiserver_2eservice \
		org.freedesktop.systemd1.Service ExecMainStartTimestamp | awk '{print $2}'
}
node_reloads() { in_node "$1" journalctl _PID=1 --no-pager -o cat 2>/dev/null | grep -c '^Reloading' || true; }
node_hash() { in_node "$1" sh -c "cat $DROPIN $POLICY $CONF $NODE_BIN 2>/dev/null | sha256sum"; }
# The last value of --NAME in the main process's argv (pflag: last wins).
node_flag_value() { in_node "$1" cat "/proc/$(node_main_pid "$1")/cmdline" | tr '\0' '\n' | sed -n "s/^--$2=//p" | tail -1; }
# requestReceivedTimestamp of the first event in the log, in microseconds.
first_event_us() {
	in_node "$1" head -n1 "$LOG" | python3 -c '
import datetime, json, sys
t = json.loads(sys.stdin.readline())["requestReceivedTimestamp"]
d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
print(int(d.timestamp()) * 1000000 + d.microsecond)'
}
node_wait_events() {
	local i
	for ((i = 0; i < 150; i++)); do
		if grep -qv '^0$' <<<"$(in_node "$1" sh -c "grep -c '\"kind\":\"Event\"' $LOG 2>/dev/null")"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Everything a run must not change on a node: main PID and start, number of
# daemon-reloads, kaudit-node's files and binary.
state() { echo "pid=$(node_main_pid "$1") start=$(start_us "$1") reloads=$(node_reloads "$1") files=$(node_hash "$1")"; }

# lib.sh's on_exit calls this: the nodes powered off, the outputs kept.
cleanup_more() {
	local rc=$1 n
	for n in "${BOOTED[@]}"; do
		"$SB" down "$(sbdir "$n")" >/dev/null 2>&1 || true
	done
	if [[ -d $WORK ]]; then
		# Keep the inventory and the outputs for a look.
		rm -rf -- "$REPO/target/ansible-test"
		mkdir -p "$REPO/target/ansible-test"
		cp "$WORK"/*.out "$WORK"/*.err "$WORK"/*.tsv "$WORK"/*.ini "$REPO/target/ansible-test/" 2>/dev/null || true
		[[ $rc == 0 ]] || say "outputs kept in $REPO/target/ansible-test/"
		rm -rf -- "$WORK"
	fi
}

# play NAME [ARGS...]: runs the example playbook against the three nodes; sets
# RC and OUT (the output file). JSON=1 selects the ansible.posix.json callback;
# INV another inventory.
play() {
	local name=$1 t0
	shift
	OUT=$WORK/$name.out
	t0=$(now)
	if [[ ${JSON:-0} == 1 ]]; then
		ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
			timeout "$PLAY_TIMEOUT" ansible-playbook -i "${INV:-$WORK/inventory.ini}" "$CONTRIB/playbook.yml" "$@" \
			>"$OUT" 2>"$WORK/$name.err" && RC=0 || RC=$?
	else
		# stderr (Ansible's [WARNING] lines, written unbuffered) apart from
		# stdout (block-buffered into a file): in one file a warning can land
		# in the middle of a result line, such as `changed: [node1]`.
		timeout "$PLAY_TIMEOUT" ansible-playbook -i "${INV:-$WORK/inventory.ini}" "$CONTRIB/playbook.yml" "$@" \
			>"$OUT" 2>"$WORK/$name.err" && RC=0 || RC=$?
	fi
	if [[ ${JSON:-0} == 1 ]]; then results "$OUT" >"$WORK/$name.tsv" 2>/dev/null || true; fi
	[[ $RC != 124 ]] || fail "ansible-playbook $name timed out after $PLAY_TIMEOUT s"
	FIGURES+=("ansible-playbook $name: $(since "$t0") s (exit $RC)")
}

# results FILE: one line per play batch, task and host of a JSON run:
#   PLAY_INDEX<TAB>PLAY<TAB>TASK<TAB>HOST<TAB>STATUS<TAB>MSG<TAB>STDOUT<TAB>STDERR
# STATUS: failed, changed, skipped or ok. Then `stats HOST changed=N failures=N`.
results() {
	python3 - "$1" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for i, play in enumerate(doc["plays"]):
    for task in play["tasks"]:
        for host, r in task["hosts"].items():
            status = ("failed" if r.get("failed") else "changed" if r.get("changed")
                      else "skipped" if r.get("skipped") else "ok")
            msg = str(r.get("msg", "")).replace("\n", " ").replace("\t", " ")
            out = str(r.get("stdout", "")).replace("\n", " | ").replace("\t", " ")[:2000]
            err = str(r.get("stderr", "")).replace("\n", " | ").replace("\t", " ")[:2000]
            print("\t".join([str(i), play["play"]["name"], task["task"]["name"], host, status, msg, out, err]))
for host, s in sorted(doc["stats"].items()):
    print("stats %s changed=%d failures=%d" % (host, s.get("changed", 0), s.get("failures", 0)))
EOF
}
# status_of RESULTS HOST TASK-PREFIX: the statuses of that task on HOST.
status_of() { awk -F'\t' -v h="$2" -v t="$3" '$4 == h && index($3, t) == 1 { print $5 }' "$1"; }

APPLY_TASK="kaudit_node : Apply (kaudit-node apply"
PLAN_TASK="kaudit_node : Plan (kaudit-node plan"
CHECK_TASK="kaudit_node : Check audit logging"

# --- setup ----------------------------------------------------------------

# Boots sandbox node N with the kthw unit and the stand-in started.
node_boot() {
	local n=$1 t0
	t0=$(now)
	"$SB" up "$(sbdir "$n")" 2>/dev/null
	BOOTED+=("$n")
	"$SB" install-flavor "$(sbdir "$n")" kthw >/dev/null
	in_node "$n" systemctl start "$UNIT"
	[[ $(node_active "$n") == active ]] || fail "node$n: $UNIT did not start"
	FIGURES+=("node$n booted, stand-in started: $(since "$t0") s")
}

# The inventory line that reaches node N through nsenter.
inventory_host() { echo "node$1 ansible_nsenter_pid=$(sed -n 's/^INIT_PID=//p' "$(sbdir "$1")/env")"; }

setup() {
	local t0 n venv_bin
	t0=$(now)
	venv_bin=$(bash "$CONTRIB/tools.sh")
	FIGURES+=("tools (contrib/ansible/tools.sh; PyPI only when not yet installed): $(since "$t0") s")
	export PATH=$venv_bin:$PATH
	# The nodes' D-Bus is their own, and no Ansible setting of this machine applies.
	unset DBUS_SYSTEM_BUS_ADDRESS NOTIFY_SOCKET
	mkdir -p "$WORK/ansible-home"
	export ANSIBLE_CONFIG=$CONTRIB/ansible.cfg ANSIBLE_HOME=$WORK/ansible-home
	export ANSIBLE_LOCAL_TEMP=$WORK/ansible-home/tmp ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
	export ANSIBLE_RETRY_FILES_ENABLED=0

	if [[ -z ${KAUDIT_BIN:-} ]]; then
		cargo build -q -p kube-apiserver-standin -p kaudit-node
		# The debug build without its debug information (106 MB → 18 MB), so
		# that copying it to three nodes is quick.
		strip -o "$WORK/kaudit-node" "$REPO/target/debug/kaudit-node" 2>/dev/null ||
			cp "$REPO/target/debug/kaudit-node" "$WORK/kaudit-node"
		KAUDIT_BIN=$WORK/kaudit-node
	fi

	# One after another: each boot uses the two shared cores for a few seconds.
	for n in "${NODES[@]}"; do node_boot "$n"; done

	{
		echo "[kube_control_plane]"
		for n in "${NODES[@]}"; do inventory_host "$n"; done
		cat <<EOF

[kube_control_plane:vars]
ansible_connection=community.docker.nsenter
# nsenter always runs as root: no become.
ansible_become=false
ansible_python_interpreter=/usr/bin/python3
kaudit_node_install_method=binary
kaudit_node_binary_src=$KAUDIT_BIN
EOF
	} >"$WORK/inventory.ini"
	ansible -i "$WORK/inventory.ini" kube_control_plane -m ansible.builtin.ping >"$WORK/ping.out" 2>&1 || {
		cat "$WORK/ping.out" >&2
		fail "ansible cannot reach the nodes through nsenter"
	}
}

# --- scenarios ------------------------------------------------------------

scenario_converge() {
	local n pid0=() res prev_ev=0 st ev
	for n in "${NODES[@]}"; do pid0[n]=$(node_main_pid "$n"); done
	JSON=1 play converge
	[[ $RC == 0 ]] || fail "first run: exit $RC"
	res=$WORK/converge.tsv
	for n in "${NODES[@]}"; do
		[[ $(status_of "$res" "node$n" "$APPLY_TASK") == changed ]] || fail "node$n: the apply task is not 'changed': $(grep "node$n" "$res")"
		[[ $(status_of "$res" "node$n" "$CHECK_TASK" | sort -u) == ok ]] || fail "node$n: the check is not ok"
		[[ $(node_main_pid "$n") != "${pid0[n]}" && $(node_active "$n") == active ]] || fail "node$n: not restarted, or not active"
		[[ $(node_flag_value "$n" audit-log-path) == "$LOG" ]] || fail "node$n: --audit-log-path is not effective"
		[[ $(node_flag_value "$n" audit-policy-file) == "$POLICY" ]] || fail "node$n: --audit-policy-file is not effective"
		node_wait_events "$n" || fail "node$n: no audit event in $LOG"
		# The role's defaults are kaudit-node's own: an empty configuration (in
		# /run: kaudit-node refuses a configuration in /tmp, which others can write)
		# plans nothing on the converged node.
		in_node "$n" sh -c ': > /run/kaudit-empty.toml'
		in_node "$n" "$NODE_BIN" plan --config /run/kaudit-empty.toml >/dev/null ||
			fail "node$n: the role's defaults differ from kaudit-node's embedded defaults (plan with an empty configuration exits $?)"
		# One after another: node N restarted after node N-1 had written its
		# first audit event (kaudit-node's verification, then the gate).
		st=$(start_us "$n")
		ev=$(first_event_us "$n")
		((st > prev_ev)) || fail "node$n restarted at $st µs, before node$((n - 1))'s first audit event at $prev_ev µs"
		((ev > st)) || fail "node$n: first event at $ev before its restart at $st"
		[[ $n == 1 ]] || FIGURES+=("node$n restarted $(((st - prev_ev) / 1000)) ms after node$((n - 1))'s first audit event")
		prev_ev=$ev
	done
	PASSED+=("converge: nodes 1, 2, 3 restarted in order (each after the previous one's first audit event), each 'changed', events on each, role defaults = kaudit-node defaults")
}

scenario_idempotent() {
	local n before=() res
	for n in "${NODES[@]}"; do before[n]=$(state "$n"); done
	JSON=1 play idempotent
	[[ $RC == 0 ]] || fail "second run: exit $RC"
	res=$WORK/idempotent.tsv
	for n in "${NODES[@]}"; do
		grep -qx "stats node$n changed=0 failures=0" "$res" || fail "node$n: second run not 'ok' everywhere: $(grep -P "node$n\t.*(changed|failed)" "$res"; grep "stats node$n" "$res")"
		[[ $(status_of "$res" "node$n" "$APPLY_TASK") == ok ]] || fail "node$n: the apply task did not run, or changed"
		[[ $(state "$n") == "${before[n]}" ]] || fail "node$n: changed by the second run: ${before[n]} -> $(state "$n")"
	done
	# The gate alone, read-only.
	JSON=1 play gate --tags kaudit_node_check
	[[ $RC == 0 ]] || fail "the gate: exit $RC"
	for n in "${NODES[@]}"; do
		[[ $(status_of "$WORK/gate.tsv" "node$n" "$CHECK_TASK" | sort -u) == ok ]] || fail "node$n: the gate did not pass"
		grep -P "^\d+\t[^\t]*\t$CHECK_TASK[^\t]*\tnode$n\tok\tAUDIT OK - " "$WORK/gate.tsv" >/dev/null || fail "node$n: the gate's message is not AUDIT OK"
		[[ $(status_of "$WORK/gate.tsv" "node$n" "$APPLY_TASK") == "" ]] || fail "--tags kaudit_node_check ran the apply task"
		[[ $(state "$n") == "${before[n]}" ]] || fail "node$n: changed by the gate"
	done
	PASSED+=("idempotent: second run changed=0 on every node, same PIDs and start times, no daemon-reload, same files; the gate alone (--tags kaudit_node_check): AUDIT OK on each, read-only")
}

scenario_check() {
	local n before=()
	for n in "${NODES[@]}"; do before[n]=$(state "$n"); done
	play check --check --diff -e kaudit_node_log_maxage=45
	[[ $RC == 0 ]] || fail "check mode: exit $RC"
	# Per node: the config.toml diff (template task) and the plan's drop-in diff.
	[[ $(grep -c '^+maxage = 45$' "$OUT") == 3 ]] || fail "check mode: not 3 config.toml diffs with +maxage = 45"
	[[ $(grep -c '^-maxage = 30$' "$OUT") == 3 ]] || fail "check mode: not 3 config.toml diffs with -maxage = 30"
	(($(grep -cE '^\+.*--audit-log-maxage=45' "$OUT") >= 3)) || fail "check mode: the plan's drop-in diff is not shown for each node"
	(($(grep -cE '^-.*--audit-log-maxage=30' "$OUT") >= 3)) || fail "check mode: the plan's drop-in diff is not shown for each node"
	for n in "${NODES[@]}"; do
		# The plan task says the node would change.
		awk -v t="TASK [$PLAN_TASK" 'index($0, t) == 1 { on = 1; next } /^TASK / { on = 0 } on' "$OUT" |
			grep -q "^changed: \[node$n\]" || fail "node$n: the plan task did not report 'changed'"
		[[ $(state "$n") == "${before[n]}" ]] || fail "node$n: changed in check mode: ${before[n]} -> $(state "$n")"
		[[ $(in_node "$n" sh -c 'ls -d /run/kaudit-node-plan.* 2>/dev/null | wc -l') == 0 ]] || fail "node$n: the plan's temporary directory was left"
		[[ $(node_flag_value "$n" audit-log-maxage) == 30 ]] || fail "node$n: maxage changed in check mode"
	done
	PASSED+=("check mode (--check --diff, maxage 30 -> 45): config.toml and drop-in diffs shown for each node, 'changed' reported, nothing changed (PIDs, start times, reloads, files)")
}

scenario_invalid() {
	# An invalid value: kaudit-node refuses the new config.toml before it
	# replaces the old one; node 1 fails with kaudit-node's message, nothing
	# changes anywhere, the play stops.
	local n before=() res msg
	for n in "${NODES[@]}"; do before[n]=$(state "$n"); done
	JSON=1 play invalid -e kaudit_node_log_mode=bogus
	[[ $RC == 2 ]] || fail "invalid value: exit $RC, want 2"
	res=$WORK/invalid.tsv
	[[ $(status_of "$res" node1 "kaudit_node : Write the kaudit-node configuration") == failed ]] || fail "node1: the configuration task did not fail"
	# The template module's "failed to validate", with kaudit-node's error as stderr.
	msg=$(awk -F'\t' '$4 == "node1" && $5 == "failed" { print $6 ": " $8 }' "$res")
	grep -q 'kaudit-node: error: .*:[0-9]*:[0-9]*: log.mode: invalid value "bogus"' <<<"$msg" || fail "node1: not kaudit-node's message: $msg"
	[[ $(status_of "$res" node1 "$APPLY_TASK") == "" ]] || fail "node1: apply ran after an invalid configuration"
	grep -qP '\tnode[23]\t' "$res" && fail "nodes 2 and 3 were touched"
	for n in "${NODES[@]}"; do
		[[ $(state "$n") == "${before[n]}" ]] || fail "node$n: changed by an invalid configuration"
	done
	FIGURES+=("invalid value on node1: $(cut -c1-300 <<<"$msg")")
	PASSED+=("invalid value (log.mode = bogus): config.toml validated by kaudit-node before it is written; node1 failed with kaudit-node's message naming log.mode, nothing changed on any node, the play stopped")
}

scenario_failure() {
	local n before=() res msg
	# The stand-in on node 2 refuses to start with --audit-log-maxage=31.
	in_node 2 sh -c "mkdir -p /etc/systemd/system/$UNIT.d && printf '[Service]\nEnvironment=STANDIN_FAIL_IF_ARG=--audit-log-maxage=31\n' > /etc/systemd/system/$UNIT.d/10-test-fail.conf"
	in_node 2 systemctl daemon-reload
	for n in "${NODES[@]}"; do before[n]=$(state "$n"); done
	local files2
	files2=$(in_node 2 sh -c "cat $DROPIN $POLICY | sha256sum")
	JSON=1 play failure -e kaudit_node_log_maxage=31 -e kaudit_node_apply_verify_timeout=20s
	[[ $RC == 2 ]] || fail "failing node 2: ansible-playbook exit $RC, want 2 (a host failed)"
	res=$WORK/failure.tsv
	# Node 1: changed, on the new configuration.
	[[ $(status_of "$res" node1 "$APPLY_TASK") == changed ]] || fail "node1: the apply task is not 'changed'"
	[[ $(node_flag_value 1 audit-log-maxage) == 31 ]] || fail "node1: --audit-log-maxage=31 not effective"
	# Node 2: failed with kaudit-node's message; rolled back, active, on the previous configuration.
	[[ $(status_of "$res" node2 "$APPLY_TASK") == failed ]] || fail "node2: the apply task did not fail"
	msg=$(awk -F'\t' -v t="$APPLY_TASK" '$4 == "node2" && index($3, t) == 1 { print $6 }' "$res")
	grep -q '^kaudit-node apply failed at step "' <<<"$msg" || fail "node2: the failure message is not kaudit-node's: $msg"
	grep -q 'rolled back' <<<"$msg" || fail "node2: the message does not say it was rolled back: $msg"
	[[ $(node_active 2) == active ]] || fail "node2: not active after the rollback"
	[[ $(node_flag_value 2 audit-log-maxage) == 30 ]] || fail "node2: not back on --audit-log-maxage=30"
	[[ $(in_node 2 sh -c "cat $DROPIN $POLICY | sha256sum") == "$files2" ]] || fail "node2: kaudit-node's files were not restored"
	grep -q 'stats node2 changed=[0-9]* failures=1' "$res" || fail "node2: not counted as failed"
	# Node 3: untouched; the play stopped, and the gate play did not run.
	grep -qP '\tnode3\t' "$res" && fail "node3 was touched: $(grep -P '\tnode3\t' "$res")"
	grep -q '^stats node3 ' "$res" && fail "node3 appears in the stats"
	[[ $(state 3) == "${before[3]}" ]] || fail "node3: changed: ${before[3]} -> $(state 3)"
	grep -qP '^\d+\tGate after the rollout' "$res" && fail "the gate play ran after the failure"
	FIGURES+=("node2: $msg")
	# The gate on node 2 now: its apiserver runs the previous flags, not the
	# configured ones (a WARNING; failing with kaudit_node_check_fail_on_warning).
	JSON=1 play gate-node2 --tags kaudit_node_check --limit node2 -e kaudit_node_check_fail_on_warning=true
	[[ $RC == 2 ]] || fail "the gate on node2 after the rollback: exit $RC, want 2"
	msg=$(awk -F'\t' -v t="$CHECK_TASK" '$4 == "node2" && $5 == "failed" && index($3, t) == 1 { print $6 }' "$WORK/gate-node2.tsv")
	grep -q '^AUDIT WARNING - flags: .*--audit-log-maxage=30 where the configuration says 31' <<<"$msg" || fail "the gate on node2: no WARNING on the flags: $msg"
	[[ $(state 3) == "${before[3]}" ]] || fail "node3: changed by the gate on node2"
	FIGURES+=("gate on node2 after the rollback: $msg")
	PASSED+=("failure on node 2: node1 changed (maxage 31), node2 failed with kaudit-node's message and rolled back (active, maxage 30, files restored), node3 untouched, the playbook stopped (exit 2, no gate play); the gate with kaudit_node_check_fail_on_warning then fails node2 (WARNING: flags differ from config.toml)")
}

scenario_package() {
	# The package-file mode, on a fourth node, when a .deb has been built
	# (packaging/build.sh) and the node's Python has apt (ansible.builtin.apt).
	local deb=${KAUDIT_DEB:-} res before
	[[ -n $deb ]] || deb=$(ls -1 "$REPO"/target/packages/kaudit-node_*_amd64.deb 2>/dev/null | sort -V | tail -1 || true)
	if [[ -z $deb ]] || ! /usr/bin/python3 -c 'import apt' 2>/dev/null; then
		say "package: skipped (no target/packages/*.deb, or no python3-apt)"
		PASSED+=("package: SKIPPED (no .deb in target/packages: run packaging/build.sh first; or no python3-apt)")
		return 0
	fi
	# Copied first: another build may replace target/packages meanwhile.
	cp "$deb" "$WORK/"
	deb=$WORK/$(basename "$deb")
	for n in "${BOOTED[@]}"; do "$SB" down "$(sbdir "$n")" >/dev/null 2>&1 || true; done
	BOOTED=()
	node_boot 4
	{
		echo "[kube_control_plane]"
		inventory_host 4
		cat <<EOF

[kube_control_plane:vars]
ansible_connection=community.docker.nsenter
ansible_become=false
ansible_python_interpreter=/usr/bin/python3
kaudit_node_package_file=$deb
EOF
	} >"$WORK/package.ini"
	INV=$WORK/package.ini JSON=1 play package
	[[ $RC == 0 ]] || fail "package mode: exit $RC"
	res=$WORK/package.tsv
	[[ $(status_of "$res" node4 "kaudit_node : Install the .deb") == changed ]] || fail "node4: the .deb was not installed"
	awk -F'\t' '$4 == "node4" && index($3, "kaudit_node : Install the .deb") == 1 { print $7 }' "$res" |
		grep -q 'KAUDIT_NODE_NO_APPLY=1: audit logging not applied' || fail "node4: the package's postinst applied on its own"
	[[ $(status_of "$res" node4 "$APPLY_TASK") == changed ]] || fail "node4: the apply task is not 'changed'"
	[[ $(in_node 4 dpkg-query -W -f '${Status}' kaudit-node) == "install ok installed" ]] || fail "node4: kaudit-node is not installed"
	in_node 4 grep -q 'Ansible managed' "$CONF" || fail "node4: $CONF is not the role's"
	node_wait_events 4 || fail "node4: no audit event"
	[[ $(node_flag_value 4 audit-log-path) == "$LOG" ]] || fail "node4: --audit-log-path not effective"
	before=$(state 4)
	INV=$WORK/package.ini JSON=1 play package-again
	[[ $RC == 0 ]] || fail "package mode, second run: exit $RC"
	grep -qx "stats node4 changed=0 failures=0" "$WORK/package-again.tsv" || fail "node4: the second run changed something"
	[[ $(state 4) == "$before" ]] || fail "node4: changed by the second run: $before -> $(state 4)"
	PASSED+=("package ($(basename "$deb")): installed by the role with the postinst's own apply skipped, applied by the role (changed, events); second run changed=0, nothing restarted")
}

# --- main -----------------------------------------------------------------

[[ $(id -u) == 0 ]] || {
	say "needs root"
	exit 1
}
cd "$REPO"
mkdir -p "$WORK"
t_all=$(now)
setup
say "ok: setup ($(since "$t_all") s)"
for SCENARIO in converge idempotent check invalid failure package; do
	t0=$(now)
	"scenario_$SCENARIO"
	say "ok: $SCENARIO ($(since "$t0") s)"
done
SCENARIO=teardown
for n in "${BOOTED[@]}"; do "$SB" down "$(sbdir "$n")" >/dev/null 2>&1 || true; done
BOOTED=()
printf 'ansible-test: passed in %s s:\n' "$(since "$t_all")" >&2
printf '  %s\n' "${PASSED[@]}" >&2
printf 'ansible-test: figures:\n' >&2
printf '  %s\n' "${FIGURES[@]}" >&2
