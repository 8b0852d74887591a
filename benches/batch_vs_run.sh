#!/usr/bin/env bash
# N trivial strategies four ways, in one run: `stratbox batch --dir`, one `stratbox run`
# process each, and one native python3 process each, as `python3 -I -S` (the baseline
# without `site`) and as plain `python3`. The interpreter is called by its real path
# (`sys.executable`), never through a launcher such as pyenv's shim (~100 ms a start).
# Usage: benches/batch_vs_run.sh [N] (default 1000), after `make build guest`;
# BIN=path/to/stratbox and PYTHON=python3.X choose the binaries.
set -euo pipefail
N=${1:-1000}
BIN=${BIN:-target/release/stratbox}
PY=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
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
for f in "$dir"/s/*.py; do "$PY" -I -S "$f" > /dev/null; done
t3=$(now)
for f in "$dir"/s/*.py; do "$PY" "$f" > /dev/null; done
t4=$(now)

ok=$(grep -c '"status":"ok"' "$dir/batch.jsonl" || true)
"$PY" -I -S - "$N" "$t0" "$t1" "$t2" "$t3" "$t4" "$ok" "$PY" <<'PY'
import sys
n, t0, t1, t2, t3, t4 = int(sys.argv[1]), *map(float, sys.argv[2:7])
ok, python = int(sys.argv[7]), sys.argv[8]
batch, runs, isolated, plain = t1 - t0, t2 - t1, t3 - t2, t4 - t3
print(f"{n} strategies ({ok} ok in the batch); native: {python}")
print(f"stratbox batch --dir      : {batch:7.2f} s  {n / batch:7.0f}/s")
print(f"stratbox run x {n:<10} : {runs:7.2f} s  {n / runs:7.0f}/s")
print(f"python3 -I -S x {n:<9} : {isolated:7.2f} s  {n / isolated:7.0f}/s")
print(f"python3 x {n:<15} : {plain:7.2f} s  {n / plain:7.0f}/s")
print(f"batch is {runs / batch:.1f}x faster than one run process each, "
      f"{isolated / batch:.1f}x faster than python3 -I -S processes, "
      f"{plain / batch:.1f}x faster than python3 processes")
PY
tail -1 "$dir/batch.err"
