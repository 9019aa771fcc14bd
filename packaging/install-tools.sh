#!/usr/bin/env bash
# Installs what packaging/build.sh, packaging/check.sh and
# tests/system/packages.sh need on a fresh Debian machine; skips what is
# already there at the right version. Run as root (.ci/run does).
#   cargo-deb 3.8.0, cargo-generate-rpm 0.21.1 (cargo install --locked:
#   about 2 and 5-10 minutes on 2 cores), the x86_64-unknown-linux-musl
#   target, and Debian's lintian, rpm, cpio, man-db and musl-tools.
set -euo pipefail

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
TARGET=x86_64-unknown-linux-musl

say() { printf 'install-tools: %s\n' "$*"; }

need=()
command -v lintian >/dev/null || need+=(lintian)
command -v rpm >/dev/null || need+=(rpm)
command -v rpm2cpio >/dev/null || need+=(rpm)
command -v cpio >/dev/null || need+=(cpio)
command -v man >/dev/null || need+=(man-db)
# ring (TLS for the readiness probe, and the stand-in's HTTPS port) compiles
# C for the static musl builds with musl-gcc.
command -v musl-gcc >/dev/null || need+=(musl-tools)
if ((${#need[@]})); then
	say "apt-get install ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! grep -qx "$TARGET" <<<"$(rustup target list --installed)"; then
	say "rustup target add $TARGET"
	rustup target add "$TARGET"
fi

# Waits up to SECS for PID to end: 0 when it ended, 1 when it still runs.
wait_for() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 1
	done
	! kill -0 "$pid" 2>/dev/null
}

# cargo install NAME VERSION, unless `cargo NAME-without-cargo- --version` says VERSION.
install_crate() {
	local crate=$1 version=$2 sub=${1#cargo-} t0=$SECONDS
	if grep -qw "$version" <<<"$(cargo "$sub" --version 2>/dev/null)"; then
		say "$crate $version already installed"
		return 0
	fi
	say "cargo install --locked $crate@$version (minutes on 2 cores; progress every 60 s)"
	cargo install --locked --quiet "$crate@$version" &
	local pid=$!
	while ! wait_for "$pid" 60; do
		say "still building $crate ($((SECONDS - t0)) s)"
	done
	wait "$pid"
	say "$crate $version installed in $((SECONDS - t0)) s"
}
install_crate cargo-deb "$CARGO_DEB_VERSION"
install_crate cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"
