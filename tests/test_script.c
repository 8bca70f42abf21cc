/* test_script.c — job scripts through the script module: numeric lambdas compiled from script
 * text run fused on the OpenCL device and agree with the same lambdas forced onto the host
 * evaluator (a host-only step in the same chain sends the whole fused stage to the host), on
 * random inputs with a fixed seed; and the plan says where each stage runs. */
#include "script/script_int.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Random (i64, f64) pairs: 6 batches of up to 3000 records, with zeros and negatives. */
static const char *write_input(void)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/in.jsonl", tu_tmpdir("script"));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    uint64_t st = 42;
    for (int b = 0; b < 6; b++) {
        size_t n = b == 2 ? 0 : (size_t)tu_rand_below(&st, 3000) + 1;
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
            int64_t k = (int64_t)tu_rand_below(&st, 2001) - 1000;
            double v = ((double)tu_rand_below(&st, 1u << 20) - (1 << 19)) / 64.0;
            fprintf(f, "%s[%lld,%.17g]", i ? "," : "", (long long)k, v);
        }
        fputs("]\n", f);
    }
    fclose(f);
    return path;
}

/* Runs (or explains) text; returns what print wrote (malloc'd). */
static char *run(const char *text, int explain)
{
    script *s = NULL;
    assert_int_equal(script_load("t.spate", NULL, text, stderr, &s), SP_OK);
    sp_config cfg;
    sp_config_init(&cfg);
    cfg.threads = 2;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    cfg.out = out;
    sp_context *ctx = NULL;
    assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
    assert_int_equal(script_build(s, ctx, stderr), SP_OK);
    int rc = explain ? sp_context_explain(ctx, out) : sp_context_run(ctx);
    if (rc) fprintf(stderr, "%s\n", sp_context_errmsg(ctx));
    assert_int_equal(rc, SP_OK);
    sp_context_free(ctx);
    script_free(s);
    fclose(out);
    return buf;
}

static const char *const lambdas[] = {
    "map(p => (p._1 * 3 - 7, p._2 / 2.5))",
    "filter(p => p._1 % 3 == 0 || p._2 < -100.0)",
    "map(p => if (p._1 > 0) p._2 * p._1 else p._2 - p._1)",
    "map(p => (p._1 / 7, p._1 % 7, -p._1, p._2.toInt, p._1.toDouble / 3))",
    "map(p => (max(p._1, 10), min(p._2, 0.5), p._1 >= 0 && p._2 >= 0.0, !(p._1 == 5)))",
    "filter(p => p._1 != 0).map(p => (p._1, 1000 / p._1, p._2 * 2.0))",
    "mapValues(v => v * v + 1.0)",
};

static void test_fused_matches_host(void **state)
{
    (void)state;
    const char *in = write_input();
    char text[2048];
    for (size_t i = 0; i < sizeof lambdas / sizeof lambdas[0]; i++) {
        snprintf(text, sizeof text, "val q = queueStream(\"%s\")\nq.%s.print(100000)\n", in,
                 lambdas[i]);
        char *dev = run(text, 0);
        char *plan = run(text, 1);
        /* The same chain behind a host-only identity step. */
        snprintf(text, sizeof text,
                 "val q = queueStream(\"%s\")\nq.map(p => if (\"x\".isEmpty) p else p).%s"
                 ".print(100000)\n",
                 in, lambdas[i]);
        char *host = run(text, 0);
        char *hplan = run(text, 1);
        if (strcmp(dev, host)) fprintf(stderr, "lambda %zu differs: %s\n", i, lambdas[i]);
        assert_string_equal(dev, host);
        assert_non_null(strstr(dev, "Time: 6000 ms"));
        assert_true(strlen(dev) > 1000);
        assert_non_null(strstr(plan, "device"));
        assert_non_null(strstr(plan, "__kernel"));
        assert_non_null(strstr(hplan, "host (")); /* the stage names why it runs there */
        free(dev);
        free(plan);
        free(host);
        free(hplan);
    }
}

/* Division by zero names the script position on both paths. */
static void test_runtime_error_position(void **state)
{
    (void)state;
    const char *in = write_input();
    const char *fmt[2] = {"val q = queueStream(\"%s\")\nq.map(p => p._1 / (p._1 - p._1)).print()\n",
                          "val q = queueStream(\"%s\")\nq.map(p => if (\"x\".isEmpty) p else "
                          "p).map(p => p._1 / (p._1 - p._1)).print()\n"};
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text, fmt[k], in);
        script *s = NULL;
        assert_int_equal(script_load("t.spate", NULL, text, stderr, &s), SP_OK);
        sp_config cfg;
        sp_config_init(&cfg);
        FILE *out = fopen("/dev/null", "w");
        cfg.out = out;
        sp_context *ctx = NULL;
        assert_int_equal(sp_context_new(&cfg, &ctx), SP_OK);
        assert_int_equal(script_build(s, ctx, stderr), SP_OK);
        assert_int_equal(sp_context_run(ctx), SP_ERUNTIME);
        const char *want = k ? "2:53: " : "2:17: ";
        if (!strstr(sp_context_errmsg(ctx), want))
            fprintf(stderr, "message: %s\n", sp_context_errmsg(ctx));
        assert_non_null(strstr(sp_context_errmsg(ctx), want));
        assert_non_null(strstr(sp_context_errmsg(ctx), "division by zero"));
        sp_context_free(ctx);
        script_free(s);
        fclose(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_matches_host),
        cmocka_unit_test(test_runtime_error_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
