/* fuzz_clf.c — parse("combined") and parse("common") (host/io/parse_clf.c) on every line of the
 * input. Besides fz_parse's contract: a line that combined accepts is accepted by common with
 * the same nine first columns (common ignores what follows bytes). */
#include "fuzz.h"

static const sp_allocator alloc = {NULL, NULL};

static int same_val(const parse_spec *ps, int c, const parse_line *a, const parse_line *b)
{
    const parse_val *x = &a->v[c], *y = &b->v[c];
    if (ps->types[c] != SP_STR) return x->i == y->i;
    const char *sx = x->s ? x->s : a->scratch + x->off, *sy = y->s ? y->s : b->scratch + y->off;
    return x->len == y->len && memcmp(sx, sy, x->len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static parse_spec *comb, *comm;
    sp_diag d;
    diag_clear(&d);
    if (!comb) {
        FZ_CHECK(parse_spec_new(&alloc, "combined", NULL, &comb, &d) == 0, "%s", d.msg);
        FZ_CHECK(parse_spec_new(&alloc, "common", NULL, &comm, &d) == 0, "%s", d.msg);
    }
    parse_line lb, lm;
    fz_line_init(&lb, &alloc, comb);
    fz_line_init(&lm, &alloc, comm);
    const char *p = (const char *)data, *e = p + size, *s;
    size_t n;
    while (fz_next_line(&p, e, &s, &n)) {
        const char *wb = fz_parse(comb, &lb, s, n);
        const char *wm = fz_parse(comm, &lm, s, n);
        if (wb) continue;
        FZ_CHECK(!wm, "combined accepts, common rejects: %s", wm);
        for (int c = 0; c < comm->ncols; c++)
            FZ_CHECK(same_val(comm, c, &lb, &lm), "column %s differs", comm->names[c]);
    }
    fz_line_free(&lb);
    fz_line_free(&lm);
    return 0;
}
