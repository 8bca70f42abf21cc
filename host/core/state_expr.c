/* state_expr.c — updateStateByKey with a lambda tree ((values, state) => Option[S] or
 * (time, key, values, state) => Option[S]), two ways with the same outputs:
 *
 *  kernel  the numeric shape: V and S numbers (V not f32), values used only through .sum
 *          .size .length .isEmpty .nonEmpty, the state only through .getOrElse(x) .isDefined
 *          .isEmpty .nonEmpty, the time only through .milliseconds, an integer key as is, and
 *          the result Some(number) or None under ifs. The lambda is rewritten into a numeric
 *          map over one flat row per live key, X = (slot, sum, size, has, state, time, key),
 *          giving (slot, keep, new state), then filter(keep) and (slot, new state): a fused
 *          ew stage (one generated OpenCL kernel, compaction by prefix sum). Per batch time:
 *          live keys = previous state's keys then the batch's new keys (a hash from key id to
 *          slot, rebuilt per batch); sums and counts of the batch per slot by kreduce_dense;
 *          X built from them and the state column, in key id order (a radix sort: the host
 *          path's order); the stage; the kept rows become the state (K, S). Cost O(state
 *          keys + batch rows), no per-key callback.
 *  host    every other lambda: expr_eval per key with the batch's values as a List and the
 *          state as an Option, through the cogroup of state.c (as the C callback form).
 * The rewrite is exact for the shape above: integer arithmetic wraps in both, integer division
 * by zero fails in both (SP_ERUNTIME), and the kernel computes each condition with the same
 * operators as the host evaluator. Sums of f64 values may round differently (kreduce adds in
 * another association, as Spark's partitions do). */
#include "core/state_int.h"

#include <string.h>

enum { X_SLOT, X_SUM, X_SIZE, X_HAS, X_ST, X_TIME, X_KEY, X_N };

struct stx {
    sp_context *ctx;
    const sp_allocator *a;
    int nparams;
    int a_time, a_key, a_vals, a_state; /* parameter indexes (-1: none) */
    sp_td *key, *val, *state, *time, *vlist, *sopt;
    expr_typed *t;
    expr_scratch sc;
    sp_diag err; /* the host evaluator's last failure */
    /* kernel path */
    int kernel;
    int uses_sum, key_int;
    sp_type vt, st, kt;
    sp_td *xtd;
    ew_step steps[3];
    ew_stage *stage;
    uint64_t *map; /* key id -> slot: (slot << 32 | id), UINT64_MAX empty */
    size_t mcap;
    int mbits;
    uint32_t *rs, *first; /* slot of each batch row; first batch row of each new key */
    uint64_t *ord;        /* (key id << 32 | slot) sorted, then as much scratch */
    size_t ord_cap;
    size_t rs_cap, first_cap;
    void *acc;
    int64_t *cnt;
    size_t acc_cap;
};

static int stx_oom(sp_diag *d)
{
    return diag_set(d, SP_ENOMEM, "updateStateByKey: out of memory");
}

void stx_free(stx *x)
{
    if (!x) return;
    const sp_allocator *a = x->a;
    expr_typed_free(a, x->t);
    expr_scratch_free(&x->sc);
    td_free(a, x->key);
    td_free(a, x->val);
    td_free(a, x->state);
    td_free(a, x->time);
    td_free(a, x->vlist);
    td_free(a, x->sopt);
    td_free(a, x->xtd);
    ew_stage_free(x->stage);
    mem_free(a, x->map);
    mem_free(a, x->rs);
    mem_free(a, x->first);
    mem_free(a, x->ord);
    mem_free(a, x->acc);
    mem_free(a, x->cnt);
    mem_free(a, x);
}

int stx_kernel(const stx *x)
{
    return x->kernel;
}

int stx_error(const stx *x, sp_diag *d)
{
    if (!x->err.code) return SP_OK;
    *d = x->err;
    return diag_prefix(d, "updateStateByKey");
}

/* ----------------------------------------------------------------------- type checking */

/* A binary node whose left operand is one too: a link of a chain a + b + c. */
static int stx_link(const sp_expr *e)
{
    return e->kind == EX_BINOP && e->n == 2 && e->kids[0] && e->kids[0]->kind == EX_BINOP;
}

/* Highest parameter index the body reads outside inner lambdas (-1: none), for a body not
 * yet type checked: nodes below SP_EXPR_MAX_DEPTH are not looked at (the check rejects the
 * tree), and a chain through left operands is followed in a loop (it is one level). */
static int stx_max_arg(const sp_expr *e, uint32_t bound, int depth)
{
    if (!e || depth > SP_EXPR_MAX_DEPTH) return -1;
    int m = -1;
    for (; stx_link(e); e = e->kids[0]) {
        int k = stx_max_arg(e->kids[1], bound, depth + 1);
        if (k > m) m = k;
    }
    if (e->kind == EX_ARG) {
        int k = e->index < 32 && (bound >> e->index & 1) ? -1 : e->index;
        return k > m ? k : m;
    }
    if (e->kind == EX_LAMBDA && e->index < 32) bound |= 1u << e->index;
    for (int i = 0; i < e->n; i++) {
        int k = stx_max_arg(e->kids[i], bound, depth + 1);
        if (k > m) m = k;
    }
    return m;
}

/* Option[S] for the state parameter; S NULL: Option of nothing (the type of None). */
static int stx_sopt(stx *x, const sp_td *st, sp_diag *d)
{
    td_free(x->a, x->sopt);
    x->sopt = NULL;
    if (!st) {
        expr_typed *t = NULL;
        sp_expr probe = {.kind = EX_CALL, .s = "None", .n = 0};
        int rc = expr_compile(&probe, x->a, NULL, NULL, &t, d);
        if (rc) return rc;
        x->sopt = td_copy(x->a, t->td);
        expr_typed_free(x->a, t);
    } else {
        sp_td *c = td_copy(x->a, st);
        x->sopt = c ? td_option(x->a, c) : NULL;
    }
    if (!x->sopt) return stx_oom(d);
    td_layout(x->sopt, 0);
    return SP_OK;
}

static int stx_compile(stx *x, const sp_expr *f, sp_diag *d)
{
    const sp_td *args[4];
    int n = 0;
    if (x->nparams == 4) {
        args[n++] = x->time;
        args[n++] = x->key;
    }
    args[n++] = x->vlist;
    args[n++] = x->sopt;
    expr_typed_free(x->a, x->t);
    x->t = NULL;
    return expr_compile_n(f, x->a, n, args, &x->t, d);
}

/* Type-checks f with nparams parameters; infers or checks the state type. */
static int stx_check(stx *x, const sp_expr *f, const sp_td *want, sp_diag *d)
{
    x->a_time = x->nparams == 4 ? 0 : -1;
    x->a_key = x->nparams == 4 ? 1 : -1;
    x->a_vals = x->nparams == 4 ? 2 : 0;
    x->a_state = x->a_vals + 1;
    int rc;
    if ((rc = stx_sopt(x, want, d)) || (rc = stx_compile(x, f, d))) return rc;
    const sp_td *r = x->t->td;
    if (r->kind != TD_OPTION || expr_is_nothing(r->child[0]))
        return diag_set(d, SP_ETYPE,
                        "updateStateByKey: the function must give Some(state) or None with a "
                        "known state type");
    if (!td_is_flat(r->child[0]))
        return diag_set(d, SP_ETYPE, "updateStateByKey: the state must be values or tuples");
    td_free(x->a, x->state);
    x->state = td_copy(x->a, r->child[0]);
    if (!x->state) return stx_oom(d);
    td_layout(x->state, 0);
    if (!want && ((rc = stx_sopt(x, x->state, d)) || (rc = stx_compile(x, f, d)))) return rc;
    if (!td_equal(x->t->td, x->sopt))
        return diag_set(d, SP_ETYPE,
                        "updateStateByKey: the new state's type differs from the previous "
                        "state's");
    return SP_OK;
}

/* --------------------------------------------------------------------------- the rewrite */

static int stx_leaf(const sp_td *t, sp_type *out)
{
    if (t->kind != TD_LEAF) return 0;
    *out = t->leaf;
    return 1;
}

static sp_expr *stx_field(stx *x, int i)
{
    return sp_expr_field(x->ctx, sp_expr_arg(x->ctx, 0), i);
}

static sp_expr *stx_rw(stx *x, const sp_expr *e);

/* A chain through left operands (a + b + c), rewritten innermost first in a loop: its length
 * costs no stack. The body is type checked, so the recursion below is SP_EXPR_MAX_DEPTH
 * deep at most. */
static sp_expr *stx_rw_chain(stx *x, const sp_expr *e)
{
    int n = 0;
    for (const sp_expr *q = e; q->kind == EX_BINOP; q = q->kids[0])
        n++;
    const sp_expr **sp = mem_alloc(x->a, (size_t)n * sizeof *sp);
    if (!sp) return NULL;
    const sp_expr *q = e;
    for (int i = n - 1; i >= 0; i--, q = q->kids[0])
        sp[i] = q;
    sp_expr *r = stx_rw(x, q);
    for (int i = 0; i < n && r; i++) {
        sp_expr *y = stx_rw(x, sp[i]->kids[1]);
        r = y ? sp_expr_binop(x->ctx, sp[i]->op, r, y) : NULL;
    }
    mem_free(x->a, sp);
    return r;
}

/* e over the lambda's parameters -> the same over X, or NULL outside the numeric shape. */
static sp_expr *stx_rw(stx *x, const sp_expr *e)
{
    sp_context *ctx = x->ctx;
    sp_expr *k[3] = {NULL, NULL, NULL};
    if (stx_link(e)) return stx_rw_chain(x, e);
    switch (e->kind) {
    case EX_I64:
        return sp_expr_i64(ctx, e->i);
    case EX_F64:
        return sp_expr_f64(ctx, e->f);
    case EX_BOOL:
        return sp_expr_bool(ctx, (int)e->i);
    case EX_BINOP:
    case EX_UNOP:
    case EX_IF:
    case EX_CAST:
        for (int i = 0; i < e->n; i++)
            if (!(k[i] = stx_rw(x, e->kids[i]))) return NULL;
        if (e->kind == EX_BINOP) return sp_expr_binop(ctx, e->op, k[0], k[1]);
        if (e->kind == EX_UNOP) return sp_expr_unop(ctx, e->op, k[0]);
        if (e->kind == EX_IF) return sp_expr_if(ctx, k[0], k[1], k[2]);
        return sp_expr_cast(ctx, k[0], e->to);
    case EX_ARG:
        return e->index == x->a_key && x->key_int ? stx_field(x, X_KEY) : NULL;
    case EX_CALL: {
        if (e->n < 1 || e->kids[0]->kind != EX_ARG) return NULL;
        int p = e->kids[0]->index;
        const char *m = e->s;
        if (p == x->a_vals && e->n == 1) {
            if (!strcmp(m, "sum")) {
                x->uses_sum = 1;
                return stx_field(x, X_SUM);
            }
            if (!strcmp(m, "size") || !strcmp(m, "length")) return stx_field(x, X_SIZE);
            if (!strcmp(m, "isEmpty") || !strcmp(m, "nonEmpty"))
                return sp_expr_binop(ctx, m[0] == 'i' ? SP_OP_EQ : SP_OP_NE, stx_field(x, X_SIZE),
                                     sp_expr_i64(ctx, 0));
        } else if (p == x->a_state) {
            if (!strcmp(m, "getOrElse") && e->n == 2) {
                sp_expr *dflt = stx_rw(x, e->kids[1]);
                return dflt ? sp_expr_if(ctx, stx_field(x, X_HAS), stx_field(x, X_ST), dflt) : NULL;
            }
            if (e->n == 1 && (!strcmp(m, "isDefined") || !strcmp(m, "nonEmpty")))
                return stx_field(x, X_HAS);
            if (e->n == 1 && !strcmp(m, "isEmpty"))
                return sp_expr_unop(ctx, SP_OP_NOT, stx_field(x, X_HAS));
        } else if (p == x->a_time && e->n == 1 && !strcmp(m, "milliseconds")) {
            return stx_field(x, X_TIME);
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

/* The result: Some(e) / None / if (c) r1 else r2 -> keep flag and new state. */
static int stx_rw_result(stx *x, const sp_expr *e, sp_expr **keep, sp_expr **val)
{
    sp_context *ctx = x->ctx;
    if (e->kind == EX_CALL && !strcmp(e->s, "Some") && e->n == 1) {
        *keep = sp_expr_bool(ctx, 1);
        *val = stx_rw(x, e->kids[0]);
    } else if (e->kind == EX_CALL && !strcmp(e->s, "None") && e->n == 0) {
        *keep = sp_expr_bool(ctx, 0);
        *val = sp_expr_cast(ctx, sp_expr_i64(ctx, 0), x->st);
    } else if (e->kind == EX_IF) {
        sp_expr *k1, *v1, *k2, *v2, *c = stx_rw(x, e->kids[0]);
        if (!c || !stx_rw_result(x, e->kids[1], &k1, &v1) ||
            !stx_rw_result(x, e->kids[2], &k2, &v2))
            return 0;
        *keep = sp_expr_if(ctx, c, k1, k2);
        *val = sp_expr_if(ctx, c, v1, v2);
    } else {
        return 0;
    }
    return *keep && *val;
}

static int stx_num(sp_type t)
{
    return t == SP_I32 || t == SP_I64 || t == SP_F32 || t == SP_F64;
}

/* Decides the kernel path: the shape, then a type check of the rewritten map over X. */
static void stx_recognise(stx *x, const sp_expr *f)
{
    sp_context *ctx = x->ctx;
    if (!stx_leaf(x->val, &x->vt) || !stx_leaf(x->state, &x->st) || !stx_num(x->vt) ||
        x->vt == SP_F32 || !stx_num(x->st))
        return;
    x->kt = SP_I64;
    sp_type kt;
    if (x->nparams == 4 && stx_leaf(x->key, &kt) && (kt == SP_I32 || kt == SP_I64 || kt == SP_TS)) {
        x->key_int = 1;
        x->kt = kt;
    }
    sp_expr *keep, *val;
    if (!stx_rw_result(x, f, &keep, &val)) return;
    val = sp_expr_cast(ctx, val, x->st);
    sp_expr *row[3] = {stx_field(x, X_SLOT), keep, val};
    sp_expr *m1 = sp_expr_tuple(ctx, 3, row);
    sp_expr *flt = stx_field(x, 1);
    sp_expr *m2 = sp_expr_tuple2(ctx, stx_field(x, 0), stx_field(x, 2));
    if (!m1 || !flt || !m2) return;
    char ty[128];
    snprintf(ty, sizeof ty, "(i64,%s,i64,bool,%s,i64,%s)", sp_type_name(x->vt), sp_type_name(x->st),
             sp_type_name(x->kt));
    sp_diag d;
    diag_clear(&d);
    if (td_parse(x->a, ty, &x->xtd, &d)) return;
    td_layout(x->xtd, 0);
    sp_td *t1 = NULL, *t3 = NULL;
    int ok = !expr_typecheck(m1, x->a, x->xtd, NULL, &t1, &d);
    if (ok) {
        td_layout(t1, 0);
        ok = t1->kind == TD_TUPLE && t1->n == 3 && t1->child[1]->kind == TD_LEAF &&
             t1->child[1]->leaf == SP_BOOL && !expr_typecheck(m2, x->a, t1, NULL, &t3, &d);
    }
    if (ok)
        ok = t3->kind == TD_TUPLE && t3->child[1]->kind == TD_LEAF && t3->child[1]->leaf == x->st;
    td_free(x->a, t1);
    td_free(x->a, t3);
    if (!ok) return;
    x->steps[0] = (ew_step){EW_MAP, m1};
    x->steps[1] = (ew_step){EW_FILTER, flt};
    x->steps[2] = (ew_step){EW_MAP, m2};
    x->kernel = 1;
}

/* ------------------------------------------------------------------------------- build */

static int stx_new(sp_context *ctx, const sp_expr *f, const sp_td *kt, const sp_td *vt,
                   const char *state_type, stx **out, sp_diag *d)
{
    const sp_allocator *a = &ctx->alloc;
    *out = NULL;
    stx *x = mem_calloc(a, 1, sizeof *x);
    if (!x) return stx_oom(d);
    x->ctx = ctx;
    x->a = a;
    expr_scratch_init(&x->sc, a);
    x->key = td_copy(a, kt);
    x->val = td_copy(a, vt);
    sp_td *vc = td_copy(a, vt);
    x->vlist = vc ? td_list(a, vc) : NULL;
    x->time = td_leaf(a, SP_TS);
    sp_td *want = NULL;
    int rc = SP_OK;
    if (!x->key || !x->val || !x->vlist || !x->time) {
        rc = stx_oom(d);
        goto fail;
    }
    td_layout(x->key, 0);
    td_layout(x->val, 0);
    td_layout(x->vlist, 0);
    if (state_type) {
        if ((rc = td_parse(a, state_type, &want, d))) goto fail;
        td_layout(want, 0);
    }
    /* Two or four parameters: four when the body reads past the second; else two, or four
     * when two do not type-check (a time-aware lambda reading only time and key). */
    x->nparams = stx_max_arg(f, 0, 1) >= 2 ? 4 : 2;
    rc = stx_check(x, f, want, d);
    if (rc == SP_ETYPE && x->nparams == 2) {
        sp_diag d4;
        diag_clear(&d4);
        x->nparams = 4;
        if (stx_check(x, f, want, &d4))
            x->nparams = 2;
        else
            rc = SP_OK;
    }
    if (rc) goto fail;
    td_free(a, want);
    stx_recognise(x, f);
    *out = x;
    return SP_OK;
fail:
    td_free(a, want);
    stx_free(x);
    return rc;
}

/* --------------------------------------------------------------------------- host path */

int stx_host_update(void *ud, int64_t time_ms, const sp_row *key, const sp_row *const *values,
                    size_t nvalues, const sp_row *state, sp_emitter *out)
{
    stx *x = ud;
    expr_scratch *s = &x->sc;
    expr_scratch_reset(s);
    sp_diag d;
    diag_clear(&d);
    expr_val args[4], r;
    int n = 0, rc = SP_OK;
    expr_val *vals = expr_scratch_alloc(s, (nvalues ? nvalues : 1) * sizeof *vals);
    expr_val *st = expr_scratch_alloc(s, sizeof *st);
    if (!vals || !st) return SP_ENOMEM;
    if (x->nparams == 4) {
        args[n++] = (expr_val){.t = SP_TS, .u.i = time_ms};
        if ((rc = expr_val_load(key->b, x->key, key->first, key->i, s, &args[n++]))) return rc;
    }
    for (size_t k = 0; k < nvalues; k++)
        if ((rc = expr_val_load(values[k]->b, x->val, values[k]->first, values[k]->i, s, &vals[k])))
            return rc;
    args[n++] = (expr_val){.t = EV_LIST, .n = (int)nvalues, .u.items = vals};
    if (state && (rc = expr_val_load(state->b, x->state, state->first, state->i, s, st))) return rc;
    args[n++] = (expr_val){.t = EV_OPTION, .n = state != NULL, .u.items = st};
    if ((rc = expr_eval(x->t, args, s, &r, &d))) {
        x->err = d; /* state.c reports it (stx_error) */
        return rc;
    }
    if (r.n == 1) {
        rc = expr_val_emit(&r.u.items[0], out);
        if (!rc) rc = sp_emit_end(out);
    }
    return rc;
}

/* ------------------------------------------------------------------------- kernel path */

#define STX_EMPTY UINT64_MAX

static size_t stx_hash(const stx *x, uint32_t id)
{
    return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> (64 - x->mbits));
}

/* Empties the id table, sized for n keys (at most half full). */
static int stx_map_reset(stx *x, size_t n)
{
    int bits = 6;
    while (((size_t)1 << bits) < 2 * n)
        bits++;
    size_t cap = (size_t)1 << bits;
    if (cap > x->mcap || cap * 8 < x->mcap) {
        uint64_t *m = mem_realloc(x->a, x->map, cap * sizeof *m);
        if (!m) return SP_ENOMEM;
        x->map = m;
        x->mcap = cap;
        x->mbits = bits;
    }
    memset(x->map, 0xff, x->mcap * sizeof *x->map);
    return SP_OK;
}

/* Slot of id, inserting (id, *next) when absent (then *fresh = 1 and *next grows). */
static uint32_t stx_map_get(stx *x, uint32_t id, uint32_t *next, int *fresh)
{
    size_t mask = x->mcap - 1;
    *fresh = 0;
    for (size_t i = stx_hash(x, id);; i = (i + 1) & mask) {
        uint64_t e = x->map[i];
        if (e == STX_EMPTY) {
            uint32_t s = (*next)++;
            x->map[i] = (uint64_t)s << 32 | id;
            *fresh = 1;
            return s;
        }
        if ((uint32_t)e == id) return (uint32_t)(e >> 32);
    }
}

static int stx_grow(const sp_allocator *a, void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap) return SP_OK;
    void *q = mem_realloc(a, *p, n * elem);
    if (!q) return SP_ENOMEM;
    *p = q;
    *cap = n;
    return SP_OK;
}

/* Stable LSD radix sort of u64 by the high 32 bits, 8 bits a pass, skipping bytes equal in
 * every element; tmp holds n. O(n) a pass. */
static void stx_sort(uint64_t *v, uint64_t *tmp, size_t n)
{
    uint32_t all_or = 0, all_and = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        all_or |= (uint32_t)(v[i] >> 32);
        all_and &= (uint32_t)(v[i] >> 32);
    }
    for (int shift = 32; shift < 64; shift += 8) {
        if ((((all_or ^ all_and) >> (shift - 32)) & 0xff) == 0) continue;
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((v[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(v[i] >> shift) & 0xff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
}

static int stx_push_num(sp_col *c, sp_type t, int64_t i, double f, int isf)
{
    if (t == SP_F32 || t == SP_F64) return col_push_f64(c, isf ? f : (double)i);
    return col_push_i64(c, isf ? (int64_t)f : i);
}

/* Builds the generated stage once the context has its device. */
static int stx_stage(stx *x, int id, sp_diag *d)
{
    if (x->stage) return SP_OK;
    char name[64];
    snprintf(name, sizeof name, "updateStateByKey %d", id);
    sp_context *ctx = x->ctx;
    int rc = ew_stage_new(ctx->dev, &ctx->env, x->xtd, 3, x->steps, name, &x->stage, d);
    return rc ? diag_prefix(d, "updateStateByKey") : SP_OK;
}

int stx_run(sp_stream *s, stx *x, int64_t t, const sp_batch *prev, const uint32_t *pids,
            const sp_batch *b, const uint32_t *bids, sp_batch **out, sp_diag *d)
{
    sp_context *ctx = s->ctx;
    const sp_allocator *a = x->a;
    int nkey = s->nkey;
    size_t n0 = prev ? prev->n : 0, n1 = b->n;
    sp_batch *X = NULL, *Y = NULL;
    *out = NULL;
    int rc = stx_stage(x, s->id, d);
    if (rc) return rc;
    /* live keys: the state's, in order, then the batch's new ones */
    if (n0 + n1 > UINT32_MAX)
        return diag_set(d, SP_EUNSUPPORTED, "updateStateByKey: too many keys");
    if (stx_map_reset(x, n0 + n1) ||
        stx_grow(a, (void **)&x->rs, &x->rs_cap, n1 ? n1 : 1, sizeof *x->rs) ||
        stx_grow(a, (void **)&x->first, &x->first_cap, n1 ? n1 : 1, sizeof *x->first))
        return stx_oom(d);
    uint32_t next = 0;
    int fresh;
    for (size_t i = 0; i < n0; i++)
        (void)stx_map_get(x, pids[i], &next, &fresh);
    if (next != n0)
        return diag_set(d, SP_EPARSE, "updateStateByKey: the initial state holds a key twice");
    for (size_t i = 0; i < n1; i++) {
        uint32_t sl = stx_map_get(x, bids[i], &next, &fresh);
        if (fresh) x->first[sl - n0] = (uint32_t)i;
        x->rs[i] = sl;
    }
    size_t n = next;
    size_t cap = x->acc_cap;
    if (stx_grow(a, &x->acc, &cap, n ? n : 1, 8) ||
        stx_grow(a, (void **)&x->cnt, &x->acc_cap, n ? n : 1, sizeof *x->cnt) ||
        stx_grow(a, (void **)&x->ord, &x->ord_cap, 2 * (n ? n : 1), sizeof *x->ord))
        return stx_oom(d);
    /* rows of X in key id order, so the new state comes out in the host path's order */
    for (size_t i = 0; i < n; i++)
        x->ord[i] = (uint64_t)(i < n0 ? pids[i] : bids[x->first[i - n0]]) << 32 | i;
    stx_sort(x->ord, x->ord + n, n);
    /* the batch's sum and count per slot, on the device */
    sp_agg agg = x->uses_sum ? SP_AGG_SUM : SP_AGG_COUNT;
    if (n1)
        rc = kreduce_dense_scratch(ctx->dev, ctx->env.arenas[0], x->rs,
                                   x->uses_sum ? b->cols[nkey].data : NULL, x->vt, n1, (uint32_t)n,
                                   agg, x->uses_sum ? x->acc : NULL, x->cnt, d);
    else
        memset(x->cnt, 0, n * sizeof *x->cnt);
    if (rc) return diag_prefix(d, "updateStateByKey");
    int accf = x->uses_sum && kagg_acc_type(SP_AGG_SUM, x->vt) == SP_F64;
    /* X: one row per live key */
    if ((rc = batch_new(&ctx->env, x->xtd, t, &X, d))) return rc;
    sp_col *c = X->cols;
    for (int k = 0; k < X_N; k++)
        if (col_reserve(&c[k], n ? n : 1, 0)) {
            rc = stx_oom(d);
            goto out;
        }
    int sf = x->st == SP_F32 || x->st == SP_F64;
    const sp_col *stc = prev ? &prev->cols[nkey] : NULL;
    for (size_t r = 0; r < n && !rc; r++) {
        size_t i = (uint32_t)x->ord[r];
        int64_t cn = x->cnt[i], sumi = 0, sti = 0, key = 0;
        double sumf = 0, stf = 0;
        if (x->uses_sum && cn) {
            if (accf)
                sumf = ((const double *)x->acc)[i];
            else
                sumi = ((const int64_t *)x->acc)[i];
        }
        if (i < n0) {
            if (sf)
                stf = col_get_f64(stc, i);
            else
                sti = col_get_i64(stc, i);
        }
        if (x->key_int)
            key = i < n0 ? col_get_i64(&prev->cols[0], i)
                         : col_get_i64(&b->cols[0], x->first[i - n0]);
        if (col_push_i64(&c[X_SLOT], (int64_t)i) ||
            stx_push_num(&c[X_SUM], x->vt, sumi, sumf, accf) || col_push_i64(&c[X_SIZE], cn) ||
            col_push_i64(&c[X_HAS], i < n0) || stx_push_num(&c[X_ST], x->st, sti, stf, sf) ||
            col_push_i64(&c[X_TIME], t) || col_push_i64(&c[X_KEY], key))
            rc = stx_oom(d);
    }
    if (rc) goto out;
    X->n = n;
    /* (keep, new state) per live key and the compaction of the kept ones */
    if ((rc = ew_stage_run(x->stage, ctx->exec, X, &Y, d))) goto out;
    if ((rc = batch_new(&ctx->env, s->td, t, out, d))) goto out;
    for (size_t j = 0; j < Y->n && !rc; j++) {
        size_t sl = (size_t)col_get_i64(&Y->cols[0], j);
        const sp_batch *kb = sl < n0 ? prev : b;
        size_t row = sl < n0 ? sl : x->first[sl - n0];
        for (int k = 0; k < nkey && !rc; k++)
            if (col_push_from(&(*out)->cols[k], &kb->cols[k], ctx->dict, row)) rc = stx_oom(d);
        if (!rc && col_push_from(&(*out)->cols[nkey], &Y->cols[1], ctx->dict, j)) rc = stx_oom(d);
        if (!rc) (*out)->n++;
    }
out:
    batch_release(X);
    batch_release(Y);
    if (rc) {
        batch_release(*out);
        *out = NULL;
    }
    return rc;
}

void stx_explain(stx *x, int id, strbuf *sb)
{
    if (!x->kernel) {
        sb_adds(sb, "per-key state in columns, the update lambda on the host evaluator for every "
                    "key");
        return;
    }
    sb_printf(sb,
              "per-key state in columns; the update lambda as a kernel over all live keys: "
              "batch %s per key (kreduce), then (keep, new state) and compaction of kept keys "
              "in one generated stage",
              x->uses_sum ? "sums and counts" : "counts");
    sp_diag d;
    diag_clear(&d);
    if (x->ctx->started && stx_stage(x, id, &d)) sb_printf(sb, " (not built: %s)", d.msg);
    if (x->stage) {
        sb_adds(sb, ":\n");
        ew_stage_explain(x->stage, sb);
    }
}

/* ----------------------------------------------------------------------------- the API */

sp_stream *sp_stream_update_state_by_key_expr(sp_stream *s, const char *state_type, sp_expr *f,
                                              const char *initial_path)
{
    const char *op = "updateStateByKey";
    if (!s || !f) return NULL;
    sp_context *ctx = s->ctx;
    if (!(s->td->kind == TD_TUPLE && s->td->n == 2 && td_is_flat(s->td->child[0]))) {
        ctx_fail(ctx, SP_ETYPE, "%s needs a stream of (key, value) pairs with scalar keys, got %s",
                 op, s->type_str);
        return NULL;
    }
    sp_diag d;
    diag_clear(&d);
    stx *x = NULL;
    if (stx_new(ctx, f, s->td->child[0], s->td->child[1], state_type, &x, &d)) {
        ctx_take(ctx, &d);
        return NULL;
    }
    strbuf sb;
    sb_init(&sb, &ctx->alloc);
    td_format(x->state, &sb);
    if (sb.oom || !sb.s) {
        sb_free(&sb);
        stx_free(x);
        ctx_fail(ctx, SP_ENOMEM, "%s: out of memory", op);
        return NULL;
    }
    sp_stream *o = sp_stream_update_state_by_key(s, sb.s, stx_host_update, x, initial_path);
    sb_free(&sb);
    if (!o) {
        stx_free(x);
        return NULL;
    }
    state_attach_expr(o, x);
    return o;
}
