#!/usr/bin/env python3
"""Inputs of the job benchmarks, with fixed seeds, and their reference results.

Each generator writes FILE and FILE.ref.json (the expected result, computed here in plain
Python, independently of every system measured) and skips the work when FILE.params matches.

  ysb      Yahoo Streaming Benchmark ad events as JSON lines (fields and values as in the
           benchmark's generator: user_id, page_id, ad_id, ad_type, event_type in
           view/click/purchase, event_time in ms as a string, ip_address), 100 campaigns x 10
           ads; ADS file "ad_id campaign_id" per line. Reference: views per (campaign, 10 s
           event-time window).
  cluster  task events as CSV in the Google cluster-trace layout SABER and LightSaber use
           (timestamp,job_id,task_index,machine_id,event_type,user,category,priority,cpu,ram,
           disk,constraint). Reference: average cpu per category; with --batch-lines L and
           --window R also FILE.wL-R.ref.json: the sliding average per category, key
           "T\tcategory", where batch k (T = k x 1000 ms) holds lines [(k-1)L, kL) and the
           window at k the batches max(1, k-R+1) .. k.
  words    reference word counts of a text file (gen_words.py writes the text).
"""
import argparse
import json
import os
import random
import uuid
from collections import Counter, defaultdict


def fresh(path, stamp):
    meta = path + ".params"
    if os.path.exists(path) and os.path.exists(path + ".ref.json") and os.path.exists(meta):
        with open(meta) as f:
            if f.read() == stamp:
                return False
    return True


def done(path, stamp, ref):
    with open(path + ".ref.json", "w") as f:
        json.dump(ref, f)
    with open(path + ".params", "w") as f:
        f.write(stamp)


def gen_ysb(out, ads_out, n, seed):
    stamp = f"ysb {n} {seed}"
    if not fresh(out, stamp) and os.path.exists(ads_out):
        return
    rng = random.Random(seed)
    uid = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    campaigns = [uid() for _ in range(100)]
    ads = []
    with open(ads_out, "w") as f:
        for c in campaigns:
            for _ in range(10):
                a = uid()
                ads.append((a, c))
                f.write(f"{a} {c}\n")
    users = [uid() for _ in range(100)]
    pages = [uid() for _ in range(100)]
    ad_types = ["banner", "modal", "sponsored-search", "mail", "mobile"]
    ev_types = ["view", "click", "purchase"]
    t0 = 1700000000000
    span_ms = 100000  # events spread over 100 s: 10 windows of 10 s
    counts = Counter()
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for i in range(n):
            a, c = ads[rng.randrange(len(ads))]
            e = ev_types[rng.randrange(3)]
            t = t0 + i * span_ms // n
            f.write('{"user_id":"%s","page_id":"%s","ad_id":"%s","ad_type":"%s",'
                    '"event_type":"%s","event_time":"%d","ip_address":"1.2.3.4"}\n'
                    % (users[rng.randrange(100)], pages[rng.randrange(100)], a,
                       ad_types[rng.randrange(5)], e, t))
            if e == "view":
                counts[f"{c}\t{t // 10000 * 10000}"] += 1
    os.replace(tmp, out)
    done(out, stamp, dict(counts))


def gen_cluster(out, n, seed):
    stamp = f"cluster {n} {seed}"
    if not fresh(out, stamp):
        return
    rng = random.Random(seed)
    s = defaultdict(float)
    c = Counter()
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for i in range(n):
            cat = rng.randrange(12)
            cpu = rng.randrange(1, 10000) / 10000.0
            f.write("%d,%d,%d,%d,%d,user%d,%d,%d,%.4f,%.4f,%.4f,0\n"
                    % (600000000 + i * 10, rng.randrange(1 << 20), rng.randrange(1000),
                       rng.randrange(10000), rng.randrange(9), rng.randrange(500), cat,
                       rng.randrange(12), cpu, rng.randrange(1, 10000) / 10000.0,
                       rng.randrange(1, 10000) / 100000.0))
            s[cat] += cpu
            c[cat] += 1
    os.replace(tmp, out)
    done(out, stamp, {str(k): s[k] / c[k] for k in c})


def ref_cluster_windows(path, lines_per_batch, window):
    out = f"{path}.w{lines_per_batch}-{window}.ref.json"
    stamp = open(path + ".params").read()
    if os.path.exists(out) and os.path.exists(out + ".params") and \
            open(out + ".params").read() == stamp:
        return
    per = []  # per batch: category -> [sum, count]
    with open(path) as f:
        for i, line in enumerate(f):
            if i % lines_per_batch == 0:
                per.append(defaultdict(lambda: [0.0, 0]))
            p = line.split(",")
            a = per[-1][int(p[6])]
            a[0] += float(p[8])
            a[1] += 1
    ref = {}
    for k in range(len(per)):
        s, c = defaultdict(float), Counter()
        for j in range(max(0, k - window + 1), k + 1):
            for cat, (x, n) in per[j].items():
                s[cat] += x
                c[cat] += n
        for cat in c:
            ref[f"{(k + 1) * 1000}\t{cat}"] = s[cat] / c[cat]
    with open(out, "w") as f:
        json.dump(ref, f)
    with open(out + ".params", "w") as f:
        f.write(stamp)


def ref_words(path):
    stamp = f"words {os.path.getsize(path)} {os.path.getmtime(path)}"
    if not fresh(path, stamp):
        return
    c = Counter()
    with open(path) as f:
        for line in f:
            c.update(line.split())
    done(path, stamp, dict(c))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["ysb", "cluster", "words"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--ads")
    ap.add_argument("--n", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--batch-lines", type=int, default=0)
    ap.add_argument("--window", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    if a.kind == "ysb":
        gen_ysb(a.out, a.ads, a.n, a.seed)
    elif a.kind == "cluster":
        gen_cluster(a.out, a.n, a.seed)
        if a.batch_lines and a.window:
            ref_cluster_windows(a.out, a.batch_lines, a.window)
    else:
        ref_words(a.out)


if __name__ == "__main__":
    main()
