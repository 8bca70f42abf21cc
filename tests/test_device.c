/* layers: util device */
/* test_device.c — the OpenCL layer: enumeration, selectors, builds under both strategies, the
 * binary cache, build failures, buffers (zero-copy and copied), error mapping. */
#include "support/testutil.h"

#include "device/device_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const size_t sizes[] = {0, 1, 1000, 4097};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static sp_dev *open_dev(int strategy, int use_cache, const char *cache_dir, FILE *log)
{
    dev_opts o = {0};
    o.strategy = strategy;
    o.use_cache = use_cache;
    o.cache_dir = cache_dir;
    o.log = log;
    sp_dev *dev = NULL;
    sp_diag d = {0};
    int rc = dev_open(&o, &dev, &d);
    if (rc)
        fprintf(stderr, "dev_open: %s\n", d.msg);
    assert_int_equal(rc, SP_OK);
    assert_non_null(dev);
    return dev;
}

static void rm_dir(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static size_t round_up(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

/* ---------------------------------------------------------------------------------------- */

static void test_enumerate(void **state)
{
    (void)state;
    dev_info *in = NULL;
    size_t n = 0;
    sp_diag d = {0};
    assert_int_equal(dev_enumerate(NULL, &in, &n, &d), SP_OK);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(in[i].index, (int)i);
        assert_true(in[i].name[0] != '\0');
        assert_true(in[i].platform[0] != '\0');
        assert_true(in[i].version[0] != '\0');
        assert_true(in[i].driver[0] != '\0');
        assert_true(in[i].compute_units > 0);
        assert_true(in[i].global_mem > 0);
        assert_true(in[i].max_alloc > 0);
        assert_true(in[i].max_wg > 0);
        assert_true(in[i].type != 0);
        fprintf(stderr, "device %zu: %s | %s | %s | cu %u | wg %zu | i64 atomics %d | fp64 %d | "
                        "unified %d | pci '%s'\n",
                i, in[i].name, in[i].platform, in[i].version, in[i].compute_units, in[i].max_wg,
                in[i].int64_atomics, in[i].fp64, in[i].host_unified, in[i].pci_bus_id);
    }
    free(in); /* NULL allocator: libc */
}

static int try_open(const char *sel, sp_diag *d, dev_info *got)
{
    dev_opts o = {0};
    o.selector = sel;
    sp_dev *dev = NULL;
    int rc = dev_open(&o, &dev, d);
    if (rc == SP_OK) {
        if (got)
            *got = *dev_get_info(dev);
        dev_close(dev);
    } else {
        assert_null(dev);
    }
    return rc;
}

static void test_selectors(void **state)
{
    (void)state;
    dev_info *in = NULL, got;
    size_t n = 0;
    sp_diag d = {0};
    assert_int_equal(dev_enumerate(NULL, &in, &n, &d), SP_OK);

    char *saved = getenv("SPATE_DEVICE") ? strdup(getenv("SPATE_DEVICE")) : NULL;
    unsetenv("SPATE_DEVICE");

    assert_int_equal(try_open(NULL, &d, &got), SP_OK);
    assert_string_equal(got.name, in[0].name);
    assert_int_equal(try_open("0", &d, &got), SP_OK);
    assert_string_equal(got.name, in[0].name);
    if (in[0].type & CL_DEVICE_TYPE_CPU) {
        assert_int_equal(try_open("cpu", &d, &got), SP_OK);
        assert_true(got.type & CL_DEVICE_TYPE_CPU);
        assert_int_equal(try_open("CPU", &d, NULL), SP_OK);
    }

    /* A name substring, in another case: matches case-insensitively. */
    char sub[8] = {0};
    size_t len = strlen(in[0].name);
    memcpy(sub, in[0].name + len / 2, len - len / 2 < 4 ? len - len / 2 : 4);
    for (char *p = sub; *p; p++)
        *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : (*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    assert_int_equal(try_open(sub, &d, &got), SP_OK);
    assert_non_null(strcasestr(got.name, sub) ? got.name : strcasestr(got.platform, sub));
    /* A platform name substring. */
    char psub[6] = {0};
    memcpy(psub, in[0].platform, strlen(in[0].platform) < 5 ? strlen(in[0].platform) : 5);
    assert_int_equal(try_open(psub, &d, NULL), SP_OK);

    /* Unknown selectors: SP_ENODEV naming the selector and listing the devices. */
    assert_int_equal(try_open("no-such-device-xyz", &d, NULL), SP_ENODEV);
    assert_int_equal(d.code, SP_ENODEV);
    assert_non_null(strstr(d.msg, "no-such-device-xyz"));
    assert_non_null(strstr(d.msg, in[0].name));
    assert_null(strchr(d.msg, '\n'));
    char idx[32];
    snprintf(idx, sizeof idx, "%zu", n);
    assert_int_equal(try_open(idx, &d, NULL), SP_ENODEV);
    assert_non_null(strstr(d.msg, idx));
    int has_accel = 0;
    for (size_t i = 0; i < n; i++)
        has_accel |= (in[i].type & CL_DEVICE_TYPE_ACCELERATOR) != 0;
    if (!has_accel)
        assert_int_equal(try_open("accelerator", &d, NULL), SP_ENODEV);

    /* The environment is the fallback for a NULL selector. */
    setenv("SPATE_DEVICE", "0", 1);
    assert_int_equal(try_open(NULL, &d, NULL), SP_OK);
    setenv("SPATE_DEVICE", "bogus-env-device", 1);
    assert_int_equal(try_open(NULL, &d, NULL), SP_ENODEV);
    assert_non_null(strstr(d.msg, "SPATE_DEVICE"));
    assert_non_null(strstr(d.msg, "bogus-env-device"));
    /* An explicit selector wins over the environment. */
    assert_int_equal(try_open("0", &d, NULL), SP_OK);

    if (saved) {
        setenv("SPATE_DEVICE", saved, 1);
        free(saved);
    } else {
        unsetenv("SPATE_DEVICE");
    }
    free(in);
}

/* ---------------------------------------------------------------------------------------- */

/* c = a + b through selftest_vadd; a is wrapped at an offset (`skew` bytes) to take the
 * copied path when skew breaks the device's alignment. */
static void run_vadd(sp_dev *dev, size_t n, uint64_t *seed, size_t skew)
{
    sp_diag d = {0};
    cl_kernel k;
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_vadd", &k, &d), SP_OK);
    size_t bytes = n * sizeof(uint32_t);
    char *araw = aligned_alloc(4096, round_up(bytes + skew + 1, 4096));
    uint32_t *a = (uint32_t *)(araw + skew);
    uint32_t *b = aligned_alloc(4096, round_up(bytes + 1, 4096));
    uint32_t *c = malloc(bytes + 4);
    assert_non_null(araw);
    assert_non_null(b);
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        a[i] = (uint32_t)tu_rand(seed);
        b[i] = (uint32_t)tu_rand(seed);
    }
    dev_buf ba, bb, bc;
    assert_int_equal(dev_buf_wrap(dev, a, bytes, DEV_BUF_READ, &ba, &d), SP_OK);
    assert_int_equal(dev_buf_wrap(dev, b, bytes, DEV_BUF_READ, &bb, &d), SP_OK);
    assert_int_equal(dev_buf_alloc(dev, bytes, &bc, &d), SP_OK);
    cl_uint nn = (cl_uint)n;
    assert_int_equal(clSetKernelArg(k, 0, sizeof(cl_mem), &ba.mem), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 1, sizeof(cl_mem), &bb.mem), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 2, sizeof(cl_mem), &bc.mem), CL_SUCCESS);
    assert_int_equal(clSetKernelArg(k, 3, sizeof nn, &nn), CL_SUCCESS);
    size_t lws = dev_wg_size(dev);
    /* n = 0: gws 0, dev_launch does nothing. */
    assert_int_equal(dev_launch(dev, k, round_up(n, lws), lws, "vadd", &d), SP_OK);
    assert_int_equal(dev_buf_read(dev, &bc, 0, c, bytes, &d), SP_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i], a[i] + b[i]);
    dev_buf_release(&ba);
    dev_buf_release(&bb);
    dev_buf_release(&bc);
    assert_null(ba.mem);
    free(araw);
    free(b);
    free(c);
}

static void test_vadd_both_strategies(void **state)
{
    (void)state;
    const int strategies[] = {DEV_STRATEGY_CPU, DEV_STRATEGY_GPU};
    for (int s = 0; s < 2; s++) {
        sp_dev *dev = open_dev(strategies[s], 0, NULL, NULL);
        assert_int_equal(dev_strategy(dev), strategies[s]);
        size_t wg = dev_wg_size(dev);
        assert_true(wg >= 1 && (wg & (wg - 1)) == 0 && wg <= dev_get_info(dev)->max_wg);
        assert_true(wg <= 256);
        assert_true(dev_groups(dev) >= dev_get_info(dev)->compute_units);
        uint64_t seed = 42 + (uint64_t)s;
        for (size_t i = 0; i < NSIZES; i++) {
            run_vadd(dev, sizes[i], &seed, 0);
            run_vadd(dev, sizes[i], &seed, 4); /* copied upload */
        }
        unsigned compiled = 0, cached = 0;
        dev_build_stats(dev, &compiled, &cached);
        assert_int_equal(compiled, 1); /* selftest.cl built once, kept for every call */
        assert_int_equal(cached, 0);
        dev_close(dev);
    }
}

/* The strategy define reaches the kernel: selftest_strategy reports which one it was built
 * for, and both shapes sum the same. */
static void test_strategy_defines(void **state)
{
    (void)state;
    const int strategies[] = {DEV_STRATEGY_CPU, DEV_STRATEGY_GPU};
    const size_t ns[] = {0, 1, 1000, 4097, 100003};
    for (int s = 0; s < 2; s++) {
        sp_dev *dev = open_dev(strategies[s], 0, NULL, NULL);
        sp_diag d = {0};
        cl_kernel k;
        assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_strategy", &k, &d), SP_OK);
        size_t lws = dev_wg_size(dev), gws = lws * dev_groups(dev);
        uint64_t seed = 7;
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            size_t n = ns[t];
            uint32_t *in = malloc(n * 4 + 4);
            uint64_t *part = malloc(gws * 8);
            uint64_t want = 0, got = 0;
            for (size_t i = 0; i < n; i++)
                want += in[i] = (uint32_t)tu_rand(&seed);
            dev_buf bin, bpart, bwhich;
            assert_int_equal(dev_buf_alloc(dev, n * 4, &bin, &d), SP_OK);
            assert_int_equal(dev_buf_write(dev, &bin, 0, in, n * 4, &d), SP_OK);
            assert_int_equal(dev_buf_alloc(dev, gws * 8, &bpart, &d), SP_OK);
            assert_int_equal(dev_buf_alloc(dev, 4, &bwhich, &d), SP_OK);
            assert_int_equal(dev_buf_fill_zero(dev, &bwhich, &d), SP_OK);
            cl_ulong nn = n;
            clSetKernelArg(k, 0, sizeof(cl_mem), &bin.mem);
            clSetKernelArg(k, 1, sizeof nn, &nn);
            clSetKernelArg(k, 2, sizeof(cl_mem), &bpart.mem);
            clSetKernelArg(k, 3, sizeof(cl_mem), &bwhich.mem);
            assert_int_equal(dev_launch(dev, k, gws, lws, "strategy", &d), SP_OK);
            uint32_t which = 0;
            assert_int_equal(dev_buf_read(dev, &bwhich, 0, &which, 4, &d), SP_OK);
            assert_int_equal(dev_buf_read(dev, &bpart, 0, part, gws * 8, &d), SP_OK);
            assert_int_equal(dev_finish(dev, &d), SP_OK);
            for (size_t i = 0; i < gws; i++)
                got += part[i];
            assert_int_equal(which, (uint32_t)strategies[s]);
            assert_true(got == want);
            dev_buf_release(&bin);
            dev_buf_release(&bpart);
            dev_buf_release(&bwhich);
            free(in);
            free(part);
        }
        dev_close(dev);
    }
}

/* ---------------------------------------------------------------------------------------- */

static char *find_bin(const char *dir)
{
    static char path[1024];
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *e;
    char *found = NULL;
    while ((e = readdir(dd)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".bin")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            found = path;
        }
    }
    closedir(dd);
    return found;
}

static double timed_kernel(sp_dev *dev)
{
    sp_diag d = {0};
    cl_kernel k;
    double t0 = now_s();
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_vadd", &k, &d), SP_OK);
    return now_s() - t0;
}

static void test_binary_cache(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("devcache");
    assert_non_null(dir);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/nested/cache", dir); /* created by dev_open (mkdir -p) */
    unsigned compiled, cached;
    uint64_t seed = 99;

    sp_dev *dev = open_dev(0, 1, sub, NULL);
    double cold = timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 1);
    assert_int_equal(cached, 0);
    dev_close(dev);
    char *bin = find_bin(sub);
    assert_non_null(bin);

    dev = open_dev(0, 1, sub, NULL);
    double warm = timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 0);
    assert_int_equal(cached, 1);
    for (size_t i = 0; i < NSIZES; i++)
        run_vadd(dev, sizes[i], &seed, 0);
    dev_close(dev);
    fprintf(stderr, "selftest.cl build: compiled %.1f ms, from the binary cache %.1f ms\n",
            cold * 1e3, warm * 1e3);

    /* A damaged entry: rebuilt from source, overwritten, then loaded again. */
    assert_int_equal(tu_write_file(bin, "SPBIN001 garbage that is not a program binary"), 0);
    FILE *log = tmpfile();
    assert_non_null(log);
    dev = open_dev(0, 1, sub, log);
    timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 1);
    assert_int_equal(cached, 0);
    run_vadd(dev, 1000, &seed, 0);
    dev_close(dev);
    fclose(log);
    dev = open_dev(0, 1, sub, NULL);
    timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(cached, 1);
    run_vadd(dev, 4097, &seed, 0);
    dev_close(dev);

    /* Another strategy is another key. */
    dev = open_dev(DEV_STRATEGY_GPU, 1, sub, NULL);
    timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 1);
    assert_int_equal(cached, 0);
    dev_close(dev);

    /* A cache dir that cannot be created: one warning, the device still works uncached. */
    char blocked[600];
    snprintf(blocked, sizeof blocked, "%s/file", dir);
    assert_int_equal(tu_write_file(blocked, "x"), 0);
    strcat(blocked, "/cache");
    log = tmpfile();
    dev = open_dev(0, 1, blocked, log);
    timed_kernel(dev);
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 1);
    dev_close(dev);
    char text[1024] = {0};
    rewind(log);
    size_t got = fread(text, 1, sizeof text - 1, log);
    assert_true(got > 0);
    assert_non_null(strstr(text, "cache"));
    fclose(log);
    rm_dir(dir);
}

static void test_broken_build(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("devbroken");
    FILE *log = tmpfile();
    assert_non_null(log);
    sp_dev *dev = open_dev(0, 1, dir, log);
    sp_diag d = {0};
    cl_program p = (cl_program)1;
    const char *src = "__kernel void k(__global int *x)\n{\n    x[0] = undefined_thing_42;\n}\n";
    assert_int_equal(dev_build(dev, "broken.cl", src, NULL, &p, &d), SP_EBUILD);
    assert_null(p);
    fprintf(stderr, "build failure message: %s\n", d.msg);
    assert_int_equal(d.code, SP_EBUILD);
    assert_true(strncmp(d.msg, "broken.cl: kernel build failed: ", 32) == 0);
    assert_non_null(strstr(d.msg, "error"));
    assert_null(strchr(d.msg, '\n'));
    /* The error line points into the caller's text, not into common.h. */
    assert_non_null(strstr(d.msg, "broken.cl:3:"));

    const char *at = strstr(d.msg, "(source and log: ");
    assert_non_null(at);
    char spath[1024], lpath[1024];
    assert_int_equal(sscanf(at, "(source and log: %1023[^,], %1023[^)])", spath, lpath), 2);
    char *dumped = tu_read_file(spath, NULL);
    assert_non_null(dumped);
    assert_non_null(strstr(dumped, "undefined_thing_42"));
    assert_non_null(strstr(dumped, "SPATE_COMMON_H")); /* the generated source, not just src */
    free(dumped);
    char *dlog = tu_read_file(lpath, NULL);
    assert_non_null(dlog);
    assert_non_null(strstr(dlog, "undefined_thing_42"));
    free(dlog);

    /* The whole log went to the log stream. */
    char text[4096] = {0};
    rewind(log);
    assert_true(fread(text, 1, sizeof text - 1, log) > 0);
    assert_non_null(strstr(text, "kernel build failed"));
    assert_non_null(strstr(text, "undefined_thing_42"));

    /* Bad options are a build failure too, with the CL error as the reason. */
    assert_int_equal(dev_build(dev, "opts.cl", "__kernel void k(void) {}", "-bogus-option-zz",
                               &p, &d),
                     SP_EBUILD);
    assert_non_null(strstr(d.msg, "opts.cl: kernel build failed"));

    unsigned compiled, cached;
    dev_build_stats(dev, &compiled, &cached);
    assert_int_equal(compiled, 0);
    assert_int_equal(cached, 0);
    dev_close(dev);
    fclose(log);
    rm_dir(dir);
}

static void test_fail_hook(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("devhook");
    FILE *log = tmpfile();
    sp_dev *dev = open_dev(0, 1, dir, log);
    sp_diag d = {0};
    cl_program p = NULL;
    const char *src = "__kernel void ok(__global int *x) { x[get_global_id(0)] = 1; }";
    dev_test_fail_next_build(dev);
    assert_int_equal(dev_build(dev, "hooked.cl", src, NULL, &p, &d), SP_EBUILD);
    assert_null(p);
    assert_non_null(strstr(d.msg, "hooked.cl: kernel build failed"));
    assert_non_null(strstr(d.msg, "injected"));
    /* Only the next build fails. */
    assert_int_equal(dev_build(dev, "hooked.cl", src, "-D EXTRA=1", &p, &d), SP_OK);
    assert_non_null(p);
    clReleaseProgram(p);
    /* dev_kernel passes the failure on, and retries on the next call. */
    cl_kernel k;
    dev_test_fail_next_build(dev);
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_fill", &k, &d), SP_EBUILD);
    assert_non_null(strstr(d.msg, "selftest.cl"));
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_fill", &k, &d), SP_OK);
    dev_close(dev);
    fclose(log);
    rm_dir(dir);
}

static void test_kernel_errors(void **state)
{
    (void)state;
    sp_dev *dev = open_dev(0, 0, NULL, NULL);
    sp_diag d = {0};
    cl_kernel k = (cl_kernel)1, k2 = NULL;
    assert_int_equal(dev_kernel(dev, "no_such_file.cl", "x", &k, &d), SP_EINVAL);
    assert_null(k);
    assert_non_null(strstr(d.msg, "no_such_file.cl"));
    assert_int_equal(dev_kernel(dev, "selftest.cl", "no_such_kernel", &k, &d), SP_EINVAL);
    assert_non_null(strstr(d.msg, "no_such_kernel"));
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_vadd", &k, &d), SP_OK);
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_vadd", &k2, &d), SP_OK);
    assert_ptr_equal(k, k2); /* kept, not rebuilt */
    unsigned compiled;
    dev_build_stats(dev, &compiled, NULL);
    assert_int_equal(compiled, 1);
    assert_non_null(dev_kernel_source("common.h"));
    assert_non_null(dev_kernel_source("selftest.cl"));
    assert_null(dev_kernel_source("nope.cl"));
    dev_close(dev);
}

/* ---------------------------------------------------------------------------------------- */

static void test_mem_limits(void **state)
{
    (void)state;
    sp_dev *dev = open_dev(0, 0, NULL, NULL);
    sp_diag d = {0};
    dev_buf b;
    dev_test_set_mem_limit(dev, 1 << 20);
    assert_int_equal(dev_buf_alloc(dev, (2 << 20) + 1, &b, &d), SP_EDEVMEM);
    assert_null(b.mem);
    assert_non_null(strstr(d.msg, "device out of memory"));
    assert_non_null(strstr(d.msg, "3 MiB"));
    assert_non_null(strstr(d.msg, "1 MiB"));
    assert_int_equal(dev_buf_alloc(dev, 1 << 20, &b, &d), SP_OK);
    dev_buf_release(&b);
    void *host = aligned_alloc(4096, 4 << 20);
    assert_int_equal(dev_buf_wrap(dev, host, 4 << 20, DEV_BUF_READ, &b, &d), SP_EDEVMEM);
    dev_test_set_mem_limit(dev, 0);
    assert_int_equal(dev_buf_alloc(dev, 2 << 20, &b, &d), SP_OK);
    dev_buf_release(&b);
    free(host);

    /* Beyond what the device says one allocation may be: refused before the driver sees it. */
    uint64_t max = dev_get_info(dev)->max_alloc;
    if (max < SIZE_MAX) {
        assert_int_equal(dev_buf_alloc(dev, (size_t)max + 1, &b, &d), SP_EDEVMEM);
        assert_non_null(strstr(d.msg, "device out of memory"));
    }
    /* Empty scratch still gives a handle; out-of-range reads are refused. */
    assert_int_equal(dev_buf_alloc(dev, 0, &b, &d), SP_OK);
    assert_non_null(b.mem);
    char c;
    assert_int_equal(dev_buf_read(dev, &b, 0, &c, 1, &d), SP_EINVAL);
    assert_int_equal(dev_buf_fill_zero(dev, &b, &d), SP_OK);
    dev_buf_release(&b);
    assert_int_equal(dev_buf_alloc(dev, 16, &b, &d), SP_OK);
    assert_int_equal(dev_buf_write(dev, &b, 8, "0123456789", 9, &d), SP_EINVAL);
    assert_int_equal(dev_buf_write(dev, &b, 8, "01234567", 8, &d), SP_OK);
    assert_int_equal(dev_buf_fill_zero(dev, &b, &d), SP_OK);
    char out[16];
    memset(out, 'x', sizeof out);
    assert_int_equal(dev_buf_read(dev, &b, 0, out, 16, &d), SP_OK);
    for (int i = 0; i < 16; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(dev_buf_write(dev, &b, 8, "01234567", 8, &d), SP_OK);
    assert_int_equal(dev_buf_read(dev, &b, 8, out, 8, &d), SP_OK);
    assert_memory_equal(out, "01234567", 8);
    assert_int_equal(dev_buf_sync_host(dev, &b, &d), SP_EINVAL); /* scratch has no host side */
    dev_buf_release(&b);
    dev_close(dev);
}

/* A kernel writes into wrapped host memory; after dev_buf_sync_host the host sees it. */
static void test_zero_copy(void **state)
{
    (void)state;
    sp_dev *dev = open_dev(0, 0, NULL, NULL);
    sp_diag d = {0};
    cl_kernel k;
    assert_int_equal(dev_kernel(dev, "selftest.cl", "selftest_fill", &k, &d), SP_OK);
    size_t lws = dev_wg_size(dev);
    for (size_t t = 0; t < NSIZES; t++) {
        for (size_t skew = 0; skew <= 4; skew += 4) {
            size_t n = sizes[t], bytes = n * 4;
            char *raw = aligned_alloc(4096, round_up(bytes + skew + 1, 4096));
            uint32_t *host = (uint32_t *)(raw + skew);
            memset(host, 0xff, bytes);
            dev_buf b;
            assert_int_equal(dev_buf_wrap(dev, host, bytes, DEV_BUF_RW, &b, &d), SP_OK);
            if (skew == 0 && n && (dev_get_info(dev)->type & CL_DEVICE_TYPE_CPU))
                assert_true(b.zero_copy);
            cl_uint nn = (cl_uint)n, seed = 17 + (cl_uint)t;
            clSetKernelArg(k, 0, sizeof(cl_mem), &b.mem);
            clSetKernelArg(k, 1, sizeof nn, &nn);
            clSetKernelArg(k, 2, sizeof seed, &seed);
            assert_int_equal(dev_launch(dev, k, round_up(n, lws), lws, "fill", &d), SP_OK);
            assert_int_equal(dev_buf_sync_host(dev, &b, &d), SP_OK);
            for (size_t i = 0; i < n; i++)
                assert_int_equal(host[i], 3u * (uint32_t)i + seed);
            dev_buf_release(&b);
            free(raw);
        }
    }
    /* gws not a multiple of lws is the caller's bug. */
    assert_int_equal(dev_launch(dev, k, lws + 1, lws, "bad", &d), SP_EINVAL);
    dev_close(dev);
}

/* ---------------------------------------------------------------------------------------- */

static void test_dev_check(void **state)
{
    (void)state;
    sp_diag d = {0};
    assert_int_equal(dev_check(CL_SUCCESS, "nothing", &d), SP_OK);
    assert_int_equal(d.code, SP_OK);
    assert_int_equal(dev_check(CL_MEM_OBJECT_ALLOCATION_FAILURE, "alloc columns", &d),
                     SP_EDEVMEM);
    assert_string_equal(d.msg, "alloc columns: CL_MEM_OBJECT_ALLOCATION_FAILURE");
    assert_int_equal(dev_check(CL_OUT_OF_RESOURCES, "x", &d), SP_EDEVMEM);
    assert_int_equal(dev_check(CL_OUT_OF_HOST_MEMORY, "x", &d), SP_EDEVMEM);
    assert_int_equal(dev_check(CL_INVALID_KERNEL_ARGS, "launch", &d), SP_ECL);
    assert_string_equal(d.msg, "launch: CL_INVALID_KERNEL_ARGS");
    assert_int_equal(dev_check(-12345, "odd", &d), SP_ECL);
    assert_non_null(strstr(d.msg, "-12345"));
    assert_int_equal(dev_check(CL_INVALID_VALUE, "nod", NULL), SP_ECL);
    assert_string_equal(dev_clerr_name(CL_SUCCESS), "CL_SUCCESS");
    assert_string_equal(dev_clerr_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    assert_string_equal(dev_clerr_name(CL_INVALID_DEVICE_PARTITION_COUNT),
                        "CL_INVALID_DEVICE_PARTITION_COUNT");
    /* Every OpenCL 1.2 code has a name. */
    for (int e = -1; e >= -68; e--) {
        if (e < -19 && e > -30)
            continue;
        assert_string_not_equal(dev_clerr_name(e), "CL_UNKNOWN_ERROR");
    }
}

/* ---------------------------------------------------------------------------------------- */

/* An allocator that fails its Nth allocation: every failure is SP_ENOMEM or absorbed, and
 * nothing leaks (the sanitizer build checks that). */
struct failing {
    long countdown; /* allocations left before the failing one; <0: never fail */
    int failed;
};

static void *failing_alloc(void *ud, void *ptr, size_t n)
{
    struct failing *f = ud;
    if (n == 0) {
        free(ptr);
        return NULL;
    }
    if (f->countdown == 0) {
        f->countdown = -1;
        f->failed = 1;
        return NULL;
    }
    if (f->countdown > 0)
        f->countdown--;
    return realloc(ptr, n);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    int done = 0;
    long nth = 0;
    for (; nth < 400 && !done; nth++) {
        struct failing f = {nth, 0};
        sp_allocator a = {failing_alloc, &f};
        dev_opts o = {0};
        o.alloc = &a;
        sp_dev *dev = NULL;
        sp_diag d = {0};
        int rc = dev_open(&o, &dev, &d);
        assert_true(rc == SP_OK || rc == SP_ENOMEM);
        if (rc == SP_OK) {
            cl_kernel k;
            rc = dev_kernel(dev, "selftest.cl", "selftest_vadd", &k, &d);
            assert_true(rc == SP_OK || rc == SP_ENOMEM);
            if (rc == SP_OK) {
                dev_buf b;
                rc = dev_buf_alloc(dev, 64, &b, &d);
                assert_int_equal(rc, SP_OK);
                dev_buf_release(&b);
            }
            dev_close(dev);
        } else {
            assert_null(dev);
        }
        done = !f.failed; /* a whole run without reaching the failure */
    }
    assert_true(done);
    assert_true(nth > 10); /* the loop did fail allocations along the way */
    fprintf(stderr, "alloc failures: %ld allocation sites failed in turn\n", nth - 1);
}

int main(void)
{
    dev_info *in = NULL;
    size_t n = 0;
    sp_diag d = {0};
    if (dev_enumerate(NULL, &in, &n, &d) != SP_OK) {
        fprintf(stderr, "test_device: skipped: %s\n", d.msg);
        return 77;
    }
    free(in);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_cache), /* first: its cold build is the process's first */
        cmocka_unit_test(test_enumerate),
        cmocka_unit_test(test_selectors),
        cmocka_unit_test(test_vadd_both_strategies),
        cmocka_unit_test(test_strategy_defines),
        cmocka_unit_test(test_broken_build),
        cmocka_unit_test(test_fail_hook),
        cmocka_unit_test(test_kernel_errors),
        cmocka_unit_test(test_mem_limits),
        cmocka_unit_test(test_zero_copy),
        cmocka_unit_test(test_dev_check),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
