/* hll.c — HyperLogLog sketches (contracts in hll_int.h). */
#include "ops/hll_int.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

int hll_precision(double rsd, int *p, sp_diag *d)
{
    /* Spark: require(relativeSD > 0.000017); p = ceil(2 log2(1.054 / rsd)), at least 4. */
    SP_CHECK(d, rsd > 0.000017, SP_EINVAL,
             "countApproxDistinct: accuracy (%g) must be greater than 0.000017", rsd);
    double pf = ceil(2.0 * log2(1.054 / rsd));
    int pi = pf < HLL_MIN_P ? HLL_MIN_P : (int)pf;
    SP_CHECK(d, pi <= HLL_MAX_P, SP_EUNSUPPORTED,
             "countApproxDistinct: accuracy %g needs 2^%d registers; the smallest supported "
             "is about %.4f (2^%d)",
             rsd, pi, 1.054 / sqrt((double)(1u << HLL_MAX_P)), HLL_MAX_P);
    *p = pi;
    return SP_OK;
}

double hll_rse(int p)
{
    return 1.04 / sqrt((double)((uint64_t)1 << p));
}

hll *hll_new(const sp_allocator *a, int p)
{
    if (p < HLL_MIN_P || p > HLL_MAX_P) return NULL;
    hll *h = mem_alloc(a, sizeof *h);
    if (!h) return NULL;
    h->p = p;
    h->reg = mem_calloc(a, (size_t)1 << p, 1);
    if (!h->reg) {
        mem_free(a, h);
        return NULL;
    }
    return h;
}

void hll_free(const sp_allocator *a, hll *h)
{
    if (!h) return;
    mem_free(a, h->reg);
    mem_free(a, h);
}

void hll_clear(hll *h)
{
    memset(h->reg, 0, (size_t)1 << h->p);
}

/* ------------------------------------------------------------------------------- hashing */

uint64_t hll_hash_bytes(const void *s, size_t len, uint64_t seed)
{
    return XXH3_64bits_withSeed(s, len, seed);
}

uint64_t hll_hash_i64(int64_t v, uint64_t seed)
{
    uint8_t b[8];
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    return XXH3_64bits_withSeed(b, sizeof b, seed);
}

uint64_t hll_hash_f64(double v, uint64_t seed)
{
    uint64_t u;
    if (v == 0.0) v = 0.0; /* -0.0 -> +0.0 */
    if (isnan(v))
        u = 0x7ff8000000000000ull;
    else
        memcpy(&u, &v, sizeof u);
    return hll_hash_i64((int64_t)u, seed);
}

uint64_t hll_hash_row(const sp_col *cols, int ncols, const sp_dict *dict, size_t i)
{
    uint64_t h = 0;
    for (int c = 0; c < ncols; c++) {
        const sp_col *col = &cols[c];
        switch (col->type) {
        case SP_STR: {
            size_t len = 0;
            const char *s = col_get_str(col, dict, i, &len);
            h = hll_hash_bytes(s, len, h);
            break;
        }
        case SP_F32:
        case SP_F64:
            h = hll_hash_f64(col_get_f64(col, i), h);
            break;
        default:
            h = hll_hash_i64(col_get_i64(col, i), h);
            break;
        }
    }
    return h;
}

/* ---------------------------------------------------------------------------- merge, count */

int hll_merge(hll *dst, const hll *src, sp_diag *d)
{
    SP_CHECK(d, dst->p == src->p, SP_EINVAL, "hll_merge: precisions differ (%d and %d)", dst->p,
             src->p);
    size_t m = (size_t)1 << dst->p;
    uint8_t *r = dst->reg;
    const uint8_t *s = src->reg;
    for (size_t j = 0; j < m; j++)
        r[j] = r[j] > s[j] ? r[j] : s[j];
    return SP_OK;
}

/* Ertl's sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), the small-range correction term. */
static double hll_sigma(double x)
{
    if (x == 1.0) return INFINITY;
    double y = 1.0, z = x, prev;
    do {
        x *= x;
        prev = z;
        z += x * y;
        y += y;
    } while (z != prev);
    return z;
}

/* Ertl's tau(x) = (1 - x - sum_{k>=1} (1 - x^(2^-k))^2 2^-k) / 3, the large-range term. */
static double hll_tau(double x)
{
    if (x == 0.0 || x == 1.0) return 0.0;
    double y = 1.0, z = 1.0 - x, prev;
    do {
        x = sqrt(x);
        prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (z != prev);
    return z / 3.0;
}

double hll_estimate(const hll *h)
{
    /* Register histogram c[k], k in [0, q+1], q = 64 - p; then Ertl's improved estimator
     * alpha_inf m^2 / (m sigma(c0/m) + sum_k c_k 2^-k + m tau(1 - c_{q+1}/m) 2^-q). */
    int q = 64 - h->p;
    double m = (double)((uint64_t)1 << h->p);
    uint32_t c[66] = {0};
    size_t nreg = (size_t)1 << h->p;
    for (size_t j = 0; j < nreg; j++)
        c[h->reg[j]]++;
    double z = m * hll_tau(1.0 - (double)c[q + 1] / m);
    for (int k = q; k >= 1; k--)
        z = 0.5 * (z + (double)c[k]);
    z += m * hll_sigma((double)c[0] / m);
    if (isinf(z)) return 0.0; /* every register empty */
    return m * m / (2.0 * log(2.0)) / z;
}

/* ------------------------------------------------------------------------- serialisation */

static const uint8_t hll_magic[4] = {'S', 'P', 'H', 'L'};

size_t hll_serial_size(const hll *h)
{
    return 6 + ((size_t)1 << h->p);
}

int hll_serialize(const hll *h, uint8_t *buf, size_t size, sp_diag *d)
{
    size_t need = hll_serial_size(h);
    SP_CHECK(d, buf && size >= need, SP_EINVAL, "hll_serialize: needs %zu bytes, got %zu", need,
             size);
    memcpy(buf, hll_magic, 4);
    buf[4] = 1;
    buf[5] = (uint8_t)h->p;
    memcpy(buf + 6, h->reg, (size_t)1 << h->p);
    return SP_OK;
}

int hll_deserialize(const sp_allocator *a, const uint8_t *buf, size_t len, hll **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, buf && len >= 6 && !memcmp(buf, hll_magic, 4), SP_EPARSE,
             "hll_deserialize: not a serialised HyperLogLog");
    SP_CHECK(d, buf[4] == 1, SP_EPARSE, "hll_deserialize: unknown version %u", buf[4]);
    int p = buf[5];
    SP_CHECK(d, p >= HLL_MIN_P && p <= HLL_MAX_P, SP_EPARSE, "hll_deserialize: precision %d", p);
    size_t m = (size_t)1 << p;
    SP_CHECK(d, len == 6 + m, SP_EPARSE, "hll_deserialize: %zu bytes, expected %zu", len, 6 + m);
    for (size_t j = 0; j < m; j++)
        SP_CHECK(d, buf[6 + j] <= 65 - p, SP_EPARSE, "hll_deserialize: register %zu is %u", j,
                 buf[6 + j]);
    hll *h = hll_new(a, p);
    if (!h) return diag_set(d, SP_ENOMEM, "hll_deserialize: out of memory");
    memcpy(h->reg, buf + 6, m);
    *out = h;
    return SP_OK;
}
