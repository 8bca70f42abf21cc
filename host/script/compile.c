/* compile.c — from the syntax tree to public API calls: sources, DStream methods, outputs,
 * lambdas as sp_expr trees. Every lambda is type checked against its stream's element type
 * (expr_compile) before the API call, so type errors carry script positions; an API call that
 * still fails is reported at the method's position with the engine's message. */
#include "io/parse_int.h"
#include "script/adapt_int.h"
#include "script/ast_int.h"
#include "script/script_int.h"

#include <stdlib.h>
#include <string.h>

enum { SC_MAX_VALS = 256, SC_MAX_ADAPTERS = 256, SC_MAX_ARGS = 64, SC_MAX_RECS = 128 };

typedef struct sc_val {
    const char *name;
    sp_stream *stream; /* a DStream, or NULL for a constant */
    const ast *def;    /* a constant's expression (inlined into lambdas) */
} sc_val;

/* The column names of a stream of parsed records (r.status in a lambda over its elements). */
typedef struct sc_rec {
    const sp_stream *stream;
    char **names; /* flattened columns in order; owned when `owned` */
    int n, owned;
} sc_rec;

struct script {
    sp_allocator alloc;
    char *name, *dir, *text;
    const char **lines;
    int nlines;
    ast_arena *arena;
    ast_script prog;
    int64_t batch_ms;
    sc_val vals[SC_MAX_VALS];
    int nvals;
    adapter *ads[SC_MAX_ADAPTERS];
    int nads;
    int skip;
    strbuf plan;            /* script_explain's listing */
    const char *ev_col;     /* batch ... eventTime(ev_col), or NULL */
    const ast *ev_at;       /* that statement */
    int64_t watermark_ms;   /* watermark statement */
    int64_t horizon_ms;     /* horizon statement, 0 if none */
    const char *checkpoint; /* checkpoint statement's directory, NULL if none */
    struct {
        char *name, *value;
    } args[SC_MAX_ARGS]; /* --arg name=value */
    int nargs;
    sc_rec recs[SC_MAX_RECS];
    int nrecs;
};

/* The compiler's state for one build. */
typedef struct sc {
    script *s;
    sp_context *ctx;
    sp_diag d;
    sp_stream *ev_stream;  /* the event-time stream, once made */
    const sc_rec *lam_rec; /* the record names a 1-parameter lambda's element has, or NULL */
    int depth;             /* nesting of the lambda expression being compiled (ex) */
    int sdepth;            /* nesting of the stream expression being compiled (stream) */
} sc;

/* A lambda's parameters in scope: name -> sp_expr_arg index; streams bound by transform. */
typedef struct lenv {
    const char *names[EXPR_MAX_ARGS];
    int nnames;
    int next; /* next free parameter index */
    const char *snames[2];
    sp_stream *streams[2];
    int nstreams;
    const sc_rec *recs[EXPR_MAX_ARGS]; /* parameters that are parsed records, by index */
} lenv;

__attribute__((format(printf, 4, 5))) static int err_at(sc *c, const ast *at, int code,
                                                        const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_set(&c->d, code, "%d:%d: %s", at ? at->line : 1, at ? at->col : 1, msg);
}

/* Finds the first "LINE:COL: " in msg that starts a word: *at points at it, *skip is its
 * length. Returns 0 when there is none. */
static int find_pos(const char *msg, const char **at, int *line, int *col, int *skip)
{
    for (const char *p = msg; *p; p++) {
        if (p != msg && p[-1] != ' ') continue;
        const char *q = p;
        long l = 0, c = 0;
        if (*q < '0' || *q > '9') continue;
        while (*q >= '0' && *q <= '9' && l < 1000000)
            l = l * 10 + (*q++ - '0');
        if (*q++ != ':' || *q < '0' || *q > '9') continue;
        while (*q >= '0' && *q <= '9' && c < 1000000)
            c = c * 10 + (*q++ - '0');
        if (q[0] != ':' || q[1] != ' ') continue;
        *at = p;
        *line = (int)l;
        *col = (int)c;
        *skip = (int)(q + 2 - p);
        return 1;
    }
    return 0;
}

/* A diag from a lower layer: keep its own "L:C: " when it has one, else put at's. */
static int err_from(sc *c, const ast *at, const sp_diag *d)
{
    const char *m = d->msg, *p;
    int l, col, k;
    if (find_pos(m, &p, &l, &col, &k)) {
        if (p == m) return diag_set(&c->d, d->code ? d->code : SP_ETYPE, "%s", m);
        return diag_set(&c->d, d->code ? d->code : SP_ETYPE, "%d:%d: %.*s%s", l, col, (int)(p - m),
                        m, p + k);
    }
    return err_at(c, at, d->code ? d->code : SP_ETYPE, "%s", m);
}

static int api_fail(sc *c, const ast *at, const char *what)
{
    sp_diag d;
    d.code = SP_EINVAL;
    snprintf(d.msg, sizeof d.msg, "%s", sp_context_errmsg(c->ctx));
    if (!d.msg[0]) snprintf(d.msg, sizeof d.msg, "%s failed", what);
    return err_from(c, at, &d);
}

static sc_val *find_val(script *s, const char *name)
{
    for (int i = s->nvals - 1; i >= 0; i--)
        if (!strcmp(s->vals[i].name, name)) return &s->vals[i];
    return NULL;
}

static int add_adapter(sc *c, adapter *ad)
{
    if (c->s->nads == SC_MAX_ADAPTERS) {
        adapt_free(ad);
        return diag_set(&c->d, SP_EINVAL, "1:1: too many lambdas on the host");
    }
    sp_context *ctx = c->ctx;
    (void)ctx;
    c->s->ads[c->s->nads++] = ad;
    return SP_OK;
}

/* The element type of a stream (a new td); NULL with the reason at a in c->d. */
static sp_td *stream_td(sc *c, sp_stream *st, const ast *a)
{
    sp_td *t = NULL;
    sp_diag d;
    diag_clear(&d);
    if (td_parse(&c->s->alloc, sp_stream_type(st), &t, &d)) {
        err_at(c, a, d.code ? d.code : SP_EINVAL, "the stream's element type: %s", d.msg);
        return NULL;
    }
    return t;
}

/* The record names of stream st, or NULL. */
static const sc_rec *rec_of(const script *s, const sp_stream *st)
{
    for (int i = 0; i < s->nrecs; i++)
        if (s->recs[i].stream == st) return &s->recs[i];
    return NULL;
}

/* Gives stream st the column names `names` (copied when copy, else shared with the entry
 * that owns them, which lives as long as the script). */
static int rec_add(sc *c, const sp_stream *st, char *const *names, int n, int copy)
{
    script *s = c->s;
    if (s->nrecs == SC_MAX_RECS) return SP_OK; /* names are a convenience: _1 still works */
    sc_rec *r = &s->recs[s->nrecs];
    r->stream = st;
    r->n = n;
    r->owned = copy;
    if (!copy) {
        r->names = (char **)names;
        s->nrecs++;
        return SP_OK;
    }
    r->names = mem_calloc(&s->alloc, (size_t)(n ? n : 1), sizeof *r->names);
    if (!r->names) return diag_set(&c->d, SP_ENOMEM, "1:1: out of memory");
    s->nrecs++;
    for (int i = 0; i < n; i++)
        if (!(r->names[i] = mem_strdup(&s->alloc, names[i])))
            return diag_set(&c->d, SP_ENOMEM, "1:1: out of memory");
    return SP_OK;
}

static void recs_free(script *s)
{
    for (int i = 0; i < s->nrecs; i++) {
        sc_rec *r = &s->recs[i];
        if (!r->owned) continue;
        for (int k = 0; k < r->n; k++)
            mem_free(&s->alloc, r->names[k]);
        mem_free(&s->alloc, r->names);
    }
    s->nrecs = 0;
}

/* ------------------------------------------------------------------------------ lambdas */

static int ex(sc *c, lenv *env, const ast *a, sp_expr **out);
static int script_arg(sc *c, const ast *a, const char **out, int *from_cli);

static sp_expr *at(sp_expr *e, const ast *a)
{
    return sp_expr_at(e, a->line, a->col);
}

static int ex_check(sc *c, const ast *a, sp_expr *e, sp_expr **out)
{
    if (!e) return err_at(c, a, SP_ENOMEM, "out of memory building the expression");
    *out = at(e, a);
    return SP_OK;
}

static int ex_method(sc *c, lenv *env, const ast *a, sp_expr **out)
{
    const char *m = a->s;
    sp_context *ctx = c->ctx;
    sp_expr *recv, *args[8];
    int rc, na = a->n - 1;
    /* r.status, r.user.name: a named column of a parsed record (dotted for JSON paths) */
    const ast *base = a;
    char path[512];
    size_t plen = 0;
    while (base->k == A_METHOD && !base->parens && base->n == 1)
        base = base->kids[0];
    if (base != a && base->k == A_NAME) {
        for (const ast *q = a; q != base; q = q->kids[0]) {
            size_t l = strlen(q->s);
            if (plen + l + 1 >= sizeof path) break;
            memmove(path + l + (plen ? 1 : 0), path, plen);
            memcpy(path, q->s, l);
            if (plen) path[l] = '.';
            plen += l + (plen ? 1 : 0);
        }
        path[plen] = '\0';
        const sc_rec *rec = NULL;
        int pi = -1;
        for (int i = env->nnames - 1; i >= 0 && pi < 0; i--)
            if (env->names[i] && !strcmp(env->names[i], base->s)) pi = i;
        if (pi >= 0) rec = env->recs[pi];
        for (int i = 0; rec && i < rec->n; i++)
            if (!strcmp(rec->names[i], path)) {
                sp_expr *arg = at(sp_expr_arg(ctx, pi), base);
                if (!arg) return err_at(c, a, SP_ENOMEM, "out of memory");
                return ex_check(c, a, rec->n == 1 ? arg : sp_expr_field(ctx, arg, i), out);
            }
    }
    if (!a->parens && !na && a->kids[0]->k == A_NAME) {
        const sc_rec *rec = NULL;
        int pi = -1;
        for (int i = env->nnames - 1; i >= 0 && pi < 0; i--)
            if (env->names[i] && !strcmp(env->names[i], a->kids[0]->s)) pi = i;
        if (pi >= 0) rec = env->recs[pi];
        int prefix = 0; /* r.user of r.user.name */
        for (int i = 0; rec && i < rec->n; i++)
            if (!strncmp(rec->names[i], m, strlen(m)) && rec->names[i][strlen(m)] == '.')
                prefix = 1;
        if (rec && !prefix && !(m[0] == '_' && m[1] >= '1' && m[1] <= '9')) {
            strbuf sb;
            sb_init(&sb, &c->s->alloc);
            for (int i = 0; i < rec->n; i++)
                sb_printf(&sb, "%s%s", i ? ", " : "", rec->names[i]);
            rc = err_at(c, a, SP_ETYPE, "%s has no column %s (columns: %s)", a->kids[0]->s, m,
                        sb.s && !sb.oom ? sb.s : "?");
            sb_free(&sb);
            return rc;
        }
    }
    if ((rc = ex(c, env, a->kids[0], &recv))) return rc;
    if (m[0] == '_' && m[1] >= '1' && m[1] <= '9' && !m[2] && !a->parens)
        return ex_check(c, a, sp_expr_field(ctx, recv, m[1] - '1'), out);
    static const struct {
        const char *name;
        sp_type to;
    } casts[] = {{"toInt", SP_I32},
                 {"toLong", SP_I64},
                 {"toDouble", SP_F64},
                 {"toFloat", SP_F32},
                 {"toString", SP_STR}};
    for (size_t i = 0; i < sizeof casts / sizeof casts[0]; i++)
        if (!strcmp(m, casts[i].name)) {
            if (na) return err_at(c, a, SP_ETYPE, "%s takes no arguments, got %d", m, na);
            return ex_check(c, a, sp_expr_cast(ctx, recv, casts[i].to), out);
        }
    if (na > 7) return err_at(c, a, SP_ETYPE, "%s: too many arguments", m);
    args[0] = recv;
    for (int i = 1; i <= na; i++) {
        const ast *k = a->kids[i];
        if (k->k == A_LAMBDA) {
            if (k->nparams != 1)
                return err_at(c, k, SP_ETYPE, "%s takes a lambda of 1 parameter, got %d", m,
                              k->nparams);
            if (env->next >= EXPR_MAX_ARGS)
                return err_at(c, k, SP_ETYPE, "lambdas nested too deeply");
            lenv in = *env;
            int p = in.next++;
            in.names[p] = k->params[0];
            in.recs[p] = NULL;
            if (in.nnames <= p) in.nnames = p + 1;
            sp_expr *body;
            if ((rc = ex(c, &in, k->kids[0], &body))) return rc;
            args[i] = at(sp_expr_lambda(ctx, p, body), k);
            if (!args[i]) return err_at(c, k, SP_ENOMEM, "out of memory");
            continue;
        }
        if ((rc = ex(c, env, k, &args[i]))) return rc;
    }
    return ex_check(c, a, sp_expr_call(ctx, m, na + 1, args), out);
}

/* a op b op c ...: the chain through left operands is compiled in a loop, innermost first, on
 * a's level (as SP_EXPR_MAX_DEPTH counts it), so its length costs no stack. */
static int ex_chain(sc *c, lenv *env, const ast *a, sp_expr **out)
{
    int n = 0, rc;
    for (const ast *q = a; q->k == A_BINOP; q = q->kids[0])
        n++;
    const ast **sp = mem_alloc(&c->s->alloc, (size_t)n * sizeof *sp);
    if (!sp) return err_at(c, a, SP_ENOMEM, "out of memory");
    const ast *q = a;
    for (int i = n - 1; i >= 0; i--, q = q->kids[0])
        sp[i] = q;
    sp_expr *x, *y;
    rc = ex(c, env, q, &x);
    for (int i = 0; i < n && !rc; i++)
        if (!(rc = ex(c, env, sp[i]->kids[1], &y)))
            rc = ex_check(c, sp[i], sp_expr_binop(c->ctx, sp[i]->op, x, y), &x);
    mem_free(&c->s->alloc, sp);
    if (!rc) *out = x;
    return rc;
}

static int ex_node(sc *c, lenv *env, const ast *a, sp_expr **out);

/* Compiles a one level below its parent (SP_EXPR_MAX_DEPTH). */
static int ex(sc *c, lenv *env, const ast *a, sp_expr **out)
{
    if (c->depth >= SP_EXPR_MAX_DEPTH)
        return err_at(c, a, SP_EINVAL, "expression too deeply nested (limit %d)",
                      SP_EXPR_MAX_DEPTH);
    c->depth++;
    int rc = ex_node(c, env, a, out);
    c->depth--;
    return rc;
}

static int ex_node(sc *c, lenv *env, const ast *a, sp_expr **out)
{
    sp_context *ctx = c->ctx;
    sp_expr *x, *y, *z;
    int rc;
    switch (a->k) {
    case A_INT:
        return ex_check(c, a, sp_expr_i64(ctx, a->i), out);
    case A_FLOAT:
        return ex_check(c, a, sp_expr_f64(ctx, a->f), out);
    case A_BOOL:
        return ex_check(c, a, sp_expr_bool(ctx, (int)a->i), out);
    case A_STR: {
        if (memchr(a->s, '\0', a->slen))
            return err_at(c, a, SP_EUNSUPPORTED, "strings with \\0 are not supported");
        return ex_check(c, a, sp_expr_str(ctx, a->s), out);
    }
    case A_NAME: {
        for (int i = env->nnames - 1; i >= 0; i--)
            if (env->names[i] && !strcmp(env->names[i], a->s))
                return ex_check(c, a, sp_expr_arg(ctx, i), out);
        if (!strcmp(a->s, "None")) return ex_check(c, a, sp_expr_call(ctx, "None", 0, NULL), out);
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) {
            lenv none = {.nnames = 0};
            return ex(c, &none, v->def, out);
        }
        if (v) return err_at(c, a, SP_ETYPE, "%s is a stream, not a value", a->s);
        return err_at(c, a, SP_EINVAL, "unknown name %s", a->s);
    }
    case A_TUPLE: {
        sp_expr *items[32];
        for (int i = 0; i < a->n; i++)
            if ((rc = ex(c, env, a->kids[i], &items[i]))) return rc;
        return ex_check(c, a, sp_expr_tuple(ctx, a->n, items), out);
    }
    case A_BINOP:
        if (a->kids[0]->k == A_BINOP) return ex_chain(c, env, a, out);
        if ((rc = ex(c, env, a->kids[0], &x)) || (rc = ex(c, env, a->kids[1], &y))) return rc;
        return ex_check(c, a, sp_expr_binop(ctx, a->op, x, y), out);
    case A_UNOP:
        if ((rc = ex(c, env, a->kids[0], &x))) return rc;
        return ex_check(c, a, sp_expr_unop(ctx, a->op, x), out);
    case A_IF:
        if ((rc = ex(c, env, a->kids[0], &x)) || (rc = ex(c, env, a->kids[1], &y)) ||
            (rc = ex(c, env, a->kids[2], &z)))
            return rc;
        return ex_check(c, a, sp_expr_if(ctx, x, y, z), out);
    case A_CALL: {
        sp_expr *args[32];
        if (a->n > 32) return err_at(c, a, SP_ETYPE, "too many arguments");
        for (int i = 0; i < a->n; i++) {
            if (a->kids[i]->k == A_NAMED || a->kids[i]->k == A_LAMBDA)
                return err_at(c, a->kids[i], SP_ETYPE, "%s: unexpected argument", a->s);
            if ((rc = ex(c, env, a->kids[i], &args[i]))) return rc;
        }
        if (!strcmp(a->s, "min") || !strcmp(a->s, "max")) {
            if (a->n != 2)
                return err_at(c, a, SP_ETYPE, "%s takes 2 arguments, got %d", a->s, a->n);
            return ex_check(
                c, a, sp_expr_binop(ctx, a->s[1] == 'i' ? SP_OP_MIN : SP_OP_MAX, args[0], args[1]),
                out);
        }
        if (!strcmp(a->s, "Some") || !strcmp(a->s, "Seq") || !strcmp(a->s, "List") ||
            !strcmp(a->s, "None"))
            return ex_check(c, a, sp_expr_call(ctx, a->s, a->n, args), out);
        if (!strcmp(a->s, "arg")) {
            const char *v;
            if ((rc = script_arg(c, a, &v, NULL))) return rc;
            return ex_check(c, a, sp_expr_str(ctx, v), out);
        }
        return err_at(c, a, SP_EINVAL, "unknown function %s", a->s);
    }
    case A_METHOD:
        return ex_method(c, env, a, out);
    case A_LAMBDA:
        return err_at(c, a, SP_ETYPE, "a lambda is not allowed here");
    case A_DUR:
        return err_at(c, a, SP_ETYPE, "a duration is not a value here");
    case A_NAMED:
        return err_at(c, a, SP_ETYPE, "a named argument is not allowed here");
    default:
        return err_at(c, a, SP_ETYPE, "not an expression");
    }
}

/* Compiles lambda a of `nparams` parameters; *body is its tree. */
static int lambda(sc *c, const ast *a, int nparams, const char *what, sp_expr **body)
{
    if (a->k != A_LAMBDA)
        return err_at(c, a, SP_ETYPE, "%s needs a lambda (x => ...), got an expression", what);
    if (a->nparams != nparams)
        return err_at(c, a, SP_ETYPE, "%s takes a lambda of %d parameter%s, got %d", what, nparams,
                      nparams == 1 ? "" : "s", a->nparams);
    lenv env = {.next = nparams};
    for (int i = 0; i < nparams; i++)
        env.names[i] = a->params[i];
    env.nnames = nparams;
    if (nparams == 1) env.recs[0] = c->lam_rec;
    return ex(c, &env, a->kids[0], body);
}

/* Type-checks body against parameter types; *out (may be NULL) receives its type. */
static int check(sc *c, const ast *a, const sp_expr *body, const sp_td *p0, const sp_td *p1,
                 sp_td **out)
{
    sp_diag d;
    diag_clear(&d);
    sp_td *t = NULL;
    if (expr_typecheck(body, &c->s->alloc, p0, p1, &t, &d)) return err_from(c, a, &d);
    if (out)
        *out = t;
    else
        td_free(&c->s->alloc, t);
    return SP_OK;
}

static const char *type_text(sc *c, const sp_td *t, char *buf, size_t size)
{
    strbuf sb;
    sb_init(&sb, &c->s->alloc);
    td_format(t, &sb);
    snprintf(buf, size, "%s", sb.len && !sb.oom ? sb.s : "?");
    sb_free(&sb);
    return buf;
}

/* ------------------------------------------------------------------------------ streams */

static int stream(sc *c, lenv *env, const ast *a, sp_stream **out);

static int want_args(sc *c, const ast *a, int na, int lo, int hi)
{
    if (na >= lo && na <= hi) return SP_OK;
    const char *m = a->s;
    if (lo == hi)
        return err_at(c, a, SP_ETYPE, "%s takes %d argument%s, got %d", m, lo, lo == 1 ? "" : "s",
                      na);
    return err_at(c, a, SP_ETYPE, "%s takes %d to %d arguments, got %d", m, lo, hi, na);
}

/* arg(NAME[, DEFAULT]): the value given with --arg NAME=VALUE, else DEFAULT (an error when
 * there is neither). *from_cli (may be NULL): 1 when the value came from the command line. */
static int script_arg(sc *c, const ast *a, const char **out, int *from_cli)
{
    int rc = want_args(c, a, a->n, 1, 2);
    if (rc) return rc;
    for (int i = 0; i < a->n; i++)
        if (a->kids[i]->k != A_STR)
            return err_at(c, a->kids[i], SP_ETYPE,
                          "arg takes string literals: arg(\"name\", \"default\")");
    const char *name = a->kids[0]->s;
    for (int i = c->s->nargs - 1; i >= 0; i--)
        if (!strcmp(c->s->args[i].name, name)) {
            *out = c->s->args[i].value;
            if (from_cli) *from_cli = 1;
            return SP_OK;
        }
    if (a->n < 2)
        return err_at(c, a, SP_EINVAL, "no value for arg %s: give --arg %s=VALUE", name, name);
    *out = a->kids[1]->s;
    if (from_cli) *from_cli = 0;
    return SP_OK;
}

/* A string: a literal, arg(...), or a val holding one of these. */
static int arg_str_ex(sc *c, const ast *a, const char **out, int *from_cli)
{
    if (from_cli) *from_cli = 0;
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) return arg_str_ex(c, v->def, out, from_cli);
    }
    if (a->k == A_CALL && !strcmp(a->s, "arg")) return script_arg(c, a, out, from_cli);
    if (a->k != A_STR) return err_at(c, a, SP_ETYPE, "expected a string literal");
    if (memchr(a->s, '\0', a->slen))
        return err_at(c, a, SP_EUNSUPPORTED, "strings with \\0 are not supported");
    *out = a->s;
    return SP_OK;
}

static int arg_str(sc *c, const ast *a, const char **out)
{
    return arg_str_ex(c, a, out, NULL);
}

static const char *path_of(sc *c, const char *p, char *buf, size_t size);

/* An input file name: relative names written in the script are resolved against its
 * directory (inputs ship with the job); names given with --arg are taken as given, relative to
 * the working directory. Outputs (saveAsTextFiles, report) are always relative to the working
 * directory: they belong to whoever runs the job. */
static int arg_path(sc *c, const ast *a, char *buf, size_t size, const char **out)
{
    int cli = 0;
    const char *p;
    int rc = arg_str_ex(c, a, &p, &cli);
    if (rc) return rc;
    *out = cli ? p : path_of(c, p, buf, size);
    return SP_OK;
}

/* A number literal (integer or real) or a val holding one. */
static int arg_num(sc *c, const ast *a, double *out)
{
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) return arg_num(c, v->def, out);
    }
    if (a->k == A_FLOAT) {
        *out = a->f;
        return SP_OK;
    }
    if (a->k == A_INT) {
        *out = (double)a->i;
        return SP_OK;
    }
    return err_at(c, a, SP_ETYPE, "expected a number literal");
}

static int arg_int(sc *c, const ast *a, int64_t *out)
{
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) return arg_int(c, v->def, out);
    }
    if (a->k != A_INT) return err_at(c, a, SP_ETYPE, "expected an integer literal");
    *out = a->i;
    return SP_OK;
}

static int arg_dur(sc *c, const ast *a, int64_t *out)
{
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) return arg_dur(c, v->def, out);
    }
    if (a->k == A_CALL &&
        (!strcmp(a->s, "Seconds") || !strcmp(a->s, "Milliseconds") || !strcmp(a->s, "Minutes")) &&
        a->n == 1 && a->kids[0]->k == A_INT) {
        int64_t n = a->kids[0]->i, mul = a->s[0] == 'S'                     ? 1000
                                         : a->s[1] == 'i' && a->s[2] == 'n' ? 60000
                                                                            : 1;
        if (n < 0) return err_at(c, a->kids[0], SP_EINVAL, "%s: a negative duration", a->s);
        if (n > INT64_MAX / mul)
            return err_at(c, a->kids[0], SP_EINVAL, "duration too large: %s(%lld)", a->s,
                          (long long)n);
        *out = n * mul;
        return SP_OK;
    }
    if (a->k != A_DUR) return err_at(c, a, SP_ETYPE, "expected a duration (10s, 500ms, 1m)");
    *out = a->i;
    return SP_OK;
}

/* Resolves a relative path against the script's directory (into buf). */
static const char *path_of(sc *c, const char *p, char *buf, size_t size)
{
    if (p[0] == '/' || !c->s->dir || !c->s->dir[0]) return p;
    snprintf(buf, size, "%s/%s", c->s->dir, p);
    return buf;
}

static int source(sc *c, const ast *a, sp_stream **out)
{
    sp_context *ctx = c->ctx;
    const char *m = a->s, *p = NULL, *q = NULL;
    char buf[4096];
    int rc;
    int na = a->n;
    sp_stream *s = NULL;
    if (!strcmp(m, "queueStream")) {
        if ((rc = want_args(c, a, na, 1, 2)) ||
            (rc = arg_path(c, a->kids[0], buf, sizeof buf, &p)) ||
            (na == 2 && (rc = arg_str(c, a->kids[1], &q))))
            return rc;
        s = sp_queue_stream(ctx, p, q);
    } else if (!strcmp(m, "textFile")) {
        if ((rc = want_args(c, a, na, 1, 1)) || (rc = arg_path(c, a->kids[0], buf, sizeof buf, &p)))
            return rc;
        s = sp_text_file(ctx, p);
    } else if (!strcmp(m, "textFileStream")) {
        if ((rc = want_args(c, a, na, 1, 1)) || (rc = arg_path(c, a->kids[0], buf, sizeof buf, &p)))
            return rc;
        s = sp_text_file_stream(ctx, p);
    } else if (!strcmp(m, "socketTextStream")) {
        int64_t port = 0;
        if ((rc = want_args(c, a, na, 2, 2)) || (rc = arg_str(c, a->kids[0], &p)) ||
            (rc = arg_int(c, a->kids[1], &port)))
            return rc;
        if (port < 0 || port > 65535)
            return err_at(c, a->kids[1], SP_EINVAL, "a port lies in [0, 65535], got %lld",
                          (long long)port);
        s = sp_socket_text_stream(ctx, p, (int)port);
    } else if (!strcmp(m, "stdin")) {
        if ((rc = want_args(c, a, na, 0, 0))) return rc;
        s = sp_stdin_stream(ctx);
    } else if (!strcmp(m, "generator")) {
        sp_generator_opts o = {.seed = 1, .keys = 1000, .value_max = 100, .per_batch = 100000};
        for (int i = 0; i < na; i++) {
            const ast *k = a->kids[i];
            if (k->k != A_NAMED)
                return err_at(c, k, SP_ETYPE,
                              "generator takes named arguments (seed = 1, keys = 100, ...)");
            const ast *v = k->kids[0];
            int64_t x = 0;
            double f = 0;
            if (!strcmp(k->s, "stringKeys")) {
                if (v->k != A_BOOL) return err_at(c, v, SP_ETYPE, "stringKeys takes true or false");
                o.string_keys = (int)v->i;
                continue;
            }
            if (!strcmp(k->s, "rate") && v->k == A_FLOAT) {
                f = v->f;
            } else {
                if ((rc = arg_int(c, v, &x))) return rc;
                f = (double)x;
            }
            if (x < 0 || f < 0) return err_at(c, v, SP_ETYPE, "%s must not be negative", k->s);
            if (!strcmp(k->s, "seed"))
                o.seed = (uint64_t)x;
            else if (!strcmp(k->s, "keys"))
                o.keys = (uint64_t)x;
            else if (!strcmp(k->s, "valueMax"))
                o.value_max = x;
            else if (!strcmp(k->s, "perBatch"))
                o.per_batch = (uint64_t)x;
            else if (!strcmp(k->s, "rate"))
                o.rate = f;
            else if (!strcmp(k->s, "total"))
                o.total = (uint64_t)x;
            else
                return err_at(c, k, SP_EINVAL,
                              "generator has no argument %s (seed, keys, stringKeys, valueMax, "
                              "perBatch, rate, total)",
                              k->s);
        }
        s = sp_generator(ctx, &o);
    } else {
        return 1; /* not a source */
    }
    if (!s) return api_fail(c, a, m);
    /* eventTime(_N) names a column of a source's records by position */
    const char *ev = c->s->ev_col;
    if (ev && !c->ev_stream && ev[0] == '_' && ev[1] >= '1' && ev[1] <= '9') {
        int col = atoi(ev + 1) - 1;
        sp_stream *e = sp_stream_event_time(s, col, c->s->watermark_ms);
        if (!e) return api_fail(c, c->s->ev_at, "eventTime");
        c->ev_stream = e;
        s = e;
    }
    *out = s;
    return SP_OK;
}

/* Streams of a list of arguments (union). */
static int stream_args(sc *c, lenv *env, const ast *a, int from, sp_stream **acc)
{
    int rc;
    for (int i = from; i < a->n; i++) {
        sp_stream *o;
        if ((rc = stream(c, env, a->kids[i], &o))) return rc;
        sp_stream *u = sp_stream_union(*acc, o);
        if (!u) return api_fail(c, a->kids[i], "union");
        *acc = u;
    }
    return SP_OK;
}

static int need_pair(sc *c, const ast *a, const sp_td *t)
{
    char b[256];
    if (t->kind == TD_TUPLE && t->n == 2) return SP_OK;
    return err_at(c, a, SP_ETYPE, "%s needs a stream of (key, value) pairs, got %s", a->s,
                  type_text(c, t, b, sizeof b));
}

static void note(sc *c, const ast *a, sp_stream *s)
{
    sb_printf(&c->s->plan, "  line %d: %s -> %s\n", a->line, a->s ? a->s : "?",
              s ? sp_stream_type(s) : "(output)");
}

static int script_window(sc *c, const ast *a, sp_stream *r, const sp_td *t, sp_stream **out);

/* parse(FORMAT[, ARG]) on a stream of lines: the records get the format's column names, and
 * the first parsed stream with the column of `batch ... eventTime(COLUMN)` becomes the
 * event-time stream. */
static int script_parse(sc *c, const ast *a, sp_stream *r, const char *fmt, const char *parg,
                        sp_stream **out)
{
    parse_spec *ps = NULL;
    sp_diag d;
    diag_clear(&d);
    if (parse_spec_new(&c->s->alloc, fmt, parg, &ps, &d)) {
        parse_spec_free(ps);
        return err_from(c, a, &d);
    }
    int rc = SP_OK;
    sp_stream *s = sp_stream_parse(r, fmt, parg);
    if (!s) {
        rc = api_fail(c, a, "parse");
        goto out;
    }
    if ((rc = rec_add(c, s, ps->names, ps->ncols, 1))) goto out;
    const sc_rec *rec = rec_of(c->s, s);
    const char *ev = c->s->ev_col;
    if (ev && !c->ev_stream && rec) {
        int col = -1;
        for (int i = 0; i < rec->n && col < 0; i++)
            if (!strcmp(rec->names[i], ev)) col = i;
        if (col >= 0) {
            note(c, a, s);
            sp_stream *e = sp_stream_event_time(s, col, c->s->watermark_ms);
            if (!e) {
                rc = api_fail(c, c->s->ev_at, "eventTime");
                goto out;
            }
            c->ev_stream = e;
            if ((rc = rec_add(c, e, rec->names, rec->n, 0))) goto out;
            s = e;
        }
    }
    *out = s;
out:
    parse_spec_free(ps);
    return rc;
}

/* Seq(q1, q2, ...) (or one number): quantiles in [0, 1]. */
static int quantile_list(sc *c, const ast *a, double *qs, int cap, int *n)
{
    int rc;
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        if (v && !v->stream) return quantile_list(c, v->def, qs, cap, n);
    }
    *n = 0;
    if (a->k == A_CALL &&
        (!strcmp(a->s, "Seq") || !strcmp(a->s, "List") || !strcmp(a->s, "Array"))) {
        if (a->n < 1 || a->n > cap)
            return err_at(c, a, SP_ETYPE, "quantiles: give 1 to %d probabilities", cap);
        for (int i = 0; i < a->n; i++) {
            if ((rc = arg_num(c, a->kids[i], &qs[i]))) return rc;
            if (!(qs[i] >= 0 && qs[i] <= 1))
                return err_at(c, a->kids[i], SP_EINVAL, "a quantile must lie in [0, 1]");
        }
        *n = a->n;
        return SP_OK;
    }
    if ((rc = arg_num(c, a, &qs[0]))) return rc;
    if (!(qs[0] >= 0 && qs[0] <= 1))
        return err_at(c, a, SP_EINVAL, "a quantile must lie in [0, 1]");
    *n = 1;
    return SP_OK;
}

static int lambda(sc *c, const ast *a, int nparams, const char *what, sp_expr **body);

/* A DStream method on stream r; *out NULL for outputs (print, saveAsTextFiles). */
static int method(sc *c, lenv *env, const ast *a, sp_stream *r, sp_stream **out)
{
    const char *m = a->s;
    const sp_allocator *al = &c->s->alloc;
    int na = a->n - 1, rc = SP_OK;
    const ast *k1 = na >= 1 ? a->kids[1] : NULL;
    sp_td *t = stream_td(c, r, a), *bt = NULL;
    sp_expr *f = NULL, *g = NULL;
    sp_stream *s = NULL;
    char b1[256];
    sp_diag d; /* one for every branch: method() is on the recursion of nested streams */
    if (!t) return c->d.code;
    *out = NULL;
    const sc_rec *rec = rec_of(c->s, r);
    c->lam_rec = !strcmp(m, "mapValues") || !strcmp(m, "flatMapValues") ? NULL : rec;
#define ARGS(lo, hi)                                                                               \
    if ((rc = want_args(c, a, na, lo, hi))) goto done
    if (!strcmp(m, "map") || !strcmp(m, "filter") || !strcmp(m, "mapValues")) {
        ARGS(1, 1);
        int mv = m[0] == 'm' && m[3] == 'V';
        if (mv && (rc = need_pair(c, a, t))) goto done;
        if ((rc = lambda(c, k1, 1, m, &f))) goto done;
        if ((rc = check(c, k1, f, mv ? t->child[1] : t, NULL, &bt))) goto done;
        if (m[0] == 'f' && !(bt->kind == TD_LEAF && bt->leaf == SP_BOOL)) {
            rc = err_at(c, k1->kids[0], SP_ETYPE, "filter needs a bool, the lambda gives %s",
                        type_text(c, bt, b1, sizeof b1));
            goto done;
        }
        if (!td_is_flat(bt)) {
            rc = err_at(c, k1->kids[0], SP_ETYPE,
                        "%s cannot give %s (a stream of Options or Seqs); use flatMap", m,
                        type_text(c, bt, b1, sizeof b1));
            goto done;
        }
        s = m[0] == 'f' ? sp_stream_filter(r, f)
            : mv        ? sp_stream_map_values(r, f)
                        : sp_stream_map(r, f);
    } else if (!strcmp(m, "flatMap") || !strcmp(m, "flatMapValues")) {
        ARGS(1, 1);
        int fv = m[7] == 'V';
        if (fv && (rc = need_pair(c, a, t))) goto done;
        if ((rc = lambda(c, k1, 1, m, &f))) goto done;
        adapter *ad;
        const char *ot;
        diag_clear(&d);
        if (adapt_flat_map_new(al, fv ? AD_FLAT_MAP_VALUES : AD_FLAT_MAP, f, fv ? t->child[1] : t,
                               &ad, &ot, &d)) {
            rc = err_from(c, k1, &d);
            goto done;
        }
        if ((rc = add_adapter(c, ad))) goto done;
        adapt_set_skip(ad, c->s->skip, c->ctx);
        s = fv ? sp_stream_flat_map_values(r, ot, adapt_flat_map_fn, ad)
               : sp_stream_flat_map(r, ot, adapt_flat_map_fn, ad);
    } else if (!strcmp(m, "union")) {
        if (na < 1) {
            rc = want_args(c, a, na, 1, 1);
            goto done;
        }
        s = r;
        rc = stream_args(c, env, a, 1, &s);
        if (rc) goto done;
    } else if (!strcmp(m, "count") || !strcmp(m, "countByValue") || !strcmp(m, "groupByKey")) {
        ARGS(0, 0);
        if (m[0] == 'g' && (rc = need_pair(c, a, t))) goto done;
        s = m[0] == 'g'   ? sp_stream_group_by_key(r)
            : m[5] == 'B' ? sp_stream_count_by_value(r)
                          : sp_stream_count(r);
    } else if (!strcmp(m, "reduce") || !strcmp(m, "reduceByKey")) {
        ARGS(1, 1);
        int byk = m[6] == 'B';
        if (byk && (rc = need_pair(c, a, t))) goto done;
        const sp_td *vt = byk ? t->child[1] : t;
        if ((rc = lambda(c, k1, 2, m, &f)) || (rc = check(c, k1, f, vt, vt, &bt))) goto done;
        if (!td_equal(bt, vt)) {
            rc = err_at(c, k1->kids[0], SP_ETYPE, "%s: the function gives %s, the values are %s", m,
                        type_text(c, bt, b1, sizeof b1), sp_stream_type(r));
            goto done;
        }
        s = byk ? sp_stream_reduce_by_key(r, f) : sp_stream_reduce(r, f);
    } else if (!strcmp(m, "join") || !strcmp(m, "leftOuterJoin") || !strcmp(m, "rightOuterJoin") ||
               !strcmp(m, "fullOuterJoin") || !strcmp(m, "cogroup")) {
        ARGS(1, 1);
        sp_stream *o;
        if ((rc = need_pair(c, a, t)) || (rc = stream(c, env, k1, &o))) goto done;
        s = m[0] == 'j'   ? sp_stream_join(r, o)
            : m[0] == 'l' ? sp_stream_left_outer_join(r, o)
            : m[0] == 'r' ? sp_stream_right_outer_join(r, o)
            : m[0] == 'f' ? sp_stream_full_outer_join(r, o)
                          : sp_stream_cogroup(r, o);
    } else if (!strcmp(m, "transform") || !strcmp(m, "transformWith")) {
        int tw = m[9] == 'W';
        ARGS(tw ? 2 : 1, tw ? 2 : 1);
        const ast *lam = a->kids[tw ? 2 : 1];
        if (lam->k != A_LAMBDA || lam->nparams != (tw ? 2 : 1)) {
            rc = err_at(c, lam, SP_ETYPE, "%s takes a lambda of %d parameter%s (rdd => ...)", m,
                        tw ? 2 : 1, tw ? "s" : "");
            goto done;
        }
        lenv in = *env;
        if (in.nstreams + (tw ? 2 : 1) > 2) {
            rc = err_at(c, lam, SP_ETYPE, "transform cannot be nested");
            goto done;
        }
        in.snames[in.nstreams] = lam->params[0];
        in.streams[in.nstreams++] = r;
        if (tw) {
            sp_stream *o;
            if ((rc = stream(c, env, a->kids[1], &o))) goto done;
            in.snames[in.nstreams] = lam->params[1];
            in.streams[in.nstreams++] = o;
        }
        if ((rc = stream(c, &in, lam->kids[0], &s))) goto done;
        *out = s;
        goto done;
    } else if (!strcmp(m, "sortByKey") || !strcmp(m, "sortBy") || !strcmp(m, "take") ||
               !strcmp(m, "distinct")) {
        if (!env->nstreams) {
            rc = err_at(c, a, SP_ETYPE,
                        "%s is an RDD operation: use it inside transform(rdd => ...)", m);
            goto done;
        }
        if (m[0] == 'd') {
            ARGS(0, 0);
            sp_stream *cv = sp_stream_count_by_value(r);
            sp_expr *key = cv ? sp_expr_field(c->ctx, sp_expr_arg(c->ctx, 0), 0) : NULL;
            s = key ? sp_stream_map(cv, key) : NULL;
        } else {
            int64_t n = 0;
            int asc = 1;
            int sb = !strcmp(m, "sortBy");
            adapter *ad;
            diag_clear(&d);
            if (m[0] == 't') {
                ARGS(1, 1);
                if ((rc = arg_int(c, k1, &n))) goto done;
            } else {
                ARGS(sb ? 1 : 0, sb ? 2 : 1);
                const ast *ab = sb ? (na == 2 ? a->kids[2] : NULL) : k1;
                if (ab && ab->k != A_BOOL) {
                    rc = err_at(c, ab, SP_ETYPE, "ascending takes true or false");
                    goto done;
                }
                if (ab) asc = (int)ab->i;
                if (sb && ((rc = lambda(c, k1, 1, m, &f)) || (rc = check(c, k1, f, t, NULL, NULL))))
                    goto done;
                if (!sb && (rc = need_pair(c, a, t))) goto done;
            }
            if (adapt_batch_new(al, m[0] == 't' ? AD_TAKE : AD_SORT, f, asc, n, t, &ad, &d)) {
                rc = err_from(c, a, &d);
                goto done;
            }
            if ((rc = add_adapter(c, ad))) goto done;
            s = sp_stream_transform(r, sp_stream_type(r), adapt_transform_fn, ad);
        }
    } else if (!strcmp(m, "parse")) {
        ARGS(1, 2);
        const char *fmt = NULL, *parg = NULL;
        if ((rc = arg_str(c, k1, &fmt)) || (na == 2 && (rc = arg_str(c, a->kids[2], &parg))))
            goto done;
        rc = script_parse(c, a, r, fmt, parg, &s);
        if (rc) goto done;
    } else if (!strncmp(m, "countApproxDistinct", 19)) {
        const char *rest = m + 19;
        int byk = !strncmp(rest, "ByKey", 5);
        if (byk) rest += 5;
        int win = !strcmp(rest, "AndWindow");
        if (*rest && !win) {
            rc = err_at(c, a, SP_EINVAL, "unknown DStream method %s", m);
            goto done;
        }
        double rsd = 0.05;
        int64_t w = 0, sl = 0;
        ARGS(win ? 2 : 0, win ? 3 : 1);
        if ((na >= 1 && (rc = arg_num(c, k1, &rsd))) ||
            (win && ((rc = arg_dur(c, a->kids[2], &w)) ||
                     (na == 3 && (rc = arg_dur(c, a->kids[3], &sl))))) ||
            (byk && (rc = need_pair(c, a, t))))
            goto done;
        s = byk ? (win ? sp_stream_count_approx_distinct_by_key_and_window(r, rsd, w, sl)
                       : sp_stream_count_approx_distinct_by_key(r, rsd))
                : (win ? sp_stream_count_approx_distinct_and_window(r, rsd, w, sl)
                       : sp_stream_count_approx_distinct(r, rsd));
    } else if (!strcmp(m, "approxQuantilesByKey") || !strcmp(m, "approxQuantilesByKeyAndWindow")) {
        int win = m[20] == 'A';
        double qs[32], rel = 0.01;
        int nq = 0;
        int64_t w = 0, sl = 0;
        ARGS(win ? 3 : 1, win ? 4 : 2);
        if ((rc = need_pair(c, a, t)) || (rc = quantile_list(c, k1, qs, 32, &nq)) ||
            (na >= 2 && (rc = arg_num(c, a->kids[2], &rel))) ||
            (win && ((rc = arg_dur(c, a->kids[3], &w)) ||
                     (na == 4 && (rc = arg_dur(c, a->kids[4], &sl))))))
            goto done;
        s = win ? sp_stream_approx_quantiles_by_key_and_window(r, nq, qs, rel, w, sl)
                : sp_stream_approx_quantiles_by_key(r, nq, qs, rel);
    } else if (!strcmp(m, "topK")) {
        ARGS(1, 1);
        int64_t k = 0;
        if ((rc = arg_int(c, k1, &k)) || (rc = need_pair(c, a, t))) goto done;
        if (k < 1 || k > 1000000) {
            rc = err_at(c, k1, SP_EINVAL, "topK takes k from 1 to 1000000, got %lld", (long long)k);
            goto done;
        }
        s = sp_stream_top_k(r, (int)k);
    } else if (!strcmp(m, "report")) {
        ARGS(1, 2);
        const char *p = NULL, *title = NULL;
        char deft[64];
        if ((rc = arg_str(c, k1, &p)) || (na == 2 && (rc = arg_str(c, a->kids[2], &title))))
            goto done;
        if (!title) {
            snprintf(deft, sizeof deft, "line %d", a->line);
            title = deft;
        }
        if (sp_stream_report(r, p, title)) rc = api_fail(c, a, "report");
        note(c, a, NULL);
        goto done;
    } else if (!strcmp(m, "print")) {
        ARGS(0, 1);
        int64_t n = 10;
        if (na && (rc = arg_int(c, k1, &n))) goto done;
        if (n < 0 || n > INT32_MAX) {
            rc = err_at(c, k1, SP_EINVAL, "print takes n from 0 to %d, got %lld", INT32_MAX,
                        (long long)n);
            goto done;
        }
        if (sp_stream_print(r, (int)n)) rc = api_fail(c, a, "print");
        note(c, a, NULL);
        goto done;
    } else if (!strcmp(m, "saveAsTextFiles")) {
        ARGS(1, 2);
        const char *p = NULL, *q = NULL;
        if ((rc = arg_str(c, k1, &p)) || (na == 2 && (rc = arg_str(c, a->kids[2], &q)))) goto done;
        if (sp_stream_save_as_text_files(r, p, q)) rc = api_fail(c, a, "saveAsTextFiles");
        note(c, a, NULL);
        goto done;
    } else if (!strcmp(m, "window") || !strcmp(m, "countByWindow") ||
               !strcmp(m, "reduceByWindow") || !strcmp(m, "reduceByKeyAndWindow") ||
               !strcmp(m, "countByValueAndWindow") || !strcmp(m, "groupByKeyAndWindow") ||
               !strcmp(m, "updateStateByKey")) {
        rc = script_window(c, a, r, t, out);
        if (!rc && *out && rec && m[0] == 'w') rc = rec_add(c, *out, rec->names, rec->n, 0);
        goto done;
    } else {
        rc = err_at(c, a, SP_EINVAL, "unknown DStream method %s", m);
        goto done;
    }
    if (!s) {
        rc = api_fail(c, a, m);
        goto done;
    }
    note(c, a, s);
    *out = s;
    /* the same records: the names carry over */
    if (rec && !rec_of(c->s, s) &&
        (!strcmp(m, "filter") || !strcmp(m, "union") || !strcmp(m, "sortBy") ||
         !strcmp(m, "sortByKey") || !strcmp(m, "take")))
        rc = rec_add(c, s, rec->names, rec->n, 0);
done:
#undef ARGS
    td_free(al, t);
    td_free(al, bt);
    (void)g;
    return rc;
}

static int stream_node(sc *c, lenv *env, const ast *a, sp_stream **out);

/* A stream-valued expression, one level below its parent (SP_EXPR_MAX_DEPTH). */
static int stream(sc *c, lenv *env, const ast *a, sp_stream **out)
{
    if (c->sdepth >= SP_EXPR_MAX_DEPTH)
        return err_at(c, a, SP_EINVAL, "expression too deeply nested (limit %d)",
                      SP_EXPR_MAX_DEPTH);
    c->sdepth++;
    int rc = stream_node(c, env, a, out);
    c->sdepth--;
    return rc;
}

static int stream_node(sc *c, lenv *env, const ast *a, sp_stream **out)
{
    int rc;
    if (a->k == A_NAME) {
        for (int i = env->nstreams - 1; i >= 0; i--)
            if (!strcmp(env->snames[i], a->s)) {
                *out = env->streams[i];
                return SP_OK;
            }
        sc_val *v = find_val(c->s, a->s);
        if (v && v->stream) {
            *out = v->stream;
            return SP_OK;
        }
        if (v) return err_at(c, a, SP_ETYPE, "%s is a value, not a stream", a->s);
        return err_at(c, a, SP_EINVAL, "unknown name %s", a->s);
    }
    if (a->k == A_CALL) {
        if (!strcmp(a->s, "union")) {
            if (a->n < 2)
                return err_at(c, a, SP_ETYPE, "union takes at least 2 streams, got %d", a->n);
            if ((rc = stream(c, env, a->kids[0], out))) return rc;
            return stream_args(c, env, a, 1, out);
        }
        rc = source(c, a, out);
        if (rc == 1)
            return err_at(c, a, SP_EINVAL,
                          "unknown source %s (queueStream, textFile, "
                          "textFileStream, socketTextStream, stdin, generator)",
                          a->s);
        if (!rc) note(c, a, *out);
        return rc;
    }
    if (a->k == A_METHOD) {
        sp_stream *r;
        if ((rc = stream(c, env, a->kids[0], &r))) return rc;
        if ((rc = method(c, env, a, r, out))) return rc;
        if (!*out) return err_at(c, a, SP_ETYPE, "%s gives no stream", a->s);
        return SP_OK;
    }
    return err_at(c, a, SP_ETYPE, "expected a stream");
}

/* 1 when a is (or starts with) a stream expression. */
static int is_stream(sc *c, const ast *a)
{
    while (a->k == A_METHOD)
        a = a->kids[0];
    if (a->k == A_NAME) {
        sc_val *v = find_val(c->s, a->s);
        return v && v->stream;
    }
    return a->k == A_CALL && strcmp(a->s, "Some") && strcmp(a->s, "Seq") && strcmp(a->s, "List") &&
           strcmp(a->s, "min") && strcmp(a->s, "max") && strcmp(a->s, "arg");
}

static int statement(sc *c, const ast *a)
{
    int rc;
    if (a->k == A_BATCH || a->k == A_WATERMARK || a->k == A_HORIZON || a->k == A_CHECKPOINT)
        return SP_OK;
    if (a->k == A_VAL) {
        if (c->s->nvals == SC_MAX_VALS) return err_at(c, a, SP_EINVAL, "too many vals");
        if (find_val(c->s, a->s)) return err_at(c, a, SP_EINVAL, "%s is already defined", a->s);
        sc_val v = {a->s, NULL, a->kids[0]};
        if (is_stream(c, a->kids[0])) {
            lenv none = {.nnames = 0};
            if ((rc = stream(c, &none, a->kids[0], &v.stream))) return rc;
        } else {
            sp_expr *e;
            lenv none = {.nnames = 0};
            if ((rc = ex(c, &none, a->kids[0], &e)) ||
                (rc = check(c, a->kids[0], e, NULL, NULL, NULL)))
                return rc;
        }
        c->s->vals[c->s->nvals++] = v;
        return SP_OK;
    }
    if (a->k == A_METHOD && is_stream(c, a)) {
        lenv none = {.nnames = 0};
        sp_stream *r, *o;
        if ((rc = stream(c, &none, a->kids[0], &r))) return rc;
        return method(c, &none, a, r, &o); /* a transformation nobody reads is dropped */
    }
    if (is_stream(c, a)) {
        lenv none = {.nnames = 0};
        sp_stream *o;
        return stream(c, &none, a, &o);
    }
    /* b.print() with b unknown, or a value: say so at b, as stream() does. */
    const ast *base = a;
    while (base->k == A_METHOD)
        base = base->kids[0];
    if (base != a && base->k == A_NAME) {
        lenv none = {.nnames = 0};
        sp_stream *o;
        if ((rc = stream(c, &none, base, &o))) return rc;
    }
    return err_at(c, a, SP_ETYPE, "a statement must be a stream operation, val or batch");
}

/* ---------------------------------------------------------------------- windows and state */

/* A lambda argument that is a reduce function over values of type v: (a, b) => v. */
static int fold_arg(sc *c, const ast *a, const sp_td *v, const char *what, sp_expr **f)
{
    sp_td *bt = NULL;
    char b1[256], b2[256];
    int rc = lambda(c, a, 2, what, f);
    if (!rc) rc = check(c, a, *f, v, v, &bt);
    if (!rc && !td_equal(bt, v))
        rc = err_at(c, a->kids[0], SP_ETYPE, "%s: the function gives %s, the values are %s", what,
                    type_text(c, bt, b1, sizeof b1), type_text(c, v, b2, sizeof b2));
    td_free(&c->s->alloc, bt);
    return rc;
}

static int update_state(sc *c, const ast *a, sp_stream *r, const sp_td *t, sp_stream **out)
{
    const sp_allocator *al = &c->s->alloc;
    int na = a->n - 1, rc;
    const char *init = NULL;
    if (na == 2) {
        const ast *k = a->kids[2];
        if (k->k == A_NAMED && strcmp(k->s, "initial"))
            return err_at(c, k, SP_EINVAL, "updateStateByKey has no argument %s (initial)", k->s);
        if ((rc = arg_str(c, k->k == A_NAMED ? k->kids[0] : k, &init))) return rc;
    } else if ((rc = want_args(c, a, na, 1, 2))) {
        return rc;
    }
    if ((rc = need_pair(c, a, t))) return rc;
    const ast *lam = a->kids[1];
    if (lam->k != A_LAMBDA || (lam->nparams != 2 && lam->nparams != 4))
        return err_at(c, lam, SP_ETYPE,
                      "updateStateByKey takes (values, state) => Option or "
                      "(time, key, values, state) => Option");
    sp_expr *f;
    if ((rc = lambda(c, lam, lam->nparams, "updateStateByKey", &f))) return rc;
    adapter *ad;
    const char *st_type;
    sp_diag d;
    diag_clear(&d);
    if (adapt_update_new(al, f, lam->nparams, t->child[0], t->child[1], &ad, &st_type, &d))
        return err_from(c, lam, &d);
    if ((rc = add_adapter(c, ad))) return rc;
    char buf[4096];
    /* The adapter infers the state type; the engine runs the lambda (as a kernel over all
     * live keys when it has the numeric shape, else on the host). */
    *out = sp_stream_update_state_by_key_expr(r, st_type, f,
                                              init ? path_of(c, init, buf, sizeof buf) : NULL);
    return *out ? SP_OK : api_fail(c, a, a->s);
}

static int script_window(sc *c, const ast *a, sp_stream *r, const sp_td *t, sp_stream **out)
{
    const char *m = a->s;
    int na = a->n - 1, rc;
    int64_t w = 0, sl = 0;
    sp_expr *f = NULL, *inv = NULL, *filt = NULL;
    sp_stream *s = NULL;
    *out = NULL;
    if (!strcmp(m, "updateStateByKey")) {
        rc = update_state(c, a, r, t, out);
        if (!rc) note(c, a, *out);
        return rc;
    }
    if (!strcmp(m, "window") || !strcmp(m, "countByWindow") ||
        !strcmp(m, "countByValueAndWindow") || !strcmp(m, "groupByKeyAndWindow")) {
        int lo = m[0] == 'w' || m[0] == 'g' ? 1 : 2;
        if ((rc = want_args(c, a, na, lo, 2)) || (rc = arg_dur(c, a->kids[1], &w)) ||
            (na == 2 && (rc = arg_dur(c, a->kids[2], &sl))))
            return rc;
        if (m[0] == 'g' && (rc = need_pair(c, a, t))) return rc;
        s = m[0] == 'w'   ? sp_stream_window(r, w, sl)
            : m[0] == 'g' ? sp_stream_group_by_key_and_window(r, w, sl)
            : m[7] == 'V' ? sp_stream_count_by_value_and_window(r, w, sl)
                          : sp_stream_count_by_window(r, w, sl);
    } else if (!strcmp(m, "reduceByWindow")) {
        /* (f, W, S) or (f, inv, W, S) */
        if ((rc = want_args(c, a, na, 3, 4))) return rc;
        int hasinv = na == 4;
        if ((rc = fold_arg(c, a->kids[1], t, m, &f)) ||
            (hasinv && (rc = fold_arg(c, a->kids[2], t, m, &inv))) ||
            (rc = arg_dur(c, a->kids[2 + hasinv], &w)) ||
            (rc = arg_dur(c, a->kids[3 + hasinv], &sl)))
            return rc;
        s = sp_stream_reduce_by_window(r, f, inv, w, sl);
    } else {
        /* reduceByKeyAndWindow(f, W[, S]) or (f, inv, W, S[, filterFunc]) */
        if ((rc = want_args(c, a, na, 2, 5)) || (rc = need_pair(c, a, t))) return rc;
        int hasinv = a->kids[2]->k == A_LAMBDA;
        const sp_td *v = t->child[1];
        if ((rc = fold_arg(c, a->kids[1], v, m, &f))) return rc;
        if (hasinv) {
            if (na < 4)
                return err_at(c, a, SP_ETYPE,
                              "%s with an inverse function takes (f, inv, window, slide)", m);
            if ((rc = fold_arg(c, a->kids[2], v, m, &inv)) || (rc = arg_dur(c, a->kids[3], &w)) ||
                (rc = arg_dur(c, a->kids[4], &sl)))
                return rc;
            if (na == 5) {
                sp_td *bt = NULL;
                if ((rc = lambda(c, a->kids[5], 1, "filterFunc", &filt)) ||
                    (rc = check(c, a->kids[5], filt, t, NULL, &bt)))
                    return rc;
                int ok = bt->kind == TD_LEAF && bt->leaf == SP_BOOL;
                td_free(&c->s->alloc, bt);
                if (!ok) return err_at(c, a->kids[5], SP_ETYPE, "filterFunc must give a bool");
            }
        } else {
            if (na > 3) return want_args(c, a, na, 2, 3);
            if ((rc = arg_dur(c, a->kids[2], &w)) ||
                (na == 3 && (rc = arg_dur(c, a->kids[3], &sl))))
                return rc;
        }
        s = sp_stream_reduce_by_key_and_window(r, f, inv, w, sl, filt);
    }
    if (!s) return api_fail(c, a, m);
    note(c, a, s);
    *out = s;
    return SP_OK;
}

/* ------------------------------------------------------------------------------- driver */

static int split_lines(script *s)
{
    int n = 1;
    for (const char *p = s->text; *p; p++)
        n += *p == '\n';
    s->lines = mem_calloc(&s->alloc, (size_t)n, sizeof *s->lines);
    if (!s->lines) return SP_ENOMEM;
    const char *p = s->text;
    s->lines[0] = p;
    s->nlines = 1;
    for (; *p; p++)
        if (*p == '\n' && s->nlines < n) s->lines[s->nlines++] = p + 1;
    return SP_OK;
}

int script_load(const char *name, const char *dir, const char *text, FILE *err, script **out)
{
    sp_allocator a = {NULL, NULL};
    script *s = mem_calloc(&a, 1, sizeof *s);
    *out = s;
    if (!s) return SP_ENOMEM;
    s->alloc = a;
    sb_init(&s->plan, &s->alloc);
    s->name = mem_strdup(&s->alloc, name ? name : "-e");
    s->dir = dir ? mem_strdup(&s->alloc, dir) : NULL;
    s->text = mem_strdup(&s->alloc, text);
    if (!s->name || !s->text || (dir && !s->dir) || split_lines(s)) return SP_ENOMEM;
    sp_diag d;
    diag_clear(&d);
    int rc = ast_parse(&s->alloc, s->text, &s->prog, &s->arena, &d);
    if (rc) {
        script_report(s, d.msg, err);
        return rc;
    }
    for (int i = 0; i < s->prog.n; i++) {
        const ast *st = s->prog.stmts[i];
        if (st->k == A_BATCH) {
            s->batch_ms = st->i;
            s->ev_col = st->s;
            s->ev_at = st->s ? st : NULL;
        }
        if (st->k == A_WATERMARK) s->watermark_ms = st->i;
        if (st->k == A_HORIZON) s->horizon_ms = st->i;
        if (st->k == A_CHECKPOINT) s->checkpoint = st->s;
    }
    return SP_OK;
}

int script_set_arg(script *s, const char *name, const char *value)
{
    if (!s || !name || !value) return SP_EINVAL;
    if (s->nargs == SC_MAX_ARGS) return SP_EINVAL;
    char *n = mem_strdup(&s->alloc, name), *v = mem_strdup(&s->alloc, value);
    if (!n || !v) {
        mem_free(&s->alloc, n);
        mem_free(&s->alloc, v);
        return SP_ENOMEM;
    }
    s->args[s->nargs].name = n;
    s->args[s->nargs].value = v;
    s->nargs++;
    return SP_OK;
}

int script_event_time(const script *s)
{
    return s && s->ev_col;
}

int64_t script_batch_ms(const script *s)
{
    return s ? s->batch_ms : 0;
}

int64_t script_horizon_ms(const script *s)
{
    return s ? s->horizon_ms : 0;
}

const char *script_checkpoint_dir(const script *s)
{
    return s ? s->checkpoint : NULL;
}

int script_build(script *s, sp_context *ctx, FILE *err)
{
    sc c = {.s = s, .ctx = ctx};
    diag_clear(&c.d);
    recs_free(s);
    int rc = SP_OK;
    for (int i = 0; i < s->prog.n && !rc; i++)
        rc = statement(&c, s->prog.stmts[i]);
    if (!rc && s->ev_col && !c.ev_stream)
        rc = err_at(&c, s->ev_at, SP_EINVAL,
                    "eventTime(%s): no parse() gives a column %s (or _N for a source's column N)",
                    s->ev_col, s->ev_col);
    if (!rc && (s->watermark_ms || s->horizon_ms) && !s->ev_col) {
        for (int i = 0; i < s->prog.n; i++)
            if (s->prog.stmts[i]->k == A_WATERMARK || s->prog.stmts[i]->k == A_HORIZON) {
                rc = err_at(&c, s->prog.stmts[i], SP_EINVAL,
                            "%s needs event time: batch 1m eventTime(COLUMN)",
                            s->prog.stmts[i]->k == A_HORIZON ? "horizon" : "watermark");
                break;
            }
    }
    if (rc) script_report(s, c.d.msg, err);
    return rc;
}

void script_set_skip(script *s, int skip)
{
    s->skip = skip;
}

const char *script_runtime_error(const script *s)
{
    for (int i = 0; i < s->nads; i++)
        if (adapt_error(s->ads[i])) return adapt_error(s->ads[i]);
    return NULL;
}

void script_report(const script *s, const char *msg, FILE *err)
{
    if (!err) return;
    int l, col, k = 0;
    const char *p;
    if (find_pos(msg, &p, &l, &col, &k) && l >= 1 && l <= s->nlines) {
        {
            fprintf(err, "%s:%d:%d: %.*s%s\n", s->name, l, col, (int)(p - msg), msg, p + k);
            const char *ln = s->lines[l - 1];
            size_t n = strcspn(ln, "\n");
            fprintf(err, "%.*s\n", (int)n, ln);
            for (int i = 1; i < col; i++)
                fputc(ln[i - 1] == '\t' ? '\t' : ' ', err);
            fputs("^\n", err);
            return;
        }
    }
    fprintf(err, "%s: %s\n", s->name, msg);
}

void script_explain(const script *s, FILE *f)
{
    fprintf(f, "script %s: batch %lld ms\n%s", s->name, (long long)(s->batch_ms ? s->batch_ms : 0),
            s->plan.s ? s->plan.s : "");
}

void script_free(script *s)
{
    if (!s) return;
    for (int i = 0; i < s->nads; i++)
        adapt_free(s->ads[i]);
    recs_free(s);
    for (int i = 0; i < s->nargs; i++) {
        mem_free(&s->alloc, s->args[i].name);
        mem_free(&s->alloc, s->args[i].value);
    }
    ast_arena_free(s->arena);
    sb_free(&s->plan);
    mem_free(&s->alloc, s->lines);
    mem_free(&s->alloc, s->name);
    mem_free(&s->alloc, s->dir);
    mem_free(&s->alloc, s->text);
    sp_allocator a = s->alloc;
    mem_free(&a, s);
}
