/* layers: util device exec batch */
/* Scala/Spark toString of rows; Java's Double.toString and Float.toString. */
#include "batch/batch_int.h"
#include "support/envfix.h"
#include "support/testutil.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const char *jd(double v)
{
    static char out[64];
    strbuf sb;
    sb_init(&sb, NULL);
    format_java_double(v, &sb);
    snprintf(out, sizeof out, "%s", sb_cstr(&sb));
    sb_free(&sb);
    return out;
}

static const char *jf(float v)
{
    static char out[64];
    strbuf sb;
    sb_init(&sb, NULL);
    format_java_float(v, &sb);
    snprintf(out, sizeof out, "%s", sb_cstr(&sb));
    sb_free(&sb);
    return out;
}

static void test_java_double(void **state)
{
    (void)state;
    volatile double zero = 0.0; /* keeps the compiler from folding 0/0 */
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {1.0, "1.0"},
        {0.1, "0.1"},
        {0.5, "0.5"},
        {12.0, "12.0"},
        {100.0, "100.0"},
        {100.5, "100.5"},
        {3.14, "3.14"},
        {-1.5, "-1.5"},
        {12345.678, "12345.678"},
        {1000000.0, "1000000.0"},
        {1234567.0, "1234567.0"},
        {9999999.0, "9999999.0"},
        {1e7, "1.0E7"},
        {123456789.0, "1.23456789E8"},
        {1e16, "1.0E16"},
        {1e21, "1.0E21"},
        {1e23, "1.0E23"},
        {-3e10, "-3.0E10"},
        {0.001, "0.001"},
        {0.00099, "9.9E-4"},
        {1e-4, "1.0E-4"},
        {1e-5, "1.0E-5"},
        {1.23e-5, "1.23E-5"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {0.1 + 0.2, "0.30000000000000004"},
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {DBL_MAX, "1.7976931348623157E308"},
        {DBL_MIN, "2.2250738585072014E-308"},
        {4.9e-324, "4.9E-324"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(jd(cases[i].v), cases[i].s);
    assert_string_equal(jd(zero / zero), "NaN");
    /* Round trip over random doubles: what is printed parses back to the same value. */
    uint64_t rng = 7;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = tu_rand(&rng);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isnan(v) || isinf(v)) continue;
        const char *s = jd(v);
        assert_true(strtod(s, NULL) == v);
        assert_non_null(strchr(s, '.'));
    }
}

static void test_java_float(void **state)
{
    (void)state;
    static const struct {
        float v;
        const char *s;
    } cases[] = {
        {0.1f, "0.1"},
        {1.0f / 3, "0.33333334"},
        {2.0f / 3, "0.6666667"},
        {1.0f, "1.0"},
        {3.14f, "3.14"},
        {-2.5f, "-2.5"},
        {100.0f, "100.0"},
        {0.001f, "0.001"},
        {1e-4f, "1.0E-4"},
        {1e10f, "1.0E10"},
        {16777216.0f, "1.6777216E7"},
        {FLT_MAX, "3.4028235E38"},
        {1.4e-45f, "1.4E-45"},
        {0.0f, "0.0"},
        {-0.0f, "-0.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(jf(cases[i].v), cases[i].s);
    uint64_t rng = 9;
    for (int i = 0; i < 20000; i++) {
        uint32_t bits = (uint32_t)tu_rand(&rng);
        float v;
        memcpy(&v, &bits, sizeof v);
        if (isnan(v) || isinf(v)) continue;
        assert_true(strtof(jf(v), NULL) == v);
    }
}

/* ------------------------------------------------------------------------------ rows */


static sp_batch *new_batch(fixture *f, const char *type)
{
    sp_td *td = NULL;
    assert_int_equal(td_parse(NULL, type, &td, NULL), 0);
    sp_batch *b = NULL;
    assert_int_equal(batch_new(&f->env, td, 0, &b, NULL), 0);
    td_free(NULL, td);
    return b;
}

static const char *row(const sp_batch *b, size_t i)
{
    static char out[256];
    int n = sp_batch_format(b, i, out, sizeof out);
    assert_true(n >= 0 && (size_t)n < sizeof out);
    assert_int_equal(strlen(out), (size_t)n);
    return out;
}

static void push_str(fixture *f, sp_col *c, const char *s)
{
    assert_int_equal(col_push_id(c, dict_intern(f->dict, s, strlen(s))), 0);
}

static void test_flat_rows(void **state)
{
    fixture *f = *state;
    sp_batch *b = new_batch(f, "(str,i64)");
    sp_emitter em;
    emitter_init(&em, b, 0);
    sp_emit_str(&em, "a", 1);
    sp_emit_i64(&em, 1);
    assert_int_equal(sp_emit_end(&em), 0);
    sp_emit_str(&em, "", 0);
    sp_emit_i64(&em, -7);
    assert_int_equal(sp_emit_end(&em), 0);
    sp_emit_str(&em, "hello world, (x)", 16);
    sp_emit_i64(&em, INT64_MAX);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_string_equal(row(b, 0), "(a,1)");
    assert_string_equal(row(b, 1), "(,-7)");
    assert_string_equal(row(b, 2), "(hello world, (x),9223372036854775807)");
    /* snprintf-like: truncated, NUL-terminated, returns the full length. */
    char small[4];
    assert_int_equal(sp_batch_format(b, 0, small, sizeof small), 5);
    assert_string_equal(small, "(a,");
    assert_int_equal(sp_batch_format(b, 0, NULL, 0), 5);
    assert_int_equal(sp_batch_format(b, 3, small, sizeof small), SP_EINVAL);
    batch_release(b);

    b = new_batch(f, "(str,(i64,str))");
    emitter_init(&em, b, 0);
    sp_emit_str(&em, "a", 1);
    sp_emit_i64(&em, 1);
    sp_emit_str(&em, "x", 1);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_string_equal(row(b, 0), "(a,(1,x))");
    batch_release(b);

    b = new_batch(f, "(bool,(f64,(f32,(ts,i32))))");
    emitter_init(&em, b, 0);
    sp_emit_bool(&em, 1);
    sp_emit_f64(&em, 1e7);
    sp_emit_f64(&em, 0.1);
    sp_emit_i64(&em, 1700000000000);
    sp_emit_i64(&em, -3);
    assert_int_equal(sp_emit_end(&em), 0);
    sp_emit_bool(&em, 0);
    sp_emit_f64(&em, 2.5);
    sp_emit_f64(&em, 1.0 / 3);
    sp_emit_i64(&em, 0);
    sp_emit_i64(&em, 0);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_string_equal(row(b, 0), "(true,(1.0E7,(0.1,(1700000000000,-3))))");
    assert_string_equal(row(b, 1), "(false,(2.5,(0.33333334,(0,0))))");
    batch_release(b);

    b = new_batch(f, "str");
    emitter_init(&em, b, 0);
    sp_emit_str(&em, "plain", 5);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_string_equal(row(b, 0), "plain");
    batch_release(b);
}

static void test_nested_rows(void **state)
{
    fixture *f = *state;
    sp_batch *b = new_batch(f, "Option[i64]");
    col_push_i64(&b->cols[0], 1);
    col_push_i64(&b->cols[1], 1);
    col_push_i64(&b->cols[0], 0);
    col_push_i64(&b->cols[1], 0);
    b->n = 2;
    assert_string_equal(row(b, 0), "Some(1)");
    assert_string_equal(row(b, 1), "None");
    batch_release(b);

    b = new_batch(f, "(str,Option[(i64,str)])");
    push_str(f, &b->cols[0], "a");
    col_push_i64(&b->cols[1], 1);
    col_push_i64(&b->cols[2], 1);
    push_str(f, &b->cols[3], "x");
    push_str(f, &b->cols[0], "b");
    col_push_i64(&b->cols[1], 0);
    col_push_i64(&b->cols[2], 0);
    push_str(f, &b->cols[3], "");
    b->n = 2;
    assert_string_equal(row(b, 0), "(a,Some((1,x)))");
    assert_string_equal(row(b, 1), "(b,None)");
    batch_release(b);

    b = new_batch(f, "(str,List[i64])");
    push_str(f, &b->cols[0], "a");
    col_push_i64(&b->cols[1], 2);
    col_push_i64(&b->cols[2], 1);
    col_push_i64(&b->cols[2], 2);
    push_str(f, &b->cols[0], "b");
    col_push_i64(&b->cols[1], 2);
    push_str(f, &b->cols[0], "c");
    col_push_i64(&b->cols[1], 3);
    col_push_i64(&b->cols[2], 3);
    b->n = 3;
    assert_string_equal(row(b, 0), "(a,CompactBuffer(1, 2))");
    assert_string_equal(row(b, 1), "(b,CompactBuffer())");
    assert_string_equal(row(b, 2), "(c,CompactBuffer(3))");
    batch_release(b);

    /* Elements that are tuples and doubles inside a buffer. */
    b = new_batch(f, "List[(str,f64)]");
    col_push_i64(&b->cols[0], 2);
    push_str(f, &b->cols[1], "p");
    col_push_f64(&b->cols[2], 1.0);
    push_str(f, &b->cols[1], "q");
    col_push_f64(&b->cols[2], 1e-4);
    b->n = 1;
    assert_string_equal(row(b, 0), "CompactBuffer((p,1.0), (q,1.0E-4))");
    batch_release(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_java_double),
        cmocka_unit_test(test_java_float),
        cmocka_unit_test(test_flat_rows),
        cmocka_unit_test(test_nested_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
