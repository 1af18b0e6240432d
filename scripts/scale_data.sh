#!/usr/bin/env bash
# scale_data.sh N [OUT] — write the course subset replicated N times.
#
# Copy 1 is the subset unchanged; every later copy adds a pseudo-random offset
# in [-0.05, +0.05] to each non-empty Data_Value, so the copies are not
# byte-identical yet every mean moves by at most 0.05. The unnamed first
# column (the pandas row index) is renumbered so it stays unique.
#
# The output is deterministic: a fixed seed, so the same N always gives the
# same bytes and a bench run can be repeated on the same file.
#
# Python's csv module does the reading and writing because Stratification1
# holds quoted values with commas ("$75,000 or greater"): a field-splitting
# awk would break them. Quoting is minimal, as in the source, so N=1
# reproduces the subset byte for byte.
#
# Default OUT: data/scaled_xN.csv. Source: data/nutrition_activity_obesity_usa_subset.csv
# (override with SCALE_SRC). The file is written to OUT.tmp and renamed, so an
# interrupted run never leaves a truncated OUT behind.
set -euo pipefail

usage() {
    echo "usage: $0 N [OUT]   (N: positive integer; default OUT data/scaled_xN.csv)" >&2
    exit 2
}

[[ $# -ge 1 && $# -le 2 ]] || usage
n=$1
[[ $n =~ ^[1-9][0-9]*$ ]] || usage

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=${SCALE_SRC:-$root/data/nutrition_activity_obesity_usa_subset.csv}
out=${2:-$root/data/scaled_x$n.csv}

if [[ ! -f $src ]]; then
    echo "$0: source $src is missing (run 'make data' first)" >&2
    exit 1
fi
command -v python3 >/dev/null || {
    echo "$0: python3 is required" >&2
    exit 1
}

python3 - "$src" "$out" "$n" <<'PY'
import csv
import os
import random
import sys

src, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])

# utf-8-sig drops a BOM if the source has one; the output never has one.
with open(src, newline="", encoding="utf-8-sig") as f:
    rows = list(csv.reader(f))
if not rows:
    sys.exit(f"{src}: empty file")
header, body = rows[0], rows[1:]
try:
    value_col = header.index("Data_Value")
except ValueError:
    sys.exit(f"{src}: no Data_Value column")
# The subset's first header is empty: it is the row index pandas wrote.
index_col = 0 if header[0] == "" else None

rng = random.Random(20240917)  # fixed: same N, same bytes
tmp = out + ".tmp"
with open(tmp, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    for copy in range(copies):
        for number, row in enumerate(body):
            row = list(row)
            if index_col is not None:
                row[index_col] = str(copy * len(body) + number)
            if copy > 0 and row[value_col] != "":
                try:
                    value = float(row[value_col])
                except ValueError:
                    sys.exit(f"{src}: data row {number + 1}: Data_Value {row[value_col]!r} is not a number")
                # Three decimals keep the file small; repr prints the
                # shortest form ("29.437"), as the source does.
                row[value_col] = repr(round(value + rng.uniform(-0.05, 0.05), 3))
            writer.writerow(row)
os.replace(tmp, out)
print(f"{out}: {copies} x {len(body)} = {copies * len(body)} rows")
PY
