#!/usr/bin/env bash
# Log jobs from scripts (the goldens logs_*.spate run through cli_script.sh): --rejects lists
# every line that does not parse with its file, line and reason, and late records; --metrics
# counts them per batch; --arg fills arg(...); report() writes one self-contained page;
# saveAsTextFiles writes one directory per event-time batch; and the flagship job
# data/jobs/access_report.spate agrees with awk on a small log.
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
gold=$src/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# parse rejects: file:line: parse(format): reason: text, in input order per parser
(cd "$gold" && "$spate" run logs_parse.spate --rejects "$tmp/rej") > "$tmp/out" 2> "$tmp/err" \
  || fail "logs_parse: $(head -5 "$tmp/err")"
diff -u "$gold/logs_parse.rejects" "$tmp/rej" > "$tmp/diff" || fail "parse rejects differ: $(cat "$tmp/diff")"
diff -u "$gold/logs_parse.out" "$tmp/out" > /dev/null || fail "logs_parse output changed with --rejects"

# late records: small arrival batches make the last line (08:00:30, after 08:04) late
(cd "$gold" && "$spate" run logs_eventtime.spate --batch-lines 4 --rejects "$tmp/rej2" \
  --metrics "$tmp/m.jsonl") > "$tmp/out2" 2> "$tmp/err" || fail "late run: $(head -5 "$tmp/err")"
grep -q '^logs_access.log:6: parse(combined): unterminated request: ' "$tmp/rej2" \
  || fail "the broken line is not in the rejects: $(cat "$tmp/rej2")"
grep -q 'late record.*/too-late' "$tmp/rej2" || fail "the late record is not in the rejects: $(cat "$tmp/rej2")"
[ "$(wc -l < "$tmp/rej2")" -eq 2 ] || fail "expected 2 rejects: $(cat "$tmp/rej2")"
sum() { grep -o "\"$1\":[0-9]*" "$tmp/m.jsonl" | cut -d: -f2 | awk '{ s += $1 } END { print s }'; }
[ "$(sum late)" = 1 ] || fail "metrics should count 1 late record: $(cat "$tmp/m.jsonl")"
[ "$(sum rejected)" = 2 ] || fail "metrics should count 2 rejects (1 bad line, 1 late)"
[ "$(sum records_in)" = 42 ] || fail "metrics should see 42 records in event batches"
# the on-time out-of-order record (08:02:30, after 08:03:55) still joined its batch
grep -q '(/late-ok,1710057750000)' "$tmp/out2" || fail "the record within the watermark was lost"

# --arg: required arguments, defaults, bad syntax
"$spate" run -e 'textFile(arg("log")).count().print()' > /dev/null 2> "$tmp/e"; rc=$?
[ $rc -eq 2 ] || fail "a missing arg should exit 2, got $rc"
grep -q 'no value for arg log: give --arg log=VALUE' "$tmp/e" || fail "missing arg message: $(cat "$tmp/e")"
"$spate" run x.spate --arg novalue > /dev/null 2>&1; [ $? -eq 2 ] || fail "--arg without = should exit 2"
"$spate" run -e 'textFile(arg("log", "nope")).count().print()' --arg "log=$gold/logs_access.log" \
  > "$tmp/c" 2>&1 || fail "run with --arg: $(cat "$tmp/c")"
grep -qx 44 "$tmp/c" || fail "--arg should count the 44 lines: $(cat "$tmp/c")"

# report and saveAsTextFiles: outputs are relative to the working directory
mkdir -p "$tmp/w"
job='batch 1m eventTime(time)
val log = textFile(arg("log")).parse("combined")
log.count().report("r.html", "Requests per minute")
log.map(r => (r.path, 1L)).reduceByKey((a, b) => a + b).topK(3).report("r.html", "Top paths")
log.map(r => r.status).saveAsTextFiles(arg("out"), "txt")'
(cd "$tmp/w" && "$spate" run -e "$job" --arg "log=$gold/logs_access.log" --arg out=st) \
  > "$tmp/o3" 2> "$tmp/err" || fail "report job: $(head -5 "$tmp/err")"
[ -s "$tmp/w/r.html" ] || fail "no report written"
grep -q "Requests per minute" "$tmp/w/r.html" && grep -q "Top paths" "$tmp/w/r.html" \
  && grep -q "<svg" "$tmp/w/r.html" || fail "the report lacks its sections or charts"
! grep -Eq '(src|href)="https?:' "$tmp/w/r.html" || fail "the report fetches from the network"
n=$(ls -d "$tmp/w"/st-*.txt 2> /dev/null | wc -l)
[ "$n" -eq 5 ] || fail "saveAsTextFiles should write 5 batch directories, found $n"
[ "$(cat "$tmp/w"/st-1710057660000.txt/part-* | wc -l)" -eq 9 ] || fail "the first minute holds 9 records"

# the flagship job on the small log: per-minute requests and 5xx sum to awk's totals
"$spate" run "$src/data/jobs/access_report.spate" --arg "log=$gold/logs_access.log" \
  --arg "report=$tmp/a.html" > "$tmp/fl" 2> "$tmp/err" || fail "access_report: $(head -5 "$tmp/err")"
[ -s "$tmp/a.html" ] || fail "access_report wrote no report"
got=$(grep '^(1m,' "$tmp/fl" | awk -F, '{ s += $2 } END { print s }')
got5=$(grep '^(1m,' "$tmp/fl" | awk -F, '{ s += $3 } END { print s }')
want=$(awk -F'"' 'NF >= 3 { split($3, a, " "); if (a[1] ~ /^[0-9]+$/) n++ } END { print n }' "$gold/logs_access.log")
want5=$(awk -F'"' 'NF >= 3 { split($3, a, " "); if (a[1] >= 500) n++ } END { print n }' "$gold/logs_access.log")
[ "$got" = "$want" ] || fail "access_report counts $got requests, awk $want"
[ "$got5" = "$want5" ] || fail "access_report counts $got5 5xx, awk $want5"
# the 10-minute window at 08:05 holds the whole log
grep -q "^(10m,$want,$want5," "$tmp/fl" || fail "the last window should hold all $want requests: $(grep '^(10m' "$tmp/fl" | tail -1)"
grep -q '^(/img/a.png,' "$tmp/fl" || fail "top paths missing"
echo "ok"
