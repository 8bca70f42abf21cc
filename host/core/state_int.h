/* state_int.h — between updateStateByKey's driver (state.c: the cogroup of the previous state
 * with the batch, the whole state emitted every batch) and its lambda form (state_expr.c:
 * a host evaluator of the lambda, and the numeric kernel path). */
#ifndef SPATE_STATE_INT_H
#define SPATE_STATE_INT_H

#include "core/core_int.h"

typedef struct stx stx;

/* state.c */
/** Gives the lambda x to the updateStateByKey node o (made by sp_stream_update_state_by_key
 *  with stx_host_update and x): o frees it; its kernel path is taken when stx_kernel(x). */
void state_attach_expr(sp_stream *o, stx *x);

/* state_expr.c */
/** sp_update_fn evaluating the lambda on the host for one key (ud: the stx). */
int stx_host_update(void *ud, int64_t time_ms, const sp_row *key, const sp_row *const *values,
                    size_t nvalues, const sp_row *state, sp_emitter *out);
/** The host evaluator's runtime failure, copied into d (returns its code), or SP_OK. */
int stx_error(const stx *x, sp_diag *d);
/** 1 when the lambda has the numeric shape the kernel path runs. */
int stx_kernel(const stx *x);
/** The kernel path for one batch time: prev (the previous state, NULL or n0 rows whose key ids
 *  are pids) and b (the parent's batch, key ids bids) give *out, the new state (K, S). */
int stx_run(sp_stream *s, stx *x, int64_t t, const sp_batch *prev, const uint32_t *pids,
            const sp_batch *b, const uint32_t *bids, sp_batch **out, sp_diag *d);
/** Which path runs; builds the kernel's stage when the context has started (explain runs
 *  after the start), so the generated OpenCL source is shown. */
void stx_explain(stx *x, int id, strbuf *sb);
void stx_free(stx *x);

#endif
