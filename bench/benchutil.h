/* benchutil.h — what every benchmark program needs: a monotonic clock and a fixed-seed
 * generator (splitmix64), so that inputs are the same bytes every run. Header-only. */
#ifndef SPATE_BENCHUTIL_H
#define SPATE_BENCHUTIL_H

#include <stdint.h>
#include <time.h>

/** Seconds on the monotonic clock. */
static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/** splitmix64: the next value of the stream seeded by *s. */
static inline uint64_t bench_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
