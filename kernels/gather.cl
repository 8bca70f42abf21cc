/* gather.cl — dst[k] = src[idx[k]] for k in [0, n), for 1-, 4- and 8-byte elements.
 * SP_STRATEGY_CPU: one contiguous chunk of k per work-item (any global size).
 * SP_STRATEGY_GPU: one k per work-item (global size >= n, rounded up to the local size);
 * dst and idx are read/written coalesced, src is a random read either way. */

#ifdef SP_STRATEGY_CPU
#define GATHER(NAME, T)                                                                        \
    __kernel void NAME(__global const T *src, __global const uint *idx, ulong n,               \
                       __global T *dst)                                                        \
    {                                                                                          \
        ulong b, e;                                                                            \
        sp_chunk(n, get_global_id(0), get_global_size(0), &b, &e);                             \
        for (ulong k = b; k < e; k++)                                                          \
            dst[k] = src[idx[k]];                                                              \
    }
#else
#define GATHER(NAME, T)                                                                        \
    __kernel void NAME(__global const T *src, __global const uint *idx, ulong n,               \
                       __global T *dst)                                                        \
    {                                                                                          \
        ulong k = get_global_id(0);                                                            \
        if (k < n)                                                                             \
            dst[k] = src[idx[k]];                                                              \
    }
#endif

GATHER(gather_u8, uchar)
GATHER(gather_u32, uint)
GATHER(gather_u64, ulong)
