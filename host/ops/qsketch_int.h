/* qsketch_int.h — a mergeable quantile sketch with a relative-error guarantee on values
 * (DDSketch: Masson, Rim, Lee, "DDSketch: a fast and fully-mergeable quantile sketch with
 * relative-error guarantees", VLDB 2019).
 *
 * Why DDSketch. Log analytics asks for p50/p95/p99 of bytes and response times: positive,
 * heavy-tailed values spanning orders of magnitude. DDSketch bounds the error relative to the
 * value itself (a p99 of 2.1 MB is reported within 1%, whatever the spread of the rest), where
 * KLL and t-digest bound the error in rank, which on a heavy tail can mean a p99 off by a
 * factor. Merging is adding bucket counts index by index: exact, associative and commutative,
 * so per-pane sketches merged over a window give the same answer as one sketch of the whole
 * window, in any order. Cost: one log() per value; size grows with log(max/min)/alpha, not
 * with the number of values (bytes from 1 to 1e9 at alpha 0.01: about 1040 buckets).
 *
 * Guarantee. With gamma = (1 + alpha) / (1 - alpha), a positive x goes to bucket
 * i = ceil(log_gamma(x)), covering (gamma^(i-1), gamma^i], whose representative
 * 2 gamma^i / (gamma + 1) is within alpha * x of every x in it. A negative x goes to a second
 * store by -x; zero (and |x| below DBL_MIN) to a zero count, reported as 0. The q-quantile is
 * the element of rank floor(q * (n - 1)) (0-based) of the sorted values: the sketch returns a
 * value within alpha * |x| of it, clamped to the exact [min, max] (which keeps the bound and
 * makes q = 0 and q = 1 exact). NaN and infinities are not added (counted in `skipped`).
 *
 * Range. A store holds at most QS_MAX_RANGE (1e18) between its smallest and largest
 * magnitude (at least 2048 buckets); beyond that its smallest-magnitude buckets are collapsed
 * into the lowest kept one and quantiles falling there lose the guarantee (DDSketch's
 * bounded-size variant). */
#ifndef SPATE_QSKETCH_INT_H
#define SPATE_QSKETCH_INT_H

#include "util/diag_int.h"
#include "util/mem_int.h"

#include <stddef.h>
#include <stdint.h>

#define QS_MAX_RANGE 1e18

/** Bucket counts for indices [lo, lo + len); cnt has room for cap. */
typedef struct qs_store {
    int32_t lo;
    uint32_t len, cap;
    uint64_t *cnt;
} qs_store;

typedef struct qsketch {
    sp_allocator alloc;
    double alpha;      /* relative accuracy */
    double gamma;      /* (1 + alpha) / (1 - alpha) */
    double lg;         /* log(gamma) */
    uint32_t max_bins; /* per store */
    qs_store pos, neg;
    uint64_t zero;    /* values reported as 0 */
    uint64_t n;       /* values added (zero and both stores) */
    uint64_t skipped; /* NaN and infinities not added */
    double min, max;  /* exact, over the values added */
} qsketch;

/** A new empty sketch with relative accuracy alpha in (0, 1) (NULL when out of memory or
 *  alpha is outside). Free with qs_free. */
qsketch *qs_new(const sp_allocator *a, double alpha);
void qs_free(qsketch *s);
/** Empties the sketch, keeping its memory. */
void qs_clear(qsketch *s);

/** Adds one value. O(1) amortised; SP_ENOMEM when a store cannot grow. */
int qs_add(qsketch *s, double x);
/** The bucket index qs_add gives a value of magnitude ax (finite, ax >= DBL_MIN). It depends
 *  only on alpha, so callers may memoise it across sketches of one alpha. One log(). */
int32_t qs_bucket(const qsketch *s, double ax);
/** qs_add(s, x) for finite x with |x| >= DBL_MIN, given idx = qs_bucket(s, fabs(x)). */
int qs_add_bucket(qsketch *s, double x, int32_t idx);
/** s += o (bucket counts added). SP_EINVAL if the accuracies differ. O(buckets of o). */
int qs_merge(qsketch *s, const qsketch *o, sp_diag *d);
/** The q-quantile (q in [0, 1]) as defined above; NaN for an empty sketch. O(buckets). */
double qs_quantile(const qsketch *s, double q);
/** Several quantiles in one pass over the buckets; qs need not be sorted. */
void qs_quantiles(const qsketch *s, int nq, const double *qs, double *out);

/** Serialised form: "SPDD", version 1, then little-endian alpha, n, zero, skipped, min, max,
 *  and each store (neg, pos) as lo, len and len counts. */
size_t qs_serial_size(const qsketch *s);
int qs_serialize(const qsketch *s, uint8_t *buf, size_t size, sp_diag *d);
int qs_deserialize(const sp_allocator *a, const uint8_t *buf, size_t len, qsketch **out,
                   sp_diag *d);

#endif
