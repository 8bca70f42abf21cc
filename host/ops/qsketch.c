/* qsketch.c — DDSketch (contracts and the choice of sketch in qsketch_int.h). */
#include "ops/qsketch_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum { QS_MIN_BINS = 2048 };

qsketch *qs_new(const sp_allocator *a, double alpha)
{
    if (!(alpha >= 1e-5 && alpha < 1.0)) return NULL;
    qsketch *s = mem_calloc(a, 1, sizeof *s);
    if (!s) return NULL;
    if (a) s->alloc = *a;
    s->alpha = alpha;
    s->gamma = (1.0 + alpha) / (1.0 - alpha);
    s->lg = log1p(2.0 * alpha / (1.0 - alpha));
    double bins = ceil(log(QS_MAX_RANGE) / s->lg) + 1.0;
    s->max_bins = bins < QS_MIN_BINS ? QS_MIN_BINS : (uint32_t)bins;
    qs_clear(s);
    return s;
}

void qs_free(qsketch *s)
{
    if (!s) return;
    sp_allocator a = s->alloc;
    mem_free(&a, s->pos.cnt);
    mem_free(&a, s->neg.cnt);
    mem_free(&a, s);
}

void qs_clear(qsketch *s)
{
    s->pos.len = s->neg.len = 0;
    s->pos.lo = s->neg.lo = 0;
    s->zero = s->n = s->skipped = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

/* ---------------------------------------------------------------------------------- stores */

/* Makes st cover [lo, hi] (a superset of what it covers), folding buckets that fall more than
 * max_bins below hi into the lowest kept one. Cost O(new length) when the range grows. */
static int qs_store_cover(const sp_allocator *a, qs_store *st, int32_t lo, int32_t hi,
                          uint32_t max_bins)
{
    if (st->len) {
        int32_t cur_hi = st->lo + (int32_t)st->len - 1;
        if (lo >= st->lo && hi <= cur_hi) return SP_OK;
        /* Growing downwards moves every bucket: take half the length again as headroom so
         * that a store filled from the top moves O(log) times, not once per new bucket. */
        if (lo < st->lo && (int64_t)lo - st->len / 2 >= INT32_MIN) lo -= (int32_t)(st->len / 2);
        if (st->lo < lo) lo = st->lo;
        if (cur_hi > hi) hi = cur_hi;
    }
    if ((int64_t)hi - lo + 1 > (int64_t)max_bins) lo = hi - (int32_t)max_bins + 1;
    uint32_t nlen = (uint32_t)(hi - lo + 1);
    if (nlen > st->cap) {
        uint32_t ncap = st->cap ? st->cap : 64;
        while (ncap < nlen)
            ncap *= 2;
        uint64_t *c = mem_realloc(a, st->cnt, (size_t)ncap * sizeof *c);
        if (!c) return SP_ENOMEM;
        st->cnt = c;
        st->cap = ncap;
    }
    if (!st->len) {
        memset(st->cnt, 0, (size_t)nlen * sizeof *st->cnt);
    } else {
        /* Old buckets [st->lo, cur_hi] move to offset st->lo - lo; those below lo fold. */
        uint64_t folded = 0;
        uint32_t skip = 0;
        if (st->lo < lo) {
            skip = (uint32_t)(lo - st->lo);
            if (skip > st->len) skip = st->len;
            for (uint32_t i = 0; i < skip; i++)
                folded += st->cnt[i];
        }
        uint32_t keep = st->len - skip;
        int32_t from = st->lo + (int32_t)skip; /* index of the first kept bucket */
        uint32_t at = (uint32_t)(from - lo);
        if (at != skip) memmove(st->cnt + at, st->cnt + skip, (size_t)keep * sizeof *st->cnt);
        memset(st->cnt, 0, (size_t)at * sizeof *st->cnt);
        memset(st->cnt + at + keep, 0, (size_t)(nlen - at - keep) * sizeof *st->cnt);
        st->cnt[0] += folded;
    }
    st->lo = lo;
    st->len = nlen;
    return SP_OK;
}

static int qs_store_add(const qsketch *s, qs_store *st, int32_t idx, uint64_t count)
{
    /* Fast path: idx inside the covered range (the common case once a store has warmed). */
    if (idx >= st->lo && (int64_t)idx - st->lo < (int64_t)st->len) {
        st->cnt[idx - st->lo] += count;
        return SP_OK;
    }
    if (qs_store_cover(&s->alloc, st, idx, idx, s->max_bins)) return SP_ENOMEM;
    if (idx < st->lo) idx = st->lo; /* collapsed */
    st->cnt[idx - st->lo] += count;
    return SP_OK;
}

static int32_t qs_index(const qsketch *s, double x)
{
    return (int32_t)ceil(log(x) / s->lg);
}

static double qs_value(const qsketch *s, int32_t idx)
{
    return 2.0 * exp((double)idx * s->lg) / (s->gamma + 1.0);
}

/* ---------------------------------------------------------------------------------- public */

int qs_add(qsketch *s, double x)
{
    if (isnan(x) || isinf(x)) {
        s->skipped++;
        return SP_OK;
    }
    if (fabs(x) < DBL_MIN) {
        s->zero++;
    } else if (x > 0) {
        if (qs_store_add(s, &s->pos, qs_index(s, x), 1)) return SP_ENOMEM;
    } else {
        if (qs_store_add(s, &s->neg, qs_index(s, -x), 1)) return SP_ENOMEM;
    }
    s->n++;
    if (x < s->min) s->min = x;
    if (x > s->max) s->max = x;
    return SP_OK;
}

int32_t qs_bucket(const qsketch *s, double ax)
{
    return qs_index(s, ax);
}

int qs_add_bucket(qsketch *s, double x, int32_t idx)
{
    if (qs_store_add(s, x > 0 ? &s->pos : &s->neg, idx, 1)) return SP_ENOMEM;
    s->n++;
    if (x < s->min) s->min = x;
    if (x > s->max) s->max = x;
    return SP_OK;
}

static int qs_store_merge(qsketch *s, qs_store *st, const qs_store *o)
{
    if (!o->len) return SP_OK;
    int32_t ohi = o->lo + (int32_t)o->len - 1;
    if (qs_store_cover(&s->alloc, st, o->lo, ohi, s->max_bins)) return SP_ENOMEM;
    for (uint32_t i = 0; i < o->len; i++) {
        int32_t idx = o->lo + (int32_t)i;
        if (idx < st->lo) idx = st->lo;
        st->cnt[idx - st->lo] += o->cnt[i];
    }
    return SP_OK;
}

int qs_merge(qsketch *s, const qsketch *o, sp_diag *d)
{
    SP_CHECK(d, s->alpha == o->alpha, SP_EINVAL, "qs_merge: relative accuracies differ (%g and %g)",
             s->alpha, o->alpha);
    if (qs_store_merge(s, &s->pos, &o->pos) || qs_store_merge(s, &s->neg, &o->neg))
        return diag_set(d, SP_ENOMEM, "qs_merge: out of memory growing a store");
    s->zero += o->zero;
    s->n += o->n;
    s->skipped += o->skipped;
    if (o->min < s->min) s->min = o->min;
    if (o->max > s->max) s->max = o->max;
    return SP_OK;
}

static double qs_clamp(const qsketch *s, double v)
{
    return v < s->min ? s->min : v > s->max ? s->max : v;
}

/* The value of the element of 0-based rank floor(rank): walks the buckets in value order,
 * most negative first. cum and *pos carry the walk over between calls with rising ranks. */
typedef struct qs_walk {
    int part;   /* 0 negative store, 1 zero, 2 positive store */
    uint32_t i; /* next bucket of the current store */
    double cum; /* values in the buckets already passed */
    double val; /* value of the last bucket passed */
} qs_walk;

static double qs_walk_to(const qsketch *s, qs_walk *w, double rank)
{
    while (w->cum <= rank && w->part < 3) {
        if (w->part == 0) {
            if (w->i < s->neg.len) {
                uint32_t b = s->neg.len - 1 - w->i++;
                w->cum += (double)s->neg.cnt[b];
                w->val = -qs_value(s, s->neg.lo + (int32_t)b);
                continue;
            }
            w->part = 1;
            w->i = 0;
        }
        if (w->part == 1) {
            w->part = 2;
            if (s->zero) {
                w->cum += (double)s->zero;
                w->val = 0.0;
            }
            continue;
        }
        if (w->i < s->pos.len) {
            w->cum += (double)s->pos.cnt[w->i];
            w->val = qs_value(s, s->pos.lo + (int32_t)w->i++);
            continue;
        }
        w->part = 3;
        w->val = s->max;
    }
    return qs_clamp(s, w->val);
}

double qs_quantile(const qsketch *s, double q)
{
    double out;
    qs_quantiles(s, 1, &q, &out);
    return out;
}

void qs_quantiles(const qsketch *s, int nq, const double *qs, double *out)
{
    /* One walk for all of them: ranks visited in rising order (nq is small: insertion sort). */
    int ord[64];
    int n = nq < 64 ? nq : 64;
    for (int j = 0; j < n; j++) {
        int k = j;
        while (k > 0 && qs[ord[k - 1]] > qs[j]) {
            ord[k] = ord[k - 1];
            k--;
        }
        ord[k] = j;
    }
    qs_walk w = {0, 0, 0.0, 0.0};
    for (int j = 0; j < n; j++) {
        double q = qs[ord[j]];
        if (s->n == 0 || isnan(q)) {
            out[ord[j]] = NAN;
            continue;
        }
        q = q < 0 ? 0 : q > 1 ? 1 : q;
        out[ord[j]] = qs_walk_to(s, &w, q * (double)(s->n - 1));
    }
    for (int j = n; j < nq; j++)
        out[j] = qs_quantile(s, qs[j]);
}

/* --------------------------------------------------------------------------- serialisation */

static const uint8_t qs_magic[4] = {'S', 'P', 'D', 'D'};

static uint8_t *qs_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *qs_putf(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return qs_put64(p, u);
}

static uint64_t qs_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static double qs_getf(const uint8_t *p)
{
    uint64_t u = qs_get64(p);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

enum { QS_HEADER = 5 + 6 * 8 };

size_t qs_serial_size(const qsketch *s)
{
    return QS_HEADER + 2 * 16 + 8 * ((size_t)s->neg.len + s->pos.len);
}

int qs_serialize(const qsketch *s, uint8_t *buf, size_t size, sp_diag *d)
{
    size_t need = qs_serial_size(s);
    SP_CHECK(d, buf && size >= need, SP_EINVAL, "qs_serialize: needs %zu bytes, got %zu", need,
             size);
    memcpy(buf, qs_magic, 4);
    buf[4] = 1;
    uint8_t *p = buf + 5;
    p = qs_putf(p, s->alpha);
    p = qs_put64(p, s->n);
    p = qs_put64(p, s->zero);
    p = qs_put64(p, s->skipped);
    p = qs_putf(p, s->min);
    p = qs_putf(p, s->max);
    const qs_store *st[2] = {&s->neg, &s->pos};
    for (int k = 0; k < 2; k++) {
        p = qs_put64(p, (uint64_t)(int64_t)st[k]->lo);
        p = qs_put64(p, st[k]->len);
        for (uint32_t i = 0; i < st[k]->len; i++)
            p = qs_put64(p, st[k]->cnt[i]);
    }
    return SP_OK;
}

int qs_deserialize(const sp_allocator *a, const uint8_t *buf, size_t len, qsketch **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, buf && len >= QS_HEADER + 32 && !memcmp(buf, qs_magic, 4), SP_EPARSE,
             "qs_deserialize: not a serialised DDSketch");
    SP_CHECK(d, buf[4] == 1, SP_EPARSE, "qs_deserialize: unknown version %u", buf[4]);
    const uint8_t *p = buf + 5;
    qsketch *s = qs_new(a, qs_getf(p));
    if (!s) return diag_set(d, SP_EPARSE, "qs_deserialize: bad accuracy or out of memory");
    s->n = qs_get64(p + 8);
    s->zero = qs_get64(p + 16);
    s->skipped = qs_get64(p + 24);
    s->min = qs_getf(p + 32);
    s->max = qs_getf(p + 40);
    p = buf + QS_HEADER;
    size_t left = len - QS_HEADER;
    qs_store *st[2] = {&s->neg, &s->pos};
    uint64_t total = s->zero;
    int rc = SP_OK;
    for (int k = 0; k < 2 && !rc; k++) {
        if (left < 16) {
            rc = diag_set(d, SP_EPARSE, "qs_deserialize: truncated");
            break;
        }
        int64_t lo = (int64_t)qs_get64(p);
        uint64_t n = qs_get64(p + 8);
        p += 16;
        left -= 16;
        if (lo < INT32_MIN || lo > INT32_MAX || n > s->max_bins || n * 8 > left ||
            lo + (int64_t)n - 1 > INT32_MAX) {
            rc = diag_set(d, SP_EPARSE, "qs_deserialize: bad store %d", k);
            break;
        }
        if (n && qs_store_cover(&s->alloc, st[k], (int32_t)lo, (int32_t)(lo + (int64_t)n - 1),
                                s->max_bins)) {
            rc = diag_set(d, SP_ENOMEM, "qs_deserialize: out of memory");
            break;
        }
        for (uint64_t i = 0; i < n; i++) {
            st[k]->cnt[i] = qs_get64(p);
            total += st[k]->cnt[i];
            p += 8;
        }
        left -= n * 8;
    }
    if (!rc && (left != 0 || total != s->n))
        rc = diag_set(d, SP_EPARSE, "qs_deserialize: counts do not add up");
    if (rc) {
        qs_free(s);
        return rc;
    }
    *out = s;
    return SP_OK;
}
