/* layers: util device exec batch ops */
/* test_expr.c — expression trees: type checking (promotion, error messages with positions),
 * the host evaluator's Scala/JVM semantics, monoid recognition, and expr_fold. */
#include "ops/ew_int.h"
#include "ops/expr_int.h"
#include "support/exprfix.h"
#include "support/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static sp_topo *topo;
static sp_arena *arena;
static sp_dict *dict;
static batch_env env;

static sp_expr *at(sp_expr *e, int line, int col)
{
    e->line = line;
    e->col = col;
    return e;
}

static sp_td *ty(const char *s)
{
    sp_td *t = NULL;
    sp_diag d = {0};
    assert_int_equal(td_parse(NULL, s, &t, &d), SP_OK);
    return t;
}

/* Type of e over one parameter of type `in`, as text; NULL on error (d filled). */
static char *type_of(sp_expr *e, const char *in, sp_diag *d)
{
    sp_td *a0 = ty(in), *out = NULL;
    int rc = expr_typecheck(e, NULL, a0, NULL, &out, d);
    td_free(NULL, a0);
    if (rc) return NULL;
    strbuf sb;
    sb_init(&sb, NULL);
    td_format(out, &sb);
    td_free(NULL, out);
    char *s = strdup(sb.s);
    sb_free(&sb);
    return s;
}

static void expect_type(sp_expr *e, const char *in, const char *want)
{
    sp_diag d = {0};
    char *got = type_of(e, in, &d);
    if (!got) fprintf(stderr, "typecheck: %s\n", d.msg);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void expect_type_error(sp_expr *e, const char *in, const char *msg)
{
    sp_diag d = {0};
    char *got = type_of(e, in, &d);
    assert_null(got);
    assert_int_equal(d.code, SP_ETYPE);
    if (!strstr(d.msg, msg)) fprintf(stderr, "got message: %s\n", d.msg);
    assert_non_null(strstr(d.msg, msg));
}

static void test_typecheck(void **state)
{
    (void)state;
    expect_type(bin(SP_OP_ADD, arg(0), lit(1)), "i32", "i64");
    expect_type(bin(SP_OP_MUL, arg(0), arg(0)), "i32", "i32");
    expect_type(bin(SP_OP_ADD, arg(0), flt(1)), "i32", "f64");
    expect_type(bin(SP_OP_DIV, fld(arg(0), 1), fld(arg(0), 0)), "(i64,f32)", "f32");
    expect_type(bin(SP_OP_LT, arg(0), flt(2.5)), "i64", "bool");
    expect_type(iff(bin(SP_OP_GT, arg(0), lit(0)), arg(0), flt(0.5)), "i64", "f64");
    expect_type(tup2(fld(arg(0), 1), fld(arg(0), 0)), "(str,i64)", "(i64,str)");
    expect_type(bin(SP_OP_ADD, arg(0), str("!")), "str", "str");
    expect_type(cast(arg(0), SP_I32), "f64", "i32");
    expect_type(cast(arg(0), SP_STR), "f64", "str");
    expect_type(fld(fld(arg(0), 1), 0), "(str,(i64,f64))", "i64");

    expect_type_error(bin(SP_OP_ADD, fld(arg(0), 0), fld(arg(0), 1)), "(str,i64)",
                      "cannot add str and i64");
    expect_type_error(at(bin(SP_OP_ADD, fld(arg(0), 0), fld(arg(0), 1)), 3, 14), "(str,i64)",
                      "3:14: cannot add str and i64");
    expect_type_error(fld(arg(0), 2), "(str,i64)", "_3 is out of range for (str,i64)");
    expect_type_error(fld(arg(0), 0), "i64", "not a tuple");
    expect_type_error(bin(SP_OP_AND, arg(0), lit(1)), "bool", "&& needs bool operands");
    expect_type_error(iff(arg(0), lit(1), str("x")), "bool", "if branches have different types");
    expect_type_error(arg(1), "i64", "no parameter 2");
    expect_type_error(un(SP_OP_NOT, arg(0)), "i64", "! needs a bool");
    expect_type_error(bin(SP_OP_LT, arg(0), str("x")), "i64", "cannot compare i64 and str");

    /* A filter must return bool: checked where the stage is built. */
    sp_td *in = ty("i64");
    ew_step st = {EW_FILTER, at(bin(SP_OP_ADD, arg(0), lit(1)), 2, 9)};
    ew_stage *s = NULL;
    sp_diag d = {0};
    assert_int_equal(ew_stage_new(NULL, &env, in, 1, &st, "stage 1", &s, &d), SP_ETYPE);
    assert_null(s);
    assert_string_equal(d.msg, "2:9: filter needs a bool, got i64");
    ew_step mv = {EW_MAP_VALUES, arg(0)};
    assert_int_equal(ew_stage_new(NULL, &env, in, 1, &mv, "stage 1", &s, &d), SP_ETYPE);
    assert_non_null(strstr(d.msg, "mapValues needs a (K,V) element, got i64"));
    td_free(NULL, in);
}

/* Evaluates e over one leaf argument. */
static int eval1(sp_expr *e, const char *in, expr_val a0, expr_scratch *s, expr_val *out,
                 sp_diag *d)
{
    sp_td *t = ty(in);
    expr_typed *tt = NULL;
    int rc = expr_compile(e, NULL, t, NULL, &tt, d);
    td_free(NULL, t);
    if (rc) return rc;
    expr_val args[2] = {a0, {0}};
    rc = expr_eval(tt, args, s, out, d);
    expr_typed_free(NULL, tt);
    return rc;
}

static int64_t eval_i(sp_expr *e, int64_t x)
{
    expr_scratch s;
    expr_scratch_init(&s, NULL);
    expr_val r;
    sp_diag d = {0};
    int rc = eval1(e, "i64", (expr_val){.t = SP_I64, .u.i = x}, &s, &r, &d);
    if (rc) fprintf(stderr, "eval: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    expr_scratch_free(&s);
    return r.t == SP_F64 || r.t == SP_F32 ? (int64_t)r.u.f : r.u.i;
}

static double eval_f(sp_expr *e, double x)
{
    expr_scratch s;
    expr_scratch_init(&s, NULL);
    expr_val r;
    sp_diag d = {0};
    assert_int_equal(eval1(e, "f64", (expr_val){.t = SP_F64, .u.f = x}, &s, &r, &d), SP_OK);
    expr_scratch_free(&s);
    assert_true(r.t == SP_F64 || r.t == SP_F32);
    return r.u.f;
}

/* SP_EXPR_MAX_DEPTH: a chain through left operands is one level however long, and is typed,
 * evaluated and freed without recursion; any other nesting past the limit is a type error
 * at the first node too deep, not a stack overflow. */
static void test_depth(void **state)
{
    (void)state;
    /* x - 1 + 2 - 3 + ... with 200000 terms: typed and evaluated in loops */
    sp_expr *e = arg(0);
    int64_t want = 7;
    for (int i = 1; i < 200000; i++) {
        e = bin(i % 2 ? SP_OP_SUB : SP_OP_ADD, e, lit(i));
        want = i % 2 ? want - i : want + i;
    }
    assert_int_equal(eval_i(e, 7), want);
    /* the same chain in an if behind a chain of && whose right sides divide by x: for x = 0
     * the first operand decides and no division runs */
    sp_expr *c = bin(SP_OP_NE, arg(0), lit(0));
    for (int i = 0; i < 100000; i++)
        c = bin(SP_OP_AND, c, bin(SP_OP_EQ, bin(SP_OP_DIV, lit(1), arg(0)), lit(0)));
    assert_int_equal(eval_i(iff(c, e, lit(-1)), 7), want);
    assert_int_equal(eval_i(iff(c, e, lit(-1)), 0), -1);
    /* unary nesting: SP_EXPR_MAX_DEPTH levels are fine, one more is not */
    sp_expr *u = arg(0);
    for (int i = 1; i < SP_EXPR_MAX_DEPTH; i++)
        u = un(SP_OP_NEG, u);
    assert_int_equal(eval_i(u, 5), SP_EXPR_MAX_DEPTH % 2 ? 5 : -5);
    sp_expr *deep = un(SP_OP_NEG, u);
    expr_typed *tt = NULL;
    sp_td *t = ty("i64");
    sp_diag d = {0};
    assert_int_equal(expr_compile(deep, NULL, t, NULL, &tt, &d), SP_ETYPE);
    assert_string_equal(d.msg, "expression too deeply nested (limit 256)");
    /* a million levels, nested through right operands, with a position at the top */
    sp_expr *r = lit(1);
    for (int i = 0; i < 1000000; i++)
        r = bin(SP_OP_ADD, arg(0), r);
    r->line = 3;
    r->col = 9;
    for (sp_expr *q = r; q->kind == EX_BINOP; q = q->kids[1])
        if (q != r) q->line = 0;
    assert_int_equal(expr_compile(r, NULL, t, NULL, &tt, &d), SP_ETYPE);
    assert_string_equal(d.msg, "expression too deeply nested (limit 256)");
    assert_null(tt);
    td_free(NULL, t);
}

static void test_eval_numbers(void **state)
{
    (void)state;
    assert_int_equal(eval_i(bin(SP_OP_ADD, bin(SP_OP_MUL, arg(0), lit(2)), lit(1)), 20), 41);
    assert_int_equal(eval_i(bin(SP_OP_DIV, arg(0), lit(2)), -7), -3);
    assert_int_equal(eval_i(bin(SP_OP_MOD, arg(0), lit(2)), -7), -1);
    assert_int_equal(eval_i(bin(SP_OP_MOD, arg(0), lit(-3)), 7), 1);
    assert_true(eval_i(bin(SP_OP_DIV, arg(0), lit(-1)), INT64_MIN) == INT64_MIN);
    assert_int_equal(eval_i(bin(SP_OP_MOD, arg(0), lit(-1)), INT64_MIN), 0);
    assert_true(eval_i(bin(SP_OP_ADD, arg(0), lit(1)), INT64_MAX) == INT64_MIN); /* wraps */
    assert_int_equal(eval_i(bin(SP_OP_MIN, arg(0), lit(3)), 9), 3);
    assert_int_equal(eval_i(bin(SP_OP_MAX, arg(0), lit(3)), 9), 9);
    assert_int_equal(eval_i(un(SP_OP_NEG, arg(0)), 5), -5);
    assert_int_equal(eval_i(iff(bin(SP_OP_GT, arg(0), lit(0)), lit(1), lit(2)), -4), 2);
    /* toInt truncates 64 → 32 bits; floats saturate. */
    assert_int_equal(eval_i(cast(arg(0), SP_I32), 4294967297LL), 1);
    assert_int_equal(eval_i(cast(cast(arg(0), SP_F64), SP_I32), 1LL << 40), INT32_MAX);
    assert_true(isinf(eval_f(bin(SP_OP_DIV, arg(0), flt(0)), 1.0)));
    assert_true(isnan(eval_f(bin(SP_OP_DIV, arg(0), flt(0)), 0.0)));
    assert_true(eval_f(bin(SP_OP_ADD, arg(0), lit(1)), 0.5) == 1.5);
    assert_true(eval_f(bin(SP_OP_MOD, arg(0), flt(2)), -5.5) == -1.5);
    assert_int_equal(eval_i(cast(arg(0), SP_I64), 0), 0);

    /* Integer division by zero is a runtime error; the guarded form is not. */
    expr_scratch s;
    expr_scratch_init(&s, NULL);
    expr_val r;
    sp_diag d = {0};
    assert_int_equal(eval1(bin(SP_OP_DIV, lit(10), arg(0)), "i64",
                           (expr_val){.t = SP_I64, .u.i = 0}, &s, &r, &d),
                     SP_ERUNTIME);
    assert_non_null(strstr(d.msg, "division by zero"));
    sp_expr *guard = bin(SP_OP_AND, bin(SP_OP_NE, arg(0), lit(0)),
                         bin(SP_OP_GT, bin(SP_OP_DIV, lit(10), arg(0)), lit(1)));
    assert_int_equal(eval_i(guard, 0), 0);
    assert_int_equal(eval_i(guard, 3), 1);
    assert_int_equal(eval_i(guard, 30), 0);
    sp_expr *guard_or = bin(SP_OP_OR, bin(SP_OP_EQ, arg(0), lit(0)),
                            bin(SP_OP_GT, bin(SP_OP_DIV, lit(10), arg(0)), lit(1)));
    assert_int_equal(eval_i(guard_or, 0), 1);
    expr_scratch_free(&s);
}

static void test_eval_strings(void **state)
{
    (void)state;
    expr_scratch s;
    expr_scratch_init(&s, NULL);
    expr_val r;
    sp_diag d = {0};
    expr_val ab = {.t = SP_STR, .u.s = {"ab", 2, UINT32_MAX}};
    assert_int_equal(eval1(bin(SP_OP_ADD, arg(0), str("cd")), "str", ab, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.s.len, 4);
    assert_memory_equal(r.u.s.p, "abcd", 4);
    assert_int_equal(eval1(bin(SP_OP_LT, arg(0), str("b")), "str", ab, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.i, 1);
    assert_int_equal(eval1(bin(SP_OP_LT, arg(0), str("a")), "str", ab, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.i, 0);
    assert_int_equal(eval1(bin(SP_OP_EQ, arg(0), str("ab")), "str", ab, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.i, 1);
    expr_val n12 = {.t = SP_STR, .u.s = {"-12", 3, UINT32_MAX}};
    assert_int_equal(eval1(cast(arg(0), SP_I32), "str", n12, &s, &r, &d), SP_OK);
    assert_int_equal(r.t, SP_I32);
    assert_int_equal(r.u.i, -12);
    assert_int_equal(eval1(cast(arg(0), SP_I32), "str", ab, &s, &r, &d), SP_ERUNTIME);
    assert_non_null(strstr(d.msg, "\"ab\""));
    expr_val big = {.t = SP_STR, .u.s = {"3000000000", 10, UINT32_MAX}};
    assert_int_equal(eval1(cast(arg(0), SP_I32), "str", big, &s, &r, &d), SP_ERUNTIME);
    assert_int_equal(eval1(cast(arg(0), SP_I64), "str", big, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.i, 3000000000LL);
    expr_val one = {.t = SP_F64, .u.f = 1.0};
    assert_int_equal(eval1(cast(arg(0), SP_STR), "f64", one, &s, &r, &d), SP_OK);
    assert_int_equal(r.u.s.len, 3);
    assert_memory_equal(r.u.s.p, "1.0", 3);
    expr_scratch_free(&s);
}

static void test_monoid(void **state)
{
    (void)state;
    assert_int_equal(expr_match_monoid(bin(SP_OP_ADD, arg(0), arg(1))), SP_AGG_SUM);
    assert_int_equal(expr_match_monoid(bin(SP_OP_ADD, arg(1), arg(0))), SP_AGG_SUM);
    assert_int_equal(expr_match_monoid(bin(SP_OP_MIN, arg(0), arg(1))), SP_AGG_MIN);
    assert_int_equal(expr_match_monoid(bin(SP_OP_MAX, arg(1), arg(0))), SP_AGG_MAX);
    assert_int_equal(expr_match_monoid(iff(bin(SP_OP_LT, arg(0), arg(1)), arg(0), arg(1))),
                     SP_AGG_MIN);
    assert_int_equal(expr_match_monoid(iff(bin(SP_OP_LT, arg(0), arg(1)), arg(1), arg(0))),
                     SP_AGG_MAX);
    assert_int_equal(expr_match_monoid(iff(bin(SP_OP_GE, arg(0), arg(1)), arg(0), arg(1))),
                     SP_AGG_MAX);
    assert_int_equal(expr_match_monoid(iff(bin(SP_OP_GT, arg(1), arg(0)), arg(0), arg(1))),
                     SP_AGG_MIN);
    assert_int_equal(expr_match_monoid(bin(SP_OP_SUB, arg(0), arg(1))), -1);
    assert_int_equal(expr_match_monoid(bin(SP_OP_ADD, arg(0), arg(0))), -1);
    assert_int_equal(expr_match_monoid(bin(SP_OP_MUL, arg(0), arg(1))), -1);
    assert_int_equal(expr_match_monoid(bin(SP_OP_ADD, arg(0), lit(1))), -1);
    assert_int_equal(expr_match_monoid(iff(bin(SP_OP_EQ, arg(0), arg(1)), arg(0), arg(1))), -1);
    assert_int_equal(expr_match_monoid(NULL), -1);
}

static void test_fold(void **state)
{
    (void)state;
    sp_td *td = ty("(str,i64)"), *vt = ty("i64");
    sp_batch *in = NULL, *out = NULL;
    sp_diag d = {0};
    assert_int_equal(batch_new(&env, td, 0, &in, &d), SP_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(col_push_id(&in->cols[0], dict_intern(dict, "k", 1)), 0);
        assert_int_equal(col_push_i64(&in->cols[1], i + 1), 0);
    }
    in->n = 10;
    assert_int_equal(batch_split_even(in, 1, NULL), 0);
    size_t rows[] = {0, 2, 4, 9}; /* values 1, 3, 5, 10 */
    assert_int_equal(batch_new(&env, vt, 0, &out, &d), SP_OK);
    sp_emitter em;
    emitter_init(&em, out, 0);
    assert_int_equal(expr_fold(bin(SP_OP_ADD, arg(0), arg(1)), NULL, in, vt, 1, rows, 4, &em, &d),
                     SP_OK);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(expr_fold(bin(SP_OP_MUL, arg(0), arg(1)), NULL, in, vt, 1, rows, 4, &em, &d),
                     SP_OK);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(expr_fold(bin(SP_OP_SUB, arg(0), arg(1)), NULL, in, vt, 1, rows, 1, &em, &d),
                     SP_OK);
    assert_int_equal(sp_emit_end(&em), 0);
    assert_int_equal(out->n, 3);
    assert_int_equal(col_get_i64(&out->cols[0], 0), 19);
    assert_int_equal(col_get_i64(&out->cols[0], 1), 150);
    assert_int_equal(col_get_i64(&out->cols[0], 2), 1);
    /* Division by zero inside the fold. */
    size_t zr[] = {0, 1};
    assert_int_equal(expr_fold(bin(SP_OP_DIV, arg(0), bin(SP_OP_SUB, arg(1), lit(2))), NULL, in, vt,
                               1, zr, 2, &em, &d),
                     SP_ERUNTIME);
    /* A fold whose result type differs from the values'. */
    assert_int_equal(expr_fold(bin(SP_OP_ADD, arg(0), flt(1)), NULL, in, vt, 1, rows, 2, &em, &d),
                     SP_ETYPE);
    /* Strings: concatenation folds (host only), result interned on emit. */
    sp_td *st = ty("str");
    sp_batch *sout = NULL;
    assert_int_equal(batch_new(&env, st, 0, &sout, &d), SP_OK);
    sp_batch *sin = NULL;
    assert_int_equal(batch_new(&env, st, 0, &sin, &d), SP_OK);
    const char *words[] = {"x", "yy", "z"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(col_push_id(&sin->cols[0], dict_intern(dict, words[i], strlen(words[i]))),
                         0);
    sin->n = 3;
    assert_int_equal(batch_split_even(sin, 1, NULL), 0);
    size_t all[] = {0, 1, 2};
    emitter_init(&em, sout, 0);
    assert_int_equal(expr_fold(bin(SP_OP_ADD, arg(0), arg(1)), NULL, sin, st, 0, all, 3, &em, &d),
                     SP_OK);
    assert_int_equal(sp_emit_end(&em), 0);
    size_t len;
    const char *got = col_get_str(&sout->cols[0], dict, 0, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(got, "xyyz", 4);
    batch_release(sin);
    batch_release(sout);
    td_free(NULL, st);
    batch_release(in);
    batch_release(out);
    td_free(NULL, td);
    td_free(NULL, vt);
}

int main(void)
{
    sp_diag d = {0};
    topo_opts to = {0};
    if (expr_pool_new(NULL, &P) || topo_open(&to, &topo, &d) ||
        arena_new(topo, 0, 0, NULL, &arena, &d) || dict_new(NULL, &dict)) {
        fprintf(stderr, "test_expr: setup failed: %s\n", d.msg);
        return 1;
    }
    env = (batch_env){NULL, dict, &arena, 1};
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typecheck),    cmocka_unit_test(test_eval_numbers),
        cmocka_unit_test(test_eval_strings), cmocka_unit_test(test_monoid),
        cmocka_unit_test(test_fold),         cmocka_unit_test(test_depth),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    expr_pool_free(P);
    dict_free(dict);
    arena_free(arena);
    topo_close(topo);
    return rc;
}
