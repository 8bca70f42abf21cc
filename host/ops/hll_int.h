/* hll_int.h — HyperLogLog distinct counting: dense registers, XXH3 hashes, Ertl's improved
 * estimator, register-wise max merge, a portable serialised form.
 *
 * Precision. Spark's rule (RDD.countApproxDistinct, stream-lib HyperLogLogPlus with the sparse
 * form off): p = ceil(2 * log2(1.054 / rsd)), at least 4, rsd > 0.000017. m = 2^p registers of
 * one byte each. Here p is also capped at HLL_MAX_P (a 256 KiB sketch, rsd >= ~0.0021): above
 * that, SP_EUNSUPPORTED.
 *
 * Error. The estimator (O. Ertl, "New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017, the "improved" estimator) is close to unbiased over the whole range, from
 * an empty sketch (exactly 0) through the small range (where it agrees with linear counting)
 * to 2^64, without empirical bias tables; its relative standard error is about
 * 1.04 / sqrt(m), which Spark's p rule keeps below rsd (1.04 / sqrt(m) <= 1.04/1.054 * rsd).
 *
 * Hashing. A value's hash depends only on the value, never on the context: strings by their
 * bytes (not their dictionary id), integers (i32 i64 ts bool) as little-endian int64, floats
 * widened to double with -0.0 folded into 0.0 and every NaN into one NaN. A tuple chains the
 * columns (the seed of column c+1 is the hash through column c). So sketches built in
 * different contexts or processes merge correctly. */
#ifndef SPATE_HLL_INT_H
#define SPATE_HLL_INT_H

#include "batch/batch_int.h"

#include <stddef.h>
#include <stdint.h>

enum { HLL_MIN_P = 4, HLL_MAX_P = 18 };

typedef struct hll {
    int p;        /* precision: m = 2^p registers */
    uint8_t *reg; /* m registers: the largest rank (leading zeros + 1, at most 65 - p) seen */
} hll;

/** Spark's precision for a relative standard deviation: SP_EINVAL when rsd <= 0.000017 or is
 *  not a number, SP_EUNSUPPORTED when p would exceed HLL_MAX_P. */
int hll_precision(double rsd, int *p, sp_diag *d);
/** The estimator's relative standard error at precision p: 1.04 / sqrt(2^p). */
double hll_rse(int p);

/** A new empty sketch (NULL when out of memory or p outside [HLL_MIN_P, HLL_MAX_P]).
 *  Free with hll_free. Memory: 2^p bytes. */
hll *hll_new(const sp_allocator *a, int p);
void hll_free(const sp_allocator *a, hll *h);
void hll_clear(hll *h);

/** Adds one hashed value. O(1). */
static inline void hll_add_hash(hll *h, uint64_t x)
{
    uint64_t w = x << h->p;
    unsigned rank = w ? (unsigned)__builtin_clzll(w) + 1 : (unsigned)(65 - h->p);
    uint8_t *r = &h->reg[x >> (64 - h->p)];
    if (rank > *r) *r = (uint8_t)rank;
}

/** Hashes of values (see the header comment). */
uint64_t hll_hash_bytes(const void *s, size_t len, uint64_t seed);
uint64_t hll_hash_i64(int64_t v, uint64_t seed);
uint64_t hll_hash_f64(double v, uint64_t seed);
/** Hash of row i over columns cols[0..ncols) (a flat value; strings of either encoding). */
uint64_t hll_hash_row(const sp_col *cols, int ncols, const sp_dict *dict, size_t i);

/** dst = the sketch of the union: register-wise max. SP_EINVAL if the precisions differ. */
int hll_merge(hll *dst, const hll *src, sp_diag *d);
/** The estimated number of distinct values added (0 for an empty sketch). O(m). */
double hll_estimate(const hll *h);

/** Serialised form: "SPHL", version byte 1, p byte, then the 2^p registers. */
size_t hll_serial_size(const hll *h);
/** Writes hll_serial_size(h) bytes to buf (size bytes available); SP_EINVAL if too small. */
int hll_serialize(const hll *h, uint8_t *buf, size_t size, sp_diag *d);
/** Reads a sketch written by hll_serialize; SP_EPARSE for malformed input. */
int hll_deserialize(const sp_allocator *a, const uint8_t *buf, size_t len, hll **out, sp_diag *d);

#endif
