#!/usr/bin/env python3
"""Generates text for the word-count demo and tests: words drawn from a Zipf-like
distribution over a fixed vocabulary, single spaces, a fixed seed (same bytes every run)."""
import argparse
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--words-per-line", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if os.path.exists(a.out):
        stamp = f"{a.lines} {a.words_per_line} {a.vocab} {a.seed}"
        meta = a.out + ".params"
        if os.path.exists(meta) and open(meta).read() == stamp:
            return
    rng = random.Random(a.seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "an", "el", "is", "or", "um"]
    vocab = []
    seen = set()
    while len(vocab) < a.vocab:
        w = "".join(rng.choice(syll) for _ in range(rng.randint(1, 4)))
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    weights = [1.0 / (i + 1) for i in range(a.vocab)]
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        for _ in range(a.lines):
            n = rng.randint(1, 2 * a.words_per_line - 1)
            f.write(" ".join(rng.choices(vocab, weights, k=n)))
            f.write("\n")
    os.replace(tmp, a.out)
    with open(a.out + ".params", "w") as f:
        f.write(f"{a.lines} {a.words_per_line} {a.vocab} {a.seed}")


if __name__ == "__main__":
    main()
