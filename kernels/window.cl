/* window.cl — sliding-window panes: dense per-slot window arrays updated from sparse panes.
 * OpenCL C 1.2; common.h is prepended by the host (SP_STRATEGY_CPU or SP_STRATEGY_GPU).
 *
 * A pane is sparse: m distinct slots with their partial aggregate pacc[j] (A: l = long,
 * d = double) and record count pcnt[j]. Window arrays are dense over slots: acc[s], cnt[s].
 * Slots within one pane are distinct, so a scatter of one pane writes each slot at most once:
 * no atomics anywhere. Absent slots hold the identity (0, LONG_MAX/+inf, LONG_MIN/-inf) and a
 * count of 0, so combining never needs a presence branch.
 *
 * Kernels (O: sum mn mx; every kernel takes its element count and ignores items past it):
 *   wp_fill_A            acc[lo..lo+n) = ident, cnt = 0
 *   wp_copy_A            dst[0..n) = src[0..n) (acc and cnt)
 *   wp_scatter_A_O       acc[s] = acc[s] O pacc[j]; cnt[s] += pcnt[j]        (pane enters)
 *   wp_unscatter_A       acc[s] -= pacc[j]; cnt[s] -= pcnt[j]; cnt 0 resets acc to 0
 *   wp_inv_leave_A       Spark's inverse path: acc[s] -= pacc[j] where cnt[s] != 0 (the key
 *                        had a value in the previous window; cnt is the liveness flag there)
 *   wp_inv_enter_A       acc[s] += pacc[j]; cnt[s] = 1
 *   wp_comb_A_O          out[k] = a[k] O b[k], counts added (dense, n slots)
 *   wp_reset_A           acc[slots[j]] = ident, cnt = 0 (keys removed from the window)
 * Shapes: CPU — gws = P chunks, lws = 1, work-item p takes one contiguous chunk (sp_chunk);
 * GPU — any gws/lws, work-item i takes i, i + gws, ... (coalesced). Integer sums wrap. */

#ifdef SP_STRATEGY_CPU
#define WP_FOR(j, n)                                                                         \
    ulong lo_, hi_;                                                                          \
    sp_chunk((n), get_global_id(0), get_global_size(0), &lo_, &hi_);                         \
    for (ulong j = lo_; j < hi_; j++)
#else
#define WP_FOR(j, n) for (ulong j = get_global_id(0); j < (n); j += get_global_size(0))
#endif

#define WP_SUM_L(a, v) (a) = (long)((ulong)(a) + (ulong)(v))
#define WP_SUB_L(a, v) (a) = (long)((ulong)(a) - (ulong)(v))
#define WP_SUM_D(a, v) (a) += (v)
#define WP_SUB_D(a, v) (a) -= (v)
#define WP_MIN(a, v) (a) = ((v) < (a) ? (v) : (a))
#define WP_MAX(a, v) (a) = ((v) > (a) ? (v) : (a))

#define WP_BASIC(A, ACC, ADD, SUB)                                                           \
    __kernel void wp_fill_##A(__global ACC *acc, __global long *cnt, ulong lo, ulong n,      \
                              ACC ident)                                                     \
    {                                                                                        \
        WP_FOR(j, n)                                                                         \
        {                                                                                    \
            acc[lo + j] = ident;                                                             \
            cnt[lo + j] = 0;                                                                 \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_copy_##A(__global ACC *dacc, __global long *dcnt,                       \
                              __global const ACC *sacc, __global const long *scnt, ulong n)  \
    {                                                                                        \
        WP_FOR(j, n)                                                                         \
        {                                                                                    \
            dacc[j] = sacc[j];                                                               \
            dcnt[j] = scnt[j];                                                               \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_unscatter_##A(__global ACC *acc, __global long *cnt,                    \
                                   __global const uint *slots, __global const ACC *pacc,     \
                                   __global const long *pcnt, ulong m)                       \
    {                                                                                        \
        WP_FOR(j, m)                                                                         \
        {                                                                                    \
            uint s = slots[j];                                                               \
            long c = cnt[s] - pcnt[j];                                                       \
            cnt[s] = c;                                                                      \
            if (c == 0)                                                                      \
                acc[s] = 0;                                                                  \
            else                                                                             \
                SUB(acc[s], pacc[j]);                                                        \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_inv_leave_##A(__global ACC *acc, __global const long *live,             \
                                   __global const uint *slots, __global const ACC *pacc,     \
                                   ulong m)                                                  \
    {                                                                                        \
        WP_FOR(j, m)                                                                         \
        {                                                                                    \
            uint s = slots[j];                                                               \
            if (live[s] != 0)                                                                \
                SUB(acc[s], pacc[j]);                                                        \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_inv_enter_##A(__global ACC *acc, __global long *live,                   \
                                   __global const uint *slots, __global const ACC *pacc,     \
                                   ulong m)                                                  \
    {                                                                                        \
        WP_FOR(j, m)                                                                         \
        {                                                                                    \
            uint s = slots[j];                                                               \
            ADD(acc[s], pacc[j]);                                                            \
            live[s] = 1;                                                                     \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_reset_##A(__global ACC *acc, __global long *cnt,                        \
                               __global const uint *slots, ulong m, ACC ident)               \
    {                                                                                        \
        WP_FOR(j, m)                                                                         \
        {                                                                                    \
            uint s = slots[j];                                                               \
            acc[s] = ident;                                                                  \
            cnt[s] = 0;                                                                      \
        }                                                                                    \
    }

#define WP_OPS(A, O, ACC, OPM)                                                               \
    __kernel void wp_scatter_##A##_##O(__global ACC *acc, __global long *cnt,                \
                                       __global const uint *slots,                           \
                                       __global const ACC *pacc,                             \
                                       __global const long *pcnt, ulong m)                   \
    {                                                                                        \
        WP_FOR(j, m)                                                                         \
        {                                                                                    \
            uint s = slots[j];                                                               \
            OPM(acc[s], pacc[j]);                                                            \
            cnt[s] += pcnt[j];                                                               \
        }                                                                                    \
    }                                                                                        \
    __kernel void wp_comb_##A##_##O(__global ACC *oacc, __global long *ocnt,                 \
                                    __global const ACC *aacc, __global const long *acnt,     \
                                    __global const ACC *bacc, __global const long *bcnt,     \
                                    ulong n)                                                 \
    {                                                                                        \
        WP_FOR(k, n)                                                                         \
        {                                                                                    \
            ACC a = aacc[k];                                                                 \
            OPM(a, bacc[k]);                                                                 \
            oacc[k] = a;                                                                     \
            ocnt[k] = acnt[k] + bcnt[k];                                                     \
        }                                                                                    \
    }

WP_BASIC(l, long, WP_SUM_L, WP_SUB_L)
WP_OPS(l, sum, long, WP_SUM_L)
WP_OPS(l, mn, long, WP_MIN)
WP_OPS(l, mx, long, WP_MAX)
#ifdef SP_HAVE_FP64
WP_BASIC(d, double, WP_SUM_D, WP_SUB_D)
WP_OPS(d, sum, double, WP_SUM_D)
WP_OPS(d, mn, double, WP_MIN)
WP_OPS(d, mx, double, WP_MAX)
#endif
