#!/usr/bin/env bash
# Puts the survey data in place; idempotent.
#   fetch_data.sh SHARED_DIR SUBSET_PATH FULL_PATH CDC_URL
# 1. the course subset already there: nothing to do;
# 2. SHARED_DIR/data has it: copy it (never committed: data/ is git-ignored);
# 3. otherwise download the full CDC dataset under its own name, which the
#    server's default --data falls back to.
set -euo pipefail
shared=$1 subset=$2 full=$3 url=$4
name=$(basename "$subset")
mkdir -p "$(dirname "$subset")"

if [ -s "$subset" ]; then
    echo "data: $subset is in place"
    exit 0
fi
if [ -s "$shared/data/$name" ]; then
    cp "$shared/data/$name" "$subset.tmp" && mv "$subset.tmp" "$subset"
    echo "data: copied the course subset from $shared/data to $subset"
    exit 0
fi
if [ -s "$full" ]; then
    echo "data: $shared/data is absent; using the full CDC dataset at $full"
    exit 0
fi
echo "data: $shared/data is absent; downloading the full CDC dataset (hn4x-zwk7) to $full"
if curl --fail --location --silent --show-error --retry 2 --max-time 600 -o "$full.tmp" "$url"; then
    mv "$full.tmp" "$full"
    echo "data: downloaded $(wc -l < "$full") lines to $full"
else
    rm -f "$full.tmp"
    echo "data: ERROR: no course subset in $shared/data and the download from CDC failed." >&2
    echo "data: put the CSV at $subset (or $full) by hand, or pass --data PATH to the server." >&2
    exit 1
fi
