#!/usr/bin/env bash
# Spate against independent computations on the real logs in ../shared/data (skipped, 77,
# when absent): per status, per path, per hour (UTC) and unique hosts, from parse("combined")
# (common lines parse as combined with empty referer and agent), against an awk program
# written here (its own field splitting and date arithmetic) and against GoAccess's JSON
# (skipped when goaccess is not installed). Where GoAccess counts something else the check
# is of what it does count; the differences are explained in host/io/PARSING.md.
set -uo pipefail
spate=$1
src=${SPATE_SOURCE_DIR:?}
data=$src/../shared/data
[ -f "$data/nasa/nasa.log" ] || { echo "skip: no $data"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# awk: status, path, UTC hour and host of every line with a request and a numeric status.
# $2 (split at '"') is the request; the status is the first word after it.
cat > "$tmp/fields.awk" <<'AWK'
function days(y, m, d,    era, yoe, doy, doe) {   # days from 1970-01-01 (civil calendar)
  y -= (m <= 2); era = int((y >= 0 ? y : y - 399) / 400); yoe = y - era * 400
  doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
  return era * 146097 + doe - 719468
}
BEGIN { FS = "\""; split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mn, " ")
        for (i = 1; i <= 12; i++) mon[mn[i]] = i }
NF >= 3 {
  split($3, a, " "); if (a[1] !~ /^[0-9]+$/) next
  n = split($2, w, " "); path = ""
  last = (n > 1 && w[n] ~ /^HTTP\//) ? n - 1 : n
  for (i = 2; i <= last; i++) path = path (i > 2 ? " " : "") w[i]
  split($1, h, " "); host = h[1]
  t = substr($1, index($1, "[") + 1); split(t, p, /[\/: \]]/)
  z = p[7]; off = (substr(z, 2, 2) * 60 + substr(z, 4, 2)) * 60; if (substr(z, 1, 1) == "-") off = -off
  s = days(p[3], mon[p[2]], p[1] + 0) * 86400 + p[4] * 3600 + p[5] * 60 + p[6] - off
  print a[1] "\t" path "\t" int(s / 3600) "\t" host "\t" (last < n ? w[n] : "")
}
AWK

# spate: one job per question, every element printed; "(k,n)" -> "k<TAB>n"
count() {  # FILE EXPR
  "$spate" run -e "val log = textFile(\"$1\").parse(\"combined\")
log.map(r => ($2, 1L)).reduceByKey((a, b) => a + b).print(100000000)" 2> "$tmp/err" \
    | grep -v -e '^---' -e '^Time:' -e '^$' | sed -E 's/^\((.*),([0-9]+)\)$/\1\t\2/' | sort
  [ ! -s "$tmp/err" ] || fail "spate: $(head -3 "$tmp/err")"
}

check() {  # NAME FILE GOACCESS_FORMAT
  local name=$1 f=$2 fmt=$3
  awk -f "$tmp/fields.awk" "$f" > "$tmp/aw"
  local lines; lines=$(wc -l < "$tmp/aw")
  [ "$lines" -gt 1000 ] || fail "$name: awk found only $lines requests"
  for q in 1:status 2:path 3:hour; do
    local col=${q%%:*} what=${q#*:} expr
    case $what in
      status) expr="r.status" ;; path) expr="r.path" ;; hour) expr="r.time / 3600000" ;;
    esac
    count "$f" "$expr" > "$tmp/sp_$what"
    cut -f"$col" "$tmp/aw" | sort | uniq -c | awk '{ c = $1; sub(/^ *[0-9]+ /, ""); print $0 "\t" c }' \
      | sort > "$tmp/aw_$what"
    diff "$tmp/aw_$what" "$tmp/sp_$what" > "$tmp/d" || fail "$name: per $what differs from awk: $(head -10 "$tmp/d")"
  done
  # unique hosts: exact (countByValue().count()) and HyperLogLog within 3 rsd
  local want; want=$(cut -f4 "$tmp/aw" | sort -u | wc -l)
  "$spate" run -e "val h = textFile(\"$f\").parse(\"combined\").map(r => r.host)
h.countByValue().count().print()
h.countApproxDistinct(0.01).print()" 2> "$tmp/err" | grep -E '^[0-9]+$' > "$tmp/u"
  [ "$(sed -n 1p "$tmp/u")" = "$want" ] || fail "$name: $(sed -n 1p "$tmp/u") unique hosts, awk $want"
  awk -v w="$want" -v g="$(sed -n 2p "$tmp/u")" 'BEGIN { e = (g - w) / w; exit !(e < 0.03 && e > -0.03) }' \
    || fail "$name: countApproxDistinct $(sed -n 2p "$tmp/u") vs $want"
  echo "$name: $lines requests, $want hosts: status, path, hour and hosts agree with awk"

  command -v goaccess > /dev/null || { echo "$name: goaccess not installed, GoAccess comparison skipped"; return; }
  goaccess "$f" --log-format="$fmt" --no-ip-validation --no-global-config --max-items=1000000 -o "$tmp/g.json" \
    > /dev/null 2> "$tmp/gerr" || fail "$name: goaccess failed: $(head -3 "$tmp/gerr")"
  python3 - "$tmp" "$name" "$lines" <<'PY' || fail "$name: GoAccess comparison"
import collections, functools, json, sys, urllib.parse
# bytes as they are: logs and GoAccess output need not be UTF-8
open = functools.partial(open, encoding="latin-1")
tmp, name, lines = sys.argv[1], sys.argv[2], int(sys.argv[3])
g = json.load(open(tmp + "/g.json"))
def spate(what):
    d = {}
    for l in open(f"{tmp}/sp_{what}"):
        k, n = l.rstrip("\n").rsplit("\t", 1)
        d[k] = int(n)
    return d
bad = []
# valid requests: GoAccess's valid lines are the lines Spate parses
if g["general"]["valid_requests"] != lines:
    bad.append(f"valid requests {g['general']['valid_requests']} vs {lines}")
# status codes: items under each class are "CODE - text"
gs = {}
for cls in g["status_codes"]["data"]:
    for it in cls["items"]:
        gs[it["data"].split(" ")[0]] = it["hits"]["count"]
if gs != spate("status"):
    bad.append(f"status {sorted(gs.items())} vs {sorted(spate('status').items())}")
# paths: GoAccess splits requests, static files and 404s into three panels, keyed by
# (method, protocol, path): their sum per path is the count per path
gp = collections.Counter()
for panel in ("requests", "static_requests", "not_found"):
    for it in g[panel]["data"]:
        gp[it["data"]] += it["hits"]["count"]
# GoAccess files a request whose protocol is not a known HTTP version (HTTP/0.9's "GET /a",
# NASA's "HTTP/V1.0") under "-"; Spate keeps its path (PARSING.md). Expected GoAccess counts
# are Spate's (equal to awk's, checked above) with those requests moved to "-".
sp = spate("path")
moved = collections.Counter()
for l in open(tmp + "/aw"):
    f = l.rstrip("\n").split("\t")
    if f[4] not in ("HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/2.0", "HTTP/3"):
        moved[f[1]] += 1
want = collections.Counter(sp)
for k, n in moved.items():
    want[k] -= n
    want["-"] += n
# GoAccess also percent-decodes paths and trims the blanks that leaves at the ends; Spate keeps
# the path as logged (so "%3A" and ":" are two paths for Spate and awk, one for GoAccess)
dec = collections.Counter()
for k, n in want.items():
    dec[urllib.parse.unquote_to_bytes(k.encode("latin-1")).decode("latin-1").strip()] += n
want = {k: n for k, n in dec.items() if n}
diff = {k: (gp.get(k), want.get(k)) for k in set(gp) | set(want) if gp.get(k) != want.get(k)}
if diff:
    bad.append(f"{len(diff)} paths differ (GoAccess, expected), e.g. {sorted(diff.items())[:5]}")
# hours: GoAccess's visit_time is hits per hour of the day in the log's own local time; the
# test's logs have one zone each, so Spate's UTC hours shifted by it and folded onto 0..23
off = int(open(tmp + "/zone").read())
gh = {int(it["data"]): it["hits"]["count"] for it in g["visit_time"]["data"]}
sh = collections.Counter()
for k, n in spate("hour").items():
    sh[(int(k) + off) % 24] += n
if gh != dict(sh):
    bad.append(f"hours {sorted(gh.items())} vs {sorted(sh.items())}")
# hosts: GoAccess's hosts panel lists every host once
nh = len(g["hosts"]["data"])
want = len({l.split("\t")[3] for l in open(tmp + "/aw")})  # noqa: E501
if nh != want:
    bad.append(f"{nh} GoAccess hosts vs {want}")
print(f"{name}: GoAccess agrees on {lines} requests, {len(gs)} statuses, {len(sp)} paths, "
      f"{len(gh)} hours of the day, {nh} hosts; its unique visitors (host, day, agent): "
      f"{g['general']['unique_visitors']}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}

echo -4 > "$tmp/zone"
check nasa "$data/nasa/nasa.log" COMMON
echo 0 > "$tmp/zone"
check apache_logs "$data/elastic-examples/apache_logs" COMBINED
echo 1 > "$tmp/zone"
check hackers-access "$data/logparser/hackers-access.log" COMBINED
echo ok
