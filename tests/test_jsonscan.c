/* test_jsonscan.c — parse(json)'s single-pass extractor against the jansson path, line by
 * line and column by column: hand-written cases of each rule (path splitting order, duplicate
 * keys, escapes, UTF-8, numbers at their limits, NUL bytes, depth), fuzzed lines (random
 * nesting, keys near the requested paths, escapes, unicode, numbers of every form, mutations,
 * truncations), and the real Zeek and NGINX Plus logs of ../shared/data (skipped, exit 77, when
 * absent). */
#include "io/jsonscan_int.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static const sp_allocator alloc = {NULL, NULL};

/* ------------------------------------------------------------------------------ harness */

typedef struct side {
    parse_line l;
    const char *why;
} side;

typedef struct pair {
    parse_spec *ps;
    side fast, slow;
    size_t lines, fallbacks, rejected;
} pair;

static void pair_open(pair *p, const char *arg)
{
    memset(p, 0, sizeof *p);
    sp_diag d;
    diag_clear(&d);
    if (parse_spec_new(&alloc, "json", arg, &p->ps, &d)) fail_msg("spec %s: %s", arg, d.msg);
    assert_non_null(parse_json_scan(p->ps));
    side *s[2] = {&p->fast, &p->slow};
    for (int i = 0; i < 2; i++) {
        s[i]->l.alloc = &alloc;
        s[i]->l.v = calloc((size_t)p->ps->ncols, sizeof *s[i]->l.v);
        assert_non_null(s[i]->l.v);
    }
}

static void pair_close(pair *p)
{
    side *s[2] = {&p->fast, &p->slow};
    for (int i = 0; i < 2; i++) {
        free(s[i]->l.v);
        mem_free(&alloc, s[i]->l.scratch);
    }
    parse_spec_free(p->ps);
}

static void side_run(side *s, parse_line_fn fn, const parse_spec *ps, const char *line, size_t len)
{
    s->l.nscratch = 0;
    s->l.reject_col = -1;
    s->why = fn(ps, &s->l, line, len);
}

static const char *side_str(const side *s, int c, size_t *n)
{
    const parse_val *v = &s->l.v[c];
    *n = v->len;
    return v->s ? v->s : s->l.scratch + v->off;
}

/* Row text "v1|v2|..." or "!reason@col" of one side (for messages and exact expectations). */
static void side_text(const pair *p, const side *s, char *buf, size_t size)
{
    if (s->why) {
        snprintf(buf, size, "!%s@%d", s->why, s->l.reject_col);
        return;
    }
    size_t k = 0;
    buf[0] = 0;
    for (int c = 0; c < p->ps->ncols && k < size; c++) {
        const parse_val *v = &s->l.v[c];
        const char *sep = c ? "|" : "";
        switch (p->ps->types[c]) {
        case SP_STR: {
            size_t n;
            const char *t = side_str(s, c, &n);
            k += (size_t)snprintf(buf + k, size - k, "%s%.*s", sep, (int)n, t);
            break;
        }
        case SP_F32:
        case SP_F64:
            k += (size_t)snprintf(buf + k, size - k, "%s%.17g", sep, v->f);
            break;
        default:
            k += (size_t)snprintf(buf + k, size - k, "%s%lld", sep, (long long)v->i);
        }
    }
}

/* Parses a line both ways; fails the test unless reasons, reject columns and every column's
 * value (strings bytewise, doubles bitwise) agree. */
static void pair_line(pair *p, const char *line, size_t len)
{
    js_value jv[JSONSCAN_MAX_COLS];
    p->lines++;
    js_status st = jsonscan_line(parse_json_scan(p->ps), line, len, jv);
    int fb = st == JS_FALLBACK;
    for (int c = 0; st == JS_OK && c < p->ps->ncols; c++) /* text of an object or array */
        fb |= jv[c].kind == JS_COMPOSITE && p->ps->types[c] == SP_STR;
    p->fallbacks += fb;
    side_run(&p->fast, p->ps->line, p->ps, line, len);
    side_run(&p->slow, parse_json_line_jansson, p->ps, line, len);
    int same = (p->fast.why == NULL) == (p->slow.why == NULL);
    if (same && p->fast.why)
        same = !strcmp(p->fast.why, p->slow.why) && p->fast.l.reject_col == p->slow.l.reject_col;
    for (int c = 0; same && !p->fast.why && c < p->ps->ncols; c++) {
        const parse_val *a = &p->fast.l.v[c], *b = &p->slow.l.v[c];
        if (p->ps->types[c] == SP_STR) {
            size_t na, nb;
            const char *sa = side_str(&p->fast, c, &na), *sb = side_str(&p->slow, c, &nb);
            same = na == nb && memcmp(sa, sb, na) == 0;
        } else if (p->ps->types[c] == SP_F32 || p->ps->types[c] == SP_F64) {
            same = memcmp(&a->f, &b->f, sizeof a->f) == 0;
        } else {
            same = a->i == b->i;
        }
    }
    p->rejected += p->slow.why != NULL;
    if (!same) {
        char fa[2048], sl[2048];
        side_text(p, &p->fast, fa, sizeof fa);
        side_text(p, &p->slow, sl, sizeof sl);
        fail_msg("fast and jansson differ on line %zu '%.*s':\n  fast    %s\n  jansson %s",
                 p->lines, (int)(len < 300 ? len : 300), line, fa, sl);
    }
}

/* One line both ways; its text must be want. */
static void expect(pair *p, const char *line, size_t len, const char *want)
{
    pair_line(p, line, len);
    char got[2048];
    side_text(p, &p->fast, got, sizeof got);
    if (strcmp(got, want)) fail_msg("'%.*s': got %s, want %s", (int)len, line, got, want);
}

#define EXPECT(p, lit, want) expect(p, lit, sizeof(lit) - 1, want)

/* --------------------------------------------------------------------------- hand cases */

static void test_paths_and_duplicates(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "a.b.c:i64,x");
    /* the whole key first, then the first dot, recursively, then the next dot */
    EXPECT(&p, "{\"a.b.c\":1,\"a\":{\"b\":{\"c\":2}}}", "1|");
    EXPECT(&p, "{\"a\":{\"b\":{\"c\":2}},\"a.b.c\":1}", "1|");
    EXPECT(&p, "{\"a.b\":{\"c\":3},\"a\":{\"b.c\":1}}", "1|");
    EXPECT(&p, "{\"a.b\":{\"c\":3},\"a\":{\"b\":{\"c\":2}}}", "2|");
    EXPECT(&p, "{\"a.b\":{\"c\":3},\"a\":{\"b\":7}}", "3|");
    /* null is found: it stops the search and gives the zero value */
    EXPECT(&p, "{\"a\":{\"b\":{\"c\":2}},\"a.b.c\":null}", "0|");
    /* an intermediate that is not an object */
    EXPECT(&p, "{\"a\":[{\"b\":1}],\"a.b\":{\"c\":4}}", "4|");
    /* duplicates: the last one wins (jansson's json_object_set) */
    EXPECT(&p, "{\"a\":{\"b\":{\"c\":1}},\"a\":5}", "0|");
    EXPECT(&p, "{\"a\":5,\"a\":{\"b\":{\"c\":9}}}", "9|");
    EXPECT(&p, "{\"x\":\"u\",\"q\":1,\"q\":2,\"x\":\"v\"}", "0|v");
    /* escaped keys are compared decoded */
    EXPECT(&p, "{\"\\u0061\":{\"\\u0062\":{\"c\\/\":1,\"c\":8}}}", "8|");
    EXPECT(&p, "{\"x\":1,\"\\u0078\":2}", "0|2");
    /* object and array values read as text: jansson's compact form */
    EXPECT(&p, "{\"x\" : { \"k\" : [ 1 , 2.50 , \"\\u00e9\" ] } }",
           "0|{\"k\":[1,2.5,\"\xc3\xa9\"]}");
    EXPECT(&p, "[1,{\"a\":2}]", "!not a JSON object@-1");
    pair_close(&p);
    pair_open(&p, "a.b:i64,x");
    EXPECT(&p, "{\"a.b\":5,\"a\":{\"b\":7}}", "5|");
    EXPECT(&p, "{\"a.b\":1,\"a.b\":2}", "2|");
    EXPECT(&p, "{\"a\":{\"b\":[1]}}", "!object or array for a scalar column@0");
    pair_close(&p);
    /* empty segments and dotted prefixes */
    pair_open(&p, "a..b:i32,.a:i32,a.:i32");
    EXPECT(&p, "{\"a\":{\"\":{\"b\":1}},\"\":{\"a\":2},\"a.\":3}", "1|2|3");
    EXPECT(&p, "{\"a.\":{\"b\":1},\"a\":{\"\":4}}", "!object or array for a scalar column@2");
    EXPECT(&p, "{\"a.\":{\"b\":1},\"a\":{\"\":4},\"\":{\"a\":null}}",
           "!object or array for a scalar column@2");
    pair_close(&p);
    pair_open(&p, "a..b:i32,.a:i32");
    EXPECT(&p, "{\"a.\":{\"b\":1},\"a\":{\"\":4},\"\":{\"a\":null}}", "1|0");
    pair_close(&p);
}

static void test_strings_and_numbers(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "s,i:i64,f:f64,t:ts,b:bool,n:i32");
    EXPECT(&p, "{\"s\":\"say \\\"hi\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"}",
           "say \"hi\" \\ / \b\f\n\r\t|0|0|0|0|0");
    EXPECT(&p, "{\"s\":\"\\ud83d\\ude00 \\u00e9 \xe2\x82\xac\"}",
           "\xf0\x9f\x98\x80 \xc3\xa9 \xe2\x82\xac|0|0|0|0|0");
    EXPECT(&p, "{\"s\":\"\\u0000\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"\\u0000\":1}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\\ud800\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\\ud800\\u0041\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\\udc00\\ud800\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\\x41\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\\u12g4\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"a\tb\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xc0\x80\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xed\xa0\x80\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xe0\x80\xaf\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xf0\x80\x80\xaf\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xdf\xbf\xe0\xa0\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"}",
           "\xdf\xbf\xe0\xa0\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf|0|0|0|0|0");
    EXPECT(&p, "{\"s\":\"\xf4\x90\x80\x80\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"\xe2\x82\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"q\":\"\xff\",\"s\":\"ok\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\"i\":9223372036854775807,\"n\":-2147483648}",
           "|9223372036854775807|0|0|0|-2147483648");
    EXPECT(&p, "{\"i\":-9223372036854775808}", "|-9223372036854775808|0|0|0|0");
    EXPECT(&p, "{\"q\":9223372036854775808}", "!malformed JSON@-1");
    EXPECT(&p, "{\"q\":-9223372036854775809}", "!malformed JSON@-1");
    EXPECT(&p, "{\"q\":123456789012345678901234567890}", "!malformed JSON@-1");
    EXPECT(&p, "{\"n\":2147483648}", "!integer out of range@5");
    EXPECT(&p, "{\"f\":1e308,\"i\":-0}", "|0|1e+308|0|0|0");
    EXPECT(&p, "{\"q\":1e309}", "!malformed JSON@-1");
    EXPECT(&p, "{\"q\":-17976931348623159e292}", "!malformed JSON@-1");
    EXPECT(&p, "{\"f\":1e-400}", "|0|0|0|0|0");
    EXPECT(&p, "{\"f\":-0.0}", "|0|-0|0|0|0");
    EXPECT(&p, "{\"f\":0.1,\"t\":1446249499.5,\"b\":2.0}",
           "|0|0.10000000000000001|1446249499500|1|0");
    EXPECT(&p, "{\"f\":1.7976931348623157e308}", "|0|1.7976931348623157e+308|0|0|0");
    EXPECT(&p, "{\"f\":0.0008699893951416016}", "|0|0.00086998939514160156|0|0|0");
    EXPECT(&p, "{\"f\":123456789012345.6E-3}", "|0|123456789012.3456|0|0|0");
    EXPECT(&p, "{\"i\":2.5}", "!not an integer@1");
    EXPECT(&p, "{\"i\":2E2}", "|200|0|0|0|0");
    EXPECT(&p, "{\"i\":\"42\",\"t\":\"2018-03-24T17:15:47.733658Z\"}", "|42|0|1521911747733|0|0");
    EXPECT(&p, "{\"t\":1446249499322,\"s\":12.5}", "12.5|0|0|1446249499322|0|0");
    EXPECT(&p, "{\"s\":true,\"b\":true,\"f\":false}", "true|0|0|0|1|0");
    static const char *bad[] = {"{\"q\":01}",
                                "{\"q\":1.}",
                                "{\"q\":.5}",
                                "{\"q\":-}",
                                "{\"q\":+1}",
                                "{\"q\":1e}",
                                "{\"q\":1e+}",
                                "{\"q\":--1}",
                                "{\"q\":0x1}",
                                "{\"q\":1.5.2}",
                                "{\"q\":truex}",
                                "{\"q\":True}",
                                "{\"q\":nul}",
                                "{\"q\":1,}",
                                "{,}",
                                "{\"q\" 1}",
                                "{\"q\":1} x",
                                "",
                                "  ",
                                "\"str\"",
                                "5",
                                "null",
                                "[1,]",
                                "{\"q\":[1 2]}",
                                "{'q':1}",
                                "{\"q\":1}}",
                                "{\"q\":1]",
                                "{\"q\"}",
                                "{\"q\":1 \"r\":2}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect(&p, bad[i], strlen(bad[i]), "!malformed JSON@-1");
    EXPECT(&p, " \t{\"i\" : 3 } \r\n", "|3|0|0|0|0");
    EXPECT(&p, "{}", "|0|0|0|0|0");
    EXPECT(&p, "[]", "!not a JSON object@-1");
    pair_close(&p);
}

/* NUL bytes: jansson's lexer loses a NUL right after a number or literal (fallback), rejects
 * it anywhere else. */
static void test_nul_bytes_and_depth(void **state)
{
    (void)state;
    pair p;
    pair_open(&p, "a:i64,s");
    EXPECT(&p, "{\"a\":1\0}", "1|");
    EXPECT(&p, "{\"s\":true\0,\"a\":2}", "2|true");
    EXPECT(&p, "{\"a\":1\0\0}", "!malformed JSON@-1");
    EXPECT(&p, "{\"a\":1}\0", "!malformed JSON@-1");
    EXPECT(&p, "{\"s\":\"a\0b\"}", "!malformed JSON@-1");
    EXPECT(&p, "{\0\"a\":1}", "!malformed JSON@-1");
    /* nesting: 200 levels fall back and parse; 3000 exceed jansson's limit */
    for (int depth = 200; depth <= 3000; depth += 2800) {
        size_t n = (size_t)depth * 6 + 64, k = 0;
        char *line = malloc(n);
        assert_non_null(line);
        k += (size_t)sprintf(line + k, "{\"a\":5,\"s\":");
        for (int i = 0; i < depth; i++)
            k += (size_t)sprintf(line + k, "{\"z\":");
        k += (size_t)sprintf(line + k, "1");
        for (int i = 0; i < depth; i++)
            line[k++] = '}';
        line[k++] = '}';
        pair_line(&p, line, k);
        assert_true((p.slow.why != NULL) == (depth > 2048));
        free(line);
    }
    assert_int_equal(p.fallbacks, 5); /* three NULs after tokens, two deep lines */
    pair_close(&p);
}

/* ------------------------------------------------------------------------------ fuzzing */

typedef struct gen {
    uint64_t seed;
    char *b;
    size_t n, cap;
} gen;

static void put(gen *g, const char *s, size_t n)
{
    if (g->n + n + 1 > g->cap) {
        g->cap = (g->n + n + 1) * 2;
        g->b = realloc(g->b, g->cap);
        assert_non_null(g->b);
    }
    memcpy(g->b + g->n, s, n);
    g->n += n;
}

static void puts_(gen *g, const char *s)
{
    put(g, s, strlen(s));
}

static uint64_t rb(gen *g, uint64_t n)
{
    return tu_rand_below(&g->seed, n);
}

static void gen_ws(gen *g)
{
    static const char *ws[] = {" ", "\t", "\r", "\n", "  "};
    if (rb(g, 8) == 0) puts_(g, ws[rb(g, 5)]);
}

static void gen_string(gen *g)
{
    static const char *pieces[] = {
        "a", "host", "10.0.0.1", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\b\\f\\r", "\\u00e9",
        "\\u20AC", "\\ud83d\\ude00", "\\u0041", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        "abcdefghijklmnopqrstuvwxyz0123456789", ".", "a.b", "\x7f",
        /* invalid ones, rarely picked */
        "\\u0000", "\\ud800", "\\udc00", "\\x", "\\u12", "\xc0\xaf", "\xed\xa0\x80", "\xff", "\x01",
        "\xe2\x82", "\xf4\x90\x80\x80", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xe0"};
    put(g, "\"", 1);
    int n = (int)rb(g, 6);
    for (int i = 0; i < n; i++) {
        uint64_t k = rb(g, 100) < 97 ? rb(g, 21) : 21 + rb(g, 14);
        puts_(g, pieces[k]);
    }
    if (rb(g, 12) == 0) /* a long run for the 16-byte scan */
        puts_(g, "The Multimedia Class Scheduler service entered the stopped state.");
    put(g, "\"", 1);
}

static void gen_number(gen *g)
{
    static const char *forms[] = {
        "0", "-0", "7", "-12", "2147483647", "2147483648", "-2147483648", "9223372036854775807",
        "-9223372036854775808", "1446249499322", "100000000000", "0.5", "-0.0", "2.0", "1e3",
        "1E+3", "2.5e-3", "0.0008699893951416016", "1.7976931348623157e308", "4.9e-324", "1e-400",
        "123456789012345678", "1446249499.5", "3.14159265358979323846", "12345678901234567890e-10",
        "0e999",
        /* invalid ones, rarely picked */
        "9223372036854775808", "-9223372036854775809", "1e309", "-1e400", "01", "1.", ".5", "-",
        "+1", "1e", "1e+", "0x10", "1.5.2", "--1", "1_000"};
    uint64_t k = rb(g, 100) < 95 ? rb(g, 26) : 26 + rb(g, 15);
    if (k < 26 && rb(g, 3) == 0) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "%s%llu", rb(g, 2) ? "-" : "",
                         (unsigned long long)(tu_rand(&g->seed) >> rb(g, 64)));
        if (rb(g, 2))
            n += snprintf(buf + n, sizeof buf - (size_t)n, ".%llu",
                          (unsigned long long)rb(g, 100000));
        if (rb(g, 3) == 0)
            n += snprintf(buf + n, sizeof buf - (size_t)n, "e%d", (int)rb(g, 40) - 20);
        put(g, buf, (size_t)n);
        return;
    }
    puts_(g, forms[k]);
}

static const char *keys[] = {"a",  "b",        "c",   "a.b",     "b.c",       "a.b.c",
                             "x",  "y",        "x.y", "n",       "t",         "s",
                             "u",  "v",        "w",   "u.v",     "v.w",       "k",
                             "zz", "\xc3\xa9", "",    "\\u0061", "a\\u002eb", "\\u0000"};

static void gen_value(gen *g, int depth);

static void gen_object(gen *g, int depth)
{
    put(g, "{", 1);
    gen_ws(g);
    int n = (int)rb(g, depth < 3 ? 7 : 3);
    for (int i = 0; i < n; i++) {
        if (i) put(g, ",", 1), gen_ws(g);
        uint64_t k = rb(g, 1000) < 995 ? rb(g, 23) : 23;
        put(g, "\"", 1);
        puts_(g, keys[k]);
        put(g, "\"", 1);
        gen_ws(g);
        put(g, ":", 1);
        gen_ws(g);
        gen_value(g, depth + 1);
        gen_ws(g);
    }
    put(g, "}", 1);
}

static void gen_value(gen *g, int depth)
{
    uint64_t r = rb(g, 100);
    if (depth < 5 && r < 25) {
        gen_object(g, depth);
    } else if (depth < 5 && r < 32) {
        put(g, "[", 1);
        int n = (int)rb(g, 4);
        for (int i = 0; i < n; i++) {
            if (i) put(g, ",", 1);
            gen_ws(g);
            gen_value(g, depth + 1);
        }
        put(g, "]", 1);
    } else if (r < 60) {
        gen_string(g);
    } else if (r < 85) {
        gen_number(g);
    } else {
        static const char *lit[] = {"true", "false", "null"};
        puts_(g, lit[rb(g, 3)]);
    }
}

/* A random line: mostly an object, sometimes an array or a scalar; then maybe damaged. */
static void gen_line(gen *g)
{
    g->n = 0;
    gen_ws(g);
    uint64_t r = rb(g, 100);
    if (r < 90)
        gen_object(g, 0);
    else
        gen_value(g, 0);
    gen_ws(g);
    r = rb(g, 100);
    if (r < 6 && g->n > 1) {
        g->n = (size_t)rb(g, g->n); /* truncated */
    } else if (r < 12 && g->n) {
        static const char junk[] = "\"\\{}[]:,0-e.tx \x80\xc3\0";
        g->b[rb(g, g->n)] = junk[rb(g, sizeof junk - 1)];
    } else if (r < 14 && g->n) {
        size_t at = (size_t)rb(g, g->n);
        put(g, "", 0);
        memmove(g->b + at + 1, g->b + at, g->n - at);
        g->b[at] = "\0 ,}"[rb(g, 4)];
        g->n++;
    }
}

static void fuzz(const char *arg, uint64_t seed, int lines)
{
    pair p;
    pair_open(&p, arg);
    gen g = {seed, NULL, 0, 0};
    for (int i = 0; i < lines; i++) {
        gen_line(&g);
        pair_line(&p, g.b ? g.b : "", g.n);
    }
    print_message("fuzz %s: %zu lines, %zu rejected by jansson, %zu fallbacks\n", arg, p.lines,
                  p.rejected, p.fallbacks);
    /* the fuzz reaches both outcomes, and the fast path decides most lines itself */
    assert_true(p.rejected > p.lines / 20 && p.rejected < p.lines * 9 / 10);
    assert_true(p.fallbacks < p.lines / 4);
    free(g.b);
    pair_close(&p);
}

static void test_fuzz_typed(void **state)
{
    (void)state;
    fuzz("a.b.c:i64,a.b:f64,x.y:ts,n:i32,t:ts,s,k:bool,u.v.w:f32,a:str,\xc3\xa9:i64", 1, 150000);
}

static void test_fuzz_text(void **state)
{
    (void)state;
    fuzz("a,a.b,a.b.c,x,x.y,u.v.w,s,zz,b.c,k", 2, 150000);
}

/* ------------------------------------------------------------------------------ real logs */

static const char *data_path(const char *rel)
{
    static char p[4][1024];
    static int slot;
    char *s = p[slot++ % 4];
    snprintf(s, 1024, "%s/../shared/data/%s",
             getenv("SPATE_SOURCE_DIR") ? getenv("SPATE_SOURCE_DIR") : "..", rel);
    return s;
}

static int have_data(void)
{
    struct stat st;
    return stat(data_path("zeek-wrccdc/dns.json.gz"), &st) == 0 &&
           stat(data_path("zeek-wrccdc/syslog.json.gz"), &st) == 0 &&
           stat(data_path("elastic-examples/nginxplus_json_logs"), &st) == 0;
}

/* Every line of a (gzip or plain) file through both parsers with spec arg; returns the number
 * of lines the fast path left to jansson. */
static size_t compare_file(const char *rel, const char *arg, size_t want_lines)
{
    gzFile f = gzopen(data_path(rel), "rb");
    assert_non_null(f);
    pair p;
    pair_open(&p, arg);
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    assert_non_null(line);
    while (gzgets(f, line, (int)cap)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') n--;
        if (n && line[n - 1] == '\r') n--;
        pair_line(&p, line, n);
    }
    gzclose(f);
    free(line);
    print_message("%s %s: %zu lines, %zu rejected, %zu fallbacks\n", rel, arg, p.lines, p.rejected,
                  p.fallbacks);
    if (want_lines) assert_int_equal(p.lines, want_lines);
    assert_int_equal(p.rejected, 0);
    size_t fb = p.fallbacks;
    pair_close(&p);
    return fb;
}

/* Zeek dns (53,615 records, 18 to 26 keys, dotted keys, arrays): scalar columns never fall
 * back; arrays read as text (jansson's compact form) do, and agree. */
static void test_real_zeek_dns(void **state)
{
    (void)state;
    const char *f = "zeek-wrccdc/dns.json.gz";
    assert_int_equal(
        compare_file(f, "ts:ts,id.orig_h,query,qtype_name,rcode:i32,AA:bool,rtt:f64", 53615), 0);
    assert_int_equal(compare_file(f,
                                  "_write_ts:ts,uid,id.orig_p:i32,trans_id:i64,TC:i32,Z:ts,"
                                  "rejected:bool,qclass:f64,ts,rtt,id,query.x,nope",
                                  53615),
                     0);
    assert_true(compare_file(f, "answers,TTLs,id.resp_h", 53615) > 0);
}

/* Zeek syslog: long messages full of escaped quotes and backslashes. */
static void test_real_zeek_syslog(void **state)
{
    (void)state;
    const char *f = "zeek-wrccdc/syslog.json.gz";
    assert_int_equal(compare_file(f, "ts:ts,id.orig_h,facility,severity,message", 0), 0);
    assert_int_equal(compare_file(f, "id.resp_p:i32,message,uid,proto,_path,message.x", 0), 0);
}

/* NGINX Plus snapshots: deep nesting, keys with dots inside ("hg.nginx.org"). */
static void test_real_nginxplus(void **state)
{
    (void)state;
    const char *f = "elastic-examples/nginxplus_json_logs";
    assert_int_equal(compare_file(f,
                                  "timestamp:ts,connections.active:i64,"
                                  "server_zones.hg.nginx.org.requests:i64,"
                                  "server_zones.hg.nginx.org.responses.2xx:i64,"
                                  "ssl.handshakes:f64,nginx_version,caches.http_cache.size:i64",
                                  500),
                     0);
    /* object-valued text columns go to jansson (compact form): every line falls back */
    assert_int_equal(compare_file(f, "server_zones.hg.nginx.org,upstreams", 500), 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_and_duplicates),
        cmocka_unit_test(test_strings_and_numbers),
        cmocka_unit_test(test_nul_bytes_and_depth),
        cmocka_unit_test(test_fuzz_typed),
        cmocka_unit_test(test_fuzz_text),
    };
    const struct CMUnitTest real[] = {
        cmocka_unit_test(test_real_zeek_dns),
        cmocka_unit_test(test_real_zeek_syslog),
        cmocka_unit_test(test_real_nginxplus),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!have_data()) {
        print_message("../shared/data not found: the real-log comparisons are skipped\n");
        return rc ? rc : 77;
    }
    return rc ? rc : cmocka_run_group_tests_name("real logs", real, NULL, NULL);
}
