/* jsonscan.c — the fast path of parse(json): a path trie and a one-pass validating scanner
 * that matches jansson 2.14's grammar (contract and limits in jsonscan_int.h). */
#include "io/jsonscan_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum { JS_MAX_DEPTH = 128, JS_MAX_EDGES = 64, JS_KEY_BUF = 256, JS_NUM_BUF = 512 };

/* ------------------------------------------------------------------------------ the trie */

/* A node stands for the text T consumed so far (keys joined by dots, with a trailing dot; ""
 * at the root): the paths that start with T continue below it. An edge is a key K under that
 * node: K is the whole rest of one path (col) and/or the part of some paths up to one of their
 * dots (child: the node for T K "."). Since a node depends only on T, the number of nodes is at
 * most the number of dots plus one; which splitting a match used is carried along the descent
 * as a mask of dot ordinals (the ordinal of a dot depends only on T K, so on the edge). */
typedef struct js_edge {
    const char *key;
    uint32_t len;
    int32_t child; /* node entered when the value is an object, or -1 */
    int32_t col;   /* path that ends with this key, or -1 */
    uint32_t dot;  /* ordinal of the dot the key ends at (when child >= 0) */
} js_edge;

typedef struct js_node {
    const char *text; /* T, a prefix of some path */
    uint32_t tlen;
    uint32_t first, n; /* edges [first, first + n) */
    uint64_t lens;     /* bit (len & 63) for each edge's key length */
} js_node;

struct jsonscan {
    js_node *node;
    uint32_t nnodes, capnodes;
    js_edge *edge;
    uint32_t nedges, capedges;
    char **path; /* own copies */
    int npaths;
};

void jsonscan_free(const sp_allocator *a, jsonscan *js)
{
    if (!js) return;
    for (int i = 0; i < js->npaths; i++)
        mem_free(a, js->path[i]);
    mem_free(a, js->path);
    mem_free(a, js->node);
    mem_free(a, js->edge);
    mem_free(a, js);
}

/* Index of the node for text [t, t + n), created when new; -1 when out of memory. */
static int64_t js_node_get(const sp_allocator *a, jsonscan *js, const char *t, uint32_t n)
{
    for (uint32_t i = 0; i < js->nnodes; i++)
        if (js->node[i].tlen == n && memcmp(js->node[i].text, t, n) == 0) return i;
    if (js->nnodes == js->capnodes) {
        uint32_t nc = js->capnodes ? js->capnodes * 2 : 8;
        js_node *nn = mem_realloc(a, js->node, nc * sizeof *nn);
        if (!nn) return -1;
        js->node = nn;
        js->capnodes = nc;
    }
    js->node[js->nnodes] = (js_node){t, n, 0, 0, 0};
    return js->nnodes++;
}

/* The edge for key [k, k + n) among node's edges [first, nedges), appended when new. */
static js_edge *js_edge_get(const sp_allocator *a, jsonscan *js, uint32_t first, const char *k,
                            uint32_t n)
{
    for (uint32_t i = first; i < js->nedges; i++)
        if (js->edge[i].len == n && memcmp(js->edge[i].key, k, n) == 0) return &js->edge[i];
    if (js->nedges == js->capedges) {
        uint32_t nc = js->capedges ? js->capedges * 2 : 16;
        js_edge *ne = mem_realloc(a, js->edge, nc * sizeof *ne);
        if (!ne) return NULL;
        js->edge = ne;
        js->capedges = nc;
    }
    js->edge[js->nedges] = (js_edge){k, n, -1, -1, 0};
    return &js->edge[js->nedges++];
}

int jsonscan_new(const sp_allocator *a, char *const *paths, int n, jsonscan **out, sp_diag *d)
{
    *out = NULL;
    if (n <= 0 || n > JSONSCAN_MAX_COLS) return 0;
    jsonscan *js = mem_calloc(a, 1, sizeof *js);
    if (!js || !(js->path = mem_calloc(a, (size_t)n, sizeof *js->path))) goto oom;
    for (int c = 0; c < n; c++, js->npaths++)
        if (!(js->path[c] = mem_strdup(a, paths[c]))) goto oom;
    if (js_node_get(a, js, "", 0) < 0) goto oom;
    int ok = 1;
    for (uint32_t i = 0; i < js->nnodes && ok; i++) {
        uint32_t first = js->nedges, tlen = js->node[i].tlen;
        for (int c = 0; c < n && ok; c++) {
            const char *p = js->path[c];
            size_t pl = strlen(p);
            if (pl < tlen || memcmp(p, js->node[i].text, tlen) != 0) continue;
            js_edge *e = js_edge_get(a, js, first, p + tlen, (uint32_t)(pl - tlen));
            if (!e) goto oom;
            e->col = c;
            uint32_t dots = 0;
            for (size_t k = 0; k < tlen; k++)
                dots += p[k] == '.';
            for (size_t k = tlen; k < pl; k++) {
                if (p[k] != '.') continue;
                if (dots >= 64) {
                    ok = 0;
                    break;
                }
                int64_t child = js_node_get(a, js, p, (uint32_t)(k + 1));
                if (child < 0 || !(e = js_edge_get(a, js, first, p + tlen, (uint32_t)(k - tlen))))
                    goto oom;
                e->child = (int32_t)child;
                e->dot = dots++;
            }
        }
        js->node[i].first = first;
        js->node[i].n = js->nedges - first;
        if (js->node[i].n > JS_MAX_EDGES) ok = 0;
        for (uint32_t k = first; k < js->nedges; k++)
            js->node[i].lens |= 1ull << (js->edge[k].len & 63);
    }
    if (!ok) {
        jsonscan_free(a, js);
        return 0;
    }
    *out = js;
    return 0;
oom:
    jsonscan_free(a, js);
    return diag_set(d, SP_ENOMEM, "parse(json): out of memory compiling the paths");
}

/* ------------------------------------------------------------------------------ scanning */

typedef struct js_ctx {
    const jsonscan *js;
    const char *e; /* end of the line */
    js_value *v;
    js_status st;
} js_ctx;

static const char *js_fail(js_ctx *x, js_status st)
{
    x->st = st;
    return NULL;
}

static inline int js_digit(char c)
{
    return (unsigned)(c - '0') <= 9;
}

static inline const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* First byte in [p, e) that is '"', '\\', below 0x20 or above 0x7f; e when none. */
static inline const char *js_special(const char *p, const char *e)
{
#if defined(__SSE2__)
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    while (e - p >= 16) {
        __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, q), _mm_cmpeq_epi8(w, bs)),
                                 _mm_cmplt_epi8(w, sp));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        if (bits) return p + __builtin_ctz(bits);
        p += 16;
    }
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* SWAR: the lowest flagged byte is exact (borrows only flag bytes above a true hit) */
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    while (e - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t xq = w ^ (ones * '"'), xb = w ^ (ones * '\\');
        uint64_t m =
            (((xq - ones) & ~xq) | ((xb - ones) & ~xb) | ((w - ones * 0x20) & ~w) | w) & high;
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) return p;
        p++;
    }
    return e;
}

/* Four hex digits at p: their value, or -1. */
static int js_hex4(const char *p, const char *e)
{
    if (e - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (unsigned char)p[i], h;
        if (c - '0' <= 9)
            h = c - '0';
        else if ((c | 0x20) - 'a' <= 5)
            h = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | (int)h;
    }
    return v;
}

/* An escape after its backslash: the end, or NULL when jansson rejects it (unknown escape,
 * bad hex, \u0000, a lone or reversed surrogate). */
static const char *js_escape(const char *p, const char *e)
{
    if (p == e) return NULL;
    switch (*p) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 1;
    case 'u': {
        int v = js_hex4(p + 1, e);
        if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF)) return NULL;
        p += 5;
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u') return NULL;
            int w = js_hex4(p + 2, e);
            if (w < 0xDC00 || w > 0xDFFF) return NULL;
            p += 6;
        }
        return p;
    }
    default:
        return NULL;
    }
}

/* One UTF-8 sequence starting with a byte >= 0x80: its end, or NULL when invalid (as jansson's
 * utf8_check_first/full: no overlongs, surrogates, or code points over U+10FFFF). */
static const char *js_utf8(const char *p, const char *e)
{
    unsigned u = (unsigned char)p[0];
    uint32_t v;
    size_t n;
    if (u < 0xC2)
        return NULL;
    else if (u <= 0xDF)
        n = 2, v = u & 0x1F;
    else if (u <= 0xEF)
        n = 3, v = u & 0x0F;
    else if (u <= 0xF4)
        n = 4, v = u & 0x07;
    else
        return NULL;
    if ((size_t)(e - p) < n) return NULL;
    for (size_t i = 1; i < n; i++) {
        unsigned c = (unsigned char)p[i];
        if ((c & 0xC0) != 0x80) return NULL;
        v = v << 6 | (c & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return NULL;
    return p + n;
}

/* A string's body from just after its opening quote: returns its closing quote; *esc is set
 * when it holds a backslash. */
static const char *js_string(js_ctx *x, const char *p, int *esc)
{
    const char *e = x->e;
    for (;;) {
        p = js_special(p, e);
        if (p == e) return js_fail(x, JS_MALFORMED);
        unsigned c = (unsigned char)*p;
        if (c == '"') return p;
        if (c == '\\') {
            *esc = 1;
            p = js_escape(p + 1, e);
        } else if (c < 0x20) {
            p = NULL;
        } else {
            p = js_utf8(p, e);
        }
        if (!p) return js_fail(x, JS_MALFORMED);
    }
}

/* Does a real with nint integer digits and exponent ex overflow strtod? Only texts whose value
 * may reach 1e308 are converted. */
__attribute__((noinline)) static int js_real_overflows(js_ctx *x, const char *s, size_t n,
                                                       size_t nint, long ex)
{
    if ((long)nint + ex <= 308) return 0;
    char buf[JS_NUM_BUF];
    if (n >= sizeof buf) {
        x->st = JS_FALLBACK;
        return 1;
    }
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    double f = strtod(buf, NULL);
    if ((f == HUGE_VAL || f == -HUGE_VAL) && errno == ERANGE) {
        x->st = JS_MALFORMED;
        return 1;
    }
    return 0;
}

/* The token after a number or literal: a NUL there is swallowed by jansson's lexer (its
 * unget of a NUL byte is lost), a case left to jansson. */
static const char *js_after_token(js_ctx *x, const char *p)
{
    if (p < x->e && *p == '\0') return js_fail(x, JS_FALLBACK);
    return p;
}

/* A number at p ('-' or a digit): its end; *kind JS_INT or JS_REAL. */
static const char *js_number(js_ctx *x, const char *p, uint32_t *kind)
{
    const char *s = p, *e = x->e;
    int neg = *p == '-';
    if (neg) p++;
    if (p == e) return js_fail(x, JS_MALFORMED);
    const char *d0 = p;
    if (*p == '0') {
        p++;
        if (p < e && js_digit(*p)) return js_fail(x, JS_MALFORMED);
    } else if (js_digit(*p)) {
        while (p < e && js_digit(*p))
            p++;
    } else {
        return js_fail(x, JS_MALFORMED);
    }
    size_t nint = (size_t)(p - d0);
    if (p == e || (*p != '.' && *p != 'e' && *p != 'E')) {
        if (nint > 19 ||
            (nint == 19 && memcmp(d0, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
            return js_fail(x, JS_MALFORMED);
        *kind = JS_INT;
        return js_after_token(x, p);
    }
    if (*p == '.') {
        p++;
        if (p == e || !js_digit(*p)) return js_fail(x, JS_MALFORMED);
        while (p < e && js_digit(*p))
            p++;
    }
    long ex = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p == e || !js_digit(*p)) return js_fail(x, JS_MALFORMED);
        while (p < e && js_digit(*p)) {
            if (ex < 1000000) ex = ex * 10 + (*p - '0');
            p++;
        }
        if (eneg) ex = -ex;
    }
    if (js_real_overflows(x, s, (size_t)(p - s), nint, ex)) return NULL;
    *kind = JS_REAL;
    return js_after_token(x, p);
}

/* A literal at p ("truex" is rejected by the caller, which wants a separator next). */
static const char *js_literal(js_ctx *x, const char *p, const char *word, size_t n)
{
    if ((size_t)(x->e - p) < n || memcmp(p, word, n) != 0) return js_fail(x, JS_MALFORMED);
    return js_after_token(x, p + n);
}

static const char *js_object(js_ctx *x, const char *p, int32_t node, uint64_t split,
                             unsigned depth);
static const char *js_array(js_ctx *x, const char *p, unsigned depth);

/* Any value at p (whitespace skipped): returns its end and sets *val (s, n, kind). */
static const char *js_value_at(js_ctx *x, const char *p, unsigned depth, js_value *val)
{
    const char *q;
    if (p == x->e) return js_fail(x, JS_MALFORMED);
    val->s = p;
    switch (*p) {
    case '"': {
        int esc = 0;
        if (!(q = js_string(x, p + 1, &esc))) return NULL;
        val->s = p + 1;
        val->n = (uint32_t)(q - p - 1);
        val->kind = esc ? JS_STR_ESC : JS_STR;
        return q + 1;
    }
    case '{':
        val->kind = JS_COMPOSITE;
        q = js_object(x, p + 1, -1, 0, depth);
        break;
    case '[':
        val->kind = JS_COMPOSITE;
        q = js_array(x, p + 1, depth);
        break;
    case 't':
        val->kind = JS_TRUE;
        q = js_literal(x, p, "true", 4);
        break;
    case 'f':
        val->kind = JS_FALSE;
        q = js_literal(x, p, "false", 5);
        break;
    case 'n':
        val->kind = JS_NULL;
        q = js_literal(x, p, "null", 4);
        break;
    default:
        if (*p != '-' && !js_digit(*p)) return js_fail(x, JS_MALFORMED);
        q = js_number(x, p, &val->kind);
    }
    if (q) val->n = (uint32_t)(q - p);
    return q;
}

/* Is a match with splitting m preferred to one with splitting b (m != b)? pj_at tries the
 * whole key first, then splits at each dot from the left, recursing into the rest: at the
 * lowest dot d where they differ, the one split at d wins unless the other splits nowhere
 * after d. */
static int js_better(uint64_t m, uint64_t b)
{
    uint64_t diff = m ^ b;
    if (!diff) return 0;
    int d = __builtin_ctzll(diff);
    uint64_t above = d == 63 ? 0 : ~0ull << (d + 1);
    if (m >> d & 1) return (b & above) != 0;
    return (m & above) == 0;
}

/* The edge of node for key [k, k + n) (raw text; esc: it has escapes), or NULL. Marks it seen
 * in *seen; a key seen twice in one object, or an escaped key too long to decode here, falls
 * back. */
static const js_edge *js_match(js_ctx *x, int32_t node, const char *k, size_t n, int esc,
                               uint64_t *seen)
{
    const jsonscan *js = x->js;
    const js_node *nd = &js->node[node];
    char buf[JS_KEY_BUF];
    if (esc) {
        if (n > sizeof buf) {
            x->st = JS_FALLBACK;
            return NULL;
        }
        n = jsonscan_unescape(k, n, buf);
        k = buf;
    }
    if (!(nd->lens >> (n & 63) & 1)) return NULL;
    const js_edge *ed = js->edge + nd->first;
    for (uint32_t i = 0; i < nd->n; i++)
        if (ed[i].len == n && memcmp(ed[i].key, k, n) == 0) {
            if (*seen >> i & 1) {
                x->st = JS_FALLBACK;
                return NULL;
            }
            *seen |= 1ull << i;
            return &ed[i];
        }
    return NULL;
}

/* An object's body after '{'; node is its trie node (-1: not on a requested path). */
static const char *js_object(js_ctx *x, const char *p, int32_t node, uint64_t split, unsigned depth)
{
    const char *e = x->e;
    if (depth > JS_MAX_DEPTH) return js_fail(x, JS_FALLBACK);
    p = js_ws(p, e);
    if (p < e && *p == '}') return p + 1;
    uint64_t seen = 0;
    for (;;) {
        if (p == e || *p != '"') return js_fail(x, JS_MALFORMED);
        int esc = 0;
        const char *k = p + 1, *q = js_string(x, k, &esc);
        if (!q) return NULL;
        const js_edge *ed = NULL;
        if (node >= 0 && !(ed = js_match(x, node, k, (size_t)(q - k), esc, &seen)) &&
            x->st != JS_OK)
            return NULL;
        p = js_ws(q + 1, e);
        if (p == e || *p != ':') return js_fail(x, JS_MALFORMED);
        p = js_ws(p + 1, e);
        js_value val;
        if (ed && ed->child >= 0 && p < e && *p == '{') {
            val.s = p;
            val.kind = JS_COMPOSITE;
            q = js_object(x, p + 1, ed->child, split | 1ull << ed->dot, depth + 1);
            if (q) val.n = (uint32_t)(q - p);
        } else {
            q = js_value_at(x, p, depth + 1, &val);
        }
        if (!q) return NULL;
        if (ed && ed->col >= 0) {
            js_value *v = &x->v[ed->col];
            if (v->kind == JS_ABSENT || js_better(split, v->split)) {
                *v = val;
                v->split = split;
            }
        }
        p = js_ws(q, e);
        if (p == e) return js_fail(x, JS_MALFORMED);
        if (*p == '}') return p + 1;
        if (*p != ',') return js_fail(x, JS_MALFORMED);
        p = js_ws(p + 1, e);
    }
}

/* An array's body after '['. */
static const char *js_array(js_ctx *x, const char *p, unsigned depth)
{
    const char *e = x->e;
    if (depth > JS_MAX_DEPTH) return js_fail(x, JS_FALLBACK);
    p = js_ws(p, e);
    if (p < e && *p == ']') return p + 1;
    for (;;) {
        js_value val;
        if (!(p = js_value_at(x, p, depth + 1, &val))) return NULL;
        p = js_ws(p, e);
        if (p == e) return js_fail(x, JS_MALFORMED);
        if (*p == ']') return p + 1;
        if (*p != ',') return js_fail(x, JS_MALFORMED);
        p = js_ws(p + 1, e);
    }
}

js_status jsonscan_line(const jsonscan *js, const char *s, size_t len, js_value *v)
{
    for (int c = 0; c < js->npaths; c++)
        v[c] = (js_value){NULL, 0, JS_ABSENT, 0};
    js_ctx x = {js, s + len, v, JS_OK};
    const char *p = js_ws(s, x.e);
    if (p == x.e || (*p != '{' && *p != '[')) return JS_MALFORMED;
    int obj = *p == '{';
    p = obj ? js_object(&x, p + 1, 0, 0, 1) : js_array(&x, p + 1, 1);
    if (!p) return x.st;
    if (js_ws(p, x.e) != x.e) return JS_MALFORMED;
    return obj ? JS_OK : JS_NOT_OBJECT;
}

/* ------------------------------------------------------------------------------ decoding */

static size_t js_utf8_put(uint32_t v, char *w)
{
    if (v < 0x80) {
        w[0] = (char)v;
        return 1;
    }
    if (v < 0x800) {
        w[0] = (char)(0xC0 | v >> 6);
        w[1] = (char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        w[0] = (char)(0xE0 | v >> 12);
        w[1] = (char)(0x80 | (v >> 6 & 0x3F));
        w[2] = (char)(0x80 | (v & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | v >> 18);
    w[1] = (char)(0x80 | (v >> 12 & 0x3F));
    w[2] = (char)(0x80 | (v >> 6 & 0x3F));
    w[3] = (char)(0x80 | (v & 0x3F));
    return 4;
}

size_t jsonscan_unescape(const char *s, size_t n, char *out)
{
    const char *e = s + n;
    char *w = out;
    while (s < e) {
        const char *b = memchr(s, '\\', (size_t)(e - s));
        if (!b) b = e;
        memmove(w, s, (size_t)(b - s));
        w += b - s;
        if (b == e) break;
        s = b + 1;
        char c = *s++;
        switch (c) {
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            uint32_t v = (uint32_t)js_hex4(s, e);
            s += 4;
            if (v >= 0xD800 && v <= 0xDBFF) { /* validated: "\uDCxx" follows */
                v = 0x10000 + ((v - 0xD800) << 10) + ((uint32_t)js_hex4(s + 2, e) - 0xDC00);
                s += 6;
            }
            w += js_utf8_put(v, w);
            break;
        }
        default: /* '"', '\\', '/' */
            *w++ = c;
        }
    }
    return (size_t)(w - out);
}

int64_t jsonscan_int(const char *s, size_t n)
{
    int neg = n && *s == '-';
    uint64_t v = 0;
    for (size_t i = (size_t)neg; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return neg ? (int64_t)(0 - v) : (int64_t)v;
}

int jsonscan_real(const char *s, size_t n, double *out)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    /* Clinger's fast path: a mantissa below 2^53 times an exact power of ten is one correctly
     * rounded IEEE operation, so it equals strtod's correctly rounded result. */
    const char *p = s, *e = s + n;
    int neg = *p == '-';
    p += neg;
    uint64_t m = 0;
    int sig = 0;
    long ex = 0;
    for (; p < e && js_digit(*p); p++)
        if (m || *p != '0') m = m * 10 + (uint64_t)(*p - '0'), sig++;
    if (p < e && *p == '.')
        for (p++; p < e && js_digit(*p); p++) {
            if (m || *p != '0') m = m * 10 + (uint64_t)(*p - '0'), sig++;
            ex--;
            if (sig > 15) break;
        }
    if (sig <= 15 && (p == e || *p == 'e' || *p == 'E')) {
        long ee = 0;
        int eneg = 0;
        if (p < e) {
            p++;
            if (*p == '+' || *p == '-') eneg = *p++ == '-';
            for (; p < e && ee < 1000; p++)
                ee = ee * 10 + (*p - '0');
        }
        if (p == e) {
            ex += eneg ? -ee : ee;
            if (m == 0 || (ex >= -22 && ex <= 22)) {
                double f = (double)m;
                if (m && ex < 0) f /= p10[-ex];
                if (m && ex > 0) f *= p10[ex];
                *out = neg ? -f : f;
                return 0;
            }
        }
    }
    char buf[64], *t = buf;
    if (n >= sizeof buf && !(t = malloc(n + 1))) return -1;
    memcpy(t, s, n);
    t[n] = 0;
    *out = strtod(t, NULL);
    if (t != buf) free(t);
    return 0;
}
