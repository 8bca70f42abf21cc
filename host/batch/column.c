/* column.c — typed columns in arena blocks (col_*). Growth doubles the block (arena classes
 * are powers of two anyway), copies, and returns the old block to the arena. */
#include "batch/batch_int.h"

#include <assert.h>
#include <string.h>

void col_init(sp_col *c, sp_type t, col_enc enc, sp_arena *arena)
{
    assert(arena != NULL);
    assert(t == SP_STR ? enc != ENC_PLAIN : enc == ENC_PLAIN);
    memset(c, 0, sizeof *c);
    c->type = t;
    c->enc = enc;
    c->arena = arena;
}

/* Bytes per entry of data: ENC_RAW holds i64 offsets. */
static size_t col_width(const sp_col *c)
{
    return c->enc == ENC_RAW ? sizeof(int64_t) : type_width(c->type);
}

/* Entries data holds for len elements. */
static size_t col_entries(const sp_col *c, size_t len)
{
    return c->enc == ENC_RAW ? len + 1 : len;
}

static int col_grow_block(sp_arena *ar, void **blk, size_t *cap, size_t used, size_t need)
{
    size_t want = need > *cap * 2 ? need : *cap * 2;
    size_t ncap;
    void *p = arena_get(ar, want, &ncap);
    if (!p) return SP_ENOMEM;
    if (used) memcpy(p, *blk, used);
    arena_put(ar, *blk, *cap);
    *blk = p;
    *cap = ncap;
    return 0;
}

int col_reserve(sp_col *c, size_t n, size_t nbytes)
{
    assert(c->arena != NULL);
    size_t w = col_width(c);
    if (n >= SIZE_MAX / 16) return SP_ENOMEM;
    size_t need = col_entries(c, n) * w;
    if (need > c->cap) {
        int fresh = c->data == NULL;
        if (col_grow_block(c->arena, &c->data, &c->cap, c->data ? col_entries(c, c->len) * w : 0,
                           need))
            return SP_ENOMEM;
        if (fresh && c->enc == ENC_RAW) ((int64_t *)c->data)[0] = 0;
    }
    if (c->enc == ENC_RAW && nbytes > c->bytes_cap) {
        void *blk = c->bytes;
        if (col_grow_block(c->arena, &blk, &c->bytes_cap, c->nbytes, nbytes)) return SP_ENOMEM;
        c->bytes = blk;
    }
    return 0;
}

/* Room for one more element. */
static int col_room1(sp_col *c)
{
    if (col_entries(c, c->len + 1) * col_width(c) <= c->cap) return 0;
    return col_reserve(c, c->len + 1, c->nbytes);
}

static void col_set_num(sp_col *c, size_t i, int64_t iv, double fv, int is_float)
{
    switch (c->type) {
    case SP_I32:
        ((int32_t *)c->data)[i] = (int32_t)(is_float ? (int64_t)fv : iv);
        break;
    case SP_I64:
    case SP_TS:
        ((int64_t *)c->data)[i] = is_float ? (int64_t)fv : iv;
        break;
    case SP_BOOL:
        ((uint8_t *)c->data)[i] = is_float ? fv != 0 : iv != 0;
        break;
    case SP_F32:
        ((float *)c->data)[i] = (float)(is_float ? fv : (double)iv);
        break;
    case SP_F64:
        ((double *)c->data)[i] = is_float ? fv : (double)iv;
        break;
    default:
        assert(0 && "numeric push on a string column");
    }
}

int col_push_i64(sp_col *c, int64_t v)
{
    if (c->type == SP_STR) return SP_EINVAL;
    if (col_room1(c)) return SP_ENOMEM;
    col_set_num(c, c->len++, v, 0, 0);
    return 0;
}

int col_push_f64(sp_col *c, double v)
{
    if (c->type == SP_STR) return SP_EINVAL;
    if (col_room1(c)) return SP_ENOMEM;
    col_set_num(c, c->len++, 0, v, 1);
    return 0;
}

int col_push_id(sp_col *c, uint32_t id)
{
    if (c->type != SP_STR || c->enc != ENC_DICT) return SP_EINVAL;
    if (col_room1(c)) return SP_ENOMEM;
    ((uint32_t *)c->data)[c->len++] = id;
    return 0;
}

int col_push_text(sp_col *c, const char *s, size_t len)
{
    if (c->type != SP_STR || c->enc != ENC_RAW) return SP_EINVAL;
    if (col_reserve(c, c->len + 1, c->nbytes + len)) return SP_ENOMEM;
    if (len) memcpy(c->bytes + c->nbytes, s, len);
    c->nbytes += len;
    ((int64_t *)c->data)[++c->len] = (int64_t)c->nbytes;
    return 0;
}

int64_t col_get_i64(const sp_col *c, size_t i)
{
    assert(i < c->len);
    switch (c->type) {
    case SP_I32:
        return ((const int32_t *)c->data)[i];
    case SP_I64:
    case SP_TS:
        return ((const int64_t *)c->data)[i];
    case SP_BOOL:
        return ((const uint8_t *)c->data)[i] != 0;
    case SP_F32:
        return (int64_t)((const float *)c->data)[i];
    case SP_F64:
        return (int64_t)((const double *)c->data)[i];
    case SP_STR:
        return c->enc == ENC_DICT ? (int64_t)((const uint32_t *)c->data)[i] : 0;
    default:
        return 0;
    }
}

double col_get_f64(const sp_col *c, size_t i)
{
    assert(i < c->len);
    switch (c->type) {
    case SP_F32:
        return ((const float *)c->data)[i];
    case SP_F64:
        return ((const double *)c->data)[i];
    default:
        return (double)col_get_i64(c, i);
    }
}

const char *col_get_str(const sp_col *c, const sp_dict *dict, size_t i, size_t *len)
{
    assert(i < c->len);
    if (c->type != SP_STR) {
        if (len) *len = 0;
        return NULL;
    }
    if (c->enc == ENC_DICT) return dict_get(dict, ((const uint32_t *)c->data)[i], len);
    const int64_t *off = c->data;
    if (len) *len = (size_t)(off[i + 1] - off[i]);
    return c->bytes ? c->bytes + off[i] : "";
}

int col_encode(sp_col *c, sp_dict *dict, sp_diag *d)
{
    if (c->enc == ENC_DICT) return 0;
    SP_CHECK(d, c->type == SP_STR && c->enc == ENC_RAW, SP_EINVAL,
             "col_encode: not a raw text column");
    void *ids = NULL;
    size_t cap = 0;
    if (c->len) {
        ids = arena_get(c->arena, c->len * sizeof(uint32_t), &cap);
        if (!ids)
            return diag_set(d, SP_ENOMEM, "col_encode: out of column memory (%zu ids)", c->len);
        const int64_t *off = c->data;
        for (size_t i = 0; i < c->len; i++) {
            const char *s = c->bytes ? c->bytes + off[i] : "";
            uint32_t id = dict_intern(dict, s, (size_t)(off[i + 1] - off[i]));
            if (id == UINT32_MAX) {
                arena_put(c->arena, ids, cap);
                return diag_set(d, SP_ENOMEM, "col_encode: dictionary full or out of memory");
            }
            ((uint32_t *)ids)[i] = id;
        }
    }
    arena_put(c->arena, c->data, c->cap);
    arena_put(c->arena, c->bytes, c->bytes_cap);
    c->data = ids;
    c->cap = cap;
    c->bytes = NULL;
    c->nbytes = c->bytes_cap = 0;
    c->enc = ENC_DICT;
    return 0;
}

int col_push_from(sp_col *dst, const sp_col *src, const sp_dict *dict, size_t i)
{
    assert(i < src->len);
    if (dst->type != src->type) return SP_EINVAL;
    if (dst->type != SP_STR) {
        size_t w = type_width(dst->type);
        if (col_room1(dst)) return SP_ENOMEM;
        memcpy((char *)dst->data + dst->len * w, (const char *)src->data + i * w, w);
        dst->len++;
        return 0;
    }
    if (dst->enc == ENC_DICT && src->enc == ENC_DICT)
        return col_push_id(dst, ((const uint32_t *)src->data)[i]);
    size_t len;
    const char *s = col_get_str(src, dict, i, &len);
    if (dst->enc == ENC_RAW) return col_push_text(dst, s, len);
    /* Raw into dictionary ids: interning mutates the dictionary's interior only (ids already
     * handed out never change), so the const on dict is kept by every caller's view. */
    uint32_t id = dict_intern((sp_dict *)dict, s, len);
    return id == UINT32_MAX ? SP_ENOMEM : col_push_id(dst, id);
}

int col_push_range(sp_col *dst, const sp_col *src, const sp_dict *dict, size_t lo, size_t hi)
{
    assert(lo <= hi && hi <= src->len);
    if (dst->type != src->type) return SP_EINVAL;
    size_t n = hi - lo;
    if (n == 0) return 0;
    if (dst->enc == src->enc && dst->enc != ENC_RAW) {
        size_t w = type_width(dst->type);
        if (col_reserve(dst, dst->len + n, 0)) return SP_ENOMEM;
        memcpy((char *)dst->data + dst->len * w, (const char *)src->data + lo * w, n * w);
        dst->len += n;
        return 0;
    }
    if (dst->enc == ENC_RAW && src->enc == ENC_RAW) {
        const int64_t *so = src->data;
        size_t nb = (size_t)(so[hi] - so[lo]);
        if (col_reserve(dst, dst->len + n, dst->nbytes + nb)) return SP_ENOMEM;
        if (nb) memcpy(dst->bytes + dst->nbytes, src->bytes + so[lo], nb);
        int64_t *dof = dst->data;
        int64_t shift = (int64_t)dst->nbytes - so[lo];
        for (size_t k = 1; k <= n; k++)
            dof[dst->len + k] = so[lo + k] + shift;
        dst->len += n;
        dst->nbytes += nb;
        return 0;
    }
    for (size_t i = lo; i < hi; i++) {
        int rc = col_push_from(dst, src, dict, i);
        if (rc) return rc;
    }
    return 0;
}

void col_truncate(sp_col *c, size_t n)
{
    assert(n <= c->len);
    c->len = n;
    if (c->enc == ENC_RAW && c->data) c->nbytes = (size_t)((const int64_t *)c->data)[n];
}

void col_release(sp_col *c)
{
    if (c->arena) {
        arena_put(c->arena, c->data, c->cap);
        arena_put(c->arena, c->bytes, c->bytes_cap);
    }
    c->data = NULL;
    c->bytes = NULL;
    c->len = c->cap = c->nbytes = c->bytes_cap = 0;
}
