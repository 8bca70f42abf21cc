#!/usr/bin/env bash
# The C API word count (host/examples/wordcount) gives the same counts as tr | sort | uniq -c
# on generated text, for several batch sizes.
set -euo pipefail
spate=$1
bin=$(dirname "$spate")
src=${SPATE_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$src/data/gen_words.py" --lines 20000 --seed 7 --out "$tmp/words.txt"
LC_ALL=C tr ' ' '\n' < "$tmp/words.txt" | LC_ALL=C sort | LC_ALL=C uniq -c \
  | awk '{print $1, $2}' | LC_ALL=C sort > "$tmp/expected"
for lines in 1000 7777 100000; do
  "$bin/wordcount" "$tmp/words.txt" "$lines" | LC_ALL=C sort > "$tmp/got"
  if ! cmp -s "$tmp/expected" "$tmp/got"; then
    echo "word counts differ with $lines lines per batch:" >&2
    diff "$tmp/expected" "$tmp/got" | head -20 >&2
    exit 1
  fi
  echo "ok: $(wc -l < "$tmp/got") words match with $lines lines per batch"
done
