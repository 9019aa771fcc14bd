#!/usr/bin/env bash
# Installs the Python tools of contrib/ansible (requirements.txt: ansible,
# which brings ansible-core and community.docker, and ansible-lint) into a
# virtualenv, from PyPI with pip. Does nothing when the virtualenv already
# has exactly these requirements. Prints the virtualenv's bin directory.
#
# Usage: contrib/ansible/tools.sh
# Environment: KAUDIT_ANSIBLE_VENV (default: REPO/target/ansible-venv),
# PYTHON (default: python3; ansible-core 2.19 needs Python >= 3.11).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${KAUDIT_ANSIBLE_VENV:-$REPO/target/ansible-venv}
PY=${PYTHON:-python3}
REQ=$HERE/requirements.txt

stamp() { { sha256sum <"$REQ"; "$VENV/bin/python" --version 2>&1; } | sha256sum | cut -c1-16; }

if [[ -x $VENV/bin/ansible-playbook && -x $VENV/bin/ansible-lint && -f $VENV/.kaudit-stamp ]] &&
	[[ $(cat "$VENV/.kaudit-stamp") == "$(stamp)" ]]; then
	echo "$VENV/bin"
	exit 0
fi
t0=$SECONDS
echo "ansible tools: installing $(grep -v '^#' "$REQ" | xargs) into $VENV" >&2
rm -rf -- "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$REQ" >&2
stamp >"$VENV/.kaudit-stamp"
echo "ansible tools: installed in $((SECONDS - t0)) s" >&2
echo "$VENV/bin"
