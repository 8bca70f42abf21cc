/* topk.c — top-k selection with a bounded heap (contracts in topk_int.h). */
#include "ops/topk_int.h"

#include <math.h>
#include <string.h>

static int topk_is_float(sp_type t)
{
    return t == SP_F32 || t == SP_F64;
}

/* Descending values: < 0 when a's value is larger. NaN below every number. */
static int topk_cmp_value(const sp_col *c, size_t i, size_t j)
{
    if (topk_is_float(c->type)) {
        double a = col_get_f64(c, i), b = col_get_f64(c, j);
        int an = isnan(a), bn = isnan(b);
        if (an || bn) return an - bn;
        return a > b ? -1 : a < b ? 1 : 0;
    }
    int64_t a = col_get_i64(c, i), b = col_get_i64(c, j);
    return a > b ? -1 : a < b ? 1 : 0;
}

/* Ascending keys, one column. */
static int topk_cmp_key(const sp_col *c, const sp_dict *dict, size_t i, size_t j)
{
    if (c->type == SP_STR) {
        if (c->enc == ENC_DICT && ((const uint32_t *)c->data)[i] == ((const uint32_t *)c->data)[j])
            return 0;
        size_t la = 0, lb = 0;
        const char *a = col_get_str(c, dict, i, &la);
        const char *b = col_get_str(c, dict, j, &lb);
        int r = memcmp(a, b, la < lb ? la : lb);
        if (r) return r < 0 ? -1 : 1;
        return la < lb ? -1 : la > lb ? 1 : 0;
    }
    if (topk_is_float(c->type)) {
        double a = col_get_f64(c, i), b = col_get_f64(c, j);
        int an = isnan(a), bn = isnan(b);
        if (an || bn) return an - bn;
        return a < b ? -1 : a > b ? 1 : 0;
    }
    int64_t a = col_get_i64(c, i), b = col_get_i64(c, j);
    return a < b ? -1 : a > b ? 1 : 0;
}

int topk_cmp(const sp_batch *b, int nkey, int vcol, size_t i, size_t j)
{
    if (i == j) return 0;
    int r = topk_cmp_value(&b->cols[vcol], i, j);
    for (int c = 0; !r && c < nkey; c++)
        r = topk_cmp_key(&b->cols[c], b->env ? b->env->dict : NULL, i, j);
    if (r) return r;
    return i < j ? -1 : 1;
}

/* Heap with the worst kept row at the root: parent ranks after its children. */
static void topk_sift_down(const sp_batch *b, int nkey, int vcol, size_t *h, size_t n, size_t at)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, w = at;
        if (l < n && topk_cmp(b, nkey, vcol, h[l], h[w]) > 0) w = l;
        if (r < n && topk_cmp(b, nkey, vcol, h[r], h[w]) > 0) w = r;
        if (w == at) return;
        size_t t = h[at];
        h[at] = h[w];
        h[w] = t;
        at = w;
    }
}

static void topk_sift_up(const sp_batch *b, int nkey, int vcol, size_t *h, size_t at)
{
    while (at > 0) {
        size_t p = (at - 1) / 2;
        if (topk_cmp(b, nkey, vcol, h[at], h[p]) <= 0) return;
        size_t t = h[at];
        h[at] = h[p];
        h[p] = t;
        at = p;
    }
}

size_t topk_select(const sp_batch *b, int nkey, int vcol, size_t k, const size_t *rows,
                   size_t first, size_t n, size_t *out)
{
    size_t m = 0;
    if (k == 0) return 0;
    for (size_t j = 0; j < n; j++) {
        size_t row = rows ? rows[j] : first + j;
        if (m < k) {
            out[m] = row;
            topk_sift_up(b, nkey, vcol, out, m++);
        } else if (topk_cmp(b, nkey, vcol, row, out[0]) < 0) {
            out[0] = row;
            topk_sift_down(b, nkey, vcol, out, m, 0);
        }
    }
    /* Heap sort: the worst goes to the end, so out ends best first. */
    for (size_t e = m; e > 1; e--) {
        size_t t = out[0];
        out[0] = out[e - 1];
        out[e - 1] = t;
        topk_sift_down(b, nkey, vcol, out, e - 1, 0);
    }
    return m;
}
