/* statefix.h — updateStateByKey callbacks shared by job tests. Header-only. */
#ifndef SPATE_STATEFIX_H
#define SPATE_STATEFIX_H

#include "spate.h"

/** Running sum of a key's (i64) values; a key whose sum passes *(const int64_t *)ud is
 *  removed (and starts again from nothing if it comes back). */
static inline int state_sum_upto(void *ud, int64_t t, const sp_row *key,
                                 const sp_row *const *values, size_t nv, const sp_row *state,
                                 sp_emitter *out)
{
    (void)t;
    (void)key;
    int64_t s = state ? sp_row_i64(state, 0) : 0;
    for (size_t i = 0; i < nv; i++)
        s += sp_row_i64(values[i], 0);
    if (s > *(const int64_t *)ud) return 0;
    return sp_emit_i64(out, s) || sp_emit_end(out);
}

#endif
