/* scan.cl — prefix sums and stream compaction, in three passes over P parts:
 *   1. count:  each part sums its input into totals[part];
 *   2. totals: exclusive scan of totals[0..P) in place, totals[P] = the grand total
 *              (scan_totals on the GPU strategy; the host does it on the CPU strategy);
 *   3. write:  each part scans its input again, starting at totals[part], and writes
 *              (branch-free on the CPU strategy).
 * Parts. SP_STRATEGY_CPU: a part is one work-item's contiguous chunk (sp_chunk over the global
 * size), walked sequentially: no barriers, no atomics. SP_STRATEGY_GPU: a part is one
 * work-group's tile of get_local_size(0) * items elements, read in `items` rounds with
 * coalesced indexing, scanned in local memory.
 * Inputs: u8 flags (compaction: out receives the indices i of non-zero flags, ascending) or
 * u32 counts (exclusive scan into n + 1 u64 offsets).
 * Preconditions. GPU: the local size is a power of two and `tmp` holds one ulong per
 * work-item; scan_totals runs as one work-group. CPU: scan_totals (kept for callers that scan
 * on the device) runs as one work-item.
 * Compaction needs n < 2^32. */

#ifdef SP_STRATEGY_GPU
/* Inclusive scan of v over the work-group (Hillis-Steele, log2(lws) steps). Afterwards
 * tmp[lws-1] holds the group's total until the next call. */
inline ulong sp_wg_scan(__local ulong *tmp, ulong v)
{
    uint l = get_local_id(0), m = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    tmp[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = 1; off < m; off <<= 1) {
        ulong add = l >= off ? tmp[l - off] : 0;
        barrier(CLK_LOCAL_MEM_FENCE);
        tmp[l] += add;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return tmp[l];
}

/* Sum of v over the work-group, returned to every work-item. */
inline ulong sp_wg_sum(__local ulong *tmp, ulong v)
{
    uint l = get_local_id(0), m = get_local_size(0);
    barrier(CLK_LOCAL_MEM_FENCE);
    tmp[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint off = m / 2; off > 0; off >>= 1) {
        if (l < off)
            tmp[l] += tmp[l + off];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return tmp[0];
}
#endif

/* Pass 1 for an input type T whose element contributes VALUE(x). */
#ifdef SP_STRATEGY_CPU
#define SCAN_COUNT(NAME, T, VALUE)                                                             \
    __kernel void NAME(__global const T *in, ulong n, ulong items, __global ulong *totals,     \
                       __local ulong *tmp)                                                     \
    {                                                                                          \
        ulong c = get_global_id(0), b, e, s = 0;                                               \
        sp_chunk(n, c, get_global_size(0), &b, &e);                                            \
        for (ulong i = b; i < e; i++)                                                          \
            s += VALUE(in[i]);                                                                 \
        totals[c] = s;                                                                         \
    }
#else
#define SCAN_COUNT(NAME, T, VALUE)                                                             \
    __kernel void NAME(__global const T *in, ulong n, ulong items, __global ulong *totals,     \
                       __local ulong *tmp)                                                     \
    {                                                                                          \
        ulong m = get_local_size(0), l = get_local_id(0), g = get_group_id(0);                 \
        ulong start = g * m * items, s = 0;                                                    \
        for (ulong r = 0; r < items; r++) {                                                    \
            ulong i = start + r * m + l;                                                       \
            if (i < n)                                                                         \
                s += VALUE(in[i]);                                                             \
        }                                                                                      \
        s = sp_wg_sum(tmp, s);                                                                 \
        if (l == 0)                                                                            \
            totals[g] = s;                                                                     \
    }
#endif

#define SP_FLAG(x) ((x) != 0 ? 1UL : 0UL)
#define SP_COUNT(x) ((ulong)(x))

#ifdef SP_STRATEGY_CPU
/* Flags have their own CPU pass 1: a 32-bit count (a part of a compaction holds fewer than
 * 2^32 flags) lets LLVM vectorise the loop with byte-to-word widening only. */
__kernel void scan_count_flags(__global const uchar *restrict in, ulong n, ulong items,
                               __global ulong *restrict totals, __local ulong *tmp)
{
    ulong c = get_global_id(0), b, e;
    sp_chunk(n, c, get_global_size(0), &b, &e);
    uint s = 0;
    for (ulong i = b; i < e; i++)
        s += in[i] != 0;
    totals[c] = s;
}
#else
SCAN_COUNT(scan_count_flags, uchar, SP_FLAG)
#endif
SCAN_COUNT(scan_count_u32, uint, SP_COUNT)

/* Pass 2: totals[0..P) → exclusive offsets, totals[P] = sum. */
__kernel void scan_totals(__global ulong *totals, ulong nparts, __local ulong *tmp)
{
#ifdef SP_STRATEGY_CPU
    ulong run = 0;
    for (ulong p = 0; p < nparts; p++) {
        ulong v = totals[p];
        totals[p] = run;
        run += v;
    }
    totals[nparts] = run;
#else
    ulong m = get_local_size(0), l = get_local_id(0), carry = 0;
    for (ulong b = 0; b < nparts; b += m) {
        ulong i = b + l;
        ulong v = i < nparts ? totals[i] : 0;
        ulong incl = sp_wg_scan(tmp, v);
        if (i < nparts)
            totals[i] = carry + incl - v;
        carry += tmp[m - 1];
    }
    if (l == 0)
        totals[nparts] = carry;
#endif
}

/* Pass 3, compaction: out[k] = k-th index with a non-zero flag. */
__kernel void scan_write_flags(__global const uchar *restrict flags, ulong n, ulong items,
                               __global const ulong *restrict totals, __global uint *restrict out,
                               __local ulong *tmp)
{
#ifdef SP_STRATEGY_CPU
    /* Branch-free: every index is stored at o and o advances by its flag. The loop ends at
     * the chunk's last set flag (found from the end: a few steps at any useful density), so
     * no store reaches the next chunk's range. */
    ulong c = get_global_id(0), b, e;
    sp_chunk(n, c, get_global_size(0), &b, &e);
    ulong o = totals[c];
    while (e > b && !flags[e - 1])
        e--;
    for (ulong i = b; i < e; i++) {
        out[o] = (uint)i;
        o += flags[i] != 0;
    }
#else
    ulong m = get_local_size(0), l = get_local_id(0), g = get_group_id(0);
    ulong start = g * m * items, base = totals[g];
    for (ulong r = 0; r < items && start + r * m < n; r++) {
        ulong i = start + r * m + l;
        ulong f = i < n && flags[i] != 0;
        ulong incl = sp_wg_scan(tmp, f);
        if (f)
            out[base + incl - 1] = (uint)i;
        base += tmp[m - 1];
    }
#endif
}

/* Pass 3, exclusive scan: out[i] = sum of in[0..i), out[n] = sum of all. */
__kernel void scan_write_u32(__global const uint *in, ulong n, ulong items,
                             __global const ulong *totals, __global ulong *out,
                             __local ulong *tmp)
{
#ifdef SP_STRATEGY_CPU
    ulong c = get_global_id(0), nparts = get_global_size(0), b, e;
    sp_chunk(n, c, nparts, &b, &e);
    ulong o = totals[c];
    for (ulong i = b; i < e; i++) {
        out[i] = o;
        o += in[i];
    }
    if (c == nparts - 1)
        out[n] = totals[nparts];
#else
    ulong m = get_local_size(0), l = get_local_id(0), g = get_group_id(0);
    ulong nparts = get_num_groups(0);
    ulong start = g * m * items, base = totals[g];
    for (ulong r = 0; r < items && start + r * m < n; r++) {
        ulong i = start + r * m + l;
        ulong v = i < n ? in[i] : 0;
        ulong incl = sp_wg_scan(tmp, v);
        if (i < n)
            out[i] = base + incl - v;
        base += tmp[m - 1];
    }
    if (g == nparts - 1 && l == 0)
        out[n] = totals[nparts];
#endif
}
