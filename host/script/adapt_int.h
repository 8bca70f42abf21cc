/* adapt_int.h — host adapters: C callbacks of the public API (sp_flatmap_fn, sp_transform_fn)
 * that run script lambdas with the host expression evaluator.
 *
 * Each adapter is one allocation owned by the script (adapt_free); the callbacks may run on
 * several executor threads at once: per-call scratch memory comes from a small lock-free pool
 * of evaluation arenas, so a steady state allocates nothing per row. */
#ifndef SPATE_ADAPT_INT_H
#define SPATE_ADAPT_INT_H

#include "batch/batch_int.h"
#include "ops/expr_int.h"

typedef struct adapter adapter;

typedef enum adapt_kind {
    AD_FLAT_MAP,        /* x => Seq[T] (or Option[T]) */
    AD_FLAT_MAP_VALUES, /* v => Seq[U] on (K,V) */
    AD_SORT,            /* sortByKey(asc) / sortBy(f, asc) */
    AD_TAKE,            /* take(n) */
    AD_UPDATE           /* updateStateByKey */
} adapt_kind;

/** A flatMap / flatMapValues adapter for lambda `body` over elements (or values) of type in.
 *  *out_type receives the output element (or value) type text (belongs to the adapter).
 *  Type errors as expr_compile gives them ("L:C: message"). */
int adapt_flat_map_new(const sp_allocator *a, adapt_kind kind, const sp_expr *body, const sp_td *in,
                       adapter **out, const char **out_type, sp_diag *d);
/** sortByKey (key NULL: by the pair's key) or sortBy(f) (f over the element), and take(n):
 *  whole-batch transforms of a flat element type `in`. */
int adapt_batch_new(const sp_allocator *a, adapt_kind kind, const sp_expr *key, int ascending,
                    int64_t n, const sp_td *in, adapter **out, sp_diag *d);
/** updateStateByKey: type-checks f, (values, state) => Option[S] (nparams 2) or (time, key,
 *  values, state) => Option[S] (nparams 4) over keys kt and values vt, for the engine's
 *  sp_stream_update_state_by_key_expr, which evaluates it; S is inferred from f's result
 *  (with state typed Option[nothing] first, then checked with Option[S]); *state_type
 *  receives S's text (belongs to the adapter). */
int adapt_update_new(const sp_allocator *a, const sp_expr *f, int nparams, const sp_td *kt,
                     const sp_td *vt, adapter **out, const char **state_type, sp_diag *d);
int adapt_flat_map_fn(void *ud, const sp_row *in, sp_emitter *out);
int adapt_transform_fn(void *ud, const sp_batch *in, sp_emitter *out);
/** --on-error skip: rows whose lambda fails at run time are written to rejects (may be NULL)
 *  and dropped instead of failing the job. */
/** skip: runtime failures of the lambda route the row to ctx's rejects output instead of
 *  failing the job. */
void adapt_set_skip(adapter *ad, int skip, sp_context *ctx);
/** The first runtime error a callback met ("L:C: message"), or NULL. */
const char *adapt_error(const adapter *ad);
void adapt_free(adapter *ad);

#endif
