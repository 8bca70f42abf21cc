#!/usr/bin/env bash
# The report page of a small job (host/examples/report_demo over a generated access-log-like
# queue file, one-minute event-time batches) renders in headless Chromium: the screenshot is a
# real picture (a PNG of the asked size, large enough to hold charts and tables, not one
# colour). Skipped (77) when chromium is not installed.
set -euo pipefail
spate=$1
bin=$(dirname "$spate")
command -v chromium >/dev/null 2>&1 || { echo "skip: chromium is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 60 one-minute batches from 2024-05-01 12:00 UTC: skewed paths, a burst with errors at 12:30.
python3 - "$tmp/log.jsonl" <<'EOF'
import json, random, sys
random.seed(7)
start = 1714564800000
paths = ["/", "/index.html", "/api/items", "/api/cart", "/static/app.js", "/static/style.css",
         "/login", "/search?q=shoes&page=2", "/img/logo.png", "/checkout"]
paths += ["/item/%d" % i for i in range(40)]
weights = [1.0 / (i + 1) ** 1.1 for i in range(len(paths))]
with open(sys.argv[1], "w") as out:
    for m in range(60):
        burst = 30 <= m < 34
        recs = []
        for _ in range(300 + 10 * (m % 15) + (500 if burst else 0)):
            r = random.random()
            err = 0.08 if burst else 0.01
            st = 500 if r < err else 404 if r < err + 0.04 else 304 if r < err + 0.14 else 200
            recs.append([start + m * 60000 + random.randrange(60000),
                         random.choices(paths, weights)[0], st,
                         0 if st == 304 else random.randrange(200, 60000)])
        recs.sort()
        out.write(json.dumps(recs, separators=(",", ":")) + "\n")
EOF

"$bin/report_demo" "$tmp/report.html" "$tmp/log.jsonl"
html=$tmp/report.html
for want in "<svg" "<polyline" "Requests per batch" "Bytes served per path" \
            "Requests per status" "Paths of server errors" "2024-05-01 13:00:00"; do
  grep -qF "$want" "$html" || { echo "report lacks: $want" >&2; exit 1; }
done
if grep -qE 'https?://|<script' "$html"; then
  echo "report refers to something outside itself" >&2
  exit 1
fi

# A private profile and no network: the page must render from the file alone.
chromium --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir="$tmp/profile" \
  --screenshot="$tmp/out.png" --window-size=1200,1600 "file://$html" >"$tmp/chromium.log" 2>&1 \
  || { echo "chromium failed:" >&2; tail -20 "$tmp/chromium.log" >&2; exit 1; }
python3 - "$tmp/out.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
assert len(data) > 10 * 1024, "screenshot too small: %d bytes" % len(data)
# Walk the chunks: size from IHDR, pixels from the IDAT stream.
pos, idat, w = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert (w, h) == (1200, 1600), "screenshot is %dx%d" % (w, h)
raw = zlib.decompress(idat)
# Distinct byte values in the filtered scanlines: a one-colour image has a handful.
distinct = len(set(raw[:: max(1, len(raw) // 200000)]))
assert distinct > 32, "screenshot looks blank (%d distinct bytes)" % distinct
print("ok: %dx%d PNG, %d bytes, %d distinct byte values" % (w, h, len(data), distinct))
EOF
