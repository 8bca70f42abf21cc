/* core_int.h — the context, the stream graph and its plan, the driver.
 *
 * A job is a graph of sp_stream nodes built through the public API. At start the graph is
 * planned: chains of element-wise nodes (map, filter, mapValues) whose intermediate nodes have
 * a single consumer are fused into one ew_stage held by the chain's last node. At each batch
 * time the driver seals every source (in declaration order), then runs the output operations
 * in declaration order; each asks its stream for the batch of that time, which is computed
 * once (memoised per batch time, like Spark's generatedRDDs) and released when the batch
 * time is done. */
#ifndef SPATE_CORE_INT_H
#define SPATE_CORE_INT_H

#include "batch/batch_int.h"
#include "device/device_int.h"
#include "exec/exec_int.h"
#include "io/io_int.h"
#include "ops/ew_int.h"
#include "ops/expr_int.h"
#include "ops/kreduce_int.h"

#include <pthread.h>
#include <stdatomic.h>

typedef enum node_kind {
    N_SOURCE,
    N_MAP,
    N_FILTER,
    N_MAP_VALUES,
    N_FLAT_MAP,
    N_FLAT_MAP_VALUES,
    N_UNION,
    N_COUNT,
    N_REDUCE,
    N_COUNT_BY_VALUE,
    N_REDUCE_BY_KEY_AGG,
    N_REDUCE_BY_KEY,
    N_GROUP_BY_KEY,
    N_JOIN,
    N_COGROUP,
    N_TRANSFORM,
    N_OPS /* an operator family defined outside this file: see stream_ops */
} node_kind;

/** Operators with state across batch times (windows, updateStateByKey, ...) plug in through
 *  this table, so that their families live in their own files. */
typedef struct stream_ops {
    const char *name;
    /** Called at every batch time, in declaration order, after the sources are sealed and
     *  before the outputs run: a stateful node takes its parent's batch of time t into its
     *  state (panes, per-key state) whether or not it emits at t. May be NULL. */
    int (*tick)(sp_stream *s, int64_t t, sp_diag *d);
    /** The node's batch at time t; called only at times valid for its slide (memoised by
     *  stream_compute). */
    int (*compute)(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d);
    /** Frees s->state. May be NULL. */
    void (*destroy)(sp_stream *s);
    /** One line for explain output. May be NULL. */
    void (*explain)(const sp_stream *s, strbuf *sb);
    /** Reclaim cycle (core/reclaim.c), on the driver between batch times: dict_marks every
     *  dictionary id the node keeps past the batch time (panes, remembered batches, state),
     *  and for s->km either marks the ids it keeps and keymap_sweeps, or keymap_clears it when
     *  its ids do not outlive a batch time. NULL: the node keeps ids it cannot enumerate, and
     *  a job with such a node never reclaims. */
    void (*mark)(sp_stream *s, sp_dict *dict);
} stream_ops;

enum join_kind { JOIN_INNER, JOIN_LEFT, JOIN_RIGHT, JOIN_FULL };

struct sp_stream {
    sp_context *ctx;
    int id; /* declaration order */
    node_kind kind;
    sp_stream *parent[2];
    sp_td *td; /* element type */
    char *type_str;
    int nkey; /* keyed streams: columns of the key (the first tuple element) */

    sp_expr *expr; /* map/filter/mapValues body, reduce lambda */
    sp_agg agg;
    int monoid; /* reduce lambdas recognised as a built-in aggregate, else -1 */
    int join;   /* enum join_kind */
    sp_flatmap_fn fm_fn;
    sp_transform_fn tr_fn;
    void *ud;
    sp_source *source;
    const stream_ops *ops; /* N_OPS */
    void *state;           /* N_OPS: the family's state, freed by ops->destroy */
    int64_t slide_ms;      /* emits at times t with (t - zero time) % slide_ms == 0 */

    /* plan */
    int consumers;          /* streams and outputs reading this one */
    int fused;              /* 1: evaluated as part of a consumer's stage */
    sp_stream *stage_input; /* fused chain: the stream feeding the stage */
    ew_stage *stage;
    keymap *km; /* keyed host operators and integer keys */
    int source_done;
    int event_side; /* 1: downstream of the event-time stream (runs at event times) */

    /* per batch time */
    int64_t memo_time;
    sp_batch *memo;
    size_t records_in; /* sources: records in the current batch */
};

typedef struct sp_output {
    sp_stream *stream;
    sp_sink *sink;
} sp_output;

struct sp_context {
    sp_config cfg;
    sp_allocator alloc;
    sp_diag diag;
    expr_pool *exprs;

    sp_stream **streams;
    int nstreams, cap_streams;
    sp_output *outputs;
    int noutputs, cap_outputs;

    int started, planned;
    sp_topo *topo;
    sp_exec *exec;
    sp_dev *dev;
    dev_counters dev_seen; /* the device's counters at the last metrics line */
    sp_arena **arenas;
    unsigned narenas;
    sp_dict *dict;
    batch_env env;

    atomic_int stop;
    FILE *rejects; /* opened when the run starts (or by an earlier sp_context_reject) */
    pthread_mutex_t rejects_lock;
    atomic_uint_fast64_t rejects_batch; /* rejects since the last batch's metrics */
    sp_stream *event;                   /* the event-time stream, if any */
    int64_t zero_time;                  /* Spark's zeroTime: the time before the first batch */
    int64_t batches;
    FILE *metrics;
    int status_tty;
    void *reports; /* report_node.c: the reports by path (report_registry_free) */
    struct ckpt *ckpt; /* checkpoint_int.h: open during a checkpointed run */
    int replaying;     /* the batch running is one a restart replays: outputs held back */
    double ckpt_synced_ms; /* wall time of the last sync point */
    int reclaim;   /* reclaim.c: 0 not decided yet, 1 on, -1 off */
    uint64_t reclaim_cycles;
};

/** Records a failure in the context's diag (and returns code). */
int ctx_fail(sp_context *ctx, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Copies a lower layer's diag into the context's. */
int ctx_take(sp_context *ctx, const sp_diag *d);

/* rejects.c */
/** Counts a rejected line/row and writes it to the rejects file when one is configured.
 *  line < 0: unknown. Thread-safe. */
int ctx_reject(sp_context *ctx, const char *origin, int64_t line, const char *reason,
               const char *text, size_t len, sp_diag *d);
/** Creates or truncates the rejects file (sp_config.rejects_path) if it is not open yet;
 *  SP_EIO in the context's diag naming it. Done when the run starts. */
int ctx_rejects_open(sp_context *ctx);
/** ctx_reject as a source's reject hook (source_reject_fn; ud is the context). */
int ctx_source_reject(void *ctx, const char *origin, int64_t line, const char *reason,
                      const char *text, size_t len, sp_diag *d);
/** Rejects since the last call (per-batch count for metrics). */
uint64_t ctx_rejects_take(sp_context *ctx);
void ctx_rejects_close(sp_context *ctx);

/* parse_node.c */
/** File and 1-based line of row `row` of stream s's batch at time t, when s is a text source
 *  (textFile, textFileStream) or a parse node over one that produced that batch: 0, or -1 when
 *  unknown. Cost: a binary search per parse node and over the source's runs. */
int stream_line_origin(const sp_stream *s, int64_t t, size_t row, const char **file, int64_t *line);

/* eventtime.c */
int stream_is_event_time(const sp_stream *s);
/** Files the rows of an arrival batch into event-time buckets (late ones are rejected). */
int eventtime_ingest(sp_stream *s, const sp_batch *in, sp_diag *d);
/** The next event-time batch that is due, if any (input_done: flush what is left; pad: and
 *  then go on with empty batches). */
int eventtime_next_due(sp_stream *s, int input_done, int pad, int64_t *t);
/** Late records since the last call. */
uint64_t eventtime_take_late(sp_stream *s);

/* stream.c */
sp_stream *stream_new(sp_context *ctx, node_kind kind, sp_stream *p0, sp_stream *p1, sp_td *td);
/** A node of an operator family (N_OPS) emitting every slide_ms (0: the parent's slide). */
sp_stream *stream_new_ops(sp_context *ctx, const stream_ops *ops, sp_stream *p0, sp_stream *p1,
                          sp_td *td, int64_t slide_ms);
/** 1 when s emits a batch at time t (Spark's isTimeValid). */
int stream_time_valid(const sp_stream *s, int64_t t);
void stream_free(sp_stream *s);
int stream_plan(sp_context *ctx);
/** The batch of stream s at time t (memoised); the caller gets its own reference. */
int stream_compute(sp_stream *s, int64_t t, sp_batch **out, sp_diag *d);

/** Registers output k of stream s (takes k; frees it on failure). rc != SP_OK: a failed sink
 *  constructor whose message is in d. */
int stream_add_output(sp_stream *s, int rc, sp_sink *k, sp_diag *d);

/* reclaim.c */
/** Between batch times (after the batch time's memoised batches are released): when enough
 *  new strings or keys arrived, frees the dictionary entries and keymap ids that no node
 *  keeps. Never fails (what cannot be freed for lack of memory stays). */
void ctx_reclaim(sp_context *ctx);
/** Pins what is interned before the first batch time (literals of expressions and kernels). */
void ctx_reclaim_start(sp_context *ctx);

/* report_node.c */
/** Frees the context's report registry (the reports live on while sinks hold them). */
void report_registry_free(sp_context *ctx);

/* hostops.c — per-batch operators that run on the executors (host). */
int hostop_flat_map(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);
int hostop_union(sp_stream *s, const sp_batch *a, const sp_batch *b, sp_batch **out, sp_diag *d);
int hostop_count(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);
int hostop_reduce(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);
int hostop_reduce_by_key(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);
/** 1 when s is reduceByKey of (a, b) => (a._1 op b._1, ...) with sum/min/max components,
 *  which runs as one device aggregation per component. */
int hostop_tuple_monoids(const sp_stream *s);
int hostop_group_by_key(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);
int hostop_join(sp_stream *s, const sp_batch *a, const sp_batch *b, sp_batch **out, sp_diag *d);
int hostop_transform(sp_stream *s, const sp_batch *in, sp_batch **out, sp_diag *d);

#endif
