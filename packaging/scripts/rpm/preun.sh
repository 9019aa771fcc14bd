#!/bin/sh
# kaudit-node .rpm %preun (packaging/scripts/rpm/preun.sh); $1: 0 erase, 1 upgrade.

#KAUDIT_LIB#

if [ "$1" = 0 ]; then
	# Stop and disable the shipped units, as %systemd_preun does.
	if [ -n "$KAUDIT_UNITS" ] && kaudit_systemd_running; then
		# shellcheck disable=SC2086 # a list of unit names
		systemctl --no-reload disable --now $KAUDIT_UNITS >/dev/null 2>&1 || true
	fi
	kaudit_remove_on_erase
fi
exit 0
