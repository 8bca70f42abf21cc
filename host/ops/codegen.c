/* codegen.c — OpenCL C for a fused chain of map / filter / mapValues steps.
 *
 * The kernels are listed in ew_int.h (CPU strategy: ew_eval, plus ew_pack with a filter; GPU
 * strategy: ew_stage). Row i's input columns are loaded into variables named after the
 * columns (c0, c1, ...: the flattened leaves of the element type); each step then declares
 * one variable per computed output leaf (s<step>_<leaf>) and the last step's leaves are
 * stored. Values that only pass through (a mapValues key, a field taken unchanged) keep their
 * variable: no copies are generated.
 *
 * Rows are straight-line code, so that LLVM if-converts and vectorises them: every step is
 * evaluated for every row (nothing in a step can trap: the division helpers return 0 on a
 * zero divisor), a filter only clears the row's keep flag `k` (`k &= pred`), and the row is
 * stored unconditionally with the output position advanced by k. A mispredicted branch per
 * row used to cost more than the whole row.
 *
 * Semantics on the device match the host evaluator: strings are dictionary ids (== and != only;
 * literals are interned when the stage is built), integer / and % go through helpers that
 * truncate like the JVM and set the step's flag e<step> on a zero divisor instead of trapping;
 * the row's `dz` takes it only while the row is still kept (a row dropped by an earlier filter
 * reports nothing) and the failing step then clears k. && || and if/else are C's
 * short-circuit operators, so `x != 0 && 10 / x > 1` never divides by zero. */
#include "ops/ew_int.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A value being generated: a leaf (t < SP_TYPE_COUNT) holding a C expression of the
 * variable type cg_vtype(t), or a tuple of values. */
typedef struct cg_val {
    sp_type t;
    int n;
    struct cg_val *items;
    const char *code;
} cg_val;

enum {
    CG_DIV_I = 1 << 0,
    CG_DIV_L = 1 << 1,
    CG_FMIN_F = 1 << 2,
    CG_FMIN_D = 1 << 3,
    CG_FMAX_F = 1 << 4,
    CG_FMAX_D = 1 << 5,
};

typedef struct cg {
    const sp_allocator *a;
    sp_dict *dict;
    expr_scratch mem; /* every string and value of one generation */
    strbuf body;
    unsigned need; /* helpers the body calls */
    int step;      /* the step being generated (1-based) */
    int step_div;  /* the current step calls a division helper */
    sp_diag *d;
} cg;

static const char *cg_vtype(sp_type t)
{
    switch (t) {
    case SP_I32:
        return "int";
    case SP_F32:
        return "float";
    case SP_F64:
        return "double";
    case SP_BOOL:
        return "int";
    case SP_STR:
        return "uint";
    default:
        return "long";
    }
}

static const char *cg_stype(sp_type t)
{
    return t == SP_BOOL ? "uchar" : cg_vtype(t);
}

__attribute__((format(printf, 2, 3))) static const char *cg_fmt(cg *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? expr_scratch_alloc(&g->mem, (size_t)n + 1) : NULL;
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

static int cg_oom(cg *g)
{
    return diag_set(g->d, SP_ENOMEM, "code generation: out of memory");
}

static int cg_host(cg *g, const sp_expr *e, const char *why)
{
    if (e && e->line > 0)
        return diag_set(g->d, SP_EUNSUPPORTED, "%d:%d: %s runs on the host", e->line, e->col, why);
    return diag_set(g->d, SP_EUNSUPPORTED, "%s runs on the host", why);
}

static int cg_is_float(sp_type t)
{
    return t == SP_F32 || t == SP_F64;
}

/* code (of type from) as type to. */
static const char *cg_conv(cg *g, const char *code, sp_type from, sp_type to)
{
    if (from == SP_TS) from = SP_I64;
    if (to == SP_TS) to = SP_I64;
    if (from == to || !code) return code;
    if (cg_is_float(to)) return cg_fmt(g, "(%s)%s", cg_vtype(to), code);
    if (cg_is_float(from)) return cg_fmt(g, "convert_%s_sat_rtz(%s)", cg_vtype(to), code);
    return cg_fmt(g, "(%s)%s", cg_vtype(to), code);
}

static const char *cg_literal_f64(cg *g, double v)
{
    if (isnan(v)) return "NAN";
    if (isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    if (!strpbrk(buf, ".e")) strcat(buf, ".0");
    return cg_fmt(g, v < 0 ? "(%s)" : "%s", buf);
}

static const char *cg_literal_str(cg *g, const sp_expr *e)
{
    uint32_t id = dict_intern(g->dict, e->s, e->slen);
    if (id == UINT32_MAX) return NULL;
    dict_pin(g->dict, id); /* compiled into the kernel: never reclaimed */
    /* The string in a comment, made harmless for the comment. */
    char shown[32];
    size_t k = 0;
    for (size_t i = 0; i < e->slen && k < 24; i++) {
        unsigned char ch = (unsigned char)e->s[i];
        shown[k++] = (isprint(ch) && ch != '*' && ch != '/' && ch != '\\') ? (char)ch : '?';
    }
    shown[k] = '\0';
    return cg_fmt(g, "%uu /* \"%s%s\" */", id, shown, e->slen > k ? "..." : "");
}

static int cg_node(cg *g, const expr_typed *t, const cg_val *arg, cg_val *out);

/* if c then x else y over values of the same shape (leaves already of type rt). */
static int cg_if_merge(cg *g, const char *c, const cg_val *x, const cg_val *y, sp_type rt,
                       cg_val *out)
{
    if (x->t == SP_TYPE_COUNT) {
        cg_val *items = expr_scratch_alloc(&g->mem, (size_t)x->n * sizeof *items);
        if (!items) return cg_oom(g);
        for (int i = 0; i < x->n; i++) {
            int rc = cg_if_merge(g, c, &x->items[i], &y->items[i], x->items[i].t, &items[i]);
            if (rc) return rc;
        }
        *out = (cg_val){.t = SP_TYPE_COUNT, .n = x->n, .items = items};
        return SP_OK;
    }
    const char *a = cg_conv(g, x->code, x->t, rt), *b = cg_conv(g, y->code, y->t, rt);
    const char *code = a && b ? cg_fmt(g, "(%s ? %s : %s)", c, a, b) : NULL;
    *out = (cg_val){.t = rt, .code = code};
    return code ? SP_OK : cg_oom(g);
}

static const char *cg_cmp_op(sp_op op)
{
    static const char *ops[] = {"==", "!=", "<", "<=", ">", ">="};
    return ops[op - SP_OP_EQ];
}

static int cg_binop(cg *g, const expr_typed *t, const cg_val *x, const cg_val *y, cg_val *out)
{
    const sp_expr *e = t->e;
    sp_op op = e->op;
    sp_type rt = t->td->leaf;
    const char *code = NULL;
    if (op == SP_OP_AND || op == SP_OP_OR) {
        code = cg_fmt(g, "(%s %s %s)", x->code, op == SP_OP_AND ? "&&" : "||", y->code);
    } else if (op >= SP_OP_EQ && op <= SP_OP_GE) {
        if (x->t == SP_STR && op != SP_OP_EQ && op != SP_OP_NE)
            return cg_host(g, e, "string ordering");
        sp_type ct = (x->t == SP_STR || x->t == SP_BOOL) ? x->t : expr_promote(x->t, y->t);
        code = cg_fmt(g, "(%s %s %s)", cg_conv(g, x->code, x->t, ct), cg_cmp_op(op),
                      cg_conv(g, y->code, y->t, ct));
    } else {
        if (x->t == SP_STR || y->t == SP_STR || rt == SP_STR)
            return cg_host(g, e, "string concatenation");
        const char *a = cg_conv(g, x->code, x->t, rt), *b = cg_conv(g, y->code, y->t, rt);
        int fl = cg_is_float(rt), i32 = rt == SP_I32;
        switch (op) {
        case SP_OP_ADD:
            code = cg_fmt(g, "(%s + %s)", a, b);
            break;
        case SP_OP_SUB:
            code = cg_fmt(g, "(%s - %s)", a, b);
            break;
        case SP_OP_MUL:
            code = cg_fmt(g, "(%s * %s)", a, b);
            break;
        case SP_OP_DIV:
        case SP_OP_MOD:
            if (fl) {
                code = op == SP_OP_DIV ? cg_fmt(g, "(%s / %s)", a, b)
                                       : cg_fmt(g, "fmod(%s, %s)", a, b);
            } else {
                g->need |= i32 ? CG_DIV_I : CG_DIV_L;
                g->step_div = 1;
                code = cg_fmt(g, "sp_%s_%c(%s, %s, &e%d)", op == SP_OP_DIV ? "div" : "mod",
                              i32 ? 'i' : 'l', a, b, g->step);
            }
            break;
        case SP_OP_MIN:
        case SP_OP_MAX:
            if (fl) {
                int dbl = rt == SP_F64;
                g->need |=
                    op == SP_OP_MIN ? (dbl ? CG_FMIN_D : CG_FMIN_F) : (dbl ? CG_FMAX_D : CG_FMAX_F);
                code = cg_fmt(g, "sp_f%s_%c(%s, %s)", op == SP_OP_MIN ? "min" : "max",
                              dbl ? 'd' : 'f', a, b);
            } else {
                code = cg_fmt(g, "%s(%s, %s)", op == SP_OP_MIN ? "min" : "max", a, b);
            }
            break;
        default:
            return diag_set(g->d, SP_EINVAL, "code generation: bad operator %d", (int)op);
        }
    }
    *out = (cg_val){.t = rt, .code = code};
    return code ? SP_OK : cg_oom(g);
}

static int cg_node(cg *g, const expr_typed *t, const cg_val *arg, cg_val *out)
{
    const sp_expr *e = t->e;
    cg_val x, y, z;
    int rc;
    const char *code = NULL;
    switch (e->kind) {
    case EX_ARG:
        if (e->index != 0)
            return diag_set(g->d, SP_EINVAL,
                            "code generation: parameter %d of a "
                            "one-parameter lambda",
                            e->index + 1);
        *out = *arg;
        return SP_OK;
    case EX_I64:
        code = e->i == INT64_MIN ? "(-9223372036854775807L - 1L)"
                                 : cg_fmt(g, e->i < 0 ? "(%lldL)" : "%lldL", (long long)e->i);
        break;
    case EX_F64:
        code = cg_literal_f64(g, e->f);
        break;
    case EX_BOOL:
        code = e->i ? "1" : "0";
        break;
    case EX_STR:
        code = cg_literal_str(g, e);
        break;
    case EX_FIELD:
        if ((rc = cg_node(g, t->kids[0], arg, &x))) return rc;
        *out = x.items[e->index];
        return SP_OK;
    case EX_TUPLE: {
        cg_val *items = expr_scratch_alloc(&g->mem, (size_t)e->n * sizeof *items);
        if (!items) return cg_oom(g);
        for (int i = 0; i < e->n; i++)
            if ((rc = cg_node(g, t->kids[i], arg, &items[i]))) return rc;
        *out = (cg_val){.t = SP_TYPE_COUNT, .n = e->n, .items = items};
        return SP_OK;
    }
    case EX_BINOP:
        if (t->nspine) {
            /* a chain through left operands (a + b + c): in a loop, innermost first */
            if ((rc = cg_node(g, t->spine[0]->kids[0], arg, &x))) return rc;
            for (int i = 0; i < t->nspine; i++) {
                if ((rc = cg_node(g, t->spine[i]->kids[1], arg, &y)) ||
                    (rc = cg_binop(g, t->spine[i], &x, &y, &z)))
                    return rc;
                x = z;
            }
            *out = x;
            return SP_OK;
        }
        if ((rc = cg_node(g, t->kids[0], arg, &x)) || (rc = cg_node(g, t->kids[1], arg, &y)))
            return rc;
        return cg_binop(g, t, &x, &y, out);
    case EX_UNOP:
        if ((rc = cg_node(g, t->kids[0], arg, &x))) return rc;
        code = e->op == SP_OP_NOT ? cg_fmt(g, "(!%s)", x.code)
                                  : cg_fmt(g, "(-%s)", cg_conv(g, x.code, x.t, t->td->leaf));
        break;
    case EX_IF:
        if ((rc = cg_node(g, t->kids[0], arg, &x)) || (rc = cg_node(g, t->kids[1], arg, &y)) ||
            (rc = cg_node(g, t->kids[2], arg, &z)))
            return rc;
        return cg_if_merge(g, x.code, &y, &z, t->td->kind == TD_LEAF ? t->td->leaf : SP_TYPE_COUNT,
                           out);
    case EX_CAST:
        if ((rc = cg_node(g, t->kids[0], arg, &x))) return rc;
        if (x.t == e->to) {
            *out = x;
            return SP_OK;
        }
        if (e->to == SP_STR) return cg_host(g, e, "conversion to a string");
        if (x.t == SP_STR) return cg_host(g, e, "parsing a number from a string");
        code = cg_conv(g, x.code, x.t, e->to);
        break;
    case EX_CALL:
        return cg_host(g, e, e->s ? cg_fmt(g, "%s (a method call)", e->s) : "a method call");
    case EX_LAMBDA:
        return cg_host(g, e, "an inner lambda");
    }
    *out = (cg_val){.t = t->td->kind == TD_LEAF ? t->td->leaf : SP_TYPE_COUNT, .code = code};
    return code ? SP_OK : cg_oom(g);
}

/* 1 when code is a plain identifier (a variable to reuse). */
static int cg_is_ident(const char *code)
{
    if (!isalpha((unsigned char)code[0]) && code[0] != '_') return 0;
    for (const char *p = code; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return 1;
}

/* Declares a variable for every computed leaf of v (step `step`), numbering leaves from *k. */
static int cg_bind(cg *g, int step, cg_val *v, int *k)
{
    if (v->t == SP_TYPE_COUNT) {
        cg_val *items = expr_scratch_alloc(&g->mem, (size_t)v->n * sizeof *items);
        if (!items) return cg_oom(g);
        for (int i = 0; i < v->n; i++) {
            items[i] = v->items[i];
            int rc = cg_bind(g, step, &items[i], k);
            if (rc) return rc;
        }
        v->items = items;
        return SP_OK;
    }
    int leaf = (*k)++;
    if (cg_is_ident(v->code)) return SP_OK;
    const char *name = cg_fmt(g, "s%d_%d", step, leaf);
    if (!name) return cg_oom(g);
    sb_printf(&g->body, "        %s %s = %s;\n", cg_vtype(v->t), name, v->code);
    v->code = name;
    return SP_OK;
}

/* Input leaves: variable c<k> for flattened column k; `path` names the field (_2._1). */
static int cg_input(cg *g, const sp_td *td, int *k, const char *path, cg_val *out)
{
    if (td->kind == TD_TUPLE) {
        cg_val *items = expr_scratch_alloc(&g->mem, (size_t)td->n * sizeof *items);
        if (!items) return cg_oom(g);
        for (int i = 0; i < td->n; i++) {
            const char *p = cg_fmt(g, "%s%s_%d", path, *path ? "." : "", i + 1);
            int rc = p ? cg_input(g, td->child[i], k, p, &items[i]) : cg_oom(g);
            if (rc) return rc;
        }
        *out = (cg_val){.t = SP_TYPE_COUNT, .n = td->n, .items = items};
        return SP_OK;
    }
    if (td->kind != TD_LEAF) return cg_host(g, NULL, "an element with options or lists");
    const char *code = cg_fmt(g, "c%d", (*k)++);
    *out = (cg_val){.t = td->leaf, .code = code};
    return code ? SP_OK : cg_oom(g);
}

static void cg_flatten(const cg_val *v, const cg_val **leaves, int *k)
{
    if (v->t == SP_TYPE_COUNT) {
        for (int i = 0; i < v->n; i++)
            cg_flatten(&v->items[i], leaves, k);
        return;
    }
    leaves[(*k)++] = v;
}

/* 1 when identifier `name` occurs in s as a whole token. */
static int cg_uses(const char *s, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = strstr(s, name); p; p = strstr(p + 1, name)) {
        int before = p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = isalnum((unsigned char)p[n]) || p[n] == '_';
        if (!before && !after) return 1;
    }
    return 0;
}

static const char *const cg_helpers[] = {
    /* CG_DIV_I */
    "inline int sp_div_i(int a, int b, int *dz)\n"
    "{\n"
    "    if (b == 0) {\n"
    "        *dz = 1;\n"
    "        return 0;\n"
    "    }\n"
    "    return b == -1 ? (int)(0u - (uint)a) : a / b;\n"
    "}\n"
    "inline int sp_mod_i(int a, int b, int *dz)\n"
    "{\n"
    "    if (b == 0) {\n"
    "        *dz = 1;\n"
    "        return 0;\n"
    "    }\n"
    "    return b == -1 ? 0 : a % b;\n"
    "}\n",
    /* CG_DIV_L */
    "inline long sp_div_l(long a, long b, int *dz)\n"
    "{\n"
    "    if (b == 0) {\n"
    "        *dz = 1;\n"
    "        return 0;\n"
    "    }\n"
    "    return b == -1 ? (long)(0ul - (ulong)a) : a / b;\n"
    "}\n"
    "inline long sp_mod_l(long a, long b, int *dz)\n"
    "{\n"
    "    if (b == 0) {\n"
    "        *dz = 1;\n"
    "        return 0;\n"
    "    }\n"
    "    return b == -1 ? 0 : a % b;\n"
    "}\n",
    /* CG_FMIN_F .. CG_FMAX_D: math.min / math.max, NaN wins as on the JVM. */
    "inline float sp_fmin_f(float a, float b)\n{\n    return (a < b || isnan(a)) ? a : b;\n}\n",
    "inline double sp_fmin_d(double a, double b)\n{\n    return (a < b || isnan(a)) ? a : b;\n}\n",
    "inline float sp_fmax_f(float a, float b)\n{\n    return (a > b || isnan(a)) ? a : b;\n}\n",
    "inline double sp_fmax_d(double a, double b)\n{\n    return (a > b || isnan(a)) ? a : b;\n}\n",
};

static const char *cg_kind_name(ew_kind k)
{
    return k == EW_MAP ? "map" : k == EW_FILTER ? "filter" : "mapValues";
}

static void cg_type_text(const sp_td *t, char *buf, size_t size, const sp_allocator *a)
{
    strbuf sb;
    sb_init(&sb, a);
    td_format(t, &sb);
    snprintf(buf, size, "%s", sb.len && !sb.oom ? sb.s : "?");
    sb_free(&sb);
}

/* Runs the steps over the value cur, writing statements into g->body. */
static int cg_steps(cg *g, const sp_td *in, int nsteps, const ew_step *steps, cg_val *cur,
                    int *has_filter)
{
    sp_td *td = td_copy(g->a, in);
    int rc = td ? SP_OK : cg_oom(g);
    char tb[256];
    for (int s = 0; s < nsteps && !rc; s++) {
        const ew_step *st = &steps[s];
        int mv = st->kind == EW_MAP_VALUES;
        if (mv && (td->kind != TD_TUPLE || td->n != 2)) {
            rc = diag_set(g->d, SP_ETYPE, "mapValues needs a (K,V) element");
            break;
        }
        expr_typed *t = NULL;
        if ((rc = expr_compile(st->body, g->a, mv ? td->child[1] : td, NULL, &t, g->d))) break;
        cg_val arg = mv ? cur->items[1] : *cur, v;
        g->step_div = 0;
        g->step = s + 1;
        rc = cg_node(g, t, &arg, &v);
        if (!rc && st->kind == EW_FILTER) {
            sb_printf(&g->body, "        /* %d: filter */\n", s + 1);
            if (g->step_div)
                sb_printf(&g->body,
                          "        int e%d = 0;\n"
                          "        uint p%d = %s ? 1u : 0u;\n"
                          "        dz |= k & (uint)e%d;\n"
                          "        k &= p%d & (uint)!e%d;\n",
                          s + 1, s + 1, v.code, s + 1, s + 1, s + 1);
            else
                sb_printf(&g->body, "        k &= %s ? 1u : 0u;\n", v.code);
            *has_filter = 1;
        } else if (!rc) {
            sp_td *nt;
            if (mv) {
                sp_td *k = td_copy(g->a, td->child[0]), *vt = td_copy(g->a, t->td);
                nt = k && vt ? td_tuple2(g->a, k, vt) : NULL;
                if (!nt) {
                    td_free(g->a, k);
                    td_free(g->a, vt);
                }
            } else {
                nt = td_copy(g->a, t->td);
            }
            if (!nt) {
                rc = cg_oom(g);
            } else {
                td_layout(nt, 0);
                td_free(g->a, td);
                td = nt;
                cg_type_text(td, tb, sizeof tb, g->a);
                sb_printf(&g->body, "        /* %d: %s -> %s */\n", s + 1, cg_kind_name(st->kind),
                          tb);
                if (g->step_div) sb_printf(&g->body, "        int e%d = 0;\n", s + 1);
                if (mv) {
                    cg_val *items = expr_scratch_alloc(&g->mem, 2 * sizeof *items);
                    if (!items) {
                        rc = cg_oom(g);
                    } else {
                        items[0] = cur->items[0];
                        items[1] = v;
                        v = (cg_val){.t = SP_TYPE_COUNT, .n = 2, .items = items};
                    }
                }
                int k = 0;
                if (!rc) rc = cg_bind(g, s + 1, &v, &k);
                if (!rc && g->step_div)
                    sb_printf(&g->body,
                              "        dz |= k & (uint)e%d;\n"
                              "        k &= (uint)!e%d;\n",
                              s + 1, s + 1);
                *cur = v;
            }
        }
        expr_typed_free(g->a, t);
    }
    td_free(g->a, td);
    return rc;
}

/* What the kernels of one stage share. */
typedef struct cg_kern {
    const ew_code *code;
    const sp_td *in;
    const cg_val **leaves;
    const char *body;  /* the steps' statements (indented for the row's do { } block) */
    const char *loads; /* the row's loads (indented for the row loop) */
} cg_kern;

/* Kernel parameters continue under the first one: `ind` columns in. */
static void cg_params_in(strbuf *sb, const cg_kern *k, int ind)
{
    for (int j = 0; j < k->code->nin; j++) {
        int c = k->code->in_cols[j];
        sb_printf(sb, "__global const %s *restrict in%d,\n%*s", cg_stype(td_col_type(k->in, c)), c,
                  ind, "");
    }
}

static void cg_params_out(strbuf *sb, const cg_kern *k, int ind)
{
    for (int c = 0; c < k->code->nout; c++)
        sb_printf(sb, "__global %s *restrict out%d,\n%*s", cg_stype(k->leaves[c]->t), c, ind, "");
}

static void cg_result_stores(strbuf *sb, const cg_kern *k, const char *at)
{
    for (int c = 0; c < k->code->nout; c++)
        sb_printf(sb, "        out%d[%s] = %s%s;\n", c, at,
                  k->leaves[c]->t == SP_BOOL ? "(uchar)" : "", k->leaves[c]->code);
}

/* The row: k (still kept) and dz (a division by zero in a step the row reached), the loads,
 * every step evaluated unconditionally (the division helpers never trap), no branches. */
static void cg_row(strbuf *sb, const cg_kern *k)
{
    sb_adds(sb, "        uint k = 1, dz = 0;\n");
    sb_adds(sb, k->loads);
    sb_adds(sb, k->body);
}

/* CPU strategy: one contiguous chunk [bounds[c], bounds[c+1]) per work-item, a plain loop
 * over it, private partials, no atomics. With a filter, ew_eval stores every row at position
 * o of the chunk and advances o by the row's keep flag (branch-free compaction: o <= i, so
 * the stores stay inside the chunk's own range); ew_pack then copies each chunk's kept rows to
 * their final offsets. The chain is evaluated once. */
static void cg_kernels_cpu(strbuf *sb, const cg_kern *k)
{
    int filt = k->code->has_filter;
    if (filt)
        sb_adds(
            sb,
            "/* The rows of chunk c that pass every filter, in input order, to out<k>[bounds[c] "
            "..);\n * stats[c] = their number, stats[G + c] = the chunk's first row with "
            "a division by\n * zero (ULONG_MAX: none); G = global size. */\n");
    else
        sb_adds(sb,
                "/* Every row i of chunk c to out<k>[i]; stats[c] = the chunk's rows, stats[G + "
                "c] = its first\n * row with a division by zero (ULONG_MAX: none); G = global "
                "size. */\n");
    sb_adds(sb, "__kernel void ew_eval(");
    cg_params_in(sb, k, 22);
    cg_params_out(sb, k, 22);
    sb_adds(sb, "__global const ulong *restrict bounds,\n"
                "                      __global ulong *restrict stats)\n{\n"
                "    ulong c = get_global_id(0), g = get_global_size(0);\n"
                "    ulong begin = bounds[c], end = bounds[c + 1], o = begin, "
                "first = ULONG_MAX;\n"
                "    for (ulong i = begin; i < end; i++) {\n");
    cg_row(sb, k);
    cg_result_stores(sb, k, filt ? "o" : "i");
    sb_adds(sb, "        o += k;\n"
                "        first = dz ? min(first, i) : first;\n"
                "    }\n"
                "    stats[c] = o - begin;\n"
                "    stats[g + c] = first;\n}\n");
    if (!filt) return;
    sb_adds(sb, "\n/* The kept rows of chunk c, from in<k>[bounds[c] ..) (ew_eval's out<k>), to\n"
                " * out<k>[offs[c] .. offs[c+1]). */\n"
                "__kernel void ew_pack(");
    for (int c = 0; c < k->code->nout; c++)
        sb_printf(sb, "__global const %s *restrict in%d,\n%*s", cg_stype(k->leaves[c]->t), c, 22,
                  "");
    cg_params_out(sb, k, 22);
    sb_adds(sb, "__global const ulong *restrict bounds,\n"
                "                      __global const ulong *restrict offs)\n{\n"
                "    ulong c = get_global_id(0);\n"
                "    ulong b = bounds[c], o = offs[c], m = offs[c + 1] - o;\n");
    for (int c = 0; c < k->code->nout; c++)
        sb_printf(sb, "    for (ulong j = 0; j < m; j++)\n        out%d[o + j] = in%d[b + j];\n", c,
                  c);
    sb_adds(sb, "}\n");
}

/* GPU strategy: one row per work-item, outputs at the row's own index, a keep flag per row for
 * the compaction (scan.cl, gather.cl) and atomic_min for the first failing row. */
static void cg_kernel_gpu(strbuf *sb, const cg_kern *k)
{
    int filt = k->code->has_filter;
    sb_adds(sb, "__kernel void ew_stage(");
    cg_params_in(sb, k, 23);
    cg_params_out(sb, k, 23);
    if (filt) sb_adds(sb, "__global uchar *restrict keep,\n                       ");
    sb_adds(sb, "__global uint *err, ulong n)\n{\n"
                "    ulong i = get_global_id(0);\n"
                "    if (i < n) {\n");
    cg_row(sb, k);
    cg_result_stores(sb, k, "i");
    sb_adds(sb, "        if (dz)\n"
                "            atomic_min(err, (uint)i);\n");
    if (filt) sb_adds(sb, "        keep[i] = (uchar)k;\n");
    sb_adds(sb, "    }\n}\n");
}

/* The row's loads of the columns `used` names, each commented with the field it is. */
static void cg_loads(strbuf *sb, const sp_td *in, const char *used)
{
    int col = 0;
    const sp_td *stack[64];
    int idx[64], depth = 0;
    char path[256];
    stack[0] = in;
    idx[0] = -1;
    while (depth >= 0) {
        const sp_td *t = stack[depth];
        if (t->kind == TD_LEAF) {
            size_t pl = 0;
            path[0] = '\0';
            for (int q = 1; q <= depth && pl < sizeof path - 8; q++)
                pl += (size_t)snprintf(path + pl, sizeof path - pl, "%s_%d", q > 1 ? "." : "",
                                       idx[q - 1] + 1);
            char v[16];
            snprintf(v, sizeof v, "c%d", col);
            if (cg_uses(used, v))
                sb_printf(sb, "        %s c%d = in%d[i]; /* %s: %s */\n", cg_stype(t->leaf), col,
                          col, depth ? path : "the element", sp_type_name(t->leaf));
            col++;
            depth--;
            continue;
        }
        if (++idx[depth] >= t->n || depth + 1 >= 64) {
            depth--;
            continue;
        }
        stack[depth + 1] = t->child[idx[depth]];
        idx[depth + 1] = -1;
        depth++;
    }
}

int ew_codegen(const sp_allocator *a, sp_dict *dict, const sp_td *in, int nsteps,
               const ew_step *steps, const sp_td *out, int strategy, const char *name,
               ew_code *code, sp_diag *d)
{
    memset(code, 0, sizeof *code);
    sb_init(&code->src, a);
    cg g = {.a = a, .dict = dict, .d = d};
    expr_scratch_init(&g.mem, a);
    sb_init(&g.body, a);
    strbuf used, loads;
    sb_init(&used, a);
    sb_init(&loads, a);
    const cg_val **leaves = NULL;
    cg_val cur;
    int k = 0, rc = cg_input(&g, in, &k, "", &cur);
    int nin_all = k;
    if (!rc) rc = cg_steps(&g, in, nsteps, steps, &cur, &code->has_filter);
    if (rc) goto out;
    int nout = 0;
    leaves = mem_alloc(a, (size_t)(out->ncols > 0 ? out->ncols : 1) * sizeof *leaves);
    code->in_cols = mem_alloc(a, (size_t)nin_all * sizeof *code->in_cols);
    if (!leaves || !code->in_cols || g.body.oom) {
        rc = cg_oom(&g);
        goto out;
    }
    cg_flatten(&cur, leaves, &nout);
    if (nout != out->ncols) {
        rc = diag_set(d, SP_EINVAL, "code generation: %d output leaves for a type of %d columns",
                      nout, out->ncols);
        goto out;
    }
    code->nout = nout;
    code->cpu = strategy != DEV_STRATEGY_GPU;
    /* The columns the body and the results read. */
    const char *body = g.body.len ? g.body.s : "";
    sb_adds(&used, body);
    for (int c = 0; c < nout; c++)
        sb_printf(&used, "%s\n", leaves[c]->code);
    if (used.oom) {
        rc = cg_oom(&g);
        goto out;
    }
    for (int c = 0; c < nin_all; c++) {
        char v[16];
        snprintf(v, sizeof v, "c%d", c);
        if (cg_uses(used.s, v)) code->in_cols[code->nin++] = c;
    }
    cg_loads(&loads, in, used.s);

    strbuf *sb = &code->src;
    char tin[256], tout[256];
    cg_type_text(in, tin, sizeof tin, a);
    cg_type_text(out, tout, sizeof tout, a);
    sb_printf(sb, "/* %s (generated): ", name);
    for (int s = 0; s < nsteps; s++)
        sb_printf(sb, "%s%s", s ? " -> " : "", cg_kind_name(steps[s].kind));
    sb_printf(sb, "\n * element %s -> %s; %s.\n", tin, tout,
              code->cpu ? "CPU strategy: one contiguous chunk of rows per work-item"
                        : "GPU strategy: one row per work-item");
    sb_adds(sb, " * in<k>: input column k; out<k>: output column k");
    if (code->cpu)
        sb_adds(sb, ";\n * chunk c (c = get_global_id(0)) is rows [bounds[c], bounds[c+1]). */\n");
    else if (code->has_filter)
        sb_adds(sb, "; keep[i]: row i passed every filter;\n * err[0]: smallest row with an "
                    "integer division by zero (UINT_MAX: none). */\n");
    else
        sb_adds(sb, ";\n * err[0]: smallest row with an integer division by zero (UINT_MAX: "
                    "none). */\n");
    /* Contraction into fma would make device floats differ from the host evaluator's. */
    sb_adds(sb, "#pragma OPENCL FP_CONTRACT OFF\n\n");
    if (g.need & (CG_DIV_I | CG_DIV_L))
        sb_adds(sb, "/* Integer / and % as on the JVM: truncation toward zero, MIN / -1 == MIN, "
                    "x % -1 == 0;\n * a zero divisor sets *dz (the stage then reports the row) "
                    "instead of trapping. */\n");
    for (size_t h = 0; h < sizeof cg_helpers / sizeof cg_helpers[0]; h++)
        if (g.need & (1u << h)) sb_adds(sb, cg_helpers[h]);
    cg_kern kern = {code, in, leaves, body, loads.len ? loads.s : ""};
    if (code->cpu)
        cg_kernels_cpu(sb, &kern);
    else
        cg_kernel_gpu(sb, &kern);
    if (sb->oom || loads.oom) rc = cg_oom(&g);
out:
    mem_free(a, leaves);
    sb_free(&used);
    sb_free(&loads);
    sb_free(&g.body);
    expr_scratch_free(&g.mem);
    if (rc) ew_code_free(a, code);
    return rc;
}

void ew_code_free(const sp_allocator *a, ew_code *code)
{
    sb_free(&code->src);
    mem_free(a, code->in_cols);
    code->in_cols = NULL;
    code->nin = 0;
}
