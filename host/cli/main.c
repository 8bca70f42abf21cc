/* spate — the command-line interface.
 *   spate devices                 list OpenCL devices and the hwloc topology
 *   spate wordcount FILE [opts]   word count per batch over a text file (the demo job)
 *   spate version | help */
#include "spate.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sp_context *g_running; /* the one context the signal handler may stop */

static void on_signal(int sig)
{
    (void)sig;
    if (g_running) sp_context_stop(g_running);
}

static void usage(FILE *f)
{
    fputs("usage: spate COMMAND [options]\n"
          "commands:\n"
          "  devices               list OpenCL devices and the machine's topology\n"
          "  wordcount FILE|-      count words per batch of FILE's lines or stdin (print(N))\n"
          "  version               print the version\n"
          "options:\n"
          "  --device SEL          cpu, gpu, an index, or a name substring ($SPATE_DEVICE)\n"
          "  --threads N           executor threads (default: one per core)\n"
          "  --batch MS            batch interval in milliseconds (default 1000)\n"
          "  --batches N           run exactly N batch times\n"
          "  --batch-lines N       lines per batch (default: 100000 for files, by time for stdin)\n"
          "  --print N             elements printed per batch (default 10)\n"
          "  --metrics FILE        per-batch metrics as JSON lines\n"
          "  --no-kernel-cache     do not cache built kernels on disk\n"
          "  --device-mem-limit B  cap one device buffer at B bytes\n"
          "  --strategy cpu|gpu    force the kernel shape\n",
          f);
}

typedef struct cli {
    sp_config cfg;
    int print_n;
    const char *cmd;
    const char *arg;
} cli;

static int parse_long(const char *opt, const char *v, long long lo, long long *out)
{
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || x < lo) {
        fprintf(stderr, "spate: %s needs a number >= %lld, got '%s'\n", opt, lo, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, cli *c)
{
    sp_config_init(&c->cfg);
    c->cfg.batch_lines = (size_t)-1; /* unset: 100000 for files, by time for stdin */
    c->print_n = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        if (!strcmp(a, "--device") && v) {
            c->cfg.device = v;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(a, v, 0, &x)) return -1;
            c->cfg.threads = (int)x;
            i++;
        } else if (!strcmp(a, "--batch")) {
            if (parse_long(a, v, 1, &x)) return -1;
            c->cfg.batch_ms = x;
            i++;
        } else if (!strcmp(a, "--batches")) {
            if (parse_long(a, v, 1, &x)) return -1;
            c->cfg.max_batches = x;
            i++;
        } else if (!strcmp(a, "--batch-lines")) {
            if (parse_long(a, v, 0, &x)) return -1;
            c->cfg.batch_lines = (size_t)x;
            i++;
        } else if (!strcmp(a, "--print")) {
            if (parse_long(a, v, 0, &x)) return -1;
            c->print_n = (int)x;
            i++;
        } else if (!strcmp(a, "--metrics") && v) {
            c->cfg.metrics_path = v;
            i++;
        } else if (!strcmp(a, "--device-mem-limit")) {
            if (parse_long(a, v, 1, &x))
                return -1;
            c->cfg.device_mem_limit = (uint64_t)x;
            i++;
        } else if (!strcmp(a, "--no-kernel-cache")) {
            c->cfg.kernel_cache = 0;
        } else if (!strcmp(a, "--strategy") && v) {
            if (!strcmp(v, "cpu"))
                c->cfg.strategy = SP_STRATEGY_CPU;
            else if (!strcmp(v, "gpu"))
                c->cfg.strategy = SP_STRATEGY_GPU;
            else {
                fprintf(stderr, "spate: --strategy takes cpu or gpu, got '%s'\n", v);
                return -1;
            }
            i++;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            c->cmd = "help";
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "spate: unknown option '%s' (see spate help)\n", a);
            return -1;
        } else if (!c->cmd) {
            c->cmd = a;
        } else if (!c->arg) {
            c->arg = a;
        } else {
            fprintf(stderr, "spate: unexpected argument '%s'\n", a);
            return -1;
        }
    }
    return 0;
}

/* Java's String.split(" "): empty strings between separators are kept, trailing ones dropped. */
static int split_words(void *ud, const sp_row *in, sp_emitter *out)
{
    (void)ud;
    size_t len;
    const char *s = sp_row_str(in, 0, &len);
    size_t end = len;
    while (end > 0 && s[end - 1] == ' ')
        end--;
    if (end == 0 && len > 0) return 0; /* only separators: Java gives an empty array */
    size_t b = 0;
    for (size_t i = 0; i <= end; i++) {
        if (i == end || s[i] == ' ') {
            int rc = sp_emit_str(out, s + b, i - b);
            if (rc || (rc = sp_emit_end(out))) return rc;
            b = i + 1;
        }
    }
    return 0;
}

static int wordcount(cli *c)
{
    if (!c->arg) {
        fprintf(stderr, "spate: wordcount needs a FILE\n");
        return 2;
    }
    int from_stdin = !strcmp(c->arg, "-");
    if (c->cfg.batch_lines == (size_t)-1) c->cfg.batch_lines = from_stdin ? 0 : 100000;
    sp_context *ctx = NULL;
    int rc = sp_context_new(&c->cfg, &ctx);
    if (rc) {
        fprintf(stderr, "spate: %s\n", sp_strerror(rc));
        return 1;
    }
    sp_stream *lines = from_stdin ? sp_stdin_stream(ctx) : sp_text_file(ctx, c->arg);
    sp_stream *words = lines ? sp_stream_flat_map(lines, "str", split_words, NULL) : NULL;
    sp_expr *pair = sp_expr_tuple2(ctx, sp_expr_arg(ctx, 0), sp_expr_i64(ctx, 1));
    sp_stream *pairs = words ? sp_stream_map(words, pair) : NULL;
    sp_stream *counts = pairs ? sp_stream_reduce_by_key_agg(pairs, SP_AGG_SUM) : NULL;
    rc = counts ? sp_stream_print(counts, c->print_n) : -1;
    if (rc == SP_OK) {
        g_running = ctx;
        rc = sp_context_run(ctx);
        g_running = NULL;
    }
    int status = 0;
    if (rc != SP_OK) {
        fprintf(stderr, "spate: %s\n", sp_context_errmsg(ctx));
        status = 1;
    }
    sp_context_free(ctx);
    return status;
}

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof c);
    if (parse_args(argc, argv, &c)) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (!c.cmd || !strcmp(c.cmd, "help")) {
        usage(c.cmd ? stdout : stderr);
        return c.cmd ? 0 : 2;
    }
    if (!strcmp(c.cmd, "version")) {
        printf("spate 0.1.0\n");
        return 0;
    }
    if (!strcmp(c.cmd, "devices")) return sp_devices_print(stdout, &c.cfg) == SP_OK ? 0 : 1;
    if (!strcmp(c.cmd, "wordcount")) return wordcount(&c);
    fprintf(stderr, "spate: unknown command '%s' (see spate help)\n", c.cmd);
    return 2;
}
