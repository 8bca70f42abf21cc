#!/usr/bin/env bash
# Job scripts (spate run / explain): every tests/golden/NAME.spate runs on its queue files and
# its stdout must equal NAME.out; NAME.err, when present, is the expected stderr (an error
# with file:line:col, the line and a caret). err_* scripts fail: 1 for runtime errors
# (err_runtime, err_parse), 2 for script errors. skip.spate runs with --on-error skip and its
# rejects must equal skip.rejects.
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
gold=$src/tests/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

n=0
for job in "$gold"/*.spate; do
  name=$(basename "$job" .spate)
  want=0
  case $name in
    err_runtime|err_parse) want=1 ;;
    err_*) want=2 ;;
  esac
  extra=()
  [ "$name" = skip ] && extra=(--on-error skip --rejects "$tmp/rejects")
  # Messages name the script as given on the command line: run from the golden directory.
  (cd "$gold" && "$spate" run "$name.spate" "${extra[@]}") > "$tmp/out" 2> "$tmp/err"
  rc=$?
  [ $rc -eq $want ] || fail "$name: exit $rc, expected $want: $(head -5 "$tmp/err")"
  diff -u "$gold/$name.out" "$tmp/out" > "$tmp/diff" || fail "$name: stdout differs: $(head -40 "$tmp/diff")"
  if [ -f "$gold/$name.err" ]; then
    diff -u "$gold/$name.err" "$tmp/err" > "$tmp/diff" || fail "$name: stderr differs: $(cat "$tmp/diff")"
  elif [ $want -eq 0 ]; then
    [ ! -s "$tmp/err" ] || fail "$name: unexpected stderr: $(head -5 "$tmp/err")"
  fi
  if [ "$name" = skip ]; then
    diff -u "$gold/skip.rejects" "$tmp/rejects" > "$tmp/diff" || fail "skip: rejects differ: $(cat "$tmp/diff")"
  fi
  n=$((n + 1))
done
[ $n -ge 10 ] || fail "only $n golden scripts found"

# -e TEXT runs inline text; its messages are named -e
"$spate" run -e 'queueStream("'"$gold"'/kv.jsonl").count().print()' --batches 1 > "$tmp/e" 2>&1 \
  || fail "run -e: $(cat "$tmp/e")"
grep -qx 3 "$tmp/e" || fail "run -e should count 3: $(cat "$tmp/e")"
"$spate" run -e 'val x = nope' > /dev/null 2> "$tmp/e2"; rc=$?
[ $rc -eq 2 ] || fail "run -e with an unknown name should exit 2, got $rc"
grep -q '^-e:1:9: unknown name nope$' "$tmp/e2" || fail "run -e error: $(cat "$tmp/e2")"

# err_e TEXT MESSAGE: run -e TEXT exits 2 and its first line of stderr is "-e:MESSAGE"
err_e() {
  (cd "$gold" && "$spate" run -e "$1" --batches 1) > /dev/null 2> "$tmp/ee"; local rc=$?
  [ $rc -eq 2 ] || fail "run -e '$1': exit $rc, expected 2: $(head -3 "$tmp/ee")"
  [ "$(head -1 "$tmp/ee")" = "-e:$2" ] || fail "run -e '$1': got '$(head -1 "$tmp/ee")', expected '-e:$2'"
}
# literals out of range for their type, at the literal (Scala's rules: no L is an Int)
err_e 'val x = 2147483648' '1:9: integer literal out of range for Int: 2147483648'
err_e 'val x = -2147483649' '1:10: integer literal out of range for Int: 2147483649'
err_e 'val x = -(2147483648)' '1:11: integer literal out of range for Int: 2147483648'
err_e 'val x = -2147483648.toLong' '1:10: integer literal out of range for Int: 2147483648'
err_e 'val x = 9223372036854775808L' '1:9: integer literal out of range for Long: 9223372036854775808'
err_e 'val x = 1e999' '1:9: floating-point literal out of range for Double: 1e999'
err_e 'val x = 1e-999' '1:9: floating-point literal too small for Double: 1e-999'
err_e 'val x = 1e39f' '1:9: floating-point literal out of range for Float: 1e39'
err_e 'queueStream("kv.jsonl").window(9999999999999999s).print()' \
  '1:32: duration too large: 9999999999999999s (at most 9223372036854775807 ms)'
err_e 'queueStream("kv.jsonl").window(Seconds(9223372036854776L)).print()' \
  '1:40: duration too large: Seconds(9223372036854776)'
err_e 'queueStream("kv.jsonl").print(3000000000L)' '1:31: print takes n from 0 to 2147483647, got 3000000000'
err_e 'socketTextStream("localhost", 70000).print()' '1:31: a port lies in [0, 65535], got 70000'
# the longest duration is a valid literal: the engine sees it exactly
err_e 'queueStream("kv.jsonl").window(9223372036854775807ms).print()' \
  "1:25: window: the window duration (9223372036854775807 ms) and the slide duration (1000 ms) must be positive multiples of the parent stream's slide duration (1000 ms)"

# Nesting (SP_EXPR_MAX_DEPTH = 256): deeper is an error at the place, never a crash; a chain
# of binary operators is one level however long; at the limit every construct runs within a
# 2 MiB stack (a quarter of the usual 8 MiB; executor threads get the same), also under ASan.
rep() { local i; for ((i = 0; i < $2; i++)); do printf '%s' "$1"; done; }
cp "$gold/kv.jsonl" "$tmp/" # the scripts below live in $tmp
deep_err() { # NAME TEXT: exits 2 with "expression too deeply nested (limit 256)"
  printf '%s\n' "$2" > "$tmp/deep.spate"
  "$spate" run "$tmp/deep.spate" --batches 1 > /dev/null 2> "$tmp/de"; local rc=$?
  [ $rc -eq 2 ] || fail "$1: exit $rc, expected 2: $(head -c 300 "$tmp/de")"
  head -1 "$tmp/de" | grep -q ': expression too deeply nested (limit 256)$' \
    || fail "$1: $(head -c 300 "$tmp/de")"
}
deep_err "20000 brackets" "val x = $(rep '(' 20000)1$(rep ')' 20000)"
deep_err "20000 prefix operators" "val x = $(rep '!' 20000)true"
deep_err "20000 calls" "queueStream(\"kv.jsonl\").map(p => p._2$(rep .toLong 20000)).print()"
deep_err "20000 else ifs" "queueStream(\"kv.jsonl\").map(p => $(rep 'if (p._2 == 1) 1 else ' 20000)0).print()"
deep_err "20000 stream methods" "queueStream(\"kv.jsonl\")$(rep '.filter(p => true)' 20000).print()"
# 10000 terms through a val and a lambda on the host (the string test keeps the stage there)
printf 'val n = %s\nval kv = queueStream("kv.jsonl")\nkv.map(p => if ("x".isEmpty) p else p).map(p => (p._1, %s + n)).print()\n' \
  "1$(rep ' + 1' 9999)" "p._2$(rep ' + p._2' 9999)" > "$tmp/chain.spate"
"$spate" run "$tmp/chain.spate" > "$tmp/chain.out" 2>&1 || fail "a 10000-term chain: $(head -c 300 "$tmp/chain.out")"
grep -qx '(c,-30000)' "$tmp/chain.out" || fail "a 10000-term chain: $(head -c 300 "$tmp/chain.out")"
at_limit() { # NAME TEXT: runs (exit 0) in a 2 MiB stack; kv's lambdas on the host
  printf 'val kv = queueStream("kv.jsonl").map(p => if ("x".isEmpty) p else p)\n%s\n' "$2" > "$tmp/lim.spate"
  (ulimit -s 2048 && "$spate" run "$tmp/lim.spate" --batches 2) > /dev/null 2> "$tmp/le" \
    || fail "$1 at the limit: $(head -c 300 "$tmp/le")"
}
at_limit "brackets" "kv.map(p => $(rep '(p._2 + ' 252)1$(rep ')' 252)).print()"
at_limit "calls" "kv.map(p => p._2$(rep .toLong 253)).print()"
at_limit "else ifs" "kv.map(p => $(rep 'if (p._2 == 1) 1 else ' 252)0).print()"
at_limit "prefix operators" "kv.map(p => $(rep '-' 252)p._2).print()"
at_limit "stream methods" "kv$(rep '.filter(p => true)' 254).print()"
at_limit "stream arguments" "kv$(rep '.union(kv' 253)$(rep ')' 253).count().print()"

# explain: the script's own view, then the engine's plan with stages and generated source
(cd "$gold" && "$spate" explain lambdas.spate) > "$tmp/x" 2>&1 || fail "explain: $(cat "$tmp/x")"
grep -q "line 3: map -> (str,i64,bool,i64)" "$tmp/x" || fail "explain lacks the script view: $(head "$tmp/x")"
grep -q "__kernel" "$tmp/x" || fail "explain lacks the generated OpenCL source"
grep -q "device" "$tmp/x" || fail "explain should say where stages run"

# usage errors
"$spate" run > /dev/null 2>&1; [ $? -eq 2 ] || fail "run without a job should exit 2"
"$spate" run "$tmp/missing.spate" > /dev/null 2>&1; [ $? -eq 2 ] || fail "a missing job should exit 2"
"$spate" run x.spate --on-error maybe > /dev/null 2>&1; [ $? -eq 2 ] || fail "bad --on-error should exit 2"
echo "ok ($n golden scripts)"
