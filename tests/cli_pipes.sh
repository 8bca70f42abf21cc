#!/usr/bin/env bash
# textFile on a pipe or FIFO: the bytes read to detect compression are not lost (they were:
# the first four bytes of a non-seekable input vanished). Plain text and zstd read whole, with
# the same counts as the regular file; gzip from a pipe is one clear error.
set -uo pipefail
spate=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 3000); do echo "w$((i % 17)) x$((i % 5)) y"; done > "$tmp/in.txt"
printf 'ab' > "$tmp/short.txt"   # shorter than the sniffed four bytes
printf 'a b c a\n' > "$tmp/four.txt"
counts() { grep '^(' | sort; }
want=$("$spate" wordcount "$tmp/in.txt" --print 1000 2>/dev/null | counts)
[ -n "$want" ] || fail "no counts from the regular file"

fifo() { # FILE: spate reads it through a FIFO
  rm -f "$tmp/f"; mkfifo "$tmp/f"
  cat "$1" > "$tmp/f" &
  "$spate" wordcount "$tmp/f" --print 1000 2> "$tmp/err"
  local rc=$?; wait; return $rc
}
got=$(fifo "$tmp/in.txt" | counts) || fail "FIFO: $(cat "$tmp/err")"
[ "$got" = "$want" ] || fail "FIFO counts differ from the file's: $(diff <(echo "$want") <(echo "$got") | head)"
[ "$(fifo "$tmp/short.txt" | counts)" = "(ab,1)" ] || fail "a 2-byte FIFO input lost bytes"
[ "$(fifo "$tmp/four.txt" | counts | tr '\n' ' ')" = "(a,2) (b,1) (c,1) " ] || fail "the first line of a FIFO lost bytes"
if command -v zstd > /dev/null; then
  zstd -q -c "$tmp/in.txt" > "$tmp/in.zst"
  got=$(fifo "$tmp/in.zst" | counts) || fail "zstd FIFO: $(cat "$tmp/err")"
  [ "$got" = "$want" ] || fail "zstd through a FIFO differs from the file"
fi
gzip -c "$tmp/in.txt" > "$tmp/in.gz"
fifo "$tmp/in.gz" > /dev/null; rc=$?
[ $rc -ne 0 ] || fail "gzip through a FIFO should fail clearly"
grep -q 'gzip input from a pipe is not supported' "$tmp/err" || fail "gzip FIFO message: $(cat "$tmp/err")"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "the gzip FIFO error should be one line: $(cat "$tmp/err")"
echo ok
