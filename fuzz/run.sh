#!/usr/bin/env bash
# fuzz/run.sh [SECONDS]: builds the cargo-fuzz targets and runs each one for
# SECONDS (default 30) on its committed corpus (fuzz/corpus/TARGET), with a
# random seed; fails on any crash or timeout, leaving the reproducer under
# fuzz/artifacts/TARGET/.
#
# fuzz/run.sh --runs N --seed S: each target for exactly N executions from
# seed S instead. One process per target, so the run is the same on every
# machine for the same code and corpus: what tests/run-all.sh (so CI) runs,
# where a failure must be reproducible with the same command. Exploring with
# new seeds is the timed mode's job (and the long runs' in fuzz/README.md).
#
# Needs cargo-fuzz (`cargo install --locked cargo-fuzz`) and runs on a stable
# toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags (address
# sanitizer, sanitizer coverage). Targets run one at a time, in one process
# each (one core). New inputs found go to a temporary directory, so the
# committed corpus is left as it is; to grow it, see fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"

usage() { echo "usage: fuzz/run.sh [SECONDS] | fuzz/run.sh --runs N --seed S" >&2; exit 64; }
number() { case "$1" in '' | *[!0-9]*) usage ;; esac; }
secs=30 runs='' seed=''
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || usage; number "$2"; runs=$2; shift 2 ;;
        --seed) [ $# -ge 2 ] || usage; number "$2"; seed=$2; shift 2 ;;
        *) number "$1"; secs=$1; shift ;;
    esac
done
if [ -n "$runs" ] && [ -z "$seed" ] || [ -z "$runs" ] && [ -n "$seed" ]; then usage; fi
if [ -n "$runs" ]; then
    # libFuzzer's seed 0 means "pick one".
    [ "$seed" -gt 0 ] || usage
    limit=(-runs="$runs" -seed="$seed")
    what="$runs runs from seed $seed"
else
    limit=(-max_total_time="$secs")
    what="${secs}s, random seed"
fi
targets=(unit unit_load policy config logrotate events)
declare -A max_len=([unit]=4096 [unit_load]=8192 [policy]=8192 [config]=4096 [logrotate]=4096 [events]=8192)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install --locked cargo-fuzz)" >&2
    exit 69
fi
export RUSTC_BOOTSTRAP=1

t0=$SECONDS
# Release with debug assertions and overflow checks, address sanitizer.
cargo fuzz build
printf 'fuzz/run.sh: built the targets in %ss\n' "$((SECONDS - t0))"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "$work/tmp" "artifacts/$t"
    log="$work/$t.log"
    printf '\n==> fuzz %s, %s (corpus: %s files)\n' "$t" "$what" "$(ls "corpus/$t" | wc -l)"
    # TMPDIR: unit_load writes its node files under a temporary root there.
    if TMPDIR="$work/tmp" cargo fuzz run "$t" "$work/$t" "corpus/$t" -- \
        "${limit[@]}" -max_len="${max_len[$t]}" -timeout=25 \
        -dict="dict/$t.dict" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^INFO: Seed:|^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    else
        tail -n 60 "$log"
        echo "fuzz/run.sh: $t FAILED; reproducer: $(ls -t "artifacts/$t"/* 2>/dev/null | head -1)" >&2
        failed+=("$t")
    fi
done

printf '\nfuzz/run.sh: %s targets, %s each, in %ss in all\n' "${#targets[@]}" "$what" "$((SECONDS - t0))"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz/run.sh: no crash"
