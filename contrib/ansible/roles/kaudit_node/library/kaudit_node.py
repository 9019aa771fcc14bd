#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright kaudit-node contributors. Apache-2.0 (see the repository's LICENSE).
"""Run kaudit-node on a node: apply (plan in check mode) or check."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: kaudit_node
short_description: Turn on kube-apiserver audit logging with kaudit-node, or check it
description:
  - C(command=apply) runs C(kaudit-node apply --format json --detailed-exitcodes).
    Exit 0 is C(changed=false), 2 is C(changed=true); 4 and 6 (failed, failed with
    changes: kaudit-node has rolled back) fail the task with kaudit-node's message,
    and so does any other exit code (a configuration, policy or unit error found
    before anything changed).
  - In check mode, C(command=apply) runs C(kaudit-node plan) instead and changes
    nothing; C(changed) says whether apply would change the node, and with
    C(--diff) the plan's unified diffs and actions are shown.
  - C(command=check) runs C(kaudit-node check --format json), read-only (also in
    check mode). It fails on CRITICAL and UNKNOWN, and on WARNING when
    I(fail_on_warning) is set; a WARNING otherwise becomes an Ansible warning.
  - kaudit-node's own warnings (from apply and plan) become Ansible warnings.
options:
  command:
    description: What to run.
    type: str
    choices: [apply, check]
    default: apply
  executable:
    description: The kaudit-node binary on the node.
    type: path
    default: /usr/sbin/kaudit-node
  config:
    description: The configuration file (C(--config)).
    type: path
    default: /etc/kaudit-node/config.toml
  warn_age:
    description: C(check --warn-age), a Go duration; kaudit-node's default when not set.
    type: str
  crit_age:
    description: C(check --crit-age).
    type: str
  warn_free:
    description: C(check --warn-free), percent.
    type: str
  crit_free:
    description: C(check --crit-free), percent.
    type: str
  fail_on_warning:
    description: With C(command=check), fail on WARNING as well.
    type: bool
    default: false
"""

RETURN = r"""
rc:
  description: kaudit-node's exit code.
  type: int
  returned: when kaudit-node ran
report:
  description: The JSON report of C(apply) (changed, actions, files, old_main_pid,
    new_main_pid, first_event_ms, warnings, notes, failed_step, error, rolled_back).
  type: dict
  returned: command=apply, not in check mode
plan:
  description: The JSON plan (C(kaudit-node plan --format json)).
  type: dict
  returned: command=apply in check mode
check:
  description: The JSON result of C(kaudit-node check) (state, exit_code, summary, probes).
  type: dict
  returned: command=check
start:
  description: When kaudit-node started (node clock).
  type: str
  returned: when kaudit-node ran
end:
  description: When kaudit-node ended (node clock).
  type: str
  returned: when kaudit-node ran
"""

import datetime
import json
import os

from ansible.module_utils.basic import AnsibleModule


def now():
    return datetime.datetime.now().isoformat(" ")


def error_lines(stderr):
    """kaudit-node's error lines (`kaudit-node: error: ...`), else all of stderr."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    return "\n".join(errors or lines[-10:])


def parse_json(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run(module, args):
    start = now()
    rc, out, err = module.run_command([module.params["executable"]] + args)
    return rc, out, err, {"start": start, "end": now(), "cmd": [module.params["executable"]] + args}


def apply(module):
    p = module.params
    config = ["--config", p["config"]]
    diff = None
    if module._diff or module.check_mode:
        # The plan as people read it: unified diffs per file, then the actions.
        rc, out, err, _ = run(module, ["plan"] + config)
        if rc == 2:
            diff = {"prepared": out}
        elif rc != 0:
            module.fail_json(msg="kaudit-node plan failed (exit %d): %s" % (rc, error_lines(err)),
                             rc=rc, stdout=out, stderr=err)
    if module.check_mode:
        rc, out, err, times = run(module, ["plan", "--format", "json"] + config)
        plan = parse_json(out)
        if rc not in (0, 2) or plan is None:
            module.fail_json(msg="kaudit-node plan failed (exit %d): %s" % (rc, error_lines(err)),
                             rc=rc, stdout=out, stderr=err, **times)
        for w in plan.get("warnings", []):
            module.warn("kaudit-node: %s" % w)
        # failed=False: Ansible takes a non-zero rc as a failure otherwise.
        result = dict(changed=rc == 2, failed=False, rc=rc, plan=plan, **times)
        if diff:
            result["diff"] = diff
        module.exit_json(**result)

    rc, out, err, times = run(module, ["apply", "--format", "json", "--detailed-exitcodes"] + config)
    report = parse_json(out)
    if report is not None:
        for w in report.get("warnings", []):
            module.warn("kaudit-node: %s" % w)
    result = dict(rc=rc, report=report, stderr=err, **times)
    if diff and rc in (2, 6):
        result["diff"] = diff
    if rc in (0, 2) and report is not None:
        module.exit_json(changed=rc == 2, failed=False, **result)
    if rc in (4, 6) and report is not None:
        msg = "kaudit-node apply failed at step \"%s\": %s" % (
            report.get("failed_step") or "?", report.get("error") or error_lines(err))
        if report.get("rolled_back"):
            msg += " (rolled back: the previous files are restored and the apiserver is active)"
        module.fail_json(msg=msg, changed=rc == 6, **result)
    # Refused before anything changed: configuration, policy, unit, lock, root...
    module.fail_json(msg="kaudit-node apply failed (exit %d): %s" % (rc, error_lines(err)),
                     changed=False, stdout=out, **result)


def check(module):
    p = module.params
    args = ["check", "--format", "json", "--config", p["config"]]
    for name in ("warn_age", "crit_age", "warn_free", "crit_free"):
        if p[name] not in (None, ""):
            args += ["--" + name.replace("_", "-"), str(p[name])]
    rc, out, err, times = run(module, args)
    report = parse_json(out)
    if report is None:
        module.fail_json(msg="kaudit-node check: UNKNOWN (exit %d): %s" % (rc, error_lines(err)),
                         rc=rc, stdout=out, stderr=err, changed=False, **times)
    state = report.get("state", "UNKNOWN")
    summary = "AUDIT %s - %s" % (str(state).upper(), report.get("summary", ""))
    result = dict(changed=False, rc=rc, check=report, **times)
    if rc == 0:
        module.exit_json(msg=summary, **result)
    if rc == 1 and not p["fail_on_warning"]:
        module.warn(summary)
        module.exit_json(msg=summary, failed=False, **result)
    module.fail_json(msg=summary, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            command=dict(type="str", choices=["apply", "check"], default="apply"),
            executable=dict(type="path", default="/usr/sbin/kaudit-node"),
            config=dict(type="path", default="/etc/kaudit-node/config.toml"),
            warn_age=dict(type="str"),
            crit_age=dict(type="str"),
            warn_free=dict(type="str"),
            crit_free=dict(type="str"),
            fail_on_warning=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    exe = module.params["executable"]
    if not os.path.isfile(exe) or not os.access(exe, os.X_OK):
        if module.check_mode and module.params["command"] == "apply":
            # The install task only said it would install it.
            module.exit_json(changed=True, msg="kaudit-node is not installed yet at %s: no plan in check mode" % exe)
        module.fail_json(msg="kaudit-node is not installed at %s" % exe)
    if module.params["command"] == "check":
        check(module)
    else:
        apply(module)


if __name__ == "__main__":
    main()
