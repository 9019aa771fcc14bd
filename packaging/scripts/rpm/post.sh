#!/bin/sh
# kaudit-node .rpm %post (packaging/scripts/rpm/post.sh); $1: 1 install, 2 upgrade.

#KAUDIT_LIB#

kaudit_daemon_reload
kaudit_apply_on_install
exit 0
