/* kreduce_int.h — keyed and whole-column aggregation on the device, with plain-C references.
 *
 * Keys are dense u32 ids in [0, K): dictionary ids of strings, or ids a keymap gave to
 * integer / composite keys. Two kernel shapes, chosen when the program is built
 * (dev_strategy): CPU — one contiguous chunk per work-item with private partials, then a merge
 * kernel, no atomics; GPU — work-group local-memory partials with coalesced strides and an
 * atomic-free merge over groups (or atomics where the device reports them and they pay).
 * Large K (dense partials would not fit in the partial budget) takes a radix-partition path:
 * histogram of key buckets per chunk, prefix sum, scatter of (key, value) into bucket order,
 * then one work-item per bucket aggregates over its small key sub-range — O(n + K), no atomics.
 *
 * Results are exact for integers (64-bit accumulators) and within 1e-9 relative of a
 * sequential sum for floats (f64 accumulators). */
#ifndef SPATE_KREDUCE_INT_H
#define SPATE_KREDUCE_INT_H

#include "batch/batch_int.h"
#include "device/device_int.h"

/** Accumulator type of an aggregate over values of type vt: SP_F64 for f32/f64 values and for
 *  AVG, SP_I64 otherwise (COUNT ignores values). */
sp_type kagg_acc_type(sp_agg agg, sp_type vt);

/** acc[k] and cnt[k] for k in [0,K): acc is SUM/MIN/MAX of the values with key k (AVG: their
 *  f64 sum; COUNT: unused, may be NULL) in kagg_acc_type; cnt[k] counts records with key k
 *  (0: key absent, acc[k] then undefined). keys/vals are host arrays of n elements (page
 *  aligned memory is wrapped zero-copy on CPU devices); vals may be NULL for COUNT. vt is the
 *  value type (i32 i64 f32 f64 bool ts). Keys >= K are a caller bug (asserted in the
 *  reference; the kernels ignore them). */
int kreduce_dense(sp_dev *dev, const uint32_t *keys, const void *vals, sp_type vt, size_t n,
                  uint32_t K, sp_agg agg, void *acc, int64_t *cnt, sp_diag *d);
/** kreduce_dense with its device scratch (partials; radix histograms and permutation, about
 *  12n bytes) taken from `scratch` where the device shares host memory: recycled, already
 *  mapped blocks wrapped zero-copy, so steady-state calls take no page faults (fresh scratch
 *  of 100+ MiB costs tens of ms in faults alone). NULL scratch: as kreduce_dense. dev NULL:
 *  the host reference (also for kreduce_dense and kreduce_all). */
int kreduce_dense_scratch(sp_dev *dev, sp_arena *scratch, const uint32_t *keys, const void *vals,
                          sp_type vt, size_t n, uint32_t K, sp_agg agg, void *acc, int64_t *cnt,
                          sp_diag *d);
/** The same on the host, sequentially: the reference the tests compare kernels against. */
void kreduce_dense_ref(const uint32_t *keys, const void *vals, sp_type vt, size_t n, uint32_t K,
                       sp_agg agg, void *acc, int64_t *cnt);

/** Whole-column aggregate (reduce(), count()): *acc in kagg_acc_type, *cnt = n. */
int kreduce_all(sp_dev *dev, const void *vals, sp_type vt, size_t n, sp_agg agg, void *acc,
                sp_diag *d);
void kreduce_all_ref(const void *vals, sp_type vt, size_t n, sp_agg agg, void *acc);

/** Forces the large-K path above this many keys (0: automatic); for tests and benchmarks. */
void kreduce_set_dense_limit(sp_dev *dev, size_t max_dense_keys);

/* ----------------------------------------------------------------------------------- keymap */

/** A stream-lifetime map from key rows (one or more columns of any scalar type) to dense ids
 *  0..size-1 (new keys take freed ids first, else the next one), like the string dictionary
 *  is for strings. Used for integer
 *  keys and composite keys (countByValue of tuples). Hashing with XXH3. Not thread-safe:
 *  one writer (the driver) at a time. */
typedef struct keymap keymap;
int keymap_new(const sp_allocator *a, int ncols, const sp_type *types, keymap **out);
void keymap_free(keymap *km);
/** ids[i] = id of row i of the columns cols[0..ncols) (rows first..first+n), adding new keys. */
int keymap_ids(keymap *km, const sp_col *const *cols, size_t first, size_t n, uint32_t *ids,
               sp_diag *d);
uint32_t keymap_size(const keymap *km);
/** Number of key columns the map was made for. */
int keymap_ncols(const keymap *km);
/** Appends the key of `id` to the columns (one value per key column). */
int keymap_push_key(const keymap *km, uint32_t id, sp_col *const *cols);
/* Reclaiming (keymap.c's header comment): on the driver between batch times. */
/** Keys in use (keymap_size is the high-water mark of ids, the dense id domain). */
uint32_t keymap_live(const keymap *km);
/** 1 when at least max(min_new, live keys after the last sweep) keys were added since. */
int keymap_sweep_due(const keymap *km, uint32_t min_new);
/** Starts a mark epoch; the holders of ids then keymap_mark them; then keymap_sweep. */
void keymap_mark_begin(keymap *km);
void keymap_mark(keymap *km, uint32_t id);
/** Frees the ids not marked since keymap_mark_begin (reused by later keys); *freed gets their
 *  number. O(size). SP_ENOMEM leaves the map as it was. */
int keymap_sweep(keymap *km, uint32_t *freed);
/** Forgets every key (for maps whose ids do not outlive a batch time). */
void keymap_clear(keymap *km);
/** dict_mark of the str key words of every live key. */
void keymap_mark_dict(const keymap *km, sp_dict *dict);

/* --------------------------------------------------------------------------- batch level */

/** reduceByKey with a built-in aggregate, countByValue, on a flat batch.
 *  in: flat batch; key columns [0, nkey) and (for reduce) the value column vcol.
 *  out: a new batch of type `out_td`: the key columns then one value column (the aggregate in
 *  kagg_acc_type, AVG as f64 sum/count, COUNT as i64), one row per present key, in id order.
 *  Key columns of type str (ENC_DICT) use dictionary ids directly when nkey == 1; every other
 *  key goes through km (must be non-NULL then; it lives as long as the stream). */
int keyed_aggregate(sp_dev *dev, batch_env *env, keymap *km, const sp_batch *in, int nkey, int vcol,
                    sp_agg agg, const sp_td *out_td, sp_batch **out, sp_diag *d);

#endif
