#!/usr/bin/env bash
# Builds the packages (packaging/build.sh) and checks what is in them:
#   - lintian: no error on the .deb (warnings are printed);
#   - the .deb's file list, conffiles, maintainer scripts and Depends;
#   - the .rpm, with rpm -qp: --list, --configfiles (noreplace), --docfiles,
#     --scripts and --requires;
#   - the same static binary in both (ldd: statically linked);
#   - both man pages render without a warning (MANWIDTH=80 man --warnings -l);
#   - the maintainer scripts parse (sh -n), the bash completion too;
#   - cargo xtask dist-assets is reproducible: a second run gives the same bytes.
# Prints the package contents and sizes. Needs what build.sh needs, plus
# lintian, rpm (rpm2cpio), cpio and man-db.
set -euo pipefail
cd "$(dirname "$0")/.."

FAILS=0
ok() { printf 'packaging: ok: %s\n' "$*"; }
bad() {
	printf 'packaging: FAIL: %s\n' "$*" >&2
	FAILS=$((FAILS + 1))
}
# Compares two newline-separated lists; prints the difference.
same_list() {
	local what=$1 want=$2 got=$3
	if [[ $want == "$got" ]]; then
		ok "$what"
	else
		bad "$what differs (< want, > got):"
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") >&2 || true
	fi
}

# One date for both xtask runs below (HEAD may move while this runs).
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
mapfile -t P < <(bash packaging/build.sh)
((${#P[@]} == 2)) || {
	echo "packaging: build.sh failed" >&2
	exit 1
}
DEB=${P[0]} RPM=${P[1]}
version=$(grep -m1 '^version = ' Cargo.toml | cut -d'"' -f2)
units=$(find units -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | sort)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- the .deb ----------------------------------------------------------------
lint=$(lintian --fail-on error --display-info "$DEB" 2>&1 | grep -v 'running with root privileges' || true)
if lintian --fail-on error "$DEB" >/dev/null 2>&1; then
	ok "lintian: no error${lint:+ (other tags: $(printf '%s' "$lint" | tr '\n' ';'))}"
else
	bad "lintian reports errors:"$'\n'"$lint"
fi

want_deb=$(
	{
		printf '%s\n' /etc/kaudit-node/config.toml /usr/sbin/kaudit-node \
			/usr/share/man/man8/kaudit-node.8.gz /usr/share/man/man5/kaudit-node.toml.5.gz \
			/usr/share/bash-completion/completions/kaudit-node \
			/usr/share/zsh/vendor-completions/_kaudit-node \
			/usr/share/fish/vendor_completions.d/kaudit-node.fish \
			/usr/share/doc/kaudit-node/README.md /usr/share/doc/kaudit-node/changelog.gz \
			/usr/share/doc/kaudit-node/changelog.Debian.gz /usr/share/doc/kaudit-node/copyright \
			/usr/share/lintian/overrides/kaudit-node \
			/usr/lib/systemd/system-preset/80-kaudit-node.preset
		for u in $units; do echo "/usr/lib/systemd/system/$u"; done
	} | sort
)
got_deb=$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)
same_list ".deb files" "$want_deb" "$got_deb"
[[ $(dpkg-deb -f "$DEB" Depends) == systemd ]] && ok ".deb Depends: systemd" || bad ".deb Depends: $(dpkg-deb -f "$DEB" Depends)"
[[ $(dpkg-deb -f "$DEB" Version) == "$version-1" ]] && ok ".deb version $version-1" || bad ".deb version $(dpkg-deb -f "$DEB" Version)"
mkdir -p "$tmp/deb/control"
dpkg-deb -x "$DEB" "$tmp/deb"
dpkg-deb -e "$DEB" "$tmp/deb/control"
same_list ".deb conffiles" "/etc/kaudit-node/config.toml" "$(cat "$tmp/deb/control/conffiles")"
same_list ".deb control files" $'conffiles\ncontrol\npostinst\npostrm\nprerm' "$(ls "$tmp/deb/control" | sort)"
grep -q 'configure)' "$tmp/deb/control/postinst" && grep -q 'kaudit_apply_on_install' "$tmp/deb/control/postinst" &&
	grep -q '"$KAUDIT_NODE" apply' "$tmp/deb/control/postinst" && ok ".deb postinst configure runs kaudit-node apply" || bad ".deb postinst"
grep -q 'remove)' "$tmp/deb/control/prerm" && grep -q '"$KAUDIT_NODE" remove' "$tmp/deb/control/prerm" && ok ".deb prerm remove runs kaudit-node remove" || bad ".deb prerm"
grep -q 'rm -rf /etc/kaudit-node' "$tmp/deb/control/postrm" && ! grep -q '/var/log' "$tmp/deb/control/postrm" && ok ".deb postrm purge removes /etc/kaudit-node and no log" || bad ".deb postrm"

# --- the .rpm ----------------------------------------------------------------
want_rpm=$(
	{
		printf '%s\n' /etc/kaudit-node/config.toml /usr/sbin/kaudit-node \
			/usr/share/man/man8/kaudit-node.8.gz /usr/share/man/man5/kaudit-node.toml.5.gz \
			/usr/share/bash-completion/completions/kaudit-node \
			/usr/share/zsh/site-functions/_kaudit-node \
			/usr/share/fish/vendor_completions.d/kaudit-node.fish \
			/usr/share/doc/kaudit-node/README.md /usr/share/doc/kaudit-node/CHANGELOG.md \
			/usr/share/licenses/kaudit-node/LICENSE \
			/usr/lib/systemd/system-preset/80-kaudit-node.preset
		for u in $units; do echo "/usr/lib/systemd/system/$u"; done
	} | sort
)
same_list ".rpm --list" "$want_rpm" "$(rpm -qp --list "$RPM" 2>/dev/null | sort)"
same_list ".rpm --configfiles" "/etc/kaudit-node/config.toml" "$(rpm -qp --configfiles "$RPM" 2>/dev/null)"
same_list ".rpm %config(noreplace)" "/etc/kaudit-node/config.toml cn" \
	"$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" 2>/dev/null | awk '$2 ~ /c/')"
same_list ".rpm --docfiles" "$(printf '%s\n' /usr/share/doc/kaudit-node/CHANGELOG.md /usr/share/doc/kaudit-node/README.md \
	/usr/share/licenses/kaudit-node/LICENSE /usr/share/man/man5/kaudit-node.toml.5.gz /usr/share/man/man8/kaudit-node.8.gz)" \
	"$(rpm -qp --docfiles "$RPM" 2>/dev/null | sort)"
same_list ".rpm --requires (no shared library: static)" "$(printf '%s\n' /bin/sh "config(kaudit-node) = $version-1" systemd)" \
	"$(rpm -qp --requires "$RPM" 2>/dev/null | grep -v '^rpmlib(' | sort -u)"
rpm -qp --scripts "$RPM" >"$tmp/rpm-scripts" 2>/dev/null
same_list ".rpm scriptlets" $'postinstall\npostuninstall\npreuninstall' "$(sed -n 's/^\([a-z]*\) scriptlet.*/\1/p' "$tmp/rpm-scripts" | sort)"
# (Sections into variables first: `awk … | grep -q` under pipefail fails at
# random when grep exits before awk has written everything.)
rpm_post=$(awk '/^postinstall scriptlet/,/^preuninstall scriptlet/' "$tmp/rpm-scripts")
rpm_preun=$(awk '/^preuninstall scriptlet/,/^postuninstall scriptlet/' "$tmp/rpm-scripts")
grep -q '"$KAUDIT_NODE" apply' <<<"$rpm_post" &&
	ok ".rpm %post runs kaudit-node apply" || bad ".rpm %post does not run kaudit-node apply"
grep -q 'if \[ "$1" = 0 \]' <<<"$rpm_preun" &&
	grep -q '"$KAUDIT_NODE" remove' <<<"$rpm_preun" &&
	ok ".rpm %preun runs kaudit-node remove on erase only" || bad ".rpm %preun"
grep -q 'KAUDIT_NODE_NO_APPLY' "$tmp/rpm-scripts" && ok ".rpm honours KAUDIT_NODE_NO_APPLY" || bad ".rpm: no KAUDIT_NODE_NO_APPLY"
! grep -q '/var/log' "$tmp/rpm-scripts" && ok ".rpm scriptlets never touch /var/log" || bad ".rpm scriptlets mention /var/log"
mkdir -p "$tmp/rpm"
# rpm2cpio exits 1 on this zstd payload after writing it whole; cmp below checks.
{ rpm2cpio "$RPM" || true; } | (cd "$tmp/rpm" && cpio -idm --quiet)

# --- both --------------------------------------------------------------------
if cmp -s "$tmp/deb/usr/sbin/kaudit-node" "$tmp/rpm/usr/sbin/kaudit-node"; then
	ok "the same binary in both packages"
else
	bad "the .deb and the .rpm hold different binaries"
fi
ldd "$tmp/deb/usr/sbin/kaudit-node" 2>&1 | grep -Eq 'statically linked|not a dynamic executable' &&
	ok "the binary is statically linked ($(file -b "$tmp/deb/usr/sbin/kaudit-node" | cut -d, -f1,5 | tr -s ' '))" || bad "the binary is dynamic: $(ldd "$tmp/deb/usr/sbin/kaudit-node" 2>&1)"
grep -qx "kaudit-node $version" <<<"$("$tmp/deb/usr/sbin/kaudit-node" --version)" && ok "the binary runs: kaudit-node $version" || bad "the binary does not run"

for page in usr/share/man/man8/kaudit-node.8.gz usr/share/man/man5/kaudit-node.toml.5.gz; do
	for root in deb rpm; do
		warn=$(MANWIDTH=80 man --warnings -l "$tmp/$root/$page" 2>&1 >/dev/null)
		[[ -z $warn ]] && ok "man --warnings: $root $page" || bad "man --warnings $root $page:"$'\n'"$warn"
	done
done
for f in target/assets/deb-scripts/* target/assets/rpm-scripts/*; do
	sh -n "$f" || bad "$f does not parse"
	# Each script holds all of lib.sh: unused functions and variables are expected.
	if command -v shellcheck >/dev/null; then shellcheck -s sh -S warning -e SC2034 "$f" || bad "shellcheck $f"; fi
done
ok "maintainer scripts parse (sh -n)"
bash -n "$tmp/deb/usr/share/bash-completion/completions/kaudit-node" && ok "bash completion parses" || bad "bash completion"

# Reproducible: the same sources give the same bytes.
cargo xtask dist-assets --out "$tmp/assets2" >/dev/null
if diff -r target/assets "$tmp/assets2" >/dev/null; then
	ok "cargo xtask dist-assets is reproducible"
else
	bad "cargo xtask dist-assets differs between two runs: $(diff -rq target/assets "$tmp/assets2")"
fi

# --- contents and sizes -------------------------------------------------------
echo
echo "packaging: $DEB ($(stat -c %s "$DEB") bytes)"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); printf "  %9d  %s\n", $3, $6 }'
echo "packaging: $RPM ($(stat -c %s "$RPM") bytes)"
rpm -qp --qf '[  %9{FILESIZES}  %{FILENAMES}\n]' "$RPM" 2>/dev/null
echo

if ((FAILS)); then
	echo "packaging: $FAILS checks failed" >&2
	exit 1
fi
echo "packaging: all package checks passed"
