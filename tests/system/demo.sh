#!/usr/bin/env bash
# The main job, end to end, on the embedded defaults: boots a real systemd in
# a container (tests/system/sandbox.sh) with a Kubernetes-the-hard-way
# kube-apiserver.service running the kube-apiserver TEST STAND-IN, then runs
# `kaudit-node apply` there and shows the result and the first audit lines.
# Run as root: `bash tests/system/demo.sh`.
set -euo pipefail

TAG=demo
# The system tests' helpers (in_sb, the sandbox's power-off on exit).
# shellcheck source=tests/system/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || {
	echo "demo: run as root (the sandbox boots a container)" >&2
	exit 1
}
if ! command -v systemd-nspawn >/dev/null || ! command -v logrotate >/dev/null; then
	echo "demo: installing systemd-container and logrotate from the machine's Debian mirror" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq systemd-container logrotate
fi

# Bold only on a terminal; plain in logs.
if [[ -t 1 ]]; then
	banner() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	banner() { printf '\n== %s\n' "$*"; }
fi

banner "building kaudit-node and the kube-apiserver test stand-in"
# cargo's own progress (Compiling …) shows; a first build takes a minute or two.
(cd "$REPO" && cargo build -p kaudit-node -p kube-apiserver-standin)

banner "booting a real systemd with a Kubernetes-the-hard-way kube-apiserver.service"
DIR=/var/tmp/kaudit-demo-$$
"$SB" up "$DIR"
"$SB" install-flavor "$DIR" kthw >/dev/null
"$SB" put "$DIR" "$REPO/target/debug/kaudit-node" /usr/local/sbin/kaudit-node 0755
in_sb systemctl start "$UNIT"
pid=$(in_sb systemctl show -p MainPID --value "$UNIT")
echo "kube-apiserver (stand-in) runs as PID $pid with the vendor's audit flags, but no policy:"
in_sb sh -c "tr '\\0' '\\n' </proc/$pid/cmdline | grep -e '^--audit'"
echo "so its audit log stays empty: $(in_sb stat -c '%n: %s bytes' /var/log/audit.log)"

banner "kaudit-node plan (exit 2: changes pending; every change, diffs left out)"
in_sb kaudit-node plan | grep -E '^(Plan for|create|update|set|remove|delete) |^Actions|^  (daemon-reload|restart)' || true

banner "kaudit-node apply"
in_sb kaudit-node apply

banner "the first audit events, written by the new main PID"
pid=$(in_sb systemctl show -p MainPID --value "$UNIT")
in_sb sh -c "tr '\\0' '\\n' </proc/$pid/cmdline | grep -e '^--audit'"
log=/var/log/kubernetes/audit/audit.log
for ((i = 0; i < 50; i++)); do
	[[ $(in_sb sh -c "wc -l < $log") -ge 3 ]] && break
	sleep 0.1
done
# Three events, each cut to its first 200 characters.
in_sb head -n 3 "$log" | cut -c1-200

banner "kaudit-node apply again: converged, nothing to do"
start=$(date +%s%N)
in_sb kaudit-node apply --detailed-exitcodes
echo "exit 0 in $((($(date +%s%N) - start) / 1000000)) ms; main PID still $(in_sb systemctl show -p MainPID --value "$UNIT")"
