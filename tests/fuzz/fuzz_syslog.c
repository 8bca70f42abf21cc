/* fuzz_syslog.c — parse("syslog") (host/io/parse_syslog.c) on every line of the input, once with
 * the year taken from a reference time and once with "year=2020". Both must accept and reject
 * the same lines for the same reasons, and agree on every column but the time. */
#include "fuzz.h"

static const sp_allocator alloc = {NULL, NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static parse_spec *ref, *year;
    sp_diag d;
    diag_clear(&d);
    if (!ref) {
        FZ_CHECK(parse_spec_new(&alloc, "syslog", NULL, &ref, &d) == 0, "%s", d.msg);
        FZ_CHECK(parse_spec_new(&alloc, "syslog", "year=2020", &year, &d) == 0, "%s", d.msg);
    }
    parse_line la, lb;
    fz_line_init(&la, &alloc, ref);
    fz_line_init(&lb, &alloc, year);
    la.ref_default_s = 1700000000; /* 2023-11-14 */
    const char *p = (const char *)data, *e = p + size, *s;
    size_t n;
    while (fz_next_line(&p, e, &s, &n)) {
        const char *wa = fz_parse(ref, &la, s, n);
        const char *wb = fz_parse(year, &lb, s, n);
        FZ_CHECK((wa == NULL) == (wb == NULL) && (!wa || strcmp(wa, wb) == 0),
                 "reasons differ: %s / %s", wa ? wa : "accepted", wb ? wb : "accepted");
        if (wa) continue;
        for (int c = 0; c < ref->ncols; c++) {
            const parse_val *x = &la.v[c], *y = &lb.v[c];
            if (ref->types[c] == SP_TS) continue;
            if (ref->types[c] != SP_STR) {
                FZ_CHECK(x->i == y->i, "column %s differs", ref->names[c]);
                continue;
            }
            const char *sx = x->s ? x->s : la.scratch + x->off;
            const char *sy = y->s ? y->s : lb.scratch + y->off;
            FZ_CHECK(x->len == y->len && memcmp(sx, sy, x->len) == 0, "column %s differs",
                     ref->names[c]);
        }
    }
    fz_line_free(&la);
    fz_line_free(&lb);
    return 0;
}
