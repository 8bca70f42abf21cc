/* collect.h — a foreachRDD collector for job tests: each batch becomes one comparable line.
 * Header-only, like jobfix.h, which it builds on. */
#ifndef SPATE_COLLECT_H
#define SPATE_COLLECT_H

#include "support/jobfix.h"

#include <stdlib.h>

/** Every batch a foreachRDD saw, as one line "T:row|row|..." in toString form; rows sorted
 *  when `sorted` is set (Spark's per-batch order depends on partitioning; the set of rows is
 *  what must match). Allocate it with calloc: it is large. */
enum { COLLECT_BATCHES = 64, COLLECT_LINE = 8192 };
typedef struct collect {
    char lines[COLLECT_BATCHES][COLLECT_LINE];
    int n;
    int sorted;
} collect;

/** foreachRDD callback filling a collect (ud). Fails the job when the collect is full or a
 *  line would be cut. */
static inline int on_batch(void *ud, const sp_batch *b)
{
    collect *c = ud;
    if (c->n >= COLLECT_BATCHES) return -1;
    size_t n = sp_batch_count(b);
    char **rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) return -1;
    for (size_t i = 0; i < n; i++) {
        int len = sp_batch_format(b, i, NULL, 0);
        rows[i] = malloc((size_t)len + 1);
        sp_batch_format(b, i, rows[i], (size_t)len + 1);
    }
    if (c->sorted) qsort(rows, n, sizeof *rows, cmp_str);
    char *line = c->lines[c->n++];
    int off = snprintf(line, COLLECT_LINE, "%lld:", (long long)sp_batch_time(b));
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rc) {
            off +=
                snprintf(line + off, (size_t)(COLLECT_LINE - off), "%s%s", i ? "|" : "", rows[i]);
            if (off >= COLLECT_LINE) rc = -1;
        }
        free(rows[i]);
    }
    free(rows);
    return rc;
}

#endif
