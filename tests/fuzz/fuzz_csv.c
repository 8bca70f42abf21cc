/* fuzz_csv.c — parse("csv", HEADER) (host/io/parse_csv.c). The input's first line is the header
 * ("a,b:i64,c:ts"); a header that does not compile must give a message naming parse(csv), and
 * then the default header below is used. Every further line is parsed. */
#include "fuzz.h"

static const sp_allocator alloc = {NULL, NULL};

static const char default_header[] = "s,i:i32,l:i64,f:f64,g:f32,b:bool,t:ts";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rest = (const char *)data;
    char *head = fz_head(data, size, &rest);
    parse_spec *ps = NULL;
    sp_diag d;
    diag_clear(&d);
    if (head && *head && parse_spec_new(&alloc, "csv", head, &ps, &d) != 0)
        FZ_CHECK(strstr(d.msg, "parse(csv)") != NULL, "message without the format: %s", d.msg);
    if (!ps) {
        rest = head ? rest : (const char *)data;
        FZ_CHECK(parse_spec_new(&alloc, "csv", default_header, &ps, &d) == 0, "%s", d.msg);
    }
    parse_line l;
    fz_line_init(&l, &alloc, ps);
    const char *e = (const char *)data + size, *s;
    size_t n;
    while (fz_next_line(&rest, e, &s, &n))
        fz_parse(ps, &l, s, n);
    fz_line_free(&l);
    parse_spec_free(ps);
    free(head);
    return 0;
}
