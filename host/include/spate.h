/*
 * spate.h — the public C API of Spate, a micro-batch stream-processing engine.
 *
 * Conventions, stated once:
 *  - Every fallible call returns an int status: zero is success, a negative SP_E* value is
 *    failure. Calls that return a handle return NULL on failure. In both cases the context
 *    keeps a one-line message naming the place (sp_context_errmsg()).
 *  - Streams (sp_stream) and expressions (sp_expr) belong to the context that made them and
 *    are freed with it; never free them yourself.
 *  - Batches handed to callbacks belong to the engine and are valid only during the callback.
 *  - The library never calls exit() and never writes to stdout except through print(),
 *    whose destination is sp_config.out.
 */
#ifndef SPATE_H
#define SPATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/** @name Errors */

/** X(name, value, message): the one list of Spate's errors. */
#define SP_ERRNO_MAP(X)                                                                            \
    X(OK, 0, "success")                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(ENOENT, -4, "no such file or directory")                                                     \
    X(EPARSE, -5, "malformed input")                                                               \
    X(ECL, -6, "OpenCL error")                                                                     \
    X(EBUILD, -7, "kernel build failed")                                                           \
    X(ENODEV, -8, "no OpenCL device")                                                              \
    X(EDEVMEM, -9, "device out of memory")                                                         \
    X(ECONN, -10, "connection failed")                                                             \
    X(ETYPE, -11, "type error")                                                                    \
    X(ERUNTIME, -12, "runtime error")                                                              \
    X(EUNSUPPORTED, -13, "not supported")                                                          \
    X(ECALLBACK, -14, "user callback failed")                                                      \
    X(ESTATE, -15, "operation not allowed in this state")

typedef enum sp_status {
#define SP_X_ENUM(name, value, msg) SP_##name = (value),
    SP_ERRNO_MAP(SP_X_ENUM)
#undef SP_X_ENUM
} sp_status;

/** Message for a status, e.g. "kernel build failed". Never NULL. */
const char *sp_strerror(int status);
/** Name of a status, e.g. "SP_EBUILD". Never NULL. */
const char *sp_errname(int status);

/* ---------------------------------------------------------------------------------------- */
/** @name Types */

/** Element types of columns. ts is int64 milliseconds since the epoch; str is a
 *  dictionary-encoded string. */
typedef enum sp_type {
    SP_I32 = 0,
    SP_I64,
    SP_F32,
    SP_F64,
    SP_BOOL,
    SP_TS,
    SP_STR,
    SP_TYPE_COUNT
} sp_type;

/** Name of a type ("i64", "str", ...). */
const char *sp_type_name(sp_type t);

/* ---------------------------------------------------------------------------------------- */
/** @name Context */

typedef struct sp_context sp_context;
typedef struct sp_stream sp_stream;
typedef struct sp_expr sp_expr;
typedef struct sp_batch sp_batch;
typedef struct sp_row sp_row;
typedef struct sp_emitter sp_emitter;

/** Allocator hook, realloc-shaped: nsize == 0 frees ptr and returns NULL. Used for every
 *  allocation the engine makes except column memory, which comes from NUMA arenas. */
typedef void *(*sp_alloc_fn)(void *ud, void *ptr, size_t nsize);

enum sp_clock { SP_CLOCK_AUTO = 0, SP_CLOCK_MANUAL, SP_CLOCK_SYSTEM };
enum sp_strategy { SP_STRATEGY_AUTO = 0, SP_STRATEGY_CPU, SP_STRATEGY_GPU };

typedef struct sp_config {
    int64_t batch_ms;          /**< batch interval in ms (default 1000) */
    const char *device;        /**< device selector: "cpu", "gpu", index, or name substring;
                                    NULL: $SPATE_DEVICE, else the first device */
    int threads;               /**< executor threads; 0: one per core */
    int kernel_cache;          /**< 1 (default): cache program binaries on disk */
    const char *cache_dir;     /**< NULL: $SPATE_CACHE_DIR, else $XDG_CACHE_HOME/spate */
    int64_t max_batches;       /**< run exactly this many batch times; 0: until sources end */
    int clock;                 /**< enum sp_clock; AUTO: manual for queue streams, else system */
    int strategy;              /**< enum sp_strategy: kernel shape; AUTO follows device type */
    const char *metrics_path;  /**< JSON lines of per-batch metrics, or NULL */
    int status_line;           /**< -1 (default): when log is a terminal; 0 off; 1 on */
    size_t batch_lines;        /**< textFile/stdin: lines per batch (0: by time) */
    size_t dense_key_limit;    /**< largest key domain for the dense keyed path (0: default) */
    uint64_t device_mem_limit; /**< cap on one device buffer in bytes (0: the device's own) */
    int naive_windows;         /**< 1: recompute every window from its batches (benchmarks) */
    int64_t reclaim_every;     /**< dictionary strings and keys no live structure holds are
                                    reclaimed between batch times once this many new ones
                                    arrived since the last time (and at least as many as were
                                    live then); 0: 65536; -1: never (memory then grows with
                                    every key ever seen) */
    int on_error_skip;         /**< 1: rows whose lambda fails at run time go to the rejects
                                    output instead of failing the job (--on-error skip) */
    const char *rejects_path;  /**< rejected input lines / rows, one per line, or NULL */
    const char *checkpoint_dir; /**< checkpoint directory, or NULL: a run with the same job
                                     and directory resumes after the last committed batch,
                                     file outputs exactly as one uninterrupted run writes
                                     them (README, "Checkpoints") */
    const char *job_fingerprint; /**< what identifies the job besides its stream graph (the
                                      CLI passes the script's text and arguments); a
                                      checkpoint of another job is refused. NULL: the graph */
    size_t line_max;           /**< text sources (textFile, textFileStream, stdin, sockets): a
                                    longer line (bytes, without its newline) is dropped and
                                    rejected with its place and first bytes. 0: the default,
                                    1 MiB (--line-max) */
    int64_t event_horizon_ms;  /**< event time: a record further than this from the watermark
                                    (either way) is rejected; the first record anchors it.
                                    0: the default, 365 days (--horizon) */
    const char *topology_synthetic; /**< hwloc synthetic topology (tests), or NULL */
    const char *topology_xml;       /**< hwloc XML topology file (tests), or NULL */
    FILE *out;                      /**< print() destination (default stdout) */
    FILE *log;                      /**< diagnostics and progress (default stderr) */
    sp_alloc_fn alloc;              /**< allocator hook, or NULL for malloc */
    void *alloc_ud;
} sp_config;

/** Fills a config with the defaults above. */
void sp_config_init(sp_config *cfg);

/** Makes a context. Opens nothing yet: the device and executors start with the run (or
 *  sp_context_start()). Returns SP_OK, SP_EINVAL or SP_ENOMEM; *out is NULL on failure.
 *  Free with sp_context_free. */
int sp_context_new(const sp_config *cfg, sp_context **out);

/** Opens the device, topology, executors and arenas (done by run when not done before). */
int sp_context_start(sp_context *ctx);

/** Runs the job until its sources end, max_batches batch times pass, or sp_context_stop(). */
int sp_context_run(sp_context *ctx);

/** Memory held for keys, for reports and soak tests. */
typedef struct sp_memory_stats {
    uint64_t dict_live;      /**< strings in the dictionary now */
    uint64_t dict_ids;       /**< high-water mark of dictionary ids (the dense key domain) */
    uint64_t dict_bytes;     /**< bytes the dictionary holds */
    uint64_t dict_reclaimed; /**< strings reclaimed so far */
    uint64_t keymap_live;    /**< keys in the operators' key maps (non-string keys) */
    uint64_t reclaim_cycles; /**< reclaim cycles run so far */
    int reclaiming;          /**< 1: the job's operators let memory be reclaimed; 0: some
                                  operator keeps ids it cannot enumerate (see README) */
} sp_memory_stats;
/** Fills st (zeros before the context has a dictionary). SP_EINVAL on NULL. */
int sp_context_memory(const sp_context *ctx, sp_memory_stats *st);

/** Asks a running context to stop after the current batch. Async-signal-safe. */
void sp_context_stop(sp_context *ctx);

/** Plans the job (starting the context if needed) and prints its stages: which operators
 *  fuse, where each stage runs (device or host), and the generated OpenCL source. */
int sp_context_explain(sp_context *ctx, FILE *f);

/** Routes a record the job could not use to the rejects output: counted in the batch's
 *  metrics and, with sp_config.rejects_path, written as one line "ORIGIN[:LINE]: REASON: TEXT"
 *  (line < 0: unknown). Thread-safe: callbacks on executors may call it. */
int sp_context_reject(sp_context *ctx, const char *origin, int64_t line, const char *reason,
                      const char *text, size_t len);

/** The one-line message of the last failure ("" if none). Belongs to the context. */
const char *sp_context_errmsg(const sp_context *ctx);

/** Number of batches run so far. */
int64_t sp_context_batches(const sp_context *ctx);

void sp_context_free(sp_context *ctx);

/* ---------------------------------------------------------------------------------------- */
/** @name Expressions — lambda bodies as trees, compiled to OpenCL C or evaluated on the host.
 *  A lambda's parameters are sp_expr_arg(ctx, 0) and sp_expr_arg(ctx, 1). Every node belongs
 *  to the context. A NULL argument yields NULL (errors propagate to the consumer). */

typedef enum sp_op {
    SP_OP_ADD,
    SP_OP_SUB,
    SP_OP_MUL,
    SP_OP_DIV,
    SP_OP_MOD,
    SP_OP_EQ,
    SP_OP_NE,
    SP_OP_LT,
    SP_OP_LE,
    SP_OP_GT,
    SP_OP_GE,
    SP_OP_AND,
    SP_OP_OR,
    SP_OP_NOT,
    SP_OP_NEG,
    SP_OP_MIN,
    SP_OP_MAX
} sp_op;

/** The deepest nesting a lambda body may have. A node is one level below its parent, except
 *  that a binary operation that is the left operand of another one stays on its parent's
 *  level: a chain a + b + c + ... (left-associative, as scripts parse it) is one level however
 *  long it is. A stream operation given a deeper tree fails with SP_ETYPE "expression too
 *  deeply nested (limit 256)" at the node past the limit; job scripts report the same at the
 *  script position. The limit keeps every walk over a tree (checker, host evaluator, OpenCL
 *  generator) well inside a thread's stack, also under AddressSanitizer. */
enum { SP_EXPR_MAX_DEPTH = 256 };

sp_expr *sp_expr_arg(sp_context *ctx, int index);
sp_expr *sp_expr_i64(sp_context *ctx, int64_t v);
sp_expr *sp_expr_f64(sp_context *ctx, double v);
sp_expr *sp_expr_bool(sp_context *ctx, int v);
sp_expr *sp_expr_str(sp_context *ctx, const char *s);
/** Tuple field: index 0 is Scala's _1. */
sp_expr *sp_expr_field(sp_context *ctx, sp_expr *tuple, int index);
sp_expr *sp_expr_tuple(sp_context *ctx, int n, sp_expr *const *elems);
sp_expr *sp_expr_tuple2(sp_context *ctx, sp_expr *a, sp_expr *b);
sp_expr *sp_expr_binop(sp_context *ctx, sp_op op, sp_expr *a, sp_expr *b);
sp_expr *sp_expr_unop(sp_context *ctx, sp_op op, sp_expr *a);
sp_expr *sp_expr_if(sp_context *ctx, sp_expr *cond, sp_expr *then_e, sp_expr *else_e);
sp_expr *sp_expr_cast(sp_context *ctx, sp_expr *e, sp_type to);
/** A Scala method or function by name: args[0] is the receiver of a method
 *  ("length", "split", "getOrElse", "sum", "map", ...), functions take only their arguments
 *  ("Some", "None", "Seq"). Strings, Options and Seqs are evaluated on the host. */
sp_expr *sp_expr_call(sp_context *ctx, const char *name, int n, sp_expr *const *args);
/** An inner lambda for Seq.map / Seq.filter binding sp_expr_arg(ctx, param) in body; param
 *  must be above the enclosing lambda's parameters. */
sp_expr *sp_expr_lambda(sp_context *ctx, int param, sp_expr *body);
/** Records a script position on e (messages then name LINE:COL); returns e. */
sp_expr *sp_expr_at(sp_expr *e, int line, int col);

/* ---------------------------------------------------------------------------------------- */
/** @name Sources. Each returns a stream that belongs to the context, or NULL on error.
 *  Types are written as strings: "i64", "str", "(str,i64)", "(str,(i64,f64))". */

/** Parses a stream of text lines into typed records: format "combined", "common", "syslog",
 *  "json" (arg: comma-separated dotted field paths), "csv" (arg: header), or a GoAccess-style
 *  format string. Lines that do not parse are counted per batch and written to the rejects
 *  output with their file, line number and reason. */
sp_stream *sp_stream_parse(sp_stream *lines, const char *format, const char *arg);

/** Spark's queueStream on the manual clock: a JSON-lines file, one line per batch, each line
 *  a JSON array of records (numbers, strings, booleans, arrays for tuples; [] is an empty
 *  batch). type NULL infers it from the first record. */
sp_stream *sp_queue_stream(sp_context *ctx, const char *path, const char *type);
/** Replays a file's lines (type str), batch_lines lines per batch or as they arrive. */
sp_stream *sp_text_file(sp_context *ctx, const char *path);
/** Watches a directory; each new file is read once, in the batch in which it appears. */
sp_stream *sp_text_file_stream(sp_context *ctx, const char *dir);
/** TCP client reading lines, like Spark's socketTextStream. */
sp_stream *sp_socket_text_stream(sp_context *ctx, const char *host, int port);
/** Lines of standard input. */
sp_stream *sp_stdin_stream(sp_context *ctx);

typedef struct sp_generator_opts {
    uint64_t seed;      /**< fixed seed: same records every run */
    uint64_t keys;      /**< key domain: keys are 0..keys-1 (i64), or "k<N>" strings */
    int string_keys;    /**< 1: keys are strings "k0".."k<keys-1>" */
    int64_t value_max;  /**< values uniform in [0, value_max) */
    uint64_t per_batch; /**< records per batch (flat out) */
    double rate;        /**< records per second on the system clock; 0: flat out */
    uint64_t total;     /**< total records, 0: unbounded */
    uint64_t rotate;    /**< keys advance by this much each batch: batch b (from 0) draws
                             them from [b x rotate, b x rotate + keys); 0: a fixed domain */
} sp_generator_opts;
/** Synthetic keyed records (key, value) of type (i64,i64) or (str,i64). */
sp_stream *sp_generator(sp_context *ctx, const sp_generator_opts *opts);

/* ---------------------------------------------------------------------------------------- */
/** @name Rows and emitters — for host callbacks (flatMap, transform, foreachRDD).
 *  Columns are numbered in the flattened order of the type's leaves: "(str,(i64,f64))" has
 *  columns 0:str 1:i64 2:f64. */

int64_t sp_row_i64(const sp_row *row, int col); /**< i32, i64, ts, bool columns */
double sp_row_f64(const sp_row *row, int col);  /**< f32, f64 columns (ints converted) */
const char *sp_row_str(const sp_row *row, int col, size_t *len); /**< not NUL-terminated */

/** Appends one value to the current output row, in column order; then sp_emit_end(). */
int sp_emit_i64(sp_emitter *em, int64_t v);
int sp_emit_f64(sp_emitter *em, double v);
int sp_emit_bool(sp_emitter *em, int v);
int sp_emit_str(sp_emitter *em, const char *s, size_t len);
int sp_emit_end(sp_emitter *em);

/** Per-row host callback: emit zero or more rows. Runs on executor threads, in parallel:
 *  must be thread-safe. Non-zero return fails the job. */
typedef int (*sp_flatmap_fn)(void *ud, const sp_row *in, sp_emitter *out);
/** Whole-batch callback (transform): emit the output batch's rows. Runs on the driver. */
typedef int (*sp_transform_fn)(void *ud, const sp_batch *in, sp_emitter *out);
/** Output callback (foreachRDD). Runs on the driver, in declaration order. */
typedef int (*sp_foreach_fn)(void *ud, const sp_batch *batch);

/* ---------------------------------------------------------------------------------------- */
/** @name Transformations (per batch, Spark's semantics). */

typedef enum sp_agg { SP_AGG_SUM, SP_AGG_COUNT, SP_AGG_MIN, SP_AGG_MAX, SP_AGG_AVG } sp_agg;

sp_stream *sp_stream_map(sp_stream *s, sp_expr *body);
sp_stream *sp_stream_filter(sp_stream *s, sp_expr *pred);
/** On (K,V) streams: body over the value (arg 0). */
sp_stream *sp_stream_map_values(sp_stream *s, sp_expr *body);
sp_stream *sp_stream_flat_map(sp_stream *s, const char *out_type, sp_flatmap_fn fn, void *ud);
/** On (K,V) streams: fn sees the value row (column 0 = first value column) and emits values. */
sp_stream *sp_stream_flat_map_values(sp_stream *s, const char *out_value_type, sp_flatmap_fn fn,
                                     void *ud);
sp_stream *sp_stream_union(sp_stream *a, sp_stream *b);
/** count(): one i64 per batch; 0 for an empty batch. */
sp_stream *sp_stream_count(sp_stream *s);
/** reduce(f): f is (a,b) => ...; an empty batch gives no element. */
sp_stream *sp_stream_reduce(sp_stream *s, sp_expr *f);
/** countByValue(): (value, count:i64) */
sp_stream *sp_stream_count_by_value(sp_stream *s);
/** reduceByKey with a built-in aggregate over the value (AVG yields f64). */
sp_stream *sp_stream_reduce_by_key_agg(sp_stream *s, sp_agg agg);
/** reduceByKey((a,b) => ...) with a lambda; sums, mins and maxes are recognised. */
sp_stream *sp_stream_reduce_by_key(sp_stream *s, sp_expr *f);
/** groupByKey(): (K, Iterable[V]) */
sp_stream *sp_stream_group_by_key(sp_stream *s);
sp_stream *sp_stream_join(sp_stream *a, sp_stream *b);
sp_stream *sp_stream_left_outer_join(sp_stream *a, sp_stream *b);
sp_stream *sp_stream_right_outer_join(sp_stream *a, sp_stream *b);
sp_stream *sp_stream_full_outer_join(sp_stream *a, sp_stream *b);
sp_stream *sp_stream_cogroup(sp_stream *a, sp_stream *b);
sp_stream *sp_stream_transform(sp_stream *s, const char *out_type, sp_transform_fn fn, void *ud);

/* ---------------------------------------------------------------------------------------- */
/** @name Windows and state (Spark's semantics: docs in host/semantics.md). Durations are in
 *  milliseconds and must be multiples of the parent stream's slide (the batch interval unless
 *  the parent is itself windowed); a windowed stream emits at every multiple of its slide from
 *  the start, the first windows being partial, and its outputs run only at those times.
 *  slide_ms 0 means the parent's slide. */

sp_stream *sp_stream_window(sp_stream *s, int64_t window_ms, int64_t slide_ms);
/** countByWindow: one i64 per slide, once the first element has arrived. */
sp_stream *sp_stream_count_by_window(sp_stream *s, int64_t window_ms, int64_t slide_ms);
/** reduceByWindow(f[, inv]); inv NULL recomputes from panes (two-stacks, O(1) per slide). */
sp_stream *sp_stream_reduce_by_window(sp_stream *s, sp_expr *f, sp_expr *inv, int64_t window_ms,
                                      int64_t slide_ms);
/** reduceByKeyAndWindow(f[, inv[, filter]]): with inv, Spark's incremental path, which keeps
 *  keys whose value returned to zero unless `filter` ((k, v) => bool) drops them. */
sp_stream *sp_stream_reduce_by_key_and_window(sp_stream *s, sp_expr *f, sp_expr *inv,
                                              int64_t window_ms, int64_t slide_ms, sp_expr *filter);
/** The same with a built-in aggregate (SUM, COUNT and AVG are invertible; MIN, MAX use
 *  two-stacks). */
sp_stream *sp_stream_reduce_by_key_and_window_agg(sp_stream *s, sp_agg agg, int64_t window_ms,
                                                  int64_t slide_ms);
/** countByValueAndWindow: (value, count), zero counts dropped. */
sp_stream *sp_stream_count_by_value_and_window(sp_stream *s, int64_t window_ms, int64_t slide_ms);
sp_stream *sp_stream_group_by_key_and_window(sp_stream *s, int64_t window_ms, int64_t slide_ms);

/** updateStateByKey with a C update function: called for every key in the previous state or
 *  in the batch, with the batch's values for the key (possibly none) and the previous state
 *  (NULL if none); emit one row (the new state, columns of state_type) to keep the key, none
 *  to remove it. time_ms is the batch time. */
typedef int (*sp_update_fn)(void *ud, int64_t time_ms, const sp_row *key,
                            const sp_row *const *values, size_t nvalues, const sp_row *state,
                            sp_emitter *out);
/** (K, V) -> (K, S): the whole state is emitted every batch. initial_path: a JSON file with
 *  one array of [key, state] pairs, the state before batch 1 (NULL: empty). */
sp_stream *sp_stream_update_state_by_key(sp_stream *s, const char *state_type, sp_update_fn fn,
                                         void *ud, const char *initial_path);
/** updateStateByKey with a lambda tree: f is (values, state) => Option[S] or
 *  (time, key, values, state) => Option[S] (values a List of V, state an Option of S, time a
 *  ts; which form is told from the parameters the body uses), as job scripts build it.
 *  state_type NULL infers S from f. Numeric lambdas that use values only through .sum .size
 *  .length .isEmpty .nonEmpty, the state through .getOrElse(x) .isDefined .isEmpty .nonEmpty,
 *  and return Some(number) or None under ifs run as one OpenCL kernel over all live keys
 *  (explain says which path runs); others run on the host evaluator. Same outputs either way
 *  (floating-point sums may round differently, as Spark's do across partitionings). */
sp_stream *sp_stream_update_state_by_key_expr(sp_stream *s, const char *state_type, sp_expr *f,
                                              const char *initial_path);

/** Event-time batches: the batch with time T holds the records whose timestamp column
 *  `ts_col` (a flattened column of type ts or i64, epoch ms) lies in [T - interval, T), T a
 *  multiple of the batch interval. A batch is emitted once the watermark (the largest
 *  timestamp seen minus watermark_ms) reaches T, or when the input ends; records of a batch
 *  already emitted are late: counted and routed to the rejects output. So are records stamped
 *  outside years 1 to 9999 or further than sp_config.event_horizon_ms from the watermark (the
 *  first record anchors it): a wild timestamp cannot make the job emit years of empty batches.
 *  Rejects carry FILE:LINE when the records come from a text file. Everything downstream
 *  (windows, print times) follows event time, so a replay gives the same batches however fast
 *  it is read. One per job; every output must be downstream of it. */
sp_stream *sp_stream_event_time(sp_stream *s, int ts_col, int64_t watermark_ms);

/* ---------------------------------------------------------------------------------------- */
/** @name Analytics people ask of logs (approximate, mergeable, with stated error bounds). */

/** countApproxDistinct(rsd): HyperLogLog estimate of the number of distinct elements of each
 *  batch (one i64), rsd the relative standard deviation (Spark's default 0.05). */
sp_stream *sp_stream_count_approx_distinct(sp_stream *s, double rsd);
/** The same over a sliding window: per-slide sketches merged across panes. */
sp_stream *sp_stream_count_approx_distinct_and_window(sp_stream *s, double rsd, int64_t window_ms,
                                                      int64_t slide_ms);
/** On (K, V): (K, i64) the approximate number of distinct V per key. */
sp_stream *sp_stream_count_approx_distinct_by_key(sp_stream *s, double rsd);
sp_stream *sp_stream_count_approx_distinct_by_key_and_window(sp_stream *s, double rsd,
                                                             int64_t window_ms, int64_t slide_ms);
/** On (K, numeric V): (K, (q_1, ..., q_n)) approximate quantiles qs[i] in [0,1] of the values
 *  of each key, f64, within relative error rel_err of the exact quantile's value. */
sp_stream *sp_stream_approx_quantiles_by_key(sp_stream *s, int nq, const double *qs,
                                             double rel_err);
sp_stream *sp_stream_approx_quantiles_by_key_and_window(sp_stream *s, int nq, const double *qs,
                                                        double rel_err, int64_t window_ms,
                                                        int64_t slide_ms);
/** On (K, numeric V): the k pairs with the largest values, descending (ties by key order);
 *  per window: apply it to a windowed stream. */
sp_stream *sp_stream_top_k(sp_stream *s, int k);

/** report(path): one self-contained HTML file (no network fetches) with a chart of this
 *  stream's values over time (or a table for keyed top-k outputs), rewritten atomically after
 *  every batch (at most about a tenth of the run's time goes to rewrites while batches come
 *  faster; the page at the end holds every batch); several streams reporting to the same path share
 * one file, one section each, in declaration order. */
int sp_stream_report(sp_stream *s, const char *path, const char *title);

/** The stream's element type as a string, e.g. "(str,i64)". Belongs to the stream. */
const char *sp_stream_type(const sp_stream *s);

/* ---------------------------------------------------------------------------------------- */
/** @name Output operations, run in the order they are declared. */

/** Spark's print(n): header for every batch, up to n elements. */
int sp_stream_print(sp_stream *s, int n);
/** One directory prefix-TIME_MS[.suffix] per batch with part files, renamed into place. */
int sp_stream_save_as_text_files(sp_stream *s, const char *prefix, const char *suffix);
int sp_stream_foreach_rdd(sp_stream *s, sp_foreach_fn fn, void *ud);
/** Appends every batch's elements to one CSV file (time_ms first column). */
int sp_stream_save_csv(sp_stream *s, const char *path);
/** Appends every batch's elements to one JSON-lines file ({"time":T,"value":...}). */
int sp_stream_save_jsonl(sp_stream *s, const char *path);

/* ---------------------------------------------------------------------------------------- */
/** @name Batches (read-only views inside callbacks). */

int64_t sp_batch_time(const sp_batch *b);
size_t sp_batch_count(const sp_batch *b);
/** Number of flattened columns of the batch's type. */
int sp_batch_columns(const sp_batch *b);
int64_t sp_batch_i64(const sp_batch *b, size_t row, int col);
double sp_batch_f64(const sp_batch *b, size_t row, int col);
const char *sp_batch_str(const sp_batch *b, size_t row, int col, size_t *len);
/** Writes element `row` in Scala's toString form, e.g. "(a,(1,x))". Returns the length it
 *  needed (snprintf-like) or a negative status. */
int sp_batch_format(const sp_batch *b, size_t row, char *buf, size_t size);

/* ---------------------------------------------------------------------------------------- */
/** @name Checkpoints */

/** Prints what a checkpoint directory holds (job fingerprint, batches logged and committed,
 *  the sources' positions and outputs' sizes at the last commit) to f, changing nothing;
 *  failures go to log as one line. */
int sp_checkpoint_describe(const char *dir, FILE *f, FILE *log);

/* ---------------------------------------------------------------------------------------- */
/** @name Devices */

/** Prints every OpenCL device and the hwloc topology summary (spate devices) to f. */
int sp_devices_print(FILE *f, const sp_config *cfg);

#ifdef __cplusplus
}
#endif
#endif /* SPATE_H */
