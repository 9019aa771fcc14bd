#!/usr/bin/env bash
# The system suite (tests/system/apply.sh, and the bad-input corpus through
# apply, tests/system/badinput.sh) on other systemd versions: Debian
# bullseye (systemd 247), bookworm (252) and trixie (257) roots made with
# debootstrap from the machine's own Debian mirror, cached under
# /var/cache/kaudit-node-test, each booted fresh through an overlay.
# kaudit-node and the stand-in are static (musl) builds, so they run on any
# of these roots.
#
# Usage: tests/system/matrix.sh [SUITE...]   (default: bullseye bookworm trixie)
# Needs root, debootstrap and systemd-container. The first run downloads about
# 100 MB per suite; later runs reuse the cache.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KAUDIT_ROOT_CACHE:-/var/cache/kaudit-node-test}
TARGET=x86_64-unknown-linux-musl

say() { echo "matrix: $*" >&2; }
[[ $(id -u) == 0 ]] || {
	say "needs root"
	exit 1
}
command -v debootstrap >/dev/null || {
	say "debootstrap is missing: apt-get install -y debootstrap"
	exit 1
}

# The mirror is the machine's own apt source, never a name written here.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
[[ -n $mirror ]] || {
	say "no Debian mirror found in the apt configuration"
	exit 1
}

root_for() {
	local suite=$1 dir=$CACHE/$1
	if [[ ! -f $dir/.kaudit-complete ]]; then
		say "debootstrap $suite from $mirror (cached in $dir)"
		rm -rf "$dir.tmp"
		mkdir -p "$CACHE"
		debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,logrotate,passwd,gzip,procps \
			"$suite" "$dir.tmp" "$mirror" >"$CACHE/$suite.log" 2>&1 || {
			tail -n 20 "$CACHE/$suite.log" >&2
			exit 1
		}
		rm -rf "$dir"
		mv "$dir.tmp" "$dir"
		touch "$dir/.kaudit-complete"
	fi
	printf '%s\n' "$dir"
}

cd "$REPO"
grep -qx "$TARGET" <<<"$(rustup target list --installed)" || rustup target add "$TARGET"
cargo build -q --release --target "$TARGET" -p kaudit-node -p kube-apiserver-standin
export KAUDIT_BIN=$REPO/target/$TARGET/release/kaudit-node
export STANDIN_BIN=$REPO/target/$TARGET/release/kube-apiserver-standin

suites=("$@")
((${#suites[@]})) || suites=(bullseye bookworm trixie)
results=()
for suite in "${suites[@]}"; do
	lower=$(root_for "$suite")
	version=$(chroot "$lower" systemctl --version)
	version=${version%%$'\n'*}
	say "$suite: $version"
	t0=$SECONDS
	SANDBOX_LOWER=$lower bash "$HERE/apply.sh"
	SANDBOX_LOWER=$lower bash "$HERE/badinput.sh"
	results+=("$suite ($version): apply.sh and badinput.sh passed in $((SECONDS - t0)) s")
done
printf 'matrix: passed:\n' >&2
printf '  %s\n' "${results[@]}" >&2
