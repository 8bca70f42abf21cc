#!/usr/bin/env bash
# Hostile input at run time: a gap of months in the timestamps (SIGTERM still stops the run
# between two batches).
set -uo pipefail
spate=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ms() { date +%s%3N; }
# logline DATE PATH: one combined-format line at DATE (dd/Mon/yyyy:hh:mm:ss, UTC)
# watchdog PID: SIGKILL PID after 30 s (a hang fails the test instead of stalling ctest);
# unwatch ends the watchdog and its sleep.
watchdog() {
  ( trap 'kill $s 2> /dev/null; exit 0' TERM; sleep 30 & s=$!; wait $s; kill -KILL "$1" ) \
    > /dev/null 2>&1 &
  dog=$!
}
unwatch() { kill "$dog" 2> /dev/null; wait "$dog" 2> /dev/null; }
logline() { printf '10.0.0.1 - - [%s +0000] "GET %s HTTP/1.1" 200 1 "-" "t"\n' "$1" "$2"; }

# SIGTERM while a six-month gap is emitted as one-second empty batches (15 million of them):
# the run stops between two batches, flushes print's output and exits 0 within a second.
{ logline 10/Mar/2024:08:00:02 /a; logline 10/Sep/2024:08:00:02 /b; } > "$tmp/gap.log"
"$spate" run -e 'batch 1s eventTime(time)
textFile(arg("log")).parse("combined").count().print()' --arg "log=$tmp/gap.log" \
  > "$tmp/gap.out" 2> "$tmp/gap.err" &
pid=$!
watchdog $pid
for _ in $(seq 1 200); do [ -s "$tmp/gap.out" ] && break; sleep 0.05; done
[ -s "$tmp/gap.out" ] || fail "no batch printed: $(head -5 "$tmp/gap.err")"
sleep 0.3
t0=$(ms)
kill -TERM $pid
wait $pid; rc=$?
t1=$(ms)
unwatch
[ $rc -eq 0 ] || fail "SIGTERM during empty batches should exit 0, got $rc: $(head -5 "$tmp/gap.err")"
[ $((t1 - t0)) -lt 1000 ] || fail "SIGTERM took $((t1 - t0)) ms to stop the run"
head -4 "$tmp/gap.out" | grep -qx 1 || fail "the first batch should count 1: $(head -5 "$tmp/gap.out")"
[ "$(tail -c 2 "$tmp/gap.out" | od -An -c | tr -d ' ')" = '\n\n' ] \
  || fail "print's output does not end with a whole batch: $(tail -3 "$tmp/gap.out")"
n=$(grep -c '^Time: ' "$tmp/gap.out")
[ "$n" -gt 1 ] && [ "$n" -lt 15000000 ] || fail "expected some empty batches before the stop, got $n"

echo "ok"
