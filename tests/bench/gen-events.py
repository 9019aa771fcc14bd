#!/usr/bin/env python3
"""Build a big Kubernetes audit log for tests/bench/events.sh.

Usage: gen-events.py --out FILE --mb N [--src DIR]

Reads the real kube-apiserver v1.32 events in DIR (default: the shared data
folder next to the repository, ../shared/data/audit-events; see its
README.md): the lumberjack backups audit-<timestamp>.log sorted by name, then
the live audit.log, which is the order they were written in. It writes them
round after round until FILE holds at least N MiB (whole rounds, so a
request's ResponseStarted and ResponseComplete events stay together).

Round 0 is the capture byte for byte, so its ground-truth counts (the
README's tables) hold for the first lines. Every later round R changes, at
the string level, so that each line keeps the exact JSON the apiserver wrote
(its field order, escapes and number forms):
  - auditID: a new uuid-shaped value per request (the events that share an
    auditID in the capture share the new one within the round);
  - requestReceivedTimestamp and stageTimestamp: shifted by R times the
    capture's span (rounded up to whole seconds, plus one), in the same
    6-digit-microsecond form, so round R+1 starts after round R ends and the
    file stays in time order (the few lines that run backwards in the capture
    run backwards in every round, as they did in the real log);
  - the users alice, bob and carol: alice-K, bob-K, carol-K with K cycling
    through a pool of USER_POOL, so a per-user summary has many rows
    (user.username, impersonatedUser.username, uid-<name>, the subject of
    the RoleBinding and the `User "<name>"` of RBAC messages alike);
  - the objects the traffic created (web-N, tmp-N, db-pass-N, ...):
    <name>-rR, everywhere they appear (URIs, objectRef, bodies, messages).
Everything else (verbs, resources, response codes, system:* users) is kept,
so the counts of any filter scale with the number of rounds.

Deterministic: the new auditIDs come from a fixed seed.
"""
import argparse
import glob
import os
import random
import re
import sys
import time
from datetime import datetime, timezone

SEED = 1
USER_POOL = 100
MIB = 1 << 20
# Per-round constants are written into the template as control characters,
# which JSON text never holds raw, and replaced per round with str.replace
# (C speed) instead of one Python call per occurrence.
USER_MARK = "\x00"
OBJ_MARK = "\x01"

AUDIT_ID = re.compile(r'"auditID":"([0-9a-f-]{36})"')
TIMESTAMP = re.compile(
    r'"(?:requestReceivedTimestamp|stageTimestamp)":"'
    r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})Z"'
)
# The users' names only where they name the user: an object such as
# bob-pod-reader-3 keeps its name (it changes as an object, below).
USER = re.compile(
    r'(?:(?<="username":")|(?<="uid":"uid-)|(?<=User \\")|(?<="name":"))'
    r"(?:alice|bob|carol)(?=\\?\")"
)
# The objects traffic.sh creates, with the round number of the capture.
OBJECT = re.compile(
    r"(?<![A-Za-z0-9-])"
    r"(?:tmp|web|db-pass|ci-bot|pod-reader|app-cfg|carol-view|bob-pod-reader"
    r"|api|audit-reader|feature-flags|does-not-exist)-\d+"
    r"(?![A-Za-z0-9-])"
)


def sources(src):
    backups = sorted(glob.glob(os.path.join(src, "audit-*.log")))
    live = os.path.join(src, "audit.log")
    files = backups + ([live] if os.path.exists(live) else [])
    if not files:
        sys.exit(f"gen-events: no audit*.log files in {src}")
    return files


def epoch_s(text):
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


class Template:
    """The capture as literal pieces between slots. A slot is an index into
    a per-round table: first the requests' auditIDs, then the distinct
    timestamps. User names and object names get the per-round marks."""

    def __init__(self, text):
        if USER_MARK in text or OBJ_MARK in text:
            sys.exit("gen-events: the source holds raw control characters; it is not JSON lines")
        text = USER.sub(lambda m: m.group(0) + USER_MARK, text)
        text = OBJECT.sub(lambda m: m.group(0) + OBJ_MARK, text)
        self.ids = []  # original auditIDs, in first-seen order
        self.stamps = []  # (epoch seconds, "ffffff"), distinct
        id_slot, stamp_slot = {}, {}
        found = []  # (start, end, table key), in text order
        for m in AUDIT_ID.finditer(text):
            found.append((m.start(1), m.end(1), ("id", m.group(1))))
        for m in TIMESTAMP.finditer(text):
            found.append((m.start(1), m.end(2) + 1, ("ts", (epoch_s(m.group(1)), m.group(2)))))
        found.sort()
        self.literals, keys, pos = [], [], 0
        for start, end, (kind, key) in found:
            self.literals.append(text[pos:start])
            pos = end
            if kind == "id":
                if key not in id_slot:
                    id_slot[key] = len(self.ids)
                    self.ids.append(key)
                keys.append(("id", id_slot[key]))
            else:
                if key not in stamp_slot:
                    stamp_slot[key] = len(self.stamps)
                    self.stamps.append(key)
                keys.append(("ts", stamp_slot[key]))
        self.literals.append(text[pos:])
        n_ids = len(self.ids)
        self.slots = [i if kind == "id" else n_ids + i for kind, i in keys]
        secs = [s for s, _ in self.stamps]
        # Whole seconds, so only the seconds part of a timestamp moves.
        self.shift = max(secs) - min(secs) + 2
        self.lines = text.count("\n")

    def render(self, values):
        out = [None] * (2 * len(self.slots) + 1)
        out[0::2] = self.literals
        out[1::2] = [values[i] for i in self.slots]
        return "".join(out)


def new_id(rng):
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def round_text(tpl, r, rng):
    if r == 0:
        ids = tpl.ids
    else:
        ids = [new_id(rng) for _ in tpl.ids]
    shift = r * tpl.shift
    prefix = {}
    stamps = []
    for sec, frac in tpl.stamps:
        s = sec + shift
        p = prefix.get(s)
        if p is None:
            p = prefix[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        stamps.append(f"{p}.{frac}Z")
    text = tpl.render(ids + stamps)
    user = f"-{(r - 1) % USER_POOL + 1}" if r else ""
    obj = f"-r{r}" if r else ""
    return text.replace(USER_MARK, user).replace(OBJ_MARK, obj)


def self_check(path, source, rounds):
    """Every line of a sample parses, and the timestamps are uuid- and
    microsecond-shaped: the first 1000 lines (round 0), the first lines of
    round 1, and the last 1000 lines. Round 0 is the capture unchanged."""
    import json

    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    with open(path, "rb") as f:
        head = f.read(len(source.encode()) + 4 * MIB).decode(errors="replace")
        f.seek(max(0, os.path.getsize(path) - 16 * MIB))
        tail = f.read().decode(errors="replace")
    if not head.startswith(source):
        sys.exit("gen-events: self-check: round 0 is not the capture unchanged")
    sample = head.splitlines()[:1000]
    if rounds > 1:
        sample += head[len(source):].splitlines()[:1000][:-1]  # the last may be cut
        sample += tail.splitlines()[-1000:]
    last = None
    for n, line in enumerate(sample):
        try:
            e = json.loads(line)
        except json.JSONDecodeError as err:
            sys.exit(f"gen-events: self-check: sample line {n + 1} is not JSON: {err}")
        if not uuid.fullmatch(e["auditID"]):
            sys.exit(f"gen-events: self-check: sample line {n + 1}: auditID {e['auditID']!r}")
        for k in ("requestReceivedTimestamp", "stageTimestamp"):
            if not stamp.fullmatch(e[k]):
                sys.exit(f"gen-events: self-check: sample line {n + 1}: {k} {e[k]!r}")
        last = e
    return len(sample), last


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description="Build a big audit log from real kube-apiserver events.")
    ap.add_argument("--out", required=True, help="the log to write")
    ap.add_argument("--mb", required=True, type=int, help="at least this many MiB")
    ap.add_argument(
        "--src",
        default=os.path.join(os.path.dirname(repo), "shared", "data", "audit-events"),
        help="folder with the audit*.log files (default: %(default)s)",
    )
    args = ap.parse_args()
    if args.mb <= 0:
        ap.error("--mb must be positive")

    t0 = time.monotonic()
    source = ""
    for name in sources(args.src):
        with open(name, encoding="utf-8") as f:
            part = f.read()
        if part and not part.endswith("\n"):
            part += "\n"
        source += part
    tpl = Template(source)
    rng = random.Random(SEED)
    want = args.mb * MIB
    written = rounds = 0
    with open(args.out, "wb") as out:
        while written < want:
            data = round_text(tpl, rounds, rng).encode()
            out.write(data)
            written += len(data)
            rounds += 1
    elapsed = time.monotonic() - t0
    checked, _ = self_check(args.out, source, rounds)
    print(
        f"gen-events: {args.out}: {written} bytes ({written / MIB:.1f} MiB), "
        f"{rounds} rounds of {tpl.lines} events = {rounds * tpl.lines} events, "
        f"{tpl.shift} s apart; written in {elapsed:.1f} s; {checked} sample lines parse",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
