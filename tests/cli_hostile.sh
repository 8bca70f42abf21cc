#!/usr/bin/env bash
# Hostile input at run time: a gap of months in the timestamps (SIGTERM still stops the run
# between two batches, and while a batch waits for a silent stdin), wild timestamps (rejected with file:line beyond the event-time horizon),
# lines without an end (socket, stdin, files: rejected past --line-max, the rest flows on), and
# the rejects file of a clean run.
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

# SIGTERM while stdin is silent and a batch waits for its --batch-lines: the batch is cut
# short, printed, and the run exits 0 within a second.
mkfifo "$tmp/fifo"
( for i in $(seq 1 10); do echo "l$i"; done; exec sleep 30 ) > "$tmp/fifo" &
writer=$!
"$spate" run -e 'stdin().count().print()' --batch 100 --batch-lines 10 < "$tmp/fifo" > "$tmp/in0.out" \
  2> "$tmp/in0.err" &
pid=$!
watchdog $pid
for _ in $(seq 1 200); do grep -qx 10 "$tmp/in0.out" && break; sleep 0.05; done
grep -qx 10 "$tmp/in0.out" || fail "the first 10 lines were not counted: $(head -5 "$tmp/in0.err")"
sleep 0.5 # the next batch is waiting for its lines by now
t0=$(ms)
kill -TERM $pid
wait $pid; rc=$?
t1=$(ms)
unwatch
kill $writer 2> /dev/null; wait $writer 2> /dev/null
[ $rc -eq 0 ] || fail "SIGTERM on a silent stdin should exit 0, got $rc: $(head -5 "$tmp/in0.err")"
[ $((t1 - t0)) -lt 1000 ] || fail "SIGTERM on a silent stdin took $((t1 - t0)) ms"
[ "$(grep -c '^Time: ' "$tmp/in0.out")" -eq 2 ] && [ "$(tail -2 "$tmp/in0.out" | head -1)" = 0 ] \
  || fail "the cut-short batch should be printed: $(cat "$tmp/in0.out")"

# A record dated 9999 among records of 2024 is beyond the default horizon (8760h): rejected
# with its file and line, and the job emits the three minutes of 2024 only. Rejects found
# after a line that does not parse still name their own line (6 here).
{
  logline 10/Mar/2024:08:00:02 /a
  echo "garbage"
  logline 10/Mar/9999:08:00:02 /y9999
  logline 10/Mar/2024:08:02:10 /b
  echo "more garbage"
  logline 10/Mar/2024:08:00:30 /late
} > "$tmp/far.log"
job='batch 1m eventTime(time)
textFile(arg("log")).parse("combined").count().print()'
"$spate" run -e "$job" --arg "log=$tmp/far.log" --batch-lines 2 --rejects "$tmp/far.rej" \
  > "$tmp/far.out" 2> "$tmp/far.err" &
pid=$!
watchdog $pid
wait $pid; rc=$?
unwatch
[ $rc -eq 0 ] || fail "the year-9999 job exited $rc: $(head -5 "$tmp/far.err")"
[ "$(grep -c '^Time: ' "$tmp/far.out")" -eq 3 ] || fail "expected 3 batches: $(head -20 "$tmp/far.out")"
[ "$(wc -l < "$tmp/far.rej")" -eq 4 ] || fail "expected 4 rejects: $(cat "$tmp/far.rej")"
sed -n 1p "$tmp/far.rej" | grep -qF "$tmp/far.log:2: parse(combined): " || fail "line 2: $(cat "$tmp/far.rej")"
sed -n 2p "$tmp/far.rej" | grep -qF "$tmp/far.log:3: eventTime: timestamp more than 8760h from \
the watermark (the event-time horizon): (10.0.0.1,-,-,253376668802000,GET,/y9999," \
  || fail "line 3 should be beyond the horizon: $(cat "$tmp/far.rej")"
sed -n 3p "$tmp/far.rej" | grep -qF "$tmp/far.log:5: parse(combined): " || fail "line 5: $(cat "$tmp/far.rej")"
sed -n 4p "$tmp/far.rej" | grep -qF "$tmp/far.log:6: eventTime: late record: its batch was already \
emitted: (10.0.0.1,-,-,1710057630000,GET,/late," || fail "line 6 should be late: $(cat "$tmp/far.rej")"

# The horizon in a script (horizon 1h) and on the command line (--horizon, which wins).
{ logline 10/Mar/2024:08:00:02 /a; logline 10/Mar/2024:10:00:03 /b; } > "$tmp/h.log"
job='batch 1m eventTime(time)
horizon 1h
textFile(arg("log")).parse("combined").count().print()'
"$spate" run -e "$job" --arg "log=$tmp/h.log" --rejects "$tmp/h.rej" > "$tmp/h.out" 2> "$tmp/h.err" \
  || fail "horizon 1h: $(head -5 "$tmp/h.err")"
[ "$(grep -c '^Time: ' "$tmp/h.out")" -eq 1 ] || fail "horizon 1h: expected 1 batch"
grep -qF "$tmp/h.log:2: eventTime: timestamp more than 1h from the watermark" "$tmp/h.rej" \
  || fail "horizon 1h: the record 2 h later should be rejected: $(cat "$tmp/h.rej")"
"$spate" run -e "$job" --arg "log=$tmp/h.log" --horizon 3h --rejects "$tmp/h.rej" > "$tmp/h.out" \
  2> "$tmp/h.err" || fail "--horizon 3h: $(head -5 "$tmp/h.err")"
[ "$(grep -c '^Time: ' "$tmp/h.out")" -eq 121 ] || fail "--horizon 3h: expected 121 batches"
# (the same --rejects file: a clean run truncates it, it does not keep the last run's rejects)
[ -f "$tmp/h.rej" ] && [ ! -s "$tmp/h.rej" ] \
  || fail "--horizon 3h: nothing should be rejected: $(cat "$tmp/h.rej")"
"$spate" run -e 'horizon 2m
textFile("x").print()' > /dev/null 2> "$tmp/e"; rc=$?
[ $rc -eq 2 ] && grep -q -- '-e:1:1: horizon needs event time' "$tmp/e" \
  || fail "horizon without event time: exit $rc: $(cat "$tmp/e")"
for bad in 0 5x -1h ""; do
  "$spate" run -e "$job" --horizon "$bad" > /dev/null 2> "$tmp/e"; rc=$?
  [ $rc -eq 2 ] && grep -q -- '--horizon needs a positive duration' "$tmp/e" \
    || fail "--horizon '$bad': exit $rc: $(cat "$tmp/e")"
done

# --rejects FILE is created at the start even when nothing is rejected; one that cannot be
# opened fails the run before the first batch, naming it.
rm -f "$tmp/clean.rej"
"$spate" run -e 'textFile(arg("log")).count().print()' --arg "log=$tmp/h.log" \
  --rejects "$tmp/clean.rej" > /dev/null 2> "$tmp/e" || fail "clean run: $(cat "$tmp/e")"
[ -f "$tmp/clean.rej" ] && [ ! -s "$tmp/clean.rej" ] || fail "a clean run should leave an empty rejects file"
"$spate" run -e 'textFile(arg("log")).count().print()' --arg "log=$tmp/h.log" \
  --rejects "$tmp/nodir/r.txt" > "$tmp/o" 2> "$tmp/e"; rc=$?
[ $rc -eq 1 ] && grep -qF "$tmp/nodir/r.txt: cannot open the rejects file" "$tmp/e" \
  || fail "unopenable rejects file: exit $rc: $(cat "$tmp/e")"
[ ! -s "$tmp/o" ] || fail "no batch should run without its rejects file"

# Lines longer than the cap (default 1 MiB; --line-max) are rejected with their place and first
# bytes, from a socket, stdin and a file alike; the lines after them flow on.
sum_counts() { grep -v -e '^-' -e '^Time: ' -e '^$' "$1" | awk '{ s += $1 } END { print s + 0 }'; }
python3 - "$tmp/port" << 'PY' &
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.settimeout(30)
c, _ = s.accept()
c.sendall(b"GET /a\n" + b"x" * (3 << 20) + b"\nGET /b\n")
c.close()
PY
srv=$!
for _ in $(seq 1 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port")
"$spate" run -e "socketTextStream(\"127.0.0.1\", $port).count().print()" --batch 200 \
  --rejects "$tmp/sock.rej" > "$tmp/sock.out" 2> "$tmp/sock.err" &
pid=$!
watchdog $pid
wait $pid; rc=$?
unwatch
wait $srv
[ $rc -eq 0 ] || fail "socket job exited $rc: $(head -5 "$tmp/sock.err")"
[ "$(sum_counts "$tmp/sock.out")" = 2 ] || fail "the socket job should count 2 lines: $(cat "$tmp/sock.out")"
x64=$(printf 'x%.0s' $(seq 1 64))
[ "$(cat "$tmp/sock.rej")" = "127.0.0.1:$port:2: socketTextStream: line longer than 1048576 bytes \
(dropped): $x64" ] || fail "socket reject: $(cut -c1-200 "$tmp/sock.rej")"

long=$(printf '%0300d' 0)
printf 'a\n%s\nb\n%s' "$long" "$long" | "$spate" run -e 'stdin().count().print()' --line-max 100 \
  --rejects "$tmp/in.rej" > "$tmp/in.out" 2> "$tmp/in.err" || fail "stdin job: $(head -5 "$tmp/in.err")"
[ "$(sum_counts "$tmp/in.out")" = 2 ] || fail "the stdin job should count 2 lines: $(cat "$tmp/in.out")"
[ "$(cut -d: -f1-3 "$tmp/in.rej" | tr '\n' ' ')" = "stdin:2: fdStream stdin:4: fdStream " ] \
  || fail "stdin rejects: $(cat "$tmp/in.rej")"
printf 'a\n%s\nb\n' "$long" > "$tmp/long.txt"
"$spate" run -e 'textFile(arg("f")).count().print()' --arg "f=$tmp/long.txt" --line-max 100 \
  --rejects "$tmp/f.rej" > "$tmp/f.out" 2> "$tmp/f.err" || fail "file job: $(head -5 "$tmp/f.err")"
[ "$(sum_counts "$tmp/f.out")" = 2 ] || fail "the file job should count 2 lines: $(cat "$tmp/f.out")"
grep -qxF "$tmp/long.txt:2: textFile: line longer than 100 bytes (dropped): ${long:0:64}" "$tmp/f.rej" \
  || fail "file reject: $(cat "$tmp/f.rej")"
"$spate" run -e 'stdin().count().print()' --line-max 0 < /dev/null > /dev/null 2> "$tmp/e"
[ $? -eq 2 ] || fail "--line-max 0 should exit 2"

echo "ok"
