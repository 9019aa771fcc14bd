#!/usr/bin/env bash
# A real systemd (PID 1 of a systemd-nspawn container) for kaudit-node's system tests.
#
# Way 1 of ../shared/notes/real-systemd-sandbox.md: an overlay of this machine's own
# root, booted with systemd-nspawn (no download; boots in a few seconds). The
# kube-apiserver TEST STAND-IN (tests/standin) is installed inside as
# /usr/local/bin/kube-apiserver (and /usr/bin/kube-apiserver, the RPM path).
#
# Usage:
#   sandbox.sh up DIR                       boot a sandbox; writes DIR/env
#   sandbox.sh exec DIR CMD [ARG...]        run a command inside (nsenter)
#   sandbox.sh put DIR SRC DEST [MODE]      copy a host file into the container
#   sandbox.sh install-unit DIR NAME FILE   copy FILE to /etc/systemd/system/NAME, daemon-reload
#   sandbox.sh install-flavor DIR FLAVOR    install kube-apiserver.service as a vendor would:
#                                           kthw | contrib | hardened (see README.md)
#   sandbox.sh down DIR                     power off, wait, unmount, remove DIR
#
# DIR must be under /var/tmp (a bare name means /var/tmp/NAME): /tmp is a tmpfs
# inside the container. DIR/env (shell syntax) holds INIT_PID, NSPAWN_PID, ROOT
# (/proc/INIT/root, the container's filesystem seen from the host) and
# DBUS_SYSTEM_BUS_ADDRESS (the container's system bus, for zbus on the host).
#
# Environment: STANDIN_BIN (default: REPO/target/debug/kube-apiserver-standin),
# SANDBOX_BOOT_TIMEOUT (seconds, default 90), SANDBOX_LOWER (the root to boot,
# default / (this machine's); a debootstrap root gives another systemd version:
# see tests/system/matrix.sh).
#
# Needs root and `apt-get install -y systemd-container`. Stops only the processes it
# started, by the PIDs recorded in DIR/env.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SANDBOX_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() {
	echo "sandbox: $*" >&2
	exit 1
}

say() {
	echo "sandbox: $*" >&2
}

usage() {
	sed -n '10,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

# The sandbox directory, absolute, under /var/tmp.
sandbox_dir() {
	local d=$1
	[[ $d == /* ]] || d=/var/tmp/$d
	d=$(realpath -m -- "$d")
	case $d in
	/var/tmp/?*) ;;
	*) die "the sandbox directory must be under /var/tmp (got $d)" ;;
	esac
	printf '%s\n' "$d"
}

# Whether PID is alive and is the program COMM (guards against PID reuse).
pid_is() {
	local pid=$1 comm=$2
	[[ -n $pid && -r /proc/$pid/comm ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

load_env() {
	local dir=$1
	[[ -f $dir/env ]] || die "no sandbox at $dir (no $dir/env)"
	# shellcheck source=/dev/null
	source "$dir/env"
	[[ -n ${INIT_PID:-} && -n ${NSPAWN_PID:-} ]] || die "$dir/env is incomplete"
	pid_is "$NSPAWN_PID" systemd-nspawn || die "the sandbox at $dir is not running (nspawn PID $NSPAWN_PID is gone)"
}

in_container() {
	local init=$1
	shift
	env -u DBUS_SYSTEM_BUS_ADDRESS -u NOTIFY_SOCKET PATH="$SANDBOX_PATH" \
		nsenter -t "$init" -a -- "$@"
}

now() {
	date +%s.%N
}

elapsed() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}

check_prerequisites() {
	[[ $(id -u) == 0 ]] || die "must run as root"
	command -v systemd-nspawn >/dev/null ||
		die "systemd-nspawn is missing: run 'apt-get install -y systemd-container' first"
	command -v nsenter >/dev/null || die "nsenter is missing (package util-linux)"
	[[ -x /lib/systemd/systemd || -x /usr/lib/systemd/systemd ]] ||
		die "this machine's root has no systemd to boot (package systemd)"
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
		die "the kernel has no overlay filesystem"
}

# Stops the container started from DIR (by the recorded PIDs) and unmounts its root.
teardown() {
	local dir=$1 nspawn=${2:-} init=${3:-} i
	if pid_is "$nspawn" systemd-nspawn; then
		if [[ -n $init ]] && pid_is "$init" systemd; then
			in_container "$init" systemctl poweroff --no-block >/dev/null 2>&1 || true
		fi
		for ((i = 0; i < 300; i++)); do
			pid_is "$nspawn" systemd-nspawn || break
			sleep 0.1
		done
		if pid_is "$nspawn" systemd-nspawn; then
			say "the container did not power off in 30 s; sending SIGTERM to nspawn ($nspawn)"
			kill -TERM "$nspawn" 2>/dev/null || true
			for ((i = 0; i < 100; i++)); do
				pid_is "$nspawn" systemd-nspawn || break
				sleep 0.1
			done
		fi
		if pid_is "$nspawn" systemd-nspawn; then
			say "killing nspawn ($nspawn)"
			kill -KILL "$nspawn" 2>/dev/null || true
			sleep 0.5
		fi
	fi
	if mountpoint -q "$dir/root"; then
		umount "$dir/root" 2>/dev/null || umount -l "$dir/root"
	fi
}

install_standin() {
	local root=$1 bin=$2
	install -D -m 0755 "$bin" "$root/usr/local/bin/kube-apiserver"
	ln -sf /usr/local/bin/kube-apiserver "$root/usr/bin/kube-apiserver"
}

cmd_up() {
	(($# == 1)) || usage
	local dir bin name t0 init="" nspawn state="" i timeout
	dir=$(sandbox_dir "$1")
	check_prerequisites
	bin=${STANDIN_BIN:-$REPO/target/debug/kube-apiserver-standin}
	[[ -x $bin ]] || die "no stand-in binary at $bin: run 'cargo build -p kube-apiserver-standin' (or set STANDIN_BIN)"
	grep -q standin <<<"$("$bin" --version)" || die "$bin is not the kube-apiserver TEST STAND-IN"
	if [[ -e $dir ]]; then
		# shellcheck source=/dev/null
		if [[ -f $dir/env ]] && (source "$dir/env" && pid_is "${NSPAWN_PID:-}" systemd-nspawn); then
			die "a sandbox is already running at $dir"
		fi
		mountpoint -q "$dir/root" 2>/dev/null && die "$dir/root is still mounted; run: $0 down $dir"
		rm -rf -- "$dir"
	fi
	timeout=${SANDBOX_BOOT_TIMEOUT:-90}
	name=$(basename "$dir" | tr -c 'a-zA-Z0-9-\n' '-' | cut -c1-40)
	[[ $name == kaudit* ]] || name=kaudit-$name
	t0=$(now)
	mkdir -p "$dir"/{upper,work,root}
	local lower=${SANDBOX_LOWER:-/}
	[[ -x $lower/lib/systemd/systemd || -x $lower/usr/lib/systemd/systemd ]] || die "$lower has no systemd to boot"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
	install_standin "$dir/root" "$bin"
	# The machine's own /etc/machine-id may be empty or shared; let systemd make one.
	rm -f "$dir/root/etc/machine-id"
	# The container has a private network with no uplink: waiting for it to be
	# "online" would hold every unit ordered after network-online.target for 2 min.
	ln -sf /dev/null "$dir/root/etc/systemd/system/systemd-networkd-wait-online.service"
	# Prometheus and node_exporter, installed on the machine for the tests'
	# checks of the textfile, must not run as services in every sandbox.
	ln -sf /dev/null "$dir/root/etc/systemd/system/prometheus.service"
	ln -sf /dev/null "$dir/root/etc/systemd/system/prometheus-node-exporter.service"

	setsid systemd-nspawn -D "$dir/root" -M "$name" --register=no --keep-unit \
		--private-network -b -- systemd.firstboot=off \
		</dev/null >"$dir/console.log" 2>&1 &
	nspawn=$!
	# Record the PIDs at once, so that `down` can clean up even after a failed boot.
	printf 'NSPAWN_PID=%s\nSANDBOX_DIR=%q\n' "$nspawn" "$dir" >"$dir/env"

	for ((i = 0; i < 100; i++)); do
		init=$(pgrep -P "$nspawn" 2>/dev/null | head -1 || true)
		[[ -n $init ]] && pid_is "$init" systemd && break
		init=""
		pid_is "$nspawn" systemd-nspawn || break
		sleep 0.1
	done
	if [[ -z $init ]]; then
		say "the container's init did not appear; console log:"
		tail -n 40 "$dir/console.log" >&2 || true
		teardown "$dir" "$nspawn" ""
		die "boot failed (console log kept in $dir/console.log)"
	fi
	printf 'INIT_PID=%s\n' "$init" >>"$dir/env"

	while :; do
		state=$(in_container "$init" systemctl is-system-running 2>/dev/null || true)
		case $state in
		running | degraded) break ;;
		esac
		if ! pid_is "$nspawn" systemd-nspawn || awk -v a="$t0" -v b="$(now)" -v t="$timeout" 'BEGIN { exit !(b - a > t) }'; then
			say "the container did not reach running/degraded in ${timeout}s (state: ${state:-none}); console log:"
			tail -n 60 "$dir/console.log" >&2 || true
			in_container "$init" systemctl --failed --no-pager >&2 2>/dev/null || true
			teardown "$dir" "$nspawn" "$init"
			die "boot failed (console log kept in $dir/console.log)"
		fi
		sleep 0.2
	done

	cat >"$dir/env" <<EOF
# kaudit-node system-test sandbox ($(date -u +%FT%TZ)); written by tests/system/sandbox.sh
SANDBOX_DIR=$dir
MACHINE=$name
NSPAWN_PID=$nspawn
INIT_PID=$init
ROOT=/proc/$init/root
DBUS_SYSTEM_BUS_ADDRESS=unix:path=/proc/$init/root/run/dbus/system_bus_socket
EOF
	say "booted $name ($state) in $(elapsed "$t0") s; INIT_PID=$init NSPAWN_PID=$nspawn; env in $dir/env"
}

cmd_exec() {
	(($# >= 2)) || usage
	local dir
	dir=$(sandbox_dir "$1")
	shift
	load_env "$dir"
	in_container "$INIT_PID" "$@"
}

# Copies a host file into the container (through its own mount namespace, so that
# symlinks resolve inside the container).
cmd_put() {
	(($# == 3 || $# == 4)) || usage
	local dir src=$2 dest=$3 mode=${4:-0644}
	dir=$(sandbox_dir "$1")
	[[ -f $src ]] || die "no file $src"
	[[ $dest == /* ]] || die "DEST must be an absolute path in the container"
	load_env "$dir"
	# shellcheck disable=SC2016 # expanded by the container's sh
	in_container "$INIT_PID" sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' sh "$dest" "$mode" <"$src"
}

cmd_install_unit() {
	(($# == 3)) || usage
	local dir name=$2 file=$3
	dir=$(sandbox_dir "$1")
	[[ $name == *.* && $name != */* ]] || die "NAME must be a unit name such as kube-apiserver.service"
	cmd_put "$dir" "$file" "/etc/systemd/system/$name" 0644
	in_container "$INIT_PID" systemctl daemon-reload
}

cmd_install_flavor() {
	(($# == 2)) || usage
	local dir flavor=$2 units=$HERE/units
	dir=$(sandbox_dir "$1")
	load_env "$dir"
	case $flavor in
	kthw)
		in_container "$INIT_PID" mkdir -p /var/lib/kubernetes
		;;
	contrib)
		# What the Fedora/contrib RPM's %pre and file list do.
		in_container "$INIT_PID" sh -c 'getent group kube >/dev/null || groupadd -r kube;
			getent passwd kube >/dev/null || useradd -r -g kube -d / -s /sbin/nologin -c "Kubernetes user" kube'
		cmd_put "$dir" "$units/contrib/config" /etc/kubernetes/config 0644
		cmd_put "$dir" "$units/contrib/apiserver" /etc/kubernetes/apiserver 0644
		;;
	hardened)
		in_container "$INIT_PID" mkdir -p /var/lib/kubernetes
		;;
	*) die "unknown flavor $flavor (kthw, contrib, hardened)" ;;
	esac
	cmd_install_unit "$dir" kube-apiserver.service "$units/$flavor.service"
}

cmd_down() {
	(($# == 1)) || usage
	local dir nspawn="" init=""
	dir=$(sandbox_dir "$1")
	[[ -e $dir ]] || {
		say "nothing at $dir"
		return 0
	}
	[[ -d $dir/upper || -f $dir/env ]] || die "$dir does not look like a sandbox; not removing it"
	if [[ -f $dir/env ]]; then
		nspawn=$(sed -n 's/^NSPAWN_PID=//p' "$dir/env" | tail -1)
		init=$(sed -n 's/^INIT_PID=//p' "$dir/env" | tail -1)
	fi
	teardown "$dir" "$nspawn" "$init"
	if mountpoint -q "$dir/root"; then
		die "$dir/root is still mounted; not removing $dir"
	fi
	rm -rf -- "$dir"
	say "removed $dir"
}

main() {
	(($# >= 1)) || usage
	local cmd=$1
	shift
	case $cmd in
	up) cmd_up "$@" ;;
	exec) cmd_exec "$@" ;;
	put) cmd_put "$@" ;;
	install-unit) cmd_install_unit "$@" ;;
	install-flavor) cmd_install_flavor "$@" ;;
	down) cmd_down "$@" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
