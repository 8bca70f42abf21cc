#!/usr/bin/env bash
# kill -9 at random moments, restart from the same checkpoint directory, until a run ends by
# itself: the output trees (saveAsTextFiles directories, CSV, the HTML report) equal one
# uninterrupted run's byte for byte, and so do the printed batches once each batch time's last
# printing is kept (stdout cannot be taken back: a batch cut short by the kill prints again).
# Jobs: window + inverse window + updateStateByKey on a queue stream (manual clock), and the
# flagship access-log job (event time, 10-minute window, HyperLogLog, DDSketch, top-k, report).
# Kills per job: $SPATE_CHAOS_KILLS (default 30).
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
kills=${SPATE_CHAOS_KILLS:-30}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "${SPATE_CHAOS_KEEP:-}" ] && trap - EXIT && echo "kept $tmp" >&2
fail() { echo "FAIL: $*" >&2; exit 1; }

# The printed batches: for each "Time: T ms" block, the last one printed.
blocks() {
  awk '/^Time: [0-9]+ ms$/ { t = $2; blk[t] = ""; if (!(t in seen)) { order[++n] = t; seen[t] = 1 }; next }
       /^-------------------------------------------$/ { next }
       t != "" { blk[t] = blk[t] $0 "\n" }
       END { for (i = 1; i <= n; i++) printf "== %s\n%s", order[i], blk[order[i]] }' "$@"
}

# same_tree REF GOT: equal files, hidden temporaries of killed runs aside
same_tree() {
  diff -r -x '.*' "$1" "$2" > "$tmp/diff" || fail "$3: output trees differ: $(head -20 "$tmp/diff")"
}

# run_until_done NAME CMD...: kills the command at random moments until it ends by itself
run_until_done() {
  local name=$1; shift
  local i=0 rc
  while :; do
    i=$((i + 1))
    "$@" > "$tmp/$name.out.$i" 2> "$tmp/$name.err.$i" &
    local pid=$!
    if [ "$i" -le "$kills" ]; then
      # 20..700 ms into the run (start-up included), so kills fall in the replay, in new
      # batches, in sync points and in outputs alike
      sleep "0.$(printf '%03d' $((RANDOM % 680 + 20)))"
      kill -9 "$pid" 2> /dev/null
    fi
    wait "$pid" 2> /dev/null; rc=$?
    if [ "$rc" -eq 0 ]; then break; fi
    [ "$rc" -eq 137 ] || fail "$name run $i exited $rc: $(tail -3 "$tmp/$name.err.$i")"
  done
  echo "$name: $i runs, $((i - 1)) killed" >&2
}

# ---- job 1: queue stream, windows and state
python3 - "$tmp/q.jsonl" <<'PY'
import random, sys
random.seed(11)
with open(sys.argv[1], "w") as f:
    for b in range(3000):
        n = random.choice([0, 0, 1, 3, 5, 9])
        f.write("[" + ",".join('["k%d",%d]' % (random.randrange(12), random.randrange(1, 9))
                               for _ in range(n)) + "]\n")
PY
cat > "$tmp/job1.spate" <<'SP'
batch 1s
val s = queueStream(arg("q"))
val w = s.reduceByKeyAndWindow((a, b) => a + b, (a, b) => a - b, 5s, 1s)
w.saveAsTextFiles(arg("w"), "txt")
s.reduceByKeyAndWindow((a, b) => a + b, 4s, 2s).print(100)
val st = s.updateStateByKey((vs, st) => if (vs.sum + st.getOrElse(0) > 40) None else Some(vs.sum + st.getOrElse(0)))
st.print(100)
st.map(p => p._2).reduce((a, b) => a + b).report(arg("r"), "state total")
SP
mkdir -p "$tmp/ref1" "$tmp/got1"
"$spate" run "$tmp/job1.spate" --arg "q=$tmp/q.jsonl" --arg "w=$tmp/ref1/w" --arg "r=$tmp/ref1/r.html" > "$tmp/ref1.out" 2> "$tmp/err" \
  || fail "job 1 reference: $(cat "$tmp/err")"
run_until_done job1 "$spate" run "$tmp/job1.spate" --arg "q=$tmp/q.jsonl" --arg "w=$tmp/got1/w" --arg "r=$tmp/got1/r.html" \
  --checkpoint "$tmp/ck1"
same_tree "$tmp/ref1" "$tmp/got1" "job 1"
blocks "$tmp/ref1.out" > "$tmp/ref1.blocks"
blocks $(ls -v "$tmp"/job1.out.*) > "$tmp/got1.blocks"
cmp -s "$tmp/ref1.blocks" "$tmp/got1.blocks" || fail "job 1: printed batches differ: $(diff "$tmp/ref1.blocks" "$tmp/got1.blocks" | head)"
# a restart after the end changes nothing
"$spate" run "$tmp/job1.spate" --arg "q=$tmp/q.jsonl" --arg "w=$tmp/got1/w" --arg "r=$tmp/got1/r.html" --checkpoint "$tmp/ck1" \
  > "$tmp/again.out" 2> "$tmp/err" || fail "restart after the end: $(cat "$tmp/err")"
[ ! -s "$tmp/again.out" ] || fail "a restart after the end printed again: $(head -3 "$tmp/again.out")"
same_tree "$tmp/ref1" "$tmp/got1" "job 1 after a restart at the end"

# ---- job 2: the flagship job on a generated log, event time
awk 'BEGIN { srand(3); for (m = 0; m < 180; m++) for (i = 0; i < 600; i++) {
  st = rand() < 0.04 ? 503 : 200
  printf "10.1.%d.%d - - [10/Mar/2024:%02d:%02d:%02d +0000] \"GET /p/%d HTTP/1.1\" %d %d \"-\" \"t\"\n",
    int(rand() * 40), int(rand() * 250), 8 + int(m / 60), m % 60, int(i / 10), int(rand() * 60), st, int(rand() * 9000) } }' \
  > "$tmp/access.log"
job=$src/data/jobs/access_report.spate
mkdir -p "$tmp/ref2" "$tmp/got2"
"$spate" run "$job" --arg "log=$tmp/access.log" --arg "report=$tmp/ref2/report.html" --batch-lines 2000 \
  > "$tmp/ref2.out" 2> "$tmp/err" || fail "job 2 reference: $(cat "$tmp/err")"
run_until_done job2 "$spate" run "$job" --arg "log=$tmp/access.log" --arg "report=$tmp/got2/report.html" \
  --batch-lines 2000 --checkpoint "$tmp/ck2"
# the report names its own file in its title: compare it under the same name
sed "s|$tmp/got2/|$tmp/ref2/|g; s|got2|ref2|g" "$tmp/got2/report.html" > "$tmp/got2.html"
cmp -s "$tmp/ref2/report.html" "$tmp/got2.html" || fail "job 2: the reports differ"
blocks "$tmp/ref2.out" > "$tmp/ref2.blocks"
blocks $(ls -v "$tmp"/job2.out.*) > "$tmp/got2.blocks"
cmp -s "$tmp/ref2.blocks" "$tmp/got2.blocks" || fail "job 2: printed batches differ: $(diff "$tmp/ref2.blocks" "$tmp/got2.blocks" | head)"

# ---- another job against the same directory: one clear error naming both fingerprints
"$spate" run -e 'queueStream("'"$tmp"'/q.jsonl").count().print()' --checkpoint "$tmp/ck1" > /dev/null 2> "$tmp/err"
[ $? -eq 1 ] || fail "another job on a checkpoint should fail"
grep -q 'belongs to another job (fingerprint [0-9a-f]*; this job.s is [0-9a-f]*)' "$tmp/err" \
  || fail "wrong-job message: $(cat "$tmp/err")"
"$spate" checkpoint "$tmp/ck1" > "$tmp/desc" || fail "spate checkpoint failed"
grep -q 'batches committed: 300[0-9]' "$tmp/desc" || fail "spate checkpoint: $(cat "$tmp/desc")"
# ---- the script spellings: checkpoint "DIR", checkpoint("DIR"), Spark's ssc.checkpoint("DIR")
for form in 'checkpoint "D"' 'checkpoint("D")' 'ssc.checkpoint("D")'; do
  rm -rf "$tmp/cks"
  text="batch 1s
${form//D/$tmp/cks}
queueStream(\"$tmp/q.jsonl\").count().print()"
  "$spate" run -e "$text" --batches 3 > "$tmp/s.out" 2> "$tmp/err" || fail "$form: $(cat "$tmp/err")"
  [ -f "$tmp/cks/meta" ] || fail "$form made no checkpoint"
  "$spate" run -e "$text" --batches 5 > "$tmp/s2.out" 2> "$tmp/err" || fail "$form again: $(cat "$tmp/err")"
  grep -q 'resuming after batch 3' "$tmp/err" || fail "$form: the second run did not resume: $(cat "$tmp/err")"
  [ "$(grep -c '^Time:' "$tmp/s2.out")" -eq 2 ] || fail "$form: the second run should print batches 4 and 5"
done
"$spate" run -e 'checkpoint 5' > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'checkpoint needs a directory' "$tmp/err" || fail "checkpoint without a directory: $(cat "$tmp/err")"
echo ok
