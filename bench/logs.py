#!/usr/bin/env python3
"""Log analytics against GoAccess and awk, on the same files in one run.

    bench/logs.py [--quick] [--build DIR] [--out FILE] [--reps N] [--cache DIR]

Inputs (built once, cached in --cache, default bench/results/quick/logs-data/, never
committed):
  nasa-replicated  ../shared/data/nasa/nasa.log (NASA-HTTP, Common) replicated to >= 1 GB
                   (8 MB with --quick): copy k has every timestamp shifted by 2k seconds, and the
                   copies are merged in time order, as if 500 servers' logs were merged; the
                   result covers the original 11 hours with ~15,000 requests a minute.
  generated        data/gen_access_log.py (fixed seed): 6 hours at ~2,000 requests a minute
                   (the demo's data/generated/access.log; 30 minutes with --quick).
Systems, each a process timed by wall clock with /usr/bin/time -v for peak RSS:
  spate-cli  spate run data/jobs/access_report.spate (the flagship job: per-minute and
             10-minute-window requests, 5xx, unique clients, p95 bytes, top paths; printed and
             written as an HTML report)
  goaccess   goaccess FILE --log-format=COMMON|COMBINED writing its HTML report (and JSON, to
             check its count of valid requests)
  gawk, mawk counts per status and per path (one program, printed)
Rows go to --out (default bench/results/logs.json, bench/results/quick/logs.json with --quick)
in the suite's row format (bench/README.md) with peak_rss_bytes, and for spate-cli the wall
time ratios vs_goaccess and vs_mawk. Correctness: gawk and mawk print the same counts; the
sum of Spate's per-minute requests equals awk's number of requests; GoAccess's valid requests
equal it too. Exit status 1 only when a result is wrong or a program fails.
"""
import argparse
import datetime as dt
import heapq
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEYS = ["case", "system", "device", "threads", "records", "bytes", "seconds_min",
        "seconds_median", "records_per_s", "limit_ratio", "correct"]
AWK = r'''BEGIN { FS = "\"" }
NF >= 3 { split($3, a, " "); if (a[1] !~ /^[0-9]+$/) next
  n = split($2, w, " "); last = (n > 1 && w[n] ~ /^HTTP\//) ? n - 1 : n; p = ""
  for (i = 2; i <= last; i++) p = p (i > 2 ? " " : "") w[i]
  st[a[1]]++; pa[p]++; total++ }
END { for (k in st) print "status\t" k "\t" st[k]
      for (k in pa) print "path\t" k "\t" pa[k]
      print "total\t" total }
'''
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def log(msg):
    print(f"logs: {msg}", file=sys.stderr, flush=True)


def replicate(src, out, target_bytes, shift_s=2):
    """Copies of src, copy k shifted by k * shift_s seconds, merged in time order."""
    stamp = f"{os.path.getsize(src)} {target_bytes} {shift_s} v1"
    if os.path.exists(out) and os.path.exists(out + ".params") and \
            open(out + ".params").read() == stamp:
        return
    rx = re.compile(rb"\[(\d\d)/(\w\w\w)/(\d{4}):(\d\d):(\d\d):(\d\d) ([^\]]*)\]")
    base = dt.datetime(1970, 1, 1)
    recs = []
    with open(src, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            m = rx.search(line)
            if not m:
                continue
            d, mon, y, hh, mm, ss, zone = m.groups()
            local = dt.datetime(int(y), MONTHS.index(mon.decode()) + 1, int(d), int(hh),
                                int(mm), int(ss))
            recs.append((int((local - base).total_seconds()), line[:m.start()], zone,
                         line[m.end():]))
    recs.sort(key=lambda r: r[0])
    size = sum(len(r[1]) + len(r[3]) + 30 for r in recs)
    copies = max(1, -(-target_bytes // size))
    cache = {}

    def fmt(t):
        s = cache.get(t)
        if s is None:
            s = (base + dt.timedelta(seconds=t)).strftime("%d/%b/%Y:%H:%M:%S").encode()
            cache[t] = s
        return s

    def copy(k):
        for r in recs:
            yield r[0] + k * shift_s, k, r
    tmp = out + ".tmp"
    with open(tmp, "wb", buffering=1 << 20) as f:
        for t, _, r in heapq.merge(*(copy(k) for k in range(copies))):
            f.write(r[1] + b"[" + fmt(t) + b" " + r[2] + b"]" + r[3] + b"\n")
    os.replace(tmp, out)
    with open(out + ".params", "w") as f:
        f.write(stamp)


def run_timed(cmd, stdout_path, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS bytes)."""
    tv = tempfile.NamedTemporaryFile(prefix="spate-logs-time-", delete=False)
    tv.close()
    with open(stdout_path, "wb") as so:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tv.name] + cmd, stdout=so,
                           stderr=subprocess.PIPE, env=env)
        wall = time.perf_counter() - t0
    rss = 0
    for line in open(tv.name):
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) * 1024
    os.unlink(tv.name)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode()[-400:]}")
    return wall, rss


def awk_counts(path):
    d = {}
    total = 0
    for line in open(path, encoding="latin-1"):
        f = line.rstrip("\n").split("\t")
        if f[0] == "total":
            total = int(f[1])
        else:
            d[(f[0], f[1])] = int(f[2])
    return d, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--cache", default=os.path.join(HERE, "results", "quick", "logs-data"))
    a = ap.parse_args()
    build = a.build or next((os.path.join(ROOT, b) for b in ("build-release", "build")
                             if os.path.exists(os.path.join(ROOT, b, "spate"))), None)
    if not build:
        sys.exit("logs: no spate binary: build first (cmake -S . -B build-release ...)")
    spate = os.path.join(build, "spate")
    out = a.out or os.path.join(HERE, "results", "quick" if a.quick else "", "logs.json")
    reps = a.reps or (1 if a.quick else 3)
    os.makedirs(a.cache, exist_ok=True)
    nasa = os.path.join(ROOT, "..", "shared", "data", "nasa", "nasa.log")
    inputs = []
    if os.path.exists(nasa):
        rep = os.path.join(a.cache, "nasa-quick.log" if a.quick else "nasa-1g.log")
        log(f"building {rep}")
        replicate(nasa, rep, (8 << 20) if a.quick else (1 << 30) + (16 << 20))
        inputs.append(("nasa-replicated", rep, "COMMON"))
    else:
        log(f"no {nasa}: the real-log case is left out")
    gen = os.path.join(ROOT, "data", "generated", "access.log") if not a.quick else \
        os.path.join(a.cache, "access-30m.log")
    minutes = 30 if a.quick else 360
    log(f"generating {gen}")
    subprocess.run([sys.executable, os.path.join(ROOT, "data", "gen_access_log.py"),
                    "--minutes", str(minutes), "--rate", "2000", "--seed", "7", "--out", gen],
                   check=True)
    inputs.append(("generated", gen, "COMBINED"))

    tmp = tempfile.mkdtemp(prefix="spate-logs-")
    job = os.path.join(ROOT, "data", "jobs", "access_report.spate")
    rows, notes, failed = [], [], False
    threads = os.cpu_count() or 1
    for case, path, gfmt in inputs:
        nbytes = os.path.getsize(path)
        # awk first: the reference counts (gawk and mawk must agree)
        res = {}
        ref = None
        for system in ("mawk", "gawk"):
            if not shutil.which(system):
                notes.append(f"{system} not installed: left out")
                continue
            secs, rss = [], 0
            for _ in range(reps):
                w, r = run_timed([system, AWK, path], os.path.join(tmp, system + ".out"))
                secs.append(w)
                rss = max(rss, r)
            counts, total = awk_counts(os.path.join(tmp, system + ".out"))
            # the first awk is the reference: checked only once the second agrees with it
            ok = None if ref is None else (counts, total) == ref
            if ref is None:
                ref = (counts, total)
            res[system] = (secs, rss, ok, total)
        if "mawk" in res and "gawk" in res:
            res["mawk"] = res["mawk"][:2] + (res["gawk"][2],) + res["mawk"][3:]
        total = ref[1] if ref else None
        # spate: the flagship job, printed and written as a report
        cmd = [spate, "run", job, "--arg", f"log={path}", "--arg",
               f"report={os.path.join(tmp, 'access_report.html')}",
               "--rejects", os.path.join(tmp, "rejects.txt")]
        run_timed(cmd, os.path.join(tmp, "spate.out"))  # untimed: kernel builds, page cache
        secs, rss = [], 0
        for _ in range(reps):
            w, r = run_timed(cmd, os.path.join(tmp, "spate.out"))
            secs.append(w)
            rss = max(rss, r)
        got = 0
        with open(os.path.join(tmp, "spate.out"), encoding="latin-1") as f:
            for line in f:
                if line.startswith("(1m,"):
                    got += int(line.split(",")[1])
        ok = None if total is None else got == total  # no reference: not checked
        res["spate-cli"] = (secs, rss, ok, got)
        # goaccess: its HTML report (and JSON for the count of valid requests)
        if shutil.which("goaccess"):
            gcmd = ["goaccess", path, f"--log-format={gfmt}", "--no-ip-validation",
                    "--no-global-config", "-o", os.path.join(tmp, "g.html"),
                    "-o", os.path.join(tmp, "g.json")]
            secs, rss = [], 0
            for _ in range(1 if not a.quick else reps):
                w, r = run_timed(gcmd, os.path.join(tmp, "g.stdout"))
                secs.append(w)
                rss = max(rss, r)
            gv = json.load(open(os.path.join(tmp, "g.json"), encoding="latin-1"))
            valid = gv["general"]["valid_requests"]
            res["goaccess"] = (secs, rss, None if total is None else valid == total, valid)
        else:
            notes.append("goaccess not installed: left out")
        for system, (secs, rss, ok, n) in res.items():
            smin = min(secs)
            r = {"case": f"logs {case}", "system": system, "device": "host",
                 "threads": threads if system in ("spate-cli", "goaccess") else 1,
                 "records": n, "bytes": nbytes, "seconds_min": smin,
                 "seconds_median": statistics.median(secs), "records_per_s": n / smin,
                 "limit_ratio": None, "correct": ok, "peak_rss_bytes": rss,
                 "timed": "process wall time, file in the page cache"}
            if system == "spate-cli":
                r["note"] = "data/jobs/access_report.spate: print + HTML report"
                r["timed"] += "; parse, event-time batches, all outputs"
            elif system == "goaccess":
                r["note"] = "HTML + JSON report"
            else:
                r["note"] = "counts per status and per path"
            rows.append(r)
            if ok is False:
                failed = True
                log(f"FAILED: {case} / {system}: {n} requests, awk {total}")
        sp = res.get("spate-cli")
        for peer in ("goaccess", "mawk", "gawk"):
            if sp and peer in res:
                ratio = min(res[peer][0]) / min(sp[0])
                rows[-len(res) + list(res).index("spate-cli")][f"vs_{peer}"] = ratio
        line = ", ".join(f"{s} {min(v[0]):.2f} s ({v[1] / 2**20:.0f} MiB)"
                         for s, v in res.items())
        log(f"{case} ({nbytes / 2**20:.0f} MiB, {total} requests): {line}")
        notes.append(f"{case}: {line}")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"rows": rows, "notes": notes}, f, indent=1)
    shutil.rmtree(tmp, ignore_errors=True)
    for r in rows:
        print(f"{r['case']:<22} {r['system']:<10} {r['seconds_min']:8.2f} s "
              f"{r['records_per_s'] / 1e3:9.0f} K lines/s {r['peak_rss_bytes'] / 2**20:7.0f} MiB"
              + "".join(f"  {k} {r[k]:.1f}x" for k in r if k.startswith("vs_")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
