/* lpanes_int.h — sliding-window panes for reduce lambdas without an inverse, on the host:
 * reduceByKeyAndWindow(f, W, S) where f is not a built-in monoid (a * b, tuple-valued
 * reductions, strings) and reduceByWindow(f, W, S) (one key, id 0).
 *
 * Each pane (a stretch of gcd(W, S) of the input) is a sparse list of (key id, partial)
 * sorted by key id: the batch's values of each key folded with f left to right in arrival
 * order (Spark's per-batch reduceByKey), then the pane's batches combined in time order.
 * The window is a two-stacks queue of panes: the front stack gives each of its panes F_i =
 * P_i f P_i+1 f ... f P_m (built newest first when the front runs empty: a flip), the back
 * stack is one list B = P_m+1 f ... f P_hi built as panes enter, and the window is F_lo f B.
 * Every combination is a merge of two id-sorted lists that calls f once per key present in
 * both, so one slide costs O(1) amortised list merges of O(live keys) each, whatever W/S
 * is (at most three per slide: B with the entering pane, the result, and one flip entry
 * amortised), plus O(rows) for the entering rows (a radix sort by key id).
 *
 * Results equal the left fold of the window's values in time order whenever f is
 * associative, which Spark requires of reduce functions (Spark itself combines per-batch
 * partials in partition order). Floating-point values may round differently from a single
 * left fold, as Spark's results do across partitionings.
 *
 * Memory: the retained panes' entries plus one front list per front pane and B, each at most
 * the live keys: O(panes in window x live keys). A list owns the nested memory of its values
 * (tuples, options, lists, strings not in the dictionary); a pane and its F are freed when the
 * pane leaves, so keys that left every pane hold nothing. */
#ifndef SPATE_LPANES_INT_H
#define SPATE_LPANES_INT_H

#include "ops/expr_int.h"

typedef struct lpanes lpanes;

/** f: a two-parameter typed lambda (V, V) => V; it must outlive the panes. */
int lpanes_new(const sp_allocator *a, const expr_typed *f, lpanes **out, sp_diag *d);
void lpanes_free(lpanes *p);

/** Folds n rows (key ids, values in arrival order) into the open pane: per key, the rows'
 *  values left to right with f, then open = open f that. The values are copied; they may
 *  live in the caller's scratch. Runtime errors of f → SP_ERUNTIME. */
int lpanes_add(lpanes *p, const uint32_t *ids, const expr_val *vals, size_t n, sp_diag *d);
/** Closes the open pane as pane number `index` (increasing; an empty pane is fine). */
int lpanes_close(lpanes *p, int64_t index, sp_diag *d);
/** The window becomes panes [lo, hi): panes below lo leave (or are dropped unseen), closed
 *  panes in [lo, hi) enter. */
int lpanes_slide(lpanes *p, int64_t lo, int64_t hi, sp_diag *d);

/** The window after the last slide, sorted by key id; valid until the next lpanes_* call. */
typedef struct lpanes_view {
    size_t n;
    const uint32_t *ids;
    const expr_val *vals;
} lpanes_view;
void lpanes_view_get(const lpanes *p, lpanes_view *v);

/** Counters (tests, memory reports). merges: list merges combining panes or aggregates
 *  (flip entries, entering panes, results); calls: evaluations of f in those merges;
 *  entries: (key, value) entries held now by retained panes and aggregates. */
typedef struct lpanes_stats {
    uint64_t merges, calls;
    size_t panes, entries;
} lpanes_stats;
void lpanes_stats_get(const lpanes *p, lpanes_stats *st);

/** Calls mark(ud, id) for every key id the panes keep past a batch time (the open pane,
 *  retained panes, their front aggregates, the back aggregate and the view) and dict_marks the
 *  dictionary strings inside their values: for a reclaim cycle. mark NULL: keys are not ids
 *  (reduceByWindow). */
void lpanes_mark(const lpanes *p, void (*mark)(void *ud, uint32_t id), void *ud, sp_dict *dict);

#endif
