/* fuzz_json.c — parse("json", PATHS): the single-pass scanner (host/io/jsonscan.c, with its
 * jansson fallbacks) against the jansson line parser on every line. The input's first line is
 * the paths ("a.b:i64,c"); when they do not compile or are beyond the scanner, the default
 * below is used. The two parsers must give the same reason and reject column, or the same
 * value in every column (strings bytewise, doubles bitwise): a disagreement is a bug in one of
 * them. The scanner's own answer must also agree with jansson on whether the line is JSON. */
#include "io/jsonscan_int.h"

#include "fuzz.h"

#include <jansson.h>

static const sp_allocator alloc = {NULL, NULL};

static const char default_paths[] =
    "a,a.b:i64,c:f64,d:ts,e:bool,f:i32,g.h.i,j:str,k:f32,a.b.c:ts,x.y:i64";

static const char *col_str(const parse_line *l, int c, size_t *n)
{
    *n = l->v[c].len;
    return l->v[c].s ? l->v[c].s : l->scratch + l->v[c].off;
}

static void compare(const parse_spec *ps, const char *s, size_t n, parse_line *fast,
                    parse_line *slow)
{
    js_value jv[JSONSCAN_MAX_COLS];
    js_status st = jsonscan_line(parse_json_scan(ps), s, n, jv);
    if (st != JS_FALLBACK) {
        json_error_t err;
        json_t *root = json_loadb(s, n, 0, &err);
        FZ_CHECK((st == JS_MALFORMED) == (root == NULL), "scanner %d, jansson %s", (int)st,
                 root ? "accepts" : err.text);
        if (root) FZ_CHECK((st == JS_NOT_OBJECT) == !json_is_object(root), "top level differs");
        json_decref(root);
    }
    const char *wf = fz_parse(ps, fast, s, n);
    const char *ws =
        (slow->nscratch = 0, slow->reject_col = -1, parse_json_line_jansson(ps, slow, s, n));
    FZ_CHECK((wf == NULL) == (ws == NULL), "scanner %s, jansson %s", wf ? wf : "accepts",
             ws ? ws : "accepts");
    if (wf) {
        FZ_CHECK(strcmp(wf, ws) == 0 && fast->reject_col == slow->reject_col,
                 "reasons differ: %s@%d / %s@%d", wf, fast->reject_col, ws, slow->reject_col);
        return;
    }
    for (int c = 0; c < ps->ncols; c++) {
        const parse_val *a = &fast->v[c], *b = &slow->v[c];
        switch (ps->types[c]) {
        case SP_STR: {
            size_t na, nb;
            const char *sa = col_str(fast, c, &na), *sb = col_str(slow, c, &nb);
            FZ_CHECK(na == nb && memcmp(sa, sb, na) == 0, "column %s: '%.*s' / '%.*s'",
                     ps->names[c], (int)na, sa, (int)nb, sb);
            break;
        }
        case SP_F32:
        case SP_F64:
            FZ_CHECK(memcmp(&a->f, &b->f, sizeof a->f) == 0, "column %s: %.17g / %.17g",
                     ps->names[c], a->f, b->f);
            break;
        default:
            FZ_CHECK(a->i == b->i, "column %s: %lld / %lld", ps->names[c], (long long)a->i,
                     (long long)b->i);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *rest = (const char *)data;
    char *head = fz_head(data, size, &rest);
    parse_spec *ps = NULL;
    sp_diag d;
    diag_clear(&d);
    if (head && *head) {
        if (parse_spec_new(&alloc, "json", head, &ps, &d) != 0)
            FZ_CHECK(strstr(d.msg, "parse(json)") != NULL, "message without the format: %s", d.msg);
        else if (!parse_json_scan(ps))
            parse_spec_free(ps), ps = NULL;
    }
    if (!ps) {
        rest = head ? rest : (const char *)data;
        FZ_CHECK(parse_spec_new(&alloc, "json", default_paths, &ps, &d) == 0, "%s", d.msg);
        FZ_CHECK(parse_json_scan(ps) != NULL, "no scanner for the default paths");
    }
    parse_line fast, slow;
    fz_line_init(&fast, &alloc, ps);
    fz_line_init(&slow, &alloc, ps);
    const char *e = (const char *)data + size, *s;
    size_t n;
    while (fz_next_line(&rest, e, &s, &n))
        compare(ps, s, n, &fast, &slow);
    fz_line_free(&fast);
    fz_line_free(&slow);
    parse_spec_free(ps);
    free(head);
    return 0;
}
