/* layers: util device exec batch ops */
/* test_kscan.c — scan.cl and gather.cl against sequential references, on both kernel
 * strategies: compaction of random, all-zero and all-one flags, exclusive scans of counts,
 * gathers of 1/4/8-byte elements; sizes 0, 1, around the work-group size, and large odd (the
 * largest above what the CPU strategy splits into its maximum number of parts). */
#include "ops/ew_int.h"
#include "support/testutil.h"

#include <stdlib.h>
#include <string.h>

static const size_t sizes[] = {0, 1, 63, 64, 65, 1000, 4097, 100003, 1000003};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static sp_dev *devs[2]; /* CPU strategy, GPU strategy */

static sp_dev *open_dev(int strategy)
{
    dev_opts o = {.selector = NULL, .use_cache = 1, .strategy = strategy};
    sp_dev *dev = NULL;
    sp_diag d = {0};
    if (dev_open(&o, &dev, &d) != SP_OK) {
        fprintf(stderr, "dev_open: %s\n", d.msg);
        return NULL;
    }
    return dev;
}

/* kind 0 random (density varies with the seed), 1 all zero, 2 all one. */
static void fill_flags(uint8_t *f, size_t n, int kind, uint64_t *seed)
{
    uint64_t dens = 1 + tu_rand_below(seed, 9);
    for (size_t i = 0; i < n; i++)
        f[i] = kind == 1   ? 0
               : kind == 2 ? 1
                           : (uint8_t)(tu_rand_below(seed, 10) < dens ? 1 + i % 7 : 0);
}

static void test_compact(void **state)
{
    (void)state;
    uint64_t seed = 42;
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < NSIZES; k++) {
            for (int kind = 0; kind < 3; kind++) {
                size_t n = sizes[k];
                uint8_t *f = malloc(n + 1);
                uint32_t *got = malloc((n + 1) * 4), *want = malloc((n + 1) * 4);
                fill_flags(f, n, kind, &seed);
                size_t cw = 0, cg = 99;
                sp_diag d = {0};
                assert_int_equal(kscan_compact(NULL, f, n, want, &cw, &d), SP_OK);
                int rc = kscan_compact(devs[s], f, n, got, &cg, &d);
                if (rc) fprintf(stderr, "kscan_compact: %s\n", d.msg);
                assert_int_equal(rc, SP_OK);
                assert_int_equal(cg, cw);
                if (kind == 1) assert_int_equal(cg, 0);
                if (kind == 2) assert_int_equal(cg, n);
                if (cw) assert_memory_equal(got, want, cw * 4);
                /* The device passes themselves, also below KSCAN_HOST_MAX. */
                if (n) {
                    dev_buf fb, ib;
                    memset(got, 0, n * 4);
                    cg = 99;
                    assert_int_equal(dev_buf_wrap(devs[s], f, n, DEV_BUF_READ, &fb, &d), SP_OK);
                    assert_int_equal(dev_buf_wrap(devs[s], got, n * 4, DEV_BUF_WRITE, &ib, &d),
                                     SP_OK);
                    assert_int_equal(kscan_compact_buf(devs[s], &fb, n, &ib, &cg, &d), SP_OK);
                    assert_int_equal(dev_buf_sync_host(devs[s], &ib, &d), SP_OK);
                    assert_int_equal(cg, cw);
                    if (cw) assert_memory_equal(got, want, cw * 4);
                    dev_buf_release(&ib);
                    dev_buf_release(&fb);
                }
                free(f);
                free(got);
                free(want);
            }
        }
    }
}

static void test_exclusive(void **state)
{
    (void)state;
    uint64_t seed = 7;
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < NSIZES; k++) {
            for (int kind = 0; kind < 3; kind++) {
                size_t n = sizes[k];
                uint32_t *in = malloc((n + 1) * 4);
                uint64_t *got = malloc((n + 1) * 8), *want = malloc((n + 1) * 8);
                for (size_t i = 0; i < n; i++)
                    in[i] = kind == 1 ? 0
                            : kind == 2
                                ? 1
                                : (uint32_t)(tu_rand(&seed) >> (32 + tu_rand_below(&seed, 32)));
                if (kind == 0 && n > 3) in[n / 2] = UINT32_MAX; /* sums exceed 32 bits */
                sp_diag d = {0};
                assert_int_equal(kscan_exclusive(NULL, in, n, want, &d), SP_OK);
                memset(got, 0xAB, (n + 1) * 8);
                int rc = kscan_exclusive(devs[s], in, n, got, &d);
                if (rc) fprintf(stderr, "kscan_exclusive: %s\n", d.msg);
                assert_int_equal(rc, SP_OK);
                assert_memory_equal(got, want, (n + 1) * 8);
                if (kind == 2) assert_int_equal(got[n], n);
                free(in);
                free(got);
                free(want);
            }
        }
    }
}

static void test_gather(void **state)
{
    (void)state;
    uint64_t seed = 99;
    static const size_t widths[] = {1, 4, 8};
    for (int s = 0; s < 2; s++) {
        for (size_t k = 0; k < NSIZES; k++) {
            for (int w = 0; w < 3; w++) {
                size_t n = sizes[k], width = widths[w], m = n ? tu_rand_below(&seed, n + 1) : 0;
                unsigned char *src = malloc(n * width + 1), *dst = malloc(m * width + 1);
                uint32_t *idx = malloc(m * 4 + 4);
                for (size_t i = 0; i < n * width; i++)
                    src[i] = (unsigned char)tu_rand(&seed);
                for (size_t i = 0; i < m; i++)
                    idx[i] = (uint32_t)tu_rand_below(&seed, n);
                sp_diag d = {0};
                dev_buf bs, bi, bd;
                sp_dev *dev = devs[s];
                assert_int_equal(dev_buf_wrap(dev, src, n * width, DEV_BUF_READ, &bs, &d), 0);
                assert_int_equal(dev_buf_wrap(dev, idx, m * 4, DEV_BUF_READ, &bi, &d), 0);
                assert_int_equal(dev_buf_wrap(dev, dst, m * width, DEV_BUF_WRITE, &bd, &d), 0);
                int rc = kscan_gather(dev, &bs, width, &bi, m, &bd, &d);
                if (rc) fprintf(stderr, "kscan_gather: %s\n", d.msg);
                assert_int_equal(rc, SP_OK);
                if (m) assert_int_equal(dev_buf_sync_host(dev, &bd, &d), SP_OK);
                for (size_t i = 0; i < m; i++)
                    assert_memory_equal(dst + i * width, src + idx[i] * width, width);
                dev_buf_release(&bs);
                dev_buf_release(&bi);
                dev_buf_release(&bd);
                free(src);
                free(dst);
                free(idx);
            }
        }
    }
}

int main(void)
{
    devs[0] = open_dev(DEV_STRATEGY_CPU);
    devs[1] = open_dev(DEV_STRATEGY_GPU);
    if (!devs[0] || !devs[1]) {
        fprintf(stderr, "test_kscan: skipped: no OpenCL device\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_exclusive),
        cmocka_unit_test(test_gather),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    dev_close(devs[0]);
    dev_close(devs[1]);
    return rc;
}
