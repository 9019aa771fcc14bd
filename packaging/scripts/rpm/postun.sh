#!/bin/sh
# kaudit-node .rpm %postun (packaging/scripts/rpm/postun.sh); $1: 0 erase, 1 upgrade.

#KAUDIT_LIB#

kaudit_daemon_reload
if [ "$1" = 0 ]; then
	# RPM has no purge: it removed an unmodified config.toml and kept a
	# modified one as config.toml.rpmsave. Drop the directory when empty.
	rmdir /etc/kaudit-node 2>/dev/null || true
fi
exit 0
