#!/usr/bin/env python3
"""The benchmark suite behind bench/run: runs every case, checks every result, writes
latest.json (+ a dated copy), results.md and PNG charts. Method: bench/README.md.

Exit status: 0 when every row is correct, 1 when a result is wrong or a program crashed.
Speed never fails a run."""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALL_PARTS = "ops,overheads,jobs,windows,join,logs"
CLUSTER_WINDOW = 10  # cluster monitoring: window length in batches, sliding by one batch
KEYS = ["case", "system", "device", "threads", "records", "bytes", "seconds_min",
        "seconds_median", "records_per_s", "limit_ratio", "correct"]


class Suite:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.build = a.build
        self.rows = []
        self.notes = []
        self.failed = False
        self.nproc = os.cpu_count() or 1
        self.reps = a.reps or (3 if a.quick else 5)
        self.data = os.path.join(ROOT, "data", "generated", "bench")
        self.tmp = tempfile.mkdtemp(prefix="spate-bench-")
        self.bw = {}  # threads -> read bandwidth bytes/s (from ops_bench's stream-read row)
        self.started = time.time()  # merged rows written before this were not checked by this run
        self.device = ""

    # ------------------------------------------------------------------ helpers
    def log(self, msg):
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    def add(self, r):
        for k in KEYS:
            r.setdefault(k, None)
        if r["correct"] is False:
            self.failed = True
            self.log(f"FAILED: {r['case']} / {r['system']} ({r.get('note', 'wrong result')})")
        self.rows.append(r)

    def prog(self, name):
        return os.path.join(self.build, name)

    def timed(self, fn, reps=None):
        """Runs fn() reps times (plus nothing untimed: callers warm up); returns the list of
        seconds and the last return value."""
        secs, out = [], None
        for _ in range(reps or self.reps):
            t0 = time.perf_counter()
            out = fn()
            secs.append(time.perf_counter() - t0)
        return secs, out

    def job_row(self, case, system, threads, records, nbytes, secs, correct, note="",
                timed="", device="host", limit_threads=None):
        smin = min(secs) if secs else None
        bw = self.bw.get(limit_threads or threads) or self.bw.get(1)
        rps = records / smin if smin else None
        r = {"case": case, "system": system, "device": device, "threads": threads,
             "records": records, "bytes": nbytes, "seconds_min": smin,
             "seconds_median": statistics.median(secs) if secs else None,
             "records_per_s": rps,
             "limit_ratio": (nbytes / smin / bw) if smin and bw else None,
             "correct": correct, "timed": timed}
        if note:
            r["note"] = note
        self.add(r)
        return r

    # ------------------------------------------------------------------ operators
    def ops(self):
        args = ["--reps", str(self.reps)] + (["--quick"] if self.quick else [])
        for t in sorted({1, self.nproc}):
            env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(t))
            self.log(f"operators, {t} thread(s)")
            p = subprocess.run([self.prog("ops_bench"), "--threads", str(t)] + args, env=env,
                               capture_output=True, text=True, timeout=1200)
            for line in p.stdout.splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r["case"] == "stream-read":
                    self.bw[t] = r["bytes"] / r["seconds_min"]
                if r["system"] == "spate-opencl":
                    self.device = r["device"]
                self.add(r)
            if p.returncode not in (0, 1):
                self.failed = True
                self.log(f"ops_bench crashed ({p.returncode}): {p.stderr[-2000:]}")
            elif p.returncode == 1 and not any(r["correct"] is False for r in self.rows):
                self.failed = True
                self.log(f"ops_bench failed: {p.stderr[-2000:]}")

    # ------------------------------------------------------------------ engine overheads
    def overheads(self):
        # per-batch cost at batch intervals from 1 ms up: a generator job with one record per
        # batch; the driver's own metrics give processing time and scheduling delay.
        intervals = [1, 10, 100] if self.quick else [1, 10, 100, 1000, 10000]
        smallest_ok = None
        for iv in intervals:
            nb = max(2, min(200, 1000 // iv)) if self.quick else max(2, min(500, 5000 // iv))
            m = os.path.join(self.tmp, f"sched{iv}.jsonl")
            self.log(f"batch overhead at {iv} ms x {nb}")
            p = subprocess.run([self.prog("jobs_bench"), "sched", "--batch", str(iv),
                                "--batches", str(nb), "--per-batch", "1", "--metrics", m],
                               capture_output=True, text=True, timeout=600)
            ok = p.returncode == 0
            proc, delay = [], []
            if ok:
                with open(m) as f:
                    for line in f:
                        j = json.loads(line)
                        proc.append(j["processing_ms"] / 1e3)
                        delay.append(j["scheduling_delay_ms"])
                        # the output checked: each batch took its one record in and out
                        ok = ok and j["records_in"] == 1 and j["records_out"] == 1
                ok = ok and len(proc) == nb
            else:
                self.log(p.stderr[-1000:])
            r = self.job_row(f"batch-overhead {iv} ms", "spate-opencl", self.nproc, nb, 0, proc,
                             ok, timed="driver processing time per batch of 1 record (seconds "
                             "columns); limit_ratio: median (processing + scheduling delay) "
                             "over the interval", device=self.device)
            if ok:
                dmed = statistics.median(delay)
                r["limit_ratio"] = (statistics.median(proc) * 1e3 + dmed) / iv
                r["scheduling_delay_ms_median"] = dmed
                r["scheduling_delay_ms_max"] = max(delay)
                r["records_per_s"] = None
                if smallest_ok is None and dmed < 0.1 * iv:
                    smallest_ok = iv
        self.notes.append(f"Smallest batch interval with median scheduling delay under 10% of "
                          f"the interval: {smallest_ok} ms.")

        # start-up: the spate command on a tiny file, kernel cache off vs warm
        small = os.path.join(self.tmp, "small.txt")
        with open(small, "w") as f:
            f.write("a b c a\n" * 100)
        cache = os.path.join(self.tmp, "kcache")
        pcache = os.path.join(self.tmp, "pcache")
        cmd = [self.prog("spate"), "wordcount", small]
        want = {"(a,200)", "(b,100)", "(c,100)"}
        for label, extra, env in [
            ("start-up, no kernel cache", ["--no-kernel-cache"],
             dict(os.environ, POCL_KERNEL_CACHE="0")),
            ("start-up, warm kernel cache", [],
             dict(os.environ, SPATE_CACHE_DIR=cache, POCL_CACHE_DIR=pcache))]:
            run = lambda: subprocess.run(cmd + extra, env=env, capture_output=True, text=True,
                                         timeout=300)
            run()  # warms the cache (and the page cache) in the second configuration
            secs, p = self.timed(run)
            self.log(f"{label}: {min(secs):.3f} s")
            counts = {ln for ln in p.stdout.splitlines() if ln.startswith("(")}
            self.job_row(label, "spate-cli", self.nproc, 400, os.path.getsize(small), secs,
                         p.returncode == 0 and counts == want,
                         timed="process wall time: spate wordcount on an "
                         "800-byte file (device open, kernel builds or cache loads, one batch)",
                         device=self.device)

        # peak resident memory per million live keys: one batch with K distinct string keys
        big = 1 << 20 if self.quick else 1 << 22
        rss = {}
        for k in (16, big):
            p = subprocess.run([self.prog("jobs_bench"), "keys", str(k)], capture_output=True,
                               text=True, timeout=600)
            if p.returncode == 0:
                rss[k] = json.loads(p.stdout.strip().splitlines()[-1])["max_rss_kib"] * 1024
        ok = len(rss) == 2
        # a memory figure: the job's output is not compared, so the row is not "correct"
        r = self.job_row("peak RSS per million keys", "spate-opencl", self.nproc, big, 0, [],
                         None if ok else False, note="output not checked: memory only",
                         timed="(peak RSS with K keys - peak RSS with 16 keys) / K x 1e6, "
                         "one batch of 2K generated (str,i64) records through reduceByKey",
                         device=self.device)
        if ok:
            r["rss_bytes_per_million_keys"] = (rss[big] - rss[16]) / big * 1e6
            self.notes.append("Peak resident memory per million live keys: "
                              f"{r['rss_bytes_per_million_keys'] / 2**20:.0f} MiB "
                              f"(K = {big}; includes the batch of 2K records itself).")

    # ------------------------------------------------------------------ jobs and peers
    def cluster_lines(self):
        """Lines per batch of the cluster-monitoring job (10 us of trace time per line)."""
        return 10000 if self.quick else 100000

    def gen(self):
        os.makedirs(self.data, exist_ok=True)
        q = self.quick
        words = os.path.join(self.data, f"words-{'q' if q else 'f'}.txt")
        lines = 100000 if q else 2000000
        subprocess.run([sys.executable, os.path.join(ROOT, "data", "gen_words.py"), "--lines",
                        str(lines), "--out", words], check=True)
        subprocess.run([sys.executable, os.path.join(HERE, "gen_inputs.py"), "words", "--out",
                        words], check=True)
        ysb = os.path.join(self.data, f"ysb-{'q' if q else 'f'}.jsonl")
        ads = os.path.join(self.data, f"ysb-{'q' if q else 'f'}.ads")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_inputs.py"), "ysb", "--out", ysb,
                        "--ads", ads, "--n", str(200000 if q else 2000000)], check=True)
        clu = os.path.join(self.data, f"cluster-{'q' if q else 'f'}.csv")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_inputs.py"), "cluster", "--out",
                        clu, "--n", str(200000 if q else 4000000), "--batch-lines",
                        str(self.cluster_lines()), "--window", str(CLUSTER_WINDOW)], check=True)
        return words, (ysb, ads), clu

    @staticmethod
    def read_result(path, ncols_key, floats=False):
        res = {}
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < ncols_key + 1:
                    continue
                k = "\t".join(parts[:ncols_key])
                v = float(parts[-1]) if floats else int(float(parts[-1]))
                res[k] = res.get(k, 0) + v
        return res

    @staticmethod
    def same(got, want, floats=False):
        if got is None or set(got) != set(want):
            return False
        if floats:
            return all(math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-12) for k in want)
        return all(got[k] == want[k] for k in want)

    def run_job(self, case, path, records, want, floats, ncols_key, systems, timed):
        nbytes = os.path.getsize(path)
        for name, threads, fn in systems:
            out = os.path.join(self.tmp, f"{case}-{name}.out")
            try:
                fn(out)  # warm-up: page cache, kernel cache
                secs, _ = self.timed(lambda: fn(out))
                got = self.read_result(out, ncols_key, floats)
                ok = self.same(got, want, floats)
                note = "" if ok else "result differs from the reference"
            except FileNotFoundError as e:
                self.notes.append(f"{case}: {name} not installed ({e.filename}); not measured.")
                continue
            except subprocess.CalledProcessError as e:
                secs, ok, note = [], False, f"exit status {e.returncode}: {e.stderr[-300:]!r}"
            except subprocess.TimeoutExpired:
                secs, ok, note = [], False, "timed out"
            self.log(f"{case} / {name}: {min(secs) if secs else float('nan'):.3f} s"
                     f"{'' if ok else '  WRONG'}")
            self.job_row(case, name, threads, records, nbytes, secs, ok, note, timed,
                         device=self.device if name.startswith("spate") else "host",
                         limit_threads=threads if threads in self.bw else self.nproc)

    def sh(self, cmd, out, stdin=None):
        with open(out, "w") as f:
            subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, text=True, check=True,
                           timeout=900)

    def spate_job(self, args):
        def fn(out):
            self.sh([self.prog("jobs_bench")] + args(out), out + ".log")
        return fn

    def awk(self, awk, prog, files, fs=None):
        def fn(out):
            cmd = [awk] + (["-F", fs] if fs else []) + [prog] + files
            self.sh(cmd, out)
        return fn

    def duck(self, sql):
        def fn(out):
            import duckdb
            con = duckdb.connect()
            con.execute(f"SET threads TO {self.nproc}")
            rows = con.execute(sql).fetchall()
            con.close()
            with open(out, "w") as f:
                for r in rows:
                    f.write("\t".join(str(x) if not isinstance(x, float) else repr(x)
                                      for x in r) + "\n")
        return fn

    def jobs(self):
        words, (ysb, ads), clu = self.gen()
        have_duck = True
        try:
            import duckdb  # noqa: F401
        except ImportError:
            have_duck = False
            self.notes.append("duckdb (PyPI) is not installed: its rows are missing.")
        T = self.nproc
        timed_awk = "process wall time, reading the file from the page cache; output written"
        # word count
        want = json.load(open(words + ".ref.json"))
        nlines = sum(1 for _ in open(words))
        sysw = [("spate-opencl", T, self.spate_job(lambda o: ["wordcount", words, o])),
                ("mawk", 1, self.awk("mawk", '{for(i=1;i<=NF;i++)c[$i]++}'
                                     'END{for(w in c)print w "\t" c[w]}', [words])),
                ("gawk", 1, self.awk("gawk", '{for(i=1;i<=NF;i++)c[$i]++}'
                                     'END{for(w in c)print w "\t" c[w]}', [words]))]
        if have_duck:
            sysw.append(("duckdb", T, self.duck(
                "SELECT w, count(*) FROM (SELECT unnest(string_split_regex(trim(l), '\\s+')) w "
                f"FROM read_csv('{words}', columns={{'l':'VARCHAR'}}, delim='\\t', quote='', "
                "escape='', header=false)) WHERE w <> '' GROUP BY w")))
        self.run_job("wordcount", words, nlines, want, False, 1, sysw,
                     timed_awk + " (spate and duckdb: one batch / query over the whole file)")
        # YSB (JSON lines; the windows are event-time windows, as a key)
        want = json.load(open(ysb + ".ref.json"))
        n = sum(1 for _ in open(ysb))
        ysb_awk = ('NR==FNR{split($0,a," ");c[a[1]]=a[2];next} '
                   '$20=="view" && ($12 in c){k=c[$12] "\t" substr($24,1,length($24)-4) "0000";'
                   'n[k]++} END{for(k in n)print k "\t" n[k]}')
        sysy = [("spate-opencl", T, self.spate_job(lambda o: ["ysb", ysb, ads, o])),
                ("mawk", 1, self.awk("mawk", ysb_awk, [ads, ysb], fs='"')),
                ("gawk", 1, self.awk("gawk", ysb_awk, [ads, ysb], fs='"'))]
        if have_duck:
            sysy.append(("duckdb", T, self.duck(
                "SELECT a.c, CAST(e.event_time AS BIGINT) // 10000 * 10000 AS w, count(*) "
                f"FROM read_json('{ysb}', format='newline_delimited', columns={{"
                "'user_id':'VARCHAR','page_id':'VARCHAR','ad_id':'VARCHAR','ad_type':'VARCHAR',"
                "'event_type':'VARCHAR','event_time':'VARCHAR','ip_address':'VARCHAR'}) e "
                f"JOIN read_csv('{ads}', delim=' ', header=false, columns={{'ad':'VARCHAR',"
                "'c':'VARCHAR'}) a ON e.ad_id = a.ad WHERE e.event_type = 'view' "
                "GROUP BY a.c, w")))
        self.run_job("ysb-jsonl", ysb, n, want, False, 2, sysy,
                     timed_awk + "; JSON parse, filter views, join ad->campaign, count per "
                     "(campaign, 10 s event-time window)")
        self.ysb_parse(ysb, n)
        # cluster monitoring: average cpu per category over a sliding window of R batches of L
        # lines (L x 10 us of trace time), sliding by one batch; key "batch time, category"
        L, R = self.cluster_lines(), CLUSTER_WINDOW
        want = json.load(open(f"{clu}.w{L}-{R}.ref.json"))
        n = sum(1 for _ in open(clu))
        cl_awk = (f'{{b=int((NR-1)/{L})+1; s[b SUBSEP $7]+=$9; n[b SUBSEP $7]++; c[$7]=1; '
                  'if(b>B)B=b} END{for(k=1;k<=B;k++) for(cat in c){ss=0;nn=0; '
                  f'for(j=(k-{R}+1<1?1:k-{R}+1);j<=k;j++)'
                  '{if((j SUBSEP cat) in n){ss+=s[j SUBSEP cat];nn+=n[j SUBSEP cat]}} '
                  'if(nn) printf "%d\\t%s\\t%.17g\\n", k*1000, cat, ss/nn}}')
        sysc = [("spate-opencl", T, self.spate_job(
                    lambda o: ["cluster", clu, o, "--batch-lines", str(L), "--window", str(R)])),
                ("mawk", 1, self.awk("mawk", cl_awk, [clu], fs=",")),
                ("gawk", 1, self.awk("gawk", cl_awk, [clu], fs=","))]
        if have_duck:
            sysc.append(("duckdb", T, self.duck(
                f"WITH p AS (SELECT (column00 - 600000000) // {10 * L} + 1 AS b, "
                "column06 AS cat, sum(column08) AS s, count(*) AS n "
                f"FROM read_csv('{clu}', header=false) GROUP BY ALL), "
                "bs AS (SELECT DISTINCT b FROM p) "
                "SELECT bs.b * 1000, p.cat, sum(p.s) / sum(p.n) FROM bs JOIN p "
                f"ON p.b BETWEEN bs.b - {R - 1} AND bs.b GROUP BY bs.b, p.cat")))
        self.run_job("cluster-monitoring", clu, n, want, True, 2, sysc,
                     timed_awk + f"; CSV parse, average cpu per category over a sliding window "
                     f"of {R} batches of {L} lines, sliding by one batch (Spate: "
                     "reduceByKeyAndWindow AVG; DuckDB: a self-join of per-batch partials)")
        self.notes.append("GoAccess only analyses web logs: it cannot express word count, YSB "
                          "or cluster monitoring; it joins with the log-analytics job.")
        self.notes.append("YSB in Spate: flatMap (JSON fields) -> event time on event_time -> "
                          "filter views -> map ad_id -> flatMap (join to the campaign table) -> "
                          "reduceByKeyAndWindow(SUM, 10 s, 10 s) (tumbling, epoch-aligned "
                          "event-time windows). Cluster monitoring in Spate: "
                          "reduceByKeyAndWindow(AVG, 10 batches, 1 batch).")

    def ysb_parse(self, ysb, n):
        """The YSB job's JSON parse alone (text lines -> flatMap of the three fields -> count),
        one thread and all threads: the parse rate per core beside ysb-columnar."""
        nbytes = os.path.getsize(ysb)
        for t in sorted({1, self.nproc}):
            env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(t))
            cmd = [self.prog("jobs_bench"), "ysbparse", ysb, "--threads", str(t)]
            try:
                subprocess.run(cmd, env=env, capture_output=True, timeout=600, check=True)
                secs, ok = [], True
                for _ in range(self.reps):
                    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                       timeout=600, check=True)
                    j = json.loads(p.stdout.strip().splitlines()[-1])
                    secs.append(j["run_s"])
                    ok = ok and j["rows"] == n
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as e:
                secs, ok = [], False
                self.log(f"ysbparse failed: {e}")
            r = self.job_row("ysb-jsonl parse only", "spate-opencl", t, n, nbytes, secs, ok,
                             timed="sp_context_run: read the file (page cache), split lines, "
                             "flatMap extracting ad_id, event_type, event_time; count()",
                             device=self.device)
            if secs:
                r["parse_bytes_per_s_per_core"] = nbytes / min(secs) / t
                self.notes.append(f"YSB JSON-lines parse, {t} thread(s): "
                                  f"{nbytes / min(secs) / t / 1e9:.2f} GB/s per core "
                                  f"({nbytes / min(secs) / 1e9:.2f} GB/s in all).")

    # ------------------------------------------------------------------ windows
    def windows(self):
        """window_check (public API, panes against the naive recompute on the same input,
        every window compared) gives the checked rows; bench/windows (pane internals, ms per
        slide) gives the operator-level rows, marked checked where window_check checked the
        same aggregate, key count and W/S."""
        checked = {}  # (agg, keys, ratio) -> correct
        exe = self.prog("window_check")
        if os.path.exists(exe):
            self.log("window_check")
            try:
                p = subprocess.run([exe] + (["--quick"] if self.quick else []),
                                   capture_output=True, text=True,
                                   timeout=120 if self.quick else 900)
                for line in p.stdout.splitlines():
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    r["threads"] = self.nproc
                    r["device"] = self.device
                    self.add(r)
                    f = r["case"].split()  # window job AGG keys=K W/S=R
                    key = (f[2], f[3].split("=")[1], f[4].split("=")[1])
                    checked[key] = checked.get(key, True) and r["correct"] is True
                if p.returncode not in (0, 1):
                    self.failed = True
                    self.log(f"window_check exited {p.returncode}: {p.stderr[-1000:]}")
            except subprocess.TimeoutExpired:
                self.failed = True
                self.log("window_check timed out")
        else:
            self.notes.append("bench/window_check was not built: window results not checked.")
        exe = self.prog("windows")
        if not os.path.exists(exe):
            self.notes.append("Sliding-window operator cases: bench/windows.c not built.")
            return
        self.log("windows")
        try:
            p = subprocess.run([exe] + (["--quick"] if self.quick else []),
                               capture_output=True, text=True, timeout=60 if self.quick else 600)
        except subprocess.TimeoutExpired:
            self.notes.append("Sliding-window cases: windows timed out; not reported.")
            return
        n = 0
        for line in p.stdout.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and "case" in r and "system" in r:
                self.add(r)
                n += 1
        if n == 0:
            n = self.windows_table(p.stdout, checked)
        if p.returncode != 0:
            self.failed = True
            self.log(f"windows exited {p.returncode}: {p.stderr[-1000:]}")
        if n == 0:
            self.notes.append("Sliding-window cases: bench/windows printed nothing the suite "
                              "can read; pending.")
        else:
            self.notes.append(
                "Window rows: 'window slide' rows are bench/windows (pane internals on u32 keys "
                "in memory, one slide = a batch into a pane, the slide, a pass over the "
                "window's keys; no generator, no output batch); they are marked checked where "
                "bench/window_check ran the same aggregate (invertible and naive: SUM; "
                "two-stacks: MAX), key count and W/S through the public API on the pane path "
                "and the naive recompute and every window agreed. 'window job' rows are "
                "window_check's own per-slide times (generator batch and output batch "
                "included; net_s_median in latest.json subtracts the generator).")

    def windows_table(self, text, checked):
        """Reads windows' text table (a header naming 'keys', 'W/S' and the paths, then rows
        of numbers in ms per slide, 'skipped' where a case did not run). windows itself checks
        nothing: a row is correct when window_check agreed on the same case (checked), else
        null (n/c)."""
        import re
        lines = text.splitlines()
        rows_per_slide = None
        m = re.search(r"(\d+) rows per slide", text)
        if m:
            rows_per_slide = int(m.group(1))
        head = None
        n = 0
        for line in lines:
            f = line.split()
            if len(f) >= 3 and f[0] == "keys" and f[1] == "W/S":
                head = f[2:]
                continue
            if not head or len(f) != len(head) + 2 or not f[0].isdigit() or not f[1].isdigit():
                continue
            for path, v in zip(head, f[2:]):
                try:
                    ms = float(v)
                except ValueError:
                    continue
                r = {"case": f"window slide keys={f[0]} W/S={f[1]}", "system": f"spate-{path}",
                     "device": self.device, "threads": self.nproc, "records": rows_per_slide,
                     "bytes": None, "seconds_min": ms / 1e3, "seconds_median": None,
                     "records_per_s": rows_per_slide / (ms / 1e3) if rows_per_slide and ms
                     else None, "limit_ratio": None,
                     "correct": checked.get(("max" if path == "two-stacks" else "sum", f[0],
                                             f[1])),
                     "note": "from bench/windows (ms per slide); checked by window_check on "
                     "the same aggregate, keys and W/S through the public API",
                     "timed": "one slide: a batch into a pane, the slide, a pass over the "
                     "window's keys"}
                self.add(r)
                n += 1
        return n

    # ------------------------------------------------------------------ stream join
    def join(self):
        exe = self.prog("join_bench")
        if not os.path.exists(exe):
            self.notes.append("bench/join_bench was not built: no stream-join rows.")
            return
        cases = [[]] if self.quick else [["--rows", str(1 << 20), "--keys", str(1 << 20)],
                                         ["--rows", str(1 << 18), "--keys", str(1 << 16)]]
        for extra in cases:
            self.log(f"stream join {' '.join(extra)}")
            try:
                p = subprocess.run([exe] + (["--quick"] if self.quick else []) + extra,
                                   capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                self.failed = True
                self.log("join_bench timed out")
                continue
            rows = []
            for line in p.stdout.splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
            if p.returncode not in (0, 1) or len(rows) != 2:
                self.failed = True
                self.log(f"join_bench exited {p.returncode}: {p.stderr[-1000:]}")
            base = next((r["records_per_s"] for r in rows if r["system"] == "reference-c"), 0)
            for r in rows:
                if r["system"] != "reference-c":
                    r["threads"] = self.nproc
                    if base and r["records_per_s"]:
                        r["vs_best_c"] = r["records_per_s"] / base
                self.add(r)
        self.notes.append("Stream join: the C hash join runs on one thread; Spate's join "
                          "(a host operator) on all executors, its time per batch includes the "
                          "two generator batches (generator_s_median: the generators alone) and "
                          "its output batch; × best C compares the two as they are.")

    # ------------------------------------------------------------------ merged rows
    def logs(self):
        """The log-analytics job's rows come from bench/logs.py (its own benchmark): a quick
        run runs it with --quick; every run merges logs.json (its rows, the suite's format)
        from the output directory, or else from bench/results/."""
        script = os.path.join(HERE, "logs.py")
        if self.quick and os.path.exists(script):
            self.log("logs.py --quick")
            try:
                p = subprocess.run([sys.executable, script, "--quick", "--build", self.build],
                                   capture_output=True, text=True, timeout=45)
                if p.returncode != 0:
                    self.notes.append(f"bench/logs.py --quick exited {p.returncode}; its rows "
                                      "may be missing or stale.")
                    self.log(f"logs.py: {p.stderr[-800:]}")
            except (subprocess.TimeoutExpired, OSError) as e:
                self.notes.append(f"bench/logs.py --quick did not finish ({e}).")
        self.merge_rows("logs.json", "log-analytics rows from bench/logs.py")
        if not self.quick:
            self.merge_rows("soak.json", "resident memory over a long run (bench/run --soak)")

    def merge_rows(self, name, what):
        path = os.path.join(self.a.out, name)
        if not os.path.exists(path):
            path = os.path.join(HERE, "results", name)
        if not os.path.exists(path):
            return
        try:
            with open(path) as f:
                doc = json.load(f)
            rows = doc["rows"] if isinstance(doc, dict) else doc
            # A row is correct only if its output was checked in this run: rows of a file
            # written before the run started (an earlier run's, or the committed results)
            # keep their numbers but count as not checked.
            fresh = os.path.getmtime(path) >= self.started
            n = 0
            for r in rows:
                if isinstance(r, dict) and "case" in r and "system" in r:
                    r = dict(r)
                    if not fresh and r.get("correct") is not None:
                        r["correct"] = None
                        r["note"] = ((r.get("note") or "") + " (not checked in this run: "
                                     f"merged from {os.path.relpath(path, ROOT)})").strip()
                    self.add(r)
                    n += 1
            for note in (doc.get("notes", []) if isinstance(doc, dict) else []):
                self.notes.append(note)
            self.notes.append(f"Merged {n} {what} ({os.path.relpath(path, ROOT)}"
                              f"{'' if fresh else ', from an earlier run: not checked in this one'}).")
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.notes.append(f"{os.path.relpath(path, ROOT)} could not be read ({e}); "
                              "its rows are left out.")

    # ------------------------------------------------------------------ soak (separate mode)
    def soak_run(self, cmd, minutes, every):
        """Runs cmd, sampling the process's VmRSS every `every` s; returns (ok, json, samples,
        stderr)."""
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            samples.append((time.time() - t0, int(line.split()[1]) * 1024))
            except OSError:
                pass
            time.sleep(every)
        out, err = p.communicate()
        ok = p.returncode == 0
        try:
            j = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            j, ok = {}, False
        if not ok:
            self.log(f"soak job failed ({p.returncode}): {err[-1000:]}")
        return ok, j, samples

    def soak_row(self, case, timed, minutes, every, ok, j, samples, goal):
        at1 = next((r for t, r in samples if t >= 60), None)
        end = samples[-1][1] if samples else None
        ratio = end / at1 if at1 and end else None
        rows_done = j.get("rows", 0)
        r = self.job_row(case, "spate-opencl", self.nproc, rows_done, 0,
                         [j["run_s"]] if j else [], ok, timed=timed, device=self.device)
        r["limit_ratio"] = ratio
        r["rss_at_1min_bytes"] = at1
        r["rss_end_bytes"] = end
        r["rss_max_sampled_bytes"] = max((x for _, x in samples), default=None)
        r["rss_samples"] = [[round(t, 1), x] for t, x in samples]
        for k in ("batches", "checked_batches", "bad_batches", "dict_live", "dict_ids",
                  "dict_bytes", "dict_reclaimed", "keymap_live", "reclaim_cycles"):
            if k in j:
                r[k] = j[k]
        r["goal_met"] = ok and ratio is not None and ratio <= goal
        if ratio:
            self.notes.append(
                f"{case} ({j.get('batches')} batches, "
                f"{rows_done / max(1e-9, j.get('run_s', 1)) / 1e6:.2f} M output rows/s): RSS "
                f"{at1 / 2**20:.0f} MiB after 1 min, {end / 2**20:.0f} MiB at the end: "
                f"ratio {ratio:.3f} (goal <= {goal:.2f}: {'met' if r['goal_met'] else 'missed'})"
                + (f"; {j.get('checked_batches')} output batches checked, "
                   f"{j.get('bad_batches')} wrong" if j.get("checked_batches") else "") + ".")
        return r

    def soak(self, minutes, only=None):
        """Long runs, VmRSS of the process sampled every few seconds; goal: the RSS at the end
        within 10% of the RSS after one minute. First a generator at full speed over a fixed
        domain of 100 K string keys (reduceByKey and a sliding reduceByKeyAndWindow), then
        rotating keys: every batch draws 200 K keys never seen before (jobs_bench rsoak), into
        reduceByKey, window + reduceByKey, reduceByKeyAndWindow and updateStateByKey with an
        update that removes keys, and the log job's shape (jobs_bench rsoak logs: event time,
        HLL and DDSketch per path over a window, top 10); each rotating job checks every output
        batch (a row counts as correct only if every batch checked). Writes soak.json (rows in
        the suite's format) to the output directory, with --soak-only into the rows already
        there (merge_soak); the full run merges it."""
        secs = minutes * 60
        every = 5.0
        rows, first_note = [], len(self.notes)
        if not only or "fixed" in only:
            cmd = [self.prog("jobs_bench"), "soak", "--seconds", str(secs), "--per-batch",
                   "100000", "--keys", "100000"]
            self.log(f"soak: {minutes} min, RSS every {every:.0f} s")
            ok, j, samples = self.soak_run(cmd, minutes, every)
            rows.append(self.soak_row(
                f"soak {minutes} min, RSS end / RSS at 1 min", "generator at full speed -> "
                "reduceByKey + reduceByKeyAndWindow (10 s / 1 s) over 100 K string keys, 100 K "
                f"records per batch; VmRSS every {every:.0f} s", minutes, every, ok, j, samples,
                1.10))
        ops = {"reduce": "reduceByKey(SUM)",
               "window": "window(10 s, 1 s) then reduceByKey(SUM)",
               "rkw": "reduceByKeyAndWindow(SUM, 10 s, 1 s)",
               "state": "updateStateByKey (a key without new values is removed)",
               "logs": "the log job's shape (data/jobs/access_report.spate): requests from 200 K "
                       "new client addresses every batch, a new path per 8 requests, event-time "
                       "batches (watermark 2 batches, a quarter of the requests one batch early), "
                       "then per path over a 10-batch window unique clients (HLL, 5%), bytes "
                       "p50/p95 (DDSketch, 1%) and the top 10 paths by requests"}
        for op, what in ops.items():
            if only and op not in only:
                continue
            cmd = [self.prog("jobs_bench"), "rsoak", op, "--seconds", str(secs), "--per-batch",
                   "200000", "--keys", "200000", "--window", "10"]
            self.log(f"soak, rotating keys, {op}: {minutes} min, RSS every {every:.0f} s")
            ok, j, samples = self.soak_run(cmd, minutes, every)
            ok = ok and j.get("checked_batches", 0) > 0 and j.get("bad_batches", 1) == 0
            timed = (f"generator at full speed, 200 K records per batch over 200 K new string "
                     f"keys every batch -> {what}" if op != "logs" else
                     f"generator at full speed, 200 K records per batch -> {what}")
            rows.append(self.soak_row(
                f"soak rotating keys {op} {minutes} min, RSS end / RSS at 1 min",
                f"{timed}; every output batch checked; VmRSS every {every:.0f} s",
                minutes, every, ok, j, samples, 1.10))
        machine = self.machine()
        for r in rows:
            r["commit"] = machine.get("commit")
            r["date"] = machine.get("date")
        os.makedirs(self.a.out, exist_ok=True)
        path = os.path.join(self.a.out, "soak.json")
        if not only or not os.path.exists(path):
            with open(path, "w") as f:
                json.dump({"machine": machine, "rows": rows, "notes": self.notes[first_note:]},
                          f, indent=1)
        else:
            try:
                merge_soak(path, rows, self.notes[first_note:], machine)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                self.log(f"soak: {path} not merged ({e})")
                return False
        return all(r["correct"] for r in rows)

    # ------------------------------------------------------------------ output
    def machine(self):
        cpu = ""
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        mem = 0
        try:
            for line in open("/proc/meminfo"):
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) * 1024
        except OSError:
            pass
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        return {"cpu": cpu, "cores": self.nproc, "memory_bytes": mem,
                "os": platform.platform(), "device": self.device,
                "read_bandwidth_bytes_per_s": {str(k): v for k, v in self.bw.items()},
                "commit": commit, "quick": self.quick,
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "reps": self.reps}

    def write(self, wall):
        out = self.a.out
        os.makedirs(out, exist_ok=True)
        m = self.machine()
        m["suite_seconds"] = round(wall, 1)
        doc = {"machine": m, "rows": self.rows, "notes": self.notes}
        with open(os.path.join(out, "latest.json"), "w") as f:
            json.dump(doc, f, indent=1)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d")
        shutil.copyfile(os.path.join(out, "latest.json"), os.path.join(out, f"{stamp}.json"))
        md = render_md(doc)
        with open(os.path.join(out, "results.md"), "w") as f:
            f.write(md)
        try:
            charts(doc, out)
        except ImportError:
            self.log("matplotlib missing: no charts")
        return md


def fmt(x, unit=""):
    if x is None:
        return "–"
    for div, suf in ((1e9, " G"), (1e6, " M"), (1e3, " K")):
        if abs(x) >= div:
            return f"{x / div:.2f}{suf}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def render_md(doc):
    m = doc["machine"]
    L = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] / 2**30:.0f} GiB; "
         f"OpenCL device: {m['device']}; commit {m['commit']}; {m['date']}; "
         f"{'quick' if m['quick'] else 'full'} run, {m['reps']} timed runs per case, "
         f"suite {m.get('suite_seconds', '?')} s.",
         "Read bandwidth (STREAM-style sum): " + ", ".join(
             f"{k} thread(s) {v / 1e9:.1f} GB/s" for k, v in
             m["read_bandwidth_bytes_per_s"].items()) + ".", "",
         "| case | system | threads | records | s (min) | s (median) | records/s | GB/s | "
         "× limit | × best C | ok |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|"]
    for r in doc["rows"]:
        gbs = r["bytes"] / r["seconds_min"] / 1e9 if r["bytes"] and r["seconds_min"] else None
        vs = r.get("vs_best_c")
        L.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["case"], r["system"], r["threads"], fmt(r["records"]),
            f"{r['seconds_min']:.4g}" if r["seconds_min"] else "–",
            f"{r['seconds_median']:.4g}" if r["seconds_median"] else "–",
            fmt(r["records_per_s"]), f"{gbs:.2f}" if gbs else "–",
            f"{r['limit_ratio']:.2f}" if r["limit_ratio"] is not None else "–",
            f"{vs:.2f}" if vs else "–",
            "yes" if r["correct"] else "n/c" if r["correct"] is None else "**FAILED**"))
    L.append("")
    for n in doc["notes"]:
        L.append(f"- {n}")
    return "\n".join(L) + "\n"


def charts(doc, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    m = doc["machine"]
    rows = doc["rows"]
    sub = (f"{m['cpu'][:40]}, device {m['device'][:40]}; "
           f"{'quick' if m['quick'] else 'full'} run, min of {m['reps']}")
    # throughput against size
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for sysname in ("spate-opencl", "reference-c"):
        for t in sorted({r["threads"] for r in rows}):
            pts = sorted((r["records"], r["records_per_s"]) for r in rows
                         if r["case"] == "reduceByKey-size K=1Ki" and r["system"] == sysname
                         and r["threads"] == t and r["records_per_s"])
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                        label=f"{sysname}, {t} thread(s)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("records (u32 key + i64 value, in memory)")
    ax.set_ylabel("records/s")
    ax.set_title("reduceByKey (SUM, K = 1Ki) throughput vs input size\n" + sub, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput_vs_size.png"), dpi=110)
    plt.close(fig)
    # fraction of the read-bandwidth limit
    ops = [r for r in rows if r["system"] in ("spate-opencl", "reference-c", "spate-host")
           and r["limit_ratio"] is not None and not r["case"].startswith(("reduceByKey-size",
                                                                          "batch", "start",
                                                                          "peak", "stream"))
           and r["case"] not in ("wordcount", "ysb-jsonl", "cluster-monitoring")]
    cases = list(dict.fromkeys(r["case"] for r in ops))
    series = [(s, t) for s in ("reference-c", "spate-opencl", "spate-host")
              for t in sorted({r["threads"] for r in ops})]
    series = [st for st in series if any(r["system"] == st[0] and r["threads"] == st[1]
                                         for r in ops)]
    fig, ax = plt.subplots(figsize=(10, 4.8))
    w = 0.8 / max(1, len(series))
    for i, (s, t) in enumerate(series):
        vals = []
        for c in cases:
            v = [r["limit_ratio"] for r in ops if r["case"] == c and r["system"] == s
                 and r["threads"] == t]
            vals.append(v[0] if v else 0)
        ax.bar([j + i * w for j in range(len(cases))], vals, w, label=f"{s}, {t} thr")
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(cases))])
    ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_ylabel("input GB/s ÷ read bandwidth (same threads)")
    ax.set_title("Operators: fraction of the STREAM-style read-bandwidth limit "
                 "(in-memory columns, no parsing)\n" + sub, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "fraction_of_limit.png"), dpi=110)
    plt.close(fig)
    # Spate vs peers on the jobs
    jobs = [c for c in ("wordcount", "ysb-jsonl", "cluster-monitoring")
            if any(r["case"] == c for r in rows)]
    peers = ["spate-opencl", "duckdb", "mawk", "gawk"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    w = 0.2
    for i, p in enumerate(peers):
        vals = []
        for c in jobs:
            v = [r["records_per_s"] for r in rows if r["case"] == c and r["system"] == p]
            vals.append(v[0] or 0 if v else 0)
        ax.bar([j + i * w for j in range(len(jobs))], vals, w, label=p)
    ax.set_xticks([j + 1.5 * w for j in range(len(jobs))])
    ax.set_xticklabels(jobs)
    ax.set_ylabel("input records/s (process wall time)")
    ax.set_title("Jobs end to end from a file (parse included, output written): Spate vs "
                 "peers\n" + sub, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "spate_vs_peers.png"), dpi=110)
    plt.close(fig)


def soak_job(case):
    """The soak job of a row's case: fixed, or the rotating job's operator (reduce, logs, ...)."""
    w = case.split()
    return w[3] if w[:3] == ["soak", "rotating", "keys"] and len(w) > 3 else "fixed"


def merge_soak(path, rows, notes, machine):
    """Writes rows into the soak.json at path, replacing its rows of the same jobs (whatever
    their length) and keeping the others: --soak-only reruns some rows. Every row says the
    commit and date of its run."""
    with open(path) as f:
        old = json.load(f)
    om = old.get("machine", {})
    for r in rows:
        r.setdefault("commit", machine.get("commit"))
        r.setdefault("date", machine.get("date"))
    done = {soak_job(r["case"]) for r in rows}
    kept = [dict(r, commit=r.get("commit", om.get("commit")), date=r.get("date", om.get("date")))
            for r in old.get("rows", []) if soak_job(r.get("case", "")) not in done]
    kept_notes = [n for n in old.get("notes", [])
                  if not (n.startswith("soak") and soak_job(n.split(",")[0]) in done)]
    with open(path, "w") as f:
        json.dump({"machine": machine, "rows": kept + rows, "notes": kept_notes + notes}, f,
                  indent=1)


def update_readme(md):
    path = os.path.join(HERE, "README.md")
    if not os.path.exists(path):
        return
    text = open(path).read()
    b, e = "<!-- results:begin -->", "<!-- results:end -->"
    if b in text and e in text:
        head, rest = text.split(b, 1)
        tail = rest.split(e, 1)[1]
        with open(path, "w") as f:
            f.write(head + b + "\n" + md + e + tail)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--only", default=ALL_PARTS)
    ap.add_argument("--soak-only", default="", metavar="JOBS",
                    help="soak: only these of fixed,reduce,window,rkw,state,logs (comma-separated); "
                         "the other rows of the output's soak.json stay")
    ap.add_argument("--soak", type=float, nargs="?", const=10.0, metavar="MINUTES",
                    help="only the long resident-memory run (default 10 minutes)")
    a = ap.parse_args()
    if not a.out:
        a.out = os.path.join(HERE, "results", "quick" if a.quick else "")
    t0 = time.time()
    s = Suite(a)
    if a.soak is not None:
        ok = s.soak(a.soak, [x for x in a.soak_only.split(",") if x] or None)
        shutil.rmtree(s.tmp, ignore_errors=True)
        print("\n".join(s.notes))
        return 0 if ok else 1
    only = a.only.split(",")
    try:
        if "ops" in only:
            s.ops()
        if "overheads" in only:
            s.overheads()
        if "jobs" in only:
            s.jobs()
        if "windows" in only:
            s.windows()
        if "join" in only:
            s.join()
        if "logs" in only:
            s.logs()
    except subprocess.TimeoutExpired as e:
        s.failed = True
        s.log(f"timed out: {e.cmd}")
    finally:
        shutil.rmtree(s.tmp, ignore_errors=True)
    md = s.write(time.time() - t0)
    if not a.quick and only == ALL_PARTS.split(","):
        update_readme(md)
    print(md)
    s.log(f"done in {time.time() - t0:.0f} s; results in {a.out}")
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
