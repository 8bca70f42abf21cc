#!/usr/bin/env python3
"""Generates a realistic Apache/Nginx combined access log with a fixed seed (same bytes every
run): Zipf-skewed hot paths, diurnal rate with bursts, 5xx incidents on a few paths, bots and
crawlers, IPv6 clients, `-` for bytes on 304s and HEAD requests, a few malformed lines (a
missing closing quote, a request without protocol) that a parser must handle or reject.

    gen_access_log.py --minutes 120 --rate 2000 --seed 7 --out data/generated/access.log
"""
import argparse
import datetime as dt
import os
import random

PATHS_STATIC = ["/", "/index.html", "/favicon.ico", "/robots.txt", "/css/site.css",
                "/js/app.js", "/img/logo.png", "/img/hero.jpg", "/fonts/inter.woff2"]
PATHS_APP = ["/api/v1/items", "/api/v1/items/{id}", "/api/v1/cart", "/api/v1/checkout",
             "/api/v1/search?q={q}", "/login", "/logout", "/account", "/products/{id}",
             "/category/{cat}", "/blog/{slug}", "/docs/{slug}", "/download/{file}"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/118.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:119.0) Gecko/20100101 Firefox/119.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "curl/8.4.0",
    "python-requests/2.31.0",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"]
REFERERS = ["-", "-", "-", "https://www.google.com/", "https://example.com/",
            "https://news.ycombinator.com/", "https://example.com/blog/"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=120)
    ap.add_argument("--rate", type=int, default=2000, help="mean requests per minute")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--start", default="2024-03-10T08:00:00+00:00")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    stamp = f"{a.minutes} {a.rate} {a.seed} {a.start} v1"
    meta = a.out + ".params"
    if os.path.exists(a.out) and os.path.exists(meta) and open(meta).read() == stamp:
        return
    rng = random.Random(a.seed)
    start = dt.datetime.fromisoformat(a.start)
    ids = [str(rng.randint(1, 99999)) for _ in range(400)]
    slugs = [f"post-{i}" for i in range(300)]
    cats = ["shoes", "books", "garden", "tools", "toys", "music", "games"]
    files = [f"release-{i}.tar.gz" for i in range(20)]
    paths = []
    for p in PATHS_APP:
        for _ in range(30):
            paths.append(p.replace("{id}", rng.choice(ids)).replace("{q}", rng.choice(cats))
                         .replace("{cat}", rng.choice(cats)).replace("{slug}", rng.choice(slugs))
                         .replace("{file}", rng.choice(files)))
    paths = PATHS_STATIC + sorted(set(paths))
    weights = [1.0 / (i + 1) ** 1.1 for i in range(len(paths))]
    clients4 = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                f"{rng.randint(1, 254)}" for _ in range(3000)]
    clients6 = [f"2001:db8:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}"
                for _ in range(400)]
    bots = [f"66.249.{rng.randint(64, 95)}.{rng.randint(1, 254)}" for _ in range(30)]
    cweights = [1.0 / (i + 1) ** 0.8 for i in range(len(clients4))]
    incidents = [(rng.randint(10, max(11, a.minutes - 10)), rng.randint(3, 8),
                  rng.sample(paths[9:40], 3)) for _ in range(max(1, a.minutes // 40))]
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        for minute in range(a.minutes):
            # diurnal-ish swing plus occasional bursts
            phase = 0.75 + 0.5 * abs(((minute % 240) / 120.0) - 1.0)
            n = int(rng.gauss(a.rate * phase, a.rate * 0.05))
            if rng.random() < 0.05:
                n *= 3
            inc = [i for i in incidents if i[0] <= minute < i[0] + i[1]]
            secs = sorted(rng.random() * 60 for _ in range(max(n, 0)))
            for s in secs:
                t = start + dt.timedelta(minutes=minute, seconds=s)
                # a little disorder, as real multi-worker logs have
                if rng.random() < 0.01:
                    t -= dt.timedelta(seconds=rng.uniform(0, 20))
                bot = rng.random() < 0.08
                if bot:
                    host, agent = rng.choice(bots), rng.choice(BOTS)
                elif rng.random() < 0.07:
                    host, agent = rng.choice(clients6), rng.choice(AGENTS)
                else:
                    host, agent = rng.choices(clients4, cweights)[0], rng.choice(AGENTS)
                path = rng.choices(paths, weights)[0]
                method = "GET"
                r = rng.random()
                if path.startswith("/api/v1/cart") or path.startswith("/api/v1/checkout") \
                        or path == "/login":
                    method = "POST" if r < 0.6 else "GET"
                elif r < 0.02:
                    method = "HEAD"
                status = 200
                r = rng.random()
                if any(path in i[2] for i in inc) and r < 0.6:
                    status = rng.choice([500, 502, 503, 504])
                elif r < 0.004:
                    status = 500
                elif r < 0.05:
                    status = 404
                elif r < 0.12 and method == "GET":
                    status = 304
                elif r < 0.14:
                    status = rng.choice([301, 302])
                elif r < 0.145:
                    status = 403
                size = "-" if status == 304 or method == "HEAD" else \
                    str(int(rng.lognormvariate(8.5, 1.4)) if status == 200 else rng.randint(150, 600))
                ts = t.strftime("%d/%b/%Y:%H:%M:%S %z")
                ref = rng.choice(REFERERS)
                proto = "HTTP/1.1" if rng.random() < 0.8 else "HTTP/2.0"
                q = rng.random()
                if q < 0.0005:
                    line = f'{host} - - [{ts}] "GET {path}" {status} {size} "{ref}" "{agent}"'
                elif q < 0.0008:
                    line = f'{host} - - [{ts}] "GET {path} {proto} {status} {size} "{ref}" "{agent}'
                else:
                    user = "-" if rng.random() < 0.97 else rng.choice(["alice", "bob", "carol"])
                    line = (f'{host} - {user} [{ts}] "{method} {path} {proto}" {status} {size} '
                            f'"{ref}" "{agent}"')
                f.write(line + "\n")
    os.replace(tmp, a.out)
    with open(meta, "w") as f:
        f.write(stamp)


if __name__ == "__main__":
    main()
