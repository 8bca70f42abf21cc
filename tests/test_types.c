/* layers: util device exec batch */
#include "batch/batch_int.h"
#include "support/testutil.h"

#include <string.h>

static char *fmt(const sp_td *t)
{
    static char out[512];
    strbuf sb;
    sb_init(&sb, NULL);
    td_format(t, &sb);
    snprintf(out, sizeof out, "%s", sb_cstr(&sb));
    sb_free(&sb);
    return out;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *canon[] = {
        "i32",
        "i64",
        "f32",
        "f64",
        "bool",
        "ts",
        "str",
        "(str,i64)",
        "(str,(i64,f64))",
        "((i32,i64),(f32,(f64,bool)))",
        "Option[i64]",
        "List[i64]",
        "(str,Option[(i64,str)])",
        "(str,List[i64])",
        "List[List[(str,ts)]]",
        "Option[Option[bool]]",
        "(str,(List[i64],List[Option[str]]))",
        "(i64,i64,i64,i64,i64)",
    };
    for (size_t i = 0; i < sizeof canon / sizeof canon[0]; i++) {
        sp_td *t = NULL;
        sp_diag d = {0};
        assert_int_equal(td_parse(NULL, canon[i], &t, &d), 0);
        assert_string_equal(fmt(t), canon[i]);
        sp_td *c = td_copy(NULL, t);
        assert_true(td_equal(t, c));
        assert_int_equal(c->ncols, t->ncols);
        sp_td *again = NULL;
        assert_int_equal(td_parse(NULL, fmt(c), &again, &d), 0);
        assert_true(td_equal(t, again));
        td_free(NULL, t);
        td_free(NULL, c);
        td_free(NULL, again);
    }
}

static void test_aliases_and_spaces(void **state)
{
    (void)state;
    static const char *in[][2] = {
        {"(String, Long)", "(str,i64)"},
        {" ( Int ,( Double , Boolean ) ) ", "(i32,(f64,bool))"},
        {"Option[ Float ]", "Option[f32]"},
        {"Iterable[Int]", "List[i32]"},
        {"\t(str,\nList[ Long ])", "(str,List[i64])"},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        sp_td *t = NULL;
        assert_int_equal(td_parse(NULL, in[i][0], &t, NULL), 0);
        assert_string_equal(fmt(t), in[i][1]);
        td_free(NULL, t);
    }
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        const char *msg;
    } cases[] = {
        {"", "type \"\": col 1: expected a type"},
        {"i65", "type \"i65\": col 1: expected a type"},
        {"(i64)", "type \"(i64)\": col 5: expected ','"},
        {"(i64,", "type \"(i64,\": col 6: expected a type"},
        {"(i64,str", "type \"(i64,str\": col 9: expected ',' or ')'"},
        {"(str,i64) x", "type \"(str,i64) x\": col 11: expected end of type"},
        {"Option(i64)", "type \"Option(i64)\": col 7: expected '['"},
        {"List[i64", "type \"List[i64\": col 9: expected ']'"},
        {"(str,Option[(i64,bogus)])",
         "type \"(str,Option[(i64,bogus)])\": col 18: expected a type"},
        {"()", "type \"()\": col 2: expected a type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sp_td *t = (sp_td *)1;
        sp_diag d = {0};
        assert_int_equal(td_parse(NULL, cases[i].src, &t, &d), SP_EPARSE);
        assert_null(t);
        assert_int_equal(d.code, SP_EPARSE);
        assert_true(strncmp(d.msg, cases[i].msg, strlen(cases[i].msg)) == 0);
    }
}

static void check_cols(const char *src, int ncols, const sp_type *types)
{
    sp_td *t = NULL;
    assert_int_equal(td_parse(NULL, src, &t, NULL), 0);
    assert_int_equal(t->col, 0);
    assert_int_equal(t->ncols, ncols);
    for (int c = 0; c < ncols; c++)
        assert_int_equal(td_col_type(t, c), types[c]);
    td_free(NULL, t);
}

static void test_layout(void **state)
{
    (void)state;
    check_cols("(str,(i64,f64))", 3, (sp_type[]){SP_STR, SP_I64, SP_F64});
    check_cols("(str,Option[(i64,str)])", 4, (sp_type[]){SP_STR, SP_BOOL, SP_I64, SP_STR});
    check_cols("(str,List[i64])", 3, (sp_type[]){SP_STR, SP_I64, SP_I64});
    check_cols("List[List[f32]]", 3, (sp_type[]){SP_I64, SP_I64, SP_F32});

    sp_td *t = NULL;
    assert_int_equal(td_parse(NULL, "(str,Option[(i64,str)])", &t, NULL), 0);
    sp_td *opt = t->child[1];
    assert_int_equal(opt->kind, TD_OPTION);
    assert_int_equal(opt->col, 1);
    assert_int_equal(opt->ncols, 3);
    assert_int_equal(opt->child[0]->col, 2);
    assert_int_equal(opt->child[0]->child[1]->col, 3);
    assert_false(td_is_flat(t));
    /* Re-layout from another first column shifts everything. */
    assert_int_equal(td_layout(t, 5), 4);
    assert_int_equal(opt->child[0]->child[1]->col, 8);
    td_free(NULL, t);

    assert_int_equal(td_parse(NULL, "(str,(i64,f64))", &t, NULL), 0);
    assert_true(td_is_flat(t));
    assert_int_equal(t->child[1]->child[1]->col, 2);
    td_free(NULL, t);
}

static void test_constructors(void **state)
{
    (void)state;
    sp_td *t = td_tuple2(NULL, td_leaf(NULL, SP_STR),
                         td_list(NULL, td_option(NULL, td_leaf(NULL, SP_F64))));
    assert_non_null(t);
    assert_string_equal(fmt(t), "(str,List[Option[f64]])");
    assert_int_equal(t->ncols, 4);
    sp_td *u = NULL;
    assert_int_equal(td_parse(NULL, "(str,List[Option[f64]])", &u, NULL), 0);
    assert_true(td_equal(t, u));
    sp_td *v = NULL;
    assert_int_equal(td_parse(NULL, "(str,List[Option[f32]])", &v, NULL), 0);
    assert_false(td_equal(t, v));
    td_free(NULL, t);
    td_free(NULL, u);
    td_free(NULL, v);
    /* A NULL child (a failed inner constructor) fails the parent and frees the rest. */
    assert_null(td_tuple2(NULL, td_leaf(NULL, SP_I64), NULL));
    assert_null(td_option(NULL, NULL));
    assert_int_equal(type_width(SP_BOOL), 1);
    assert_int_equal(type_width(SP_STR), 4);
    assert_int_equal(type_width(SP_I32), 4);
    assert_int_equal(type_width(SP_TS), 8);
    assert_int_equal(type_width(SP_F64), 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_aliases_and_spaces),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_layout),
        cmocka_unit_test(test_constructors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
