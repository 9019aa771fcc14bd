#!/usr/bin/env bash
# Builds kaudit-node's .deb and .rpm from one static binary:
#
#   1. cargo build --release --target x86_64-unknown-linux-musl (static; no
#      glibc version requirement, so one binary runs on RHEL 8 and Debian 12);
#   2. cargo xtask dist-assets: man pages, completions, units, maintainer
#      scripts and the Debian changelog into target/assets/;
#   3. cargo deb --no-build and cargo generate-rpm from those files.
#
# Usage: packaging/build.sh [--release N]
#   --release N  the package revision/release (default 1); the system tests
#                build an upgrade of the same version with --release 2
# Output: target/packages/kaudit-node_VERSION-N_amd64.deb and
#         target/packages/kaudit-node-VERSION-N.x86_64.rpm (paths printed last).
# Needs cargo-deb, cargo-generate-rpm and the musl target: packaging/install-tools.sh.
# SOURCE_DATE_EPOCH, when set, dates the man page and changelog (else: HEAD's
# commit date).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-musl
OUT=target/packages
release=1
while (($#)); do
	case $1 in
	--release)
		release=$2
		shift 2
		;;
	*)
		echo "usage: $0 [--release N]" >&2
		exit 64
		;;
	esac
done

die() {
	echo "packaging: $*" >&2
	exit 1
}

command -v cargo-deb >/dev/null || die "cargo-deb is missing: run packaging/install-tools.sh"
command -v cargo-generate-rpm >/dev/null || die "cargo-generate-rpm is missing: run packaging/install-tools.sh"
grep -qx "$TARGET" <<<"$(rustup target list --installed 2>/dev/null)" ||
	die "the $TARGET target is missing: run packaging/install-tools.sh"

if [[ -z ${SOURCE_DATE_EPOCH:-} ]] && git rev-parse --git-dir >/dev/null 2>&1; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
	export SOURCE_DATE_EPOCH
fi

t0=$SECONDS
echo "packaging: cargo build --release --target $TARGET" >&2
cargo build --release --locked --target "$TARGET" -p kaudit-node
bin=target/$TARGET/release/kaudit-node
ldd "$bin" 2>&1 | grep -Eq 'statically linked|not a dynamic executable' ||
	die "$bin is not statically linked: $(ldd "$bin" 2>&1)"

echo "packaging: cargo xtask dist-assets" >&2
cargo xtask dist-assets >/dev/null

mkdir -p "$OUT"
[[ $release =~ ^[1-9][0-9]*$ ]] || die "--release: a positive number, not $release"
echo "packaging: cargo deb" >&2
deb=$(cargo deb --no-build --no-strip --locked -p kaudit-node --target "$TARGET" -o "$OUT" --deb-revision "$release" | tail -1)
echo "packaging: cargo generate-rpm" >&2
cargo generate-rpm -p . --target "$TARGET" -o "$OUT" -s "release = \"$release\"" >/dev/null
version=$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)
rpm=$OUT/kaudit-node-$version-$release.x86_64.rpm
[[ -f $deb && -f $rpm ]] || die "expected $deb and $rpm"
echo "packaging: built in $((SECONDS - t0)) s:" >&2
ls -l "$deb" "$rpm" >&2
printf '%s\n%s\n' "$deb" "$rpm"
