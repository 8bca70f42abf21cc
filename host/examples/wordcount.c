/* wordcount — the classic streaming word count with Spate's C API:
 *
 *   textFile(FILE) -> flatMap(split " ") -> map(w => (w, 1)) -> reduceByKey(_ + _)
 *
 * Each batch's counts are printed with print(10) on stderr's side channel when --print is
 * given; the totals over all batches are written to stdout as "COUNT WORD" lines, so the result
 * can be compared with `tr ' ' '\n' < FILE | sort | uniq -c`.
 *
 * usage: wordcount FILE [LINES_PER_BATCH] */
#include "spate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Java's String.split(" "): empty strings between separators are kept, trailing ones dropped. */
static int split(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *s = sp_row_str(in, 0, &len);
    size_t end = len;
    while (end > 0 && s[end - 1] == ' ')
        end--;
    if (end == 0 && len > 0) return 0;
    size_t b = 0;
    for (size_t i = 0; i <= end; i++) {
        if (i == end || s[i] == ' ') {
            int rc = sp_emit_str(out, s + b, i - b);
            if (rc || (rc = sp_emit_end(out))) return rc;
            b = i + 1;
        }
    }
    return 0;
}

/* Totals across batches: a small open-addressing table owned by the example. */
typedef struct total {
    char *word;
    int64_t count;
} total;

typedef struct totals {
    total *slot;
    size_t cap, used;
} totals;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int totals_add(totals *t, const char *w, size_t n, int64_t c)
{
    if ((t->used + 1) * 2 > t->cap) {
        totals g = {calloc(t->cap ? t->cap * 2 : 1024, sizeof(total)), t->cap ? t->cap * 2 : 1024,
                    0};
        if (!g.slot) return -1;
        for (size_t i = 0; i < t->cap; i++)
            if (t->slot[i].word) {
                size_t j = fnv(t->slot[i].word, strlen(t->slot[i].word)) & (g.cap - 1);
                while (g.slot[j].word)
                    j = (j + 1) & (g.cap - 1);
                g.slot[j] = t->slot[i];
                g.used++;
            }
        free(t->slot);
        *t = g;
    }
    size_t j = fnv(w, n) & (t->cap - 1);
    while (t->slot[j].word && !(strlen(t->slot[j].word) == n && !memcmp(t->slot[j].word, w, n)))
        j = (j + 1) & (t->cap - 1);
    if (!t->slot[j].word) {
        t->slot[j].word = strndup(w, n);
        if (!t->slot[j].word) return -1;
        t->used++;
    }
    t->slot[j].count += c;
    return 0;
}

static int accumulate(void *ud, const sp_batch *b)
{
    totals *t = ud;
    for (size_t i = 0; i < sp_batch_count(b); i++) {
        size_t n;
        const char *w = sp_batch_str(b, i, 0, &n);
        if (totals_add(t, w, n, sp_batch_i64(b, i, 1))) return -1;
    }
    return 0;
}

static int by_word(const void *x, const void *y)
{
    const total *a = x, *b = y;
    if (!a->word || !b->word) return a->word ? -1 : b->word ? 1 : 0;
    return strcmp(a->word, b->word);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: wordcount FILE [LINES_PER_BATCH]\n");
        return 2;
    }
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.batch_lines = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 10000;
    cfg.out = stderr; /* print() goes next to the progress; totals go to stdout */
    sp_context *ctx;
    if (sp_context_new(&cfg, &ctx) != SP_OK) return 1;
    totals t = {0};
    sp_stream *lines = sp_text_file(ctx, argv[1]);
    sp_stream *words = sp_stream_flat_map(lines, "str", split, NULL);
    sp_stream *pairs =
        sp_stream_map(words, sp_expr_tuple2(ctx, sp_expr_arg(ctx, 0), sp_expr_i64(ctx, 1)));
    sp_stream *counts = sp_stream_reduce_by_key(
        pairs, sp_expr_binop(ctx, SP_OP_ADD, sp_expr_arg(ctx, 0), sp_expr_arg(ctx, 1)));
    int rc = counts ? sp_stream_foreach_rdd(counts, accumulate, &t) : -1;
    if (rc == SP_OK) rc = sp_context_run(ctx);
    if (rc != SP_OK) {
        fprintf(stderr, "wordcount: %s\n", sp_context_errmsg(ctx));
        sp_context_free(ctx);
        return 1;
    }
    fprintf(stderr, "wordcount: %lld batches, %zu distinct words\n",
            (long long)sp_context_batches(ctx), t.used);
    sp_context_free(ctx);
    qsort(t.slot, t.cap, sizeof *t.slot, by_word);
    for (size_t i = 0; i < t.used; i++) {
        printf("%lld %s\n", (long long)t.slot[i].count, t.slot[i].word);
        free(t.slot[i].word);
    }
    free(t.slot);
    return 0;
}
