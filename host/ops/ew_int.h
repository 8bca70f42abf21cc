/* ew_int.h — element-wise stages: a chain of map / filter / mapValues lambdas fused into one
 * generated OpenCL kernel (numeric columns and dictionary ids; string equality with a literal
 * becomes an id comparison), or, when a lambda needs what the device cannot do, evaluated on
 * the executors on the host. A filter compacts with a parallel prefix sum (scan.cl). */
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
 *  Runtime errors (integer division by zero) → SP_ERUNTIME naming the stage and the row. */
int ew_stage_run(ew_stage *st, sp_exec *exec, const sp_batch *in, sp_batch **out, sp_diag *d);
/** Where it runs and, for the device, the generated OpenCL source. */
void ew_stage_explain(const ew_stage *st, strbuf *sb);
void ew_stage_free(ew_stage *st);

/* Compaction primitives (scan.cl), also used by other operators. */
/** out_idx receives the indices i (ascending) with flags[i] != 0; *count their number. */
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

/* OpenCL generation of a fused chain (codegen.c). */
typedef struct ew_code {
    strbuf src;        /* the program: helpers, then kernel "ew_stage" */
    int nin;           /* input columns the kernel reads */
    int *in_cols;      /* their column numbers, ascending (kernel arguments 0..nin-1) */
    int nout;          /* output columns (arguments nin..nin+nout-1) */
    int has_filter;    /* then a uchar keep flag per row; then uint *err, ulong n */
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
