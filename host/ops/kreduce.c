/* kreduce.c — launches of kernels/reduce.cl and the plain-C references that define what the
 * kernels must compute.
 *
 * Path choice for kreduce_dense (n > 0, K > 0):
 *  CPU strategy: P work-items (at most 2 per compute unit, fewer when n is small next to K so
 *    that initialising and merging P*K slots does not outweigh the n records, and one per
 *    compute unit once a partial outgrows a core's cache), each with a
 *    private partial of K slots; P == 1 writes the output directly, otherwise a merge kernel.
 *    When P*K*16 bytes exceed KR_PART_BUDGET, the radix path.
 *  GPU strategy: local-memory partials with 64-bit local atomics per work-group when the device
 *    reports int64 atomics, K*16 <= local_mem/2 and groups*K*16 <= KR_PART_BUDGET; else the
 *    radix path (atomic-free on 64-bit values; 32-bit local counters only).
 *  kreduce_set_dense_limit forces the radix path above a number of keys.
 * Float values and AVG accumulate in double; a device without fp64 takes the host reference
 * (no double kernels are built there).
 *
 * Memory: dense O(P*K) scratch; radix O(n + K + buckets*P). Inputs and outputs are wrapped
 * zero-copy where the device allows (page-aligned host memory on CPU devices). */
#include "ops/kreduce_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum {
    KR_PART_BUDGET = 64 << 20, /* bytes of dense partials before the radix path */
    KR_RADIX_BITS = 8,         /* at most 256 buckets (KR_MAX_BUCKETS in reduce.cl) */
    KR_MIN_CHUNK = 4096,       /* records per work-item below which fewer are used */
    KR_ALL_MAX_PARTS = 256,    /* partials kreduce_all finishes on the host */
    KR_L2_BYTES = 1 << 20,     /* rough per-core cache a private partial should fit */
};

/* ----------------------------------------------------------------------- dense limits */

void kreduce_set_dense_limit(sp_dev *dev, size_t max_dense_keys)
{
    dev_set_tunable(dev, DEV_TUNE_DENSE_KEYS, max_dense_keys);
}

static size_t kr_dense_limit(const sp_dev *dev)
{
    return dev_get_tunable(dev, DEV_TUNE_DENSE_KEYS);
}

/* Inputs of fewer rows run the plain-C reference on the host: a launch, a blocking read-back
 * and waking the device's threads cost more than a few hundred rows of work. On the CPU shape
 * such inputs take one work-item walking the rows in order, so the host result is the same,
 * floating-point sums included. DEV_TUNE_KREDUCE_HOST_BELOW overrides the threshold (tests
 * set 1 to check the kernels on tiny sizes). */
enum { KR_SMALL_ROWS = 256 };

static size_t kr_small_rows(const sp_dev *dev)
{
    size_t v = dev_get_tunable(dev, DEV_TUNE_KREDUCE_HOST_BELOW);
    return v ? v : KR_SMALL_ROWS;
}

/* ----------------------------------------------------------------------------- types */

sp_type kagg_acc_type(sp_agg agg, sp_type vt)
{
    if (agg == SP_AGG_AVG || vt == SP_F32 || vt == SP_F64) return SP_F64;
    return SP_I64;
}

static int kr_value_type_ok(sp_type vt)
{
    return vt == SP_I32 || vt == SP_I64 || vt == SP_F32 || vt == SP_F64 || vt == SP_BOOL ||
           vt == SP_TS;
}

static size_t kr_width(sp_type vt)
{
    switch (vt) {
    case SP_BOOL:
        return 1;
    case SP_I32:
    case SP_F32:
        return 4;
    default:
        return 8;
    }
}

/* Kernel-name pieces: value type and operation (see reduce.cl). */
static const char *kr_tname(sp_type vt)
{
    switch (vt) {
    case SP_I32:
        return "i32";
    case SP_F32:
        return "f32";
    case SP_F64:
        return "f64";
    case SP_BOOL:
        return "u8";
    default:
        return "i64";
    }
}

static const char *kr_oname(sp_agg agg, sp_type vt)
{
    switch (agg) {
    case SP_AGG_MIN:
        return "mn";
    case SP_AGG_MAX:
        return "mx";
    case SP_AGG_AVG:
        return kagg_acc_type(SP_AGG_SUM, vt) == SP_F64 ? "sum" : "avg";
    default:
        return "sum";
    }
}

/* "kr_<fam>_<T>_<O>", or "kr_<fam>_cnt" for COUNT. */
static void kr_kname(char *buf, size_t len, const char *fam, sp_agg agg, sp_type vt)
{
    if (agg == SP_AGG_COUNT)
        snprintf(buf, len, "kr_%s_cnt", fam);
    else
        snprintf(buf, len, "kr_%s_%s_%s", fam, kr_tname(vt), kr_oname(agg, vt));
}

static void kr_merge_name(char *buf, size_t len, sp_agg agg, sp_type vt)
{
    if (agg == SP_AGG_COUNT)
        snprintf(buf, len, "kr_merge_cnt");
    else
        snprintf(buf, len, "kr_merge_%s_%s", kagg_acc_type(agg, vt) == SP_F64 ? "d" : "l",
                 agg == SP_AGG_AVG ? "sum" : kr_oname(agg, vt));
}

/* ------------------------------------------------------------------------ references */

#define KR_ADD_I(a, v) (a) = (int64_t)((uint64_t)(a) + (uint64_t)(v))
#define KR_ADD_D(a, v) (a) += (v)
#define KR_MIN(a, v) (a) = ((v) < (a) ? (v) : (a))
#define KR_MAX(a, v) (a) = ((v) > (a) ? (v) : (a))

static void kr_fill_identity(void *acc, size_t K, sp_agg agg, sp_type vt)
{
    if (!acc || agg == SP_AGG_COUNT) return;
    if (kagg_acc_type(agg, vt) == SP_F64) {
        double *a = acc, id = agg == SP_AGG_MIN ? INFINITY : agg == SP_AGG_MAX ? -INFINITY : 0.0;
        for (size_t k = 0; k < K; k++)
            a[k] = id;
    } else {
        int64_t *a = acc, id = agg == SP_AGG_MIN ? INT64_MAX : agg == SP_AGG_MAX ? INT64_MIN : 0;
        for (size_t k = 0; k < K; k++)
            a[k] = id;
    }
}

#define KR_REF_LOOP(VT, ACC, OPM)                                                                  \
    do {                                                                                           \
        const VT *v_ = vals;                                                                       \
        ACC *a_ = acc;                                                                             \
        for (size_t i = 0; i < n; i++) {                                                           \
            uint32_t k = keys[i];                                                                  \
            assert(k < K);                                                                         \
            ACC v = (ACC)v_[i];                                                                    \
            OPM(a_[k], v);                                                                         \
            cnt[k]++;                                                                              \
        }                                                                                          \
    } while (0)

#define KR_REF_TYPE(VT)                                                                            \
    do {                                                                                           \
        if (agg == SP_AGG_AVG || fl) {                                                             \
            if (agg == SP_AGG_MIN)                                                                 \
                KR_REF_LOOP(VT, double, KR_MIN);                                                   \
            else if (agg == SP_AGG_MAX)                                                            \
                KR_REF_LOOP(VT, double, KR_MAX);                                                   \
            else                                                                                   \
                KR_REF_LOOP(VT, double, KR_ADD_D);                                                 \
        } else if (agg == SP_AGG_MIN) {                                                            \
            KR_REF_LOOP(VT, int64_t, KR_MIN);                                                      \
        } else if (agg == SP_AGG_MAX) {                                                            \
            KR_REF_LOOP(VT, int64_t, KR_MAX);                                                      \
        } else {                                                                                   \
            KR_REF_LOOP(VT, int64_t, KR_ADD_I);                                                    \
        }                                                                                          \
    } while (0)

void kreduce_dense_ref(const uint32_t *keys, const void *vals, sp_type vt, size_t n, uint32_t K,
                       sp_agg agg, void *acc, int64_t *cnt)
{
    memset(cnt, 0, (size_t)K * sizeof *cnt);
    kr_fill_identity(acc, K, agg, vt);
    int fl = vt == SP_F32 || vt == SP_F64;
    if (agg == SP_AGG_COUNT) {
        for (size_t i = 0; i < n; i++) {
            assert(keys[i] < K);
            cnt[keys[i]]++;
        }
        return;
    }
    switch (vt) {
    case SP_I32:
        KR_REF_TYPE(int32_t);
        break;
    case SP_I64:
    case SP_TS:
        KR_REF_TYPE(int64_t);
        break;
    case SP_F32:
        KR_REF_TYPE(float);
        break;
    case SP_F64:
        KR_REF_TYPE(double);
        break;
    case SP_BOOL:
        KR_REF_TYPE(uint8_t);
        break;
    default:
        assert(!"kreduce_dense_ref: value type");
    }
}

#define KR_ALL_LOOP(VT, ACC, OPM, IDENT)                                                           \
    do {                                                                                           \
        const VT *v_ = vals;                                                                       \
        ACC a_ = IDENT;                                                                            \
        for (size_t i = 0; i < n; i++) {                                                           \
            ACC v = (ACC)v_[i];                                                                    \
            OPM(a_, v);                                                                            \
        }                                                                                          \
        *(ACC *)acc = a_;                                                                          \
    } while (0)

#define KR_ALL_TYPE(VT)                                                                            \
    do {                                                                                           \
        if (agg == SP_AGG_AVG || fl) {                                                             \
            if (agg == SP_AGG_MIN)                                                                 \
                KR_ALL_LOOP(VT, double, KR_MIN, INFINITY);                                         \
            else if (agg == SP_AGG_MAX)                                                            \
                KR_ALL_LOOP(VT, double, KR_MAX, -INFINITY);                                        \
            else                                                                                   \
                KR_ALL_LOOP(VT, double, KR_ADD_D, 0.0);                                            \
        } else if (agg == SP_AGG_MIN) {                                                            \
            KR_ALL_LOOP(VT, int64_t, KR_MIN, INT64_MAX);                                           \
        } else if (agg == SP_AGG_MAX) {                                                            \
            KR_ALL_LOOP(VT, int64_t, KR_MAX, INT64_MIN);                                           \
        } else {                                                                                   \
            KR_ALL_LOOP(VT, int64_t, KR_ADD_I, 0);                                                 \
        }                                                                                          \
    } while (0)

/* AVG yields the f64 sum, as in kreduce_dense (the caller divides by n); COUNT yields n;
 * MIN/MAX of nothing yield the identity (INT64_MAX/MIN, +/-inf). */
void kreduce_all_ref(const void *vals, sp_type vt, size_t n, sp_agg agg, void *acc)
{
    int fl = vt == SP_F32 || vt == SP_F64;
    if (agg == SP_AGG_COUNT) {
        *(int64_t *)acc = (int64_t)n;
        return;
    }
    switch (vt) {
    case SP_I32:
        KR_ALL_TYPE(int32_t);
        break;
    case SP_I64:
    case SP_TS:
        KR_ALL_TYPE(int64_t);
        break;
    case SP_F32:
        KR_ALL_TYPE(float);
        break;
    case SP_F64:
        KR_ALL_TYPE(double);
        break;
    case SP_BOOL:
        KR_ALL_TYPE(uint8_t);
        break;
    default:
        assert(!"kreduce_all_ref: value type");
    }
}

/* ---------------------------------------------------------------------- device plumbing */

typedef struct kr_arg {
    size_t size;
    const void *ptr; /* NULL with size > 0: a __local argument of that many bytes */
} kr_arg;

#define KR_MEM(b)                                                                                  \
    {                                                                                              \
        sizeof(cl_mem), &(b).mem                                                                   \
    }
#define KR_VAL(x)                                                                                  \
    {                                                                                              \
        sizeof(x), &(x)                                                                            \
    }

/* Sets the arguments of kernel `name` of reduce.cl and launches it. */
static int kr_run_kernel(sp_dev *dev, const char *name, const kr_arg *args, int nargs, size_t gws,
                         size_t lws, sp_diag *d)
{
    cl_kernel k;
    int rc = dev_kernel(dev, "reduce.cl", name, &k, d);
    if (rc) return rc;
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS) {
            dev_check(err, "clSetKernelArg", d);
            return diag_prefix(d, "%s argument %d", name, i);
        }
    }
    return dev_launch(dev, k, gws, lws, name, d);
}

static size_t kr_round_up(size_t x, size_t m)
{
    return (x + m - 1) / m * m;
}

static size_t kr_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Buffers of one kreduce_dense call; all released by kr_bufs_release. Scratch buffers come
 * from the arena when one was given and the device shares host memory (wrapped zero-copy:
 * recycled blocks, no page faults per call), else from dev_buf_alloc. */
enum { KR_ACCP, KR_CNTP, KR_HIST, KR_BSTART, KR_PK, KR_PV, KR_NSCRATCH };
typedef struct kr_bufs {
    dev_buf keys, vals, acc, cnt; /* wrapped host memory (vals/acc: a dummy when unused) */
    dev_buf scr[KR_NSCRATCH];     /* dense partials; radix histograms and permutation */
    sp_arena *arena;              /* NULL: scratch from dev_buf_alloc */
    void *blk[KR_NSCRATCH];       /* arena blocks behind scr[] */
    size_t blk_cap[KR_NSCRATCH];
} kr_bufs;

static int kr_scratch(sp_dev *dev, kr_bufs *b, int i, size_t bytes, sp_diag *d)
{
    if (!b->arena) return dev_buf_alloc(dev, bytes, &b->scr[i], d);
    b->blk[i] = arena_get(b->arena, bytes ? bytes : 1, &b->blk_cap[i]);
    if (!b->blk[i]) return diag_set(d, SP_ENOMEM, "kreduce scratch of %zu bytes", bytes);
    return dev_buf_wrap(dev, b->blk[i], bytes, DEV_BUF_RW, &b->scr[i], d);
}

static void kr_bufs_release(sp_dev *dev, kr_bufs *b)
{
    dev_buf *wrapped[] = {&b->keys, &b->vals, &b->acc, &b->cnt};
    int held = 0;
    for (int i = 0; i < KR_NSCRATCH; i++)
        held |= b->blk[i] != NULL;
    if (held) dev_finish(dev, NULL); /* kernels may still use the blocks after an error */
    for (size_t i = 0; i < sizeof wrapped / sizeof wrapped[0]; i++)
        dev_buf_release(wrapped[i]);
    for (int i = 0; i < KR_NSCRATCH; i++) {
        dev_buf_release(&b->scr[i]);
        if (b->blk[i]) arena_put(b->arena, b->blk[i], b->blk_cap[i]);
    }
}

/* Number of chunk work-items for the CPU shape: 2 per compute unit, fewer for small inputs. */
static size_t kr_cpu_chunks(const sp_dev *dev, size_t n, size_t per_item)
{
    size_t cu = dev_get_info(dev)->compute_units;
    size_t p = (cu ? cu : 1) * 2;
    size_t by_n = n / (per_item ? per_item : 1);
    return by_n < 1 ? 1 : kr_min(p, by_n);
}

/* GPU shape: groups of lws items, each group at least a few items per work-item. */
static size_t kr_gpu_groups(const sp_dev *dev, size_t n, size_t lws)
{
    size_t g = (n + lws * 4 - 1) / (lws * 4);
    g = kr_min(g, dev_groups(dev));
    return g < 1 ? 1 : g;
}

static int kr_dense_cpu(sp_dev *dev, kr_bufs *b, size_t n, uint32_t K, size_t P, sp_agg agg,
                        sp_type vt, sp_diag *d)
{
    char name[64];
    cl_ulong n64 = n;
    cl_uint K32 = K, P32 = (cl_uint)P;
    int rc;
    kr_kname(name, sizeof name, "part", agg, vt);
    if (P == 1) {
        cl_ulong stride = K;
        kr_arg a[] = {KR_MEM(b->keys), KR_MEM(b->vals), KR_VAL(n64),    KR_VAL(K32),
                      KR_VAL(stride),  KR_VAL(P32),     KR_MEM(b->acc), KR_MEM(b->cnt)};
        return kr_run_kernel(dev, name, a, 8, 1, 1, d);
    }
    cl_ulong stride = kr_round_up(K, 8); /* 64-byte aligned partials: no false sharing */
    size_t bytes = (size_t)stride * P * 8;
    if ((rc = kr_scratch(dev, b, KR_ACCP, agg == SP_AGG_COUNT ? 64 : bytes, d)) ||
        (rc = kr_scratch(dev, b, KR_CNTP, bytes, d)))
        return rc;
    kr_arg a[] = {KR_MEM(b->keys),
                  KR_MEM(b->vals),
                  KR_VAL(n64),
                  KR_VAL(K32),
                  KR_VAL(stride),
                  KR_VAL(P32),
                  KR_MEM(b->scr[KR_ACCP]),
                  KR_MEM(b->scr[KR_CNTP])};
    if ((rc = kr_run_kernel(dev, name, a, 8, P, 1, d))) return rc;
    kr_merge_name(name, sizeof name, agg, vt);
    size_t lws = dev_wg_size(dev);
    kr_arg m[] = {
        KR_MEM(b->scr[KR_ACCP]), KR_MEM(b->scr[KR_CNTP]), KR_VAL(stride), KR_VAL(P32), KR_VAL(K32),
        KR_MEM(b->acc),          KR_MEM(b->cnt)};
    return kr_run_kernel(dev, name, m, 7, kr_round_up(K, lws), lws, d);
}

static int kr_dense_gpu(sp_dev *dev, kr_bufs *b, size_t n, uint32_t K, sp_agg agg, sp_type vt,
                        sp_diag *d)
{
    char name[64];
    size_t lws = dev_wg_size(dev);
    size_t G = kr_gpu_groups(dev, n, lws);
    cl_ulong n64 = n, stride = kr_round_up(K, 8);
    cl_uint K32 = K, G32 = (cl_uint)G;
    size_t bytes = (size_t)stride * G * 8;
    int rc;
    if ((rc = kr_scratch(dev, b, KR_ACCP, agg == SP_AGG_COUNT ? 64 : bytes, d)) ||
        (rc = kr_scratch(dev, b, KR_CNTP, bytes, d)))
        return rc;
    kr_kname(name, sizeof name, "lpart", agg, vt);
    kr_arg a[] = {KR_MEM(b->keys),
                  KR_MEM(b->vals),
                  KR_VAL(n64),
                  KR_VAL(K32),
                  KR_VAL(stride),
                  KR_VAL(G32),
                  KR_MEM(b->scr[KR_ACCP]),
                  KR_MEM(b->scr[KR_CNTP]),
                  {(size_t)K * 8, NULL},
                  {(size_t)K * 8, NULL}};
    if ((rc = kr_run_kernel(dev, name, a, 10, G * lws, lws, d))) return rc;
    kr_merge_name(name, sizeof name, agg, vt);
    kr_arg m[] = {
        KR_MEM(b->scr[KR_ACCP]), KR_MEM(b->scr[KR_CNTP]), KR_VAL(stride), KR_VAL(G32), KR_VAL(K32),
        KR_MEM(b->acc),          KR_MEM(b->cnt)};
    return kr_run_kernel(dev, name, m, 7, kr_round_up(K, lws), lws, d);
}

/* Radix path: buckets of 2^shift consecutive keys, at most 2^KR_RADIX_BITS of them. */
static int kr_radix(sp_dev *dev, kr_bufs *b, size_t n, uint32_t K, sp_agg agg, sp_type vt,
                    sp_diag *d)
{
    int gpu = dev_strategy(dev) == DEV_STRATEGY_GPU;
    unsigned bits = 0;
    while (bits < 32 && ((uint64_t)(K - 1) >> bits) != 0)
        bits++;
    cl_uint shift = bits > KR_RADIX_BITS ? bits - KR_RADIX_BITS : 0;
    cl_uint B = ((K - 1) >> shift) + 1;
    cl_ulong Bs = kr_round_up(B, 8);
    size_t lws = dev_wg_size(dev);
    size_t P = gpu ? kr_gpu_groups(dev, n, lws) : kr_cpu_chunks(dev, n, KR_MIN_CHUNK);
    size_t gws = gpu ? P * lws : P, plws = gpu ? lws : 1;
    cl_ulong n64 = n;
    cl_uint K32 = K, P32 = (cl_uint)P, withv = agg != SP_AGG_COUNT;
    char name[64];
    int rc;
    if ((rc = kr_scratch(dev, b, KR_HIST, (size_t)Bs * P * 8, d)) ||
        (rc = kr_scratch(dev, b, KR_BSTART, ((size_t)B + 1) * 8, d)) ||
        (rc = kr_scratch(dev, b, KR_PK, n * 4, d)) ||
        (rc = kr_scratch(dev, b, KR_PV, withv ? n * kr_width(vt) : 64, d)))
        return rc;

    kr_arg h[] = {KR_MEM(b->keys),
                  KR_VAL(n64),
                  KR_VAL(K32),
                  KR_VAL(shift),
                  KR_VAL(B),
                  KR_VAL(Bs),
                  KR_VAL(P32),
                  KR_MEM(b->scr[KR_HIST]),
                  {(size_t)B * 4, NULL}};
    if ((rc = kr_run_kernel(dev, "kr_rhist", h, gpu ? 9 : 8, gws, plws, d))) return rc;
    kr_arg s[] = {KR_MEM(b->scr[KR_HIST]), KR_VAL(B), KR_VAL(Bs), KR_VAL(P32),
                  KR_MEM(b->scr[KR_BSTART])};
    if ((rc = kr_run_kernel(dev, "kr_rscan", s, 5, 1, 1, d))) return rc;
    snprintf(name, sizeof name, "kr_rscatter_%s", withv ? kr_tname(vt) : "u8");
    kr_arg c[] = {KR_MEM(b->keys),
                  KR_MEM(b->vals),
                  KR_VAL(withv),
                  KR_VAL(n64),
                  KR_VAL(K32),
                  KR_VAL(shift),
                  KR_VAL(Bs),
                  KR_VAL(P32),
                  KR_MEM(b->scr[KR_HIST]),
                  KR_MEM(b->scr[KR_PK]),
                  KR_MEM(b->scr[KR_PV]),
                  {(size_t)Bs * 4, NULL}};
    if ((rc = kr_run_kernel(dev, name, c, gpu ? 12 : 11, gws, plws, d))) return rc;
    kr_kname(name, sizeof name, "ragg", agg, vt);
    kr_arg g[] = {KR_MEM(b->scr[KR_PK]),
                  KR_MEM(b->scr[KR_PV]),
                  KR_MEM(b->scr[KR_BSTART]),
                  KR_VAL(B),
                  KR_VAL(shift),
                  KR_VAL(K32),
                  KR_MEM(b->acc),
                  KR_MEM(b->cnt)};
    return kr_run_kernel(dev, name, g, 8, kr_round_up(B, lws), lws, d);
}

int kreduce_dense(sp_dev *dev, const uint32_t *keys, const void *vals, sp_type vt, size_t n,
                  uint32_t K, sp_agg agg, void *acc, int64_t *cnt, sp_diag *d)
{
    return kreduce_dense_scratch(dev, NULL, keys, vals, vt, n, K, agg, acc, cnt, d);
}

int kreduce_dense_scratch(sp_dev *dev, sp_arena *scratch, const uint32_t *keys, const void *vals,
                          sp_type vt, size_t n, uint32_t K, sp_agg agg, void *acc, int64_t *cnt,
                          sp_diag *d)
{
    SP_CHECK(d, agg >= SP_AGG_SUM && agg <= SP_AGG_AVG, SP_EINVAL, "kreduce_dense: aggregate %d",
             (int)agg);
    SP_CHECK(d, agg == SP_AGG_COUNT || kr_value_type_ok(vt), SP_ETYPE,
             "kreduce_dense: cannot aggregate values of type %s", sp_type_name(vt));
    SP_CHECK(d, cnt && (acc || agg == SP_AGG_COUNT), SP_EINVAL, "kreduce_dense: NULL output array");
    SP_CHECK(d, n == 0 || (keys && (vals || agg == SP_AGG_COUNT)), SP_EINVAL,
             "kreduce_dense: NULL input array");
    if (K == 0) return SP_OK;
    if (n == 0 || !dev || n < kr_small_rows(dev)) {
        dev_count_rows(dev, n, 0);
        kreduce_dense_ref(keys, vals, vt, n, K, agg, acc, cnt);
        return SP_OK;
    }
    if (agg == SP_AGG_COUNT) vt = SP_I64;
    int need_fp64 = agg != SP_AGG_COUNT && kagg_acc_type(agg, vt) == SP_F64;
    const dev_info *inf = dev_get_info(dev);
    if (need_fp64 && !inf->fp64) {
        /* Defensive: a device without fp64 builds no double kernels (reduce.cl). */
        dev_count_rows(dev, n, 0);
        kreduce_dense_ref(keys, vals, vt, n, K, agg, acc, cnt);
        return SP_OK;
    }
    dev_count_rows(dev, n, 1);

    kr_bufs b;
    memset(&b, 0, sizeof b);
    if ((inf->type & CL_DEVICE_TYPE_CPU) || inf->host_unified) b.arena = scratch;
    int rc;
    size_t w = kr_width(vt);
    if ((rc = dev_buf_wrap(dev, (void *)keys, n * 4, DEV_BUF_READ, &b.keys, d))) goto out;
    rc = agg == SP_AGG_COUNT ? dev_buf_alloc(dev, 64, &b.vals, d)
                             : dev_buf_wrap(dev, (void *)vals, n * w, DEV_BUF_READ, &b.vals, d);
    if (rc) goto out;
    rc = agg == SP_AGG_COUNT ? dev_buf_alloc(dev, 64, &b.acc, d)
                             : dev_buf_wrap(dev, acc, (size_t)K * 8, DEV_BUF_WRITE, &b.acc, d);
    if (rc || (rc = dev_buf_wrap(dev, cnt, (size_t)K * 8, DEV_BUF_WRITE, &b.cnt, d))) goto out;

    size_t limit = kr_dense_limit(dev);
    int forced = limit != 0 && K > limit;
    if (dev_strategy(dev) == DEV_STRATEGY_GPU) {
        size_t G = kr_gpu_groups(dev, n, dev_wg_size(dev));
        int local_ok = inf->int64_atomics && (uint64_t)K * 16 <= inf->local_mem / 2 &&
                       (uint64_t)K * 16 * G <= KR_PART_BUDGET;
        rc = !forced && local_ok ? kr_dense_gpu(dev, &b, n, K, agg, vt, d)
                                 : kr_radix(dev, &b, n, K, agg, vt, d);
    } else {
        size_t P = kr_cpu_chunks(dev, n, K > KR_MIN_CHUNK ? K : KR_MIN_CHUNK);
        size_t cu = inf->compute_units ? inf->compute_units : 1;
        if ((uint64_t)K * 16 > KR_L2_BYTES && P > cu)
            P = cu; /* partials beyond cache: extra ones only add init and merge traffic */
        int fits = (uint64_t)K * 16 * P <= KR_PART_BUDGET;
        rc = !forced && fits ? kr_dense_cpu(dev, &b, n, K, P, agg, vt, d)
                             : kr_radix(dev, &b, n, K, agg, vt, d);
    }
    if (rc) goto out;
    if ((agg != SP_AGG_COUNT && (rc = dev_buf_sync_host(dev, &b.acc, d))) ||
        (rc = dev_buf_sync_host(dev, &b.cnt, d)))
        goto out;
out:
    kr_bufs_release(dev, &b);
    if (rc) diag_prefix(d, "kreduce_dense(n=%zu, K=%u)", n, K);
    return rc;
}

/* --------------------------------------------------------------------------- all */

/* The partials are raw 8-byte words read back from the device: loads and stores go through
 * memcpy, since reading an int64_t array as double is undefined (strict aliasing) and -O3
 * does miscompile it. */
static void kr_combine(void *acc, const void *part, sp_agg agg, int dbl)
{
    if (dbl) {
        double a, v;
        memcpy(&a, acc, 8);
        memcpy(&v, part, 8);
        if (agg == SP_AGG_MIN)
            KR_MIN(a, v);
        else if (agg == SP_AGG_MAX)
            KR_MAX(a, v);
        else
            KR_ADD_D(a, v);
        memcpy(acc, &a, 8);
    } else {
        int64_t a, v;
        memcpy(&a, acc, 8);
        memcpy(&v, part, 8);
        if (agg == SP_AGG_MIN)
            KR_MIN(a, v);
        else if (agg == SP_AGG_MAX)
            KR_MAX(a, v);
        else
            KR_ADD_I(a, v);
        memcpy(acc, &a, 8);
    }
}

int kreduce_all(sp_dev *dev, const void *vals, sp_type vt, size_t n, sp_agg agg, void *acc,
                sp_diag *d)
{
    SP_CHECK(d, agg >= SP_AGG_SUM && agg <= SP_AGG_AVG, SP_EINVAL, "kreduce_all: aggregate %d",
             (int)agg);
    SP_CHECK(d, agg == SP_AGG_COUNT || kr_value_type_ok(vt), SP_ETYPE,
             "kreduce_all: cannot aggregate values of type %s", sp_type_name(vt));
    SP_CHECK(d, acc && (vals || n == 0 || agg == SP_AGG_COUNT), SP_EINVAL,
             "kreduce_all: NULL argument");
    int dbl = kagg_acc_type(agg, vt) == SP_F64;
    if (agg == SP_AGG_COUNT || n == 0 || !dev || n < kr_small_rows(dev) ||
        (dbl && !dev_get_info(dev)->fp64)) {
        dev_count_rows(dev, n, 0);
        kreduce_all_ref(vals, vt, n, agg, acc);
        return SP_OK;
    }
    dev_count_rows(dev, n, 1);
    int gpu = dev_strategy(dev) == DEV_STRATEGY_GPU;
    size_t lws = gpu ? dev_wg_size(dev) : 1;
    size_t P = gpu ? kr_gpu_groups(dev, n, lws) : kr_cpu_chunks(dev, n, 1 << 16);
    P = kr_min(P, KR_ALL_MAX_PARTS);
    cl_ulong n64 = n;
    cl_uint P32 = (cl_uint)P;
    dev_buf bv, bp;
    memset(&bv, 0, sizeof bv);
    memset(&bp, 0, sizeof bp);
    int64_t part[KR_ALL_MAX_PARTS * 8]; /* 64-byte strided partials, finished here */
    char name[64];
    int rc;
    if ((rc = dev_buf_wrap(dev, (void *)vals, n * kr_width(vt), DEV_BUF_READ, &bv, d)) ||
        (rc = dev_buf_alloc(dev, P * 64, &bp, d)))
        goto out;
    kr_kname(name, sizeof name, "all", agg, vt);
    kr_arg a[] = {KR_MEM(bv), KR_VAL(n64), KR_VAL(P32), KR_MEM(bp), {lws * 8, NULL}};
    if ((rc = kr_run_kernel(dev, name, a, gpu ? 5 : 4, P * lws, lws, d))) goto out;
    if ((rc = dev_buf_read(dev, &bp, 0, part, P * 64, d))) goto out;
    /* The first partial seeds the result: every chunk is non-empty here (P <= n). */
    memcpy(acc, part, 8);
    for (size_t p = 1; p < P; p++)
        kr_combine(acc, part + p * 8, agg, dbl);
out:
    dev_buf_release(&bp);
    dev_buf_release(&bv);
    if (rc) diag_prefix(d, "kreduce_all(n=%zu)", n);
    return rc;
}
