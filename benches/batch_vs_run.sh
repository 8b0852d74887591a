#!/usr/bin/env bash
# 1,000 trivial strategies three ways, in one run: `stratbox batch --dir`, one
# `stratbox run` process each, and one native `python3 -I -S` process each (the baseline).
# Usage: benches/batch_vs_run.sh [N] (default 1000), after `make build guest`.
set -euo pipefail
N=${1:-1000}
BIN=${BIN:-target/release/stratbox}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/s"
for i in $(seq 1 "$N"); do
    printf 'total = sum(range(%d))\nprint(total)\n' "$i" > "$dir/s/s$i.py"
done
now() { date +%s.%N; }
# Warm the compiled-guest cache first, so that neither side pays for compiling it.
"$BIN" run "$dir/s/s1.py" >/dev/null 2>&1

t0=$(now)
"$BIN" batch --dir "$dir/s" > "$dir/batch.jsonl" 2> "$dir/batch.err"
t1=$(now)
for f in "$dir"/s/*.py; do "$BIN" run "$f" --json > /dev/null; done
t2=$(now)
for f in "$dir"/s/*.py; do python3 -I -S "$f" > /dev/null; done
t3=$(now)

ok=$(grep -c '"status":"ok"' "$dir/batch.jsonl" || true)
python3 - "$N" "$t0" "$t1" "$t2" "$t3" "$ok" <<'PY'
import sys
n, t0, t1, t2, t3, ok = int(sys.argv[1]), *map(float, sys.argv[2:6]), int(sys.argv[6])
batch, runs, native = t1 - t0, t2 - t1, t3 - t2
print(f"{n} strategies ({ok} ok in the batch)")
print(f"stratbox batch --dir : {batch:7.2f} s  {n / batch:7.0f}/s")
print(f"stratbox run x {n}  : {runs:7.2f} s  {n / runs:7.0f}/s")
print(f"python3 -I -S x {n} : {native:7.2f} s  {n / native:7.0f}/s")
print(f"batch is {runs / batch:.1f}x faster than one run process each, "
      f"{native / batch:.1f}x faster than native python3 processes")
PY
tail -1 "$dir/batch.err"
