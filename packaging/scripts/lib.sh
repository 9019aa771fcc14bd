#!/bin/sh
# shellcheck shell=sh
# --- kaudit-node: shared by the .deb and .rpm maintainer scripts -----------
# (packaging/scripts/lib.sh; `cargo xtask dist-assets` pastes it over the
# #KAUDIT_LIB# line of each script and fills in the packaged units.)
# None of these functions fails: a failed apply or remove is reported with
# what to do next, and the package manager carries on.

KAUDIT_NODE=/usr/sbin/kaudit-node
# The units shipped in /usr/lib/systemd/system (never enabled by the package).
KAUDIT_UNITS="@UNITS@"

kaudit_say() {
	echo "kaudit-node: $*"
}

# A booted systemd to talk to (not a chroot, an image build or dpkg --root).
kaudit_systemd_running() {
	[ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]
}

kaudit_daemon_reload() {
	if kaudit_systemd_running; then
		systemctl daemon-reload >/dev/null 2>&1 ||
			kaudit_say "warning: systemctl daemon-reload failed"
	fi
	return 0
}

# Install and upgrade: apply when the configured unit exists and the node is
# not converged. A converged node is left alone (no restart on upgrade).
kaudit_apply_on_install() {
	case "${KAUDIT_NODE_NO_APPLY:-}" in
	1 | yes | true)
		kaudit_say "KAUDIT_NODE_NO_APPLY=$KAUDIT_NODE_NO_APPLY: audit logging not applied."
		kaudit_say "when the node is ready, run: kaudit-node plan; kaudit-node apply"
		return 0
		;;
	esac
	if ! kaudit_systemd_running; then
		kaudit_say "systemd is not running (a chroot or an image build): audit logging not applied."
		kaudit_say "on the booted node, run: kaudit-node apply"
		return 0
	fi
	kaudit_rc=0
	kaudit_err=$("$KAUDIT_NODE" plan 2>&1 >/dev/null) || kaudit_rc=$?
	case $kaudit_rc in
	0)
		kaudit_say "audit logging is already in place (kaudit-node plan: converged); nothing to apply."
		return 0
		;;
	2) ;;
	66)
		kaudit_say "audit logging not applied: a file it needs does not exist:"
		printf '%s\n' "$kaudit_err" | sed 's/^/  /'
		kaudit_say "once it exists (for example after installing kube-apiserver), run: kaudit-node apply"
		return 0
		;;
	*)
		kaudit_say "audit logging not applied: kaudit-node plan failed (exit $kaudit_rc):"
		printf '%s\n' "$kaudit_err" | sed 's/^/  /'
		kaudit_say "fix /etc/kaudit-node/config.toml or the node, then run: kaudit-node apply"
		kaudit_say "(the package itself is installed)"
		return 0
		;;
	esac
	kaudit_say "turning on audit logging: kaudit-node apply"
	kaudit_rc=0
	"$KAUDIT_NODE" apply || kaudit_rc=$?
	if [ "$kaudit_rc" -ne 0 ]; then
		kaudit_say "apply FAILED (exit $kaudit_rc): see the messages above."
		kaudit_say "apply has rolled back: the apiserver runs as it did before."
		kaudit_say "the package is installed; after fixing the cause, retry with: kaudit-node apply"
		kaudit_say "(kaudit-node plan shows what apply would change)"
	fi
	return 0
}

# Removal: give the vendor command line back. Audit logs and the
# configuration are kept.
kaudit_remove_on_erase() {
	if ! kaudit_systemd_running; then
		kaudit_say "systemd is not running: kaudit-node's drop-in, if any, is left in place."
		kaudit_say "on a booted node, delete /etc/systemd/system/UNIT.d/50-kaudit-node.conf, then: systemctl daemon-reload; systemctl restart UNIT"
		return 0
	fi
	kaudit_say "giving the vendor command line back: kaudit-node remove"
	kaudit_rc=0
	"$KAUDIT_NODE" remove || kaudit_rc=$?
	if [ "$kaudit_rc" -ne 0 ]; then
		kaudit_say "remove FAILED (exit $kaudit_rc): see the message above. The package is removed all the same."
		kaudit_say "if it rolled back, the apiserver runs on kaudit-node's drop-in because the vendor command line"
		kaudit_say "does not start: fix that first (journalctl -u UNIT). Then delete"
		kaudit_say "/etc/systemd/system/UNIT.d/50-kaudit-node.conf (and /etc/logrotate.d/kaudit-node),"
		kaudit_say "and: systemctl daemon-reload; systemctl restart UNIT"
		kaudit_say "audit logs are kept."
	fi
	return 0
}
# --- end of the shared functions -------------------------------------------
