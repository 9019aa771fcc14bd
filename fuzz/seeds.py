#!/usr/bin/env python3
"""Collects the fuzz seeds from the repository's fixtures.

    python3 fuzz/seeds.py OUTDIR

writes OUTDIR/unit/, OUTDIR/unit_load/, OUTDIR/policy/, OUTDIR/config/ and
OUTDIR/logrotate/, one file per seed,
named by content hash (as libFuzzer names corpus files). The committed
corpora under fuzz/corpus/ were grown from these seeds and minimised with
`cargo fuzz cmin`; run this again to re-seed after adding fixtures.
"""

import hashlib
import pathlib
import sys
import tomllib

REPO = pathlib.Path(__file__).resolve().parent.parent


def write(outdir: pathlib.Path, target: str, data: bytes) -> None:
    d = outdir / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> None:
    outdir = pathlib.Path(sys.argv[1])
    tests = REPO / "tests"

    # Unit files, drop-ins (vendor, admin, and kaudit-node's rendered ones)
    # and environment files.
    units = list((tests / "fixtures/units").glob("*.service"))
    units += (tests / "fixtures/units").glob("*.env")
    units += (tests / "cases").glob("*/root/**/*.service")
    units += (tests / "cases").glob("*/root/**/*.conf")
    units += (tests / "cases").glob("*/expected/files/**/*.conf")
    units += (tests / "system").glob("**/*.service")
    units += (tests / "system").glob("**/*.conf")
    for p in units:
        if p.is_file():
            write(outdir, "unit", p.read_bytes())

    # Whole nodes for unit_load: fragment, drop-in, the two environment
    # files of the contrib unit, separated by NUL bytes.
    def node(*parts: bytes) -> bytes:
        return b"\0".join(parts)

    fx = tests / "fixtures/units"
    for p in fx.glob("*.service"):
        write(outdir, "unit_load", p.read_bytes())
    write(
        outdir,
        "unit_load",
        node(
            (fx / "contrib.service").read_bytes(),
            b"[Service]\nUser=kube\n",
            (fx / "contrib-apiserver.env").read_bytes(),
            (fx / "contrib-config.env").read_bytes(),
        ),
    )
    for case in sorted((tests / "cases").glob("*/root")):
        fragments = sorted(case.glob("**/system/kube-apiserver.service"))
        dropins = sorted(
            p for p in case.glob("**/kube-apiserver.service.d/*.conf")
            if p.name != "50-kaudit-node.conf"
        )
        envs = [case / "etc/kubernetes/apiserver", case / "etc/kubernetes/config"]
        if not fragments:
            continue
        parts = [fragments[0].read_bytes(), dropins[0].read_bytes() if dropins else b""]
        parts += [e.read_bytes() if e.is_file() else b"" for e in envs]
        write(outdir, "unit_load", node(*parts))

    # Policies: fixtures, the presets, the planned policies.
    policies = list((tests / "fixtures/policies").glob("*.yaml"))
    policies += (REPO / "src/policy/presets").glob("*.yaml")
    for p in policies:
        if p.is_file() and p.stat().st_size <= 65536:
            write(outdir, "policy", p.read_bytes())

    # Configurations: the commented default, the golden cases' ones.
    configs = [REPO / "packaging/config.toml"]
    configs += (tests / "cases").glob("*/config.toml")
    for p in configs:
        write(outdir, "config", p.read_bytes())
    # The commented default with every `#key = value` line uncommented.
    lines = (REPO / "packaging/config.toml").read_text().splitlines(keepends=True)
    full = "".join(
        l[1:] if l.startswith("#") and " = " in l and not l.startswith("# ") else l
        for l in lines
    )
    write(outdir, "config", full.encode())

    # The bad-input corpus: configurations, and the policies and unit
    # drop-ins some cases write into the node.
    cases = tomllib.loads((tests / "bad-input/cases.toml").read_text())
    for case in cases.get("case", []):
        if "config" in case:
            write(outdir, "config", case["config"].encode())
        for path, text in case.get("files", {}).items():
            if path.endswith((".yaml", ".yml")):
                write(outdir, "policy", text.encode())
            elif path.endswith((".service", ".conf")) or "/systemd/" in path:
                write(outdir, "unit", text.encode())

    # logrotate configurations: kaudit-node's snippets, and the shapes of
    # Debian's files and of the rules `check` must catch (tests/check.rs).
    for p in (tests / "cases").glob("**/logrotate.d/*"):
        write(outdir, "logrotate", p.read_bytes())
    for text in [
        "weekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n/var/log/wtmp {\n monthly\n}\n",
        "/var/log/syslog\n/var/log/messages\n{\n rotate 4\n postrotate\n  /usr/lib/rsyslog/rsyslog-rotate\n endscript\n}\n",
        "/var/log/kubernetes/*/*.log {\n daily\n}\n\0/var/log/kubernetes/audit/audit.log",
        "\"/var/log/kubernetes/audit/audit-*.log\" /var/log/{a,b{1,2}}/*.log { rotate 1 }\n",
        "# comment {\n/var/log/[!.]*/[a-z]?.log\n/var/log/x\\*.log {\n prerotate\n  echo }\n endscript\n}\n",
    ]:
        write(outdir, "logrotate", text.encode())


if __name__ == "__main__":
    main()
