/* ew_int.h — element-wise stages: a chain of map / filter / mapValues lambdas fused into
 * generated OpenCL kernels (numeric columns and dictionary ids; string equality with a literal
 * becomes an id comparison), or, when a lambda needs what the device cannot do, evaluated on
 * the executors on the host. A filter compacts per chunk in the kernel on CPU devices, with a
 * parallel prefix sum (scan.cl) and gathers on GPUs. */
#ifndef SPATE_EW_INT_H
#define SPATE_EW_INT_H

#include "batch/batch_int.h"
#include "device/device_int.h"
#include "exec/exec_int.h"
#include "ops/expr_int.h"

typedef enum ew_kind { EW_MAP, EW_FILTER, EW_MAP_VALUES } ew_kind;

typedef struct ew_step {
    ew_kind kind;
    const sp_expr *body; /* one-parameter lambda body */
} ew_step;

typedef struct ew_stage ew_stage;

/** Type-checks the chain against the input type, decides device or host, generates and
 *  builds the kernel (through dev_build: cached on disk). dev NULL: host only. `name` appears
 *  in messages and explain output ("stage 2"). */
int ew_stage_new(sp_dev *dev, batch_env *env, const sp_td *in, int nsteps, const ew_step *steps,
                 const char *name, ew_stage **out, sp_diag *d);
/** Output element type (belongs to the stage). */
const sp_td *ew_stage_type(const ew_stage *st);
int ew_stage_on_device(const ew_stage *st);
/** Runs the stage over one batch: *out is a new batch (same time) of ew_stage_type.
 *  Runtime errors (integer division by zero) → SP_ERUNTIME naming the stage and the row,
 *  unless ew_stage_set_on_error asked to skip failing rows. */
int ew_stage_run(ew_stage *st, sp_exec *exec, const sp_batch *in, sp_batch **out, sp_diag *d);
/** What a row whose lambda fails at run time does (integer division by zero; on the host
 *  path also a string that is not a number). skip 0 (the default): ew_stage_run fails with
 *  SP_ERUNTIME naming the smallest failing row. skip 1: the row is left out of the output and
 *  reject(ud, row, reason) is called for it (reject may be NULL): row is its index in the
 *  input batch, reason a one-line message naming the stage, the failure and the row's value
 *  in Scala's toString form ("stage 3: 1:12: division by zero at row 7: (a,0)"). A non-zero
 *  return from reject fails the run with that status. reject may be called from several
 *  executor threads at once, in no particular row order. On the device, a batch with failing
 *  rows is evaluated again on the host to name them (rare: cost of the host path). */
void ew_stage_set_on_error(ew_stage *st, int skip,
                           int (*reject)(void *ud, size_t row, const char *reason), void *ud);
/** Where it runs and, for the device, the generated OpenCL source. */
void ew_stage_explain(const ew_stage *st, strbuf *sb);
void ew_stage_free(ew_stage *st);

/* Compaction primitives (scan.cl), also used by other operators. */
/** Inputs of at most this many flags are compacted on the host even with a device: the
 *  device's two passes and one wait cost more there (tens of microseconds on POCL). */
enum { KSCAN_HOST_MAX = 65536 };
/** out_idx receives the indices i (ascending) with flags[i] != 0; *count their number.
 *  out_idx has room for n entries (all of them may be written). */
int kscan_compact(sp_dev *dev, const uint8_t *flags, size_t n, uint32_t *out_idx, size_t *count,
                  sp_diag *d);
/** Exclusive prefix sum of u32 counts into u64 offsets (n+1 entries). */
int kscan_exclusive(sp_dev *dev, const uint32_t *in, size_t n, uint64_t *out, sp_diag *d);

/** kscan_compact on device buffers: flags holds n u8, idx room for n u32; *count is read
 *  back (blocking). Pass 1-3 of scan.cl, shaped by dev_strategy. */
int kscan_compact_buf(sp_dev *dev, const dev_buf *flags, size_t n, dev_buf *idx, size_t *count,
                      sp_diag *d);
/** dst[k] = src[idx[k]] for k < n, elements of `width` bytes (1, 4 or 8); gather.cl. */
int kscan_gather(sp_dev *dev, const dev_buf *src, size_t width, const dev_buf *idx, size_t n,
                 dev_buf *dst, sp_diag *d);

/* OpenCL generation of a fused chain (codegen.c). Kernel arguments: the input columns the
 * kernel reads (in_cols order), then, where the kernel writes rows, the nout output columns,
 * then:
 *  CPU strategy (cpu = 1; work-item c owns rows [bounds[c], bounds[c+1]), G = global size):
 *   with a filter:  ew_count(in.., bounds, stats): stats[c] = kept rows of chunk c,
 *                   stats[G + c] = its first row with a division by zero (ULONG_MAX: none);
 *                   ew_write(in.., out.., bounds, offs): the kept rows of chunk c to
 *                   out[offs[c] .. offs[c+1]) in order (offs: exclusive scan of the counts);
 *   without:        ew_write(in.., out.., bounds, stats): out[i] for every row, stats as
 *                   ew_count's (stats[c] = the chunk's rows).
 *  GPU strategy: ew_stage(in.., out.., [keep,] err, n): one row per work-item, out[i] at
 *   the row's own index, keep[i] (with a filter) 1 when the row passed every filter, and
 *   atomic_min(err, i) for a row with a division by zero. */
typedef struct ew_code {
    strbuf src;     /* the program: helpers, then the kernels above */
    int nin;        /* input columns the kernels read */
    int *in_cols;   /* their column numbers, ascending */
    int nout;       /* output columns */
    int has_filter; /* at least one filter step */
    int cpu;        /* CPU strategy kernels (else GPU) */
} ew_code;
/** Generates the kernel of steps over a flat input type `in` (types already checked; `out`
 *  is the chain's output type). String literals are interned in dict. SP_EUNSUPPORTED with
 *  the reason when a step needs string bytes (concatenation, ordering, conversions). Release
 *  with ew_code_free. */
int ew_codegen(const sp_allocator *a, sp_dict *dict, const sp_td *in, int nsteps,
               const ew_step *steps, const sp_td *out, int strategy, const char *name,
               ew_code *code, sp_diag *d);
void ew_code_free(const sp_allocator *a, ew_code *code);

#endif
