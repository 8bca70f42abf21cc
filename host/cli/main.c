/* spate — the command-line interface.
 *   spate run JOB.spate | -e TEXT run a job script
 *   spate explain JOB.spate       print a job's plan: stages, placement, generated kernels
 *   spate devices                 list OpenCL devices and the hwloc topology
 *   spate wordcount FILE [opts]   word count per batch over a text file (the demo job)
 *   spate checkpoint DIR          what a checkpoint directory holds
 *   spate version | help */
#include "script/script_int.h"
#include "spate.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sp_context *volatile g_running;     /* the one context the signal handler may stop */
static volatile sig_atomic_t g_stop_asked; /* a SIGINT/SIGTERM came, maybe before the run */

/* The first SIGINT/SIGTERM asks the running job to stop after its current batch (the handler
 * is installed with SA_RESETHAND, so a second one kills the process). */
static void on_signal(int sig)
{
    (void)sig;
    g_stop_asked = 1;
    sp_context *ctx = g_running;
    if (ctx) sp_context_stop(ctx);
}

/* Runs ctx as the signal handler's job; a stop asked for before the run began is honoured. */
static int run_stoppable(sp_context *ctx)
{
    g_running = ctx;
    if (g_stop_asked) sp_context_stop(ctx);
    int rc = sp_context_run(ctx);
    g_running = NULL;
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: spate COMMAND [options]\n"
          "commands:\n"
          "  run JOB.spate         run a job script (-e 'TEXT' for inline text)\n"
          "  explain JOB.spate     print the job's plan and generated OpenCL source\n"
          "  devices               list OpenCL devices and the machine's topology\n"
          "  wordcount FILE|-      count words per batch of FILE's lines or stdin (print(N))\n"
          "  checkpoint DIR        what a checkpoint directory holds\n"
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
          "  --strategy cpu|gpu    force the kernel shape\n"
          "  --on-error fail|skip  a row whose lambda fails: fail the job (default) or skip it\n"
          "  --rejects FILE        rejected input: lines that do not parse, late records, and\n"
          "                        rows skipped with --on-error skip\n"
          "  --line-max BYTES      longest input line kept (default 1048576); longer lines are\n"
          "                        rejected with their place and first bytes\n"
          "  --horizon DURATION    event time: reject records further than this from the\n"
          "                        watermark (default 8760h; 500ms, 30s, 2m, 8760h; overrides\n"
          "                        the script's horizon statement)\n"
          "  --arg NAME=VALUE      the value of arg(\"NAME\", ...) in a job script (repeatable)\n"
          "  --checkpoint DIR      resume from DIR after any stop; file outputs exactly once\n",
          f);
}

typedef struct cli {
    sp_config cfg;
    int print_n;
    const char *cmd;
    const char *arg;
    const char *inline_text; /* run -e TEXT */
    const char *args[64];    /* --arg NAME=VALUE */
    int nargs;
    int batch_lines_set;
    int horizon_set;
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

/* A duration as job scripts write it: digits then ms, s, m or h (no unit: ms); > 0. */
static int parse_duration(const char *opt, const char *v, int64_t *out)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (v && end != v && x > 0)
        for (size_t i = 0; i < sizeof units / sizeof *units; i++)
            if (!strcmp(end, units[i].unit) && x <= INT64_MAX / units[i].ms) {
                *out = (int64_t)(x * units[i].ms);
                return 0;
            }
    fprintf(stderr, "spate: %s needs a positive duration (500ms, 30s, 2m, 8760h), got '%s'\n", opt,
            v ? v : "");
    return -1;
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
            c->batch_lines_set = 1;
            i++;
        } else if (!strcmp(a, "--print")) {
            if (parse_long(a, v, 0, &x)) return -1;
            c->print_n = (int)x;
            i++;
        } else if (!strcmp(a, "--checkpoint") && v) {
            c->cfg.checkpoint_dir = v;
            i++;
        } else if (!strcmp(a, "--metrics") && v) {
            c->cfg.metrics_path = v;
            i++;
        } else if (!strcmp(a, "--device-mem-limit")) {
            if (parse_long(a, v, 1, &x)) return -1;
            c->cfg.device_mem_limit = (uint64_t)x;
            i++;
        } else if (!strcmp(a, "--arg") && v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || c->nargs == 64) {
                fprintf(stderr, "spate: --arg takes NAME=VALUE, got '%s'\n", v);
                return -1;
            }
            c->args[c->nargs++] = v;
            i++;
        } else if (!strcmp(a, "-e") && v) {
            c->inline_text = v;
            i++;
        } else if (!strcmp(a, "--on-error") && v) {
            if (strcmp(v, "fail") && strcmp(v, "skip")) {
                fprintf(stderr, "spate: --on-error takes fail or skip, got '%s'\n", v);
                return -1;
            }
            c->cfg.on_error_skip = !strcmp(v, "skip");
            i++;
        } else if (!strcmp(a, "--rejects") && v) {
            c->cfg.rejects_path = v;
            i++;
        } else if (!strcmp(a, "--line-max")) {
            if (parse_long(a, v, 1, &x)) return -1;
            c->cfg.line_max = (size_t)x;
            i++;
        } else if (!strcmp(a, "--horizon")) {
            if (parse_duration(a, v, &c->cfg.event_horizon_ms)) return -1;
            c->horizon_set = 1;
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
        rc = run_stoppable(ctx);
    }
    int status = 0;
    if (rc != SP_OK) {
        fprintf(stderr, "spate: %s\n", sp_context_errmsg(ctx));
        status = 1;
    }
    sp_context_free(ctx);
    return status;
}

static char *read_all(const char *path)
{
    FILE *f = !strcmp(path, "-") ? stdin : fopen(path, "rb");
    if (!f) return NULL;
    size_t n = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf) buf[n] = '\0';
    if (f != stdin) fclose(f);
    return buf;
}

/* run and explain: exit 0 on success, 2 for a script error (syntax, types, names), 1 for a
 * failure while running. */
static int run_script(cli *c, int explain)
{
    if (!c->arg && !c->inline_text) {
        fprintf(stderr, "spate: %s needs JOB.spate or -e 'TEXT'\n", c->cmd);
        return 2;
    }
    char *text = c->inline_text ? strdup(c->inline_text) : read_all(c->arg);
    if (!text) {
        fprintf(stderr, "spate: cannot read %s\n", c->arg);
        return 2;
    }
    char dir[4096] = "";
    if (!c->inline_text) {
        const char *sl = strrchr(c->arg, '/');
        if (sl) snprintf(dir, sizeof dir, "%.*s", (int)(sl - c->arg), c->arg);
    }
    const char *name = c->inline_text ? "-e" : c->arg;
    script *sc = NULL;
    sp_context *ctx = NULL;
    /* a checkpoint belongs to this script with these arguments */
    size_t fl = strlen(text) + 1;
    for (int i = 0; i < c->nargs; i++)
        fl += strlen(c->args[i]) + 1;
    char *fingerprint = malloc(fl);
    if (fingerprint) {
        char *p = fingerprint + sprintf(fingerprint, "%s", text);
        for (int i = 0; i < c->nargs; i++)
            p += sprintf(p, "\n%s", c->args[i]);
    }
    c->cfg.job_fingerprint = fingerprint;
    int status = 2, rc = script_load(name, dir[0] ? dir : NULL, text, stderr, &sc);
    free(text);
    if (rc) goto out;
    for (int i = 0; i < c->nargs; i++) {
        const char *eq = strchr(c->args[i], '=');
        char an[256];
        snprintf(an, sizeof an, "%.*s", (int)(eq - c->args[i]), c->args[i]);
        if ((rc = script_set_arg(sc, an, eq + 1))) {
            fprintf(stderr, "spate: %s\n", sp_strerror(rc));
            goto out;
        }
    }
    /* Event time replays files as fast as they can be read, in bounded arrival batches;
     * otherwise a file is one batch (the batch-clock scripts' Spark-like behaviour). */
    if (!c->batch_lines_set) c->cfg.batch_lines = script_event_time(sc) ? 65536 : 0;
    if (script_batch_ms(sc) > 0) c->cfg.batch_ms = script_batch_ms(sc);
    if (!c->horizon_set) c->cfg.event_horizon_ms = script_horizon_ms(sc);
    if (!c->cfg.checkpoint_dir) c->cfg.checkpoint_dir = script_checkpoint_dir(sc);
    script_set_skip(sc, c->cfg.on_error_skip);
    if ((rc = sp_context_new(&c->cfg, &ctx))) {
        fprintf(stderr, "spate: %s\n", sp_strerror(rc));
        status = 1;
        goto out;
    }
    if ((rc = script_build(sc, ctx, stderr))) goto out;
    status = 1;
    if (explain) {
        script_explain(sc, stdout);
        rc = sp_context_explain(ctx, stdout);
    } else {
        rc = run_stoppable(ctx);
    }
    if (rc) {
        const char *m = script_runtime_error(sc);
        script_report(sc, m ? m : sp_context_errmsg(ctx), stderr);
        goto out;
    }
    status = 0;
out:
    sp_context_free(ctx);
    script_free(sc);
    free(fingerprint);
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
    sa.sa_flags = SA_RESETHAND;
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
    if (!strcmp(c.cmd, "checkpoint")) {
        if (!c.arg) {
            fprintf(stderr, "spate: checkpoint needs a DIR\n");
            return 2;
        }
        return sp_checkpoint_describe(c.arg, stdout, stderr) == SP_OK ? 0 : 1;
    }
    if (!strcmp(c.cmd, "run") || !strcmp(c.cmd, "explain")) return run_script(&c, c.cmd[0] == 'e');
    fprintf(stderr, "spate: unknown command '%s' (see spate help)\n", c.cmd);
    return 2;
}
