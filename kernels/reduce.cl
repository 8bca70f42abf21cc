/* reduce.cl — keyed (dense ids) and whole-column aggregation. OpenCL C 1.2; common.h is
 * prepended by the host, which defines SP_STRATEGY_CPU or SP_STRATEGY_GPU.
 *
 * Kernel families (T: value type i32 i64 f32 f64 u8(bool); O: sum mn mx avg (min/max are
 * OpenCL macros, so they cannot be pasted into names); ts uses i64;
 * accumulators are long for integer sum/min/max and double for floats and avg):
 *   kr_part_T_O / kr_part_cnt    dense partials. CPU: gws = P, lws = 1; work-item p owns one
 *                                contiguous chunk and the private slots accp/cntp[p*stride ..
 *                                +K) (stride a multiple of 8 elements: 64-byte aligned).
 *   kr_lpart_T_O / kr_lpart_cnt  GPU only, and only where 64-bit atomics are reported:
 *                                gws = P*lws; group g reduces a contiguous tile with coalesced
 *                                loads into local partials (K slots of acc and cnt), then writes
 *                                them to accp/cntp[g*stride ..).
 *   kr_merge_A_O / kr_merge_cnt  A = l (long) or d (double); work-item k merges slot k of the P
 *                                partials; any lws; gws >= K.
 *   kr_rhist, kr_rscan, kr_rscatter_T, kr_ragg_T_O / kr_ragg_cnt
 *                                large-K radix path: per-chunk histograms of <= KR_MAX_BUCKETS
 *                                buckets (bucket = key >> shift), an exclusive scan over (bucket,
 *                                chunk), a scatter into bucket order, then one work-item per
 *                                bucket aggregating into its own keys [b<<shift, (b+1)<<shift).
 *                                CPU: rhist/rscatter gws = P, lws = 1 (one chunk each);
 *                                GPU: gws = P*lws, one tile per group, local counters
 *                                (32-bit local atomics, core in 1.2). rscan: gws = 1.
 *   kr_all_T_O                   whole column into part[p*8] (64-byte strides). CPU: gws = P,
 *                                lws = 1; GPU: gws = P*lws, lws a power of two, local tree.
 * Keys >= K are skipped everywhere. Integer sums wrap (two's complement), as the reference. */

/* Radix buckets at most (the host's KR_RADIX_BITS): few enough that a chunk's write streams
 * (pk and pv per bucket) stay in cache. */
#define KR_MAX_BUCKETS 256

#define KR_SUM_L(a, v) (a) = (long)((ulong)(a) + (ulong)(v))
#define KR_SUM_D(a, v) (a) += (v)
#define KR_MIN(a, v) (a) = ((v) < (a) ? (v) : (a))
#define KR_MAX(a, v) (a) = ((v) > (a) ? (v) : (a))

/* ------------------------------------------------------------------------------- merges */

#define KR_MERGE(A, O, ACC, OPM, IDENT)                                                      \
    __kernel void kr_merge_##A##_##O(__global const ACC *accp, __global const long *cntp,    \
                                     ulong stride, uint P, uint K, __global ACC *acc,        \
                                     __global long *cnt)                                     \
    {                                                                                        \
        size_t k = get_global_id(0);                                                         \
        if (k >= K)                                                                          \
            return;                                                                          \
        ACC a = IDENT;                                                                       \
        long c = 0;                                                                          \
        for (uint p = 0; p < P; p++) {                                                       \
            long cp = cntp[p * stride + k];                                                  \
            if (cp != 0) {                                                                   \
                ACC v = accp[p * stride + k];                                                \
                OPM(a, v);                                                                   \
                c += cp;                                                                     \
            }                                                                                \
        }                                                                                    \
        acc[k] = a;                                                                          \
        cnt[k] = c;                                                                          \
    }

__kernel void kr_merge_cnt(__global const long *accp, __global const long *cntp, ulong stride,
                           uint P, uint K, __global long *acc, __global long *cnt)
{
    size_t k = get_global_id(0);
    if (k >= K)
        return;
    long c = 0;
    for (uint p = 0; p < P; p++)
        c += cntp[p * stride + k];
    cnt[k] = c;
}

KR_MERGE(l, sum, long, KR_SUM_L, 0L)
KR_MERGE(l, mn, long, KR_MIN, LONG_MAX)
KR_MERGE(l, mx, long, KR_MAX, LONG_MIN)
#ifdef SP_HAVE_FP64
KR_MERGE(d, sum, double, KR_SUM_D, 0.0)
KR_MERGE(d, mn, double, KR_MIN, INFINITY)
KR_MERGE(d, mx, double, KR_MAX, -INFINITY)
#endif

/* ------------------------------------------------------------------- radix: scan, agg */

/* One work-item. hist[p*Bs + b] (count of bucket b in chunk p) becomes the first position of
 * chunk p's records of bucket b; bstart[b] the first position of bucket b, bstart[B] the
 * total. Cost O(B*P), tiny next to the data. */
__kernel void kr_rscan(__global ulong *hist, uint B, ulong Bs, uint P, __global ulong *bstart)
{
    if (get_global_id(0) != 0)
        return;
    ulong s = 0;
    for (uint b = 0; b < B; b++) {
        bstart[b] = s;
        for (uint p = 0; p < P; p++) {
            ulong c = hist[p * Bs + b];
            hist[p * Bs + b] = s;
            s += c;
        }
    }
    bstart[B] = s;
}

#define KR_RAGG(T, VT, O, ACC, OPM, IDENT)                                                   \
    __kernel void kr_ragg_##T##_##O(__global const uint *pk, __global const VT *pv,          \
                                    __global const ulong *bstart, uint B, uint shift,        \
                                    uint K, __global ACC *acc, __global long *cnt)           \
    {                                                                                        \
        size_t b = get_global_id(0);                                                         \
        if (b >= B)                                                                          \
            return;                                                                          \
        ulong lo = (ulong)b << shift;                                                        \
        ulong hi = min((ulong)K, lo + ((ulong)1 << shift));                                  \
        for (ulong k = lo; k < hi; k++) {                                                    \
            acc[k] = IDENT;                                                                  \
            cnt[k] = 0;                                                                      \
        }                                                                                    \
        ulong e = bstart[b + 1];                                                             \
        for (ulong j = bstart[b]; j < e; j++) {                                              \
            uint k = pk[j];                                                                  \
            ACC v = (ACC)pv[j];                                                              \
            OPM(acc[k], v);                                                                  \
            cnt[k]++;                                                                        \
        }                                                                                    \
    }

__kernel void kr_ragg_cnt(__global const uint *pk, __global const uchar *pv,
                          __global const ulong *bstart, uint B, uint shift, uint K,
                          __global long *acc, __global long *cnt)
{
    size_t b = get_global_id(0);
    if (b >= B)
        return;
    ulong lo = (ulong)b << shift;
    ulong hi = min((ulong)K, lo + ((ulong)1 << shift));
    for (ulong k = lo; k < hi; k++)
        cnt[k] = 0;
    ulong e = bstart[b + 1];
    for (ulong j = bstart[b]; j < e; j++)
        cnt[pk[j]]++;
}

/* ============================================================================ CPU shape */
#ifdef SP_STRATEGY_CPU

#define KR_PART(T, VT, O, ACC, OPM, IDENT)                                                   \
    __kernel void kr_part_##T##_##O(__global const uint *keys, __global const VT *vals,      \
                                    ulong n, uint K, ulong stride, uint P,                   \
                                    __global ACC *accp, __global long *cntp)                 \
    {                                                                                        \
        size_t p = get_global_id(0);                                                         \
        if (p >= P)                                                                          \
            return;                                                                          \
        __global ACC *a = accp + p * stride;                                                 \
        __global long *c = cntp + p * stride;                                                \
        for (uint k = 0; k < K; k++) {                                                       \
            a[k] = IDENT;                                                                    \
            c[k] = 0;                                                                        \
        }                                                                                    \
        ulong b, e;                                                                          \
        sp_chunk(n, p, P, &b, &e);                                                           \
        for (ulong i = b; i < e; i++) {                                                      \
            uint k = keys[i];                                                                \
            if (k < K) {                                                                     \
                ACC v = (ACC)vals[i];                                                        \
                OPM(a[k], v);                                                                \
                c[k]++;                                                                      \
            }                                                                                \
        }                                                                                    \
    }

__kernel void kr_part_cnt(__global const uint *keys, __global const uchar *vals, ulong n, uint K,
                          ulong stride, uint P, __global long *accp, __global long *cntp)
{
    size_t p = get_global_id(0);
    if (p >= P)
        return;
    __global long *c = cntp + p * stride;
    for (uint k = 0; k < K; k++)
        c[k] = 0;
    ulong b, e;
    sp_chunk(n, p, P, &b, &e);
    for (ulong i = b; i < e; i++) {
        uint k = keys[i];
        if (k < K)
            c[k]++;
    }
}

__kernel void kr_rhist(__global const uint *keys, ulong n, uint K, uint shift, uint B, ulong Bs,
                       uint P, __global ulong *hist)
{
    size_t p = get_global_id(0);
    if (p >= P)
        return;
    __global ulong *h = hist + p * Bs;
    for (uint b = 0; b < B; b++)
        h[b] = 0;
    ulong lo, hi;
    sp_chunk(n, p, P, &lo, &hi);
    for (ulong i = lo; i < hi; i++) {
        uint k = keys[i];
        if (k < K)
            h[k >> shift]++;
    }
}

/* hist holds the scanned start positions of work-item p's records per bucket; the cursors
 * live in a private array (B <= KR_MAX_BUCKETS), which the compiler keeps apart from the
 * scattered stores. */
#define KR_RSCATTER(T, VT)                                                                   \
    __kernel void kr_rscatter_##T(__global const uint *keys, __global const VT *vals,        \
                                  uint withv, ulong n, uint K, uint shift, ulong Bs, uint P, \
                                  __global ulong *hist, __global uint *pk, __global VT *pv)  \
    {                                                                                        \
        size_t p = get_global_id(0);                                                         \
        if (p >= P)                                                                          \
            return;                                                                          \
        ulong cur[KR_MAX_BUCKETS];                                                           \
        uint B = (uint)min(Bs, (ulong)KR_MAX_BUCKETS);                                       \
        for (uint b = 0; b < B; b++)                                                         \
            cur[b] = hist[p * Bs + b];                                                       \
        ulong lo, hi;                                                                        \
        sp_chunk(n, p, P, &lo, &hi);                                                         \
        for (ulong i = lo; i < hi; i++) {                                                    \
            uint k = keys[i];                                                                \
            if (k < K) {                                                                     \
                ulong pos = cur[k >> shift]++;                                               \
                pk[pos] = k;                                                                 \
                if (withv)                                                                   \
                    pv[pos] = vals[i];                                                       \
            }                                                                                \
        }                                                                                    \
    }

#define KR_ALL(T, VT, O, ACC, OPM, IDENT)                                                    \
    __kernel void kr_all_##T##_##O(__global const VT *vals, ulong n, uint P,                 \
                                   __global ACC *part)                                       \
    {                                                                                        \
        size_t p = get_global_id(0);                                                         \
        if (p >= P)                                                                          \
            return;                                                                          \
        ulong lo, hi;                                                                        \
        sp_chunk(n, p, P, &lo, &hi);                                                         \
        ACC a = IDENT;                                                                       \
        for (ulong i = lo; i < hi; i++) {                                                    \
            ACC v = (ACC)vals[i];                                                            \
            OPM(a, v);                                                                       \
        }                                                                                    \
        part[p * 8] = a;                                                                     \
    }

#define KR_LPART(T, VT, O, ACC, OPM, IDENT, LATOP)

#endif /* SP_STRATEGY_CPU */

/* ============================================================================ GPU shape */
#ifdef SP_STRATEGY_GPU

#if defined(cl_khr_int64_base_atomics) && defined(cl_khr_int64_extended_atomics)
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
#pragma OPENCL EXTENSION cl_khr_int64_extended_atomics : enable
#define KR_HAVE_LATOMIC64 1
#endif

#ifdef KR_HAVE_LATOMIC64
#define KR_LAT_SUM_L(p, v) atom_add((volatile __local long *)(p), (v))
#define KR_LAT_MIN_L(p, v) atom_min((volatile __local long *)(p), (v))
#define KR_LAT_MAX_L(p, v) atom_max((volatile __local long *)(p), (v))

#ifdef SP_HAVE_FP64
/* double updates through 64-bit compare-and-swap on the bit pattern. */
inline void kr_lat_sum_d(__local double *p, double v)
{
    volatile __local long *q = (volatile __local long *)p;
    long old = *q;
    for (;;) {
        long got = atom_cmpxchg(q, old, as_long(as_double(old) + v));
        if (got == old)
            break;
        old = got;
    }
}

inline void kr_lat_min_d(__local double *p, double v)
{
    volatile __local long *q = (volatile __local long *)p;
    long old = *q;
    while (v < as_double(old)) {
        long got = atom_cmpxchg(q, old, as_long(v));
        if (got == old)
            break;
        old = got;
    }
}

inline void kr_lat_max_d(__local double *p, double v)
{
    volatile __local long *q = (volatile __local long *)p;
    long old = *q;
    while (v > as_double(old)) {
        long got = atom_cmpxchg(q, old, as_long(v));
        if (got == old)
            break;
        old = got;
    }
}
#define KR_LAT_SUM_D(p, v) kr_lat_sum_d((p), (v))
#define KR_LAT_MIN_D(p, v) kr_lat_min_d((p), (v))
#define KR_LAT_MAX_D(p, v) kr_lat_max_d((p), (v))
#endif

/* Local partials need K*(8+8) bytes of local memory (the host checks). */
#define KR_LPART(T, VT, O, ACC, OPM, IDENT, LATOP)                                           \
    __kernel void kr_lpart_##T##_##O(__global const uint *keys, __global const VT *vals,     \
                                     ulong n, uint K, ulong stride, uint P,                  \
                                     __global ACC *accp, __global long *cntp,                \
                                     __local ACC *la, __local long *lc)                      \
    {                                                                                        \
        uint lid = get_local_id(0), lws = get_local_size(0);                                 \
        uint g = get_group_id(0);                                                            \
        for (uint k = lid; k < K; k += lws) {                                                \
            la[k] = IDENT;                                                                   \
            lc[k] = 0;                                                                       \
        }                                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
        ulong lo, hi;                                                                        \
        sp_chunk(n, g, P, &lo, &hi);                                                         \
        for (ulong i = lo + lid; i < hi; i += lws) {                                         \
            uint k = keys[i];                                                                \
            if (k < K) {                                                                     \
                LATOP(&la[k], (ACC)vals[i]);                                                 \
                atom_inc((volatile __local long *)&lc[k]);                                   \
            }                                                                                \
        }                                                                                    \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
        for (uint k = lid; k < K; k += lws) {                                                \
            accp[g * stride + k] = la[k];                                                    \
            cntp[g * stride + k] = lc[k];                                                    \
        }                                                                                    \
    }

__kernel void kr_lpart_cnt(__global const uint *keys, __global const uchar *vals, ulong n, uint K,
                           ulong stride, uint P, __global long *accp, __global long *cntp,
                           __local long *la, __local long *lc)
{
    uint lid = get_local_id(0), lws = get_local_size(0);
    uint g = get_group_id(0);
    for (uint k = lid; k < K; k += lws)
        lc[k] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    ulong lo, hi;
    sp_chunk(n, g, P, &lo, &hi);
    for (ulong i = lo + lid; i < hi; i += lws) {
        uint k = keys[i];
        if (k < K)
            atom_inc((volatile __local long *)&lc[k]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint k = lid; k < K; k += lws)
        cntp[g * stride + k] = lc[k];
}
#else
#define KR_LPART(T, VT, O, ACC, OPM, IDENT, LATOP)
#endif /* KR_HAVE_LATOMIC64 */

/* Group g counts its tile into local lh[B] (B*4 bytes of local memory). */
__kernel void kr_rhist(__global const uint *keys, ulong n, uint K, uint shift, uint B, ulong Bs,
                       uint P, __global ulong *hist, __local uint *lh)
{
    uint lid = get_local_id(0), lws = get_local_size(0);
    uint g = get_group_id(0);
    for (uint b = lid; b < B; b += lws)
        lh[b] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    ulong lo, hi;
    sp_chunk(n, g, P, &lo, &hi);
    for (ulong i = lo + lid; i < hi; i += lws) {
        uint k = keys[i];
        if (k < K)
            atomic_inc(&lh[k >> shift]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint b = lid; b < B; b += lws)
        hist[g * Bs + b] = lh[b];
}

/* Positions within a (bucket, group) cell come from a local counter: the order inside a cell
 * is unspecified (aggregation does not depend on it beyond float rounding). */
#define KR_RSCATTER(T, VT)                                                                   \
    __kernel void kr_rscatter_##T(__global const uint *keys, __global const VT *vals,        \
                                  uint withv, ulong n, uint K, uint shift, ulong Bs, uint P, \
                                  __global ulong *hist, __global uint *pk, __global VT *pv,  \
                                  __local uint *lc)                                          \
    {                                                                                        \
        uint lid = get_local_id(0), lws = get_local_size(0);                                 \
        uint g = get_group_id(0);                                                            \
        for (ulong b = lid; b < Bs; b += lws)                                                \
            lc[b] = 0;                                                                       \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
        ulong lo, hi;                                                                        \
        sp_chunk(n, g, P, &lo, &hi);                                                         \
        for (ulong i = lo + lid; i < hi; i += lws) {                                         \
            uint k = keys[i];                                                                \
            if (k < K) {                                                                     \
                uint bk = k >> shift;                                                        \
                ulong pos = hist[g * Bs + bk] + atomic_inc(&lc[bk]);                         \
                pk[pos] = k;                                                                 \
                if (withv)                                                                   \
                    pv[pos] = vals[i];                                                       \
            }                                                                                \
        }                                                                                    \
    }

#define KR_ALL(T, VT, O, ACC, OPM, IDENT)                                                    \
    __kernel void kr_all_##T##_##O(__global const VT *vals, ulong n, uint P,                 \
                                   __global ACC *part, __local ACC *ls)                      \
    {                                                                                        \
        uint lid = get_local_id(0), lws = get_local_size(0);                                 \
        uint g = get_group_id(0);                                                            \
        ulong lo, hi;                                                                        \
        sp_chunk(n, g, P, &lo, &hi);                                                         \
        ACC a = IDENT;                                                                       \
        for (ulong i = lo + lid; i < hi; i += lws) {                                         \
            ACC v = (ACC)vals[i];                                                            \
            OPM(a, v);                                                                       \
        }                                                                                    \
        ls[lid] = a;                                                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                                        \
        for (uint s = lws / 2; s > 0; s >>= 1) {                                             \
            if (lid < s) {                                                                   \
                ACC v = ls[lid + s];                                                         \
                ACC w = ls[lid];                                                             \
                OPM(w, v);                                                                   \
                ls[lid] = w;                                                                 \
            }                                                                                \
            barrier(CLK_LOCAL_MEM_FENCE);                                                    \
        }                                                                                    \
        if (lid == 0)                                                                        \
            part[g * 8] = ls[0];                                                             \
    }

#define KR_PART(T, VT, O, ACC, OPM, IDENT)

#endif /* SP_STRATEGY_GPU */

/* ------------------------------------------------------------------------ instantiation */

#define KR_FAMILY(T, VT, O, ACC, OPM, IDENT, LATOP)                                          \
    KR_PART(T, VT, O, ACC, OPM, IDENT)                                                       \
    KR_LPART(T, VT, O, ACC, OPM, IDENT, LATOP)                                               \
    KR_RAGG(T, VT, O, ACC, OPM, IDENT)                                                       \
    KR_ALL(T, VT, O, ACC, OPM, IDENT)

#ifdef SP_HAVE_FP64
#define KR_INT_AVG(T, VT) KR_FAMILY(T, VT, avg, double, KR_SUM_D, 0.0, KR_LAT_SUM_D)
#define KR_FLOAT_TYPE(T, VT)                                                                 \
    KR_RSCATTER(T, VT)                                                                       \
    KR_FAMILY(T, VT, sum, double, KR_SUM_D, 0.0, KR_LAT_SUM_D)                               \
    KR_FAMILY(T, VT, mn, double, KR_MIN, INFINITY, KR_LAT_MIN_D)                            \
    KR_FAMILY(T, VT, mx, double, KR_MAX, -INFINITY, KR_LAT_MAX_D)
#else
/* Without fp64 the host takes its reference path for float values and avg. */
#define KR_INT_AVG(T, VT)
#define KR_FLOAT_TYPE(T, VT)
#endif

#define KR_INT_TYPE(T, VT)                                                                   \
    KR_RSCATTER(T, VT)                                                                       \
    KR_FAMILY(T, VT, sum, long, KR_SUM_L, 0L, KR_LAT_SUM_L)                                  \
    KR_FAMILY(T, VT, mn, long, KR_MIN, LONG_MAX, KR_LAT_MIN_L)                              \
    KR_FAMILY(T, VT, mx, long, KR_MAX, LONG_MIN, KR_LAT_MAX_L)                              \
    KR_INT_AVG(T, VT)

KR_INT_TYPE(i32, int)
KR_INT_TYPE(i64, long)
KR_INT_TYPE(u8, uchar)
KR_FLOAT_TYPE(f32, float)
KR_FLOAT_TYPE(f64, double)
