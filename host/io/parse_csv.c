/* parse_csv.c — CSV lines (RFC 4180 quoting) with a header naming the columns
 * ("a,b:i64,c:ts"). A quoted field holding a line break cannot be read line by line and is
 * rejected as unterminated. */
#include "io/parse_int.h"

#include <string.h>

static const char *csv_line(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const char *p = s, *e = s + len;
    int c = 0, header = 1, why_col = -1;
    const char *first_why = NULL;
    for (;;) {
        const char *a, *b;
        uint32_t off = UINT32_MAX;
        size_t n;
        if (p < e && *p == '"') {
            /* quoted: "" is one quote */
            const char *q = p + 1;
            size_t dq = 0;
            for (;;) {
                q = memchr(q, '"', (size_t)(e - q));
                if (!q) return "unterminated quote";
                if (q + 1 < e && q[1] == '"') {
                    dq++;
                    q += 2;
                    continue;
                }
                break;
            }
            a = p + 1;
            b = q;
            p = q + 1;
            if (p < e && *p != ',') return "text after a closing quote";
            if (dq) {
                char *w;
                off = parse_scratch(l, (size_t)(b - a), &w);
                if (off == UINT32_MAX) return "out of memory";
                n = 0;
                for (const char *x = a; x < b; x++) {
                    w[n++] = *x;
                    if (*x == '"') x++;
                }
            }
        } else {
            a = p;
            const char *comma = memchr(p, ',', (size_t)(e - p));
            b = comma ? comma : e;
            p = b;
        }
        if (c >= ps->ncols) return "too many fields";
        if (first_why && !header) {
            l->reject_col = why_col;
            return first_why;
        }
        if (off != UINT32_MAX) {
            if (ps->types[c] != SP_STR) {
                l->reject_col = c;
                return "quoted quotes in a typed field";
            }
            header = 0;
            parse_set_scratch(l, c, off, n);
        } else {
            size_t nm = strlen(ps->names[c]);
            if ((size_t)(b - a) != nm || memcmp(a, ps->names[c], nm) != 0) header = 0;
            const char *why = parse_set_text(ps, l, c, a, (size_t)(b - a));
            if (why && !first_why) first_why = why, why_col = c;
        }
        c++;
        if (p == e) break;
        p++; /* the comma */
    }
    if (c < ps->ncols) return "too few fields";
    if (header) return "header row";
    l->reject_col = why_col;
    return first_why;
}

int parse_csv_init(parse_spec *ps, const char *arg, sp_diag *d)
{
    SP_CHECK(d, arg && *arg, SP_EINVAL, "parse(csv): needs a header (\"a,b:i64,...\")");
    for (const char *p = arg;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int rc = parse_spec_typed_col(ps, p, n, d);
        if (rc) return rc;
        if (!comma) break;
        p = comma + 1;
    }
    ps->line = csv_line;
    return 0;
}
