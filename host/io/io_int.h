/* io_int.h — sources (receivers) and sinks (output operations).
 *
 * A source produces, for each batch time t the driver seals, the records that belong to the
 * batch ending at t. Live sources (socket, stdin) run a receiver thread that pushes lines into
 * a bounded ingest buffer (it blocks when full: back-pressure, never drops); next() drains what
 * arrived. Replay sources (queue, textFile) read what the batch needs in next(). Line sources
 * cut lines with lines_cut (io/lines_int.h): a line longer than line_max goes to the reject
 * hook with its place, never into memory whole. */
#ifndef SPATE_IO_INT_H
#define SPATE_IO_INT_H

#include "batch/batch_int.h"
#include "exec/exec_int.h"

#include <stdatomic.h>
#include <stdio.h>

typedef struct sp_source sp_source;

/** The longest line a line source keeps by default (sp_config.line_max): 1 MiB. */
#define SOURCE_LINE_MAX_DEFAULT ((size_t)1 << 20)

/** Where a source sends input it cannot use (a line longer than its cap): the context's
 *  rejects output, as ctx_reject. */
typedef int (*source_reject_fn)(void *ud, const char *origin, int64_t line, const char *reason,
                                const char *text, size_t len, sp_diag *d);

typedef struct source_vt {
    const char *kind; /* "queueStream", "textFile", ... (used in messages) */
    /** Opens files / connects / starts the receiver thread. */
    int (*start)(sp_source *s, sp_diag *d);
    /** Appends to `out` (an empty batch of s->td, time t) the records of the batch ending at
     *  t. Sets *done = 1 when the source has no more input after this batch (finite sources
     *  end the run with the batch that drains them). Errors name the file and line. */
    int (*next)(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d);
    /** Stops receiving (joins threads, closes files); idempotent. */
    void (*stop)(sp_source *s);
    void (*destroy)(sp_source *s);
    /** Checkpoints: appends to out where the source stands after the batches so far (what a
     *  replay from the start must reach again at the same batch). NULL: the source cannot
     *  be replayed (live input), so a checkpointed job refuses it. */
    void (*position)(const sp_source *s, strbuf *out);
} source_vt;

struct sp_source {
    const source_vt *vt;
    sp_td *td; /* element type, owned */
    batch_env *env;
    sp_exec *exec;           /* executors for parallel parsing (may be NULL) */
    int manual_clock;        /* 1: batch k has time k x interval (queueStream) */
    size_t line_max;         /* line sources: longer lines are rejected (set before start) */
    source_reject_fn reject; /* rejects go there (NULL: only counted in `rejected`) */
    const atomic_int *stop;  /* the run's stop request: next() does not wait on after it */
    void *reject_ud;
    uint64_t rejected; /* lines rejected by the source itself, over the run */
    void *impl;
};

/** Rejects line `line` of origin (a file name, host:port or stdin), longer than s->line_max,
 *  showing its first bytes: "ORIGIN:LINE: KIND: line longer than N bytes (dropped): HEAD". */
int source_reject_long(sp_source *s, const char *origin, int64_t line, const char *head,
                       size_t nhead, sp_diag *d);

/** Constructors (nothing is opened until start, except what type inference must read).
 *  Free with source_free. */
int source_queue_new(batch_env *env, const char *path, const char *type, sp_source **out,
                     sp_diag *d);
int source_text_file_new(batch_env *env, const char *path, size_t batch_lines, sp_source **out,
                         sp_diag *d);
int source_dir_new(batch_env *env, const char *dir, sp_source **out, sp_diag *d);
int source_socket_new(batch_env *env, const char *host, int port, sp_source **out, sp_diag *d);
/** Lines from a file descriptor (stdin: 0), through a receiver thread. batch_lines > 0 cuts
 *  a batch every that many lines (deterministic); 0 takes what arrived by the boundary. */
int source_fd_new(batch_env *env, int fd, const char *name, size_t batch_lines, sp_source **out,
                  sp_diag *d);
int source_generator_new(batch_env *env, const sp_generator_opts *o, sp_source **out, sp_diag *d);
void source_free(sp_source *s);
/** Bounds the ingest buffer of a receiver source (socket, fd) to `bytes` (default 64 MiB).
 *  SP_EINVAL for other sources. */
int source_set_ingest_limit(sp_source *s, size_t bytes, sp_diag *d);

/* ----------------------------------------------------------------------------------- sinks */

typedef struct sp_sink sp_sink;

typedef struct sink_vt {
    const char *kind;
    /** Writes one batch (even an empty one); the output of batch time t is complete and
     *  visible when this returns (files: written then renamed). */
    int (*write)(sp_sink *k, const sp_batch *b, sp_diag *d);
    /** Flushes and closes. */
    int (*close)(sp_sink *k, sp_diag *d);
    void (*destroy)(sp_sink *k);
    /** Checkpointed runs (core/checkpoint_int.h), before the first batch: cut the output
     *  back to `pos`, its position at the last commit (0: nothing committed). NULL: nothing
     *  to do. */
    int (*resume)(sp_sink *k, uint64_t pos, sp_diag *d);
    /** Checkpointed runs, after the batch's write: flush (and, at a sync point, fsync what
     *  was written since the last one); *pos is the position to commit (the size of an
     *  appending file; 0 for outputs without one). NULL: nothing to do. */
    int (*commit)(sp_sink *k, int sync, uint64_t *pos, sp_diag *d);
    /** 1: a restart also feeds it the batches it replays (its output is rebuilt from what it
     *  took in, as the report is); 0: replayed batches are held back from it. */
    int replays;
} sink_vt;

struct sp_sink {
    const sink_vt *vt;
    const sp_allocator *alloc;
    void *impl;
};

/** print(n) in Spark's format to f: 43 dashes, "Time: T ms", 43 dashes, up to n elements in
 *  toString form, "..." when there were more, an empty line. Flushes f per batch. */
int sink_print_new(const sp_allocator *a, FILE *f, int n, sp_sink **out, sp_diag *d);
/** saveAsTextFiles: directory prefix-T[.suffix] with part-NNNNN files and _SUCCESS, written
 *  under a temporary name then renamed (a re-run of a batch replaces it). */
int sink_text_files_new(const sp_allocator *a, const char *prefix, const char *suffix,
                        sp_sink **out, sp_diag *d);
/** Durability for checkpointed runs: fsync(2) of fd, fsync of the directory holding path,
 *  syncfs(2) of the file system holding it; 0 or -1 with errno. All do nothing when
 *  $SPATE_CHECKPOINT_NO_FSYNC is set (a test switch, core/checkpoint_int.h). */
int io_fsync(int fd);
int io_fsync_dir_of(const char *path);
int io_syncfs_of(const char *path);

/** CSV / JSON-lines file appended batch by batch. The file is truncated when the sink is made,
 *  unless `keep` (a checkpointed run: resume cuts it back to its committed size). */
int sink_csv_new(const sp_allocator *a, const char *path, int keep, sp_sink **out, sp_diag *d);
int sink_jsonl_new(const sp_allocator *a, const char *path, int keep, sp_sink **out, sp_diag *d);
int sink_foreach_new(const sp_allocator *a, sp_foreach_fn fn, void *ud, sp_sink **out,
                     sp_diag *d);
void sink_free(sp_sink *k);

#endif
