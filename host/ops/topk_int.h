/* topk_int.h — top-k selection of (key, value) rows of a batch.
 *
 * Order. Rows rank by value descending, then by key ascending, then by row index ascending
 * (so the selection is deterministic and the same rows win however ties fall). Values compare
 * as int64 for integer columns (exact past 2^53) and as double for f32/f64, NaN below every
 * number. Keys compare column by column: strings by their bytes (memcmp, a prefix first),
 * integers by value, floats numerically with NaN last. Spark's top(k) takes an Ordering; this
 * is the ordering Ordering.by((k, v) => (v, -k)) would give, written out. */
#ifndef SPATE_TOPK_INT_H
#define SPATE_TOPK_INT_H

#include "batch/batch_int.h"

/** The min(k, n) best rows among candidates, best first, into out (room for k). Candidates
 *  are rows[0..n) when rows != NULL, else the rows [first, first + n) of b. nkey key columns
 *  start at column 0; vcol is the value column (numeric). O(n log k) time, O(k) extra memory
 *  (a heap in out). Returns the number written. */
size_t topk_select(const sp_batch *b, int nkey, int vcol, size_t k, const size_t *rows,
                   size_t first, size_t n, size_t *out);

/** < 0 when row i ranks before row j, > 0 after, 0 only when i == j. */
int topk_cmp(const sp_batch *b, int nkey, int vcol, size_t i, size_t j);

#endif
