/* common.h — prepended to every Spate program. OpenCL C 1.2.
 * The host defines exactly one of SP_STRATEGY_CPU / SP_STRATEGY_GPU when it builds a program:
 *  CPU: one contiguous chunk per work-item, private partials, no atomics (fast on POCL);
 *  GPU: work-group local memory, coalesced strides, atomics where they pay. */
#ifndef SPATE_COMMON_H
#define SPATE_COMMON_H

#if !defined(SP_STRATEGY_CPU) && !defined(SP_STRATEGY_GPU)
#error "the host must define SP_STRATEGY_CPU or SP_STRATEGY_GPU"
#endif

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define SP_HAVE_FP64 1
#endif

typedef uint sp_id;   /* dictionary id */

/* [begin, end) of a contiguous chunk of n items for chunk `c` of `nchunks`. */
inline void sp_chunk(ulong n, ulong c, ulong nchunks, ulong *begin, ulong *end)
{
    ulong per = n / nchunks, rem = n % nchunks;
    *begin = c * per + min(c, rem);
    *end = *begin + per + (c < rem ? 1 : 0);
}

#endif
