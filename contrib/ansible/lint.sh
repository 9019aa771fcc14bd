#!/usr/bin/env bash
# Lints the role and the example playbook: ansible-lint (production profile,
# offline; .ansible-lint), then checks that the role covers every key of
# kaudit-node's configuration: each key documented in packaging/config.toml has
# a variable kaudit_node_<table>_<key> in defaults/main.yml (with the
# documented default, or null for "not set"), in meta/argument_specs.yml and
# in the template (or the derived variables of vars/main.yml).
#
# Usage: contrib/ansible/lint.sh   (installs the tools with tools.sh when needed)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
venv_bin=$(bash "$HERE/tools.sh")

cd "$HERE"
PATH=$venv_bin:$PATH ansible-lint --nocolor
"$venv_bin/python" - "$REPO/packaging/config.toml" roles/kaudit_node <<'EOF'
import re, sys, tomllib, yaml
doc, role = sys.argv[1], sys.argv[2]
defaults = yaml.safe_load(open(role + "/defaults/main.yml"))
specs = yaml.safe_load(open(role + "/meta/argument_specs.yml"))["argument_specs"]["main"]["options"]
# The template, and the derived variables it uses (vars/main.yml).
template = open(role + "/templates/config.toml.j2").read() + open(role + "/vars/main.yml").read()
backend = re.compile(r"^(batch|truncate)_")
table, keys, problems = "", [], []
for line in open(doc):
    l = line.lstrip("#").strip()
    if l.startswith("[") and l.endswith("]") and " " not in l:
        table = l.strip("[]")
    elif line.startswith("#") and " = " in l and re.fullmatch(r"[a-z_]+", l.split(" = ")[0]):
        key, value = l.split(" = ", 1)
        keys.append((table, key, tomllib.loads("v = " + value)["v"]))
for table, key, documented in keys:
    var = "kaudit_node_" + (table + "_" if table else "") + key
    name = (table + "." if table else "") + key
    if var not in defaults:
        problems.append("%s: no variable %s in defaults/main.yml" % (name, var))
    elif defaults[var] is not None and defaults[var] != documented:
        problems.append("%s: the role's default %r is not kaudit-node's %r" % (name, defaults[var], documented))
    if var not in specs:
        problems.append("%s: %s is not in meta/argument_specs.yml" % (name, var))
    if var not in template and not (backend.match(key) and "'%s'" % key in template):
        problems.append("%s: %s is not used in templates/config.toml.j2" % (name, var))
for p in problems:
    print("role coverage: " + p, file=sys.stderr)
if problems:
    sys.exit(1)
print("role coverage: all %d configuration keys of packaging/config.toml are role variables" % len(keys))
EOF
