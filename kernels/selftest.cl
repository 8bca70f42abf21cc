/* selftest.cl — kernels for tests/test_device.c only: they check builds, launches, buffers
 * and the strategy defines, not any operator.
 * Preconditions: any work-group size; the global size may exceed n (items past n do nothing). */

/* c[i] = a[i] + b[i] for i < n. */
__kernel void selftest_vadd(__global const uint *a, __global const uint *b, __global uint *c,
                            uint n)
{
    size_t i = get_global_id(0);
    if (i < n)
        c[i] = a[i] + b[i];
}

/* out[i] = 3 * i + seed for i < n: the zero-copy round trip. */
__kernel void selftest_fill(__global uint *out, uint n, uint seed)
{
    size_t i = get_global_id(0);
    if (i < n)
        out[i] = 3u * (uint)i + seed;
}

/* partial[g] = sum of this work-item's share of in[0, n); which[0] = the strategy built for.
 * CPU: one contiguous chunk per work-item (sp_chunk); GPU: a grid-stride loop (coalesced).
 * Both cover every item once, so the host's sum of partials is the same. */
__kernel void selftest_strategy(__global const uint *in, ulong n, __global ulong *partial,
                                __global uint *which)
{
    ulong g = get_global_id(0), gs = get_global_size(0), acc = 0;
#if defined(SP_STRATEGY_CPU)
    ulong b, e;
    sp_chunk(n, g, gs, &b, &e);
    for (ulong i = b; i < e; i++)
        acc += in[i];
    if (g == 0)
        which[0] = 1;
#else
    for (ulong i = g; i < n; i += gs)
        acc += in[i];
    if (g == 0)
        which[0] = 2;
#endif
    partial[g] = acc;
}
