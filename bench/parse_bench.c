/* parse_bench.c — parse throughput in bytes/s and lines/s per core, and on all executors.
 *
 *   parse_bench [--format F] [--arg A] [--mib N] [FILE ...]
 *
 * Without files: N MiB (default 64) of generated Combined lines (fixed seed: skewed hosts,
 * paths and agents). With files: their lines (plain, .gz or .zst) replicated to N MiB. The
 * input is one in-memory batch of text lines; "1 core" runs every chunk on the calling thread,
 * "all" runs the chunks on one executor per core. Best of three runs each. With --format json
 * the same input is also parsed through jansson ("jansson" lines beside the fast path's
 * "fast" lines), and the two must agree on rows and rejects. */
#include "exec/exec_int.h"
#include "io/jsonscan_int.h"
#include "io/lines_int.h"
#include "io/parse_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Zipf-like pick in [0, n): small indexes are hot. */
static uint64_t skewed(uint64_t *s, uint64_t n)
{
    double u = (double)(rnd(s) >> 11) / 9007199254740992.0;
    return (uint64_t)((double)n * u * u * u) % n;
}

static void gen_line(uint64_t *s, int64_t t, char *buf, size_t size, size_t *len)
{
    static const char *methods[] = {"GET", "GET", "GET", "GET", "POST", "HEAD", "PUT"};
    static const char *agents[] = {
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.4.0",
        "python-requests/2.31.0"};
    static const int statuses[] = {200, 200, 200, 200, 200, 200, 304, 301, 404, 500};
    static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    uint64_t h = skewed(s, 50000);
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    int st = statuses[rnd(s) % 10];
    int n = snprintf(
        buf, size,
        "10.%u.%u.%u - - [%02d/%s/%04d:%02d:%02d:%02d +0000] \"%s /p/%llu/item?id=%llu "
        "HTTP/1.1\" %d %llu \"https://example.com/r/%llu\" \"%s\"",
        (unsigned)(h >> 16), (unsigned)((h >> 8) & 255), (unsigned)(h & 255), tm.tm_mday,
        mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, methods[rnd(s) % 7],
        (unsigned long long)skewed(s, 5000), (unsigned long long)(rnd(s) % 100), st,
        (unsigned long long)(st == 304 ? 0 : rnd(s) % 50000), (unsigned long long)skewed(s, 200),
        agents[skewed(s, 5)]);
    *len = (size_t)n;
}

/* Parses in on one core, then on all executors; best of three runs each. */
static int bench_modes(const parse_spec *ps, batch_env *env, const sp_batch *in, sp_exec *exec,
                       parse_cache *cache, double bytes, const char *label, size_t *rows,
                       size_t *rej, sp_diag *d)
{
    for (int mode = 0; mode < 2; mode++) {
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            parse_opts o = {mode ? exec : NULL, NULL, 0, 0, cache};
            parse_result res;
            double t0 = now_s();
            int rc = parse_run(ps, env, in, &o, &res, d);
            if (rc) return rc;
            double dt = now_s() - t0;
            if (dt < best) best = dt;
            *rej = res.nrejects;
            *rows = res.out->n;
            parse_result_free(env->alloc, &res);
        }
        unsigned cores = mode ? exec_count(exec) : 1;
        printf(
            "  %s%-12s %8.1f MiB/s %8.2f M lines/s   (%u thread%s; %.1f MiB/s and %.2f M lines/s "
            "per core; %zu rows, %zu rejected)\n",
            label, mode ? "executors:" : "1 core:", bytes / best / (1 << 20),
            (double)in->n / best / 1e6, cores, cores > 1 ? "s" : "",
            bytes / best / (1 << 20) / cores, (double)in->n / best / 1e6 / cores, *rows, *rej);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *format = "combined", *arg = NULL;
    size_t mib = 64;
    char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else if (!strcmp(argv[i], "--arg") && i + 1 < argc)
            arg = argv[++i];
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
            mib = (size_t)atol(argv[++i]);
        else
            files[nfiles++] = argv[i];
    }
    sp_allocator a = {NULL, NULL};
    sp_diag d;
    diag_clear(&d);
    sp_topo *topo = NULL;
    topo_opts to = {0};
    to.log = stderr;
    to.alloc = &a;
    sp_arena *arena = NULL;
    sp_dict *dict = NULL;
    sp_exec *exec = NULL;
    if (topo_open(&to, &topo, &d) || arena_new(topo, 0, 0, &a, &arena, &d) || dict_new(&a, &dict) ||
        exec_new(topo, 0, &a, &exec, &d)) {
        fprintf(stderr, "parse_bench: %s\n", d.msg);
        return 1;
    }
    batch_env env = {&a, dict, &arena, 1};
    parse_spec *ps = NULL;
    if (parse_spec_new(&a, format, arg, &ps, &d)) {
        fprintf(stderr, "parse_bench: %s\n", d.msg);
        return 1;
    }
    sp_td *str = td_leaf(&a, SP_STR);
    td_layout(str, 0);
    sp_batch *in = NULL;
    if (batch_new(&env, str, 0, &in, &d)) return 1;
    sp_col *c = &in->cols[0];
    c->enc = ENC_RAW;
    col_reserve(c, 1 << 20, 1 << 26);
    ((int64_t *)c->data)[0] = 0;
    size_t want = mib << 20;
    const char *what = "generated combined";
    if (nfiles) {
        /* read the files once, then replicate their lines */
        sp_td *t2 = td_leaf(&a, SP_STR);
        td_layout(t2, 0);
        sp_batch *once = NULL;
        batch_new(&env, t2, 0, &once, &d);
        sp_col *oc = &once->cols[0];
        oc->enc = ENC_RAW;
        col_reserve(oc, 1024, 1 << 20);
        ((int64_t *)oc->data)[0] = 0;
        lines_reader rd;
        lines_init(&rd, &a);
        for (int i = 0; i < nfiles; i++) {
            size_t n = 0;
            int end = 0, over = 0;
            int rc = lines_open(&rd, "bench", files[i], &d);
            while (!rc && !end) /* lines over the 1 MiB cap are left out */
                rc = lines_read(&rd, oc, 0, &n, &end, &over, "bench", files[i], &d);
            if (rc) {
                fprintf(stderr, "parse_bench: %s\n", d.msg);
                return 1;
            }
            once->n += n;
        }
        lines_free(&rd);
        while (c->nbytes < want)
            for (size_t r = 0; r < once->n && c->nbytes < want; r++) {
                size_t len;
                const char *s = col_get_str(oc, dict, r, &len);
                col_push_text(c, s, len);
                in->n++;
            }
        batch_release(once);
        td_free(&a, t2);
        what = files[0];
    } else {
        uint64_t seed = 42;
        int64_t t = 1700000000;
        char buf[1024];
        while (c->nbytes < want) {
            size_t len;
            gen_line(&seed, t, buf, sizeof buf, &len);
            t += (int64_t)(rnd(&seed) % 3 == 0);
            col_push_text(c, buf, len);
            in->n++;
        }
    }
    batch_split_even(in, 1, NULL);
    parse_cache *cache = NULL;
    if (parse_cache_new(&a, exec_count(exec), &cache, &d)) return 1;
    double bytes = (double)c->nbytes + (double)in->n; /* with the newlines */
    printf("parse_bench: %s, format %s: %zu lines, %.1f MiB\n", what, ps->name, in->n,
           bytes / (1 << 20));
    /* json: the same input through jansson too, side by side with the fast path */
    parse_spec *slow = NULL;
    if (!strcmp(format, "json") && parse_json_scan(ps)) {
        if (parse_spec_new(&a, format, arg, &slow, &d)) {
            fprintf(stderr, "parse_bench: %s\n", d.msg);
            return 1;
        }
        parse_json_use_jansson(slow);
    }
    size_t rows[2], rej[2];
    for (int which = 0; which < (slow ? 2 : 1); which++) {
        const parse_spec *p = which ? slow : ps;
        const char *label = slow ? (which ? "jansson " : "fast    ") : "";
        if (bench_modes(p, &env, in, exec, cache, bytes, label, &rows[which], &rej[which], &d)) {
            fprintf(stderr, "parse_bench: %s\n", d.msg);
            return 1;
        }
    }
    if (slow && (rows[0] != rows[1] || rej[0] != rej[1])) {
        fprintf(stderr, "parse_bench: fast and jansson paths disagree on rows or rejects\n");
        return 1;
    }
    parse_spec_free(slow);
    printf("  dictionary: %u strings\n", dict_size(dict));
    batch_release(in);
    td_free(&a, str);
    parse_spec_free(ps);
    parse_cache_free(cache);
    free(files);
    exec_free(exec);
    dict_free(dict);
    arena_free(arena);
    topo_close(topo);
    return 0;
}
