#!/usr/bin/env bash
# The flagship job on batches above the device thresholds runs its map and reduce stages as
# kernels, and says so in --metrics (kernel_launches, rows_device, rows_host per batch); on a
# tiny log the same job stays on the host. Per-minute requests and 5xx agree with awk either way.
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 12 minutes x 1500 requests (the element-wise and aggregation thresholds are 256 rows)
awk 'BEGIN { srand(5); for (m = 0; m < 12; m++) for (i = 0; i < 1500; i++) {
  st = rand() < 0.05 ? 503 : 200
  printf "10.0.%d.%d - - [10/Mar/2024:08:%02d:%02d +0000] \"GET /p/%d HTTP/1.1\" %d %d \"-\" \"t\"\n",
    int(rand() * 50), int(rand() * 250), m, int(i * 60 / 1500), int(rand() * 300), st, int(rand() * 5000) } }' \
  > "$tmp/big.log"

field() { grep -o "\"$1\":[0-9]*" "$2" | cut -d: -f2; }
check_counts() { # log, output
  local got want
  got=$(grep '^(1m,' "$2" | awk -F, '{ n += $2; e += $3 } END { print n, e }')
  want=$(awk -F'"' '{ split($3, a, " "); n++; if (a[1] >= 500) e++ } END { print n, e }' "$1")
  [ "$got" = "$want" ] || fail "$1: the job counts (requests, 5xx) $got, awk $want"
}

"$spate" run "$src/data/jobs/access_report.spate" --arg "log=$tmp/big.log" --arg "report=$tmp/a.html" \
  --metrics "$tmp/m.jsonl" > "$tmp/out" 2> "$tmp/err" || fail "big log: $(head -5 "$tmp/err")"
check_counts "$tmp/big.log" "$tmp/out"
[ "$(wc -l < "$tmp/m.jsonl")" -eq 12 ] || fail "expected 12 metrics lines: $(cat "$tmp/m.jsonl")"
for f in kernel_launches rows_device rows_host; do
  [ "$(field $f "$tmp/m.jsonl" | wc -l)" -eq 12 ] || fail "metrics lines lack $f"
done
# every batch ran kernels over at least its 1500 parsed records
bad=$(field rows_device "$tmp/m.jsonl" | awk '$1 < 1500' | wc -l)
[ "$bad" -eq 0 ] || fail "batches with fewer than 1500 rows on the device: $(cat "$tmp/m.jsonl")"
bad=$(field kernel_launches "$tmp/m.jsonl" | awk '$1 < 1' | wc -l)
[ "$bad" -eq 0 ] || fail "batches without a kernel launch: $(cat "$tmp/m.jsonl")"

# a 44-line log: the same job never wakes the device
log=$src/tests/golden/logs_access.log
"$spate" run "$src/data/jobs/access_report.spate" --arg "log=$log" --arg "report=$tmp/b.html" \
  --metrics "$tmp/s.jsonl" > "$tmp/out2" 2> "$tmp/err" || fail "small log: $(head -5 "$tmp/err")"
[ "$(field rows_device "$tmp/s.jsonl" | awk '{ s += $1 } END { print s + 0 }')" -eq 0 ] \
  || fail "the small log should stay on the host: $(cat "$tmp/s.jsonl")"
[ "$(field rows_host "$tmp/s.jsonl" | awk '{ s += $1 } END { print s + 0 }')" -gt 0 ] \
  || fail "the small log's host rows are not counted: $(cat "$tmp/s.jsonl")"
echo ok
