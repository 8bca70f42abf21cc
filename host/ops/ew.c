/* ew.c — element-wise stages: a chain of map / filter / mapValues run as generated kernels
 * (codegen.c) or, when a step needs string bytes, on the executors with the host evaluator.
 *
 * Device path, CPU strategy (POCL and other CPU devices), per batch: the input columns the
 * kernels read are wrapped zero-copy and cut into contiguous chunks, one per work-item, whose
 * boundaries include every partition start. With a filter, ew_count counts each chunk's kept
 * rows (no stores but one count per chunk); the host reads the counts, scans them, sizes the
 * output columns exactly and ew_write evaluates the chain again, storing the kept rows of
 * each chunk at its offset: two passes over the input, no flags, no gather, no scan kernels.
 * Without a filter ew_write is the only pass. Cost: two launches, one small blocking read
 * and one small write per batch; the input is read twice with a filter.
 *
 * Device path, GPU strategy: the kernel writes every output column at the row's own index
 * plus a keep flag per row; the flags are compacted (kscan_compact_buf, work-group scans) and
 * each output column gathered into the dense output batch.
 *
 * Output partitions follow the input's: partition p of the output holds the surviving rows of
 * input partition p, on the same node.
 *
 * Host path: one executor task per input partition evaluates its rows in order into its own
 * batch; the parts are then appended in partition order, so row order is the input's minus
 * the filtered rows. Errors report the smallest failing row of the first failing partition;
 * with skipping on (ew_stage_set_on_error) a failing row is reported and left out. */
#include "ops/ew_int.h"

#include <stdlib.h>
#include <string.h>

/* Batches of fewer rows run on the host, serially (see ew_stage_run): a launch, a blocking
 * read and waking the device's threads cost more than a few hundred rows of work. The device
 * tunable DEV_TUNE_EW_HOST_BELOW overrides it (tests set 1 to check kernels on tiny sizes). */
enum { EW_SMALL_ROWS = 256 };

static size_t ew_small_rows(const sp_dev *dev)
{
    size_t v = dev ? dev_get_tunable(dev, DEV_TUNE_EW_HOST_BELOW) : 0;
    return v ? v : EW_SMALL_ROWS;
}

struct ew_stage {
    sp_dev *dev;
    batch_env *env;
    const sp_allocator *a;
    char *name;
    sp_td *in_td, *out_td;
    int nsteps;
    ew_step *steps;
    expr_typed **typed; /* per step, for the host evaluator */
    int on_device;
    char why_host[sizeof(((sp_diag *)0)->msg)]; /* why the stage runs on the host */
    ew_code code;
    cl_program prog;
    cl_kernel kern;      /* GPU strategy: ew_stage; CPU strategy: ew_eval */
    cl_kernel kern_pack; /* CPU strategy with a filter: ew_pack */
    int skip;            /* rows failing at run time are rejected, not errors */
    int (*reject)(void *ud, size_t row, const char *reason);
    void *reject_ud;
};

void ew_stage_set_on_error(ew_stage *st, int skip,
                           int (*reject)(void *ud, size_t row, const char *reason), void *ud)
{
    st->skip = skip != 0;
    st->reject = reject;
    st->reject_ud = ud;
}

const sp_td *ew_stage_type(const ew_stage *st)
{
    return st->out_td;
}

int ew_stage_on_device(const ew_stage *st)
{
    return st->on_device;
}

void ew_stage_free(ew_stage *st)
{
    if (!st) return;
    const sp_allocator *a = st->a;
    if (st->kern) clReleaseKernel(st->kern);
    if (st->kern_pack) clReleaseKernel(st->kern_pack);
    if (st->prog) clReleaseProgram(st->prog);
    ew_code_free(a, &st->code);
    if (st->typed)
        for (int s = 0; s < st->nsteps; s++)
            expr_typed_free(a, st->typed[s]);
    mem_free(a, st->typed);
    mem_free(a, st->steps);
    td_free(a, st->in_td);
    td_free(a, st->out_td);
    mem_free(a, st->name);
    mem_free(a, st);
}

static const char *ew_type_text(const sp_allocator *a, const sp_td *t, char *buf, size_t size)
{
    strbuf sb;
    sb_init(&sb, a);
    td_format(t, &sb);
    snprintf(buf, size, "%s", sb.len && !sb.oom ? sb.s : "?");
    sb_free(&sb);
    return buf;
}

/* "L:C: " of a node, or "". */
static const char *ew_pos(const sp_expr *e, char *buf, size_t size)
{
    if (e && e->line > 0)
        snprintf(buf, size, "%d:%d: ", e->line, e->col);
    else
        buf[0] = '\0';
    return buf;
}

/* Type-checks the chain; st->out_td receives the output type. */
static int ew_typecheck(ew_stage *st, sp_diag *d)
{
    const sp_allocator *a = st->a;
    sp_td *cur = td_copy(a, st->in_td);
    if (!cur) return diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
    char tb[256], pb[32];
    int rc = SP_OK;
    for (int s = 0; s < st->nsteps && !rc; s++) {
        const ew_step *step = &st->steps[s];
        int mv = step->kind == EW_MAP_VALUES;
        if (!step->body) {
            rc = diag_set(d, SP_EINVAL, "%s: step %d has no lambda", st->name, s + 1);
            break;
        }
        if (mv && (cur->kind != TD_TUPLE || cur->n != 2)) {
            rc = diag_set(d, SP_ETYPE, "%smapValues needs a (K,V) element, got %s",
                          ew_pos(step->body, pb, sizeof pb), ew_type_text(a, cur, tb, sizeof tb));
            break;
        }
        if ((rc = expr_compile(step->body, a, mv ? cur->child[1] : cur, NULL, &st->typed[s], d)))
            break;
        const sp_td *bt = st->typed[s]->td;
        if (step->kind == EW_FILTER) {
            if (bt->kind != TD_LEAF || bt->leaf != SP_BOOL)
                rc =
                    diag_set(d, SP_ETYPE, "%sfilter needs a bool, got %s",
                             ew_pos(step->body, pb, sizeof pb), ew_type_text(a, bt, tb, sizeof tb));
            continue;
        }
        sp_td *nt;
        if (mv) {
            sp_td *k = td_copy(a, cur->child[0]), *v = td_copy(a, bt);
            nt = k && v ? td_tuple2(a, k, v) : NULL;
            if (!nt) {
                td_free(a, k);
                td_free(a, v);
            }
        } else {
            nt = td_copy(a, bt);
        }
        if (!nt) {
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
            break;
        }
        td_layout(nt, 0);
        td_free(a, cur);
        cur = nt;
    }
    if (rc) {
        td_free(a, cur);
        return rc;
    }
    st->out_td = cur;
    return SP_OK;
}

int ew_stage_new(sp_dev *dev, batch_env *env, const sp_td *in, int nsteps, const ew_step *steps,
                 const char *name, ew_stage **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, env && in && (steps || nsteps == 0) && nsteps >= 0, SP_EINVAL,
             "ew_stage_new: bad argument");
    const sp_allocator *a = env->alloc;
    ew_stage *st = mem_calloc(a, 1, sizeof *st);
    if (!st) return diag_set(d, SP_ENOMEM, "ew_stage_new: out of memory");
    st->a = a;
    st->dev = dev;
    st->env = env;
    st->nsteps = nsteps;
    st->name = mem_strdup(a, name ? name : "stage");
    st->in_td = td_copy(a, in);
    st->steps = mem_calloc(a, (size_t)(nsteps ? nsteps : 1), sizeof *st->steps);
    st->typed = mem_calloc(a, (size_t)(nsteps ? nsteps : 1), sizeof *st->typed);
    int rc;
    if (!st->name || !st->in_td || !st->steps || !st->typed) {
        rc = diag_set(d, SP_ENOMEM, "ew_stage_new: out of memory");
        goto fail;
    }
    td_layout(st->in_td, 0);
    if (nsteps) memcpy(st->steps, steps, (size_t)nsteps * sizeof *steps);
    char tb[256];
    if ((rc = ew_typecheck(st, d))) goto fail;
    if (!td_is_flat(st->out_td)) {
        rc = diag_set(d, SP_EUNSUPPORTED, "%s: the result %s has an Option or a Seq inside",
                      st->name, ew_type_text(a, st->out_td, tb, sizeof tb));
        goto fail;
    }
    if (!td_is_flat(st->in_td)) {
        /* Grouped values (lists) and joined options: read by the host evaluator. */
        snprintf(st->why_host, sizeof st->why_host, "the input %s has an Option or a Seq inside",
                 ew_type_text(a, st->in_td, tb, sizeof tb));
        *out = st;
        return SP_OK;
    }
    if (!dev) {
        snprintf(st->why_host, sizeof st->why_host, "no device");
        *out = st;
        return SP_OK;
    }
    sp_diag cd = {0};
    rc = ew_codegen(a, env->dict, st->in_td, nsteps, st->steps, st->out_td, dev_strategy(dev),
                    st->name, &st->code, &cd);
    if (rc == SP_EUNSUPPORTED) {
        memcpy(st->why_host, cd.msg, sizeof st->why_host);
        *out = st;
        return SP_OK;
    }
    if (rc) {
        diag_set(d, rc, "%s", cd.msg);
        goto fail;
    }
    char pname[300];
    snprintf(pname, sizeof pname, "%s (generated)", st->name);
    if ((rc = dev_build(dev, pname, st->code.src.s, NULL, &st->prog, d))) goto fail;
    cl_int err;
    st->kern = clCreateKernel(st->prog, st->code.cpu ? "ew_eval" : "ew_stage", &err);
    if ((rc = dev_check(err, "clCreateKernel (ew_stage)", d))) goto fail;
    if (st->code.cpu && st->code.has_filter) {
        st->kern_pack = clCreateKernel(st->prog, "ew_pack", &err);
        if ((rc = dev_check(err, "clCreateKernel (ew_pack)", d))) goto fail;
    }
    st->on_device = 1;
    *out = st;
    return SP_OK;
fail:
    ew_stage_free(st);
    return rc;
}

void ew_stage_explain(const ew_stage *st, strbuf *sb)
{
    if (!st->on_device) {
        sb_printf(sb, "%s: host (%s)\n", st->name, st->why_host);
        return;
    }
    sb_printf(sb, "%s: device, %s strategy, %s:\n", st->name, st->code.cpu ? "CPU" : "GPU",
              !st->code.cpu         ? "kernel ew_stage"
              : st->code.has_filter ? "kernels ew_eval then ew_pack"
                                    : "kernel ew_eval");
    sb_add(sb, st->code.src.s, st->code.src.len);
}

/* ---------------------------------------------------------------------------------- host */

typedef struct ew_host {
    ew_stage *st;
    const sp_batch *in;
    sp_batch **parts;
    sp_diag *diags;
} ew_host;

/* The chain over one value; *keep 0 when a filter drops it. */
static int ew_host_row(ew_stage *st, expr_scratch *s, expr_val *v, int *keep, sp_diag *d)
{
    *keep = 1;
    for (int k = 0; k < st->nsteps; k++) {
        const ew_step *step = &st->steps[k];
        expr_val r;
        int mv = step->kind == EW_MAP_VALUES;
        int rc = expr_eval(st->typed[k], mv ? &v->u.items[1] : v, s, &r, d);
        if (rc) return rc;
        if (step->kind == EW_FILTER) {
            if (!r.u.i) {
                *keep = 0;
                return SP_OK;
            }
        } else if (mv) {
            expr_val *items = expr_scratch_alloc(s, 2 * sizeof *items);
            if (!items) return diag_set(d, SP_ENOMEM, "out of memory");
            items[0] = v->u.items[0];
            items[1] = r;
            *v = (expr_val){.t = SP_TYPE_COUNT, .n = 2, .u.items = items};
        } else {
            *v = r;
        }
    }
    return SP_OK;
}

/* Reports row r of `in`, which failed with d's message, to the stage's reject callback and
 * clears d. The callback's non-zero status fails the run. */
static int ew_reject(ew_stage *st, const sp_batch *in, size_t r, sp_diag *d)
{
    if (!st->reject) {
        diag_clear(d);
        return SP_OK;
    }
    strbuf sb;
    sb_init(&sb, st->a);
    sb_printf(&sb, "%s: ", d->msg);
    batch_format_row(in, r, &sb);
    int rc = sb.oom ? SP_ENOMEM : st->reject(st->reject_ud, r, sb.s);
    sb_free(&sb);
    diag_clear(d);
    if (rc) return diag_set(d, rc, "%s: cannot report the rejected row %zu", st->name, r);
    return SP_OK;
}

static int ew_host_part(void *ud, size_t p, unsigned worker)
{
    (void)worker;
    ew_host *h = ud;
    ew_stage *st = h->st;
    const sp_batch *in = h->in;
    sp_diag *d = &h->diags[p];
    /* The last partition runs to n: producers that append rows after batch_new (host keyed
     * operators) may leave the table's end behind. */
    size_t lo, hi;
    batch_part_range(in, p, &lo, &hi);
    sp_batch *b = NULL;
    int rc = batch_new(st->env, st->out_td, in->time_ms, &b, d);
    if (rc) return rc;
    h->parts[p] = b;
    expr_scratch s;
    expr_scratch_init(&s, st->a);
    size_t count = 0;
    for (size_t r = lo; r < hi && !rc; r++) {
        expr_val v;
        int keep;
        expr_scratch_reset(&s);
        if ((rc = expr_val_load(in, st->in_td, 0, r, &s, &v))) {
            rc = diag_set(d, rc, "%s: cannot read row %zu", st->name, r);
            break;
        }
        if ((rc = ew_host_row(st, &s, &v, &keep, d))) {
            diag_prefix(d, "%s", st->name);
            if (rc == SP_ERUNTIME) {
                size_t l = strlen(d->msg);
                snprintf(d->msg + l, sizeof d->msg - l, " at row %zu", r);
                if (st->skip) {
                    rc = ew_reject(st, in, r, d);
                    continue;
                }
            }
            break;
        }
        if (!keep) continue;
        int w = expr_val_push(&v, b->cols, st->env->dict);
        if (w < 0) {
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory writing row %zu", st->name, r);
            break;
        }
        count++;
    }
    expr_scratch_free(&s);
    if (!rc) {
        b->n = count;
        size_t start[2] = {0, count};
        unsigned node = in->part_node[p];
        if (batch_set_parts(b, 1, start, &node))
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
    }
    return rc;
}

static int ew_host_task(void *ud, size_t p, unsigned worker)
{
    ew_host_part(ud, p, worker); /* the error stays in diags[p] */
    return 0;
}

static int ew_run_host(ew_stage *st, sp_exec *exec, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    const sp_allocator *a = st->a;
    unsigned np = in->nparts;
    ew_host h = {st, in, mem_calloc(a, np, sizeof(sp_batch *)), mem_calloc(a, np, sizeof(sp_diag))};
    size_t *start = mem_calloc(a, np + 1, sizeof *start);
    sp_batch *res = NULL;
    int rc = SP_OK;
    if (!h.parts || !h.diags || !start) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    /* Every partition runs to its own first error (a failing task must not make the pool skip
     * earlier partitions: the error reported is the smallest failing row). */
    if (exec && np > 1 && in->n >= EW_SMALL_ROWS) {
        exec_run(exec, np, in->part_node, ew_host_task, &h);
    } else {
        for (unsigned p = 0; p < np; p++)
            if (ew_host_part(&h, p, 0)) break;
    }
    for (unsigned p = 0; p < np; p++) {
        if (h.diags[p].code) {
            rc = h.diags[p].code;
            if (d) *d = h.diags[p];
            goto out;
        }
    }
    if ((rc = batch_new(st->env, st->out_td, in->time_ms, &res, d))) goto out;
    for (unsigned p = 0; p < np; p++) {
        if ((rc = batch_append(res, h.parts[p], d))) goto out;
        start[p + 1] = res->n;
    }
    if (batch_set_parts(res, np, start, in->part_node)) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    *out = res;
    res = NULL;
out:
    if (h.parts)
        for (unsigned p = 0; p < np; p++)
            batch_release(h.parts[p]);
    batch_release(res);
    mem_free(a, h.parts);
    mem_free(a, h.diags);
    mem_free(a, start);
    return rc;
}

/* -------------------------------------------------------------------------------- device */

static int ew_arg(ew_stage *st, cl_uint i, size_t size, const void *v, sp_diag *d)
{
    return dev_check(clSetKernelArg(st->kern, i, size, v), "clSetKernelArg (ew_stage)", d);
}

/* First index of idx[0..n) >= v (idx ascending). */
static size_t ew_lower_bound(const uint32_t *idx, size_t n, size_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The first integer division or remainder in e with a script position (for messages). */
static int ew_is_div(const sp_expr *e)
{
    return e->kind == EX_BINOP && (e->op == SP_OP_DIV || e->op == SP_OP_MOD) && e->line > 0;
}

/* The first division with a position in t, in preorder. A chain through left operands
 * (expr_typed.spine) is walked in loops in the same order; the rest of the tree is type
 * checked, so its nesting is bounded. */
static const sp_expr *ew_find_div(const expr_typed *t)
{
    if (!t) return NULL;
    if (t->nspine) {
        for (int i = t->nspine - 1; i >= 0; i--)
            if (ew_is_div(t->spine[i]->e)) return t->spine[i]->e;
        const sp_expr *r = ew_find_div(t->spine[0]->kids[0]);
        for (int i = 0; !r && i < t->nspine; i++)
            r = ew_find_div(t->spine[i]->kids[1]);
        return r;
    }
    if (ew_is_div(t->e)) return t->e;
    for (int i = 0; i < t->n; i++) {
        const sp_expr *r = ew_find_div(t->kids[i]);
        if (r) return r;
    }
    return NULL;
}

static int ew_div_error(ew_stage *st, size_t row, sp_diag *d)
{
    char pb[32] = "";
    const sp_expr *dz = NULL;
    for (int k = 0; k < st->nsteps && !dz; k++)
        dz = ew_find_div(st->typed[k]);
    return diag_set(d, SP_ERUNTIME, "%s: %sdivision by zero at row %zu", st->name,
                    ew_pos(dz, pb, sizeof pb), row);
}

/* ---------------------------------------------------------------------- device, CPU strategy */
/* Chunk boundaries for n rows: an even split into about `want` chunks merged with the
 * partition starts of `in`, padded with empty chunks to a multiple of lws. b receives nb + 1
 * boundaries (nb = the chunk count returned through *nb), pstart[p] the chunk index where
 * partition p starts (pstart[nparts] = nb). b has room for want + nparts + lws + 1 entries. */
static void ew_bounds(const sp_batch *in, size_t want, size_t lws, cl_ulong *b, size_t *nb,
                      size_t *pchunk)
{
    size_t n = in->n, k = 0, e = 0;
    unsigned p = 0;
    /* Merge the even split points e * n / want (e <= want) with part_start[0..nparts). */
    while (e <= want || p < in->nparts) {
        size_t ev = e <= want ? n / want * e + n % want * e / want : SIZE_MAX;
        size_t pv = SIZE_MAX, phi;
        if (p < in->nparts) batch_part_range(in, p, &pv, &phi);
        size_t v = ev < pv ? ev : pv;
        if (!k || b[k - 1] != v) b[k++] = v;
        if (pv == v && p < in->nparts) pchunk[p++] = k - 1;
        if (ev == v) e++;
    }
    size_t chunks = k - 1, padded = (chunks + lws - 1) / lws * lws;
    for (; k <= padded; k++)
        b[k] = n;
    *nb = padded;
    pchunk[in->nparts] = chunks;
}

static int ew_args(cl_kernel k, cl_uint *arg, const dev_buf *bufs, int nbufs, sp_diag *d)
{
    for (int j = 0; j < nbufs; j++) {
        int rc = dev_check(clSetKernelArg(k, (*arg)++, sizeof(cl_mem), &bufs[j].mem),
                           "clSetKernelArg (ew_stage)", d);
        if (rc) return rc;
    }
    return SP_OK;
}

/* First failing row in stats[nb .. 2nb), or UINT64_MAX. */
static cl_ulong ew_first_failure(const cl_ulong *stats, size_t nb)
{
    cl_ulong first = UINT64_MAX;
    for (size_t c = 0; c < nb; c++)
        first = stats[nb + c] < first ? stats[nb + c] : first;
    return first;
}

/* Makes the device's writes to bufs[0..nbufs) visible in their host memory and, when dst is
 * not NULL, reads `bytes` of `rd` into dst: every command enqueued at once, then one wait (a
 * wait costs tens of microseconds on POCL; one per buffer would dominate small batches). */
static int ew_sync(sp_dev *dev, dev_buf *bufs, int nbufs, const dev_buf *rd, void *dst,
                   size_t bytes, sp_diag *d)
{
    cl_command_queue q = dev_queue(dev);
    cl_int err = CL_SUCCESS;
    if (dst) err = clEnqueueReadBuffer(q, rd->mem, CL_FALSE, 0, bytes, dst, 0, NULL, NULL);
    for (int j = 0; j < nbufs && err == CL_SUCCESS; j++) {
        dev_buf *b = &bufs[j];
        if (!b->mem || !b->bytes || !b->host) continue;
        if (!b->zero_copy) {
            err = clEnqueueReadBuffer(q, b->mem, CL_FALSE, 0, b->bytes, b->host, 0, NULL, NULL);
            continue;
        }
        /* OpenCL 1.2 5.4.3: USE_HOST_PTR memory holds the device's writes after a map. */
        void *p =
            clEnqueueMapBuffer(q, b->mem, CL_FALSE, CL_MAP_READ, 0, b->bytes, 0, NULL, NULL, &err);
        if (err == CL_SUCCESS) err = clEnqueueUnmapMemObject(q, b->mem, p, 0, NULL, NULL);
    }
    cl_int fin = clFinish(q);
    return dev_check(err != CL_SUCCESS ? err : fin, "making device results visible", d);
}

/* Largest staging (rows x output row bytes) the host packs itself after pass 1: below it
 * a second launch and wait cost more than the copy. */
enum { EW_HOST_PACK_MAX = 4u << 20 };

/* 16 ulongs: 128 bytes, POCL's base alignment for zero-copy buffers. */
static size_t ew_round16(size_t words)
{
    return (words + 15) / 16 * 16;
}

/* CPU strategy: see the file comment. *failed is set (and nothing returned) when rows fail
 * at run time and the stage skips them: the caller runs the batch on the host. */
static int ew_run_cpu(ew_stage *st, const sp_batch *in, sp_batch **outp, int *failed, sp_diag *d)
{
    const sp_allocator *a = st->a;
    sp_dev *dev = st->dev;
    const ew_code *code = &st->code;
    size_t n = in->n, lws = dev_wg_size(dev);
    int nin = code->nin, nout = code->nout, filt = code->has_filter;
    unsigned np = in->nparts;
    size_t want = (n + 255) / 256, cap_chunks = dev_groups(dev) * lws;
    want = want < 1 ? 1 : want > cap_chunks ? cap_chunks : want;
    size_t nb_cap = want + np + lws + 1, nb = 0;
    sp_arena *ar = st->env->arenas[0];
    sp_batch *out = NULL;
    /* input, staging (with a filter) and output buffers; staging blocks and their sizes */
    dev_buf *bufs = mem_calloc(a, (size_t)(nin + 2 * nout), sizeof *bufs);
    void **tmp = mem_calloc(a, (size_t)nout, sizeof *tmp);
    size_t *tmp_cap = mem_calloc(a, (size_t)nout, sizeof *tmp_cap);
    dev_buf *bin = bufs, *btmp = bufs + nin, *bout = bufs + nin + nout;
    dev_buf bbounds = {0}, bstats = {0}, boffs = {0};
    /* bounds (nb_cap), then stats (2 * nb_cap; with a filter stats[0..nb] becomes offs) */
    /* One arena block: bounds (nb_cap + 1), stats (2 * nb_cap, written by ew_eval), host
     * copy of stats whose first nb + 1 words become the offsets (2 * nb_cap). Zero-copy
     * wraps of its parts need no upload. */
    size_t w_bounds = ew_round16(nb_cap + 1), w_stats = ew_round16(2 * nb_cap), meta_cap = 0;
    cl_ulong *meta = arena_get(ar, (w_bounds + 2 * w_stats) * sizeof(cl_ulong), &meta_cap);
    size_t *pchunk = mem_alloc(a, (np + 1) * sizeof *pchunk);
    size_t *start = mem_alloc(a, (np + 1) * sizeof *start);
    int rc;
    if (!bufs || !tmp || !tmp_cap || !meta || !pchunk || !start) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    cl_ulong *bounds = meta, *offs = meta + w_bounds + w_stats;
    if ((rc = batch_new(st->env, st->out_td, in->time_ms, &out, d))) goto out;
    if (n == 0) {
        for (unsigned p = 0; p <= np; p++)
            start[p] = 0;
        goto parts;
    }
    ew_bounds(in, want, lws, bounds, &nb, pchunk);
    for (int j = 0; j < nin; j++) {
        const sp_col *c = &in->cols[code->in_cols[j]];
        if ((rc = dev_buf_wrap(dev, c->data, n * type_width(c->type), DEV_BUF_READ, &bin[j], d)))
            goto out;
    }
    /* Pass 1 writes the output columns directly without a filter, else staging blocks. */
    for (int c = 0; c < nout; c++) {
        sp_col *col = &out->cols[c];
        size_t bytes = n * type_width(col->type);
        void *p;
        if (filt) {
            p = tmp[c] = arena_get(ar, bytes, &tmp_cap[c]);
        } else {
            p = col_reserve(col, n, 0) ? NULL : col->data;
        }
        if (!p) {
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory for %zu rows", st->name, n);
            goto out;
        }
        if ((rc = dev_buf_wrap(dev, p, bytes, filt ? DEV_BUF_RW : DEV_BUF_WRITE, &btmp[c], d)))
            goto out;
    }
    cl_kernel k = st->kern;
    cl_uint arg = 0;
    if ((rc = dev_buf_wrap(dev, bounds, (nb + 1) * sizeof *bounds, DEV_BUF_READ, &bbounds, d)) ||
        (rc = dev_buf_wrap(dev, meta + w_bounds, 2 * nb * sizeof *meta, DEV_BUF_RW, &bstats, d)) ||
        (rc = ew_args(k, &arg, bin, nin, d)) || (rc = ew_args(k, &arg, btmp, nout, d)) ||
        (rc = ew_args(k, &arg, &bbounds, 1, d)) || (rc = ew_args(k, &arg, &bstats, 1, d)) ||
        (rc = dev_launch(dev, k, nb, lws, st->name, d)))
        goto out;
    /* The statistics come back with pass 1's stores (one wait) without a filter, and with a
     * filter when the host packs the staged rows itself; else alone. */
    size_t row_bytes = 0;
    for (int c = 0; c < nout; c++)
        row_bytes += type_width(out->cols[c].type);
    int host_pack = filt && n * row_bytes <= EW_HOST_PACK_MAX;
    if ((rc = ew_sync(dev, btmp, !filt || host_pack ? nout : 0, &bstats, offs,
                      2 * nb * sizeof *offs, d)))
        goto out;
    cl_ulong first = ew_first_failure(offs, nb);
    if (first != UINT64_MAX) {
        if (st->skip)
            *failed = 1;
        else
            rc = ew_div_error(st, (size_t)first, d);
        goto out;
    }
    /* offs[0..nb]: the exclusive scan of the kept counts, each chunk's first output row. */
    cl_ulong run = 0;
    for (size_t c = 0; c < nb; c++) {
        cl_ulong v = offs[c];
        offs[c] = run;
        run += v;
    }
    offs[nb] = run;
    size_t count = (size_t)run;
    if (filt && count) {
        for (int c = 0; c < nout; c++) {
            sp_col *col = &out->cols[c];
            if (col_reserve(col, count, 0)) {
                rc = diag_set(d, SP_ENOMEM, "%s: out of memory for %zu rows", st->name, count);
                goto out;
            }
            if (!host_pack && (rc = dev_buf_wrap(dev, col->data, count * type_width(col->type),
                                                 DEV_BUF_WRITE, &bout[c], d)))
                goto out;
        }
        if (host_pack) {
            for (int c = 0; c < nout; c++) {
                size_t w = type_width(out->cols[c].type);
                char *dst = out->cols[c].data;
                const char *src = tmp[c];
                for (size_t q = 0; q < nb; q++)
                    memcpy(dst + offs[q] * w, src + bounds[q] * w, (offs[q + 1] - offs[q]) * w);
            }
            goto done;
        }
        k = st->kern_pack;
        arg = 0;
        if ((rc = dev_buf_wrap(dev, offs, (nb + 1) * sizeof *offs, DEV_BUF_READ, &boffs, d)) ||
            (rc = ew_args(k, &arg, btmp, nout, d)) || (rc = ew_args(k, &arg, bout, nout, d)) ||
            (rc = ew_args(k, &arg, &bbounds, 1, d)) || (rc = ew_args(k, &arg, &boffs, 1, d)) ||
            (rc = dev_launch(dev, k, nb, lws, st->name, d)) ||
            (rc = ew_sync(dev, bout, nout, NULL, NULL, 0, d)))
            goto out;
    }
done:
    for (int c = 0; c < nout; c++)
        out->cols[c].len = count;
    out->n = count;
    for (unsigned p = 0; p <= np; p++)
        start[p] = (size_t)offs[pchunk[p]];
    start[np] = count;
parts:
    if (batch_set_parts(out, np, start, in->part_node)) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    *outp = out;
    out = NULL;
out:
    if (bufs)
        for (int j = 0; j < nin + 2 * nout; j++)
            dev_buf_release(&bufs[j]);
    dev_buf_release(&bbounds);
    dev_buf_release(&bstats);
    dev_buf_release(&boffs);
    if (rc || *failed) dev_finish(dev, NULL); /* nothing may still write into memory freed */
    if (tmp)
        for (int c = 0; c < nout; c++)
            if (tmp[c]) arena_put(ar, tmp[c], tmp_cap[c]);
    mem_free(a, tmp);
    mem_free(a, tmp_cap);
    mem_free(a, bufs);
    if (meta) arena_put(ar, meta, meta_cap);
    mem_free(a, pchunk);
    mem_free(a, start);
    batch_release(out);
    return rc;
}

/* ---------------------------------------------------------------------- device, GPU strategy */

static int ew_run_gpu(ew_stage *st, const sp_batch *in, sp_batch **outp, int *failed, sp_diag *d)
{
    const sp_allocator *a = st->a;
    sp_dev *dev = st->dev;
    const ew_code *code = &st->code;
    size_t n = in->n, count = n;
    int nin = code->nin, nout = code->nout, filt = code->has_filter;
    sp_arena *ar = st->env->arenas[0];
    sp_batch *out = NULL, *tmp = NULL;
    dev_buf *bufs = mem_calloc(a, (size_t)(nin + 2 * nout), sizeof *bufs);
    dev_buf *bin = bufs, *bmid = bufs + nin, *bout = bufs + nin + nout;
    dev_buf bkeep = {0}, bidx = {0}, berr = {0};
    void *keep = NULL, *idx = NULL;
    size_t keep_cap = 0, idx_cap = 0, *start = NULL;
    int rc;
    if (!bufs) return diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
    if ((rc = batch_new(st->env, st->out_td, in->time_ms, &out, d))) goto out;
    if (n == 0) goto parts;
    if (filt && (rc = batch_new(st->env, st->out_td, in->time_ms, &tmp, d))) goto out;
    sp_batch *mid = filt ? tmp : out;
    for (int c = 0; c < nout; c++) {
        if (col_reserve(&mid->cols[c], n, 0)) {
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory for %zu rows", st->name, n);
            goto out;
        }
    }
    for (int j = 0; j < nin; j++) {
        const sp_col *c = &in->cols[code->in_cols[j]];
        if ((rc = dev_buf_wrap(dev, c->data, n * type_width(c->type), DEV_BUF_READ, &bin[j], d)))
            goto out;
    }
    for (int c = 0; c < nout; c++) {
        sp_col *col = &mid->cols[c];
        if ((rc = dev_buf_wrap(dev, col->data, n * type_width(col->type),
                               filt ? DEV_BUF_RW : DEV_BUF_WRITE, &bmid[c], d)))
            goto out;
    }
    if (filt) {
        keep = arena_get(ar, n, &keep_cap);
        idx = arena_get(ar, n * sizeof(uint32_t), &idx_cap);
        if (!keep || !idx) {
            rc = diag_set(d, SP_ENOMEM, "%s: out of memory for %zu rows", st->name, n);
            goto out;
        }
        if ((rc = dev_buf_wrap(dev, keep, n, DEV_BUF_RW, &bkeep, d)) ||
            (rc = dev_buf_wrap(dev, idx, n * sizeof(uint32_t), DEV_BUF_RW, &bidx, d)))
            goto out;
    }
    cl_uint first_err = UINT32_MAX;
    if ((rc = dev_buf_alloc(dev, sizeof first_err, &berr, d)) ||
        (rc = dev_buf_write(dev, &berr, 0, &first_err, sizeof first_err, d)))
        goto out;
    cl_uint arg = 0;
    cl_ulong nn = n;
    for (int j = 0; j < nin && !rc; j++)
        rc = ew_arg(st, arg++, sizeof(cl_mem), &bin[j].mem, d);
    for (int c = 0; c < nout && !rc; c++)
        rc = ew_arg(st, arg++, sizeof(cl_mem), &bmid[c].mem, d);
    if (!rc && filt) rc = ew_arg(st, arg++, sizeof(cl_mem), &bkeep.mem, d);
    if (rc || (rc = ew_arg(st, arg++, sizeof(cl_mem), &berr.mem, d)) ||
        (rc = ew_arg(st, arg++, sizeof nn, &nn, d)))
        goto out;
    size_t lws = dev_wg_size(dev), gws;
    if (dev_strategy(dev) == DEV_STRATEGY_GPU) {
        gws = (n + lws - 1) / lws * lws;
    } else {
        /* At least ~256 rows per work-item, at most dev_groups() groups. */
        size_t g = (n + lws * 256 - 1) / (lws * 256);
        g = g > dev_groups(dev) ? dev_groups(dev) : g;
        gws = g * lws;
    }
    if ((rc = dev_launch(dev, st->kern, gws, lws, st->name, d)) ||
        (rc = dev_buf_read(dev, &berr, 0, &first_err, sizeof first_err, d)))
        goto out;
    if (first_err != UINT32_MAX) {
        if (st->skip) {
            *failed = 1;
            goto out;
        }
        rc = ew_div_error(st, first_err, d);
        goto out;
    }
    if (filt) {
        if ((rc = kscan_compact_buf(dev, &bkeep, n, &bidx, &count, d))) goto out;
        for (int c = 0; c < nout && count; c++) {
            sp_col *col = &out->cols[c];
            size_t w = type_width(col->type);
            if (col_reserve(col, count, 0)) {
                rc = diag_set(d, SP_ENOMEM, "%s: out of memory for %zu rows", st->name, count);
                goto out;
            }
            if ((rc = dev_buf_wrap(dev, col->data, count * w, DEV_BUF_WRITE, &bout[c], d)) ||
                (rc = kscan_gather(dev, &bmid[c], w, &bidx, count, &bout[c], d)))
                goto out;
        }
        for (int c = 0; c < nout && count; c++)
            if ((rc = dev_buf_sync_host(dev, &bout[c], d))) goto out;
        if ((rc = dev_buf_sync_host(dev, &bidx, d))) goto out;
    } else {
        for (int c = 0; c < nout; c++)
            if ((rc = dev_buf_sync_host(dev, &bmid[c], d))) goto out;
    }
    for (int c = 0; c < nout; c++)
        out->cols[c].len = count;
    out->n = count;
parts:
    start = mem_calloc(a, in->nparts + 1, sizeof *start);
    if (!start) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    for (unsigned p = 0; p < in->nparts; p++) {
        size_t plo, phi;
        batch_part_range(in, p, &plo, &phi);
        start[p] = filt && n ? ew_lower_bound(idx, count, plo) : plo;
    }
    start[in->nparts] = out->n;
    if (batch_set_parts(out, in->nparts, start, in->part_node)) {
        rc = diag_set(d, SP_ENOMEM, "%s: out of memory", st->name);
        goto out;
    }
    *outp = out;
    out = NULL;
out:
    for (int j = 0; j < nin + 2 * nout; j++)
        dev_buf_release(&bufs[j]);
    dev_buf_release(&bkeep);
    dev_buf_release(&bidx);
    dev_buf_release(&berr);
    if (rc) dev_finish(dev, NULL); /* nothing may still write into memory handed back below */
    if (keep) arena_put(ar, keep, keep_cap);
    if (idx) arena_put(ar, idx, idx_cap);
    mem_free(a, start);
    mem_free(a, bufs);
    batch_release(tmp);
    batch_release(out);
    return rc;
}

int ew_stage_run(ew_stage *st, sp_exec *exec, const sp_batch *in, sp_batch **out, sp_diag *d)
{
    SP_CHECK(d, st && in && out, SP_EINVAL, "ew_stage_run: NULL argument");
    *out = NULL;
    SP_CHECK(d, td_equal(in->td, st->in_td), SP_EINVAL,
             "%s: the batch's element type differs from the stage's input type", st->name);
    /* Tiny batches (window and join outputs: a few rows each) run on the host: a launch and
     * its blocking read cost tens of microseconds and wake the device's threads, far more than
     * interpreting the chain over a few rows. Results are the same either way. */
    int device = st->on_device && in->n >= ew_small_rows(st->dev);
    /* Raw (not dictionary-encoded) strings the kernel would read: this batch runs on the host. */
    for (int j = 0; device && j < st->code.nin; j++)
        if (in->cols[st->code.in_cols[j]].type == SP_STR &&
            in->cols[st->code.in_cols[j]].enc != ENC_DICT)
            device = 0;
    dev_count_rows(st->dev, in->n, device);
    if (device) {
        int failed = 0;
        int rc = st->code.cpu ? ew_run_cpu(st, in, out, &failed, d)
                              : ew_run_gpu(st, in, out, &failed, d);
        if (rc || !failed) return rc;
        /* Rows failed and are skipped: the host evaluator names each of them. */
    }
    return ew_run_host(st, exec, in, out, d);
}
