#!/usr/bin/env bash
# The spate command: devices, a word-count job, metrics, clear errors with non-zero exits,
# graceful stop on SIGINT.
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# devices: every device with its facts, then the topology
"$spate" devices > "$tmp/dev" 2> "$tmp/dev.err" || fail "spate devices exited $?"
for k in "device 0:" "platform:" "compute units:" "global memory:" "local memory:" \
         "OpenCL C:" "int64 atomics:" "topology:"; do
  grep -q "$k" "$tmp/dev" || fail "spate devices does not print '$k'"
done

# no OpenCL platform at all: one clear line naming the package, non-zero exit
OCL_ICD_VENDORS="$tmp/none" OCL_ICD_FILENAMES="" "$spate" devices > /dev/null 2> "$tmp/noplat"
[ $? -ne 0 ] || fail "no platform should fail"
grep -q "pocl-opencl-icd" "$tmp/noplat" || fail "no-platform error does not name pocl-opencl-icd: $(cat "$tmp/noplat")"

# a word count job: one print header per batch, metrics as JSON lines
python3 "$src/data/gen_words.py" --lines 5000 --seed 3 --out "$tmp/w.txt"
"$spate" wordcount "$tmp/w.txt" --batch-lines 1000 --print 3 --metrics "$tmp/m.jsonl" \
  > "$tmp/out" 2> "$tmp/err" || fail "wordcount exited $?: $(cat "$tmp/err")"
[ "$(grep -c '^Time: ' "$tmp/out")" -eq 5 ] || fail "expected 5 batches: $(head -20 "$tmp/out")"
grep -q '^Time: 5000 ms$' "$tmp/out" || fail "batch times are not k x 1000 ms"
[ "$(grep -c '^\.\.\.$' "$tmp/out")" -eq 5 ] || fail "print(3) should elide with ... each batch"
[ "$(wc -l < "$tmp/m.jsonl")" -eq 5 ] || fail "metrics should have 5 lines"
grep -q '"records_in":1000' "$tmp/m.jsonl" || fail "metrics lack records_in"
grep -q '"processing_ms":' "$tmp/m.jsonl" || fail "metrics lack processing_ms"
[ ! -s "$tmp/err" ] || fail "a clean run writes nothing to stderr when it is not a terminal: $(cat "$tmp/err")"

# --batches N runs exactly N batch times, empty ones after the input ends
"$spate" wordcount "$tmp/w.txt" --batch-lines 4000 --batches 4 > "$tmp/out4" 2>&1 || fail "--batches"
[ "$(grep -c '^Time: ' "$tmp/out4")" -eq 4 ] || fail "--batches 4 should print 4 headers"

# bad input: a missing file, an unknown device, an unknown option
"$spate" wordcount "$tmp/missing.txt" > /dev/null 2> "$tmp/e1"; rc=$?
[ $rc -ne 0 ] || fail "missing file should fail"
grep -q "missing.txt" "$tmp/e1" || fail "missing-file error does not name the file: $(cat "$tmp/e1")"
[ "$(wc -l < "$tmp/e1")" -eq 1 ] || fail "error should be one line: $(cat "$tmp/e1")"
"$spate" wordcount "$tmp/w.txt" --device no-such-device > /dev/null 2> "$tmp/e2"
[ $? -ne 0 ] || fail "unknown device should fail"
grep -q "no-such-device" "$tmp/e2" || fail "unknown-device error does not name it"
"$spate" wordcount --bogus > /dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option should exit 2"

# SIGINT: the current batch finishes, sinks flush, exit 0 (the writer's SIGPIPE is not ours)
set +o pipefail
( for i in $(seq 1 40); do echo "a b c"; sleep 0.05; done ) \
  | "$spate" wordcount - --batch 200 > "$tmp/live" 2> "$tmp/live.err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid; rc=$?
[ $rc -eq 0 ] || fail "SIGINT should exit 0, got $rc: $(cat "$tmp/live.err")"
grep -q '^Time: ' "$tmp/live" || fail "no batch printed before SIGINT"
echo "ok"
