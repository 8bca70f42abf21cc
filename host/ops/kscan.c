/* kscan.c — prefix sums, compaction and gathers on the device (scan.cl, gather.cl), with
 * sequential fallbacks when there is no device.
 *
 * Shapes. CPU strategy: P = gws contiguous chunks, at least ~256 elements per work-item and
 * at most dev_groups() work-groups, so POCL runs one chunk per loop iteration of a thread.
 * Pass 1 counts each chunk; the host reads the P counts back, scans them (P is at most a few
 * thousand) and pass 3 writes each chunk from its offset, branch-free. GPU strategy: P =
 * work-groups, each a tile of lws * items elements, items chosen so that about dev_groups()
 * groups cover n; the totals pass (P + 1 ulongs) is one work-group and the three passes are
 * queued back to back. Cost: input read twice, output written once; on the CPU strategy one
 * wait for the counts in the middle (tens of microseconds on POCL). */
#include "ops/ew_int.h"

#include <string.h>

typedef struct ks_shape {
    size_t gws, lws, parts;
    cl_ulong items;
} ks_shape;

static void ks_shape_for(sp_dev *dev, size_t n, ks_shape *s)
{
    size_t wg = dev_wg_size(dev), groups = dev_groups(dev);
    s->lws = wg;
    if (dev_strategy(dev) == DEV_STRATEGY_GPU) {
        size_t items = (n + wg * groups - 1) / (wg * groups);
        s->items = items ? items : 1;
        size_t g = (n + wg * s->items - 1) / (wg * s->items);
        s->parts = g ? g : 1;
        s->gws = s->parts * wg;
    } else {
        size_t g = (n + wg * 256 - 1) / (wg * 256);
        g = g < 1 ? 1 : g > groups ? groups : g;
        s->items = 1;
        s->gws = g * wg;
        s->parts = s->gws;
    }
}

static int ks_arg(cl_kernel k, cl_uint i, size_t size, const void *v, sp_diag *d)
{
    return dev_check(clSetKernelArg(k, i, size, v), "clSetKernelArg (scan)", d);
}

/* A read-only device buffer holding a copy of host memory, made without a queue command
 * (CL_MEM_COPY_HOST_PTR): the host memory may be freed at once. */
static int ks_buf_copy(sp_dev *dev, const void *host, size_t bytes, dev_buf *b, sp_diag *d)
{
    cl_int err;
    memset(b, 0, sizeof *b);
    b->mem = clCreateBuffer(dev_context(dev), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes,
                            (void *)host, &err);
    b->bytes = bytes;
    return dev_check(err, "clCreateBuffer (scan offsets)", d);
}

/* Passes 1-3 of scan.cl; `count_k`/`write_k` name the input's kernels. On success *total is
 * the grand total; the write pass may still be running (the caller syncs `out`). */
static int ks_run(sp_dev *dev, const char *count_k, const char *write_k, const dev_buf *in,
                  size_t n, dev_buf *out, size_t *total, sp_diag *d)
{
    ks_shape s;
    ks_shape_for(dev, n, &s);
    cl_kernel kc, kt = NULL, kw;
    int rc;
    int gpu = dev_strategy(dev) == DEV_STRATEGY_GPU;
    if ((rc = dev_kernel(dev, "scan.cl", count_k, &kc, d)) ||
        (gpu && (rc = dev_kernel(dev, "scan.cl", "scan_totals", &kt, d))) ||
        (rc = dev_kernel(dev, "scan.cl", write_k, &kw, d)))
        return rc;
    dev_buf totals = {0}, offs = {0};
    cl_ulong *scan = NULL;
    size_t local = (gpu ? s.lws : 1) * sizeof(cl_ulong);
    cl_ulong nn = n, np = s.parts, sum = 0;
    if ((rc = dev_buf_alloc(dev, (s.parts + 1) * sizeof(cl_ulong), &totals, d))) return rc;
    if (!gpu && !(scan = mem_alloc(NULL, (s.parts + 1) * sizeof *scan))) {
        rc = diag_set(d, SP_ENOMEM, "scan: out of memory");
        goto out;
    }
    if ((rc = ks_arg(kc, 0, sizeof(cl_mem), &in->mem, d)) ||
        (rc = ks_arg(kc, 1, sizeof nn, &nn, d)) ||
        (rc = ks_arg(kc, 2, sizeof s.items, &s.items, d)) ||
        (rc = ks_arg(kc, 3, sizeof(cl_mem), &totals.mem, d)) ||
        (rc = ks_arg(kc, 4, local, NULL, d)) ||
        (rc = dev_launch(dev, kc, s.gws, s.lws, count_k, d)))
        goto out;
    const dev_buf *woffs = &totals;
    if (gpu) {
        if ((rc = ks_arg(kt, 0, sizeof(cl_mem), &totals.mem, d)) ||
            (rc = ks_arg(kt, 1, sizeof np, &np, d)) || (rc = ks_arg(kt, 2, local, NULL, d)) ||
            (rc = dev_launch(dev, kt, s.lws, s.lws, "scan_totals", d)))
            goto out;
    } else {
        /* The counts back (one wait), scanned here, copied for the write pass. */
        if ((rc = dev_buf_read(dev, &totals, 0, scan, s.parts * sizeof *scan, d))) goto out;
        cl_ulong run = 0;
        for (size_t p = 0; p < s.parts; p++) {
            cl_ulong v = scan[p];
            scan[p] = run;
            run += v;
        }
        scan[s.parts] = sum = run;
        if ((rc = ks_buf_copy(dev, scan, (s.parts + 1) * sizeof *scan, &offs, d))) goto out;
        woffs = &offs;
    }
    if ((rc = ks_arg(kw, 0, sizeof(cl_mem), &in->mem, d)) ||
        (rc = ks_arg(kw, 1, sizeof nn, &nn, d)) ||
        (rc = ks_arg(kw, 2, sizeof s.items, &s.items, d)) ||
        (rc = ks_arg(kw, 3, sizeof(cl_mem), &woffs->mem, d)) ||
        (rc = ks_arg(kw, 4, sizeof(cl_mem), &out->mem, d)) ||
        (rc = ks_arg(kw, 5, local, NULL, d)) ||
        (rc = dev_launch(dev, kw, s.gws, s.lws, write_k, d)))
        goto out;
    if (gpu) rc = dev_buf_read(dev, &totals, s.parts * sizeof(cl_ulong), &sum, sizeof sum, d);
    *total = (size_t)sum;
out:
    dev_buf_release(&totals);
    dev_buf_release(&offs);
    mem_free(NULL, scan);
    return rc;
}

/* dev_buf_sync_host with one wait instead of two (map and unmap queued together). */
static int ks_sync(sp_dev *dev, dev_buf *b, sp_diag *d)
{
    if (!b->zero_copy || !b->bytes) return dev_buf_sync_host(dev, b, d);
    cl_command_queue q = dev_queue(dev);
    cl_int err;
    void *p =
        clEnqueueMapBuffer(q, b->mem, CL_FALSE, CL_MAP_READ, 0, b->bytes, 0, NULL, NULL, &err);
    if (err == CL_SUCCESS) err = clEnqueueUnmapMemObject(q, b->mem, p, 0, NULL, NULL);
    cl_int fin = clFinish(q);
    return dev_check(err != CL_SUCCESS ? err : fin, "making scan results visible", d);
}

int kscan_compact_buf(sp_dev *dev, const dev_buf *flags, size_t n, dev_buf *idx, size_t *count,
                      sp_diag *d)
{
    SP_CHECK(d, dev && flags && idx && count, SP_EINVAL, "kscan_compact: NULL argument");
    SP_CHECK(d, n < UINT32_MAX, SP_EINVAL, "kscan_compact: %zu rows exceed u32 indices", n);
    *count = 0;
    if (n == 0) return SP_OK;
    return ks_run(dev, "scan_count_flags", "scan_write_flags", flags, n, idx, count, d);
}

int kscan_compact(sp_dev *dev, const uint8_t *flags, size_t n, uint32_t *out_idx, size_t *count,
                  sp_diag *d)
{
    SP_CHECK(d, (flags && out_idx && count) || n == 0, SP_EINVAL, "kscan_compact: NULL argument");
    if (count) *count = 0;
    if (n == 0) return SP_OK;
    if (!dev || n <= KSCAN_HOST_MAX) {
        /* Branch-free: the store is unconditional, the position advances by the flag; out_idx
         * has room for n entries, so the store after the last set flag stays inside. */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            out_idx[k] = (uint32_t)i;
            k += flags[i] != 0;
        }
        *count = k;
        return SP_OK;
    }
    dev_buf fb, ib;
    int rc = dev_buf_wrap(dev, (void *)flags, n, DEV_BUF_READ, &fb, d);
    if (rc) return rc;
    if ((rc = dev_buf_wrap(dev, out_idx, n * sizeof *out_idx, DEV_BUF_WRITE, &ib, d))) goto out_f;
    if (!(rc = kscan_compact_buf(dev, &fb, n, &ib, count, d))) rc = ks_sync(dev, &ib, d);
    dev_buf_release(&ib);
out_f:
    dev_buf_release(&fb);
    return rc;
}

int kscan_exclusive(sp_dev *dev, const uint32_t *in, size_t n, uint64_t *out, sp_diag *d)
{
    SP_CHECK(d, (in || n == 0) && out, SP_EINVAL, "kscan_exclusive: NULL argument");
    if (n == 0 || !dev) {
        uint64_t run = 0;
        for (size_t i = 0; i < n; i++) {
            out[i] = run;
            run += in[i];
        }
        out[n] = run;
        return SP_OK;
    }
    dev_buf ib, ob;
    size_t total;
    int rc = dev_buf_wrap(dev, (void *)in, n * sizeof *in, DEV_BUF_READ, &ib, d);
    if (rc) return rc;
    if ((rc = dev_buf_wrap(dev, out, (n + 1) * sizeof *out, DEV_BUF_WRITE, &ob, d))) goto out_i;
    if (!(rc = ks_run(dev, "scan_count_u32", "scan_write_u32", &ib, n, &ob, &total, d)))
        rc = ks_sync(dev, &ob, d);
    dev_buf_release(&ob);
out_i:
    dev_buf_release(&ib);
    return rc;
}

int kscan_gather(sp_dev *dev, const dev_buf *src, size_t width, const dev_buf *idx, size_t n,
                 dev_buf *dst, sp_diag *d)
{
    SP_CHECK(d, dev && src && idx && dst, SP_EINVAL, "kscan_gather: NULL argument");
    const char *name = width == 1 ? "gather_u8" : width == 4 ? "gather_u32" : "gather_u64";
    SP_CHECK(d, width == 1 || width == 4 || width == 8, SP_EINVAL,
             "kscan_gather: element width %zu is not 1, 4 or 8", width);
    if (n == 0) return SP_OK;
    cl_kernel k;
    int rc = dev_kernel(dev, "gather.cl", name, &k, d);
    if (rc) return rc;
    size_t lws = dev_wg_size(dev), gws;
    if (dev_strategy(dev) == DEV_STRATEGY_GPU) {
        gws = (n + lws - 1) / lws * lws;
    } else {
        size_t g = (n + lws * 256 - 1) / (lws * 256);
        g = g > dev_groups(dev) ? dev_groups(dev) : g;
        gws = g * lws;
    }
    cl_ulong nn = n;
    if ((rc = ks_arg(k, 0, sizeof(cl_mem), &src->mem, d)) ||
        (rc = ks_arg(k, 1, sizeof(cl_mem), &idx->mem, d)) ||
        (rc = ks_arg(k, 2, sizeof nn, &nn, d)) || (rc = ks_arg(k, 3, sizeof(cl_mem), &dst->mem, d)))
        return rc;
    return dev_launch(dev, k, gws, lws, name, d);
}
