/* parse.c — the lexer and the recursive-descent parser of job scripts.
 *
 * Precedence, lowest first (Scala's): lambda and if, ||, &&, == !=, < <= > >=, + -, * / %,
 * prefix ! -, then postfix .name, .name(args), ._1 and calls. */
#include "script/ast_int.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------- arena */

struct ast_arena {
    const sp_allocator *a;
    void **blocks;
    size_t n, cap;
};

static void *ar_alloc(ast_arena *ar, size_t size)
{
    if (ar->n == ar->cap) {
        size_t cap = ar->cap ? ar->cap * 2 : 64;
        void **b = mem_realloc(ar->a, ar->blocks, cap * sizeof *b);
        if (!b) return NULL;
        ar->blocks = b;
        ar->cap = cap;
    }
    void *p = mem_calloc(ar->a, 1, size ? size : 1);
    if (p) ar->blocks[ar->n++] = p;
    return p;
}

void ast_arena_free(ast_arena *ar)
{
    if (!ar) return;
    for (size_t i = 0; i < ar->n; i++)
        mem_free(ar->a, ar->blocks[i]);
    mem_free(ar->a, ar->blocks);
    mem_free(ar->a, ar);
}

/* ------------------------------------------------------------------------------- lexer */

typedef enum tok_kind { T_EOF, T_NL, T_INT, T_FLOAT, T_STR, T_DUR, T_IDENT, T_PUNCT } tok_kind;

typedef struct tok {
    tok_kind k;
    int line, col;
    const char *p; /* T_IDENT / T_PUNCT: the text (len bytes) */
    size_t len;
    int64_t i; /* T_INT: the magnitude as written (2^63 wraps to INT64_MIN); T_DUR: ms */
    double f;
    char *s; /* T_STR: unescaped */
    size_t slen;
    int lng; /* T_INT: written with L (a Long literal) */
} tok;

typedef struct parser {
    ast_arena *ar;
    sp_diag *d;
    tok *t;
    size_t n, cap, pos;
    size_t neg_lit; /* index of an integer token right after a prefix '-' (0: none) */
    ast *min_lit;   /* the literal read there whose magnitude only fits negated (MIN) */
    int depth;      /* nesting of p_expr and prefix operators (SP_EXPR_MAX_DEPTH) */
} parser;

__attribute__((format(printf, 4, 5))) static int perr(parser *ps, int line, int col,
                                                      const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_set(ps->d, SP_EPARSE, "%d:%d: %s", line, col, msg);
}

static int push_tok(parser *ps, tok t)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        tok *nt = mem_realloc(ps->ar->a, ps->t, cap * sizeof *nt);
        if (!nt) return diag_set(ps->d, SP_ENOMEM, "script: out of memory");
        ps->t = nt;
        ps->cap = cap;
    }
    ps->t[ps->n++] = t;
    return SP_OK;
}

/* Tokens after which a newline does not end the statement. */
static int tok_continues(const tok *t)
{
    if (t->k != T_PUNCT) return 0;
    static const char *const cont[] = {"+",  "-",  "*",  "/", "%", "==", "!=", "<", "<=", ">",
                                       ">=", "&&", "||", "!", "=", "=>", ",",  "(", "."};
    for (size_t i = 0; i < sizeof cont / sizeof cont[0]; i++)
        if (strlen(cont[i]) == t->len && !memcmp(cont[i], t->p, t->len)) return 1;
    return 0;
}

static int put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

static int lex(parser *ps, const char *src)
{
    const char *p = src;
    int line = 1, col = 1, depth = 0, rc;
#define ADV()                                                                                      \
    do {                                                                                           \
        if (*p == '\n') {                                                                          \
            line++;                                                                                \
            col = 1;                                                                               \
        } else {                                                                                   \
            col++;                                                                                 \
        }                                                                                          \
        p++;                                                                                       \
    } while (0)
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            ADV();
        if ((p[0] == '/' && p[1] == '/') || p[0] == '#') {
            while (*p && *p != '\n')
                ADV();
            continue;
        }
        if (p[0] == '/' && p[1] == '*') {
            int l0 = line, c0 = col;
            ADV();
            ADV();
            while (*p && !(p[0] == '*' && p[1] == '/'))
                ADV();
            if (!*p) return perr(ps, l0, c0, "unterminated comment");
            ADV();
            ADV();
            continue;
        }
        tok t = {.line = line, .col = col, .p = p};
        if (!*p) {
            t.k = T_EOF;
            return push_tok(ps, t);
        }
        if (*p == '\n') {
            ADV();
            if (depth > 0 || ps->n == 0 || ps->t[ps->n - 1].k == T_NL ||
                tok_continues(&ps->t[ps->n - 1]))
                continue;
            /* A line that starts with '.' continues the statement. */
            const char *q = p;
            for (;;) {
                while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
                    q++;
                if ((q[0] == '/' && q[1] == '/') || q[0] == '#') {
                    while (*q && *q != '\n')
                        q++;
                    continue;
                }
                break;
            }
            if (q[0] == '.' && !isdigit((unsigned char)q[1])) continue;
            t.k = T_NL;
            if ((rc = push_tok(ps, t))) return rc;
            continue;
        }
        if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
            const char *s = p;
            int fl = 0;
            while (isdigit((unsigned char)*p))
                ADV();
            if (*p == '.' && isdigit((unsigned char)p[1])) {
                fl = 1;
                ADV();
                while (isdigit((unsigned char)*p))
                    ADV();
            }
            if ((*p == 'e' || *p == 'E') &&
                (isdigit((unsigned char)p[1]) ||
                 ((p[1] == '-' || p[1] == '+') && isdigit((unsigned char)p[2])))) {
                fl = 1;
                ADV();
                ADV();
                while (isdigit((unsigned char)*p))
                    ADV();
            }
            char buf[64];
            size_t n = (size_t)(p - s);
            if (n >= sizeof buf) return perr(ps, t.line, t.col, "number too long");
            memcpy(buf, s, n);
            buf[n] = '\0';
            const char *u = p;
            while (isalpha((unsigned char)*u))
                u++;
            size_t ul = (size_t)(u - p);
            if (fl) {
                /* Scala's: a literal must name a finite number, and a non-zero one must not
                 * round to zero (subnormals are fine). */
                int f32 = ul == 1 && (*p == 'f' || *p == 'F');
                if (ul == 1 && (*p == 'd' || *p == 'D' || f32)) ADV();
                t.k = T_FLOAT;
                t.f = strtod(buf, NULL);
                int nonzero = strspn(buf, "0.") < strcspn(buf, "eE");
                const char *ty = f32 ? "Float" : "Double";
                if (isinf(t.f) || (f32 && fabs(t.f) > 3.4028234663852886e38))
                    return perr(ps, t.line, t.col, "floating-point literal out of range for %s: %s",
                                ty, buf);
                if (nonzero && (t.f == 0 || (f32 && fabs(t.f) < 7.006492321624085e-46)))
                    return perr(ps, t.line, t.col, "floating-point literal too small for %s: %s",
                                ty, buf);
            } else {
                /* The magnitude, exactly: 2^63 is kept (as INT64_MIN) for -9223372036854775808L;
                 * the parser checks the range once it knows the sign. */
                uint64_t mag = 0;
                int over = 0;
                for (size_t k = 0; k < n; k++) {
                    unsigned dgt = (unsigned)(buf[k] - '0');
                    if (mag > (UINT64_MAX - dgt) / 10)
                        over = 1;
                    else
                        mag = mag * 10 + dgt;
                }
                int64_t mul = 0;
                if (!ul)
                    mul = -1;
                else if (ul == 2 && !memcmp(p, "ms", 2))
                    mul = 1;
                else if (ul == 1 && *p == 's')
                    mul = 1000;
                else if (ul == 1 && *p == 'm')
                    mul = 60000;
                else if (ul == 1 && *p == 'h')
                    mul = 3600000;
                else if (ul == 1 && (*p == 'L' || *p == 'l'))
                    mul = -2;
                else
                    return perr(ps, t.line, t.col,
                                "unknown unit '%.*s' (durations take ms, s, m or h)", (int)ul, p);
                if (mul > 0) {
                    if (over || mag > (uint64_t)INT64_MAX / (uint64_t)mul)
                        return perr(ps, t.line, t.col,
                                    "duration too large: %s%.*s (at most %lld ms)", buf, (int)ul, p,
                                    (long long)INT64_MAX);
                    t.k = T_DUR;
                    t.i = (int64_t)(mag * (uint64_t)mul);
                } else {
                    t.lng = mul == -2;
                    if (over || mag > (uint64_t)INT64_MAX + 1)
                        return perr(ps, t.line, t.col, "integer literal out of range for %s: %s",
                                    t.lng ? "Long" : "Int", buf);
                    t.k = T_INT;
                    t.len = n;
                    t.i = mag > (uint64_t)INT64_MAX ? INT64_MIN : (int64_t)mag;
                }
                for (size_t k = 0; k < ul; k++)
                    ADV();
            }
            if ((rc = push_tok(ps, t))) return rc;
            continue;
        }
        if (isalpha((unsigned char)*p) || *p == '_') {
            while (isalnum((unsigned char)*p) || *p == '_')
                ADV();
            t.k = T_IDENT;
            t.len = (size_t)(p - t.p);
            if ((rc = push_tok(ps, t))) return rc;
            continue;
        }
        if (*p == '"') {
            ADV();
            size_t cap = strlen(p) + 1;
            char *o = ar_alloc(ps->ar, cap);
            if (!o) return diag_set(ps->d, SP_ENOMEM, "script: out of memory");
            size_t n = 0;
            while (*p != '"') {
                if (!*p || *p == '\n') return perr(ps, t.line, t.col, "unterminated string");
                if (*p == '\\') {
                    int el = line, ec = col;
                    ADV();
                    char c = *p;
                    switch (c) {
                    case 'n':
                        o[n++] = '\n';
                        break;
                    case 't':
                        o[n++] = '\t';
                        break;
                    case 'r':
                        o[n++] = '\r';
                        break;
                    case '0':
                        o[n++] = '\0';
                        break;
                    case '\\':
                    case '"':
                    case '\'':
                        o[n++] = c;
                        break;
                    case 'u': {
                        unsigned cp = 0;
                        for (int k = 1; k <= 4; k++) {
                            if (!isxdigit((unsigned char)p[k]))
                                return perr(ps, el, ec, "\\u needs 4 hex digits");
                            cp = cp * 16 +
                                 (unsigned)(isdigit((unsigned char)p[k])
                                                ? p[k] - '0'
                                                : (tolower((unsigned char)p[k]) - 'a' + 10));
                        }
                        for (int k = 0; k < 4; k++)
                            ADV();
                        n += (size_t)put_utf8(o + n, cp);
                        break;
                    }
                    default:
                        return perr(ps, el, ec, "unknown escape \\%c", c ? c : '0');
                    }
                    ADV();
                    continue;
                }
                o[n++] = *p;
                ADV();
            }
            ADV();
            o[n] = '\0';
            t.k = T_STR;
            t.s = o;
            t.slen = n;
            if ((rc = push_tok(ps, t))) return rc;
            continue;
        }
        static const char *const two[] = {"=>", "==", "!=", "<=", ">=", "&&", "||"};
        t.k = T_PUNCT;
        t.len = 0;
        for (size_t k = 0; k < sizeof two / sizeof two[0]; k++)
            if (p[0] == two[k][0] && p[1] == two[k][1]) t.len = 2;
        if (!t.len) {
            if (!strchr("()[]{},.+-*/%<>!=", *p) || !*p)
                return perr(ps, line, col, "unexpected character '%c'", *p);
            t.len = 1;
            if (*p == '(' || *p == '[' || *p == '{') depth++;
            if ((*p == ')' || *p == ']' || *p == '}') && depth > 0) depth--;
        }
        for (size_t k = 0; k < t.len; k++)
            ADV();
        if ((rc = push_tok(ps, t))) return rc;
    }
#undef ADV
}

/* ------------------------------------------------------------------------------ parser */

static tok *cur(parser *ps)
{
    return &ps->t[ps->pos];
}

static tok *peek(parser *ps, size_t k)
{
    size_t i = ps->pos + k;
    return &ps->t[i < ps->n ? i : ps->n - 1];
}

static int is_p(const tok *t, const char *s)
{
    return t->k == T_PUNCT && t->len == strlen(s) && !memcmp(t->p, s, t->len);
}

static int is_kw(const tok *t, const char *s)
{
    return t->k == T_IDENT && t->len == strlen(s) && !memcmp(t->p, s, t->len);
}

static const char *tok_text(const tok *t, char *buf, size_t size)
{
    switch (t->k) {
    case T_EOF:
        return "end of input";
    case T_NL:
        return "end of line";
    case T_STR:
        return "a string";
    case T_INT:
    case T_FLOAT:
        return "a number";
    case T_DUR:
        return "a duration";
    default:
        snprintf(buf, size, "'%.*s'", (int)t->len, t->p);
        return buf;
    }
}

static int expect(parser *ps, const char *s)
{
    tok *t = cur(ps);
    if (is_p(t, s)) {
        ps->pos++;
        return SP_OK;
    }
    char b[64];
    return perr(ps, t->line, t->col, "expected '%s', found %s", s, tok_text(t, b, sizeof b));
}

static ast *node(parser *ps, ast_kind k, const tok *at, int n)
{
    ast *a = ar_alloc(ps->ar, sizeof *a);
    if (!a) return NULL;
    a->k = k;
    a->line = at->line;
    a->col = at->col;
    a->n = n;
    if (n > 0) {
        a->kids = ar_alloc(ps->ar, (size_t)n * sizeof *a->kids);
        if (!a->kids) return NULL;
    }
    return a;
}

static char *ident(parser *ps, const tok *t)
{
    char *s = ar_alloc(ps->ar, t->len + 1);
    if (s) memcpy(s, t->p, t->len);
    return s;
}

static int oom(parser *ps)
{
    return diag_set(ps->d, SP_ENOMEM, "script: out of memory");
}

static int p_expr(parser *ps, ast **out);

/* A list of arguments after '(' up to ')': name = e is a named argument. */
static int p_args(parser *ps, ast ***kids, int *n)
{
    ast *tmp[64];
    int k = 0, rc;
    if ((rc = expect(ps, "("))) return rc;
    while (!is_p(cur(ps), ")")) {
        if (k == 64) return perr(ps, cur(ps)->line, cur(ps)->col, "too many arguments");
        tok *t = cur(ps);
        if (t->k == T_IDENT && is_p(peek(ps, 1), "=")) {
            ast *na = node(ps, A_NAMED, t, 1);
            if (!na || !(na->s = ident(ps, t))) return oom(ps);
            ps->pos += 2;
            if ((rc = p_expr(ps, &na->kids[0]))) return rc;
            tmp[k++] = na;
        } else {
            if ((rc = p_expr(ps, &tmp[k]))) return rc;
            k++;
        }
        if (is_p(cur(ps), ",")) {
            ps->pos++;
            continue;
        }
        if (!is_p(cur(ps), ")")) {
            char b[64];
            return perr(ps, cur(ps)->line, cur(ps)->col, "expected ',' or ')', found %s",
                        tok_text(cur(ps), b, sizeof b));
        }
    }
    ps->pos++;
    *n = k;
    *kids = k ? ar_alloc(ps->ar, (size_t)k * sizeof **kids) : NULL;
    if (k && !*kids) return oom(ps);
    if (k) memcpy(*kids, tmp, (size_t)k * sizeof *tmp);
    return SP_OK;
}

/* 1 when the tokens at the cursor are a lambda's parameter list followed by "=>". */
static int at_lambda(parser *ps, int *nparams)
{
    if (cur(ps)->k == T_IDENT && is_p(peek(ps, 1), "=>")) {
        *nparams = 1;
        return 1;
    }
    if (!is_p(cur(ps), "(")) return 0;
    size_t k = 1;
    int n = 0;
    if (is_p(peek(ps, 1), ")")) return is_p(peek(ps, 2), "=>") ? (*nparams = 0, 1) : 0;
    for (;;) {
        if (peek(ps, k)->k != T_IDENT) return 0;
        n++;
        k++;
        if (is_p(peek(ps, k), ",")) {
            k++;
            continue;
        }
        if (!is_p(peek(ps, k), ")")) return 0;
        *nparams = n;
        return is_p(peek(ps, k + 1), "=>");
    }
}

static int p_lambda(parser *ps, int np, ast **out)
{
    tok *t0 = cur(ps);
    ast *a = node(ps, A_LAMBDA, t0, 1);
    if (!a) return oom(ps);
    a->nparams = np;
    a->params = ar_alloc(ps->ar, (size_t)(np ? np : 1) * sizeof *a->params);
    if (!a->params) return oom(ps);
    if (is_p(t0, "(")) ps->pos++;
    for (int i = 0; i < np; i++) {
        if (!(a->params[i] = ident(ps, cur(ps)))) return oom(ps);
        for (int j = 0; j < i; j++)
            if (!strcmp(a->params[j], a->params[i]))
                return perr(ps, cur(ps)->line, cur(ps)->col, "parameter %s is defined twice",
                            a->params[i]);
        ps->pos += 1 + (i + 1 < np); /* name, then ',' */
    }
    if (is_p(t0, "(")) ps->pos++; /* ')' */
    ps->pos++;                    /* '=>' */
    *out = a;
    return p_expr(ps, &a->kids[0]);
}

static int p_primary(parser *ps, ast **out)
{
    tok *t = cur(ps);
    int rc;
    char b[64];
    switch (t->k) {
    case T_INT:
    case T_DUR:
        if (t->k == T_INT) {
            /* Int unless written with L (Scala's rule); MIN's magnitude only right after a
             * prefix '-', which folds it (p_unary). */
            uint64_t lim = t->lng ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX;
            uint64_t mag = t->i == INT64_MIN ? (uint64_t)INT64_MAX + 1 : (uint64_t)t->i;
            int neg = ps->neg_lit == ps->pos;
            if (mag > lim + (uint64_t)neg)
                return perr(ps, t->line, t->col, "integer literal out of range for %s: %.*s",
                            t->lng ? "Long" : "Int", (int)t->len, t->p);
        }
        if (!(*out = node(ps, t->k == T_INT ? A_INT : A_DUR, t, 0))) return oom(ps);
        (*out)->i = t->i;
        if (t->k == T_INT && ps->neg_lit == ps->pos &&
            (t->i == INT64_MIN || (!t->lng && t->i == (int64_t)INT32_MAX + 1)))
            ps->min_lit = *out;
        ps->pos++;
        return SP_OK;
    case T_FLOAT:
        if (!(*out = node(ps, A_FLOAT, t, 0))) return oom(ps);
        (*out)->f = t->f;
        ps->pos++;
        return SP_OK;
    case T_STR:
        if (!(*out = node(ps, A_STR, t, 0))) return oom(ps);
        (*out)->s = t->s;
        (*out)->slen = t->slen;
        ps->pos++;
        return SP_OK;
    case T_IDENT:
        if (is_kw(t, "true") || is_kw(t, "false")) {
            if (!(*out = node(ps, A_BOOL, t, 0))) return oom(ps);
            (*out)->i = is_kw(t, "true");
            ps->pos++;
            return SP_OK;
        }
        if (is_kw(t, "val") || is_kw(t, "else") || is_kw(t, "batch"))
            return perr(ps, t->line, t->col, "unexpected '%.*s'", (int)t->len, t->p);
        if (is_p(peek(ps, 1), "(")) {
            ast *c = node(ps, A_CALL, t, 0);
            if (!c || !(c->s = ident(ps, t))) return oom(ps);
            ps->pos++;
            c->parens = 1;
            if ((rc = p_args(ps, &c->kids, &c->n))) return rc;
            *out = c;
            return SP_OK;
        }
        if (!(*out = node(ps, A_NAME, t, 0)) || !((*out)->s = ident(ps, t))) return oom(ps);
        ps->pos++;
        return SP_OK;
    case T_PUNCT:
        if (is_p(t, "(")) {
            ast *tmp[32];
            int k = 0;
            ps->pos++;
            for (;;) {
                if (k == 32) return perr(ps, t->line, t->col, "tuple too long");
                if ((rc = p_expr(ps, &tmp[k++]))) return rc;
                if (is_p(cur(ps), ",")) {
                    ps->pos++;
                    continue;
                }
                if ((rc = expect(ps, ")"))) return rc;
                break;
            }
            if (k == 1) {
                *out = tmp[0];
                return SP_OK;
            }
            ast *tu = node(ps, A_TUPLE, t, k);
            if (!tu) return oom(ps);
            memcpy(tu->kids, tmp, (size_t)k * sizeof *tmp);
            *out = tu;
            return SP_OK;
        }
        if (is_p(t, "{")) {
            ps->pos++;
            while (cur(ps)->k == T_NL)
                ps->pos++;
            if ((rc = p_expr(ps, out))) return rc;
            while (cur(ps)->k == T_NL)
                ps->pos++;
            return expect(ps, "}");
        }
        break;
    default:
        break;
    }
    return perr(ps, t->line, t->col, "expected an expression, found %s", tok_text(t, b, sizeof b));
}

static int p_postfix(parser *ps, ast **out)
{
    int rc = p_primary(ps, out);
    while (!rc && is_p(cur(ps), ".")) {
        tok *dot = cur(ps);
        ps->pos++;
        tok *nm = cur(ps);
        if (nm->k != T_IDENT) {
            char b[64];
            return perr(ps, nm->line, nm->col, "expected a method name after '.', found %s",
                        tok_text(nm, b, sizeof b));
        }
        ast *m = node(ps, A_METHOD, nm, 0);
        if (!m || !(m->s = ident(ps, nm))) return oom(ps);
        (void)dot;
        ps->pos++;
        ast **args = NULL;
        int na = 0;
        if (is_p(cur(ps), "(")) {
            m->parens = 1;
            if ((rc = p_args(ps, &args, &na))) return rc;
        }
        m->n = na + 1;
        m->kids = ar_alloc(ps->ar, (size_t)m->n * sizeof *m->kids);
        if (!m->kids) return oom(ps);
        m->kids[0] = *out;
        if (na) memcpy(m->kids + 1, args, (size_t)na * sizeof *args);
        *out = m;
    }
    return rc;
}

/* Nesting is bounded before the recursion gets deep: every level of brackets, arguments,
 * lambda bodies, if parts and prefix operators counts; a chain of binary operators or of
 * postfix calls is parsed in a loop and does not. */
static int p_enter(parser *ps)
{
    if (ps->depth >= SP_EXPR_MAX_DEPTH)
        return perr(ps, cur(ps)->line, cur(ps)->col, "expression too deeply nested (limit %d)",
                    SP_EXPR_MAX_DEPTH);
    ps->depth++;
    return SP_OK;
}

static int p_unary(parser *ps, ast **out)
{
    tok *t = cur(ps);
    if (is_p(t, "!") || is_p(t, "-")) {
        ps->pos++;
        ast *u = node(ps, A_UNOP, t, 1);
        if (!u) return oom(ps);
        u->op = is_p(t, "!") ? SP_OP_NOT : SP_OP_NEG;
        if (u->op == SP_OP_NEG && cur(ps)->k == T_INT) ps->neg_lit = ps->pos;
        int rc = p_enter(ps);
        if (rc) return rc;
        rc = p_unary(ps, &u->kids[0]);
        ps->depth--;
        if (rc) return rc;
        /* -2147483648 and -9223372036854775808L are literals; their magnitude alone is not
         * (as in -2147483648.toLong, which negates after the call). */
        ast *ml = ps->min_lit;
        ps->min_lit = NULL;
        if (ml && ml != u->kids[0])
            return perr(ps, ml->line, ml->col, "integer literal out of range for %s: %s",
                        ml->i == INT64_MIN ? "Long" : "Int",
                        ml->i == INT64_MIN ? "9223372036854775808" : "2147483648");
        /* Fold negative literals (so that INT64_MIN and -1.5 are literals). */
        if (u->op == SP_OP_NEG && u->kids[0]->k == A_INT) {
            u->kids[0]->i = (int64_t)(0 - (uint64_t)u->kids[0]->i);
            u->kids[0]->line = u->line;
            u->kids[0]->col = u->col;
            *out = u->kids[0];
            return SP_OK;
        }
        if (u->op == SP_OP_NEG && u->kids[0]->k == A_FLOAT) {
            u->kids[0]->f = -u->kids[0]->f;
            *out = u->kids[0];
            return SP_OK;
        }
        *out = u;
        return SP_OK;
    }
    return p_postfix(ps, out);
}

static const struct {
    const char *s;
    sp_op op;
    int prec;
} binops[] = {{"||", SP_OP_OR, 1}, {"&&", SP_OP_AND, 2}, {"==", SP_OP_EQ, 3}, {"!=", SP_OP_NE, 3},
              {"<", SP_OP_LT, 4},  {"<=", SP_OP_LE, 4},  {">", SP_OP_GT, 4},  {">=", SP_OP_GE, 4},
              {"+", SP_OP_ADD, 5}, {"-", SP_OP_SUB, 5},  {"*", SP_OP_MUL, 6}, {"/", SP_OP_DIV, 6},
              {"%", SP_OP_MOD, 6}};

static int p_binary(parser *ps, int min_prec, ast **out)
{
    int rc = p_unary(ps, out);
    for (;;) {
        if (rc) return rc;
        tok *t = cur(ps);
        int k = -1;
        for (size_t i = 0; i < sizeof binops / sizeof binops[0]; i++)
            if (is_p(t, binops[i].s)) k = (int)i;
        if (k < 0 || binops[k].prec < min_prec) return SP_OK;
        ps->pos++;
        ast *b = node(ps, A_BINOP, t, 2);
        if (!b) return oom(ps);
        b->op = binops[k].op;
        b->kids[0] = *out;
        if (at_lambda(ps, &(int){0}))
            return perr(ps, cur(ps)->line, cur(ps)->col, "a lambda cannot be an operand");
        rc = p_binary(ps, binops[k].prec + 1, &b->kids[1]);
        *out = b;
    }
}

static int p_expr1(parser *ps, ast **out);

static int p_expr(parser *ps, ast **out)
{
    int rc = p_enter(ps);
    if (rc) return rc;
    rc = p_expr1(ps, out);
    ps->depth--;
    return rc;
}

static int p_expr1(parser *ps, ast **out)
{
    int np;
    tok *t = cur(ps);
    if (at_lambda(ps, &np)) return p_lambda(ps, np, out);
    if (is_kw(t, "if")) {
        ps->pos++;
        ast *a = node(ps, A_IF, t, 3);
        int rc;
        if (!a) return oom(ps);
        if ((rc = expect(ps, "(")) || (rc = p_expr(ps, &a->kids[0])) || (rc = expect(ps, ")")) ||
            (rc = p_expr(ps, &a->kids[1])))
            return rc;
        while (cur(ps)->k == T_NL && is_kw(peek(ps, 1), "else"))
            ps->pos++;
        if (!is_kw(cur(ps), "else")) {
            char b[64];
            return perr(ps, cur(ps)->line, cur(ps)->col,
                        "expected 'else' (if is an expression here), found %s",
                        tok_text(cur(ps), b, sizeof b));
        }
        ps->pos++;
        *out = a;
        return p_expr(ps, &a->kids[2]);
    }
    return p_binary(ps, 1, out);
}

static int p_stmt(parser *ps, ast **out)
{
    tok *t = cur(ps);
    int rc;
    char b[64];
    if (is_kw(t, "batch") && peek(ps, 1)->k != T_PUNCT) {
        ps->pos++;
        tok *d = cur(ps);
        if (d->k != T_DUR || d->i <= 0)
            return perr(ps, d->line, d->col, "batch needs a positive duration (500ms, 1s, 1m)");
        ps->pos++;
        if (!(*out = node(ps, A_BATCH, t, 0))) return oom(ps);
        (*out)->i = d->i;
        if (is_kw(cur(ps), "eventTime")) {
            /* batch 1m eventTime(COLUMN): COLUMN a name or a string */
            tok *e = cur(ps);
            ps->pos++;
            if ((rc = expect(ps, "("))) return rc;
            tok *c = cur(ps);
            if (c->k == T_IDENT) {
                if (!((*out)->s = ident(ps, c))) return oom(ps);
            } else if (c->k == T_STR) {
                (*out)->s = c->s;
            } else {
                return perr(ps, c->line, c->col, "eventTime takes a column name, found %s",
                            tok_text(c, b, sizeof b));
            }
            ps->pos++;
            if ((rc = expect(ps, ")"))) return rc;
            (*out)->parens = 1;
            (*out)->line = e->line;
            (*out)->col = e->col;
        }
    } else if (is_kw(t, "watermark") && peek(ps, 1)->k != T_PUNCT) {
        ps->pos++;
        tok *d = cur(ps);
        if (d->k != T_DUR || d->i < 0)
            return perr(ps, d->line, d->col, "watermark needs a duration (30s, 2m)");
        ps->pos++;
        if (!(*out = node(ps, A_WATERMARK, t, 0))) return oom(ps);
        (*out)->i = d->i;
    } else if ((is_kw(t, "checkpoint") && peek(ps, 1)->k != T_PUNCT) ||
               (is_kw(t, "checkpoint") && is_p(peek(ps, 1), "(")) ||
               (t->k == T_IDENT && is_p(peek(ps, 1), ".") && is_kw(peek(ps, 2), "checkpoint") &&
                is_p(peek(ps, 3), "("))) {
        /* checkpoint "DIR", checkpoint("DIR"), or Spark's ssc.checkpoint("DIR") */
        if (!is_kw(t, "checkpoint")) ps->pos += 2;
        tok *kw = cur(ps);
        ps->pos++;
        int paren = is_p(cur(ps), "(");
        if (paren) ps->pos++;
        tok *d = cur(ps);
        if (d->k != T_STR || !d->s || !d->s[0])
            return perr(ps, d->line, d->col, "checkpoint needs a directory: checkpoint \"DIR\"");
        ps->pos++;
        if (paren && (rc = expect(ps, ")"))) return rc;
        if (!(*out = node(ps, A_CHECKPOINT, kw, 0))) return oom(ps);
        (*out)->s = d->s;
    } else if (is_kw(t, "horizon") && peek(ps, 1)->k != T_PUNCT) {
        ps->pos++;
        tok *d = cur(ps);
        if (d->k != T_DUR || d->i <= 0)
            return perr(ps, d->line, d->col, "horizon needs a positive duration (8760h)");
        ps->pos++;
        if (!(*out = node(ps, A_HORIZON, t, 0))) return oom(ps);
        (*out)->i = d->i;
    } else if (is_kw(t, "val")) {
        ps->pos++;
        tok *nm = cur(ps);
        if (nm->k != T_IDENT)
            return perr(ps, nm->line, nm->col, "expected a name after val, found %s",
                        tok_text(nm, b, sizeof b));
        ps->pos++;
        ast *v = node(ps, A_VAL, nm, 1);
        if (!v || !(v->s = ident(ps, nm))) return oom(ps);
        if ((rc = expect(ps, "=")) || (rc = p_expr(ps, &v->kids[0]))) return rc;
        *out = v;
    } else if ((rc = p_expr(ps, out))) {
        return rc;
    }
    t = cur(ps);
    if (t->k != T_NL && t->k != T_EOF && !is_p(t, ";"))
        return perr(ps, t->line, t->col, "expected the end of the statement, found %s",
                    tok_text(t, b, sizeof b));
    return SP_OK;
}

int ast_parse(const sp_allocator *a, const char *text, ast_script *out, ast_arena **arena,
              sp_diag *d)
{
    memset(out, 0, sizeof *out);
    ast_arena *ar = mem_calloc(a, 1, sizeof *ar);
    *arena = ar;
    if (!ar) return diag_set(d, SP_ENOMEM, "script: out of memory");
    ar->a = a;
    parser ps = {.ar = ar, .d = d};
    int rc = lex(&ps, text);
    ast *tmp = NULL;
    size_t cap = 0;
    ast **stmts = NULL;
    while (!rc) {
        while (cur(&ps)->k == T_NL)
            ps.pos++;
        if (cur(&ps)->k == T_EOF) break;
        if ((rc = p_stmt(&ps, &tmp))) break;
        if ((size_t)out->n == cap) {
            cap = cap ? cap * 2 : 16;
            ast **ns = ar_alloc(ar, cap * sizeof *ns);
            if (!ns) {
                rc = oom(&ps);
                break;
            }
            if (out->n) memcpy(ns, stmts, (size_t)out->n * sizeof *ns);
            stmts = ns;
        }
        stmts[out->n++] = tmp;
    }
    out->stmts = stmts;
    mem_free(a, ps.t);
    return rc;
}
