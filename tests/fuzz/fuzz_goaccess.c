/* fuzz_goaccess.c — GoAccess-style format strings (host/io/parse_clf.c). The input's first line
 * is the format; one that does not compile must give a message naming parse(format). Every
 * further line is parsed. Besides fz_parse's contract: text after the format's end is ignored
 * (PARSING.md), so when the format ends in a field, a line it accepts (one that does not end in
 * a space) is accepted with the same columns when " tail" is appended. */
#include "fuzz.h"

static const sp_allocator alloc = {NULL, NULL};

static int same_row(const parse_spec *ps, const parse_line *a, const parse_line *b)
{
    for (int c = 0; c < ps->ncols; c++) {
        const parse_val *x = &a->v[c], *y = &b->v[c];
        if (ps->types[c] == SP_F32 || ps->types[c] == SP_F64) {
            if (memcmp(&x->f, &y->f, sizeof x->f) != 0) return 0;
        } else if (ps->types[c] != SP_STR) {
            if (x->i != y->i) return 0;
        } else {
            const char *sx = x->s ? x->s : a->scratch + x->off;
            const char *sy = y->s ? y->s : b->scratch + y->off;
            if (x->len != y->len || memcmp(sx, sy, x->len) != 0) return 0;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rest;
    char *fmt = fz_head(data, size, &rest);
    if (!fmt) return 0;
    parse_spec *ps = NULL;
    sp_diag d;
    diag_clear(&d);
    if (!strchr(fmt, '%')) { /* not a format string: a named format, not this target's */
        free(fmt);
        return 0;
    }
    if (parse_spec_new(&alloc, fmt, NULL, &ps, &d) != 0) {
        FZ_CHECK(strstr(d.msg, "parse(format)") != NULL, "message without the format: %s", d.msg);
        free(fmt);
        return 0;
    }
    size_t fl = strlen(fmt);
    /* Ends in a field other than %~ (which skips spaces, so " tail" is not after its end),
     * after a literal: a field before %~ may take the whole line and leave the last field
     * empty at the line's end, where " tail" is rightly its value. */
    int ends_in_field = fl >= 2 && fmt[fl - 2] == '%' && fmt[fl - 1] != '~' &&
                        !(fl >= 4 && fmt[fl - 4] == '%' && fmt[fl - 3] == '~');
    parse_line l, t;
    fz_line_init(&l, &alloc, ps);
    fz_line_init(&t, &alloc, ps);
    char *buf = NULL;
    const char *e = (const char *)data + size, *s;
    size_t n;
    while (fz_next_line(&rest, e, &s, &n)) {
        /* (a line ending in spaces could have them matched by the format's last spaces) */
        if (fz_parse(ps, &l, s, n) || !ends_in_field || (n && s[n - 1] == ' ')) continue;
        char *nb = realloc(buf, n + 6);
        FZ_CHECK(nb != NULL, "out of memory");
        buf = nb;
        memcpy(buf, s, n);
        memcpy(buf + n, " tail", 5);
        /* the original line's values point into s: parse the copy into t, compare */
        const char *why = fz_parse(ps, &t, buf, n + 5);
        FZ_CHECK(!why, "accepted line rejected with trailing text: %s", why);
        FZ_CHECK(same_row(ps, &l, &t), "trailing text changed the row");
    }
    free(buf);
    fz_line_free(&l);
    fz_line_free(&t);
    parse_spec_free(ps);
    free(fmt);
    return 0;
}
