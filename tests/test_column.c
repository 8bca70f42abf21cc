/* layers: util device exec batch */
/* Columns (col_*) and batches (batch_*, the emitter and row views). */
#include "batch/batch_int.h"
#include "support/envfix.h"
#include "support/testutil.h"

#include <stdio.h>
#include <string.h>

static void test_push_get_every_type(void **state)
{
    fixture *f = *state;
    static const size_t sizes[] = {0, 1, 7, 1000, 4097, 100003};
    for (int t = 0; t < SP_TYPE_COUNT; t++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            sp_col c;
            col_init(&c, (sp_type)t, t == SP_STR ? ENC_DICT : ENC_PLAIN, f->arena);
            for (size_t i = 0; i < n; i++) {
                int64_t v = (int64_t)(i * 2654435761u % 1000003) - 500000;
                switch (t) {
                case SP_STR:
                    assert_int_equal(col_push_id(&c, (uint32_t)i), 0);
                    break;
                case SP_F32:
                case SP_F64:
                    assert_int_equal(col_push_f64(&c, (double)v + 0.5), 0);
                    break;
                case SP_BOOL:
                    assert_int_equal(col_push_i64(&c, v & 1 ? 5 : 0), 0);
                    break;
                default:
                    assert_int_equal(col_push_i64(&c, t == SP_I32 ? v : v * 1000003), 0);
                }
            }
            assert_int_equal(c.len, n);
            assert_true(c.cap >= n * type_width((sp_type)t));
            assert_true(n == 0 || (uintptr_t)c.data % 4096 == 0);
            for (size_t i = 0; i < n; i++) {
                int64_t v = (int64_t)(i * 2654435761u % 1000003) - 500000;
                switch (t) {
                case SP_STR:
                    assert_int_equal(col_get_i64(&c, i), (int64_t)i);
                    break;
                case SP_F32:
                case SP_F64:
                    assert_true(col_get_f64(&c, i) == (double)v + 0.5);
                    break;
                case SP_BOOL:
                    assert_int_equal(col_get_i64(&c, i), v & 1 ? 1 : 0);
                    break;
                case SP_I32:
                    assert_int_equal(col_get_i64(&c, i), v);
                    assert_true(col_get_f64(&c, i) == (double)v);
                    break;
                default:
                    assert_int_equal(col_get_i64(&c, i), v * 1000003);
                }
            }
            col_release(&c);
            assert_int_equal(c.len, 0);
            assert_null(c.data);
        }
    }
    /* Type mismatches are refused. */
    sp_col c;
    col_init(&c, SP_STR, ENC_DICT, f->arena);
    assert_int_equal(col_push_i64(&c, 1), SP_EINVAL);
    assert_int_equal(col_push_text(&c, "x", 1), SP_EINVAL);
    col_init(&c, SP_I64, ENC_PLAIN, f->arena);
    assert_int_equal(col_push_id(&c, 1), SP_EINVAL);
}

static void test_reserve_keeps_data(void **state)
{
    fixture *f = *state;
    sp_col c;
    col_init(&c, SP_I64, ENC_PLAIN, f->arena);
    for (int i = 0; i < 100; i++)
        assert_int_equal(col_push_i64(&c, i * 3), 0);
    void *old = c.data;
    assert_int_equal(col_reserve(&c, 100000, 0), 0);
    assert_ptr_not_equal(c.data, old);
    assert_true(c.cap >= 100000 * 8);
    assert_int_equal(c.len, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(col_get_i64(&c, i), i * 3);
    size_t cap = c.cap;
    assert_int_equal(col_reserve(&c, 50, 0), 0); /* never shrinks */
    assert_int_equal(c.cap, cap);
    col_truncate(&c, 10);
    assert_int_equal(c.len, 10);
    assert_int_equal(col_get_i64(&c, 9), 27);
    col_release(&c);
}

static void test_raw_text_then_encode(void **state)
{
    fixture *f = *state;
    static const size_t sizes[] = {0, 1, 5, 3001};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        sp_col c;
        col_init(&c, SP_STR, ENC_RAW, f->arena);
        char buf[32];
        for (size_t i = 0; i < n; i++) {
            int len = i % 5 == 0 ? 0 : snprintf(buf, sizeof buf, "w%zu", i % 97);
            assert_int_equal(col_push_text(&c, buf, (size_t)len), 0);
        }
        assert_int_equal(c.len, n);
        for (size_t i = 0; i < n; i++) {
            int len = i % 5 == 0 ? 0 : snprintf(buf, sizeof buf, "w%zu", i % 97);
            size_t got;
            const char *s = col_get_str(&c, f->dict, i, &got);
            assert_int_equal(got, (size_t)len);
            assert_memory_equal(s, buf, got);
        }
        /* Raw-to-raw range copy, re-based offsets. */
        sp_col r;
        col_init(&r, SP_STR, ENC_RAW, f->arena);
        assert_int_equal(col_push_text(&r, "head", 4), 0);
        assert_int_equal(col_push_range(&r, &c, f->dict, n / 2, n), 0);
        assert_int_equal(r.len, 1 + n - n / 2);
        for (size_t i = n / 2; i < n; i++) {
            size_t la, lb;
            const char *a = col_get_str(&c, f->dict, i, &la);
            const char *b = col_get_str(&r, f->dict, 1 + i - n / 2, &lb);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
        }
        col_release(&r);

        assert_int_equal(col_encode(&c, f->dict, NULL), 0);
        assert_int_equal(c.enc, ENC_DICT);
        assert_null(c.bytes);
        assert_int_equal(c.len, n);
        for (size_t i = 0; i < n; i++) {
            int len = i % 5 == 0 ? 0 : snprintf(buf, sizeof buf, "w%zu", i % 97);
            size_t got;
            const char *s = col_get_str(&c, f->dict, i, &got);
            assert_int_equal(got, (size_t)len);
            assert_memory_equal(s, buf, got);
            assert_int_equal(col_get_i64(&c, i), dict_find(f->dict, buf, (size_t)len));
        }
        /* Dict to raw and raw to dict via col_push_from. */
        sp_col raw;
        col_init(&raw, SP_STR, ENC_RAW, f->arena);
        sp_col ids;
        col_init(&ids, SP_STR, ENC_DICT, f->arena);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(col_push_from(&raw, &c, f->dict, i), 0);
        assert_int_equal(col_push_range(&ids, &raw, f->dict, 0, n), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(col_get_i64(&ids, i), col_get_i64(&c, i));
        col_release(&raw);
        col_release(&ids);
        col_release(&c);
    }
}

/* ---------------------------------------------------------------------- batches */

static sp_batch *new_batch(fixture *f, const char *type)
{
    sp_td *td = NULL;
    assert_int_equal(td_parse(NULL, type, &td, NULL), 0);
    sp_batch *b = NULL;
    sp_diag d = {0};
    assert_int_equal(batch_new(&f->env, td, 1000, &b, &d), 0);
    td_free(NULL, td);
    return b;
}

static void test_emitter(void **state)
{
    fixture *f = *state;
    sp_batch *b = new_batch(f, "(str,(i64,f64))");
    assert_int_equal(sp_batch_columns(b), 3);
    assert_int_equal(sp_batch_time(b), 1000);
    assert_int_equal(b->cols[0].enc, ENC_DICT);
    sp_emitter em;
    emitter_init(&em, b, 0);
    for (int i = 0; i < 1000; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i % 10);
        assert_int_equal(sp_emit_str(&em, key, (size_t)kl), 0);
        assert_int_equal(sp_emit_i64(&em, i), 0);
        assert_int_equal(sp_emit_f64(&em, i / 4.0), 0);
        assert_int_equal(sp_emit_end(&em), 0);
    }
    assert_int_equal(sp_batch_count(b), 1000);
    assert_int_equal(b->part_start[1], 1000);
    for (size_t i = 0; i < 1000; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%zu", i % 10);
        size_t len;
        const char *s = sp_batch_str(b, i, 0, &len);
        assert_int_equal(len, (size_t)kl);
        assert_memory_equal(s, key, len);
        assert_int_equal(sp_batch_i64(b, i, 1), (int64_t)i);
        assert_true(sp_batch_f64(b, i, 2) == i / 4.0);
        sp_row row = {b, i, 1};
        assert_int_equal(sp_row_i64(&row, 0), (int64_t)i);
        assert_true(sp_row_f64(&row, 0) == (double)i); /* ints converted */
        assert_true(sp_row_f64(&row, 1) == i / 4.0);
    }
    assert_int_equal(dict_size(f->dict) >= 10, 1);

    /* An incomplete row is an error and leaves nothing behind. */
    emitter_init(&em, b, 0);
    assert_int_equal(sp_emit_str(&em, "x", 1), 0);
    assert_int_equal(sp_emit_end(&em), SP_EINVAL);
    assert_int_equal(em.err, SP_EINVAL);
    assert_int_equal(sp_batch_count(b), 1000);
    for (int c = 0; c < 3; c++)
        assert_int_equal(b->cols[c].len, 1000);
    /* Wrong type and too many values. */
    emitter_init(&em, b, 0);
    assert_int_equal(sp_emit_i64(&em, 1), SP_ETYPE);
    emitter_init(&em, b, 0);
    sp_emit_str(&em, "a", 1);
    sp_emit_i64(&em, 1);
    sp_emit_f64(&em, 1);
    assert_int_equal(sp_emit_i64(&em, 1), SP_EINVAL);
    assert_int_equal(sp_emit_end(&em), SP_EINVAL);
    assert_int_equal(sp_batch_count(b), 1000);

    /* Value emitter (flatMapValues): writes columns 1.. only. */
    sp_batch *kv = new_batch(f, "(str,(i64,bool))");
    emitter_init(&em, kv, 1);
    assert_int_equal(em.err, 0);
    assert_int_equal(col_push_id(&kv->cols[0], dict_intern(f->dict, "k", 1)), 0);
    assert_int_equal(sp_emit_i64(&em, 7), 0);
    assert_int_equal(sp_emit_bool(&em, 3), 0);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(sp_batch_count(kv), 1);
    assert_int_equal(sp_batch_i64(kv, 0, 2), 1);
    batch_release(kv);

    /* Partitions. */
    assert_int_equal(batch_split_even(b, 3, NULL), 0);
    assert_int_equal(b->nparts, 3);
    assert_int_equal(b->part_start[0], 0);
    assert_int_equal(b->part_start[1], 333);
    assert_int_equal(b->part_start[2], 666);
    assert_int_equal(b->part_start[3], 1000);
    unsigned nodes[2] = {0, 1};
    size_t bad[3] = {0, 600, 999};
    assert_int_equal(batch_set_parts(b, 2, bad, nodes), SP_EINVAL);
    size_t good[3] = {0, 600, 1000};
    assert_int_equal(batch_set_parts(b, 2, good, nodes), 0);
    assert_int_equal(b->part_node[1], 1);
    /* Appending extends the last partition. */
    emitter_init(&em, b, 0);
    sp_emit_str(&em, "z", 1);
    sp_emit_i64(&em, 1);
    sp_emit_f64(&em, 2);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(b->part_start[2], 1001);

    /* Reference counts: retain keeps it alive across one release. */
    assert_ptr_equal(batch_retain(b), b);
    batch_release(b);
    assert_int_equal(sp_batch_count(b), 1001);
    batch_release(b);
    batch_release(NULL);
}

static void test_append_nested(void **state)
{
    fixture *f = *state;
    sp_batch *src = new_batch(f, "(str,Option[(i64,str)])");
    /* Rows: (a,Some((1,x))), (b,None), (c,Some((3,y))) — built column by column. */
    const char *keys[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        col_push_id(&src->cols[0], dict_intern(f->dict, keys[i], 1));
        col_push_i64(&src->cols[1], i != 1);
        col_push_i64(&src->cols[2], i == 1 ? 0 : i + 1);
        col_push_id(&src->cols[3], dict_intern(f->dict,
                                               i == 0   ? "x"
                                               : i == 1 ? ""
                                                        : "y",
                                               1 - (i == 1)));
    }
    src->n = 3;
    src->part_start[1] = 3;
    sp_batch *dst = new_batch(f, "(str,Option[(i64,str)])");
    assert_int_equal(batch_append_row(dst, src, 2), 0);
    assert_int_equal(batch_append_row(dst, src, 1), 0);
    assert_int_equal(batch_append_row(dst, src, 3), SP_EINVAL);
    assert_int_equal(dst->n, 2);
    assert_int_equal(sp_batch_i64(dst, 0, 1), 1);
    assert_int_equal(sp_batch_i64(dst, 0, 2), 3);
    assert_int_equal(sp_batch_i64(dst, 1, 1), 0);
    size_t len;
    assert_memory_equal(sp_batch_str(dst, 0, 3, &len), "y", 1);
    sp_diag d = {0};
    assert_int_equal(batch_append(dst, src, &d), 0);
    assert_int_equal(dst->n, 5);
    assert_int_equal(dst->part_start[1], 5);
    assert_memory_equal(sp_batch_str(dst, 2, 0, &len), "a", 1);
    sp_batch *other = new_batch(f, "(str,i64)");
    assert_int_equal(batch_append(dst, other, &d), SP_ETYPE);
    batch_release(other);
    batch_release(src);
    batch_release(dst);

    /* Lists: rows (k0,[]), (k1,[10]), (k2,[20,21,22]), (k3,[30,31]). */
    src = new_batch(f, "(str,List[i64])");
    assert_int_equal(src->cols[1].len, 1); /* offsets start as {0} */
    int64_t end = 0;
    for (int i = 0; i < 4; i++) {
        char k[4];
        snprintf(k, sizeof k, "k%d", i);
        col_push_id(&src->cols[0], dict_intern(f->dict, k, 2));
        int m = i == 0 ? 0 : i == 1 ? 1 : i == 2 ? 3 : 2;
        for (int e = 0; e < m; e++)
            col_push_i64(&src->cols[2], i * 10 + e);
        end += m;
        col_push_i64(&src->cols[1], end);
    }
    src->n = 4;
    src->part_start[1] = 4;
    dst = new_batch(f, "(str,List[i64])");
    assert_int_equal(batch_append_row(dst, src, 2), 0);
    assert_int_equal(batch_append_row(dst, src, 0), 0);
    assert_int_equal(batch_append_row(dst, src, 3), 0);
    assert_int_equal(dst->n, 3);
    const int64_t want_off[] = {0, 3, 3, 5};
    const int64_t want_el[] = {20, 21, 22, 30, 31};
    assert_int_equal(dst->cols[1].len, 4);
    assert_int_equal(dst->cols[2].len, 5);
    for (int i = 0; i < 4; i++)
        assert_int_equal(col_get_i64(&dst->cols[1], i), want_off[i]);
    for (int i = 0; i < 5; i++)
        assert_int_equal(col_get_i64(&dst->cols[2], i), want_el[i]);
    assert_int_equal(batch_append(dst, src, &d), 0);
    assert_int_equal(dst->cols[1].len, 8);
    assert_int_equal(col_get_i64(&dst->cols[1], 7), 11);
    assert_int_equal(col_get_i64(&dst->cols[2], 10), 31);
    batch_release(src);
    batch_release(dst);

    /* List of lists keeps both levels' offsets. */
    src = new_batch(f, "List[List[i32]]");
    /* row 0: [[1,2],[]], row 1: [[3]] */
    col_push_i64(&src->cols[0], 2);
    col_push_i64(&src->cols[0], 3);
    col_push_i64(&src->cols[1], 2);
    col_push_i64(&src->cols[1], 2);
    col_push_i64(&src->cols[1], 3);
    for (int v = 1; v <= 3; v++)
        col_push_i64(&src->cols[2], v);
    src->n = 2;
    src->part_start[1] = 2;
    dst = new_batch(f, "List[List[i32]]");
    assert_int_equal(batch_append_row(dst, src, 1), 0);
    assert_int_equal(batch_append_row(dst, src, 0), 0);
    const int64_t o0[] = {0, 1, 3}, o1[] = {0, 1, 3, 3};
    const int64_t el[] = {3, 1, 2};
    for (int i = 0; i < 3; i++)
        assert_int_equal(col_get_i64(&dst->cols[0], i), o0[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(col_get_i64(&dst->cols[1], i), o1[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(col_get_i64(&dst->cols[2], i), el[i]);
    batch_release(src);
    batch_release(dst);
}

/* batch_append_rows: a row range in one go, all or nothing. */
static void test_append_rows_range(void **state)
{
    fixture *f = *state;
    sp_batch *src = new_batch(f, "(str,i64)");
    sp_emitter em;
    emitter_init(&em, src, 0);
    const char *keys[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sp_emit_str(&em, keys[i], 1), 0);
        assert_int_equal(sp_emit_i64(&em, i * 10), 0);
        assert_int_equal(sp_emit_end(&em), 0);
    }
    sp_batch *dst = new_batch(f, "(str,i64)");
    assert_int_equal(batch_append_rows(dst, src, 1, 3), 0);
    assert_int_equal(batch_append_rows(dst, src, 2, 2), 0); /* empty range */
    assert_int_equal(batch_append_rows(dst, src, 3, 2), SP_EINVAL);
    assert_int_equal(batch_append_rows(dst, src, 2, 5), SP_EINVAL);
    assert_int_equal(dst->n, 2);
    assert_int_equal(dst->part_start[dst->nparts], 2);
    size_t len;
    assert_memory_equal(sp_batch_str(dst, 0, 0, &len), "b", 1);
    assert_int_equal(sp_batch_i64(dst, 1, 1), 20);
    batch_release(src);
    batch_release(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_get_every_type),  cmocka_unit_test(test_reserve_keeps_data),
        cmocka_unit_test(test_raw_text_then_encode), cmocka_unit_test(test_emitter),
        cmocka_unit_test(test_append_nested),        cmocka_unit_test(test_append_rows_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
